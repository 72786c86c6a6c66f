//! The operator drives the kiosk's speakers: pause / resume / skip / stop, the volume, the queue in
//! order (`GET /api/admin/playback`), play next and take out of the queue. Every change is audited.

use crate::app::AppState;
use crate::audit::Audit;
use crate::domain::{MessageKind, MessageStatus, PlaybackState};
use crate::http::access::Operator;
use crate::http::error::ApiError;
use crate::http::state::known_wall;
use crate::playback::Playback;
use crate::store::Store;
use crate::walls::Walls;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/admin/playback", get(show))
        .route("/api/admin/playback/volume", put(volume))
        .route("/api/admin/playback/{action}", post(control))
        .route("/api/admin/playback/queue/{wall}/{mid}/next", post(next))
        .route("/api/admin/playback/queue/{wall}/{mid}", delete(unqueue))
}

/// The player as the operator sees it, with each queued message's sender name.
pub fn state_of(playback: &Playback, store: &Store) -> PlaybackState {
    playback.state(|wall, id| {
        store
            .message(wall, id)
            .ok()
            .flatten()
            .and_then(|m| store.participant(wall, &m.participant_id).ok().flatten())
            .map(|p| p.display_name)
            .unwrap_or_default()
    })
}

async fn show(
    _op: Operator,
    State(playback): State<Playback>,
    State(store): State<Store>,
) -> Json<PlaybackState> {
    Json(state_of(&playback, &store))
}

async fn control(
    op: Operator,
    State(playback): State<Playback>,
    State(audit): State<Audit>,
    Path(action): Path<String>,
) -> Result<StatusCode, ApiError> {
    match action.as_str() {
        "pause" => playback.pause(),
        "resume" => playback.resume(),
        "skip" => playback.skip(),
        "stop" => playback.stop(),
        other => {
            return Err(ApiError::not_found(format!(
                "no playback action {other:?} (pause, resume, skip, stop)"
            )))
        }
    }
    audit.record(&op.actor, &format!("playback.{action}"), None, None, "")?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize)]
struct Volume {
    volume: f32,
}

async fn volume(
    op: Operator,
    State(playback): State<Playback>,
    State(audit): State<Audit>,
    Json(req): Json<Volume>,
) -> Result<StatusCode, ApiError> {
    if !(0.0..=1.0).contains(&req.volume) {
        return Err(ApiError::bad_request("volume must be between 0 and 1"));
    }
    playback.set_volume(req.volume);
    audit.record(
        &op.actor,
        "playback.volume",
        None,
        None,
        &format!("volume={}", req.volume),
    )?;
    Ok(StatusCode::ACCEPTED)
}

async fn next(
    op: Operator,
    State(walls): State<Walls>,
    State(store): State<Store>,
    State(playback): State<Playback>,
    State(audit): State<Audit>,
    Path((wall, mid)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    known_wall(&walls, &wall)?;
    let Some(m) = store.message(&wall, &mid)? else {
        return Err(ApiError::not_found(format!(
            "no message {mid:?} on wall {wall:?}"
        )));
    };
    if m.status != MessageStatus::Ready || m.kind != MessageKind::Voice || m.media.is_none() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_ready",
            "only a ready voice message can be queued",
        ));
    }
    playback.play_next(&wall, &mid);
    audit.record(&op.actor, "queue.next", Some(&wall), Some(&mid), "")?;
    Ok(StatusCode::ACCEPTED)
}

async fn unqueue(
    op: Operator,
    State(walls): State<Walls>,
    State(playback): State<Playback>,
    State(audit): State<Audit>,
    Path((wall, mid)): Path<(String, String)>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    known_wall(&walls, &wall)?;
    let queued = playback
        .queue()
        .iter()
        .any(|(w, i)| w == &wall && i == &mid);
    let playing = playback
        .now_playing(&wall)
        .is_some_and(|n| n.message_id == mid);
    if !queued && !playing {
        return Err(ApiError::not_found(format!(
            "message {mid:?} is not in the queue"
        )));
    }
    playback.remove(&wall, &mid);
    audit.record(&op.actor, "queue.remove", Some(&wall), Some(&mid), "")?;
    Ok((StatusCode::ACCEPTED, Json(json!({"message_id": mid}))))
}
