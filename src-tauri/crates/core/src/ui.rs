//! The web UI (ui/ at the repo's top), embedded in the binary at build time so the kiosk stands alone;
//! and the small localized notice page a guest sees when a join link leads nowhere.

use crate::lang::Lang;
use axum::http::{header, HeaderValue, StatusCode};
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
    "setup-panel.js" => "text/javascript; charset=utf-8",
    "grid.js" => "text/javascript; charset=utf-8",
    "join.html" => "text/html; charset=utf-8",
    "join.css" => "text/css; charset=utf-8",
    "join.js" => "text/javascript; charset=utf-8",
    "admin.html" => "text/html; charset=utf-8",
    "admin.css" => "text/css; charset=utf-8",
    "admin.js" => "text/javascript; charset=utf-8",
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

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A small localized page for the guest who cannot join (expired or invalid QR link, unknown wall).
pub fn notice_page(status: StatusCode, lang: Lang, title: &str, message: &str) -> Response {
    let hint = lang.pick(
        "Point your phone camera at the QR code on the big screen.",
        "用手机相机对准大屏幕上的二维码即可。",
    );
    let html = format!(
        "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1, viewport-fit=cover\">\
<meta name=\"color-scheme\" content=\"dark\"><title>{title}</title>\
<link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"/ui/join.css\"></head>\
<body class=\"notice\"><main class=\"card notice-card\" data-status=\"{code}\">\
<div class=\"notice-icon\" aria-hidden=\"true\"><svg viewBox=\"0 0 48 48\" width=\"56\" height=\"56\">\
<rect x=\"6\" y=\"6\" width=\"14\" height=\"14\" rx=\"3\" fill=\"none\" stroke=\"currentColor\" stroke-width=\"3\"/>\
<rect x=\"28\" y=\"6\" width=\"14\" height=\"14\" rx=\"3\" fill=\"none\" stroke=\"currentColor\" stroke-width=\"3\"/>\
<rect x=\"6\" y=\"28\" width=\"14\" height=\"14\" rx=\"3\" fill=\"none\" stroke=\"currentColor\" stroke-width=\"3\"/>\
<path d=\"M28 28h5v5h-5zM37 37h5v5h-5zM37 28h5M28 42h5\" fill=\"currentColor\" stroke=\"currentColor\" stroke-width=\"2\"/>\
</svg></div><h1>{title}</h1><p class=\"notice-message\">{message}</p><p class=\"hint\">{hint}</p>\
</main></body></html>\n",
        lang = lang.tag(),
        code = status.as_u16(),
        title = html_escape(title),
        message = html_escape(message),
        hint = html_escape(hint),
    );
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        html,
    )
        .into_response()
}

/// The page for a join link to a wall that does not exist.
pub fn no_such_wall(lang: Lang) -> Response {
    notice_page(
        StatusCode::NOT_FOUND,
        lang,
        lang.pick("No such wall", "找不到这面墙"),
        lang.pick(
            "This link does not lead to a wall. Scan the QR code on the screen again.",
            "这个链接没有对应的墙，请重新扫描屏幕上的二维码。",
        ),
    )
}
