//! What a wall page loads beyond the compact state (`GET /api/walls/{id}`): older messages and older
//! participants a page at a time, and a message's waveform when the wall spotlights it. Display
//! audience, like the state. Each request reads the wall from a cursor and stops after its page (the
//! store's indexes): none scans a whole wall.

use super::access::Display;
use super::error::ApiError;
use super::state::{
    known_wall, MessagePage, MessageView, ParticipantPage, ParticipantView, WaveformView, PAGE_MAX,
    STATE_MESSAGES,
};
use crate::app::AppState;
use crate::store::ParticipantCursor;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct PageQuery {
    before: Option<String>,
    limit: Option<usize>,
}

impl PageQuery {
    /// `?before=` as `what` (400 when it is not one).
    fn before<T: std::str::FromStr>(&self, what: &str) -> Result<Option<T>, ApiError> {
        self.before
            .as_deref()
            .map(|b| {
                b.parse()
                    .map_err(|_| ApiError::bad_request(format!("before={b:?} is not {what}")))
            })
            .transpose()
    }

    fn limit(&self) -> Result<usize, ApiError> {
        match self.limit.unwrap_or(STATE_MESSAGES) {
            n @ 1..=PAGE_MAX => Ok(n),
            n => Err(ApiError::bad_request(format!(
                "limit {n} is out of range (1..={PAGE_MAX})"
            ))),
        }
    }
}

fn no_store(body: impl serde::Serialize) -> Response {
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(body),
    )
        .into_response()
}

/// `GET /api/walls/{id}/messages?before={message id}&limit=`: the messages the wall shows that are older
/// than `before` (the newest without it), oldest first, and the cursor of the page before.
pub async fn messages(
    State(state): State<AppState>,
    _display: Display,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    known_wall(&state.walls, &id)?;
    let limit = q.limit()?;
    let before = q.before::<u64>("a message id")?;
    let (mut newest_first, before) = state.board.recent_messages(&id, before, limit)?;
    newest_first.reverse();
    Ok(no_store(MessagePage {
        messages: newest_first.iter().map(MessageView::from).collect(),
        before,
    }))
}

/// `GET /api/walls/{id}/participants?before={cursor}&limit=`: the participants the wall shows who
/// joined before the cursor's (the newest without it), oldest first, and the cursor of the page before.
pub async fn participants(
    State(state): State<AppState>,
    _display: Display,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    known_wall(&state.walls, &id)?;
    let limit = q.limit()?;
    let before = q.before::<ParticipantCursor>("a participant cursor")?;
    let (mut newest_first, before) =
        state
            .board
            .recent_participants(&id, before.as_ref(), limit)?;
    newest_first.reverse();
    Ok(no_store(ParticipantPage {
        participants: newest_first.iter().map(ParticipantView::from).collect(),
        before: before.map(|c| c.to_string()),
    }))
}

/// `GET /api/walls/{id}/messages/{mid}/waveform`: a shown message's waveform (404 for a message the
/// wall does not show). It never changes once analysed, but an unanalysed voice gets one later.
pub async fn waveform(
    State(state): State<AppState>,
    _display: Display,
    Path((id, mid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    known_wall(&state.walls, &id)?;
    let m = state
        .board
        .shown_message(&id, &mid)?
        .ok_or_else(|| ApiError::not_found(format!("no message {mid:?} on wall {id:?}")))?;
    Ok(no_store(WaveformView {
        message_id: m.id,
        waveform: m.waveform,
    }))
}
