//! The operator's privacy controls:
//!
//! - `POST /api/admin/walls/{id}/purge {"confirm": "<wall id>"}` — delete the wall's people, voices,
//!   the profiles only it uses, its media and caches (`privacy::erase`); the wall's display sees everyone
//!   leave. Without the wall's id typed in `confirm`: 400 `confirm_mismatch`.
//! - `GET /api/admin/walls/{id}/export` — a zip of the wall's approved voices with `manifest.json` and
//!   `manifest.csv` (`privacy::export`), streamed as it is written (chunked; the archive is never whole
//!   in memory).

use crate::app::AppState;
use crate::audit::Audit;
use crate::clock::Clock;
use crate::http::access::Operator;
use crate::http::error::ApiError;
use crate::playback::Playback;
use crate::privacy::erase::Eraser;
use crate::privacy::export::{rfc3339, write_archive};
use crate::store::Store;
use crate::walls::Walls;
use axum::body::{Body, Bytes};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/admin/walls/{id}/purge", post(purge))
        .route("/api/admin/walls/{id}/export", get(export))
}

/// The eraser over the app's store, media and events; the config's pinned media (wall backgrounds)
/// are never deleted.
impl FromRef<AppState> for Eraser {
    fn from_ref(state: &AppState) -> Self {
        Eraser::new(
            state.store.clone(),
            state.media.clone(),
            state.hub.clone(),
            &state.config.walls,
        )
    }
}

fn known_wall(walls: &Walls, id: &str) -> Result<(), ApiError> {
    walls
        .get(id)
        .map(|_| ())
        .ok_or_else(|| ApiError::not_found(format!("no wall {id:?}")))
}

#[derive(Deserialize)]
struct PurgeRequest {
    confirm: Option<String>,
}

#[tracing::instrument(skip_all, fields(wall = %id))]
async fn purge(
    op: Operator,
    State(walls): State<Walls>,
    State(eraser): State<Eraser>,
    State(playback): State<Playback>,
    State(audit): State<Audit>,
    Path(id): Path<String>,
    body: Result<Json<PurgeRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    known_wall(&walls, &id)?;
    let confirm = body.ok().and_then(|Json(b)| b.confirm);
    if confirm.as_deref() != Some(id.as_str()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "confirm_mismatch",
            format!("to purge this wall, send {{\"confirm\": {id:?}}} (its id, typed)"),
        ));
    }
    let wall = id.clone();
    let erased = tokio::task::spawn_blocking(move || eraser.purge(&wall))
        .await
        .map_err(ApiError::internal)??;
    // Nothing of the wall stays queued or playing (the queue lives in the player's memory).
    for (wall, message) in playback.queue() {
        if wall == id {
            playback.remove(&wall, &message);
        }
    }
    if let Some(now) = playback.now_playing(&id) {
        playback.remove(&id, &now.message_id);
    }
    audit.record(&op.actor, "wall.purge", Some(&id), None, &erased.detail())?;
    Ok(Json(json!({"wall": id, "erased": erased})).into_response())
}

#[tracing::instrument(skip_all, fields(wall = %id))]
async fn export(
    op: Operator,
    State(walls): State<Walls>,
    State(store): State<Store>,
    State(clock): State<Clock>,
    State(audit): State<Audit>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    known_wall(&walls, &id)?;
    let now = clock.now_ms();
    let filename = format!("voicewall-{id}-{}.zip", &rfc3339(now)[..10]);
    // Recorded when it starts: an export hands personal data out, whether or not the download ends.
    audit.record(&op.actor, "wall.export", Some(&id), None, "")?;
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
    let wall = id.clone();
    tokio::task::spawn_blocking(move || {
        let mut out = Chunks::new(tx.clone());
        match write_archive(&store, &wall, now, &mut out) {
            Ok(done) => tracing::info!(
                wall,
                messages = done.messages,
                audio_bytes = done.audio_bytes,
                "export sent"
            ),
            Err(e) => {
                // The status is long sent: end the body with an error, so the client sees a broken
                // download rather than a short archive.
                tracing::error!(wall, error = %e, "export failed midway");
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/zip"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
                    .map_err(ApiError::internal)?,
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response())
}

/// The archive as a stream of chunks: `Write` on the blocking side, a bounded channel to the response
/// (a slow client slows the writer down; a client that left stops it with `BrokenPipe`).
struct Chunks {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 64 * 1024;

impl Chunks {
    fn new(tx: mpsc::Sender<std::io::Result<Bytes>>) -> Self {
        Self {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl std::io::Write for Chunks {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}
