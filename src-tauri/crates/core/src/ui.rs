//! The web UI (ui/ at the repo's top), embedded in the binary at build time so the kiosk stands alone.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

macro_rules! ui_files {
    ($($name:literal => $mime:literal),* $(,)?) => {
        const FILES: &[(&str, &str, &[u8])] = &[
            $(($name, $mime, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../ui/", $name)))),*
        ];
    };
}

ui_files! {
    "wall.html" => "text/html; charset=utf-8",
    "wall.css" => "text/css; charset=utf-8",
    "wall.js" => "text/javascript; charset=utf-8",
    "join.html" => "text/html; charset=utf-8",
    "join.css" => "text/css; charset=utf-8",
    "join.js" => "text/javascript; charset=utf-8",
}

fn find(name: &str) -> Option<(&'static str, &'static [u8])> {
    FILES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, m, b)| (*m, *b))
}

/// A page or asset, `no-cache` (a kiosk update must show at the next reload).
pub fn asset(name: &str) -> Response {
    match find(name) {
        Some((mime, bytes)) => (
            [
                (header::CONTENT_TYPE, mime),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
