//! Voicewall core: everything but the window. Config, store (sled), the embedded server (axum), the
//! providers (web join page, WeChat), the pipeline after the ack, and the player queue.
//!
//! The flow (patent CN103491087A): platform push → webhook → verify + parse → durable inbox → ack;
//! then fetch media and profile → decode → wall state → events → wall page, and → player → speakers.

pub mod app;
pub mod cli;
pub mod config;
pub mod domain;
pub mod events;
pub mod http;
pub mod media;
pub mod metrics;
pub mod pipeline;
pub mod playback;
pub mod providers;
pub mod qr;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod ui;

pub use app::AppState;
pub use config::Config;
pub use startup::Application;
