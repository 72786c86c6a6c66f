//! `voicewall demo` — a clearly labelled simulator (placeholder until the WeChat demo lands).

use crate::app::AppState;
use crate::config::{Config, ConfigError};
use std::net::SocketAddr;
use std::path::Path;

/// The demo's config: the given file, or the built-in one, with a data dir of its own.
pub fn demo_config(path: Option<&Path>) -> Result<Config, ConfigError> {
    let mut c = match path {
        Some(p) => Config::load(p)?,
        None => Config::builtin(),
    };
    if c.storage.data_dir.is_none() {
        c.storage.data_dir = Some(crate::config::default_data_dir().join("demo"));
    }
    Ok(c)
}

/// Start the simulated audience against the running app.
pub fn start(_state: AppState, _addr: SocketAddr) {}
