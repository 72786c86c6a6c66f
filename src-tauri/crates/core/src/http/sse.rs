//! Live streams as Server-Sent Events, the way every stream here sends them: `hello` first, then the
//! stream's own events, a visible `heartbeat` every 15 s (SSE comments are invisible to pages; the
//! heartbeat lets a page detect a dead connection), ending when the app begins to shut down.
//!
//! A wall's stream is resumable ([`resumed`]): each event carries its id, and a page that reconnects with
//! the last one it saw (`Last-Event-ID`, which `EventSource` sends itself, or `?last_event_id=` for a
//! page that opens a new `EventSource`) first gets what it missed, or a `resync` when that is gone.

use crate::app::Shutdown;
use crate::events::{EventId, Numbered, Resume, WallEvent};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::json;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;

/// `?last_event_id=` of a wall's stream.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ResumeQuery {
    last_event_id: Option<String>,
}

/// The id a reconnecting page saw last: the `Last-Event-ID` header, else `?last_event_id=`. An id that
/// does not parse counts as one from another process (a resync).
pub fn last_event_id(headers: &HeaderMap, q: &ResumeQuery) -> Option<EventId> {
    let raw = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .or(q.last_event_id.as_deref())?;
    Some(raw.parse().unwrap_or(EventId { epoch: 0, n: 0 }))
}

/// A `resync` event: the page rebuilds itself from the state API.
fn resync(missed: Option<u64>) -> Event {
    Event::default()
        .event("resync")
        .data(json!({"type": "resync", "missed": missed}).to_string())
}

/// A wall's stream after [`Hub::resume`](crate::events::Hub::resume): the missed events (or a `resync`),
/// then the live ones, each with its id; a client too slow for the channel gets a `resync`.
pub fn resumed(
    resume: Resume,
    rx: broadcast::Receiver<Numbered>,
    to_event: fn(&WallEvent) -> Event,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let first: Vec<Result<Event, Infallible>> = match resume {
        Resume::Replay(missed) => missed
            .iter()
            .map(|e| Ok(to_event(&e.event).id(e.id.to_string())))
            .collect(),
        Resume::Resync => vec![Ok(resync(None))],
    };
    let live = BroadcastStream::new(rx).map(move |item| match item {
        Ok(e) => Ok(to_event(&e.event).id(e.id.to_string())),
        Err(BroadcastStreamRecvError::Lagged(n)) => Ok(resync(Some(n))),
    });
    tokio_stream::iter(first).chain(live)
}

const HEARTBEAT: Duration = Duration::from_secs(15);

/// `hello` (with `hello` as its data), `events`, heartbeats; until shutdown.
pub fn live(
    hello: serde_json::Value,
    events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
    shutdown: Shutdown,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let hello = tokio_stream::once(Ok(Event::default().event("hello").data(hello.to_string())));
    let heartbeat = tokio_stream::wrappers::IntervalStream::new(tokio::time::interval_at(
        tokio::time::Instant::now() + HEARTBEAT,
        HEARTBEAT,
    ))
    .map(|_| {
        Ok(Event::default()
            .event("heartbeat")
            .data(json!({"type": "heartbeat"}).to_string()))
    });
    let events =
        futures_util::StreamExt::take_until(hello.chain(events).merge(heartbeat), shutdown.begun());
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
}
