//! Voicewall core: everything but the window. Config, store (sled), the embedded server (axum), the
//! providers (web join page, WeChat), the pipeline after the ack, and the player queue.
//!
//! The flow (patent CN103491087A): platform push → webhook → verify + parse → durable inbox → ack;
//! then fetch media and profile → decode → wall state → events → wall page, and → player → speakers.

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
