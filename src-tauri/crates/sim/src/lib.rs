//! SIMULATORS of someone else's platforms, for the tests, the benches and the clearly labelled
//! `voicewall demo`. Each platform is a module of its own (`wechat`, `telegram`), a real HTTP
//! server on 127.0.0.1 that follows that platform's published API shapes and talks to no network, plus
//! its pushing side (signing a push the way the platform does and POSTing it to a webhook).
//!
//! `voicewall-core` never depends on this crate: the product's core knows no simulator. The tests and
//! benches take it as a dev-dependency; the `voicewall` shell links it only with its `demo` feature.

pub mod demo;
pub mod telegram;
pub mod telegram_demo;
pub mod wechat;
