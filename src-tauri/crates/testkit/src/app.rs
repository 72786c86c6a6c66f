//! The application in-process, on the test's tokio runtime: `TestApp::spawn*` builds it from a config
//! (127.0.0.1 port 0, a data dir, the null output) and runs it until `stop()` (or drop) resolves the
//! shutdown the harness passed in. Tests then talk to it over real HTTP.

use std::path::{Path, PathBuf};
use std::time::Duration;
use voicewall_core::config::Config;
use voicewall_core::startup::{Application, Options, StartError};
use voicewall_core::AppState;

/// How long the harness waits for a condition the test expects to come true (never a proof of absence).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A config on 127.0.0.1 port 0 with this data dir and the null audio output; `extra_toml` adds tables
/// (walls, `[admin]`, ...). With no `[[walls]]` it gets the built-in web wall "main".
pub fn test_config(data_dir: &Path, extra_toml: &str) -> Config {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = {:?}\n[audio]\noutput = \"null\"\ngap_ms = 100\n{extra_toml}",
        data_dir.display().to_string()
    );
    Config::from_toml(&text, Path::new("test.toml")).expect("test config")
}

/// A running application; its HTTP side (`addr`, `client`, `wall`, ...) is the `Endpoint` it derefs to.
pub struct TestApp {
    pub endpoint: Endpoint,
    pub state: AppState,
    pub data_dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _tmp: Option<tempfile::TempDir>,
}

impl TestApp {
    /// The app on a fresh temporary data dir (removed when the `TestApp` goes).
    pub async fn spawn(extra_toml: &str) -> TestApp {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut app =
            Self::spawn_config(test_config(tmp.path(), extra_toml), Options::default()).await;
        app._tmp = Some(tmp);
        app
    }

    /// The app on a data dir the test keeps (to restart on it).
    pub async fn spawn_in(dir: &Path, extra_toml: &str, options: Options) -> TestApp {
        Self::spawn_config(test_config(dir, extra_toml), options).await
    }

    /// The app from a config the test built (its data dir must outlive the app).
    pub async fn spawn_config(config: Config, options: Options) -> TestApp {
        Self::try_spawn_config(config, options)
            .await
            .expect("build app")
    }

    /// As `spawn_config`, or the reason the app did not start.
    pub async fn try_spawn_config(config: Config, options: Options) -> Result<TestApp, StartError> {
        if std::env::var_os("TEST_LOG").is_some() {
            voicewall_core::telemetry::init(None);
        }
        let data_dir = config.data_dir();
        let scheme = if config.server.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let app = Application::build_with(config, options).await?;
        let addr = format!("{scheme}://{}", app.local_addr());
        let state = app.state().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        Ok(TestApp {
            endpoint: Endpoint::new(addr),
            state,
            data_dir,
            stop: Some(tx),
            task: Some(task),
            _tmp: None,
        })
    }

    /// Keep this temporary dir (the app's data dir) until the app goes.
    pub fn with_temp_dir(mut self, tmp: tempfile::TempDir) -> Self {
        self._tmp = Some(tmp);
        self
    }

    /// Stop gracefully (the shutdown resolves, the store flushes) and wait for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("join").expect("server");
        }
    }
}

impl std::ops::Deref for TestApp {
    type Target = Endpoint;
    fn deref(&self) -> &Endpoint {
        &self.endpoint
    }
}

/// An app over HTTP (in-process or a `voicewall serve` child): its address and a client, and what every
/// test reads through them.
pub struct Endpoint {
    /// `http://127.0.0.1:PORT` (`https://` when the config has `[server.tls]`).
    pub addr: String,
    /// No redirects followed; accepts the self-signed certificate of `[server.tls]` (loopback only).
    pub client: reqwest::Client,
}

impl Endpoint {
    pub fn new(addr: String) -> Self {
        Self {
            addr,
            client: client(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.addr, path)
    }

    /// GET a JSON document; panics unless 2xx.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let r = self.client.get(self.url(path)).send().await.expect("GET");
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.expect("json")
    }

    /// The wall state, as a display reads it.
    pub async fn wall(&self, wall: &str) -> serde_json::Value {
        self.get_json(&format!("/api/walls/{wall}")).await
    }

    /// Read the wall state until `pred` holds; panics with the last state after `secs`.
    pub async fn wait_state(
        &self,
        wall: &str,
        secs: u64,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.wall(wall).await;
            if pred(&s) {
                return s;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("wall state never matched: {s:#}");
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    /// Accepted pushes not yet processed, from `/metrics`.
    pub async fn inbox_pending(&self) -> u64 {
        let text = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text");
        inbox_pending(&text).expect("voicewall_inbox_pending in /metrics")
    }

    /// Wait until every accepted push has been processed (the inbox is empty): after this, what the
    /// wall shows is everything those pushes will ever produce.
    pub async fn wait_inbox_drained(&self) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let n = self.inbox_pending().await;
            if n == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{n} pushes still in the inbox"
            );
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
}

impl Drop for TestApp {
    /// A test that panics (or forgets `stop`) still stops its app.
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// The HTTP client the harness hands out.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        // `[server.tls]` generates a self-signed certificate; the harness only talks to loopback.
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client")
}

/// `voicewall_inbox_pending N` out of Prometheus text.
pub fn inbox_pending(metrics: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("voicewall_inbox_pending "))
        .and_then(|v| v.trim().parse().ok())
}
