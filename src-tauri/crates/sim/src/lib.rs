//! SIMULATORS of other people's platforms, for the tests and the clearly labelled `voicewall demo`:
//! real HTTP servers on 127.0.0.1 that follow the platforms' published shapes. Nothing here talks to
//! a network or ships in the product's serving path.
//!
//! - [`telegram`] — a mock Telegram Bot API (methods, file server, pushing side).

pub mod telegram;
