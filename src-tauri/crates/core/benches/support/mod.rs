//! What the ack and latency benches share: their knobs, the machine's load, and an app with one WeChat
//! wall "wx" pointed at a mock platform.

#![allow(dead_code)]

use std::path::Path;
use voicewall_core::config::Config;

pub const APP_ID: &str = "wxbench000000001";
pub const SECRET: &str = "bench-secret";
pub const TOKEN: &str = "benchtoken";
pub const ORIGINAL_ID: &str = "gh_bench";

/// An environment knob, or its default.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The load average (1, 5, 15 min), printed beside every figure.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The test config with the WeChat wall "wx" on the mock platform at `base`.
pub fn wechat_config(dir: &Path, base: &str) -> Config {
    voicewall_testkit::test_config(
        dir,
        &format!(
            "[[walls]]\nid = \"wx\"\n[walls.wechat]\napp_id = \"{APP_ID}\"\napp_secret = \"{SECRET}\"\ntoken = \"{TOKEN}\"\n\
             original_id = \"{ORIGINAL_ID}\"\napi_base = \"{base}\"\noauth_base = \"{base}\"\n"
        ),
    )
}
