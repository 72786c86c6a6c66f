//! What a phone learns of its own messages: each as the wall shows messages ([`MessageView`]) plus its
//! waveform, which the join page draws for the sender (the wall state leaves waveforms out).
//!
//! The page learns it from `GET /api/join/{w}/me` once, then from its own stream
//! (`GET /api/join/{w}/me/events`, [`stream`]): the same JSON in a `me` event at once and whenever one
//! of the phone's messages or its participant changes — no polling. The stream follows the wall's
//! channel (participants, clears, token rotations) and the console's (every message change, held
//! ones too), keeps only what concerns this participant, and sends a payload only when it differs
//! from the last one sent.

use super::site::JoinSite;
use crate::domain::{Message, Participant};
use crate::events::{AdminEvent, WallEvent};
use crate::http::error::ApiError;
use crate::http::state::{MessageView, ParticipantView};
use axum::response::sse::Event;
use futures_util::Stream;
use serde_json::json;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;

/// One of the phone's own messages as the join page gets it.
pub fn own_message(m: &Message) -> serde_json::Value {
    let mut v = serde_json::to_value(MessageView::from(m)).unwrap_or_default();
    v["waveform"] = serde_json::json!(m.waveform);
    v
}

/// What `/me` answers for `participant`; `token` is the current join token when the phone showed a
/// valid one.
pub fn me(
    site: &JoinSite,
    participant: &Participant,
    token: Option<String>,
) -> Result<serde_json::Value, ApiError> {
    let messages: Vec<serde_json::Value> = site
        .store
        .messages_of(&site.wall, &participant.id)?
        .iter()
        .map(own_message)
        .collect();
    Ok(json!({
        "participant": ParticipantView::from(participant),
        "messages": messages,
        "token": token,
    }))
}

/// Does this wall event change what participant `pid` is told?
fn concerns(ev: &WallEvent, pid: &str, with_token: bool) -> bool {
    match ev {
        WallEvent::ParticipantJoined { participant }
        | WallEvent::ParticipantUpdated { participant } => participant.id == pid,
        WallEvent::ParticipantLeft { participant_id } => participant_id == pid,
        WallEvent::MessageAdded { message } | WallEvent::MessageUpdated { message } => {
            message.participant_id == pid
        }
        WallEvent::JoinUpdated { .. } => with_token,
        WallEvent::WallChanged { .. } => true,
        WallEvent::PlaybackStarted { .. }
        | WallEvent::PlaybackProgress { .. }
        | WallEvent::PlaybackFinished { .. } => false,
    }
}

struct Follow<G> {
    site: Arc<JoinSite>,
    pid: String,
    with_token: bool,
    wall: Receiver<WallEvent>,
    admin: Receiver<AdminEvent>,
    /// The JSON sent last (a change that changes nothing the phone sees is not sent).
    last: Option<String>,
    started: bool,
    ended: bool,
    /// Held while the stream lives (the client's stream slot).
    _guard: G,
}

/// The `me` events of participant `pid` (the first at once); a `gone` event and the end when the
/// participant no longer exists (erased). `guard` is dropped when the stream ends.
pub fn stream<G: Send + 'static>(
    site: Arc<JoinSite>,
    pid: String,
    with_token: bool,
    guard: G,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    // Subscribed before the first payload is read: a change in between is seen (maybe twice).
    let wall = site
        .events
        .subscribe(&site.wall)
        .expect("a join site's wall has a channel");
    let admin = site.events.subscribe_admin();
    let follow = Follow {
        site,
        pid,
        with_token,
        wall,
        admin,
        last: None,
        started: false,
        ended: false,
        _guard: guard,
    };
    futures_util::stream::unfold(follow, |mut f| async move {
        if f.ended {
            return None;
        }
        loop {
            if f.started {
                let changed = tokio::select! {
                    r = f.wall.recv() => match r {
                        Ok(ev) => concerns(&ev, &f.pid, f.with_token),
                        Err(RecvError::Lagged(_)) => true,
                        Err(RecvError::Closed) => return None,
                    },
                    r = f.admin.recv() => match r {
                        Ok(AdminEvent::Message { wall, message }) => {
                            wall == f.site.wall && message.participant_id == f.pid
                        }
                        Ok(AdminEvent::Queue(_)) => false,
                        Err(RecvError::Lagged(_)) => true,
                        Err(RecvError::Closed) => return None,
                    },
                };
                if !changed {
                    continue;
                }
            }
            f.started = true;
            let participant = match f.site.board.participant(&f.site.wall, &f.pid) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "a phone's stream cannot read its participant");
                    continue;
                }
            };
            let Some(participant) = participant else {
                f.ended = true;
                let gone = Event::default()
                    .event("gone")
                    .data(json!({"type": "gone"}).to_string());
                return Some((Ok(gone), f));
            };
            let token = f.with_token.then(|| f.site.current_token());
            let text = match me(&f.site, &participant, token) {
                Ok(v) => v.to_string(),
                Err(e) => {
                    tracing::warn!(error = ?e, "a phone's stream cannot read its messages");
                    continue;
                }
            };
            if f.last.as_deref() == Some(text.as_str()) {
                continue;
            }
            f.last = Some(text.clone());
            return Some((Ok(Event::default().event("me").data(text)), f));
        }
    })
}
