//! `POST /webhook/telegram/{wall}`: Telegram's delivery of one Update.
//!
//! Order: the wall must be a Telegram wall (404); `X-Telegram-Bot-Api-Secret-Token` must be the wall's
//! `secret_token` (401, constant time); the body must fit (413) and be an Update (400). An update the
//! wall takes is stored durably (`AppState::accept`) before the 200; any other update is answered 200
//! with nothing stored, or Telegram would deliver it again. A redelivered update (same `update_id`) is
//! one message. A join (`/start`) is answered with the welcome via sendMessage, after the 200's work
//! is done and only for its first delivery. A message of a sender the operator banned is answered 200
//! and not stored; the sender is told so in their private chat.

use super::bot::Bot;
use super::config::PROVIDER;
use super::secret::{secret_matches, SECRET_HEADER};
use super::update::{self, Parsed};
use crate::board::participant_id;
use crate::domain::InboundKind;
use crate::http::error::ApiError;
use crate::store::Accepted;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;

/// Largest update accepted (real ones are a few kilobytes).
pub const MAX_UPDATE_BYTES: usize = 1024 * 1024;

pub async fn push(
    State(bot): State<Arc<Bot>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match handle(&bot, &headers, body).await {
        Ok(r) => r,
        Err(e) => {
            if e.status.is_client_error() {
                bot.metrics.inc_rejected();
            }
            e.into_response()
        }
    }
}

/// `GET`: where the wall's webhook stands (set, or what the technician must do). No secrets in it.
pub async fn status(
    _op: crate::http::access::Operator,
    State(bot): State<Arc<Bot>>,
) -> Json<super::bot::WebhookStatus> {
    Json(bot.webhook_status())
}

async fn handle(
    bot: &Arc<Bot>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let presented = headers.get(SECRET_HEADER).map(|v| v.as_bytes());
    if !secret_matches(&bot.config.secret_token, presented) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_secret",
            if presented.is_none() {
                "X-Telegram-Bot-Api-Secret-Token is required"
            } else {
                "X-Telegram-Bot-Api-Secret-Token does not match"
            },
        ));
    }
    let body = body.map_err(|rej| ApiError::body_rejected("update", rej))?;
    let accepted = match update::parse_update(&body, &bot.wall, bot.clock.now_ms()) {
        Err(e) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_update",
                e.to_string(),
            ))
        }
        Ok(Parsed::Ignore(reason)) => {
            tracing::debug!(wall = %bot.wall, %reason, "update ignored");
            return Ok(StatusCode::OK.into_response());
        }
        Ok(Parsed::Accept(a)) => *a,
    };
    let says_something = matches!(
        accepted.inbound.kind,
        InboundKind::Media { .. } | InboundKind::Text { .. }
    );
    let participant = participant_id(PROVIDER, &accepted.inbound.sender);
    if says_something && bot.board.is_banned(&bot.wall, &participant)? {
        // Refused; Telegram gets its 200 (no redelivery), the sender a reply in their private chat.
        tracing::info!(wall = %bot.wall, "a banned sender's message refused");
        if let Ok(chat) = accepted.inbound.sender.parse::<i64>() {
            let bot = bot.clone();
            tokio::spawn(async move { bot.say(chat, bot.banned_text(), "banned").await });
        }
        return Ok(StatusCode::OK.into_response());
    }
    // The names first: the profile fetch that the accepted push starts reads them.
    bot.remember_names(&accepted.inbound.sender, &accepted.names)?;
    let stored = bot.inbox.accept(&accepted.inbound).await?;
    if let (Accepted::New(_), Some(chat)) = (stored, accepted.welcome_chat) {
        // Off the request path: Telegram waits for our 200, not for sendMessage.
        let bot = bot.clone();
        tokio::spawn(async move { bot.welcome(chat).await });
    }
    Ok(StatusCode::OK.into_response())
}
