//! The accept loop of the plain and the TLS server (issue #18: no guest can hold the kiosk's sockets).
//!
//! - at most `max_connections` open connections (a semaphore); one more is closed at once;
//! - HTTP/1.1 headers within `header_timeout` — hyper's header timer also runs while a keep-alive
//!   connection waits for its next request, so it is the idle timeout too (a slowloris or idle socket is
//!   closed after it);
//! - the TLS handshake within `header_timeout`; HTTP/2 only when ALPN chose it (no sniffing of a plain
//!   socket, which would wait for bytes without a timer), with keep-alive pings;
//! - on shutdown, connections get `DRAIN` to finish, then are dropped.
//!
//! Client addresses reach handlers as `ConnectInfo<SocketAddr>`.

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::Service;

/// How long open connections may finish after shutdown begins.
pub const DRAIN: Duration = Duration::from_secs(5);

/// The accept loop's limits (from `[server]`).
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    pub header_timeout: Duration,
    pub max_connections: usize,
}

impl ConnLimits {
    pub fn of(server: &crate::config::ServerConfig) -> Self {
        Self {
            header_timeout: Duration::from_secs(server.header_timeout_s.max(1)),
            max_connections: server.max_connections.max(1),
        }
    }
}

/// Serve `router` on `listener` (over TLS when `tls` is given) until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut make = router.into_make_service_with_connect_info::<SocketAddr>();
    let mut refused: u64 = 0;
    tokio::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors (EMFILE) and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(
                    client = %addr,
                    max = limits.max_connections,
                    refused,
                    "connection refused: the server holds its most connections"
                );
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let Ok(service) = make.call(addr).await;
        let service = TowerToHyperService::new(service);
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let served = match tls {
                None => {
                    let conn = http1(limits).serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn).await
                }
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(limits.header_timeout, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(client = %addr, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(client = %addr, "TLS handshake timed out");
                                return;
                            }
                        };
                    if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                        let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                            .timer(TokioTimer::new())
                            .keep_alive_interval(Some(Duration::from_secs(20)))
                            .keep_alive_timeout(limits.header_timeout)
                            .max_concurrent_streams(64)
                            .serve_connection(TokioIo::new(stream), service);
                        watcher.watch(conn).await
                    } else {
                        let conn = http1(limits).serve_connection(TokioIo::new(stream), service);
                        watcher.watch(conn).await
                    }
                }
            };
            if let Err(e) = served {
                tracing::debug!(client = %addr, error = %e, "connection ended");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN) => {
            tracing::warn!("connections still open {DRAIN:?} after shutdown began; closing them");
        }
    }
    Ok(())
}

fn http1(limits: ConnLimits) -> hyper::server::conn::http1::Builder {
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        .max_buf_size(64 * 1024);
    b
}
