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
/// The admin token of the harness's configs (unless `extra_toml` has its own `[admin]`).
pub const ADMIN_TOKEN: &str = "testkit-admin-token";

/// `[admin] token = ADMIN_TOKEN`, unless the test's own TOML has an `[admin]` table.
pub(crate) fn admin_table(extra_toml: &str) -> String {
    if extra_toml.contains("[admin]") {
        String::new()
    } else {
        format!("[admin]\ntoken = \"{ADMIN_TOKEN}\"\n")
    }
}

pub fn test_config(data_dir: &Path, extra_toml: &str) -> Config {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = {:?}\n[audio]\noutput = \"null\"\ngap_ms = 100\n{}{extra_toml}",
        data_dir.display().to_string(),
        admin_table(extra_toml),
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
            endpoint: Endpoint::new(addr, &state.admin_token.0),
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

/// An app over HTTP (in-process or a `voicewall serve` child): its address and clients, and what every
/// test reads through them.
///
/// `client` presents the operator's credential (`Authorization: Bearer <admin token>`), which every
/// display route accepts: what a test reads of a wall, it reads as the kiosk's screen would. The guest
/// and platform routes ignore it. `anonymous` presents nothing (the audience tests' "nobody").
pub struct Endpoint {
    /// `http://127.0.0.1:PORT` (`https://` when the config has `[server.tls]`).
    pub addr: String,
    /// No redirects followed; accepts the self-signed certificate of `[server.tls]` (loopback only);
    /// sends the admin token as Bearer.
    pub client: reqwest::Client,
    /// As `client`, without any credential.
    pub anonymous: reqwest::Client,
    /// The app's admin token.
    pub admin_token: String,
}

impl Endpoint {
    pub fn new(addr: String, admin_token: &str) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        let mut bearer = reqwest::header::HeaderValue::from_str(&format!("Bearer {admin_token}"))
            .expect("token is ASCII");
        bearer.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, bearer);
        Self {
            addr,
            client: client_builder()
                .default_headers(headers)
                .build()
                .expect("client"),
            anonymous: client(),
            admin_token: admin_token.to_string(),
        }
    }

    /// Sign in as the console does (`POST /api/admin/login`): the `vw_session=…` pair to send as `Cookie`.
    pub async fn operator_session(&self) -> String {
        let r = self
            .anonymous
            .post(self.url("/api/admin/login"))
            .json(&serde_json::json!({"token": self.admin_token}))
            .send()
            .await
            .expect("POST /api/admin/login");
        assert_eq!(r.status().as_u16(), 204, "login");
        cookie_pair(&r, "vw_session")
    }

    /// Open a display of `wall` as the console does (a one-time link, then the link itself): the
    /// `vw_display=…` pair to send as `Cookie`.
    pub async fn display_cookie(&self, wall: &str) -> String {
        let link: serde_json::Value = self
            .client
            .post(self.url(&format!("/api/admin/walls/{wall}/displays")))
            .send()
            .await
            .expect("POST displays")
            .json()
            .await
            .expect("link json");
        let url = link["url"].as_str().expect("a display link");
        self.redeem_display(url).await
    }

    /// Follow a one-time display link (`/display/<code>`) anonymously: the `vw_display=…` pair it sets.
    pub async fn redeem_display(&self, path: &str) -> String {
        let r = self
            .anonymous
            .get(self.url(path))
            .send()
            .await
            .expect("GET display link");
        assert_eq!(r.status().as_u16(), 303, "display link");
        cookie_pair(&r, "vw_display")
    }

    /// One request as the API tests make it: `method` on `path` with an optional JSON body, as the
    /// holder of `bearer` (`None`: no credential at all). Status and JSON body (`Null` when none).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
        bearer: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        let mut r = self.anonymous.request(method, self.url(path));
        if let Some(b) = bearer {
            r = r.bearer_auth(b);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
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

    /// The wall state with every message and participant the wall shows, not only the newest (the
    /// compact state's older ones read page by page, as a wall page scrolling back would).
    pub async fn wall_full(&self, wall: &str) -> serde_json::Value {
        let mut state = self.wall(wall).await;
        for (list, cursor) in [
            ("messages", "messages_before"),
            ("participants", "participants_before"),
        ] {
            let mut before = state[cursor].as_str().map(str::to_string);
            while let Some(b) = before {
                let mut page_url =
                    reqwest::Url::parse(&self.url(&format!("/api/walls/{wall}/{list}")))
                        .expect("a URL");
                page_url
                    .query_pairs_mut()
                    .append_pair("before", &b)
                    .append_pair("limit", "1000");
                let page = self
                    .get_json(&format!(
                        "{}?{}",
                        page_url.path(),
                        page_url.query().unwrap_or_default()
                    ))
                    .await;
                let mut older = page[list].as_array().cloned().unwrap_or_default();
                older.extend(state[list].as_array().cloned().unwrap_or_default());
                state[list] = serde_json::Value::Array(older);
                before = page["before"].as_str().map(str::to_string);
            }
            state[cursor] = serde_json::Value::Null;
        }
        state
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

fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        // `[server.tls]` generates a self-signed certificate; the harness only talks to loopback.
        .danger_accept_invalid_certs(true)
}

/// The HTTP client the harness hands out (no credential).
pub fn client() -> reqwest::Client {
    client_builder().build().expect("client")
}

/// The `name=value` pair of a response's `Set-Cookie` for cookie `name`.
pub fn cookie_pair(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie set: {:?}", r.headers()))
        .to_string()
}

/// `voicewall_inbox_pending N` out of Prometheus text.
pub fn inbox_pending(metrics: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("voicewall_inbox_pending "))
        .and_then(|v| v.trim().parse().ok())
}
