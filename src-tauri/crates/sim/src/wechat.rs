//! A SIMULATOR of someone else's platform: a mock WeChat Official Account server (api.weixin.qq.com and
//! open.weixin.qq.com) as a real axum HTTP server on 127.0.0.1. It is not WeChat and talks to no network.
//! The tests use it, and so does the clearly labelled `voicewall demo`.
//!
//! It follows the API shapes of `tests/fixtures/wechat/api_samples.json`: `cgi-bin/token`,
//! `cgi-bin/stable_token`, `cgi-bin/media/get` (binary; errors as JSON with `text/plain`; video as
//! `{"video_url"}`), `cgi-bin/qrcode/create`, `cgi-bin/message/custom/send`, `cgi-bin/user/info` (as since 2021-12-27: no
//! nickname or avatar; `unionid` when the person has one), `connect/oauth2/authorize`
//! (auto-approves), `sns/oauth2/access_token`, `sns/userinfo`, and the avatar download. Errors are HTTP 200
//! with `{errcode, errmsg}` and a `rid:` suffix, as the real platform answers.
//!
//! Fault injection: HTTP 500 for the next N requests, errcode -1 (busy), errcode 40001 once (the tokens
//! issued so far are revoked), slow answers; and counters of requests per path and per media id.
//!
//! It also plays the platform's pushing side: `deliver` signs (and in safe mode encrypts) a push and
//! POSTs it to a webhook, and `*_xml` build push bodies.

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use voicewall_core::providers::wechat::crypto::{self, MsgCrypt};

/// Header a test (or the demo) sets on the authorize request to say which person holds the phone
/// (the real platform knows it from the WeChat client's session).
pub const OPENID_HEADER: &str = "x-mock-openid";

#[derive(Clone)]
enum MockMedia {
    Bytes {
        bytes: Vec<u8>,
        content_type: String,
    },
    Video {
        bytes: Vec<u8>,
    },
}

#[derive(Clone, Debug)]
pub struct MockUser {
    pub nickname: String,
    pub unionid: Option<String>,
}

#[derive(Default)]
struct Faults {
    http_500: HashMap<String, u32>,
    busy: HashMap<String, u32>,
    reject_token_once: bool,
    delay: HashMap<String, Duration>,
    media_delay: HashMap<String, Duration>,
}

struct Inner {
    app_id: String,
    secret: String,
    base: String,
    seq: AtomicU64,
    tokens: Mutex<HashSet<String>>,
    stable_token: Mutex<Option<String>>,
    token_expires_in: AtomicU64,
    media: Mutex<HashMap<String, MockMedia>>,
    users: Mutex<HashMap<String, MockUser>>,
    codes: Mutex<HashMap<String, String>>,
    used_codes: Mutex<HashSet<String>>,
    web_tokens: Mutex<HashMap<String, String>>,
    qr_expire_override: Mutex<Option<u64>>,
    qr_scenes: Mutex<Vec<String>>,
    sent: Mutex<Vec<Value>>,
    counters: Mutex<HashMap<String, u64>>,
    media_counters: Mutex<HashMap<String, u64>>,
    faults: Mutex<Faults>,
}

/// The running mock; stops when dropped.
pub struct MockWechat {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockWechat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn rid() -> String {
    let r: [u8; 8] = rand::random();
    let h = hex::encode(r);
    format!("{}-{}", &h[..8], &h[8..])
}

fn err_json(code: i64, msg: &str) -> Value {
    json!({"errcode": code, "errmsg": format!("{msg} rid: {}", rid())})
}

/// A JSON answer with the platform's habits: HTTP 200, the given content type.
fn answer(v: Value, content_type: &'static str) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type)],
        v.to_string(),
    )
        .into_response()
}

fn json_ok(v: Value) -> Response {
    answer(v, "application/json; encoding=utf-8")
}

impl MockWechat {
    /// Start on a fresh loopback port.
    pub async fn start(app_id: &str, secret: &str) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        Self::serve(listener, app_id, secret)
    }

    /// Start on a listener bound earlier (the demo reserves its port before the runtime exists).
    pub fn start_on(
        listener: std::net::TcpListener,
        app_id: &str,
        secret: &str,
    ) -> std::io::Result<Self> {
        listener.set_nonblocking(true)?;
        Self::serve(tokio::net::TcpListener::from_std(listener)?, app_id, secret)
    }

    fn serve(
        listener: tokio::net::TcpListener,
        app_id: &str,
        secret: &str,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            app_id: app_id.to_string(),
            secret: secret.to_string(),
            base: format!("http://{addr}"),
            seq: AtomicU64::new(1),
            tokens: Mutex::default(),
            stable_token: Mutex::default(),
            token_expires_in: AtomicU64::new(7200),
            media: Mutex::default(),
            users: Mutex::default(),
            codes: Mutex::default(),
            used_codes: Mutex::default(),
            web_tokens: Mutex::default(),
            qr_expire_override: Mutex::default(),
            qr_scenes: Mutex::default(),
            sent: Mutex::default(),
            counters: Mutex::default(),
            media_counters: Mutex::default(),
            faults: Mutex::default(),
        });
        let app = Router::new()
            .route("/cgi-bin/token", get(token))
            .route("/cgi-bin/stable_token", post(stable_token))
            .route("/cgi-bin/media/get", get(media_get))
            .route("/cgi-bin/qrcode/create", post(qrcode_create))
            .route("/cgi-bin/message/custom/send", post(custom_send))
            .route("/cgi-bin/user/info", get(user_info))
            .route("/connect/oauth2/authorize", get(authorize))
            .route("/sns/oauth2/access_token", get(oauth_token))
            .route("/sns/userinfo", get(userinfo))
            .route("/mmopen/{openid}/{size}", get(avatar))
            .route("/mock/video/{id}", get(video))
            .layer(axum::middleware::from_fn_with_state(inner.clone(), faults))
            .with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, inner, task })
    }

    /// `http://127.0.0.1:PORT`: use as both `api_base` and `oauth_base`.
    pub fn base_url(&self) -> String {
        self.inner.base.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serve these bytes for `media/get?media_id=id`.
    pub fn add_media(&self, id: &str, bytes: Vec<u8>, content_type: &str) {
        self.inner.media.lock().unwrap().insert(
            id.to_string(),
            MockMedia::Bytes {
                bytes,
                content_type: content_type.to_string(),
            },
        );
    }

    /// A video: `media/get` answers `{"video_url"}` pointing at these bytes.
    pub fn add_video(&self, id: &str, bytes: Vec<u8>) {
        self.inner
            .media
            .lock()
            .unwrap()
            .insert(id.to_string(), MockMedia::Video { bytes });
    }

    /// A person, for OAuth (unknown openids get a generated name).
    pub fn add_user(&self, openid: &str, nickname: &str, unionid: Option<&str>) {
        self.inner.users.lock().unwrap().insert(
            openid.to_string(),
            MockUser {
                nickname: nickname.to_string(),
                unionid: unionid.map(str::to_string),
            },
        );
    }

    pub fn user(&self, openid: &str) -> Option<MockUser> {
        self.inner.users.lock().unwrap().get(openid).cloned()
    }

    /// The next `n` requests to `path` ("*" for any) answer HTTP 500.
    pub fn fail_next(&self, path: &str, n: u32) {
        self.inner
            .faults
            .lock()
            .unwrap()
            .http_500
            .insert(path.to_string(), n);
    }

    /// The next `n` requests to `path` ("*" for any) answer errcode -1 (system busy).
    pub fn busy_next(&self, path: &str, n: u32) {
        self.inner
            .faults
            .lock()
            .unwrap()
            .busy
            .insert(path.to_string(), n);
    }

    /// The next call that presents an access_token gets errcode 40001, and every token issued so far is
    /// revoked (as when another server fetched a new one).
    pub fn reject_token_once(&self) {
        self.inner.faults.lock().unwrap().reject_token_once = true;
    }

    /// Answer requests to `path` ("*" for any) only after `d`.
    pub fn set_delay(&self, path: &str, d: Duration) {
        self.inner
            .faults
            .lock()
            .unwrap()
            .delay
            .insert(path.to_string(), d);
    }

    /// Answer `media/get` for this media id only after `d` (zero: no delay).
    pub fn set_media_delay(&self, media_id: &str, d: Duration) {
        self.inner
            .faults
            .lock()
            .unwrap()
            .media_delay
            .insert(media_id.to_string(), d);
    }

    /// Override the QR lifetime the platform grants (to exercise renewal quickly).
    pub fn set_qr_expire(&self, seconds: Option<u64>) {
        *self.inner.qr_expire_override.lock().unwrap() = seconds;
    }

    /// `expires_in` of the tokens handed out from now on.
    pub fn set_token_expires_in(&self, seconds: u64) {
        self.inner.token_expires_in.store(seconds, Ordering::SeqCst);
    }

    /// Requests seen per path (counted before faults are applied).
    pub fn count(&self, path: &str) -> u64 {
        self.inner
            .counters
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// `media/get` requests per media id.
    pub fn media_count(&self, media_id: &str) -> u64 {
        self.inner
            .media_counters
            .lock()
            .unwrap()
            .get(media_id)
            .copied()
            .unwrap_or(0)
    }

    /// Scenes of the parametric QR codes created so far.
    pub fn qr_scenes(&self) -> Vec<String> {
        self.inner.qr_scenes.lock().unwrap().clone()
    }

    /// Bodies posted to `message/custom/send`.
    pub fn sent_messages(&self) -> Vec<Value> {
        self.inner.sent.lock().unwrap().clone()
    }
}

fn take_fault(map: &mut HashMap<String, u32>, path: &str) -> bool {
    for key in [path, "*"] {
        if let Some(n) = map.get_mut(key) {
            if *n > 0 {
                *n -= 1;
                return true;
            }
        }
    }
    false
}

/// Count, delay, and inject 500 / busy before the handlers run.
async fn faults(State(inner): State<Arc<Inner>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    *inner
        .counters
        .lock()
        .unwrap()
        .entry(path.clone())
        .or_default() += 1;
    let (delay, fail, busy) = {
        let mut f = inner.faults.lock().unwrap();
        let delay = f.delay.get(&path).or_else(|| f.delay.get("*")).copied();
        let fail = take_fault(&mut f.http_500, &path);
        let busy = !fail && take_fault(&mut f.busy, &path);
        (delay, fail, busy)
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    if fail {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body><h1>500 Internal Server Error</h1></body></html>",
        )
            .into_response();
    }
    if busy {
        return answer(err_json(-1, "system error"), "text/plain");
    }
    next.run(req).await
}

/// Is this access_token valid now (consuming a pending 40001 fault)?
fn token_ok(inner: &Inner, token: Option<&String>) -> bool {
    {
        let mut f = inner.faults.lock().unwrap();
        if f.reject_token_once {
            f.reject_token_once = false;
            inner.tokens.lock().unwrap().clear();
            *inner.stable_token.lock().unwrap() = None;
            return false;
        }
    }
    token.is_some_and(|t| inner.tokens.lock().unwrap().contains(t))
}

fn invalid_credential() -> Value {
    err_json(
        40001,
        "invalid credential, access_token is invalid or not latest",
    )
}

fn new_token(inner: &Inner) -> String {
    let n = inner.seq.fetch_add(1, Ordering::SeqCst);
    let r: [u8; 24] = rand::random();
    let t = format!("{n}_{}", hex::encode(r));
    inner.tokens.lock().unwrap().insert(t.clone());
    t
}

fn check_app(inner: &Inner, appid: Option<&String>, secret: Option<&String>) -> Option<Value> {
    if appid.map(String::as_str) != Some(inner.app_id.as_str()) {
        return Some(err_json(40013, "invalid appid"));
    }
    if secret.map(String::as_str) != Some(inner.secret.as_str()) {
        return Some(err_json(40125, "invalid appsecret"));
    }
    None
}

async fn token(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if q.get("grant_type").map(String::as_str) != Some("client_credential") {
        return json_ok(err_json(40002, "invalid grant_type"));
    }
    if let Some(e) = check_app(&inner, q.get("appid"), q.get("secret")) {
        return json_ok(e);
    }
    json_ok(json!({
        "access_token": new_token(&inner),
        "expires_in": inner.token_expires_in.load(Ordering::SeqCst),
    }))
}

async fn stable_token(State(inner): State<Arc<Inner>>, Json(body): Json<Value>) -> Response {
    let s = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    if s("grant_type").as_deref() != Some("client_credential") {
        return json_ok(err_json(40002, "invalid grant_type"));
    }
    if let Some(e) = check_app(&inner, s("appid").as_ref(), s("secret").as_ref()) {
        return json_ok(e);
    }
    let force = body
        .get("force_refresh")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut cur = inner.stable_token.lock().unwrap();
    let valid = cur
        .as_ref()
        .is_some_and(|t| inner.tokens.lock().unwrap().contains(t));
    if force || !valid {
        *cur = Some(new_token(&inner));
    }
    json_ok(json!({
        "access_token": cur.clone().unwrap_or_default(),
        "expires_in": inner.token_expires_in.load(Ordering::SeqCst),
    }))
}

async fn media_get(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let id = q.get("media_id").cloned().unwrap_or_default();
    *inner
        .media_counters
        .lock()
        .unwrap()
        .entry(id.clone())
        .or_default() += 1;
    let delay = inner.faults.lock().unwrap().media_delay.get(&id).copied();
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    // Errors come as JSON with text/plain, as observed on the real platform.
    if !token_ok(&inner, q.get("access_token")) {
        return answer(invalid_credential(), "text/plain");
    }
    let media = inner.media.lock().unwrap().get(&id).cloned();
    match media {
        None => answer(
            json!({"errcode": 40007, "errmsg": format!("invalid media_id hint: [{}] rid: {}", rid(), rid())}),
            "text/plain",
        ),
        Some(MockMedia::Bytes {
            bytes,
            content_type,
        }) => {
            let ext = match content_type.as_str() {
                "audio/amr" => "amr",
                "image/jpeg" => "jpg",
                "image/png" => "png",
                _ => "bin",
            };
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, content_type),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{id}.{ext}\""),
                    ),
                    (
                        header::CACHE_CONTROL,
                        "no-cache, must-revalidate".to_string(),
                    ),
                ],
                bytes,
            )
                .into_response()
        }
        Some(MockMedia::Video { .. }) => json_ok(json!({
            "video_url": format!("{}/mock/video/{id}", inner.base)
        })),
    }
}

async fn video(State(inner): State<Arc<Inner>>, Path(id): Path<String>) -> Response {
    match inner.media.lock().unwrap().get(&id) {
        Some(MockMedia::Video { bytes }) => {
            ([(header::CONTENT_TYPE, "video/mp4")], bytes.clone()).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The checks every JSON POST of the platform makes first: a valid access_token, then a JSON body.
fn authed_json(inner: &Inner, q: &HashMap<String, String>, body: &str) -> Result<Value, Value> {
    if !token_ok(inner, q.get("access_token")) {
        return Err(invalid_credential());
    }
    serde_json::from_str::<Value>(body).map_err(|_| err_json(47001, "data format error"))
}

async fn qrcode_create(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    let body = match authed_json(&inner, &q, &body) {
        Ok(v) => v,
        Err(e) => return json_ok(e),
    };
    let action = body
        .get("action_name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let scene = body.pointer("/action_info/scene");
    let scene_str = match action {
        "QR_STR_SCENE" | "QR_LIMIT_STR_SCENE" => scene
            .and_then(|s| s.get("scene_str"))
            .and_then(Value::as_str)
            .map(str::to_string),
        "QR_SCENE" | "QR_LIMIT_SCENE" => scene
            .and_then(|s| s.get("scene_id"))
            .and_then(Value::as_u64)
            .map(|n| n.to_string()),
        _ => return json_ok(err_json(40097, "invalid args")),
    };
    // Without action_info.scene the real platform issues a code whose EventKey is qrscene_0.
    let scene_str = scene_str.unwrap_or_else(|| "0".to_string());
    if scene_str.is_empty() || scene_str.len() > 64 {
        return json_ok(err_json(40097, "invalid args"));
    }
    inner.qr_scenes.lock().unwrap().push(scene_str);
    let permanent = action.starts_with("QR_LIMIT");
    let requested = body
        .get("expire_seconds")
        .and_then(Value::as_u64)
        .unwrap_or(60);
    let expire = inner
        .qr_expire_override
        .lock()
        .unwrap()
        .unwrap_or(requested.min(2_592_000));
    let n = inner.seq.fetch_add(1, Ordering::SeqCst);
    let code: String = {
        let r: [u8; 11] = rand::random();
        let mut s = base64_url(&r);
        s.truncate(22);
        format!("{s}{n}")
    };
    let url = format!("http://weixin.qq.com/q/{code}");
    let ticket = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("gQH47joAAAAAAAAAASx{url}"))
    };
    if permanent {
        json_ok(json!({"ticket": ticket, "url": url}))
    } else {
        json_ok(json!({"ticket": ticket, "expire_seconds": expire, "url": url}))
    }
}

fn base64_url(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

async fn custom_send(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    let v = match authed_json(&inner, &q, &body) {
        Ok(v) => v,
        Err(e) => return json_ok(e),
    };
    if v.get("touser").and_then(Value::as_str).is_none() {
        return json_ok(err_json(40003, "invalid openid"));
    }
    inner.sent.lock().unwrap().push(v);
    json_ok(json!({"errcode": 0, "errmsg": "ok"}))
}

/// `GET /cgi-bin/user/info?access_token&openid&lang`: a follower, in the shape of the fixtures'
/// `response_current` (every openid follows; `unionid` only for people added with one).
async fn user_info(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !token_ok(&inner, q.get("access_token")) {
        return json_ok(invalid_credential());
    }
    let Some(openid) = q.get("openid").filter(|o| !o.is_empty()) else {
        return json_ok(err_json(40003, "invalid openid"));
    };
    let mut v = json!({
        "subscribe": 1,
        "openid": openid,
        "language": "zh_CN",
        "subscribe_time": 1_700_000_000u64,
        "remark": "",
        "groupid": 0,
        "tagid_list": [],
        "subscribe_scene": "ADD_SCENE_QR_CODE",
        "qr_scene": 0,
        "qr_scene_str": "",
    });
    if let Some(u) = inner
        .users
        .lock()
        .unwrap()
        .get(openid)
        .and_then(|u| u.unionid.clone())
    {
        v["unionid"] = json!(u);
    }
    json_ok(v)
}

/// Auto-approves: redirects to `redirect_uri?code=…&state=…` for the person named by `x-mock-openid`
/// (a fresh person when absent).
async fn authorize(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let page = |msg: &str| {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            format!("<html><body><p>{msg}</p></body></html>"),
        )
            .into_response()
    };
    if q.get("appid").map(String::as_str) != Some(inner.app_id.as_str()) {
        return page("appid 参数错误");
    }
    if q.get("response_type").map(String::as_str) != Some("code") {
        return page("response_type 参数错误");
    }
    if !matches!(
        q.get("scope").map(String::as_str),
        Some("snsapi_userinfo") | Some("snsapi_base")
    ) {
        return page("scope 参数错误或没有 scope 权限");
    }
    let Some(redirect) = q
        .get("redirect_uri")
        .and_then(|u| reqwest::Url::parse(u).ok())
    else {
        return page("redirect_uri 参数错误");
    };
    let openid = headers
        .get(OPENID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| format!("o{}", base64_url(&rand::random::<[u8; 20]>())));
    let code = hex::encode(rand::random::<[u8; 16]>());
    inner.codes.lock().unwrap().insert(code.clone(), openid);
    let mut target = redirect;
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", q.get("state").map(String::as_str).unwrap_or(""));
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}

fn ensure_user(inner: &Inner, openid: &str) -> MockUser {
    inner
        .users
        .lock()
        .unwrap()
        .entry(openid.to_string())
        .or_insert_with(|| MockUser {
            nickname: generated_name(openid),
            unionid: None,
        })
        .clone()
}

async fn oauth_token(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(e) = check_app(&inner, q.get("appid"), q.get("secret")) {
        return json_ok(e);
    }
    if q.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return json_ok(err_json(40002, "invalid grant_type"));
    }
    let code = q.get("code").cloned().unwrap_or_default();
    if inner.used_codes.lock().unwrap().contains(&code) {
        return json_ok(err_json(40163, "code been used"));
    }
    let Some(openid) = inner.codes.lock().unwrap().remove(&code) else {
        return json_ok(err_json(40029, "invalid code"));
    };
    inner.used_codes.lock().unwrap().insert(code);
    let user = ensure_user(&inner, &openid);
    let token = format!("web_{}", hex::encode(rand::random::<[u8; 20]>()));
    inner
        .web_tokens
        .lock()
        .unwrap()
        .insert(token.clone(), openid.clone());
    let mut v = json!({
        "access_token": token,
        "expires_in": 7200,
        "refresh_token": format!("refresh_{}", hex::encode(rand::random::<[u8; 20]>())),
        "openid": openid,
        "scope": "snsapi_userinfo",
        "is_snapshotuser": 0,
    });
    if let Some(u) = user.unionid {
        v["unionid"] = json!(u);
    }
    json_ok(v)
}

async fn userinfo(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let token = q.get("access_token").cloned().unwrap_or_default();
    let openid = q.get("openid").cloned().unwrap_or_default();
    let owner = inner.web_tokens.lock().unwrap().get(&token).cloned();
    if owner.as_deref() != Some(openid.as_str()) {
        return json_ok(err_json(
            40001,
            "invalid credential, access_token is invalid or not latest",
        ));
    }
    let user = ensure_user(&inner, &openid);
    let mut v = json!({
        "openid": openid,
        "nickname": user.nickname,
        "sex": 0,
        "province": "",
        "city": "",
        "country": "",
        "headimgurl": format!("{}/mmopen/{openid}/132", inner.base),
        "privilege": [],
    });
    if let Some(u) = user.unionid {
        v["unionid"] = json!(u);
    }
    json_ok(v)
}

async fn avatar(Path((openid, _size)): Path<(String, String)>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "max-age=86400"),
        ],
        Body::from(avatar_png(&openid)),
    )
        .into_response()
}

fn fnv(s: &str) -> u32 {
    s.bytes()
        .fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619))
}

/// A friendly generated nickname for a simulated person.
pub fn generated_name(openid: &str) -> String {
    const NAMES: [&str; 16] = [
        "小明",
        "Alice",
        "王芳",
        "Bob",
        "李雷",
        "Chen Wei",
        "韩梅梅",
        "Dana",
        "张伟",
        "Eve",
        "刘洋",
        "Frank",
        "赵静",
        "Grace",
        "陈晨",
        "Hiro",
    ];
    let h = fnv(openid);
    format!(
        "{}{}",
        NAMES[(h % 16) as usize],
        if h & 3 == 0 { "🎤" } else { "" }
    )
}

/// A 132×132 PNG identicon for a simulated person (deterministic per openid).
pub fn avatar_png(openid: &str) -> Vec<u8> {
    let h = fnv(openid);
    let hue = (h % 360) as f32;
    let (r, g, b) = hsl_to_rgb(hue, 0.6, 0.5);
    let bg = image::Rgb([240u8, 240, 240]);
    let fg = image::Rgb([r, g, b]);
    let bits = fnv(&format!("{openid}#bits"));
    let img = image::RgbImage::from_fn(132, 132, |x, y| {
        let (cx, cy) = (x as i32 - 6, y as i32 - 6);
        if !(0..120).contains(&cx) || !(0..120).contains(&cy) {
            return bg;
        }
        let (col, row) = ((cx / 24) as u32, (cy / 24) as u32);
        let col = if col > 2 { 4 - col } else { col };
        if bits >> (row * 3 + col) & 1 == 1 {
            fg
        } else {
            bg
        }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("PNG encoding into memory");
    out.into_inner()
}

fn hsl_to_rgb(h: f32, s: f32, l: f32) -> (u8, u8, u8) {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let x = c * (1.0 - ((h / 60.0) % 2.0 - 1.0).abs());
    let m = l - c / 2.0;
    let (r, g, b) = match h as u32 {
        0..=59 => (c, x, 0.0),
        60..=119 => (x, c, 0.0),
        120..=179 => (0.0, c, x),
        180..=239 => (0.0, x, c),
        240..=299 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let f = |v: f32| ((v + m) * 255.0).round() as u8;
    (f(r), f(g), f(b))
}

// ---- the pushing side ----------------------------------------------------------------------------

/// How the account is configured to push.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushMode {
    Plaintext,
    /// Plaintext fields and `Encrypt` side by side, `encrypt_type=aes`.
    Compatible,
    /// Only `ToUserName` and `Encrypt`, `encrypt_type=aes`.
    Safe,
}

/// What the platform needs to sign pushes for one account.
#[derive(Clone)]
pub struct Pusher {
    pub token: String,
    pub crypt: Option<MsgCrypt>,
    pub original_id: String,
}

impl Pusher {
    pub fn new(
        token: &str,
        encoding_aes_key: Option<&str>,
        app_id: &str,
        original_id: &str,
    ) -> Self {
        Self {
            token: token.to_string(),
            crypt: encoding_aes_key
                .map(|k| MsgCrypt::new(k, app_id).expect("43-char EncodingAESKey")),
            original_id: original_id.to_string(),
        }
    }

    /// The query string and body the platform would send for `xml` (timestamp = now).
    pub fn sign(&self, xml: &str, mode: PushMode) -> (String, String) {
        let ts = (voicewall_core::domain::now_ms() / 1000).to_string();
        // A decimal nonce as WeChat sends; ten digits, so that two pushes signed in the same second at
        // the ack bench's 12,000 a second almost never share one (the kiosk refuses a reused
        // timestamp + nonce with another body as a replay: with nine digits the bench met about one
        // such collision per run).
        let nonce = (rand::random::<u64>() % 10_000_000_000).to_string();
        let signature = crypto::signature(&[&self.token, &ts, &nonce]);
        let openid = extract(xml, "FromUserName").unwrap_or_default();
        match mode {
            PushMode::Plaintext => (
                format!("signature={signature}&timestamp={ts}&nonce={nonce}&openid={openid}"),
                xml.to_string(),
            ),
            PushMode::Compatible | PushMode::Safe => {
                let crypt = self
                    .crypt
                    .as_ref()
                    .expect("safe mode needs an EncodingAESKey");
                let encrypt = crypt.seal(xml);
                let msg_signature = crypto::signature(&[&self.token, &ts, &nonce, &encrypt]);
                let body = if mode == PushMode::Safe {
                    format!(
                        "<xml>\n    <ToUserName><![CDATA[{}]]></ToUserName>\n    <Encrypt><![CDATA[{encrypt}]]></Encrypt>\n</xml>",
                        self.original_id
                    )
                } else {
                    let trimmed = xml.trim_end();
                    let inner = trimmed.strip_suffix("</xml>").unwrap_or(trimmed);
                    format!("{inner}<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
                };
                (
                    format!("signature={signature}&timestamp={ts}&nonce={nonce}&openid={openid}&encrypt_type=aes&msg_signature={msg_signature}"),
                    body,
                )
            }
        }
    }

    /// Sign and POST a push to `webhook` (e.g. `http://127.0.0.1:8787/webhook/wechat/demo`).
    pub async fn deliver(
        &self,
        client: &reqwest::Client,
        webhook: &str,
        xml: &str,
        mode: PushMode,
    ) -> reqwest::Result<reqwest::Response> {
        let (query, body) = self.sign(xml, mode);
        client
            .post(format!("{webhook}?{query}"))
            .header(header::CONTENT_TYPE, "text/xml")
            .body(body)
            .send()
            .await
    }

    /// Open a safe-mode reply envelope: (checks MsgSignature) the decrypted reply XML.
    pub fn open_reply(&self, envelope: &str) -> Option<String> {
        let crypt = self.crypt.as_ref()?;
        let f = voicewall_core::providers::wechat::xml::fields(envelope).ok()?;
        let (enc, sig, ts, nonce) = (
            f.get("Encrypt")?,
            f.get("MsgSignature")?,
            f.get("TimeStamp")?,
            f.get("Nonce")?,
        );
        if crypto::signature(&[&self.token, ts, nonce, enc]) != *sig {
            return None;
        }
        let opened = crypt.open(enc).ok()?;
        (opened.receive_id == crypt.receive_id()).then_some(opened.msg)
    }
}

fn extract(xml: &str, field: &str) -> Option<String> {
    voicewall_core::providers::wechat::xml::fields(xml)
        .ok()?
        .remove(field)
}

/// A voice push body, as the platform sends it.
pub fn voice_xml(
    to: &str,
    from: &str,
    create_time: u64,
    media_id: &str,
    msg_id: u64,
    recognition: &str,
) -> String {
    format!("<xml><ToUserName><![CDATA[{to}]]></ToUserName>\n<FromUserName><![CDATA[{from}]]></FromUserName>\n<CreateTime>{create_time}</CreateTime>\n<MsgType><![CDATA[voice]]></MsgType>\n<MediaId><![CDATA[{media_id}]]></MediaId>\n<Format><![CDATA[amr]]></Format>\n<MsgId>{msg_id}</MsgId>\n<Recognition><![CDATA[{recognition}]]></Recognition>\n</xml>")
}

/// A text push body.
pub fn text_xml(to: &str, from: &str, create_time: u64, content: &str, msg_id: u64) -> String {
    format!("<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{from}]]></FromUserName><CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>")
}

/// A follow through a parametric QR (`EventKey` = "qrscene_" + scene), or a plain follow.
pub fn subscribe_xml(to: &str, from: &str, create_time: u64, scene: Option<&str>) -> String {
    let key = scene
        .map(|s| {
            format!(
                "<EventKey><![CDATA[qrscene_{s}]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket>"
            )
        })
        .unwrap_or_default();
    format!("<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{from}]]></FromUserName><CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event>{key}</xml>")
}

/// An existing follower scanning a parametric QR (`EventKey` = the scene).
pub fn scan_xml(to: &str, from: &str, create_time: u64, scene: &str) -> String {
    format!("<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{from}]]></FromUserName><CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[SCAN]]></Event><EventKey><![CDATA[{scene}]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket></xml>")
}
