//! The built-in web join page (the default provider): the wall's QR opens `/join/{wall}?t=TOKEN` on the
//! kiosk itself. Tokens rotate (default every 10 minutes, the previous one valid for a grace period) and
//! are derived, not stored: HMAC-SHA256(secret, wall ‖ epoch), so they survive a restart.

use crate::app::AppState;
use crate::config::{WallConfig, WebConfig};
use crate::domain::{placeholder_svg, Inbound, InboundKind, MessageKind, Provider};
use crate::events::WallEvent;
use crate::http::ApiError;
use crate::providers::{FetchError, Fetched, FetchedProfile, JoinInfo, ProviderClient};
use crate::store::{Accepted, Profile, Store};
use crate::ui;
use async_trait::async_trait;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequestParts, Multipart, Path, Query, State,
};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use voicewall_audio::DecodeError;

pub struct WebProvider {
    pub wall: String,
    pub locale: String,
    pub config: WebConfig,
    pub public_url: String,
    secret: Vec<u8>,
    /// Upload attempts per device and per client IP in the last minute.
    rate: RateLimits,
}

/// Is a join token good, and why not.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenCheck {
    Valid,
    Expired,
    Invalid,
}

impl WebProvider {
    pub fn new(wall: &WallConfig, config: &WebConfig, public_url: &str, store: &Store) -> Self {
        let secret = match store.meta_get("web_secret").ok().flatten() {
            Some(s) => s,
            None => {
                let s = crate::startup::random_token(32);
                let _ = store.meta_put("web_secret", &s);
                s
            }
        };
        Self {
            wall: wall.id.clone(),
            locale: wall.locale.clone(),
            config: config.clone(),
            public_url: public_url.to_string(),
            secret: secret.into_bytes(),
            rate: RateLimits::default(),
        }
    }

    fn epoch(&self, now_s: u64) -> u64 {
        now_s / self.config.token_rotate_s
    }

    pub fn token_for_epoch(&self, epoch: u64) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("any key length");
        mac.update(format!("join:{}:{epoch}", self.wall).as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..12])
    }

    pub fn current_token(&self, now_s: u64) -> String {
        self.token_for_epoch(self.epoch(now_s))
    }

    /// Valid: this epoch's token, or the previous one within the grace period. Expired: a token of an
    /// older epoch (within a day) — the guest is told to scan the screen again.
    pub fn check_token(&self, token: &str, now_s: u64) -> TokenCheck {
        let epoch = self.epoch(now_s);
        let is = |e: u64| same_secret(token, &self.token_for_epoch(e));
        if is(epoch) {
            return TokenCheck::Valid;
        }
        let into_epoch = now_s - epoch * self.config.token_rotate_s;
        if epoch > 0 && is(epoch - 1) {
            return if into_epoch < self.config.token_grace_s {
                TokenCheck::Valid
            } else {
                TokenCheck::Expired
            };
        }
        // Links up to a day old (at most 288 rotations back, bounding the work per request) get the
        // friendly "scan the screen again" page rather than "invalid".
        let lookback = (86_400 / self.config.token_rotate_s).clamp(2, 288);
        if (2..=lookback).any(|d| epoch >= d && is(epoch - d)) {
            return TokenCheck::Expired;
        }
        TokenCheck::Invalid
    }

    pub fn join_url(&self, now_s: u64) -> String {
        format!(
            "{}/join/{}?t={}",
            self.public_url,
            self.wall,
            self.current_token(now_s)
        )
    }

    /// The key that signs device cookies.
    pub fn cookie_key(&self) -> &[u8] {
        &self.secret
    }
}

/// Compare a guest-supplied token with a secret one in time independent of where they differ.
fn same_secret(given: &str, secret: &str) -> bool {
    given.len() == secret.len()
        && given
            .bytes()
            .zip(secret.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn now_s() -> u64 {
    crate::domain::now_ms() / 1000
}

#[async_trait]
impl ProviderClient for WebProvider {
    fn provider(&self) -> Provider {
        Provider::Web
    }

    /// Uploads are stored before the ack (`cache:` references), so there is nothing to fetch.
    async fn fetch_media(&self, media: &str, _kind: MessageKind) -> Result<Fetched, FetchError> {
        Err(FetchError::permanent(format!(
            "web upload {media:?} is not in the cache"
        )))
    }

    /// The profile is given on the join page itself.
    async fn fetch_profile(&self, _sender: &str) -> Result<Option<FetchedProfile>, FetchError> {
        Ok(None)
    }

    fn join_info(&self) -> JoinInfo {
        JoinInfo {
            url: self.join_url(now_s()),
            instructions: if self.locale == "en" {
                "Scan with your phone camera, then hold to talk".into()
            } else {
                "用手机相机扫码，按住说话".into()
            },
        }
    }

    /// Rotate the join token: at each epoch boundary the wall's QR follows.
    async fn maintain(&self, state: AppState, wall: String) {
        loop {
            let now = crate::domain::now_ms();
            let period_ms = self.config.token_rotate_s * 1000;
            let next = (now / period_ms + 1) * period_ms;
            tokio::time::sleep(std::time::Duration::from_millis(next - now + 50)).await;
            let url = self.join_url(now_s());
            tracing::info!(wall = %wall, "join token rotated");
            state.publish(&wall, WallEvent::JoinUpdated { join_url: url });
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

// ---------------------------------------------------------------------------------------------------------
// The join page and its upload API.
//
// GET  /join/{wall}?t=TOKEN             the phone page (or a localized "scan the screen again" page)
// GET  /api/join/{wall}/info            the page's limits and title (public)
// POST /api/join/{wall}/profile         multipart: nickname, avatar? (file), avatar_mode?, token → {participant}
// PUT  /api/join/{wall}/profile         the same (a guest changing name or picture)
// POST /api/join/{wall}/voice           multipart: audio (file), upload_id?, token → 201 {message_id}
// GET  /api/join/{wall}/me              the device's participant and its messages, or 404
//
// The token comes from the `X-Join-Token` header, the `t` query parameter or a `token` form field. A
// phone is known by a signed device cookie (one phone = one participant `web:{device id}`).
// ---------------------------------------------------------------------------------------------------------

/// The device cookie: `{device id}.{HMAC tag}`.
const DEVICE_COOKIE: &str = "vw_device";
/// Two years: a phone stays the same participant for the whole event season.
const DEVICE_COOKIE_MAX_AGE_S: u64 = 2 * 365 * 86_400;
/// Text fields (nickname, token, upload id) are small; anything longer is refused.
const TEXT_FIELD_MAX: usize = 4 * 1024;
/// A form has a handful of fields; more is not our page.
const MAX_FIELDS: usize = 12;
/// Oversized uploads are read (and dropped) up to this much past the limit, so that the browser gets our
/// 413 answer instead of a reset connection; beyond it the connection is cut short.
const DRAIN_SLACK: usize = 2 * 1024 * 1024;
/// Avatars are stored square at this size.
pub const AVATAR_SIZE: u32 = 256;

/// Sliding one-minute windows of upload attempts, per participant and per client IP.
#[derive(Default)]
pub struct RateLimits {
    hits: Mutex<HashMap<String, VecDeque<u64>>>,
}

impl RateLimits {
    /// Take one slot of `limit` per minute for `key` at `now_ms`; `Err(seconds to wait)` when full.
    pub fn try_take(&self, key: &str, limit: u32, now_ms: u64) -> Result<(), u64> {
        self.try_take_all(&[(key, limit)], now_ms)
            .map_err(|(_, s)| s)
    }

    /// Take a slot in each window at once, or in none: `Err((index of the full window, seconds to wait))`.
    /// A refused attempt costs nothing, so one phone over its own limit does not eat its network's.
    pub fn try_take_all(&self, windows: &[(&str, u32)], now_ms: u64) -> Result<(), (usize, u64)> {
        let mut hits = self.hits.lock().unwrap_or_else(|e| e.into_inner());
        if hits.len() > 10_000 {
            hits.retain(|_, q| q.back().is_some_and(|t| now_ms.saturating_sub(*t) < 60_000));
        }
        for (i, (key, limit)) in windows.iter().enumerate() {
            let q = hits.entry(key.to_string()).or_default();
            while q
                .front()
                .is_some_and(|t| now_ms.saturating_sub(*t) >= 60_000)
            {
                q.pop_front();
            }
            if q.len() >= *limit as usize {
                let oldest = q.front().copied().unwrap_or(now_ms);
                let wait = (60_000 - now_ms.saturating_sub(oldest))
                    .div_ceil(1000)
                    .max(1);
                return Err((i, wait));
            }
        }
        for (key, _) in windows {
            hits.entry(key.to_string()).or_default().push_back(now_ms);
        }
        Ok(())
    }
}

/// The guest's language, from Accept-Language (the wall's locale when neither zh nor en is asked for).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub fn from_headers(headers: &HeaderMap, fallback: &str) -> Lang {
        let accept = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mut best: Option<(f32, Lang)> = None;
        for part in accept.split(',') {
            let mut it = part.trim().split(';');
            let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = it
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                })
                .unwrap_or(1.0);
            let lang = if tag.starts_with("zh") {
                Lang::Zh
            } else if tag.starts_with("en") {
                Lang::En
            } else {
                continue;
            };
            if best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l)
            .unwrap_or(if fallback == "en" { Lang::En } else { Lang::Zh })
    }

    fn pick<'a>(self, en: &'a str, zh: &'a str) -> &'a str {
        match self {
            Lang::En => en,
            Lang::Zh => zh,
        }
    }
}

/// Every refusal the page can meet, with its status and readable text in both languages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    TokenMissing,
    TokenInvalid,
    TokenExpired,
    NoDevice,
    NicknameRequired,
    NicknameTooLong(usize),
    AvatarTooLarge(usize),
    NotAnImage,
    AudioMissing,
    AudioTooLarge(usize),
    NotAudio,
    AudioTooLong(u64),
    AudioCorrupt,
    TooFast(u64),
    TooFastNetwork(u64),
    BadForm,
}

fn mb(bytes: usize) -> String {
    let m = bytes as f64 / (1024.0 * 1024.0);
    if m >= 10.0 || m.fract() == 0.0 {
        format!("{m:.0}")
    } else {
        format!("{m:.1}")
    }
}

impl Refusal {
    fn status(self) -> StatusCode {
        use Refusal::*;
        match self {
            TokenMissing | TokenInvalid | NoDevice => StatusCode::FORBIDDEN,
            TokenExpired => StatusCode::GONE,
            NicknameRequired | AudioMissing | BadForm => StatusCode::BAD_REQUEST,
            NicknameTooLong(_) | AudioTooLong(_) | AudioCorrupt => StatusCode::UNPROCESSABLE_ENTITY,
            AvatarTooLarge(_) | AudioTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            NotAnImage | NotAudio => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            TooFast(_) | TooFastNetwork(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn code(self) -> &'static str {
        use Refusal::*;
        match self {
            TokenMissing => "token_missing",
            TokenInvalid => "token_invalid",
            TokenExpired => "token_expired",
            NoDevice => "no_device",
            NicknameRequired => "nickname_required",
            NicknameTooLong(_) => "nickname_too_long",
            AvatarTooLarge(_) => "avatar_too_large",
            NotAnImage => "not_an_image",
            AudioMissing => "audio_missing",
            AudioTooLarge(_) => "audio_too_large",
            NotAudio => "not_audio",
            AudioTooLong(_) => "audio_too_long",
            AudioCorrupt => "audio_corrupt",
            TooFast(_) => "too_many_messages",
            TooFastNetwork(_) => "too_many_from_network",
            BadForm => "bad_form",
        }
    }

    fn message(self, lang: Lang) -> String {
        use Refusal::*;
        match self {
            TokenMissing => lang
                .pick(
                    "This link is incomplete. Scan the QR code on the screen again.",
                    "链接不完整，请重新扫描屏幕上的二维码。",
                )
                .into(),
            TokenInvalid => lang
                .pick(
                    "This link is not valid. Scan the QR code on the screen again.",
                    "链接无效，请重新扫描屏幕上的二维码。",
                )
                .into(),
            TokenExpired => lang
                .pick(
                    "This link has expired. Scan the QR code on the screen again.",
                    "链接已过期，请重新扫描屏幕上的二维码。",
                )
                .into(),
            NoDevice => lang
                .pick(
                    "Join first: open the link from the QR code on the screen.",
                    "请先扫描屏幕上的二维码加入。",
                )
                .into(),
            NicknameRequired => lang.pick("Please enter a nickname.", "请输入昵称。").into(),
            NicknameTooLong(n) => match lang {
                Lang::En => format!("That nickname is too long: at most {n} characters."),
                Lang::Zh => format!("昵称太长了，最多 {n} 个字。"),
            },
            AvatarTooLarge(n) => match lang {
                Lang::En => format!("That photo is too large: at most {} MB.", mb(n)),
                Lang::Zh => format!("照片太大了，最大 {} MB。", mb(n)),
            },
            NotAnImage => lang
                .pick(
                    "That file is not a picture. Choose a photo (JPEG, PNG, WebP or GIF).",
                    "这不是图片，请选择一张照片（JPEG、PNG、WebP 或 GIF）。",
                )
                .into(),
            AudioMissing => lang
                .pick("No recording was sent. Please try again.", "没有收到录音，请重试。")
                .into(),
            AudioTooLarge(n) => match lang {
                Lang::En => format!("That recording is too large: at most {} MB.", mb(n)),
                Lang::Zh => format!("录音文件太大了，最大 {} MB。", mb(n)),
            },
            NotAudio => lang
                .pick(
                    "That file is not a voice recording we can play. Record again or choose an audio file.",
                    "无法识别这个录音，请重新录制或选择音频文件。",
                )
                .into(),
            AudioTooLong(s) => match lang {
                Lang::En => format!("That recording is too long: at most {s} seconds."),
                Lang::Zh => format!("录音太长了，最长 {s} 秒。"),
            },
            AudioCorrupt => lang
                .pick(
                    "That recording is damaged or empty. Please record again.",
                    "录音已损坏或为空，请重新录制。",
                )
                .into(),
            TooFast(s) => match lang {
                Lang::En => format!("You are sending too fast. Try again in {s} seconds."),
                Lang::Zh => format!("发送太频繁了，请 {s} 秒后再试。"),
            },
            TooFastNetwork(s) => match lang {
                Lang::En => format!("Too many messages from this network. Try again in {s} seconds."),
                Lang::Zh => format!("这个网络发送的消息太多了，请 {s} 秒后再试。"),
            },
            BadForm => lang
                .pick(
                    "The upload could not be read. Please try again.",
                    "上传内容无法读取，请重试。",
                )
                .into(),
        }
    }

    fn to_error(self, lang: Lang) -> ApiError {
        ApiError::new(self.status(), self.code(), self.message(lang))
    }
}

/// The client's address (from `into_make_service_with_connect_info`; unspecified when served without it,
/// e.g. in-process router tests).
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
                .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
        ))
    }
}

#[derive(Deserialize, Default)]
pub struct TokenQuery {
    t: Option<String>,
}

/// The join page and upload API (see the module doc).
pub fn routes() -> axum::Router<AppState> {
    let api = axum::Router::new()
        .route(
            "/api/join/{wall}/profile",
            post(post_profile).put(post_profile),
        )
        .route("/api/join/{wall}/voice", post(post_voice))
        // Our handlers stream each field against the wall's own limits (WebConfig), so the global
        // body limit is lifted here.
        .layer(DefaultBodyLimit::disable());
    axum::Router::new()
        .route("/join/{wall}", get(join_page))
        .route("/api/join/{wall}/info", get(info))
        .route("/api/join/{wall}/me", get(me))
        .merge(api)
}

/// The web provider of a wall, or 404 (unknown wall, or a wall on another provider).
fn web_wall<'a>(state: &'a AppState, wall: &str) -> Result<&'a WebProvider, ApiError> {
    state
        .wall(wall)
        .and_then(|w| w.provider.as_any().downcast_ref::<WebProvider>())
        .ok_or_else(|| ApiError::not_found(format!("no web wall {wall:?}")))
}

impl WebProvider {
    /// Sign a device id into the cookie value.
    fn sign_device(&self, device: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.cookie_key()).expect("any key length");
        mac.update(format!("device:{device}").as_bytes());
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(&mac.finalize().into_bytes()[..16]);
        format!("{device}.{tag}")
    }

    /// The device id of a signed cookie value, if the signature holds.
    pub fn verify_device(&self, value: &str) -> Option<String> {
        let (device, tag) = value.rsplit_once('.')?;
        if device.is_empty()
            || device.len() > 64
            || !device.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return None;
        }
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(tag)
            .ok()?;
        let mut mac = Hmac::<Sha256>::new_from_slice(self.cookie_key()).expect("any key length");
        mac.update(format!("device:{device}").as_bytes());
        (tag.len() == 16 && mac.verify_truncated_left(&tag).is_ok()).then(|| device.to_string())
    }

    fn device_from(&self, headers: &HeaderMap) -> Option<String> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .filter(|(k, _)| *k == DEVICE_COOKIE)
            .find_map(|(_, v)| self.verify_device(v))
    }

    fn device_cookie(&self, device: &str, secure: bool) -> HeaderValue {
        let value = format!(
            "{DEVICE_COOKIE}={}; Path=/; Max-Age={DEVICE_COOKIE_MAX_AGE_S}; HttpOnly; SameSite=Lax{}",
            self.sign_device(device),
            if secure { "; Secure" } else { "" }
        );
        HeaderValue::from_str(&value).expect("cookie is ASCII")
    }

    fn token_refusal(&self, token: Option<&str>, now_s: u64) -> Result<(), Refusal> {
        match token.filter(|t| !t.is_empty()) {
            None => Err(Refusal::TokenMissing),
            Some(t) => match self.check_token(t, now_s) {
                TokenCheck::Valid => Ok(()),
                TokenCheck::Expired => Err(Refusal::TokenExpired),
                TokenCheck::Invalid => Err(Refusal::TokenInvalid),
            },
        }
    }
}

fn secure(state: &AppState) -> bool {
    state.config.server.tls.is_some()
}

fn header_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-join-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `GET /join/{wall}?t=TOKEN`: the phone page, or a friendly page telling the guest to scan again.
async fn join_page(
    State(state): State<AppState>,
    Path(wall): Path<String>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(w) = state.wall(&wall) else {
        let lang = Lang::from_headers(&headers, "zh-CN");
        return notice_page(
            StatusCode::NOT_FOUND,
            lang,
            lang.pick("No such wall", "找不到这面墙"),
            lang.pick(
                "This link does not lead to a wall. Scan the QR code on the screen again.",
                "这个链接没有对应的墙，请重新扫描屏幕上的二维码。",
            ),
        );
    };
    let Some(web) = w.provider.as_any().downcast_ref::<WebProvider>() else {
        // A platform wall: the platform's own join (WeChat: OAuth consent, then its profile).
        return crate::providers::wechat::join_redirect(&state, &wall).await;
    };
    let lang = Lang::from_headers(&headers, &web.locale);
    if let Err(refusal) = web.token_refusal(q.t.as_deref(), now_s()) {
        let title = match refusal {
            Refusal::TokenExpired => lang.pick("This code has changed", "二维码已更新"),
            _ => lang.pick("Scan the screen again", "请重新扫码"),
        };
        return notice_page(refusal.status(), lang, title, &refusal.message(lang));
    }
    let mut response = ui::asset("join.html");
    let h = response.headers_mut();
    // The token is in the URL: keep it out of caches and Referer headers.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if web.device_from(&headers).is_none() {
        let device = crate::startup::random_token(20);
        h.append(
            header::SET_COOKIE,
            web.device_cookie(&device, secure(&state)),
        );
    }
    response
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A small localized page for the guest who cannot join (expired or invalid QR link, unknown wall).
fn notice_page(status: StatusCode, lang: Lang, title: &str, message: &str) -> Response {
    let hint = lang.pick(
        "Point your phone camera at the QR code on the big screen.",
        "用手机相机对准大屏幕上的二维码即可。",
    );
    let html = format!(
        "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1, viewport-fit=cover\">\
<meta name=\"color-scheme\" content=\"dark\"><title>{title}</title>\
<link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"/ui/join.css\"></head>\
<body class=\"notice\"><main class=\"card notice-card\" data-status=\"{code}\">\
<div class=\"notice-icon\" aria-hidden=\"true\"><svg viewBox=\"0 0 48 48\" width=\"56\" height=\"56\">\
<rect x=\"6\" y=\"6\" width=\"14\" height=\"14\" rx=\"3\" fill=\"none\" stroke=\"currentColor\" stroke-width=\"3\"/>\
<rect x=\"28\" y=\"6\" width=\"14\" height=\"14\" rx=\"3\" fill=\"none\" stroke=\"currentColor\" stroke-width=\"3\"/>\
<rect x=\"6\" y=\"28\" width=\"14\" height=\"14\" rx=\"3\" fill=\"none\" stroke=\"currentColor\" stroke-width=\"3\"/>\
<path d=\"M28 28h5v5h-5zM37 37h5v5h-5zM37 28h5M28 42h5\" fill=\"currentColor\" stroke=\"currentColor\" stroke-width=\"2\"/>\
</svg></div><h1>{title}</h1><p class=\"notice-message\">{message}</p><p class=\"hint\">{hint}</p>\
</main></body></html>\n",
        lang = lang.pick("en", "zh-CN"),
        code = status.as_u16(),
        title = html_escape(title),
        message = html_escape(message),
        hint = html_escape(hint),
    );
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        html,
    )
        .into_response()
}

/// `GET /api/join/{wall}/info`: what the page needs to know before the guest starts.
async fn info(
    State(state): State<AppState>,
    Path(wall): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let web = web_wall(&state, &wall)?;
    let title = state
        .wall(&wall)
        .map(|w| w.config.title.clone())
        .unwrap_or_default();
    Ok(Json(json!({
        "wall": wall,
        "title": title,
        "locale": web.locale,
        "limits": {
            "nickname_max_chars": web.config.nickname_max_chars,
            "avatar_max_bytes": web.config.avatar_max_bytes,
            "audio_max_bytes": web.config.audio_max_bytes,
            "audio_max_duration_s": web.config.audio_max_duration_s,
            "messages_per_minute": web.config.messages_per_minute,
        },
    })))
}

/// The parts of a join form, read field by field against the wall's limits.
#[derive(Default)]
struct JoinForm {
    token: Option<String>,
    nickname: Option<String>,
    avatar_mode: Option<String>,
    upload_id: Option<String>,
    /// (field name, bytes) of the one file field the endpoint expects.
    file: Option<Vec<u8>>,
}

/// Read a multipart body. `file_field` is the one file this endpoint takes, limited to `file_max` bytes
/// (`too_large` names the refusal). Unknown fields are read and dropped, within the same bounds.
async fn read_form(
    multipart: Result<Multipart, MultipartRejection>,
    file_field: &str,
    file_max: usize,
    too_large: Refusal,
) -> Result<JoinForm, Refusal> {
    let mut multipart = multipart.map_err(|_| Refusal::BadForm)?;
    let mut form = JoinForm::default();
    let mut fields = 0;
    while let Some(mut field) = multipart.next_field().await.map_err(|_| Refusal::BadForm)? {
        fields += 1;
        if fields > MAX_FIELDS {
            return Err(Refusal::BadForm);
        }
        let name = field.name().unwrap_or("").to_string();
        let max = if name == file_field {
            file_max
        } else {
            TEXT_FIELD_MAX
        };
        let mut buf = Vec::new();
        let mut over = false;
        let mut seen = 0usize;
        while let Some(chunk) =
            field
                .chunk()
                .await
                .map_err(|_| if over { too_large } else { Refusal::BadForm })?
        {
            seen += chunk.len();
            if seen > max {
                over = true;
                if seen > max + DRAIN_SLACK {
                    break;
                }
                continue;
            }
            buf.extend_from_slice(&chunk);
        }
        if over {
            return Err(if name == file_field {
                too_large
            } else {
                Refusal::BadForm
            });
        }
        let text = || String::from_utf8(buf.clone()).map_err(|_| Refusal::BadForm);
        match name.as_str() {
            n if n == file_field => form.file = Some(buf),
            "token" => form.token = Some(text()?),
            "nickname" => form.nickname = Some(text()?),
            "avatar_mode" => form.avatar_mode = Some(text()?),
            "upload_id" => form.upload_id = Some(text()?),
            _ => {}
        }
    }
    Ok(form)
}

/// Reads `body` (sent with `content_type`) as the voice endpoint's join form, exactly as
/// `/api/join/{wall}/voice` does but without a server: the entry point of the `join_form` fuzz
/// target (`fuzz/`). Returns whether the form was accepted.
#[doc(hidden)]
pub async fn read_join_form(content_type: &str, body: Vec<u8>, file_max: usize) -> bool {
    use axum::extract::FromRequest;
    let Ok(req) = axum::http::Request::post("/")
        .header(header::CONTENT_TYPE, content_type)
        .body(axum::body::Body::from(body))
    else {
        return false;
    };
    let multipart = Multipart::from_request(req, &()).await;
    read_form(
        multipart,
        "audio",
        file_max,
        Refusal::AudioTooLarge(file_max),
    )
    .await
    .is_ok()
}

/// Refuse a body whose declared length is far beyond anything the endpoint takes, before reading it.
fn check_length(headers: &HeaderMap, file_max: usize, too_large: Refusal) -> Result<(), Refusal> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    match declared {
        Some(n) if n > file_max + MAX_FIELDS * TEXT_FIELD_MAX + DRAIN_SLACK => Err(too_large),
        _ => Ok(()),
    }
}

/// A nickname as shown on the wall: control characters dropped, whitespace collapsed.
fn clean_nickname(raw: &str) -> String {
    raw.chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .filter(|c| !c.is_control())
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

static AVATAR_DECODES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Decode an uploaded picture (JPEG, PNG, WebP, GIF), crop it to a centred square and re-encode it at
/// 256×256: JPEG, or PNG when it has transparency. Never stores the guest's original bytes.
pub fn normalise_avatar(bytes: &[u8]) -> Result<(Vec<u8>, &'static str), image::ImageError> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(12_000);
    limits.max_image_height = Some(12_000);
    limits.max_alloc = Some(64 * 1024 * 1024);
    reader.limits(limits);
    let img = reader.decode()?;
    let square = img.resize_to_fill(
        AVATAR_SIZE,
        AVATAR_SIZE,
        image::imageops::FilterType::Lanczos3,
    );
    let mut out = Vec::new();
    if square.color().has_alpha() {
        square.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)?;
        Ok((out, "image/png"))
    } else {
        let rgb = square.to_rgb8();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 88).encode_image(&rgb)?;
        Ok((out, "image/jpeg"))
    }
}

/// `POST|PUT /api/join/{wall}/profile`: join (or change name / picture). Sets the device cookie.
#[tracing::instrument(skip_all, fields(wall = %wall))]
async fn post_profile(
    State(state): State<AppState>,
    Path(wall): Path<String>,
    Query(q): Query<TokenQuery>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let web = web_wall(&state, &wall)?;
    let lang = Lang::from_headers(&headers, &web.locale);
    let refuse = |r: Refusal| r.to_error(lang);
    let cfg = &web.config;
    // A token given outside the body is checked before the body is read.
    let early_token = header_token(&headers).or(q.t.clone());
    if let Some(t) = &early_token {
        web.token_refusal(Some(t), now_s()).map_err(refuse)?;
    }
    // Each profile post may create a participant and decode a picture: bounded per network too.
    let ip_key = format!("profile-ip:{ip}");
    if let Err(s) = web.rate.try_take(
        &ip_key,
        cfg.messages_per_ip_per_minute,
        crate::domain::now_ms(),
    ) {
        return Ok(too_fast(refuse(Refusal::TooFastNetwork(s)), s));
    }
    check_length(
        &headers,
        cfg.avatar_max_bytes,
        Refusal::AvatarTooLarge(cfg.avatar_max_bytes),
    )
    .map_err(refuse)?;
    let form = read_form(
        multipart,
        "avatar",
        cfg.avatar_max_bytes,
        Refusal::AvatarTooLarge(cfg.avatar_max_bytes),
    )
    .await
    .map_err(refuse)?;
    let token = early_token.or(form.token.clone());
    web.token_refusal(token.as_deref(), now_s())
        .map_err(refuse)?;

    let nickname = clean_nickname(form.nickname.as_deref().unwrap_or(""));
    if nickname.is_empty() {
        return Err(refuse(Refusal::NicknameRequired));
    }
    if nickname.chars().count() > cfg.nickname_max_chars {
        return Err(refuse(Refusal::NicknameTooLong(cfg.nickname_max_chars)));
    }
    let photo = match form.file.filter(|b| !b.is_empty()) {
        Some(bytes) => Some({
            // Picture decodes are CPU-heavy: two at a time, whatever the crowd does.
            let _slot = AVATAR_DECODES.acquire().await.map_err(ApiError::internal)?;
            tokio::task::spawn_blocking(move || normalise_avatar(&bytes))
                .await
                .map_err(ApiError::internal)?
                .map_err(|e| {
                    tracing::info!(error = %e, "avatar refused");
                    refuse(Refusal::NotAnImage)
                })?
        }),
        None => None,
    };

    let (device, new_device) = match web.device_from(&headers) {
        Some(d) => (d, false),
        None => (crate::startup::random_token(20), true),
    };
    let pid = format!("{}:{device}", Provider::Web.as_str());
    let existing = state.store.participant(&wall, &pid)?;
    // Is the current avatar the generated one? Then it follows the (maybe new) name.
    let has_generated = match &existing {
        Some(p) => match p.avatar_url.strip_prefix("/media/") {
            Some(key) => state
                .store
                .media(key)?
                .is_some_and(|(m, _)| m.content_type == "image/svg+xml"),
            None => true,
        },
        None => true,
    };
    let wants_generated = form.avatar_mode.as_deref() == Some("generated");
    let avatar_url = match photo {
        Some((bytes, ct)) => format!("/media/{}", state.store.put_media(&bytes, ct)?),
        None if wants_generated || has_generated => {
            let svg = placeholder_svg(&pid, &nickname);
            format!(
                "/media/{}",
                state.store.put_media(svg.as_bytes(), "image/svg+xml")?
            )
        }
        None => existing
            .as_ref()
            .map(|p| p.avatar_url.clone())
            .unwrap_or_default(),
    };
    let now = crate::domain::now_ms();
    state.store.put_profile(
        Provider::Web,
        &device,
        &Profile {
            nickname: nickname.clone(),
            avatar_url: Some(avatar_url.clone()),
            unionid: None,
            fetched_at: now,
        },
    )?;
    let (participant, is_new) = match existing {
        Some(mut p) => {
            p.display_name = nickname;
            p.avatar_url = avatar_url;
            p.has_profile = true;
            (p, false)
        }
        None => (
            crate::pipeline::now_participant(Provider::Web, &device, &nickname, avatar_url),
            true,
        ),
    };
    state.save_participant(&wall, &participant, is_new)?;
    state.store.durable().await?;
    tracing::info!(participant = %participant.id, is_new, "web guest profile saved");

    let mut response = (
        if is_new {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(json!({
            "participant": participant,
            "token": web.current_token(now_s()),
        })),
    )
        .into_response();
    if new_device {
        response.headers_mut().append(
            header::SET_COOKIE,
            web.device_cookie(&device, secure(&state)),
        );
    }
    Ok(response)
}

fn valid_upload_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `POST /api/join/{wall}/voice`: a recorded (or picked) voice message. Decoded here before it is
/// accepted, so a guest learns at once when a file is not playable; stored durably before the 201.
#[tracing::instrument(skip_all, fields(wall = %wall))]
async fn post_voice(
    State(state): State<AppState>,
    Path(wall): Path<String>,
    Query(q): Query<TokenQuery>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let web = web_wall(&state, &wall)?;
    let lang = Lang::from_headers(&headers, &web.locale);
    let refuse = |r: Refusal| r.to_error(lang);
    let cfg = &web.config;
    let early_token = header_token(&headers).or(q.t.clone());
    if let Some(t) = &early_token {
        web.token_refusal(Some(t), now_s()).map_err(refuse)?;
    }
    let device = web.device_from(&headers);
    if early_token.is_some() && device.is_none() {
        return Err(refuse(Refusal::NoDevice));
    }
    let too_large = Refusal::AudioTooLarge(cfg.audio_max_bytes);
    check_length(&headers, cfg.audio_max_bytes, too_large).map_err(refuse)?;
    let form = read_form(multipart, "audio", cfg.audio_max_bytes, too_large)
        .await
        .map_err(refuse)?;
    let token = early_token.or(form.token.clone());
    web.token_refusal(token.as_deref(), now_s())
        .map_err(refuse)?;
    let device = device.ok_or_else(|| refuse(Refusal::NoDevice))?;

    let now = crate::domain::now_ms();
    let (ip_key, device_key) = (format!("ip:{ip}"), format!("dev:{device}"));
    let windows = [
        (device_key.as_str(), cfg.messages_per_minute),
        (ip_key.as_str(), cfg.messages_per_ip_per_minute),
    ];
    if let Err((which, s)) = web.rate.try_take_all(&windows, now) {
        let refusal = if which == 0 {
            Refusal::TooFast(s)
        } else {
            Refusal::TooFastNetwork(s)
        };
        return Ok(too_fast(refuse(refusal), s));
    }

    let bytes = form
        .file
        .filter(|b| !b.is_empty())
        .ok_or_else(|| refuse(Refusal::AudioMissing))?;
    let max_s = cfg.audio_max_duration_s;
    let bytes = std::sync::Arc::new(bytes);
    let decoded = {
        let bytes = bytes.clone();
        tokio::task::spawn_blocking(move || voicewall_audio::decode_limited(&bytes, max_s))
            .await
            .map_err(ApiError::internal)?
    };
    let decoded = match decoded {
        Ok(d) => d,
        Err(DecodeError::NotAudio(why)) => {
            tracing::info!(reason = %why, "upload is not audio");
            return Err(refuse(Refusal::NotAudio));
        }
        Err(DecodeError::TooLong { max_s, .. }) => {
            return Err(refuse(Refusal::AudioTooLong(max_s)))
        }
        Err(DecodeError::Corrupt(why)) => {
            tracing::info!(reason = %why, "upload is damaged");
            return Err(refuse(Refusal::AudioCorrupt));
        }
        Err(e @ (DecodeError::SampleRate { .. } | DecodeError::TooManyChannels { .. })) => {
            tracing::info!(reason = %e, "upload is not a voice recording");
            return Err(refuse(Refusal::AudioCorrupt));
        }
        Err(e @ DecodeError::Internal(_)) => return Err(ApiError::internal(e)),
    };
    if decoded.frames() == 0 {
        return Err(refuse(Refusal::AudioCorrupt));
    }

    let key = state.store.put_media(&bytes, decoded.format.mime())?;
    let upload_id = form
        .upload_id
        .filter(|u| valid_upload_id(u))
        .unwrap_or_else(|| crate::startup::random_token(16));
    let inbound = Inbound {
        wall: wall.clone(),
        provider: Provider::Web,
        sender: device.clone(),
        kind: InboundKind::Media {
            kind: MessageKind::Voice,
            media: format!("cache:{key}"),
            transcript: None,
        },
        pushed_at: now,
        received_at: now,
        dedup_key: format!("{device}:{upload_id}"),
    };
    let accepted = state.accept(&inbound).await?;
    let (status, duplicate) = match accepted {
        Accepted::New(_) => (StatusCode::CREATED, false),
        Accepted::Duplicate(_) => (StatusCode::OK, true),
    };
    tracing::info!(
        seq = accepted.seq(),
        duplicate,
        format = %decoded.format,
        duration_ms = decoded.duration_ms(),
        "web voice accepted"
    );
    Ok((
        status,
        Json(json!({
            "message_id": accepted.seq().to_string(),
            "duplicate": duplicate,
            "duration_ms": decoded.duration_ms(),
            "token": web.current_token(now_s()),
        })),
    )
        .into_response())
}

fn too_fast(e: ApiError, retry_after_s: u64) -> Response {
    let mut r = e.into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
    r
}

/// `GET /api/join/{wall}/me`: this phone's participant and its messages (404 before it joined). With a
/// valid token it also hands back the current one, so an open page keeps working across rotations.
async fn me(
    State(state): State<AppState>,
    Path(wall): Path<String>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let web = web_wall(&state, &wall)?;
    let lang = Lang::from_headers(&headers, &web.locale);
    let token = header_token(&headers).or(q.t);
    let device = web.device_from(&headers);
    let participant = match &device {
        Some(d) => state.store.participant(&wall, &format!("web:{d}"))?,
        None => None,
    };
    let Some(participant) = participant else {
        return Err(ApiError::not_found(
            lang.pick("This phone has not joined yet.", "这部手机还没有加入。"),
        ));
    };
    let messages: Vec<_> = state
        .store
        .messages(&wall)?
        .into_iter()
        .filter(|m| m.participant_id == participant.id)
        .collect();
    let fresh = token
        .filter(|t| web.check_token(t, now_s()) == TokenCheck::Valid)
        .map(|_| web.current_token(now_s()));
    Ok(Json(json!({
        "participant": participant,
        "messages": messages,
        "token": fresh,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(rotate: u64, grace: u64) -> WebProvider {
        WebProvider {
            wall: "main".into(),
            locale: "en".into(),
            config: WebConfig {
                token_rotate_s: rotate,
                token_grace_s: grace,
                ..WebConfig::default()
            },
            public_url: "http://10.0.0.2:8787".into(),
            secret: b"secret".to_vec(),
            rate: RateLimits::default(),
        }
    }

    #[test]
    fn tokens_rotate_with_a_grace_period() {
        let p = provider(600, 300);
        let t0 = 6_000_000; // start of an epoch
        let tok = p.current_token(t0);
        assert_eq!(p.check_token(&tok, t0 + 599), TokenCheck::Valid);
        assert_ne!(p.current_token(t0 + 600), tok, "rotates at the boundary");
        assert_eq!(
            p.check_token(&tok, t0 + 600 + 299),
            TokenCheck::Valid,
            "grace"
        );
        assert_eq!(p.check_token(&tok, t0 + 600 + 300), TokenCheck::Expired);
        assert_eq!(p.check_token(&tok, t0 + 3 * 600), TokenCheck::Expired);
        assert_eq!(p.check_token("forged", t0), TokenCheck::Invalid);
        assert!(p
            .join_url(t0)
            .starts_with("http://10.0.0.2:8787/join/main?t="));
    }

    #[test]
    fn device_cookies_are_signed() {
        let p = provider(600, 300);
        let v = p.sign_device("abc123");
        assert_eq!(p.verify_device(&v).as_deref(), Some("abc123"));
        assert_eq!(p.verify_device("abc123.AAAAAAAAAAAAAAAAAAAAAA"), None);
        let forged = v.replacen("abc123", "abc124", 1);
        assert_eq!(p.verify_device(&forged), None);
        assert_eq!(p.verify_device("nodot"), None);
    }

    #[test]
    fn rate_limits_slide_over_a_minute() {
        let r = RateLimits::default();
        assert!(r.try_take("k", 2, 1_000).is_ok());
        assert!(r.try_take("k", 2, 2_000).is_ok());
        assert_eq!(r.try_take("k", 2, 3_000), Err(58));
        assert!(r.try_take("other", 2, 3_000).is_ok());
        assert!(
            r.try_take("k", 2, 61_000).is_ok(),
            "the first hit left the window"
        );
    }

    #[test]
    fn language_follows_accept_language() {
        let mut h = HeaderMap::new();
        assert_eq!(Lang::from_headers(&h, "en"), Lang::En);
        assert_eq!(Lang::from_headers(&h, "zh-CN"), Lang::Zh);
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("fr-FR,en;q=0.8,zh-CN;q=0.9"),
        );
        assert_eq!(Lang::from_headers(&h, "en"), Lang::Zh);
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("en-GB,en;q=0.9"),
        );
        assert_eq!(Lang::from_headers(&h, "zh-CN"), Lang::En);
    }

    #[test]
    fn nicknames_are_cleaned() {
        assert_eq!(clean_nickname("  Ada \n\t Lovelace\u{7}  "), "Ada Lovelace");
        assert_eq!(clean_nickname("\u{0}\u{1}"), "");
    }

    #[test]
    fn avatars_are_cropped_to_256_squares() {
        let img = image::RgbImage::from_pixel(640, 480, image::Rgb([200, 30, 30]));
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let (out, ct) = normalise_avatar(&png).unwrap();
        assert_eq!(ct, "image/jpeg");
        let back = image::load_from_memory(&out).unwrap();
        assert_eq!((back.width(), back.height()), (256, 256));
        assert!(normalise_avatar(b"GIF89a but not really").is_err());
        assert!(normalise_avatar(b"hello world").is_err());
    }
}
