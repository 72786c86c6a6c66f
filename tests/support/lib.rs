//! Shared helpers of the end-to-end tests: `spawn_app` starts the real application on 127.0.0.1 port 0
//! with a temporary data dir and returns its address; tests then talk to it over real HTTP.

use std::time::Duration;
use voicewall_core::config::Config;
use voicewall_core::startup::{Application, Options};
use voicewall_core::AppState;

pub struct TestApp {
    pub addr: String,
    pub state: AppState,
    pub data_dir: std::path::PathBuf,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _tmp: Option<tempfile::TempDir>,
}

/// A config with one web wall, a temp data dir, the null audio output, and port 0.
pub fn test_config(data_dir: &std::path::Path, extra_toml: &str) -> Config {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = {:?}\n[audio]\noutput = \"null\"\ngap_ms = 100\n{extra_toml}",
        data_dir.display().to_string()
    );
    Config::from_toml(&text, std::path::Path::new("test.toml")).expect("test config")
}

pub async fn spawn_app(extra_toml: &str) -> TestApp {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut app = spawn_app_in(tmp.path(), extra_toml, Options::default()).await;
    app._tmp = Some(tmp);
    app
}

pub async fn spawn_app_in(dir: &std::path::Path, extra_toml: &str, options: Options) -> TestApp {
    spawn_config(test_config(dir, extra_toml), options).await
}

/// Start the app from a config the test built (its data dir must exist for the test's lifetime).
pub async fn spawn_config(config: Config, options: Options) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        voicewall_core::telemetry::init(None);
    }
    let dir = config.data_dir();
    let app = Application::build_with(config, options)
        .await
        .expect("build app");
    let addr = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        state,
        data_dir: dir,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client"),
        stop: Some(tx),
        task: Some(task),
        _tmp: None,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.addr, path)
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let r = self.client.get(self.url(path)).send().await.expect("GET");
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.expect("json")
    }

    /// Poll the wall state until `pred` holds (or panic after `secs`).
    pub async fn wait_state(
        &self,
        wall: &str,
        secs: u64,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.get_json(&format!("/api/walls/{wall}")).await;
            if pred(&s) {
                return s;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("wall state never matched: {s:#}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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
