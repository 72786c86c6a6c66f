//! The embedded HTTP server: `fn router(state) -> Router`. Shared routes live here; each provider adds
//! its own (webhooks, join flow) through `providers::*::routes`.
//!
//! Live updates: `GET /api/walls/{id}/events` is Server-Sent Events; the event name is the event's
//! `type` and its data the JSON of `events::WallEvent`. A client rebuilds its state from
//! `GET /api/walls/{id}` on (re)connect.

use crate::app::AppState;
use crate::events::WallEvent;
use crate::ui;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use std::time::Duration;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;
use tower_http::trace::TraceLayer;

/// An error answered to a client: a status and a readable reason, as `{code, message}` JSON.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the kiosk log",
        )
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::FlushTimeout => {
                tracing::error!("store flush timed out");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_busy",
                    "storage did not confirm the write; retry",
                )
            }
            other => Self::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_client_error() {
            tracing::info!(status = %self.status, reason = %self.message, "request refused");
        }
        (
            self.status,
            Json(json!({"code": self.code, "message": self.message})),
        )
            .into_response()
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/wall/{id}", get(wall_page))
        .route("/api/walls/{id}", get(wall_state))
        .route("/api/walls/{id}/events", get(wall_events))
        .route("/api/walls/{id}/qr.svg", get(wall_qr))
        .route("/api/walls/{id}/play", post(play))
        .route("/media/{key}", get(media))
        .route("/ui/{*file}", get(ui_file))
        .merge(crate::providers::web::routes())
        .merge(crate::providers::wechat::routes())
        .merge(crate::providers::telegram::routes())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn index(State(state): State<AppState>) -> Response {
    let first = state
        .config
        .walls
        .first()
        .map(|w| w.id.clone())
        .unwrap_or_default();
    axum::response::Redirect::temporary(&format!("/wall/{first}")).into_response()
}

async fn healthz(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "walls": state.config.walls.iter().map(|w| &w.id).collect::<Vec<_>>(),
        "audio": state.playback.status(),
        "inbox_pending": state.store.inbox_len(),
    }))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(
            state.store.inbox_len(),
            state.store.size_on_disk(),
            crate::startup::uptime_s(),
        ),
    )
}

fn known_wall<'a>(state: &'a AppState, id: &str) -> Result<&'a crate::app::Wall, ApiError> {
    state
        .wall(id)
        .ok_or_else(|| ApiError::not_found(format!("no wall {id:?}")))
}

async fn wall_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    known_wall(&state, &id)?;
    Ok(ui::asset("wall.html"))
}

/// The wall state: contract of `GET /api/walls/{id}`.
pub fn wall_json(state: &AppState, id: &str) -> Result<serde_json::Value, ApiError> {
    let wall = known_wall(state, id)?;
    let participants = state.store.participants(id)?;
    let messages = state.store.messages(id)?;
    let join = wall.provider.join_info();
    Ok(json!({
        "id": wall.config.id,
        "title": wall.config.title,
        "locale": wall.config.locale,
        "provider": wall.provider.provider(),
        "theme": wall.config.theme,
        "demo": state.demo,
        "join": {
            "url": join.url,
            "instructions": join.instructions,
            "qr_svg_url": format!("/api/walls/{id}/qr.svg?v={}", crate::qr::version(&join.url)),
        },
        "participants": participants,
        "messages": messages,
        "playback": state.playback.now_playing(id),
    }))
}

async fn wall_state(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(wall_json(&state, &id)?))
}

async fn wall_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    known_wall(&state, &id)?;
    let rx = state.hub.subscribe(&id).expect("known wall has a channel");
    let stream = BroadcastStream::new(rx).filter_map(|item| match item {
        Ok(ev) => Some(Ok(to_sse(&ev))),
        // A slow client missed events: tell it to rebuild from the state API.
        Err(BroadcastStreamRecvError::Lagged(n)) => Some(Ok(Event::default()
            .event("resync")
            .data(json!({"type": "resync", "missed": n}).to_string()))),
    });
    let hello = tokio_stream::once(Ok(Event::default()
        .event("hello")
        .data(json!({"type": "hello"}).to_string())));
    // A visible heartbeat (SSE comments are invisible to pages) lets the wall detect a dead connection.
    let heartbeat = tokio_stream::wrappers::IntervalStream::new(tokio::time::interval_at(
        tokio::time::Instant::now() + HEARTBEAT,
        HEARTBEAT,
    ))
    .map(|_| {
        Ok(Event::default()
            .event("heartbeat")
            .data(json!({"type": "heartbeat"}).to_string()))
    });
    let stopping = state.clone();
    let events =
        futures_util::StreamExt::take_until(hello.chain(stream).merge(heartbeat), async move {
            stopping.shutting_down().await
        });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(10))))
}

const HEARTBEAT: Duration = Duration::from_secs(15);

fn to_sse(ev: &WallEvent) -> Event {
    Event::default()
        .event(ev.name())
        .data(serde_json::to_string(ev).unwrap_or_default())
}

async fn wall_qr(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let wall = known_wall(&state, &id)?;
    let svg = crate::qr::svg(&wall.provider.join_info().url).map_err(ApiError::internal)?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("image/svg+xml"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
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
/// Who may drive the kiosk's speakers: the kiosk itself (loopback) or the operator's bearer token.
/// Anyone on the venue Wi-Fi could otherwise hijack the speakers.
fn require_local_or_admin(
    state: &AppState,
    ip: std::net::IpAddr,
    headers: &axum::http::HeaderMap,
) -> Result<(), ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let token_ok = bearer.is_some_and(|b| {
        use sha2::Digest;
        // Compare digests: no early exit on the first differing byte of the secret.
        sha2::Sha256::digest(b.as_bytes()) == sha2::Sha256::digest(state.admin_token.as_bytes())
    });
    if ip.is_loopback() || token_ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only the kiosk or the operator (admin token) can start playback",
        ))
    }
}

async fn play(
    State(state): State<AppState>,
    Path(id): Path<String>,
    crate::providers::web::ClientIp(ip): crate::providers::web::ClientIp,
    headers: axum::http::HeaderMap,
    Json(req): Json<PlayRequest>,
) -> Result<Response, ApiError> {
    known_wall(&state, &id)?;
    require_local_or_admin(&state, ip, &headers)?;
    let messages = state.store.messages(&id)?;
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
    if m.status != crate::domain::MessageStatus::Ready {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_ready",
            "that message is not ready to play",
        ));
    }
    state.playback.play_now(&id, &m.id);
    Ok((StatusCode::ACCEPTED, Json(json!({"message_id": m.id}))).into_response())
}

async fn media(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    // Keys are 32 hex digits (content hashes); anything else names no blob.
    if key.len() != 32 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::not_found("no such media"));
    }
    let Some((meta, bytes)) = state.store.media(&key)? else {
        return Err(ApiError::not_found("no such media"));
    };
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_str(&meta.content_type)
                    .unwrap_or(HeaderValue::from_static("application/octet-stream")),
            ),
            // Content-addressed: never changes.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
            // Platform-provided bytes are never interpreted as a page of ours.
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
            ),
        ],
        bytes.to_vec(),
    )
        .into_response())
}

async fn ui_file(Path(file): Path<String>) -> Response {
    ui::asset(&file)
}
