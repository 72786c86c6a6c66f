//! Startup is a value: `Application::build(config)` opens the store, binds the listener (port 0 in tests),
//! starts the pipeline and the player; `run_until_stopped(shutdown)` serves until the shutdown future
//! resolves, then drains and flushes sled. `main`, the Tauri shell and the tests all use this path.

use crate::app::{AdminToken, AppState, DemoMode, Shutdown};
use crate::board::Board;
use crate::clock::Clock;
use crate::config::Config;
use crate::events::Hub;
use crate::inbox::{Inbox, Wakeups};
use crate::media::Media;
use crate::metrics::Metrics;
use crate::pipeline::{Pipeline, RetryPolicy};
use crate::playback::{Playback, PlaybackTask, Player};
use crate::provider::{ProviderContext, ProviderError};
use crate::store::Store;
use crate::walls::{Wall, Walls};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::net::TcpListener;

/// How long open connections may finish after shutdown begins.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Knobs the tests and the demo turn; the defaults are the product's.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub retry: Option<RetryPolicy>,
    pub demo: bool,
    /// The clock every part reads (default: the system's). Tests pass `Clock::manual`.
    pub clock: Option<Clock>,
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
    pipeline_rx: Wakeups,
    playback_task: PlaybackTask,
    retry: RetryPolicy,
    background: Vec<tokio::task::JoinHandle<()>>,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create the data dir {0}: {1}")]
    DataDir(std::path::PathBuf, std::io::Error),
    #[error("cannot open the store in {0} (is another voicewall running on it?): {1}")]
    Store(std::path::PathBuf, crate::store::StoreError),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("{0}")]
    Provider(#[from] ProviderError),
    #[error("cannot make the HTTP client: {0}")]
    Http(reqwest::Error),
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartError> {
        Self::build_with(config, Options::default()).await
    }

    pub async fn build_with(config: Config, options: Options) -> Result<Self, StartError> {
        let data_dir = config.data_dir();
        std::fs::create_dir_all(&data_dir).map_err(|e| StartError::DataDir(data_dir.clone(), e))?;
        let store = Store::open(&data_dir).map_err(|e| StartError::Store(data_dir.clone(), e))?;

        let addr = config.listen_addr();
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| StartError::Bind(addr, e))?;
        let local = listener
            .local_addr()
            .map_err(|e| StartError::Bind(addr, e))?;
        let public_url = config
            .server
            .public_url
            .clone()
            .unwrap_or_else(|| detect_public_url(local, config.server.tls.is_some()));
        let public_url = public_url.trim_end_matches('/').to_string();
        tracing::info!(%public_url, listen = %local, "join links and the QR code use this address");

        let admin_token = match &config.admin.token {
            Some(t) => t.clone(),
            None => match store.meta_get("admin_token").ok().flatten() {
                Some(t) => t,
                None => {
                    let t = crate::random::token(24);
                    let _ = store.meta_put("admin_token", &t);
                    // Logged once, on the run that generated it.
                    tracing::warn!(admin_token = %t, "generated the operator's admin token (set [admin] token to choose one)");
                    t
                }
            },
        };

        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(15))
            .connect_timeout(std::time::Duration::from_secs(5))
            .user_agent(concat!("voicewall/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(StartError::Http)?;

        let clock = options.clock.clone().unwrap_or_default();
        let metrics = Arc::new(Metrics::default());
        let hub = Hub::new(config.walls.iter().map(|w| w.id.as_str()));
        let (inbox, pipeline_rx) = Inbox::new(store.clone(), metrics.clone());
        let board = Board::new(store.clone(), hub.clone(), clock.clone()).with_defaults(
            config.walls.iter().map(|w| {
                (
                    w.id.clone(),
                    crate::domain::WallSettings {
                        moderation: w.moderation,
                        idle_loop_s: w.idle_loop_s,
                        ..Default::default()
                    },
                )
            }),
        );
        let audit = crate::audit::Audit::new(store.clone(), clock.clone());
        let media = Media::new(store.clone(), config.audio.max_duration_s);
        let public_url: Arc<str> = public_url.into();
        let source: Option<Arc<str>> = None;
        let mut walls = Vec::new();
        for (i, w) in config.walls.iter().enumerate() {
            let section = crate::providers::section_of(i, w, source.clone());
            let ctx = ProviderContext {
                wall: w.clone(),
                public_url: public_url.clone(),
                secure: config.server.tls.is_some(),
                http: http.clone(),
                inbox: inbox.clone(),
                board: board.clone(),
                events: hub.clone(),
                store: store.clone(),
                media: media.clone(),
                clock: clock.clone(),
                metrics: metrics.clone(),
            };
            walls.push(Wall {
                config: w.clone(),
                provider: crate::providers::build(ctx, &section)?,
            });
        }

        let (playback, playback_task) = Playback::new(config.audio.autoplay);
        let (shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
        let state = AppState {
            config: Arc::new(config),
            store,
            hub,
            walls: Walls::new(walls),
            inbox,
            board,
            clock,
            media,
            playback,
            metrics,
            audit,
            public_url,
            admin_token: AdminToken(admin_token.into()),
            demo: DemoMode(options.demo),
            shutdown: Shutdown(shutdown),
        };
        Ok(Self {
            listener,
            state,
            pipeline_rx,
            playback_task,
            retry: options.retry.unwrap_or_default(),
            background: Vec::new(),
            shutdown_tx,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve until `shutdown` resolves; then stop the background tasks and flush the store.
    pub async fn run_until_stopped(
        mut self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let state = self.state.clone();
        let pipeline = Pipeline {
            store: state.store.clone(),
            board: state.board.clone(),
            walls: state.walls.clone(),
            media: state.media.clone(),
            player: state.playback.clone(),
            metrics: state.metrics.clone(),
            retry: self.retry,
        };
        self.background
            .push(tokio::spawn(pipeline.run(self.pipeline_rx)));
        let player = Player {
            store: state.store.clone(),
            board: state.board.clone(),
            events: state.hub.clone(),
            media: state.media.clone(),
            metrics: state.metrics.clone(),
            walls: state.walls.ids().map(str::to_string).collect(),
            gap: std::time::Duration::from_millis(state.config.audio.gap_ms),
        };
        let audio = state.config.audio.clone();
        let task = self.playback_task;
        self.background.push(tokio::spawn(async move {
            let output = crate::playback::open_output(&audio).await;
            task.run(
                player,
                output,
                audio.output.trim().eq_ignore_ascii_case("null"),
            )
            .await
        }));
        for wall in state.walls.iter() {
            self.background
                .push(tokio::spawn(wall.provider.clone().upkeep()));
        }
        let eraser = crate::privacy::erase::Eraser::new(
            state.store.clone(),
            state.media.clone(),
            state.hub.clone(),
            &state.config.walls,
        );
        let retention = crate::privacy::retention::Retention::new(
            eraser,
            &state.config.walls,
            state.clock.clone(),
        );
        self.background.push(tokio::spawn(retention.run()));
        let router = crate::http::router(state.clone());
        let shutdown_tx = self.shutdown_tx;
        let shutdown = async move {
            shutdown.await;
            // End the event streams, or open walls would hold the graceful shutdown for ever.
            let _ = shutdown_tx.send(true);
        };
        let served = match state.config.server.tls.clone() {
            // HTTPS (phones allow the microphone only in a secure context): see tls.rs.
            Some(tls) => {
                let data_dir = state.config.data_dir();
                crate::tls::serve(
                    self.listener,
                    router,
                    &tls,
                    &data_dir,
                    &state.public_url,
                    shutdown,
                )
                .await
            }
            None => {
                // Graceful, but bounded: a phone whose upload stalled out of Wi-Fi range must not
                // hold the shutdown for ever.
                let mut stopping = state.shutdown.0.clone();
                let serve = axum::serve(
                    self.listener,
                    router.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(shutdown);
                tokio::select! {
                    r = serve => r,
                    _ = async {
                        let _ = stopping.wait_for(|v| *v).await;
                        tokio::time::sleep(DRAIN).await;
                    } => {
                        tracing::warn!("connections still open {DRAIN:?} after shutdown began; closing them");
                        Ok(())
                    }
                }
            }
        };
        for task in &self.background {
            task.abort();
        }
        for task in self.background {
            let _ = task.await;
        }
        match state.store.flush() {
            Ok(()) => tracing::info!("store flushed; stopped cleanly"),
            Err(e) => tracing::error!(error = %e, "final store flush failed"),
        }
        served
    }
}

/// This machine's LAN IPv4 address (the route to a private address; no packet is sent), or loopback.
pub fn detect_public_url(local: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    let ip = lan_ipv4().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let ip = if local.ip().is_loopback() {
        local.ip()
    } else {
        ip
    };
    format!("{scheme}://{ip}:{}", local.port())
}

fn lan_ipv4() -> Option<IpAddr> {
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    sock.connect("10.254.254.254:1").ok()?;
    let ip = sock.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C: shutting down"),
        _ = term => tracing::info!("SIGTERM: shutting down"),
    }
}
