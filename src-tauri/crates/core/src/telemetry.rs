//! Telemetry, set up once: tracing to stderr and to a daily-rotated file under `{data_dir}/logs`.
//! `RUST_LOG` is respected (default `info`).

use std::path::Path;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};

/// Keeps the file writer alive; drop it at exit to flush the log.
pub struct LogGuard(#[allow(dead_code)] Option<tracing_appender::non_blocking::WorkerGuard>);

pub fn init(log_dir: Option<&Path>) -> LogGuard {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn,sled=warn"));
    let stderr = fmt::layer().with_writer(std::io::stderr).with_target(false);
    let (file_layer, guard) = match log_dir.and_then(|d| std::fs::create_dir_all(d).ok().map(|_| d))
    {
        Some(dir) => {
            let appender = tracing_appender::rolling::daily(dir, "voicewall.log");
            let (writer, guard) = tracing_appender::non_blocking(appender);
            (
                Some(fmt::layer().with_writer(writer).with_ansi(false)),
                Some(guard),
            )
        }
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(file_layer)
        .try_init();
    LogGuard(guard)
}
