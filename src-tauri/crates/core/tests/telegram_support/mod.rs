//! What the Telegram integration tests share: the mock Bot API (the simulator crate), the app through the
//! one harness (`voicewall-testkit`) with a Telegram wall, and deliveries over real HTTP.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;
use voicewall_core::config::Config;
use voicewall_core::events::WallEvent;
use voicewall_core::pipeline::RetryPolicy;
use voicewall_core::startup::Options;
use voicewall_sim::telegram::MockTelegram;
use voicewall_testkit::TestApp;

pub const TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
pub const BOT: &str = "VoicewallBot";
pub const SECRET: &str = "wall_secret-123";
pub const WALL: &str = "tg";
pub const WELCOME: &str = "Welcome to the Telegram test wall!";

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures")
}

pub fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(path)).unwrap_or_else(|e| panic!("tests/fixtures/{path}: {e}"))
}

/// A real Telegram voice note (Ogg/Opus, 3.44 s).
pub fn voice_ogg() -> Vec<u8> {
    fixture("audio/voice_ptb_telegram.ogg")
}

/// A JPEG the mock serves as a profile photo.
pub fn tiny_jpeg() -> Vec<u8> {
    photo_jpeg(16, 16)
}

/// A JPEG profile photo `w`×`h`.
pub fn photo_jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 40, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("jpeg");
    out.into_inner()
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        base: Duration::from_millis(20),
        max: Duration::from_millis(100),
    }
}

/// A Telegram wall "tg" on the mock; `public_url` decides whether start-up calls setWebhook.
pub fn telegram_config(data_dir: &Path, mock_base: &str, public_url: &str) -> Config {
    let text = format!(
        r#"[server]
listen = "127.0.0.1:0"
public_url = "{public_url}"
[storage]
data_dir = {dir:?}
[audio]
output = "null"
gap_ms = 100
[[walls]]
id = "{WALL}"
title = "Telegram test wall"
locale = "en"
[walls.telegram]
bot_token = "{TOKEN}"
bot_username = "{BOT}"
secret_token = "{SECRET}"
api_base = "{mock_base}"
welcome = "{WELCOME}"
"#,
        dir = data_dir.display().to_string()
    );
    Config::from_toml(&text, Path::new("test.toml")).expect("test config")
}

/// The app (the one harness, `voicewall-testkit`) with a Telegram wall, and what these tests do to it.
pub struct TgApp(pub TestApp);

impl std::ops::Deref for TgApp {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.0
    }
}

pub async fn spawn_app(dir: &Path, mock: &MockTelegram, public_url: &str) -> TgApp {
    let config = telegram_config(dir, &mock.base_url(), public_url);
    let options = Options {
        retry: Some(fast_retry()),
        ..Options::default()
    };
    TgApp(TestApp::spawn_config(config, options).await)
}

impl TgApp {
    pub fn webhook(&self) -> String {
        self.url(&format!("/webhook/telegram/{WALL}"))
    }

    /// Deliver an update as Telegram does, with the wall's secret.
    pub async fn deliver(&self, update: &serde_json::Value) -> reqwest::Response {
        MockTelegram::deliver(&self.client, &self.webhook(), Some(SECRET), update)
            .await
            .expect("delivered")
    }

    pub async fn wall(&self) -> serde_json::Value {
        self.0.wall(WALL).await
    }

    /// Read the wall state until `pred` holds (or panic after `secs`).
    pub async fn wait_wall(
        &self,
        secs: u64,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        self.wait_state(WALL, secs, pred).await
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

    pub fn events(&self) -> tokio::sync::broadcast::Receiver<WallEvent> {
        self.state.hub.subscribe(WALL).expect("wall hub")
    }

    pub async fn stop(self) {
        self.0.stop().await
    }
}

/// Wait for the first event that `pred` accepts (panics after 30 s).
pub async fn next_event(
    rx: &mut tokio::sync::broadcast::Receiver<WallEvent>,
    pred: impl Fn(&WallEvent) -> bool,
) -> WallEvent {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match rx.recv().await {
                Ok(ev) if pred(&ev) => return ev,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event stream ended: {e}"),
            }
        }
    })
    .await
    .expect("event within 30 s")
}

pub fn messages(wall: &serde_json::Value) -> Vec<serde_json::Value> {
    wall["messages"].as_array().cloned().unwrap_or_default()
}

pub fn participant(wall: &serde_json::Value, user_id: i64) -> Option<&serde_json::Value> {
    let id = format!("telegram:{user_id}");
    wall["participants"]
        .as_array()?
        .iter()
        .find(|p| p["id"] == id.as_str())
}
