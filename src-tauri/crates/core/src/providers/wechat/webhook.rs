//! `GET /webhook/wechat/{wall}` (server verification) and `POST /webhook/wechat/{wall}` (pushes, in
//! plaintext, compatible or safe mode). A push is acknowledged only once it is durably in the inbox
//! (`Inbox::accept`); WeChat retries an unanswered push three times and the dedup key (MsgId, or
//! sender + CreateTime for events) makes the four deliveries one message.
//!
//! Refusals: bad signature, stale timestamp or a (timestamp, nonce) replayed with another body → 401,
//! a plaintext push to a wall with an encoding_aes_key → 403, appid of another account → 403, malformed XML or DOCTYPE → 400,
//! body over 1 MiB → 413, unknown or non-WeChat wall → 404 (the server's), ToUserName of another account → 400.

use super::account::Account;
use super::config::PROVIDER;
use super::crypto;
use super::xml::{self, Push, PushKind, XmlError};
use crate::domain::{Inbound, InboundKind, MediaRef, MessageKind};
use crate::http::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

/// Query parameters WeChat puts on every callback.
#[derive(Debug, Default, Deserialize)]
pub struct CallbackQuery {
    pub signature: Option<String>,
    pub timestamp: Option<String>,
    pub nonce: Option<String>,
    pub echostr: Option<String>,
    pub encrypt_type: Option<String>,
    pub msg_signature: Option<String>,
    pub openid: Option<String>,
}

fn refused(p: &Account, e: ApiError) -> Response {
    if e.status.is_client_error() {
        p.metrics.inc_rejected();
    }
    e.into_response()
}

/// How far a push's signed timestamp may be from our clock.
const MAX_PUSH_AGE_S: u64 = 300;

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", message)
}

/// Check `signature = sha1(sorted(token, timestamp, nonce))`; returns (timestamp, nonce).
fn check_url_signature<'q>(
    p: &Account,
    q: &'q CallbackQuery,
) -> Result<(&'q str, &'q str), ApiError> {
    let (Some(sig), Some(ts), Some(nonce)) = (&q.signature, &q.timestamp, &q.nonce) else {
        return Err(unauthorized("signature, timestamp and nonce are required"));
    };
    let expected = crypto::signature(&[&p.config.token, ts, nonce]);
    if !crypto::signature_matches(&expected, sig) {
        return Err(unauthorized("signature does not match"));
    }
    Ok((ts, nonce))
}

/// Server verification: answer `echostr` verbatim when the signature is good.
#[tracing::instrument(skip_all, fields(wall = %p.wall))]
pub async fn verify(State(p): State<Arc<Account>>, Query(q): Query<CallbackQuery>) -> Response {
    let result = (|| {
        check_url_signature(&p, &q)?;
        let echo = q
            .echostr
            .clone()
            .ok_or_else(|| ApiError::bad_request("echostr is required"))?;
        Ok::<_, ApiError>(echo)
    })();
    match result {
        Ok(echo) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], echo).into_response(),
        Err(e) => refused(&p, e),
    }
}

/// A push: verify, parse, store durably, then answer "success" or a passive reply.
#[tracing::instrument(skip_all, fields(wall = %p.wall))]
pub async fn push(
    State(p): State<Arc<Account>>,
    Query(q): Query<CallbackQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match handle_push(&p, &q, body).await {
        Ok(r) => r,
        Err(e) => refused(&p, e),
    }
}

fn xml_error(e: XmlError) -> ApiError {
    match e {
        XmlError::Doctype => {
            ApiError::new(StatusCode::BAD_REQUEST, "doctype_refused", e.to_string())
        }
        other => ApiError::new(StatusCode::BAD_REQUEST, "malformed_xml", other.to_string()),
    }
}

async fn handle_push(
    p: &Account,
    q: &CallbackQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|rej| ApiError::body_rejected("push", rej))?;
    let (timestamp, nonce) = check_url_signature(p, q)?;
    // In plaintext mode the signature does not cover the body: a captured query string could replay
    // any XML for ever. WeChat signs each delivery (and retry) afresh, so an old timestamp is a replay.
    let now_s = p.clock.now_s();
    let Some(ts) = timestamp
        .parse::<u64>()
        .ok()
        .filter(|ts| ts.abs_diff(now_s) <= MAX_PUSH_AGE_S)
    else {
        return Err(unauthorized(
            "timestamp is not within 5 minutes of now (replayed push?)",
        ));
    };
    let text =
        std::str::from_utf8(&body).map_err(|_| ApiError::bad_request("push body is not UTF-8"))?;
    let outer = xml::fields(text).map_err(xml_error)?;

    let safe = q.encrypt_type.as_deref() == Some("aes");
    // A wall with an EncodingAESKey is in safe (or compatible) mode: WeChat encrypts every push, and
    // only the encrypted part is covered by msg_signature. A plaintext push is someone else's.
    if !safe && p.config.encoding_aes_key.is_some() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "plaintext_refused",
            "this wall has an encoding_aes_key: plaintext pushes are refused (safe or compatible mode only)",
        ));
    }
    let fields: HashMap<String, String> = if safe {
        let crypt = p.crypt.as_ref().ok_or_else(|| {
            ApiError::bad_request("encrypted push, but this wall has no encoding_aes_key")
        })?;
        let encrypted = outer
            .get("Encrypt")
            .ok_or_else(|| ApiError::bad_request("encrypted push without an Encrypt field"))?;
        let msg_sig = q
            .msg_signature
            .as_deref()
            .ok_or_else(|| unauthorized("msg_signature is required in safe mode"))?;
        let expected = crypto::signature(&[&p.config.token, timestamp, nonce, encrypted]);
        if !crypto::signature_matches(&expected, msg_sig) {
            return Err(unauthorized("msg_signature does not match"));
        }
        let opened = crypt
            .open(encrypted)
            .map_err(|e| ApiError::bad_request(format!("cannot decrypt the push: {e}")))?;
        if opened.receive_id != p.config.app_id {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "wrong_appid",
                "the push is encrypted for another appid",
            ));
        }
        xml::fields(&opened.msg).map_err(xml_error)?
    } else {
        outer
    };
    let push = xml::from_fields(fields).map_err(xml_error)?;
    if push.to_user != p.config.original_id {
        return Err(ApiError::bad_request(
            "ToUserName is not this wall's account (original_id)",
        ));
    }

    let Some(kind) = inbound_kind(&push) else {
        tracing::debug!(kind = ?push.kind, "push ignored");
        return Ok(success());
    };
    let reply = matches!(kind, InboundKind::Join);
    let says_something = matches!(kind, InboundKind::Media { .. } | InboundKind::Text { .. });
    let participant = crate::board::participant_id(PROVIDER, &push.from_user);
    if says_something && p.board.is_banned(&p.wall, &participant)? {
        // Refused, and told so in the chat (a passive reply); WeChat gets its answer: no retries.
        tracing::info!(wall = %p.wall, "a banned sender's message refused");
        return Ok(passive_reply(p, &push, safe, &p.banned_text()));
    }
    let inbound = Inbound {
        wall: p.wall.clone(),
        provider: PROVIDER,
        sender: push.from_user.clone(),
        kind,
        pushed_at: push.create_time.saturating_mul(1000),
        received_at: p.clock.now_ms(),
        dedup_key: push.dedup_key(),
    };
    // Within the window, a signed pair is bound to the first valid body it carried.
    if p.nonces
        .check(ts, nonce, &body, now_s.saturating_sub(MAX_PUSH_AGE_S))
        == super::replay::Seen::Replayed
    {
        return Err(unauthorized(
            "this timestamp and nonce already signed another push (replayed URL)",
        ));
    }
    p.inbox.accept(&inbound).await?;

    if !reply {
        return Ok(success());
    }
    Ok(passive_reply(p, &push, safe, &p.welcome_text()))
}

/// A text answer in the chat, sealed like the push when it came sealed.
fn passive_reply(p: &Account, push: &Push, safe: bool, text: &str) -> Response {
    let now_s = p.clock.now_s();
    let reply = xml::text_reply(&push.from_user, &push.to_user, now_s, text);
    let body = match (&p.crypt, safe) {
        (Some(crypt), true) => {
            let nonce = crate::random::token(10);
            crypt.reply_envelope(&p.config.token, &reply, &now_s.to_string(), &nonce)
        }
        _ => reply,
    };
    (
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

fn success() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "success",
    )
        .into_response()
}

/// What the wall does with a push; `None`: acknowledged and ignored.
pub fn inbound_kind(push: &Push) -> Option<InboundKind> {
    match &push.kind {
        PushKind::Voice {
            media_id,
            recognition,
            ..
        } => Some(InboundKind::Media {
            kind: MessageKind::Voice,
            media: MediaRef::Platform(media_id.clone()),
            transcript: recognition.clone(),
        }),
        PushKind::Video { media_id, .. } => Some(InboundKind::Media {
            kind: MessageKind::Video,
            media: MediaRef::Platform(media_id.clone()),
            transcript: None,
        }),
        PushKind::Image { media_id, .. } => Some(InboundKind::Media {
            kind: MessageKind::Image,
            media: MediaRef::Platform(media_id.clone()),
            transcript: None,
        }),
        PushKind::Text { content } => Some(InboundKind::Text {
            text: content.clone(),
        }),
        // A follow joins the wall whatever QR it came from: the account exists for the wall.
        PushKind::Subscribe { .. } | PushKind::Scan { .. } => Some(InboundKind::Join),
        PushKind::Unsubscribe => Some(InboundKind::Leave),
        PushKind::Other { .. } => None,
    }
}
