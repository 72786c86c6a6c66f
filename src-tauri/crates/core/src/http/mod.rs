//! The embedded HTTP server: `fn router(state) -> Router`. Shared routes live here (wall page and state,
//! events, QR, media, `/join/{wall}` — which asks the wall's provider what to do); each wall's provider
//! adds its own routes (webhooks, join flow) through `WallProvider::routes`.
//!
//! - `error` — `ApiError`, the `{code, message}` answer of every refusal;
//! - `client_ip` — the client's address as an extractor.
//!
//! Live updates: `GET /api/walls/{id}/events` is Server-Sent Events; the event name is the event's
//! `type` and its data the JSON of `events::WallEvent`. A client rebuilds its state from
//! `GET /api/walls/{id}` on (re)connect.

pub mod client_ip;
pub mod error;

use crate::app::AppState;
use crate::events::WallEvent;
use crate::lang::Lang;
use crate::ui;
use crate::walls::Wall;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use client_ip::ClientIp;
use error::ApiError;
use futures_util::Stream;
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use std::time::Duration;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;
use tower_http::trace::TraceLayer;

pub fn router(state: AppState) -> Router {
    let walls = state.walls.clone();
    let shared = Router::new()
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
        .route("/join/{id}", get(join))
        // What the providers' routes look like, for walls that do not exist (or another platform's):
        // a JSON 404 rather than an empty one.
        .route("/join/{id}/{*rest}", axum::routing::any(no_such_route))
        .route("/api/join/{id}/{*rest}", axum::routing::any(no_such_route))
        .route(
            "/webhook/{platform}/{id}",
            axum::routing::any(no_such_route),
        )
        .with_state(state);
    walls
        .iter()
        .fold(shared, |router, wall| {
            router.merge(wall.provider.clone().routes())
        })
        .layer(TraceLayer::new_for_http())
}

async fn index(State(state): State<AppState>) -> Response {
    let first = state
        .walls
        .first()
        .map(|w| w.config.id.clone())
        .unwrap_or_default();
    axum::response::Redirect::temporary(&format!("/wall/{first}")).into_response()
}

async fn healthz(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "walls": state.walls.ids().collect::<Vec<_>>(),
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
            state.metrics.uptime_s(),
        ),
    )
}

fn known_wall<'a>(state: &'a AppState, id: &str) -> Result<&'a Wall, ApiError> {
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
        "provider": wall.provider.kind(),
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
        // Compare digests in constant time: neither the token's bytes nor its length leak.
        crate::secret::same(
            &sha2::Sha256::digest(b.as_bytes()),
            &sha2::Sha256::digest(state.admin_token.as_bytes()),
        )
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
    ClientIp(ip): ClientIp,
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

/// `GET /join/{wall}`: where the wall's QR (or a shared link) takes a phone — the wall's provider
/// decides (the web join page, a platform's consent page or deep link).
async fn join(State(state): State<AppState>, Path(id): Path<String>, request: Request) -> Response {
    match state.wall(&id) {
        Some(wall) => wall.provider.join(request).await,
        None => ui::no_such_wall(Lang::from_headers(request.headers(), "zh-CN")),
    }
}

async fn no_such_route(request: Request) -> ApiError {
    ApiError::not_found(format!("no wall or route at {}", request.uri().path()))
}
