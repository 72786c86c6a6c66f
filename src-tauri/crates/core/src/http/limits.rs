//! What one client may take of the server, per request and per stream (issue #18):
//!
//! - `limit_body` with `BodyLimit(max)` — a route's whole-request limit (`from_fn_with_state`): a declared `Content-Length` above it is a 413
//!   before a byte of the body is read; a chunked body is cut at `max` (the extractors answer 413);
//! - `Pace` — every request body must keep moving: nothing for `stall`, or less than `min_bytes_per_s`
//!   on average after it, ends the body with an error (a lying `Content-Length` gets an answer);
//! - `SseSlots` — event streams one client address may hold open at once.
//!
//! Connection-level limits (header timeout, connection cap) are the accept loop's: `http::serve`.

use super::error::ApiError;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// A route's whole-request limit, in bytes (`axum::middleware::from_fn_with_state` state); each early
/// 413 is counted in `voicewall_requests_rejected_total` when `metrics` is given.
#[derive(Clone)]
pub struct BodyLimit {
    pub max: usize,
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
}

/// The declared `Content-Length` of a request, when it is one number.
fn declared_length(request: &Request) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The 413 of a body over `max` bytes; the connection is not kept (the rest of the body is not read).
pub fn too_large(max: usize) -> Response {
    let mut r = ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("the request body is larger than this route takes ({max} bytes)"),
    )
    .into_response();
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// Middleware: refuse a declared length over the limit at once, cut a longer chunked body at it.
pub async fn limit_body(
    State(BodyLimit { max, metrics }): State<BodyLimit>,
    request: Request,
    next: Next,
) -> Response {
    if declared_length(&request).is_some_and(|n| n > max as u64) {
        if let Some(m) = metrics {
            m.inc_rejected();
        }
        return too_large(max);
    }
    let (parts, body) = request.into_parts();
    let body = Body::new(http_body_util::Limited::new(body, max));
    next.run(Request::from_parts(parts, body)).await
}

/// How fast a request body must arrive (`[server] body_timeout_s`, `body_min_bytes_per_s`).
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    pub stall: Duration,
    pub min_bytes_per_s: u64,
}

/// Middleware: every request body is `Paced`.
pub async fn pace_body(State(pace): State<Pace>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let body = Body::new(Paced::new(body, pace));
    next.run(Request::from_parts(parts, body)).await
}

/// Why a body was cut off.
#[derive(Debug, thiserror::Error)]
pub enum PaceError {
    #[error("the request body sent nothing for {0:?}")]
    Stalled(Duration),
    #[error("the request body arrives slower than {0} bytes/s")]
    TooSlow(u64),
}

/// A body that errors when it stalls or trickles (see `Pace`).
pub struct Paced {
    inner: Body,
    pace: Pace,
    started: Instant,
    received: u64,
    deadline: Pin<Box<Sleep>>,
    failed: bool,
}

impl Paced {
    pub fn new(inner: Body, pace: Pace) -> Self {
        let started = Instant::now();
        Self {
            inner,
            pace,
            started,
            received: 0,
            deadline: Box::pin(tokio::time::sleep_until(started + pace.stall)),
            failed: false,
        }
    }

    fn fail(&mut self, e: PaceError) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        tracing::info!(reason = %e, "request body cut off");
        self.failed = true;
        Poll::Ready(Some(Err(axum::Error::new(e))))
    }
}

impl http_body::Body for Paced {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if this.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                }
                let elapsed = this.started.elapsed();
                if elapsed > this.pace.stall
                    && this.received < this.pace.min_bytes_per_s * elapsed.as_secs()
                {
                    return this.fail(PaceError::TooSlow(this.pace.min_bytes_per_s));
                }
                let next = Instant::now() + this.pace.stall;
                this.deadline.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => this.fail(PaceError::Stalled(this.pace.stall)),
                Poll::Pending => Poll::Pending,
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Open event streams per client address (`[server] sse_per_client`).
#[derive(Clone)]
pub struct SseSlots {
    max: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One open stream; its slot is given back when the stream ends (the guard is dropped).
pub struct SseSlot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl SseSlots {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            open: Arc::default(),
        }
    }

    /// A slot for `ip`, or a 429 when it already holds `max` streams.
    pub fn take(&self, ip: IpAddr) -> Result<SseSlot, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_default();
        if *n >= self.max {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!("this address already holds {} event streams", self.max),
            ));
        }
        *n += 1;
        Ok(SseSlot {
            ip,
            open: self.open.clone(),
        })
    }

    /// Streams open for `ip` now.
    pub fn open(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for SseSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn a_client_holds_at_most_its_share_of_streams() {
        let slots = SseSlots::new(2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let one = slots.take(a).unwrap();
        let _two = slots.take(a).unwrap();
        assert_eq!(
            slots.take(a).err().map(|e| e.status),
            Some(StatusCode::TOO_MANY_REQUESTS)
        );
        let _other = slots.take(b).expect("another client has its own share");
        drop(one);
        assert_eq!(slots.open(a), 1);
        slots.take(a).expect("a closed stream gives its slot back");
    }

    #[tokio::test]
    async fn a_stalled_body_ends_in_an_error() {
        let (mut tx, rx) = futures_channel_body();
        let pace = Pace {
            stall: Duration::from_millis(100),
            min_bytes_per_s: 1,
        };
        let mut body = Paced::new(rx, pace);
        tx.push(Bytes::from_static(b"abc"));
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "abc");
        let e = body.frame().await.unwrap().unwrap_err();
        assert!(e.to_string().contains("sent nothing"), "{e}");
        drop(tx);
    }

    /// A body fed by hand (frames pushed; never ends while the sender lives).
    fn futures_channel_body() -> (Feeder, Body) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
        let stream = tokio_stream::wrappers::UnboundedReceiverStream::new(rx)
            .map(Ok::<_, std::convert::Infallible>);
        (Feeder(tx), Body::from_stream(stream))
    }

    use tokio_stream::StreamExt;

    struct Feeder(tokio::sync::mpsc::UnboundedSender<Bytes>);

    impl Feeder {
        fn push(&mut self, b: Bytes) {
            self.0.send(b).unwrap();
        }
    }
}
