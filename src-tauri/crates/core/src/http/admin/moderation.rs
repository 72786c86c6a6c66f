//! The operator's view of the walls and their messages, and moderation: `GET /api/admin/walls`,
//! `GET /api/admin/walls/{id}/messages`, its live stream `…/events` (SSE: `message`, `queue`, `hello`,
//! `heartbeat`), `PUT …/moderation`, approve / reject / remove / play one message, bulk approve, ban and
//! unban a participant. Every change is audited.

use crate::app::{AppState, Shutdown};
use crate::audit::Audit;
use crate::board::Board;
use crate::domain::{
    AdminMessage, MessageKind, MessageStatus, Moderation, ModerationMode, WallSettings,
};
use crate::events::Hub;
use crate::http::access::Operator;
use crate::http::error::ApiError;
use crate::http::state::{admin_event_data, admin_views, known_wall, AdminMessageView};
use crate::playback::Playback;
use crate::walls::Walls;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::convert::Infallible;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/admin/walls", get(walls))
        .route("/api/admin/walls/{id}/messages", get(messages))
        .route("/api/admin/walls/{id}/events", get(events))
        .route("/api/admin/walls/{id}/moderation", put(set_mode))
        .route("/api/admin/walls/{id}/messages/approve", post(approve_many))
        .route("/api/admin/walls/{id}/messages/{mid}/{action}", post(act))
        .route(
            "/api/admin/walls/{id}/participants/{pid}/{action}",
            post(ban),
        )
}

/// Messages by moderation and by status (`failed`).
#[derive(Serialize, Default, Debug, PartialEq)]
pub struct Counts {
    pub pending: usize,
    pub approved: usize,
    pub rejected: usize,
    pub removed: usize,
    pub failed: usize,
}

impl From<&crate::tally::Tally> for Counts {
    fn from(t: &crate::tally::Tally) -> Self {
        Counts {
            pending: t.pending,
            approved: t.approved,
            rejected: t.rejected,
            removed: t.removed,
            failed: t.failed,
        }
    }
}

#[derive(Serialize)]
struct WallSummary {
    id: String,
    title: String,
    provider: crate::domain::Provider,
    moderation: ModerationMode,
    qr_visible: bool,
    idle_loop_s: Option<u64>,
    participants: usize,
    counts: Counts,
}

async fn walls(
    _op: Operator,
    State(walls): State<Walls>,
    State(board): State<Board>,
    State(store): State<crate::store::Store>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut out = Vec::new();
    for w in walls.iter() {
        let id = &w.config.id;
        let WallSettings {
            moderation,
            qr_visible,
            idle_loop_s,
            ..
        } = board.settings(id)?;
        let tally = store.tally(id)?;
        out.push(WallSummary {
            id: id.clone(),
            title: w.config.title.clone(),
            provider: w.provider.kind(),
            moderation,
            qr_visible,
            idle_loop_s,
            participants: tally.participants,
            counts: Counts::from(&tally),
        });
    }
    Ok(Json(serde_json::to_value(out).map_err(ApiError::internal)?))
}

async fn messages(
    _op: Operator,
    State(walls): State<Walls>,
    State(board): State<Board>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    known_wall(&walls, &id)?;
    Ok(Json(
        json!({"messages": admin_views(&board.admin_messages(&id)?)}),
    ))
}

async fn events(
    _op: Operator,
    State(walls): State<Walls>,
    State(hub): State<Hub>,
    State(shutdown): State<Shutdown>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    known_wall(&walls, &id)?;
    let wall = id.clone();
    let stream = BroadcastStream::new(hub.subscribe_admin()).filter_map(move |item| match item {
        Ok(ev) if ev.concerns(&wall) => Some(Ok(Event::default()
            .event(ev.name())
            .data(admin_event_data(&ev)))),
        Ok(_) => None,
        // A slow console missed events: it reloads the lists.
        Err(BroadcastStreamRecvError::Lagged(n)) => Some(Ok(Event::default()
            .event("resync")
            .data(json!({"missed": n}).to_string()))),
    });
    Ok(crate::http::sse::live(
        json!({"wall": id}),
        stream,
        shutdown,
    ))
}

#[derive(Deserialize)]
struct ModeRequest {
    mode: ModerationMode,
}

async fn set_mode(
    op: Operator,
    State(walls): State<Walls>,
    State(board): State<Board>,
    State(audit): State<Audit>,
    Path(id): Path<String>,
    Json(req): Json<ModeRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    known_wall(&walls, &id)?;
    let s = board.set_mode(&id, req.mode)?;
    let mode = serde_json::to_value(s.moderation).map_err(ApiError::internal)?;
    audit.record(
        &op.actor,
        "wall.moderation",
        Some(&id),
        None,
        &format!("mode={}", mode.as_str().unwrap_or_default()),
    )?;
    Ok(Json(json!({"mode": mode})))
}

/// The handles a moderation action works with.
struct Desk<'a> {
    board: &'a Board,
    playback: &'a Playback,
}

impl Desk<'_> {
    /// Set a message's moderation and follow it on the speakers: newly approved ready voices are
    /// queued; a message taken off the wall leaves the queue (and stops if it plays).
    fn moderate(&self, wall: &str, mid: &str, to: Moderation) -> Result<AdminMessage, ApiError> {
        let Some((before, after)) = self.board.moderate(wall, mid, to)? else {
            return Err(ApiError::not_found(format!(
                "no message {mid:?} on wall {wall:?}"
            )));
        };
        if to == Moderation::Approved {
            if before.moderation != Moderation::Approved
                && after.status == MessageStatus::Ready
                && after.kind == MessageKind::Voice
                && !self.board.is_banned(wall, &after.participant_id)?
            {
                self.playback.enqueue(wall, mid);
            }
        } else {
            self.playback.remove(wall, mid);
        }
        Ok(self.board.admin_message(wall, &after)?)
    }
}

async fn act(
    op: Operator,
    State(walls): State<Walls>,
    State(board): State<Board>,
    State(store): State<crate::store::Store>,
    State(playback): State<Playback>,
    State(audit): State<Audit>,
    Path((id, mid, action)): Path<(String, String, String)>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    known_wall(&walls, &id)?;
    let desk = Desk {
        board: &board,
        playback: &playback,
    };
    let to = match action.as_str() {
        "approve" => Moderation::Approved,
        "reject" => Moderation::Rejected,
        "remove" => Moderation::Removed,
        "play" => {
            let Some(m) = store.message(&id, &mid)? else {
                return Err(ApiError::not_found(format!(
                    "no message {mid:?} on wall {id:?}"
                )));
            };
            if m.status != MessageStatus::Ready || m.media.is_none() {
                // (a text or a failed fetch has nothing to play)
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "not_ready",
                    "that message has no playable media yet",
                ));
            }
            playback.play_now(&id, &mid);
            audit.record(&op.actor, "message.play", Some(&id), Some(&mid), "")?;
            return Ok((StatusCode::ACCEPTED, Json(json!({"message_id": mid}))));
        }
        other => {
            return Err(ApiError::not_found(format!(
                "no action {other:?} (approve, reject, remove, play)"
            )))
        }
    };
    let m = desk.moderate(&id, &mid, to)?;
    audit.record(
        &op.actor,
        &format!("message.{action}"),
        Some(&id),
        Some(&mid),
        "",
    )?;
    Ok((
        StatusCode::OK,
        Json(serde_json::to_value(AdminMessageView::from(&m)).map_err(ApiError::internal)?),
    ))
}

#[derive(Deserialize)]
struct Ids {
    ids: Vec<String>,
}

async fn approve_many(
    op: Operator,
    State(walls): State<Walls>,
    State(board): State<Board>,
    State(playback): State<Playback>,
    State(audit): State<Audit>,
    Path(id): Path<String>,
    Json(req): Json<Ids>,
) -> Result<Json<serde_json::Value>, ApiError> {
    known_wall(&walls, &id)?;
    if req.ids.is_empty() || req.ids.len() > 1000 {
        return Err(ApiError::bad_request("give 1 to 1000 message ids"));
    }
    let desk = Desk {
        board: &board,
        playback: &playback,
    };
    let mut approved = Vec::new();
    let mut missing = Vec::new();
    for mid in &req.ids {
        match desk.moderate(&id, mid, Moderation::Approved) {
            Ok(_) => approved.push(mid.clone()),
            Err(e) if e.status == StatusCode::NOT_FOUND => missing.push(mid.clone()),
            Err(e) => return Err(e),
        }
    }
    audit.record(
        &op.actor,
        "message.approve_many",
        Some(&id),
        None,
        &format!("ids={}", approved.join(",")),
    )?;
    Ok(Json(json!({"approved": approved, "missing": missing})))
}

async fn ban(
    op: Operator,
    State(walls): State<Walls>,
    State(board): State<Board>,
    State(playback): State<Playback>,
    State(audit): State<Audit>,
    Path((id, pid, action)): Path<(String, String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    known_wall(&walls, &id)?;
    let banned = match action.as_str() {
        "ban" => true,
        "unban" => false,
        other => {
            return Err(ApiError::not_found(format!(
                "no action {other:?} (ban, unban)"
            )))
        }
    };
    if board.participant(&id, &pid)?.is_none() {
        return Err(ApiError::not_found(format!(
            "no participant {pid:?} on wall {id:?}"
        )));
    }
    let theirs = board.set_banned(&id, &pid, banned)?;
    if banned {
        for m in &theirs {
            playback.remove(&id, &m.id);
        }
    }
    audit.record(
        &op.actor,
        &format!("participant.{action}"),
        Some(&id),
        Some(&pid),
        "",
    )?;
    Ok(Json(
        json!({"participant_id": pid, "banned": banned, "messages": theirs.len()}),
    ))
}
