//! The join form (multipart) of `/api/join/{wall}/voice` and `/profile`, read field by field
//! against the endpoint's limits by the same `read_form` the handlers use — no server.
//!
//! The first line of the input is the Content-Type header (so the fuzzer also varies the
//! boundary), the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use voicewall_core::providers::web::{form::read_form, refusal::Refusal};

/// The voice endpoint's file limit, small so the fuzzer meets the "too large" path.
const FILE_MAX: usize = 64 * 1024;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        // Timers on: a refused form's rest is drained within a time bound (`REFUSED_DRAIN_FOR`).
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let Ok(content_type) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    let body = data.get(split + 1..).unwrap_or_default().to_vec();
    let Ok(content_type) = axum::http::HeaderValue::from_str(content_type) else {
        return;
    };
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(axum::http::header::CONTENT_TYPE, content_type);
    runtime().block_on(async {
        let body = axum::body::Body::from(body);
        let _ = read_form(&headers, body, "audio", FILE_MAX, Refusal::AudioTooLarge(FILE_MAX), None).await;
    });
});
