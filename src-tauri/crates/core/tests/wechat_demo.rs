//! `voicewall demo`: the simulated audience (mock WeChat platform on loopback, signed safe-mode pushes,
//! OAuth joins) makes the demo wall look alive within 10 s.

mod common;

use std::time::Duration;
use voicewall_core::startup::{Application, Options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_wall_is_alive_within_ten_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("demo.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = {:?}\n[audio]\noutput = \"null\"\n",
            dir.path().join("data").display().to_string()
        ),
    )
    .unwrap();
    let config = voicewall_core::demo_config(Some(&file)).unwrap();
    assert_eq!(config.walls.len(), 1);
    let wx = config.walls[0].wechat.as_ref().expect("a WeChat wall");
    assert!(wx.api_base.starts_with("http://127.0.0.1:"));
    let app = Application::build_with(
        config,
        Options {
            retry: Some(common::fast_retry()),
            demo: true,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let addr = app.local_addr();
    voicewall_core::demo::start(app.state().clone(), addr);
    tokio::spawn(app.run_until_stopped(std::future::pending()));

    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let wall: serde_json::Value = client
            .get(format!("http://{addr}/api/walls/demo"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let people = wall["participants"].as_array().unwrap();
        let with_profile = people.iter().filter(|p| p["has_profile"] == true).count();
        let ready = common::with_status(&wall, "ready").len();
        if with_profile >= 3 && ready >= 3 {
            assert_eq!(wall["demo"], true);
            assert!(wall["join"]["url"]
                .as_str()
                .unwrap()
                .starts_with("http://weixin.qq.com/q/"));
            assert!(common::with_status(&wall, "failed").is_empty(), "{wall:#}");
            break;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("the demo wall is not alive after 10 s: {wall:#}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
