//! Startup is a value: `Application::build(config)` opens the store, binds the listener (port 0 in tests),
//! starts the pipeline and the player; `run_until_stopped(shutdown)` serves until the shutdown future
//! resolves, then drains and flushes sled. `main`, the Tauri shell and the tests all use this path.

use crate::app::{AdminToken, AppState, DemoMode, Shutdown};
use crate::board::Board;
use crate::clock::Clock;
use crate::config::Config;
use crate::credentials::{Credentials, DisplayScope};
use crate::events::Hub;
use crate::events::WallEvent;
use crate::inbox::{Inbox, Wakeups};
use crate::media::Media;
use crate::metrics::Metrics;
use crate::pipeline::{Pipeline, RetryPolicy};
use crate::playback::{Playback, PlaybackTask, Player};
use crate::provider::{ProviderContext, ProviderError, PublicUrl};
use crate::store::Store;
use crate::walls::{Wall, Walls};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::net::TcpListener;

/// Tune glibc's malloc, which since stop 30 serves only the C libraries in the process (WebKit, GTK,
/// ALSA, the codecs): Rust's allocations go to jemalloc (`lib.rs`). The figures below were measured
/// while glibc served Rust's allocations too.
///
/// Pin glibc's mmap threshold at its initial 128 KiB (unless `MALLOC_MMAP_THRESHOLD_` sets it), once,
/// before anything is allocated in earnest. glibc raises the threshold each time a large block is
/// freed (up to 32 MiB); from then on large blocks — sled's nodes of media blobs, decoded voices — come
/// from the heap and stay resident once freed, so the kiosk's RSS crept up over an evening. Measured
/// with `node bench/soak.mjs --minutes 10 --max-mib 4` side by side: 138.2 MiB pinned against 158.8
/// MiB at 400 s, and flat (+0.3 MiB) instead of +3.9 MiB once eviction ran.
///
/// Also at most 2 malloc arenas (unless `MALLOC_ARENA_MAX` sets it; glibc's default is 8 per core):
/// the soak's live heap hardly grows after warm-up (heaptrack: 68.1 MiB live at 345 s, 69.6 MiB at
/// 825 s) while its RSS does. The rest is freed memory held in the 15 arenas the kiosk's threads
/// spread over. Release build, three 10-minute soaks side by side (`--warmup 60 --max-mib 4`): 91.1 →
/// 101.1 MiB (+11.0 %) with the default arenas, 90.8 → 98.4 MiB (+8.4 %) with 2, same event lag.
/// Returns whether the mmap threshold was applied.
pub fn tune_allocator() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            // SAFETY: mallopt only sets a malloc parameter; it is called with a valid option and value.
            unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
        }
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            // SAFETY: as above.
            return unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) } == 1;
        }
    }
    false
}

/// Knobs the tests and the demo turn; the defaults are the product's.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub retry: Option<RetryPolicy>,
    pub demo: bool,
    /// The clock every part reads (default: the system's). Tests pass `Clock::manual`.
    pub clock: Option<Clock>,
    /// How often a detected (not configured) `public_url` re-detects the LAN address (default
    /// [`LAN_EVERY`]).
    pub lan_every: Option<std::time::Duration>,
}

/// How often the LAN address is detected again when `public_url` is not configured: the QR follows a
/// kiosk moved to another network within this time.
pub const LAN_EVERY: std::time::Duration = std::time::Duration::from_secs(20);

pub struct Application {
    listener: TcpListener,
    state: AppState,
    pipeline_rx: Wakeups,
    playback_task: PlaybackTask,
    retry: RetryPolicy,
    background: Vec<tokio::task::JoinHandle<()>>,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
    /// Set when `public_url` is detected and the server listens on every interface: it follows the LAN.
    lan: Option<LanFollow>,
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
    #[error("[admin] token is empty: set it to a long secret, or remove it to have one generated")]
    EmptyAdminToken,
}

/// The store key of the generated admin token (when `[admin] token` is not set).
const ADMIN_TOKEN_KEY: &str = "admin_token";

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartError> {
        Self::build_with(config, Options::default()).await
    }

    pub async fn build_with(config: Config, options: Options) -> Result<Self, StartError> {
        let data_dir = config.data_dir();
        std::fs::create_dir_all(&data_dir).map_err(|e| StartError::DataDir(data_dir.clone(), e))?;
        let store = Store::open_or_recover(
            &data_dir,
            options
                .clock
                .as_ref()
                .map_or_else(crate::domain::now_ms, |c| c.now_ms()),
            config.storage.cache_bytes,
        )
        .map_err(|e| StartError::Store(data_dir.clone(), e))?;
        store.set_media_cap(config.storage.max_bytes);

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
        let followed = PublicUrl::new(&public_url);
        let lan = (config.server.public_url.is_none() && local.ip().is_unspecified()).then(|| {
            LanFollow {
                url: followed.clone(),
                port: local.port(),
                tls: config.server.tls.is_some(),
                every: options.lan_every.unwrap_or(LAN_EVERY),
            }
        });

        let admin_token = match &config.admin.token {
            // `Config::validate` refuses it too; a config built in code comes through here.
            Some(t) if t.trim().is_empty() => return Err(StartError::EmptyAdminToken),
            Some(t) => t.clone(),
            None => match store.meta_get(ADMIN_TOKEN_KEY).ok().flatten() {
                Some(t) if !t.is_empty() => t,
                _ => {
                    let t = crate::random::token(24);
                    if let Err(e) = store.meta_put(ADMIN_TOKEN_KEY, &t) {
                        tracing::error!(error = %e, "cannot save the generated admin token; it changes at restart");
                    }
                    // Printed once, on the run that generated it, to the terminal only: never to a log.
                    eprintln!(
                        "voicewall: the operator's admin token (shown this once; set [admin] token to choose one):\n  {t}\nSign in at {public_url}/admin"
                    );
                    tracing::info!("generated the operator's admin token and printed it to the terminal (set [admin] token to choose one)");
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
        let metrics = Arc::new(Metrics::for_platforms(
            crate::providers::PLATFORMS.iter().map(|p| p.provider),
        ));
        let hub = Hub::new(config.walls.iter().map(|w| w.id.as_str()));
        let (inbox, pipeline_rx) = Inbox::new(store.clone(), metrics.clone());
        let inbox = inbox.with_disk_guard(crate::inbox::DiskGuard::of_dir(
            data_dir.clone(),
            config.storage.min_free_bytes,
        ));
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
        // An operator's override of a key the config has changed since: the config wins.
        let store_err = |e| StartError::Store(data_dir.clone(), e);
        for (wall, key, detail) in board.follow_config().map_err(store_err)? {
            tracing::info!(
                wall,
                key,
                detail,
                "the config changed this key since the operator overrode it: the config wins"
            );
            audit
                .record(
                    "config",
                    "wall.config_wins",
                    Some(&wall),
                    Some(key),
                    &detail,
                )
                .map_err(store_err)?;
        }
        let media = Media::with_cache_bytes(
            store.clone(),
            config.audio.max_duration_s,
            usize::try_from(config.audio.decoded_cache_bytes).unwrap_or(usize::MAX),
        );
        let mut walls = Vec::new();
        crate::providers::check_all(&config.provider_sections())?;
        for section in config.provider_sections() {
            let w = &config.walls[section.wall];
            let ctx = ProviderContext {
                wall: w.clone(),
                public_url: followed.clone(),
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
        let credentials = Credentials::new(store.clone(), clock.clone());
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
            public_url: followed.clone(),
            admin_token: AdminToken(admin_token.into()),
            credentials,
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
            lan,
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

    /// A one-time link (a path, `/display/<code>`) that makes the kiosk's own window a display of every
    /// wall, opening `wall`: the shell opens it at start. The credential comes from here, never from the
    /// address a request arrives from.
    pub fn kiosk_display_path(&self, wall: &str) -> String {
        let code = self
            .state
            .credentials
            .display_link(wall, DisplayScope::Kiosk);
        format!("/display/{code}")
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
        // On its own pool, so that the acks never wait behind it (see `pool`).
        self.background.push(tokio::spawn(crate::pool::run_apart(
            "pipeline",
            pipeline.run(self.pipeline_rx),
        )));
        let player = Player {
            store: state.store.clone(),
            board: state.board.clone(),
            events: state.hub.clone(),
            media: state.media.clone(),
            metrics: state.metrics.clone(),
            walls: state.walls.ids().map(str::to_string).collect(),
            gap: std::time::Duration::from_millis(state.config.audio.gap_ms),
            queue_max: state.config.audio.queue_max,
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
        let evictor = crate::evict::Evictor::new(state.store.clone(), state.board.clone());
        self.background.push(tokio::spawn(evictor.run()));
        self.background
            .push(tokio::spawn(state.credentials.clone().run_pruner()));
        if let Some(lan) = self.lan.take() {
            let (walls, hub) = (state.walls.clone(), state.hub.clone());
            self.background
                .push(tokio::spawn(lan.run(walls, hub, lan_ipv4)));
        }
        let router = crate::http::router(state.clone());
        let shutdown_tx = self.shutdown_tx;
        let shutdown = async move {
            shutdown.await;
            // End the event streams, or open walls would hold the graceful shutdown for ever.
            let _ = shutdown_tx.send(true);
        };
        let limits = crate::http::serve::ConnLimits::of(&state.config.server);
        let served = match state.config.server.tls.clone() {
            // HTTPS (phones allow the microphone only in a secure context): see tls.rs.
            Some(tls) => {
                let data_dir = state.config.data_dir();
                crate::tls::serve(
                    self.listener,
                    router,
                    limits,
                    &tls,
                    &data_dir,
                    &state.public_url.get(),
                    shutdown,
                )
                .await
            }
            // Graceful, but bounded: a phone whose upload stalled out of Wi-Fi range must not hold the
            // shutdown for ever (`http::serve::DRAIN`).
            None => crate::http::serve::serve(self.listener, router, limits, None, shutdown).await,
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

/// A detected `public_url` that follows the machine's LAN address (the kiosk moved to another network,
/// the DHCP lease changed): re-detected every `every`; on a change, every wall is told (`JoinUpdated`
/// with its provider's new join link) and refetches its QR. Without a LAN address (cable out, Wi-Fi
/// down) the last address stays.
struct LanFollow {
    url: PublicUrl,
    port: u16,
    tls: bool,
    every: std::time::Duration,
}

impl LanFollow {
    async fn run(self, walls: Walls, hub: Hub, detect: fn() -> Option<IpAddr>) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        tick.tick().await; // the first tick is now: the address was just detected
        loop {
            tick.tick().await;
            self.round(detect(), &walls, &hub);
        }
    }

    /// One re-detection with its result: the new URL when it changed (walls told).
    fn round(&self, detected: Option<IpAddr>, walls: &Walls, hub: &Hub) -> Option<String> {
        let url = followed_url(&self.url.get(), detected, self.port, self.tls)?;
        self.url.set(&url);
        tracing::info!(public_url = %url, "the LAN address changed: join links and QR codes follow");
        for wall in walls.iter() {
            hub.publish(
                &wall.config.id,
                WallEvent::JoinUpdated {
                    join_url: wall.provider.join_info().url,
                },
            );
        }
        Some(url)
    }
}

/// The decision of a LAN re-detection: the URL to move to, or `None` to stay (same address, or no LAN
/// address at all — a kiosk that lost its network keeps showing the last one rather than loopback).
pub fn followed_url(
    current: &str,
    detected: Option<IpAddr>,
    port: u16,
    tls: bool,
) -> Option<String> {
    let ip = detected.filter(|ip| !ip.is_loopback() && !ip.is_unspecified())?;
    let scheme = if tls { "https" } else { "http" };
    let url = format!("{scheme}://{ip}:{port}");
    (url != current.trim_end_matches('/')).then_some(url)
}

fn lan_ipv4() -> Option<IpAddr> {
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    sock.connect("10.254.254.254:1").ok()?;
    let ip = sock.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// Resolves on Ctrl-C or SIGTERM. The SIGTERM handler is installed when this is called (inside the
/// runtime), not when the future is first polled: a SIGTERM that arrives right after "serving" is
/// logged must shut down cleanly rather than kill the process with the default action.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async move {
            match term {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => tracing::info!("Ctrl-C: shutting down"),
            _ = term => tracing::info!("SIGTERM: shutting down"),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn the_allocator_is_tuned_on_glibc() {
        assert!(
            std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some() || super::tune_allocator(),
            "mallopt(M_MMAP_THRESHOLD) refused"
        );
    }

    use super::*;
    use crate::provider::WallProvider;
    use crate::testing::{FakePlatform, Fixture, WALL};

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn the_url_follows_a_new_lan_address_and_nothing_else() {
        let now = "http://192.168.1.20:8787";
        assert_eq!(followed_url(now, ip("192.168.1.20"), 8787, false), None);
        assert_eq!(
            followed_url(now, ip("10.0.0.7"), 8787, false).as_deref(),
            Some("http://10.0.0.7:8787")
        );
        assert_eq!(
            followed_url(now, ip("10.0.0.7"), 8787, true).as_deref(),
            Some("https://10.0.0.7:8787")
        );
        // No LAN address (cable out): keep the last one, no panic, no loopback QR.
        assert_eq!(followed_url(now, None, 8787, false), None);
        assert_eq!(followed_url(now, ip("127.0.0.1"), 8787, false), None);
        assert_eq!(followed_url(now, ip("0.0.0.0"), 8787, false), None);
        // Started without a LAN (loopback in the URL): the first LAN address is taken.
        assert_eq!(
            followed_url("http://127.0.0.1:8787/", ip("192.168.1.20"), 8787, false).as_deref(),
            Some(now)
        );
    }

    #[test]
    fn a_change_moves_the_shared_url_and_tells_every_wall() {
        let fx = Fixture::new(FakePlatform::serving(Vec::new(), "audio/ogg"));
        let mut events = fx.hub.subscribe(WALL).expect("the wall's channel");
        let url = PublicUrl::new("http://192.168.1.20:8787");
        let seen_by_a_provider = url.clone();
        let lan = LanFollow {
            url,
            port: 8787,
            tls: false,
            every: LAN_EVERY,
        };
        assert_eq!(lan.round(ip("192.168.1.20"), &fx.walls, &fx.hub), None);
        assert_eq!(lan.round(None, &fx.walls, &fx.hub), None);
        assert!(events.try_recv().is_err(), "no change, no event");
        assert_eq!(
            lan.round(ip("10.0.0.7"), &fx.walls, &fx.hub).as_deref(),
            Some("http://10.0.0.7:8787")
        );
        assert_eq!(&*seen_by_a_provider.get(), "http://10.0.0.7:8787");
        match events.try_recv() {
            Ok(WallEvent::JoinUpdated { join_url }) => {
                assert_eq!(join_url, fx.platform.join_info().url)
            }
            other => panic!("{other:?}"),
        }
    }
}
