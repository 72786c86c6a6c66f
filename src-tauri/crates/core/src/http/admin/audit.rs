//! `GET /api/admin/audit?limit=N`: the operator's actions, newest first (default 100, at most 1000).

use crate::app::AppState;
use crate::audit::Audit;
use crate::http::access::Operator;
use crate::http::error::ApiError;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/admin/audit", get(list))
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn list(
    _op: Operator,
    State(audit): State<Audit>,
    Query(q): Query<Limit>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > crate::audit::MAX_LIMIT {
        return Err(ApiError::bad_request(format!(
            "limit must be 1..={}",
            crate::audit::MAX_LIMIT
        )));
    }
    Ok(Json(json!({"entries": audit.recent(limit)?})))
}
