//! The operator's wall controls: show or hide the join QR, clear the wall (the store keeps everything),
//! rotate the join token now (the old link stops at once; 409 for a platform without one), and the idle
//! loop. Every change is audited.

use crate::app::AppState;
use crate::audit::Audit;
use crate::board::Board;
use crate::http::access::Operator;
use crate::http::error::ApiError;
use crate::http::state::known_wall;
use crate::provider::RotateError;
use crate::walls::Walls;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/admin/walls/{id}/qr", put(qr))
        .route("/api/admin/walls/{id}/clear", post(clear))
        .route("/api/admin/walls/{id}/join/rotate", post(rotate))
        .route("/api/admin/walls/{id}/idle-loop", put(idle_loop))
}

#[derive(Deserialize)]
struct Visible {
    visible: bool,
}

async fn qr(
    op: Operator,
    State(walls): State<Walls>,
    State(board): State<Board>,
    State(audit): State<Audit>,
    Path(id): Path<String>,
    Json(req): Json<Visible>,
) -> Result<Json<serde_json::Value>, ApiError> {
    known_wall(&walls, &id)?;
    board.set_qr_visible(&id, req.visible)?;
    audit.record(
        &op.actor,
        "wall.qr",
        Some(&id),
        None,
        &format!("visible={}", req.visible),
    )?;
    Ok(Json(json!({"qr_visible": req.visible})))
}

async fn clear(
    op: Operator,
    State(walls): State<Walls>,
    State(board): State<Board>,
    State(audit): State<Audit>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    known_wall(&walls, &id)?;
    let s = board.clear(&id)?;
    audit.record(&op.actor, "wall.clear", Some(&id), None, "")?;
    Ok(Json(json!({"cleared_at": s.cleared_at})))
}

async fn rotate(
    op: Operator,
    State(walls): State<Walls>,
    State(audit): State<Audit>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let wall = known_wall(&walls, &id)?;
    match wall.provider.rotate_join() {
        Ok(()) => {}
        Err(RotateError::NoJoinToken) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "no_join_token",
                format!(
                    "wall {id:?} ({}) has no join token to rotate",
                    wall.provider.kind().as_str()
                ),
            ))
        }
        Err(RotateError::Failed(e)) => return Err(ApiError::internal(e)),
    }
    audit.record(&op.actor, "wall.rotate_join", Some(&id), None, "")?;
    Ok(Json(json!({"join_url": wall.provider.join_info().url})))
}

#[derive(Deserialize)]
struct IdleLoop {
    seconds: Option<u64>,
}

async fn idle_loop(
    op: Operator,
    State(walls): State<Walls>,
    State(board): State<Board>,
    State(audit): State<Audit>,
    Path(id): Path<String>,
    Json(req): Json<IdleLoop>,
) -> Result<Json<serde_json::Value>, ApiError> {
    known_wall(&walls, &id)?;
    if req.seconds.is_some_and(|s| s == 0 || s > 86_400) {
        return Err(ApiError::bad_request(
            "seconds must be 1..=86400, or null to turn the idle loop off",
        ));
    }
    board.set_idle_loop(&id, req.seconds)?;
    let detail = match req.seconds {
        Some(s) => format!("seconds={s}"),
        None => "off".to_string(),
    };
    audit.record(&op.actor, "wall.idle_loop", Some(&id), None, &detail)?;
    Ok(Json(json!({"idle_loop_s": req.seconds})))
}
