//! What the core crate's WeChat integration tests share: the account the simulated platform
//! (`voicewall_sim::wechat`) serves, a config with a WeChat wall on it, and signed pushes over real
//! HTTP. Spawning and stopping the app is the harness's (`voicewall_testkit::TestApp`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;
use voicewall_core::config::Config;
use voicewall_core::pipeline::RetryPolicy;
use voicewall_core::startup::{Options, StartError};
use voicewall_sim::wechat::{MockWechat, PushMode, Pusher};
pub use voicewall_testkit::TestApp;

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

/// The `[[walls]]` of a WeChat wall "wx" (safe-mode capable) on the mock and a web wall "web".
pub fn wechat_walls(mock_base: &str) -> String {
    format!(
        r#"[[walls]]
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
"#
    )
}

/// A config with the walls of `wechat_walls` on 127.0.0.1 port 0 and the null output.
pub fn wechat_config(data_dir: &Path, mock_base: &str) -> Config {
    voicewall_testkit::test_config(data_dir, &wechat_walls(mock_base))
}

pub async fn spawn_app_in(dir: &Path, mock: &MockWechat) -> TestApp {
    try_spawn_app_at(dir, &mock.base_url())
        .await
        .expect("build app")
}

/// The app on the mock at `mock_base`; `Err` when it cannot start (e.g. the data dir is still locked).
pub async fn try_spawn_app_at(dir: &Path, mock_base: &str) -> Result<TestApp, StartError> {
    TestApp::try_spawn_config(
        wechat_config(dir, mock_base),
        Options {
            retry: Some(fast_retry()),
            demo: false,
            ..Options::default()
        },
    )
    .await
}

/// The WeChat side of the harness's app: the webhook of wall "wx" and its state.
#[allow(async_fn_in_trait)]
pub trait WechatApp {
    fn webhook(&self) -> String;
    async fn push(&self, xml: &str, mode: PushMode) -> reqwest::Response;
    async fn wx(&self) -> serde_json::Value;
    async fn wait_wall(
        &self,
        secs: u64,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value;
    async fn get_bytes(&self, path: &str) -> (String, Vec<u8>);
}

impl WechatApp for TestApp {
    fn webhook(&self) -> String {
        self.url(&format!("/webhook/wechat/{WALL}"))
    }

    async fn push(&self, xml: &str, mode: PushMode) -> reqwest::Response {
        pusher()
            .deliver(&self.client, &self.webhook(), xml, mode)
            .await
            .expect("push delivered")
    }

    async fn wx(&self) -> serde_json::Value {
        self.wall(WALL).await
    }

    /// Read the wall state of "wx" until `pred` holds (or panic after `secs`).
    async fn wait_wall(
        &self,
        secs: u64,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        self.wait_state(WALL, secs, pred).await
    }

    async fn get_bytes(&self, path: &str) -> (String, Vec<u8>) {
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
