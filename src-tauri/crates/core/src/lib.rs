//! Voicewall core: everything but the window. Config, store (sled), the embedded server (axum), the
//! providers (web join page, WeChat), the pipeline after the ack, and the player queue.
//!
//! The flow (patent CN103491087A): platform push → webhook → verify + parse → durable inbox → ack;
//! then fetch media and profile → decode → wall state → events → wall page, and → player → speakers.

/// jemalloc, not glibc's malloc, for everything Rust allocates (C libraries such as WebKit keep
/// glibc's, tuned by `startup::tune_allocator`). Chosen with `node bench/soak.mjs --minutes 60
/// --warmup 120 --max-mib 32`, release, one binary side by side with glibc (2 arenas) and, by
/// `LD_PRELOAD` (the whole process), mimalloc and jemalloc: RSS from 10 to 60 minutes +8.4 % (123.8 ->
/// 134.2 MiB) against +20.6 % (99.9 -> 120.5) and +15.2 %; over the second half +6.5 % against
/// +13.9 % and +8.4 %. It starts higher (113 against 94 MiB at 2 minutes); what a whole evening needs
/// is the slope. This build (jemalloc for Rust only), the same soak: +9.1 % from 10 minutes (142.4 ->
/// 155.4 MiB), +6.2 % over the second half (README, Performance). Not under `cargo fuzz` (its
/// sanitizer watches malloc; Cargo.toml leaves the crate out there too).
#[cfg(all(target_os = "linux", not(fuzzing)))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

pub mod app;
#[cfg(test)]
mod architecture;
pub mod audit;
pub mod avatar;
pub mod blobs;
pub mod board;
pub mod cli;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod domain;
pub mod events;
pub mod evict;
pub mod http;
pub mod inbox;
pub mod lang;
pub mod media;
pub mod metrics;
pub mod pipeline;
pub mod playback;
pub mod pool;
pub mod privacy;
pub mod provider;
pub mod providers;
pub mod qr;
pub mod queue;
pub mod random;
pub mod secret;
pub mod startup;
pub mod store;
pub mod tally;
pub mod telemetry;
#[cfg(test)]
mod testing;
pub mod tls;
pub mod ui;
pub mod walls;

pub use app::AppState;
pub use config::Config;
pub use startup::Application;
