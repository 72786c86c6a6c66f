//! The one test harness of Voicewall (the `spawn_app` pattern of zero-to-production's
//! `tests/api/helpers.rs`), shared by every integration test and bench as a dev-dependency:
//!
//! - `app` — the application in-process: headless, 127.0.0.1 port 0, a temporary data dir (or one the
//!   test keeps across restarts), the null audio output, stopped cleanly by a shutdown the harness
//!   passes into `run_until_stopped` (as mini-redis passes its shutdown into the server).
//! - `serve` — the real `voicewall serve` binary as a child process (port 0; its address read from its
//!   own log line), stopped with SIGTERM or killed with SIGKILL (the crash tests).
//! - `inbound` — pushes as a provider hands them over, to drive the pipeline without a platform.
//! - `qr` — decode the QR code an SVG draws, so a test compares the URL a phone would read.

pub mod app;
pub mod inbound;
pub mod qr;
pub mod serve;

pub use app::{test_config, Endpoint, TestApp};
pub use serve::ServeProcess;
