//! The embedded HTTP server: `fn router(state) -> Router`. Shared routes live here (wall page and state,
//! events, QR, media, `/join/{wall}` — which asks the wall's provider what to do); each wall's provider
//! adds its own routes (webhooks, join flow) through `WallProvider::routes`.
//!
//! - `error` — `ApiError`, the `{code, message}` answer of every refusal;
//! - `openapi` — `GET /api/openapi.json`, the API's description, checked against these routes;
//! - `access` — who may call what (`Operator`, `Display`);
//! - `client_ip` — the client's address as an extractor (`[server] trusted_proxies`);
//! - `limits` — body limits and pace, event streams per client; `serve` — the accept loop's limits.
//!
//! Live updates: `GET /api/walls/{id}/events` is Server-Sent Events; the event name is the event's
//! `type` and its data the JSON of `state::EventView` (an `events::WallEvent`, media as URLs). A client rebuilds its state from
//! `GET /api/walls/{id}` on (re)connect.

pub mod access;
pub mod admin;
pub mod client_ip;
pub mod error;
pub mod limits;
pub mod openapi;
pub mod paging;
pub mod serve;
pub mod setup;
pub mod sse;
pub mod state;

use crate::app::{AdminToken, AppState, Shutdown};
use crate::domain::MediaKey;
use crate::events::{Hub, WallEvent};
use crate::lang::Lang;
use crate::metrics::Metrics;
use crate::playback::Playback;
use crate::store::Store;
use crate::ui;
use crate::walls::Walls;
use access::Display;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use client_ip::TrustedProxies;
use error::ApiError;
use futures_util::Stream;
use serde::Deserialize;
use serde_json::json;
use state::{known_wall, JoinState, WallState, WallTheme};
use std::convert::Infallible;
use std::sync::Arc;
use tower_http::trace::TraceLayer;

pub fn router(state: AppState) -> Router {
    let walls = state.walls.clone();
    let gate = access::Gate {
        admin: state.admin_token.clone(),
        credentials: state.credentials.clone(),
        public_url: state.public_url.clone(),
        secure: state.config.server.tls.is_some(),
    };
    let proxies = TrustedProxies(state.config.server.trusted_proxies.clone().into());
    let server = &state.config.server;
    let body_limit = limits::BodyLimit {
        max: server.max_body_bytes,
        metrics: Some(state.metrics.clone()),
    };
    let pace = limits::Pace {
        stall: std::time::Duration::from_secs(server.body_timeout_s.max(1)),
        min_bytes_per_s: server.body_min_bytes_per_s,
    };
    let sse_slots = limits::SseSlots::new(server.sse_per_client.max(1));
    // The providers' streams (a phone's own) end when shutdown begins, as the wall's do.
    let state_shutdown = state.shutdown.clone();
    let shared = Router::new()
        .route("/", get(index))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(openapi::document))
        .route("/wall/{id}", get(wall_page))
        .route("/api/walls/{id}", get(wall_state))
        .route("/api/walls/{id}/events", get(wall_events))
        .route("/api/walls/{id}/messages", get(paging::messages))
        .route("/api/walls/{id}/participants", get(paging::participants))
        .route(
            "/api/walls/{id}/messages/{mid}/waveform",
            get(paging::waveform),
        )
        .route("/api/walls/{id}/qr.svg", get(wall_qr))
        .route("/api/walls/{id}/play", post(play))
        .route("/api/walls/{id}/operator", get(operator_overlay))
        .route("/media/{key}", get(media))
        .route("/ui/{*file}", get(ui_file))
        .route("/admin", get(|| async { ui::asset("admin.html") }))
        .route("/join/{id}", get(join))
        // What the providers' routes look like, for walls that do not exist (or another platform's):
        // a JSON 404 rather than an empty one.
        .route("/join/{id}/{*rest}", axum::routing::any(no_such_route))
        .route("/api/join/{id}/{*rest}", axum::routing::any(no_such_route))
        .route(
            "/webhook/{platform}/{id}",
            axum::routing::any(no_such_route),
        )
        .merge(admin::routes())
        .merge(setup::routes())
        .with_state(state)
        // The providers' routes (uploads, webhooks) set their own limits.
        .layer(axum::middleware::from_fn_with_state(
            body_limit,
            limits::limit_body,
        ));
    walls
        .iter()
        .fold(shared, |router, wall| {
            router.merge(wall.provider.clone().routes())
        })
        .layer(axum::middleware::from_fn_with_state(
            pace,
            limits::pace_body,
        ))
        .layer(axum::middleware::map_response(error::json_refusals))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        // Outermost: every route (the providers' too) and the trace span see them.
        .layer(Extension(sse_slots))
        .layer(Extension(state_shutdown))
        .layer(Extension(gate))
        .layer(Extension(proxies))
}

/// The span of a request: method, path (a one-time display code left out) and the client's address.
fn request_span(request: &Request) -> tracing::Span {
    let path = request.uri().path();
    let path = if path.starts_with("/display/") {
        "/display/…"
    } else {
        path
    };
    tracing::debug_span!(
        "request",
        method = %request.method(),
        path,
        client = %client_ip::client_of(request.extensions(), request.headers()),
    )
}

async fn index(State(walls): State<Walls>) -> Response {
    let first = walls
        .first()
        .map(|w| w.config.id.clone())
        .unwrap_or_default();
    axum::response::Redirect::temporary(&format!("/wall/{first}")).into_response()
}

async fn healthz(
    State(walls): State<Walls>,
    State(playback): State<Playback>,
    State(store): State<Store>,
) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        // A count, not the ids: this answer is public.
        "walls": walls.ids().count(),
        "audio": playback.status(),
        "inbox_pending": store.inbox_len(),
        "providers": provider_statuses(&walls),
        // What the operator must know (a database moved aside, a full disk): no guest data.
        "notices": store.notices(),
        // The stored media against `[storage] max_bytes` (kept as blobs come and go: nothing is read).
        "media": store.media_usage(),
    }))
}

/// Each wall's link with its platform (`WallProvider::status`: e.g. Telegram's setWebhook result), by
/// wall id; walls whose provider has nothing to report are left out. No guest data, no secrets: shown on
/// `/healthz` and to the operator console.
pub fn provider_statuses(
    walls: &Walls,
) -> std::collections::BTreeMap<String, crate::provider::ProviderStatus> {
    walls
        .iter()
        .filter_map(|w| Some((w.config.id.clone(), w.provider.status()?)))
        .collect()
}

async fn metrics(
    State(metrics): State<Arc<Metrics>>,
    State(store): State<Store>,
) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(
            store.inbox_len(),
            store.size_on_disk(),
            metrics.uptime_s(),
            &store.corrupt_counts(),
        ),
    )
}

/// What a browser without a display credential gets at `/wall/{id}` (both languages: no wall is named).
const DISPLAY_NEEDED: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>Voicewall</title></head>\
<body style=\"font:18px/1.5 system-ui,sans-serif;margin:2em auto;max-width:36em;padding:0 1em\">\
<h1>This screen is not a display yet</h1><p>Open the operator's console at <a href=\"/admin\">/admin</a>, \
sign in with the admin token and choose <b>Open a display</b>: its one-time link makes this browser a display \
of the wall.</p><h1 lang=\"zh-CN\">此屏幕还不是显示屏</h1><p lang=\"zh-CN\">打开管理控制台 \
<a href=\"/admin\">/admin</a>，用管理令牌登录，选择<b>打开显示屏</b>：一次性链接会让此浏览器成为这面墙的显示屏。</p>\
</body></html>";

async fn wall_page(
    State(walls): State<Walls>,
    display: Result<Display, ApiError>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match display {
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            tracing::info!(reason = %e.message, "request refused");
            return Ok((
                StatusCode::UNAUTHORIZED,
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/html; charset=utf-8"),
                    ),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
                DISPLAY_NEEDED,
            )
                .into_response());
        }
        other => other?,
    };
    known_wall(&walls, &id)?;
    Ok(ui::asset("wall.html"))
}

/// The wall state: contract of `GET /api/walls/{id}` (see `state`).
pub fn wall_state_of(state: &AppState, id: &str) -> Result<WallState, ApiError> {
    let wall = known_wall(&state.walls, id)?;
    // Taken first: a page resuming from it may see an event twice (events are upserts), never miss one.
    let last_event_id = state.hub.last_id(id).map(|e| e.to_string());
    let settings = state.board.settings(id)?;
    let (mut messages, messages_before) =
        state
            .board
            .recent_messages(id, None, state::STATE_MESSAGES)?;
    messages.reverse();
    let (mut people, participants_before) =
        state
            .board
            .recent_participants(id, None, state::STATE_PARTICIPANTS)?;
    people.reverse();
    // The senders of the messages drawn, even when they joined long before the newest participants.
    let mut have: std::collections::HashSet<String> = people.iter().map(|p| p.id.clone()).collect();
    let mut senders = Vec::new();
    for m in &messages {
        if have.insert(m.participant_id.clone()) {
            if let Some(p) = state.board.participant(id, &m.participant_id)? {
                senders.push(p);
            }
        }
    }
    senders.extend(people);
    let join = wall.provider.join_info();
    let qr_svg_url = format!("/api/walls/{id}/qr.svg?v={}", crate::qr::version(&join.url));
    Ok(WallState {
        id: wall.config.id.clone(),
        title: wall.config.title.clone(),
        locale: wall.config.locale.clone(),
        provider: wall.provider.kind(),
        theme: WallTheme::from(&wall.config.theme),
        demo: state.demo.0,
        join: JoinState {
            url: join.url,
            instructions: join.instructions,
            qr_svg_url,
        },
        participants: senders.iter().map(Into::into).collect(),
        participants_before: participants_before.map(|c| c.to_string()),
        messages: messages.iter().map(Into::into).collect(),
        messages_before,
        playback: state.playback.now_playing(id),
        qr_visible: settings.qr_visible,
        last_event_id,
    })
}

async fn wall_state(
    State(state): State<AppState>,
    _display: Display,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok((
        // It carries the current join token.
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(wall_state_of(&state, &id)?.to_json()),
    )
        .into_response())
}

#[allow(clippy::too_many_arguments)] // axum extractors, one per thing the stream needs
async fn wall_events(
    _display: Display,
    client_ip::ClientIp(ip): client_ip::ClientIp,
    Extension(slots): Extension<limits::SseSlots>,
    State(walls): State<Walls>,
    State(hub): State<Hub>,
    State(shutdown): State<Shutdown>,
    Path(id): Path<String>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<sse::ResumeQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    known_wall(&walls, &id)?;
    let slot = slots.take(ip)?;
    let last = sse::last_event_id(&headers, &q);
    let (resume, rx) = hub.resume(&id, last).expect("known wall has a channel");
    let stream = tokio_stream::StreamExt::map(sse::resumed(resume, rx, to_sse), move |item| {
        let _held = &slot; // the client's slot, given back when the stream ends
        item
    });
    Ok(sse::live(json!({"type": "hello"}), stream, shutdown))
}

fn to_sse(ev: &WallEvent) -> Event {
    Event::default()
        .event(ev.name())
        .data(serde_json::to_string(&state::EventView::from(ev)).unwrap_or_default())
}

async fn wall_qr(
    _display: Display,
    State(walls): State<Walls>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let wall = known_wall(&walls, &id)?;
    let svg = crate::qr::svg(&wall.provider.join_info().url).map_err(ApiError::internal)?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("image/svg+xml"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        svg,
    )
        .into_response())
}

#[derive(Deserialize)]
struct PlayRequest {
    participant_id: Option<String>,
    message_id: Option<String>,
}

/// A tap on an avatar: play that person's latest ready voice (or a given message) on the native player.
/// Only a display (the kiosk's window, a display the operator opened) or the operator may: anyone on the
/// venue Wi-Fi could otherwise drive the speakers. The source address grants nothing.
async fn play(
    _display: Display,
    State(walls): State<Walls>,
    State(board): State<crate::board::Board>,
    State(playback): State<Playback>,
    Path(id): Path<String>,
    Json(req): Json<PlayRequest>,
) -> Result<Response, ApiError> {
    known_wall(&walls, &id)?;
    // Only what the wall shows (approved, not banned, not cleared) can be tapped.
    let messages = board.view(&id)?.messages;
    let chosen = if let Some(mid) = &req.message_id {
        messages.iter().find(|m| &m.id == mid)
    } else if let Some(pid) = &req.participant_id {
        messages.iter().rev().find(|m| {
            &m.participant_id == pid
                && m.status == crate::domain::MessageStatus::Ready
                && m.kind == crate::domain::MessageKind::Voice
        })
    } else {
        return Err(ApiError::bad_request("give participant_id or message_id"));
    };
    let Some(m) = chosen else {
        return Err(ApiError::not_found("no playable message"));
    };
    if m.status != crate::domain::MessageStatus::Ready || m.media.is_none() {
        // (an evicted voice keeps its message, without its media)
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_ready",
            "that message is not ready to play",
        ));
    }
    playback.play_now(&id, &m.id);
    Ok((StatusCode::ACCEPTED, Json(json!({"message_id": m.id}))).into_response())
}

/// `GET /api/walls/{id}/operator`: what the kiosk's overlay (Ctrl+Shift+A) shows the operator — the
/// console's address, and a QR that signs a phone in (`<public_url>/admin#token=…`: a fragment, never
/// sent to a server or written to a log). Only the kiosk's own window may ask.
async fn operator_overlay(
    display: Display,
    State(walls): State<Walls>,
    State(admin): State<AdminToken>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    known_wall(&walls, &id)?;
    if !display.is_kiosk() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only the kiosk's own window shows the operator's sign-in",
        ));
    }
    let console_url = format!("{}/admin", state.public_url.get());
    let qr_svg =
        crate::qr::svg(&format!("{console_url}#token={}", admin.0)).map_err(ApiError::internal)?;
    Ok((
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(json!({"console_url": console_url, "qr_svg": qr_svg, "token": &*admin.0})),
    )
        .into_response())
}

/// `GET /media/{key}`: for displays and the operator, and for the guest whose avatar or voice it is.
async fn media(
    State(state): State<AppState>,
    viewer: Result<Display, ApiError>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // Keys are content hashes; anything else names no blob.
    let key = MediaKey::parse(&key);
    // (a guest owns no blob a malformed key could name)
    let allowed = match &key {
        Ok(key) => access::may_fetch_media(&state, viewer.as_ref().ok(), &headers, key)?,
        Err(_) => viewer.is_ok(),
    };
    if !allowed {
        return Err(viewer.err().unwrap_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this display shows another wall, or this is not on it",
            )
        }));
    }
    let store = &state.store;
    let Ok(key) = key else {
        return Err(ApiError::not_found("no such media"));
    };
    let Some((meta, path)) = store.media_file(key.as_str())? else {
        return Err(ApiError::not_found("no such media"));
    };
    // Streamed from its file (a range: from its first byte), never held whole per request.
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        // Evicted or erased since its metadata was read.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::not_found("no such media"));
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    let len = file.metadata().await.map_err(ApiError::internal)?.len();
    let etag = format!("\"{}\"", key.as_str());
    let mut common = HeaderMap::new();
    common.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).map_err(ApiError::internal)?,
    );
    // Content-addressed: never changes. Private: not every visitor may see it (no shared cache).
    common.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    common.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if if_none_match(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    common.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&meta.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    // Platform-provided bytes are never interpreted as a page of ours.
    common.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    common.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
    );
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|r| byte_range(r, len));
    match range {
        Some(Some(ByteRange::Satisfiable(start, end))) => {
            common.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes {start}-{end}/{len}"))
                    .map_err(ApiError::internal)?,
            );
            use tokio::io::{AsyncReadExt, AsyncSeekExt};
            file.seek(std::io::SeekFrom::Start(start))
                .await
                .map_err(ApiError::internal)?;
            let part = file_body(file.take(end - start + 1));
            common.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start + 1));
            Ok((StatusCode::PARTIAL_CONTENT, common, part).into_response())
        }
        Some(Some(ByteRange::Unsatisfiable)) => {
            common.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{len}")).map_err(ApiError::internal)?,
            );
            let mut r = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the media is {len} bytes long"),
            )
            .into_response();
            r.headers_mut().extend(common);
            Ok(r)
        }
        // No range, or one we do not serve (several ranges, another unit): the whole blob.
        None | Some(None) => {
            common.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            Ok((common, file_body(file)).into_response())
        }
    }
}

/// A response body read from a file in 64 KiB chunks.
fn file_body(file: impl tokio::io::AsyncRead + Send + 'static) -> axum::body::Body {
    axum::body::Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024))
}

/// Does `If-None-Match` name this `etag` (or `*`)?
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

/// A `Range` header's meaning for a blob of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
enum ByteRange {
    /// First and last byte, inclusive.
    Satisfiable(u64, u64),
    Unsatisfiable,
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` (one range); `None` for anything else (the whole blob is sent).
fn byte_range(header: &str, len: u64) -> Option<ByteRange> {
    let spec = header.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    let (start, end) = match (first.is_empty(), last.is_empty()) {
        (true, true) => return None,
        // The last n bytes.
        (true, false) => {
            let n = parse(last)?;
            if n == 0 || len == 0 {
                return Some(ByteRange::Unsatisfiable);
            }
            (len.saturating_sub(n), len - 1)
        }
        (false, true) => (parse(first)?, len.saturating_sub(1)),
        (false, false) => {
            let (a, b) = (parse(first)?, parse(last)?);
            if b < a {
                return None;
            }
            (a, b.min(len.saturating_sub(1)))
        }
    };
    if start >= len {
        return Some(ByteRange::Unsatisfiable);
    }
    Some(ByteRange::Satisfiable(start, end))
}

async fn ui_file(Path(file): Path<String>) -> Response {
    ui::asset(&file)
}

/// `GET /join/{wall}`: where the wall's QR (or a shared link) takes a phone — the wall's provider
/// decides (the web join page, a platform's consent page or deep link).
async fn join(State(walls): State<Walls>, Path(id): Path<String>, request: Request) -> Response {
    match walls.get(&id) {
        Some(wall) => wall.provider.join(request).await,
        None => ui::no_such_wall(Lang::from_headers(request.headers(), "zh-CN")),
    }
}

async fn no_such_route(request: Request) -> ApiError {
    ApiError::not_found(format!("no wall or route at {}", request.uri().path()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::DemoMode;
    use crate::inbox::Inbox;
    use crate::playback::{Command, PlaybackTask};
    use crate::testing::{FakePlatform, Fixture, WALL};
    use axum::body::Body;
    use tower::ServiceExt;

    struct Server {
        state: AppState,
        player: PlaybackTask,
        _fx: Fixture,
        _stop: tokio::sync::watch::Sender<bool>,
    }

    fn server() -> Server {
        let fx = Fixture::new(FakePlatform::serving(Vec::new(), "audio/ogg"));
        let metrics = Arc::new(Metrics::default());
        let (inbox, _wakeups) = Inbox::new(fx.store.clone(), metrics.clone());
        let (playback, player) = Playback::new(true);
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let state = AppState {
            config: Arc::new(crate::config::Config::builtin()),
            store: fx.store.clone(),
            hub: fx.hub.clone(),
            walls: fx.walls.clone(),
            inbox,
            board: fx.board.clone(),
            clock: crate::clock::Clock::manual(0),
            media: fx.media.clone(),
            playback,
            audit: crate::audit::Audit::new(fx.store.clone(), crate::clock::Clock::manual(0)),
            metrics,
            public_url: crate::provider::PublicUrl::new("http://kiosk.test"),
            admin_token: AdminToken("s3cret".into()),
            credentials: crate::credentials::Credentials::new(
                fx.store.clone(),
                crate::clock::Clock::manual(0),
            ),
            demo: DemoMode(false),
            shutdown: Shutdown(shutdown),
        };
        Server {
            state,
            player,
            _fx: fx,
            _stop: stop,
        }
    }

    async fn call(
        s: &Server,
        req: axum::http::Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let r = router(s.state.clone()).oneshot(req).await.unwrap();
        let (parts, body) = r.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    fn get(path: &str) -> axum::http::Request<Body> {
        axum::http::Request::get(path).body(Body::empty()).unwrap()
    }

    /// A GET with the admin Bearer token (a display route's credential).
    fn admin_get(path: &str) -> axum::http::Request<Body> {
        axum::http::Request::get(path)
            .header(header::AUTHORIZATION, "Bearer s3cret")
            .body(Body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn the_wall_state_shows_the_providers_join_link() {
        let s = server();
        let (status, _, body) = call(&s, get("/api/walls/main")).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "the join token is for displays only"
        );
        assert!(!body.contains("fake.example"), "{body}");
        let (status, _, body) = call(&s, admin_get("/api/walls/main")).await;
        assert_eq!(status, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["join"]["url"], "https://fake.example/join/main");
        assert_eq!(v["provider"], "telegram");
        assert!(v["join"]["qr_svg_url"]
            .as_str()
            .unwrap()
            .starts_with("/api/walls/main/qr.svg?v="));
        assert_eq!(v["participants"], serde_json::json!([]));
    }

    #[tokio::test]
    async fn the_first_run_panel_follows_a_lan_address_change() {
        let s = server();
        let console = |body: &str| {
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(v["show"], true, "{v}");
            v["console_url"].as_str().unwrap().to_string()
        };
        let (status, _, body) = call(&s, admin_get("/api/walls/main/setup")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(console(&body), "http://kiosk.test/admin");
        // The kiosk moved to another network (what `startup::LanFollow` does on a new address).
        assert!(s.state.public_url.set("http://10.1.2.3:8787"));
        let (_, _, body) = call(&s, admin_get("/api/walls/main/setup")).await;
        assert_eq!(console(&body), "http://10.1.2.3:8787/admin");
    }

    #[tokio::test]
    async fn join_and_platform_routes_belong_to_the_walls_provider() {
        let s = server();
        let (status, headers, _) = call(&s, get("/join/main")).await;
        assert_eq!(status, StatusCode::FOUND);
        assert_eq!(headers[header::LOCATION], "https://fake.example/consent");
        let (status, _, body) = call(&s, get("/webhook/fake/main")).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "fake ok"));
    }

    #[tokio::test]
    async fn unknown_walls_are_404_with_a_reason_everywhere() {
        let s = server();
        for path in [
            "/api/walls/nope",
            "/api/walls/nope/qr.svg",
            "/wall/nope",
            "/api/join/nope/info",
            "/join/nope/oauth",
            "/webhook/fake/nope",
        ] {
            let (status, _, body) = call(&s, admin_get(path)).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            let v: serde_json::Value = serde_json::from_str(&body).expect(path);
            assert_eq!(v["code"], "not_found", "{path}");
        }
        let mut req = get("/join/nope");
        req.headers_mut()
            .insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("en"));
        let (status, _, body) = call(&s, req).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(
            body.contains("No such wall") && body.contains("lang=\"en\""),
            "{body}"
        );
    }

    #[tokio::test]
    async fn only_a_display_or_the_operator_can_start_playback() {
        let mut s = server();
        let m = crate::testing::ready_voice("5", Some(crate::domain::MediaKey::of(b"5")));
        s.state.store.put_message(WALL, &m).unwrap();
        let play = |bearer: Option<&str>| {
            let mut r = axum::http::Request::post("/api/walls/main/play")
                .header(header::CONTENT_TYPE, "application/json");
            if let Some(b) = bearer {
                r = r.header(header::AUTHORIZATION, format!("Bearer {b}"));
            }
            r.body(Body::from(r#"{"participant_id":"telegram:u1"}"#))
                .unwrap()
        };
        let (status, _, _) = call(&s, play(None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _, _) = call(&s, play(Some("s3cre7"))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(s.player.try_next(), None);
        let (status, _, body) = call(&s, play(Some("s3cret"))).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(
            s.player.try_next(),
            Some(Command::PlayNow {
                wall: WALL.into(),
                id: "5".into()
            })
        );
    }

    #[tokio::test]
    async fn the_admin_api_answers_only_the_operator() {
        let s = server();
        let (status, _, body) = call(&s, get("/api/admin/whoami")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert!(body.contains("\"code\":\"unauthorized\""), "{body}");
        let mut wrong = get("/api/admin/whoami");
        wrong.headers_mut().insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cre7"),
        );
        assert_eq!(call(&s, wrong).await.0, StatusCode::UNAUTHORIZED);
        let mut right = get("/api/admin/whoami");
        right.headers_mut().insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        let (status, _, body) = call(&s, right).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, r#"{"actor":"bearer"}"#)
        );
    }

    #[tokio::test]
    async fn media_is_served_immutable_and_never_sniffed() {
        let s = server();
        let key = s
            .state
            .store
            .put_media(b"<html>x</html>", "text/html")
            .unwrap();
        let (status, _, _) = call(&s, get(&format!("/media/{key}"))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, headers, body) = call(&s, admin_get(&format!("/media/{key}"))).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "<html>x</html>"));
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("sandbox"));
        let (status, _, _) = call(&s, admin_get("/media/not-a-key")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    /// An evicted voice (`[storage] max_bytes`): the message stays, playing it is refused with 409
    /// `not_ready`, its media answers 404, and `/healthz` has the figures.
    #[tokio::test]
    async fn an_evicted_voice_is_not_ready_and_healthz_shows_the_media_figures() {
        let s = server();
        let store = &s.state.store;
        let key = store.put_media(&[7u8; 300], "audio/ogg").unwrap();
        let mut m = crate::testing::ready_voice("1", Some(key.clone()));
        // Taken off the wall: no longer shown.
        m.moderation = crate::domain::Moderation::Removed;
        store.put_message(WALL, &m).unwrap();
        let (status, _, _) = call(&s, admin_get(&format!("/media/{key}"))).await;
        assert_eq!(status, StatusCode::OK);
        store.set_media_cap(100);
        let (_, _, body) = call(&s, get("/healthz")).await;
        let health: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            health["media"],
            json!({"bytes": 300, "max_bytes": 100, "evicted_blobs": 0, "evicted_bytes": 0})
        );
        let evicted = crate::evict::Evictor::new(store.clone(), s.state.board.clone())
            .run_once()
            .unwrap();
        assert_eq!(evicted, (1, 300));

        let (status, _, body) = call(&s, get("/healthz")).await;
        assert_eq!(status, StatusCode::OK);
        let health: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            health["media"],
            json!({"bytes": 0, "max_bytes": 100, "evicted_blobs": 1, "evicted_bytes": 300})
        );
        let play = axum::http::Request::post("/api/admin/walls/main/messages/1/play")
            .header(header::AUTHORIZATION, "Bearer s3cret")
            .body(Body::empty())
            .unwrap();
        let (status, _, body) = call(&s, play).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(body.contains("\"code\":\"not_ready\""), "{body}");
        let (status, _, _) = call(&s, admin_get(&format!("/media/{key}"))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(
            store.message(WALL, "1").unwrap().is_some(),
            "the message stays"
        );
        // The console's health has them too.
        let (_, _, body) = call(&s, admin_get("/api/admin/health")).await;
        let health: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(health["media"]["evicted_blobs"], 1, "{body}");
    }
}
