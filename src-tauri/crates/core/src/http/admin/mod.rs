//! The operator's API, `/api/admin/…`: every handler takes `access::Operator`, so a call without the
//! operator's credential is 401 before it does anything. Each concern is a submodule contributing its own
//! routes here.

pub mod audit;
pub mod health;
pub mod moderation;
pub mod playback;
pub mod privacy;
pub mod session;
pub mod wall;

use crate::app::AppState;
use crate::http::access::Operator;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/admin/whoami", get(whoami))
        .merge(session::routes())
        .merge(audit::routes())
        .merge(moderation::routes())
        .merge(playback::routes())
        .merge(wall::routes())
        .merge(health::routes())
        .merge(privacy::routes())
}

/// Who the console is logged in as (the console's check that its session is still valid).
async fn whoami(op: Operator) -> Json<serde_json::Value> {
    Json(json!({"actor": op.actor}))
}
