//! A SIMULATOR of someone else's platform: a mock Telegram Bot API server (api.telegram.org) as a real
//! axum HTTP server on 127.0.0.1. It is not Telegram and talks to no network. The tests use it, and so
//! does the clearly labelled `voicewall demo`.
//!
//! It follows the Bot API shapes of `tests/fixtures/telegram/api_samples.json` and `updates.json`, and
//! deliberately shares no code with the provider it tests:
//! - methods at `/bot<token>/<method>` (GET or POST; parameters in the query string, an
//!   `application/x-www-form-urlencoded` body or a JSON body; method names case-insensitive): `getMe`,
//!   `getFile`, `getChat`, `getUserProfilePhotos`, `sendMessage`, `setWebhook`, `deleteWebhook`,
//!   `getWebhookInfo`; answers in the envelope `{ok, result}` / `{ok:false, error_code, description}`;
//!   a wrong token → 401 `Unauthorized`, an unknown method → 404 `Not Found`;
//! - files at `/file/bot<token>/<file_path>`, served as `application/octet-stream` (the MIME type is
//!   the message's, not the file server's); getFile refuses files above 20 MB (`file is too big`);
//! - fault injection per method (`file` for downloads): 429 with `parameters.retry_after`, 502 Bad
//!   Gateway (an HTML page, as Telegram's front answers); counters and arrival times per method;
//! - the pushing side: update builders (ids start just below 2^32, so a run crosses it) and `deliver`,
//!   which POSTs an update to a webhook with `X-Telegram-Bot-Api-Secret-Token`.
//!
//! Not modelled: multipart uploads, sending media, inline keyboards and every other method, the
//! webhook's own retry schedule, `max_connections`, `drop_pending_updates`, `getUpdates`, certificates,
//! flood limits other than the injected 429s, and file links expiring after an hour.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The header Telegram sends the webhook's secret in.
pub const SECRET_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";
/// Bots may download files up to 20 MB.
pub const MAX_DOWNLOAD_BYTES: u64 = 20 * 1024 * 1024;
/// The first update id handed out: a few below 2^32, so every run crosses it.
pub const FIRST_UPDATE_ID: i64 = (1 << 32) - 3;

/// A person on Telegram.
#[derive(Clone, Debug, PartialEq)]
pub struct MockUser {
    pub id: i64,
    pub first_name: String,
    pub last_name: Option<String>,
    pub username: Option<String>,
}

impl MockUser {
    pub fn new(id: i64, first_name: &str) -> Self {
        Self {
            id,
            first_name: first_name.into(),
            last_name: None,
            username: None,
        }
    }

    pub fn last(mut self, last_name: &str) -> Self {
        self.last_name = Some(last_name.into());
        self
    }

    pub fn username(mut self, username: &str) -> Self {
        self.username = Some(username.into());
        self
    }

    /// The `User` object.
    pub fn json(&self) -> Value {
        let mut v = json!({"id": self.id, "is_bot": false, "first_name": self.first_name, "language_code": "en"});
        if let Some(l) = &self.last_name {
            v["last_name"] = l.as_str().into();
        }
        if let Some(u) = &self.username {
            v["username"] = u.as_str().into();
        }
        v
    }

    /// The private `Chat` with this person.
    pub fn chat_json(&self) -> Value {
        let mut v = json!({"id": self.id, "first_name": self.first_name, "type": "private"});
        if let Some(l) = &self.last_name {
            v["last_name"] = l.as_str().into();
        }
        if let Some(u) = &self.username {
            v["username"] = u.as_str().into();
        }
        v
    }
}

/// Where a kind of file lives on Telegram's file server.
#[derive(Clone, Copy, Debug)]
pub enum FileKind {
    Voice,
    Audio,
    VideoNote,
    Photo,
}

impl FileKind {
    fn dir_ext(self) -> (&'static str, &'static str) {
        match self {
            FileKind::Voice => ("voice", "oga"),
            FileKind::Audio => ("music", "mp3"),
            FileKind::VideoNote => ("video_notes", "mp4"),
            FileKind::Photo => ("photos", "jpg"),
        }
    }
}

/// A file held by the mock.
#[derive(Clone, Debug)]
pub struct MockFile {
    pub file_id: String,
    pub file_unique_id: String,
    pub file_path: String,
    /// The size getFile reports (the bytes' length, unless declared bigger to test the cap).
    pub file_size: u64,
}

/// A file and its bytes (shared: downloads clone the `Arc`, not the bytes).
struct StoredFile {
    file: MockFile,
    bytes: Arc<Vec<u8>>,
}

/// What `setWebhook` recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookInfo {
    pub url: String,
    pub secret_token: Option<String>,
    pub allowed_updates: Option<Vec<String>>,
}

#[derive(Default)]
struct Faults {
    rate_limited: HashMap<String, (u32, u64)>,
    bad_gateway: HashMap<String, u32>,
}

struct Inner {
    token: String,
    bot_id: i64,
    bot_username: String,
    base: String,
    seq: AtomicI64,
    update_id: AtomicI64,
    message_id: AtomicI64,
    files: Mutex<HashMap<String, StoredFile>>,
    users: Mutex<HashMap<i64, MockUser>>,
    photos: Mutex<HashMap<i64, Vec<Vec<MockFile>>>>,
    blocked: Mutex<Vec<i64>>,
    webhook: Mutex<Option<WebhookInfo>>,
    sent: Mutex<Vec<Value>>,
    calls: Mutex<HashMap<String, Vec<Instant>>>,
    downloads: Mutex<HashMap<String, u64>>,
    faults: Mutex<Faults>,
}

/// The running mock; stops when dropped.
pub struct MockTelegram {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockTelegram {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Telegram-looking ids: URL-safe base64 characters.
fn random_id(prefix: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let tail: String = (0..len)
        .map(|_| ALPHABET[rand::random::<usize>() % ALPHABET.len()] as char)
        .collect();
    format!("{prefix}{tail}")
}

fn envelope_ok(result: Value) -> Response {
    answer(StatusCode::OK, json!({"ok": true, "result": result}))
}

fn envelope_err(code: u16, description: &str) -> Response {
    answer(
        StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
        json!({"ok": false, "error_code": code, "description": description}),
    )
}

fn answer(status: StatusCode, v: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

impl MockTelegram {
    /// Start on a fresh loopback port for the bot `token` (`<id>:<secret>`) named `bot_username`.
    pub async fn start(token: &str, bot_username: &str) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        Self::serve(listener, token, bot_username)
    }

    /// Start on a listener bound earlier.
    pub fn start_on(
        listener: std::net::TcpListener,
        token: &str,
        bot_username: &str,
    ) -> std::io::Result<Self> {
        listener.set_nonblocking(true)?;
        Self::serve(
            tokio::net::TcpListener::from_std(listener)?,
            token,
            bot_username,
        )
    }

    fn serve(
        listener: tokio::net::TcpListener,
        token: &str,
        bot_username: &str,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let bot_id = token
            .split(':')
            .next()
            .and_then(|id| id.parse().ok())
            .unwrap_or(1);
        let inner = Arc::new(Inner {
            token: token.to_string(),
            bot_id,
            bot_username: bot_username.to_string(),
            base: format!("http://{addr}"),
            seq: AtomicI64::new(1),
            update_id: AtomicI64::new(FIRST_UPDATE_ID),
            message_id: AtomicI64::new(100),
            files: Mutex::default(),
            users: Mutex::default(),
            photos: Mutex::default(),
            blocked: Mutex::default(),
            webhook: Mutex::default(),
            sent: Mutex::default(),
            calls: Mutex::default(),
            downloads: Mutex::default(),
            faults: Mutex::default(),
        });
        let app = Router::new()
            .route("/file/{bot}/{*path}", get(download))
            .route("/{bot}/{method}", any(method))
            .with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, inner, task })
    }

    /// `http://127.0.0.1:PORT`: the provider's `api_base`.
    pub fn base_url(&self) -> String {
        self.inner.base.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A person who has started the bot (getChat and sendMessage know them).
    pub fn add_user(&self, user: &MockUser) {
        self.inner
            .users
            .lock()
            .unwrap()
            .insert(user.id, user.clone());
    }

    /// The person blocked the bot: sendMessage to them answers 403.
    pub fn block(&self, user_id: i64) {
        self.inner.blocked.lock().unwrap().push(user_id);
    }

    /// Hold a file; getFile reports its real size.
    pub fn add_file(&self, kind: FileKind, bytes: Vec<u8>) -> MockFile {
        let size = bytes.len() as u64;
        self.add_file_declared(kind, bytes, size)
    }

    /// Hold a file whose size getFile reports as `declared` (to exercise the 20 MB cap without
    /// holding 20 MB; a download then serves the bytes given).
    pub fn add_file_declared(&self, kind: FileKind, bytes: Vec<u8>, declared: u64) -> MockFile {
        let n = self.inner.seq.fetch_add(1, Ordering::SeqCst);
        let (dir, ext) = kind.dir_ext();
        let file = MockFile {
            file_id: random_id("AwACAgQAAxkBAA", 58),
            file_unique_id: random_id("AgAD", 11),
            file_path: format!("{dir}/file_{n}.{ext}"),
            file_size: declared,
        };
        self.inner.files.lock().unwrap().insert(
            file.file_id.clone(),
            StoredFile {
                file: file.clone(),
                bytes: Arc::new(bytes),
            },
        );
        file
    }

    /// Give a person a profile photo: three sizes (160, 320, 640), each served with these bytes.
    pub fn set_profile_photo(&self, user_id: i64, jpeg: Vec<u8>) {
        let sizes = (0..3)
            .map(|_| self.add_file(FileKind::Photo, jpeg.clone()))
            .collect();
        self.inner
            .photos
            .lock()
            .unwrap()
            .insert(user_id, vec![sizes]);
    }

    /// The next `n` calls of `method` (`file` for downloads) answer 429 with `retry_after`.
    pub fn rate_limit_next(&self, method: &str, n: u32, retry_after: u64) {
        self.inner
            .faults
            .lock()
            .unwrap()
            .rate_limited
            .insert(method.to_ascii_lowercase(), (n, retry_after));
    }

    /// The next `n` calls of `method` (`file` for downloads) answer 502 Bad Gateway.
    pub fn bad_gateway_next(&self, method: &str, n: u32) {
        self.inner
            .faults
            .lock()
            .unwrap()
            .bad_gateway
            .insert(method.to_ascii_lowercase(), n);
    }

    /// Calls of `method` so far (`file` for downloads), faults included.
    pub fn count(&self, method: &str) -> usize {
        self.call_times(method).len()
    }

    /// When each call of `method` arrived.
    pub fn call_times(&self, method: &str) -> Vec<Instant> {
        self.inner
            .calls
            .lock()
            .unwrap()
            .get(&method.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default()
    }

    /// Downloads of one file (by file_path) that were served.
    pub fn downloads(&self, file_path: &str) -> u64 {
        self.inner
            .downloads
            .lock()
            .unwrap()
            .get(file_path)
            .copied()
            .unwrap_or(0)
    }

    /// The `sendMessage` parameters received, in order.
    pub fn sent_messages(&self) -> Vec<Value> {
        self.inner.sent.lock().unwrap().clone()
    }

    /// What `setWebhook` last set.
    pub fn webhook(&self) -> Option<WebhookInfo> {
        self.inner.webhook.lock().unwrap().clone()
    }

    // The pushing side: updates as Telegram sends them.

    fn message(&self, from: &MockUser) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(
            "message_id".into(),
            self.inner.message_id.fetch_add(1, Ordering::SeqCst).into(),
        );
        m.insert("from".into(), from.json());
        m.insert("chat".into(), from.chat_json());
        m.insert("date".into(), now_s().into());
        m
    }

    fn update(&self, kind: &str, body: Map<String, Value>) -> Value {
        json!({
            "update_id": self.inner.update_id.fetch_add(1, Ordering::SeqCst),
            kind: Value::Object(body),
        })
    }

    /// What the bot receives when a person opens `https://t.me/<bot>?start=<payload>` and taps Start.
    pub fn start_update(&self, from: &MockUser, payload: &str) -> Value {
        let mut m = self.message(from);
        let text = if payload.is_empty() {
            "/start".to_string()
        } else {
            format!("/start {payload}")
        };
        m.insert("text".into(), text.into());
        m.insert(
            "entities".into(),
            json!([{"offset": 0, "length": 6, "type": "bot_command"}]),
        );
        self.update("message", m)
    }

    pub fn text_update(&self, from: &MockUser, text: &str) -> Value {
        let mut m = self.message(from);
        m.insert("text".into(), text.into());
        self.update("message", m)
    }

    /// A voice note (`duration` in seconds, as the sender's client states it).
    pub fn voice_update(&self, from: &MockUser, file: &MockFile, duration: u64) -> Value {
        let mut m = self.message(from);
        m.insert(
            "voice".into(),
            json!({"duration": duration, "mime_type": "audio/ogg", "file_id": file.file_id, "file_unique_id": file.file_unique_id, "file_size": file.file_size}),
        );
        self.update("message", m)
    }

    pub fn audio_update(
        &self,
        from: &MockUser,
        file: &MockFile,
        duration: u64,
        mime_type: &str,
    ) -> Value {
        let mut m = self.message(from);
        m.insert(
            "audio".into(),
            json!({"duration": duration, "file_name": file.file_path.rsplit('/').next(), "mime_type": mime_type, "file_id": file.file_id, "file_unique_id": file.file_unique_id, "file_size": file.file_size}),
        );
        self.update("message", m)
    }

    /// A round video message: no mime_type in the object.
    pub fn video_note_update(&self, from: &MockUser, file: &MockFile, duration: u64) -> Value {
        let mut m = self.message(from);
        m.insert(
            "video_note".into(),
            json!({"duration": duration, "length": 240, "file_id": file.file_id, "file_unique_id": file.file_unique_id, "file_size": file.file_size}),
        );
        self.update("message", m)
    }

    /// An edit of an earlier text (a kind the wall does not take).
    pub fn edited_message_update(&self, from: &MockUser, text: &str) -> Value {
        let mut m = self.message(from);
        m.insert("text".into(), text.into());
        m.insert("edit_date".into(), now_s().into());
        self.update("edited_message", m)
    }

    /// POST an update to a webhook as Telegram does (JSON, the secret header when given).
    pub async fn deliver(
        client: &reqwest::Client,
        webhook_url: &str,
        secret: Option<&str>,
        update: &Value,
    ) -> reqwest::Result<reqwest::Response> {
        let mut req = client
            .post(webhook_url)
            .header(header::CONTENT_TYPE, "application/json")
            .body(update.to_string());
        if let Some(s) = secret {
            req = req.header(SECRET_HEADER, s);
        }
        req.send().await
    }
}

/// Count the call and answer an injected fault, if one is due.
fn fault(inner: &Inner, key: &str) -> Option<Response> {
    inner
        .calls
        .lock()
        .unwrap()
        .entry(key.to_string())
        .or_default()
        .push(Instant::now());
    let mut f = inner.faults.lock().unwrap();
    if let Some((n, retry_after)) = f.rate_limited.get_mut(key) {
        if *n > 0 {
            *n -= 1;
            let retry_after = *retry_after;
            return Some(answer(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"ok": false, "error_code": 429, "description": format!("Too Many Requests: retry after {retry_after}"), "parameters": {"retry_after": retry_after}}),
            ));
        }
    }
    if let Some(n) = f.bad_gateway.get_mut(key) {
        if *n > 0 {
            *n -= 1;
            return Some(
                (
                    StatusCode::BAD_GATEWAY,
                    [(header::CONTENT_TYPE, "text/html")],
                    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n",
                )
                    .into_response(),
            );
        }
    }
    None
}

/// The parameters of a call: the query string, then a form or JSON body on top.
fn params(
    query: HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Option<Map<String, Value>> {
    let mut p: Map<String, Value> = query
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    if body.is_empty() {
        return Some(p);
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("application/json") {
        match serde_json::from_slice::<Value>(body).ok()? {
            Value::Object(o) => p.extend(o),
            _ => return None,
        }
    } else if ct.starts_with("application/x-www-form-urlencoded") {
        for (k, v) in form_urlencoded::parse(body) {
            p.insert(k.into_owned(), Value::String(v.into_owned()));
        }
    } else {
        return None;
    }
    Some(p)
}

fn int(p: &Map<String, Value>, key: &str) -> Option<i64> {
    match p.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn string(p: &Map<String, Value>, key: &str) -> Option<String> {
    match p.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

async fn method(
    State(inner): State<Arc<Inner>>,
    Path((bot, method)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if bot.strip_prefix("bot") != Some(inner.token.as_str()) {
        return envelope_err(401, "Unauthorized");
    }
    let method = method.to_ascii_lowercase();
    if let Some(r) = fault(&inner, &method) {
        return r;
    }
    let Some(p) = params(query, &headers, &body) else {
        return envelope_err(400, "Bad Request: invalid request parameters");
    };
    match method.as_str() {
        "getme" => envelope_ok(json!({
            "id": inner.bot_id, "is_bot": true, "first_name": "Voicewall (simulated)",
            "username": inner.bot_username, "can_join_groups": true,
            "can_read_all_group_messages": false, "supports_inline_queries": false,
        })),
        "getfile" => get_file(&inner, &p),
        "getchat" => get_chat(&inner, &p),
        "getuserprofilephotos" => get_user_profile_photos(&inner, &p),
        "sendmessage" => send_message(&inner, &p),
        "setwebhook" => set_webhook(&inner, &p),
        "deletewebhook" => {
            *inner.webhook.lock().unwrap() = None;
            answer(
                StatusCode::OK,
                json!({"ok": true, "result": true, "description": "Webhook was deleted"}),
            )
        }
        "getwebhookinfo" => {
            let w = inner.webhook.lock().unwrap().clone();
            let mut info =
                json!({"url": "", "has_custom_certificate": false, "pending_update_count": 0});
            if let Some(w) = w {
                info["url"] = w.url.into();
                info["max_connections"] = 40.into();
                if let Some(a) = w.allowed_updates {
                    info["allowed_updates"] = a.into();
                }
            }
            envelope_ok(info)
        }
        _ => envelope_err(404, "Not Found"),
    }
}

fn file_json(f: &MockFile) -> Value {
    json!({"file_id": f.file_id, "file_unique_id": f.file_unique_id, "file_size": f.file_size, "file_path": f.file_path})
}

fn get_file(inner: &Inner, p: &Map<String, Value>) -> Response {
    let Some(id) = string(p, "file_id").filter(|s| !s.is_empty()) else {
        return envelope_err(400, "Bad Request: file_id not specified");
    };
    let file = inner.files.lock().unwrap().get(&id).map(|s| s.file.clone());
    match file {
        None => envelope_err(400, "Bad Request: invalid file_id"),
        Some(f) if f.file_size > MAX_DOWNLOAD_BYTES => {
            envelope_err(400, "Bad Request: file is too big")
        }
        Some(f) => envelope_ok(file_json(&f)),
    }
}

fn get_chat(inner: &Inner, p: &Map<String, Value>) -> Response {
    let user = int(p, "chat_id").and_then(|id| inner.users.lock().unwrap().get(&id).cloned());
    match user {
        None => envelope_err(400, "Bad Request: chat not found"),
        Some(u) => {
            let mut chat = u.chat_json();
            chat["accent_color_id"] = 0.into();
            chat["max_reaction_count"] = 11.into();
            envelope_ok(chat)
        }
    }
}

fn get_user_profile_photos(inner: &Inner, p: &Map<String, Value>) -> Response {
    let Some(user_id) = int(p, "user_id") else {
        return envelope_err(400, "Bad Request: user not found");
    };
    if !inner.users.lock().unwrap().contains_key(&user_id) {
        return envelope_err(400, "Bad Request: user not found");
    }
    let offset = int(p, "offset").unwrap_or(0).max(0) as usize;
    let limit = int(p, "limit").unwrap_or(100).clamp(1, 100) as usize;
    let photos = inner
        .photos
        .lock()
        .unwrap()
        .get(&user_id)
        .cloned()
        .unwrap_or_default();
    let widths = [160, 320, 640];
    let page: Vec<Value> = photos
        .iter()
        .skip(offset)
        .take(limit)
        .map(|sizes| {
            Value::Array(
                sizes
                    .iter()
                    .zip(widths)
                    .map(|(f, w)| json!({"file_id": f.file_id, "file_unique_id": f.file_unique_id, "file_size": f.file_size, "width": w, "height": w}))
                    .collect(),
            )
        })
        .collect();
    envelope_ok(json!({"total_count": photos.len(), "photos": page}))
}

fn send_message(inner: &Inner, p: &Map<String, Value>) -> Response {
    let Some(chat_id) = int(p, "chat_id") else {
        return envelope_err(400, "Bad Request: chat not found");
    };
    let Some(user) = inner.users.lock().unwrap().get(&chat_id).cloned() else {
        return envelope_err(400, "Bad Request: chat not found");
    };
    if inner.blocked.lock().unwrap().contains(&chat_id) {
        return envelope_err(403, "Forbidden: bot was blocked by the user");
    }
    let text = string(p, "text").unwrap_or_default();
    if text.trim().is_empty() {
        return envelope_err(400, "Bad Request: message text is empty");
    }
    if text.chars().count() > 4096 {
        return envelope_err(400, "Bad Request: message is too long");
    }
    inner.sent.lock().unwrap().push(Value::Object(p.clone()));
    envelope_ok(json!({
        "message_id": inner.message_id.fetch_add(1, Ordering::SeqCst),
        "from": {"id": inner.bot_id, "is_bot": true, "first_name": "Voicewall (simulated)", "username": inner.bot_username},
        "chat": user.chat_json(),
        "date": now_s(),
        "text": text,
    }))
}

fn set_webhook(inner: &Inner, p: &Map<String, Value>) -> Response {
    let url = string(p, "url").unwrap_or_default();
    if url.is_empty() {
        *inner.webhook.lock().unwrap() = None;
        return answer(
            StatusCode::OK,
            json!({"ok": true, "result": true, "description": "Webhook was deleted"}),
        );
    }
    let Ok(parsed) = reqwest::Url::parse(&url) else {
        return envelope_err(
            400,
            "Bad Request: bad webhook: Failed to resolve host: Name or service not known",
        );
    };
    if parsed.scheme() != "https" {
        return envelope_err(
            400,
            "Bad Request: bad webhook: An HTTPS URL must be provided for webhook",
        );
    }
    if !matches!(parsed.port_or_known_default(), Some(443 | 80 | 88 | 8443)) {
        return envelope_err(
            400,
            "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443",
        );
    }
    let secret = string(p, "secret_token");
    if let Some(s) = &secret {
        let ok = (1..=256).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return envelope_err(
                400,
                "Bad Request: secret token contains unallowed characters",
            );
        }
    }
    // A JSON array, or (form / query) a JSON-serialised one.
    let allowed = match p.get("allowed_updates") {
        None => None,
        Some(Value::Array(a)) => Some(a.clone()),
        Some(Value::String(s)) => match serde_json::from_str::<Vec<Value>>(s) {
            Ok(a) => Some(a),
            Err(_) => {
                return envelope_err(400, "Bad Request: can't parse allowed updates JSON object")
            }
        },
        Some(_) => {
            return envelope_err(400, "Bad Request: can't parse allowed updates JSON object")
        }
    };
    let allowed: Option<Vec<String>> = allowed.map(|a| {
        a.into_iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    });
    let mut cur = inner.webhook.lock().unwrap();
    let same = cur.as_ref().is_some_and(|w| w.url == url);
    let previous_allowed = cur.as_ref().and_then(|w| w.allowed_updates.clone());
    *cur = Some(WebhookInfo {
        url,
        secret_token: secret,
        // Omitted: the previous setting stays.
        allowed_updates: allowed.or(previous_allowed),
    });
    let description = if same {
        "Webhook is already set"
    } else {
        "Webhook was set"
    };
    answer(
        StatusCode::OK,
        json!({"ok": true, "result": true, "description": description}),
    )
}

async fn download(
    State(inner): State<Arc<Inner>>,
    Path((bot, path)): Path<(String, String)>,
) -> Response {
    if bot.strip_prefix("bot") != Some(inner.token.as_str()) {
        return envelope_err(404, "Not Found");
    }
    if let Some(r) = fault(&inner, "file") {
        return r;
    }
    let bytes = inner
        .files
        .lock()
        .unwrap()
        .values()
        .find(|s| s.file.file_path == path)
        .map(|s| s.bytes.clone());
    let Some(bytes) = bytes else {
        return envelope_err(404, "Not Found");
    };
    *inner.downloads.lock().unwrap().entry(path).or_default() += 1;
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/octet-stream")],
        bytes.as_ref().clone(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

    async fn call(mock: &MockTelegram, method: &str, body: Value) -> (u16, Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/bot{TOKEN}/{method}", mock.base_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    #[tokio::test]
    async fn answers_in_the_bot_api_envelope() {
        let mock = MockTelegram::start(TOKEN, "VoicewallBot").await.unwrap();
        let f = mock.add_file(FileKind::Voice, b"OggS....".to_vec());
        let (status, v) = call(&mock, "getFile", json!({"file_id": f.file_id})).await;
        assert_eq!(status, 200);
        assert_eq!(v["ok"], true);
        assert_eq!(v["result"]["file_path"], f.file_path.as_str());
        assert_eq!(v["result"]["file_size"], 8);
        let (status, v) = call(&mock, "getFile", json!({"file_id": "nope"})).await;
        assert_eq!(
            (status, &v["description"]),
            (400, &json!("Bad Request: invalid file_id"))
        );
        // A form body and a case-insensitive method name work too.
        let r = reqwest::Client::new()
            .post(format!("{}/bot{TOKEN}/GETFILE", mock.base_url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("file_id={}", f.file_id))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // A wrong token and an unknown method.
        let r = reqwest::Client::new()
            .post(format!("{}/bot1:wrong/getMe", mock.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let (status, v) = call(&mock, "sendDice", json!({})).await;
        assert_eq!(
            (status, v["description"].as_str()),
            (404, Some("Not Found"))
        );
    }

    #[tokio::test]
    async fn faults_are_injected_and_counted() {
        let mock = MockTelegram::start(TOKEN, "VoicewallBot").await.unwrap();
        mock.rate_limit_next("getFile", 1, 3);
        let (status, v) = call(&mock, "getFile", json!({"file_id": "x"})).await;
        assert_eq!(status, 429);
        assert_eq!(v["parameters"]["retry_after"], 3);
        mock.bad_gateway_next("getFile", 1);
        let r = reqwest::Client::new()
            .post(format!("{}/bot{TOKEN}/getFile", mock.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 502);
        let (status, _) = call(&mock, "getFile", json!({"file_id": "x"})).await;
        assert_eq!(status, 400);
        assert_eq!(mock.count("getFile"), 3);
    }

    #[tokio::test]
    async fn set_webhook_checks_like_telegram() {
        let mock = MockTelegram::start(TOKEN, "VoicewallBot").await.unwrap();
        let (s, _) = call(&mock, "setWebhook", json!({"url": "http://wall.example/x"})).await;
        assert_eq!(s, 400);
        let (s, _) = call(
            &mock,
            "setWebhook",
            json!({"url": "https://wall.example:8787/x"}),
        )
        .await;
        assert_eq!(s, 400);
        let (s, v) = call(
            &mock,
            "setWebhook",
            json!({"url": "https://wall.example/x", "secret_token": "s-1", "allowed_updates": ["message"]}),
        )
        .await;
        assert_eq!(
            (s, v["description"].as_str()),
            (200, Some("Webhook was set"))
        );
        // Omitting allowed_updates keeps the previous setting.
        let (_, v) = call(
            &mock,
            "setWebhook",
            json!({"url": "https://wall.example/x"}),
        )
        .await;
        assert_eq!(v["description"], "Webhook is already set");
        assert_eq!(
            mock.webhook().unwrap().allowed_updates,
            Some(vec!["message".to_string()])
        );
    }

    #[tokio::test]
    async fn update_ids_cross_two_to_the_32() {
        let mock = MockTelegram::start(TOKEN, "VoicewallBot").await.unwrap();
        let u = MockUser::new(7, "Ann");
        let ids: Vec<i64> = (0..5)
            .map(|_| mock.text_update(&u, "hi")["update_id"].as_i64().unwrap())
            .collect();
        assert!(ids[0] < 1 << 32 && ids[4] > 1 << 32, "{ids:?}");
        assert!(ids.windows(2).all(|w| w[1] == w[0] + 1));
    }
}
