//! Live streams as Server-Sent Events, the way every stream here sends them: `hello` first, then the
//! stream's own events, a visible `heartbeat` every 15 s (SSE comments are invisible to pages; the
//! heartbeat lets a page detect a dead connection), ending when the app begins to shut down.

use crate::app::Shutdown;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::json;
use std::convert::Infallible;
use std::time::Duration;
use tokio_stream::StreamExt;

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
