//! `GET /api/admin/health`: the evening at a glance — the sound output, the queue, per wall the
//! participants, messages by moderation and status and the failed fetches with their reasons, the disk
//! (store size, free space where the data dir is), uptime and version. The per-wall figures come from
//! the store's running tally (`Store::tally`), not from reading the wall's messages.

use super::moderation::Counts;
use crate::app::AppState;
use crate::http::access::Operator;
use crate::http::error::ApiError;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/admin/health", get(health))
}

async fn health(
    _op: Operator,
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut walls = Vec::new();
    for w in state.walls.iter() {
        let id = &w.config.id;
        // Kept by the store as messages change: no scan of the wall per call.
        let tally = state.store.tally(id)?;
        walls.push(json!({
            "id": id,
            "participants": tally.participants,
            "counts": Counts::from(&tally),
            "fetching": tally.fetching,
            // The newest failed fetches (at most `tally::FAILED_LISTED`; `counts.failed` has them all).
            "failed_fetches": tally.failed_fetches,
            // The wall's link with its platform (e.g. Telegram's setWebhook result), when it has one.
            "provider_status": w.provider.status(),
        }));
    }
    let data_dir = state.config.data_dir();
    let free = fs2::available_space(&data_dir).ok();
    let audio = state.playback.status();
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": state.metrics.uptime_s(),
        "audio": audio,
        "queue_len": state.playback.queue().len(),
        "inbox_pending": state.store.inbox_len(),
        "notices": state.store.notices(),
        "disk": {"used_bytes": state.store.size_on_disk(), "free_bytes": free},
        "media": state.store.media_usage(),
        "walls": walls,
    })))
}
