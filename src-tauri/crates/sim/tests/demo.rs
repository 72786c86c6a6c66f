//! `voicewall demo`'s simulated audience (the mock WeChat platform on loopback, signed safe-mode
//! pushes, OAuth joins) against the real app: the demo wall comes alive — people with profiles, voices
//! ready, nothing failed — and says it is a demo.

use voicewall_core::cli::Simulation;
use voicewall_core::pipeline::RetryPolicy;
use voicewall_core::startup::Options;
use voicewall_sim::demo::Demo;
use voicewall_testkit::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_wall_comes_alive_and_is_labelled_demo() {
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
    let mut demo = Demo::new();
    let config = demo.config(Some(&file)).unwrap();
    assert_eq!(config.walls.len(), 2);
    assert_eq!(config.walls[0].id, "demo");
    let app = TestApp::spawn_config(
        config,
        Options {
            retry: Some(RetryPolicy {
                attempts: 4,
                base: std::time::Duration::from_millis(20),
                max: std::time::Duration::from_millis(100),
            }),
            demo: true,
            ..Options::default()
        },
    )
    .await;
    let addr = app.addr.trim_start_matches("http://").parse().unwrap();
    // On the test's runtime, as `voicewall demo` runs it on the app's.
    let audience = tokio::spawn(demo.run(addr));

    let with_status = |w: &serde_json::Value, status: &str| {
        w["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["status"] == status)
            .count()
    };
    let wall = app
        .wait_state("demo", 30, |w| {
            let people = w["participants"].as_array().unwrap();
            let with_profile = people.iter().filter(|p| p["has_profile"] == true).count();
            with_profile >= 3 && with_status(w, "ready") >= 3
        })
        .await;
    assert_eq!(wall["demo"], true, "the wall is labelled DEMO");
    assert!(wall["join"]["url"]
        .as_str()
        .unwrap()
        .starts_with("http://weixin.qq.com/q/"));
    assert_eq!(with_status(&wall, "failed"), 0, "{wall:#}");
    // The Telegram wall: people who came through the deep link, with profiles, and their voice notes.
    let tg = voicewall_sim::telegram_demo::WALL;
    let wall = app
        .wait_state(tg, 30, |w| {
            let people = w["participants"].as_array().unwrap();
            let with_profile = people.iter().filter(|p| p["has_profile"] == true).count();
            with_profile >= 2 && with_status(w, "ready") >= 2
        })
        .await;
    assert_eq!(wall["demo"], true);
    assert!(wall["join"]["url"]
        .as_str()
        .unwrap()
        .starts_with("https://t.me/VoicewallDemoBot?start="));
    assert_eq!(with_status(&wall, "failed"), 0, "{wall:#}");
    audience.abort();
    app.stop().await;
}
