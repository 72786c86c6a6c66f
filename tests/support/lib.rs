//! The package `voicewall-tests` holds the workspace-level end-to-end tests in `tests/`; a package
//! needs a library target, and this is it. The harness itself is the `voicewall-testkit` crate.

pub use voicewall_testkit::*;
