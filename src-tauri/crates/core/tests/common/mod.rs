//! Shared helpers of the core crate's WeChat integration tests: the mock WeChat platform, the real app
//! on 127.0.0.1 port 0 with a temporary data dir and the null audio output (the `spawn_app` pattern),
//! and signed pushes over real HTTP.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;
use voicewall_core::config::Config;
use voicewall_core::mock_wechat::{MockWechat, PushMode, Pusher};
use voicewall_core::pipeline::RetryPolicy;
use voicewall_core::startup::{Application, Options};
use voicewall_core::AppState;

pub const APP_ID: &str = "wxb11529c136998cb6";
pub const SECRET: &str = "s3cr3t-app-secret";
pub const TOKEN: &str = "pamtest";
pub const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
pub const ORIGINAL_ID: &str = "gh_97417a04a28d";
pub const WALL: &str = "wx";

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures")
}

pub fn wechat_fixture(name: &str) -> PathBuf {
    fixtures().join("wechat").join(name)
}

pub fn hello_amr() -> Vec<u8> {
    std::fs::read(fixtures().join("audio/hello.amr")).expect("tests/fixtures/audio/hello.amr")
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        base: Duration::from_millis(20),
        max: Duration::from_millis(100),
    }
}

pub fn now_s() -> u64 {
    voicewall_core::domain::now_ms() / 1000
}

pub fn pusher() -> Pusher {
    Pusher::new(TOKEN, Some(AES_KEY), APP_ID, ORIGINAL_ID)
}

/// A config with a WeChat wall "wx" (safe-mode capable) on the mock and a web wall "web".
pub fn wechat_config(data_dir: &Path, mock_base: &str) -> Config {
    let text = format!(
        r#"[server]
listen = "127.0.0.1:0"
[storage]
data_dir = {dir:?}
[audio]
output = "null"
gap_ms = 100
[[walls]]
id = "{WALL}"
title = "WeChat test wall"
locale = "en"
[walls.wechat]
app_id = "{APP_ID}"
app_secret = "{SECRET}"
token = "{TOKEN}"
encoding_aes_key = "{AES_KEY}"
original_id = "{ORIGINAL_ID}"
api_base = "{mock_base}"
oauth_base = "{mock_base}"
[[walls]]
id = "web"
[walls.web]
"#,
        dir = data_dir.display().to_string()
    );
    Config::from_toml(&text, Path::new("test.toml")).expect("test config")
}

pub struct TestApp {
    pub addr: String,
    pub state: AppState,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub async fn spawn_app_in(dir: &Path, mock: &MockWechat) -> TestApp {
    try_spawn_app_at(dir, &mock.base_url())
        .await
        .expect("build app")
}

/// The app on the mock at `mock_base`; `Err` when it cannot start (e.g. the data dir is still locked).
pub async fn try_spawn_app_at(dir: &Path, mock_base: &str) -> Result<TestApp, String> {
    if std::env::var_os("TEST_LOG").is_some() {
        voicewall_core::telemetry::init(None);
    }
    let config = wechat_config(dir, mock_base);
    let app = Application::build_with(
        config,
        Options {
            retry: Some(fast_retry()),
            demo: false,
            ..Options::default()
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let addr = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    Ok(TestApp {
        addr,
        state,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        stop: Some(tx),
        task: Some(task),
    })
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.addr, path)
    }

    pub fn webhook(&self) -> String {
        self.url(&format!("/webhook/wechat/{WALL}"))
    }

    pub async fn push(&self, xml: &str, mode: PushMode) -> reqwest::Response {
        pusher()
            .deliver(&self.client, &self.webhook(), xml, mode)
            .await
            .expect("push delivered")
    }

    pub async fn wall(&self) -> serde_json::Value {
        let r = self
            .client
            .get(self.url(&format!("/api/walls/{WALL}")))
            .send()
            .await
            .expect("GET wall");
        assert!(r.status().is_success(), "GET wall: {}", r.status());
        r.json().await.expect("json")
    }

    /// Poll the wall state until `pred` holds (or panic after `secs`).
    pub async fn wait_wall(
        &self,
        secs: u64,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.wall().await;
            if pred(&s) {
                return s;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("wall state never matched: {s:#}");
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    pub async fn get_bytes(&self, path: &str) -> (String, Vec<u8>) {
        let r = self.client.get(self.url(path)).send().await.expect("GET");
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        (ct, r.bytes().await.expect("bytes").to_vec())
    }

    /// Walk away without a graceful stop (for a crash test): returns the stop sender, which the caller
    /// keeps alive until the runtime is gone so no shutdown runs.
    pub fn abandon(mut self) -> Option<tokio::sync::oneshot::Sender<()>> {
        self.stop.take()
    }

    /// Stop gracefully (store flushed) and wait.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("join").expect("server");
        }
    }
}

/// Messages of the wall whose status is `status`.
pub fn with_status<'a>(wall: &'a serde_json::Value, status: &str) -> Vec<&'a serde_json::Value> {
    wall["messages"]
        .as_array()
        .map(|a| a.iter().filter(|m| m["status"] == status).collect())
        .unwrap_or_default()
}

pub fn message_count(wall: &serde_json::Value) -> usize {
    wall["messages"].as_array().map(Vec::len).unwrap_or(0)
}

pub fn participant<'a>(wall: &'a serde_json::Value, openid: &str) -> Option<&'a serde_json::Value> {
    let id = format!("wechat:{openid}");
    wall["participants"]
        .as_array()?
        .iter()
        .find(|p| p["id"] == id.as_str())
}
