//! `GET /api/openapi.json`: the OpenAPI 3.1 description of the HTTP API, kept by hand in
//! `openapi.json` beside this file and served as it is.
//!
//! It is checked against the code, not trusted: the test below reads every `.route(...)` of the
//! crate's source (the shared routes, the console's and each provider's) and fails when a route
//! (path and method) is missing from the document or the document lists one the code does not
//! have. schemathesis (`scripts/schemathesis.sh`) checks the answers of a live server against it.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// `GET /api/openapi.json` (public: it says nothing the routes do not).
pub async fn document() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        DOCUMENT,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    /// (METHOD, path) pairs, paths in OpenAPI form (`{*rest}` → `{rest}`).
    type Routes = BTreeSet<(String, String)>;

    const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

    fn documented() -> Routes {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).expect("openapi.json is JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let mut out = Routes::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in METHODS {
                if item.get(method).is_some() {
                    out.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    /// The text inside the parentheses opening at `open` (which is the index just after `(`).
    fn balanced(text: &str, open: usize) -> &str {
        let mut depth = 1;
        for (i, c) in text[open..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return &text[open..open + i];
                    }
                }
                _ => {}
            }
        }
        panic!("unbalanced .route( call");
    }

    /// Splits at the first comma outside parentheses and quotes.
    fn first_argument(args: &str) -> (&str, &str) {
        let (mut depth, mut quoted) = (0, false);
        for (i, c) in args.char_indices() {
            match c {
                '"' => quoted = !quoted,
                '(' if !quoted => depth += 1,
                ')' if !quoted => depth -= 1,
                ',' if !quoted && depth == 0 => return (args[..i].trim(), args[i + 1..].trim()),
                _ => {}
            }
        }
        panic!("a .route( call with one argument: {args}");
    }

    /// The first string literal of `text`.
    fn literal(text: &str) -> &str {
        let start = text.find('"').expect("a string literal") + 1;
        let end = start + text[start..].find('"').expect("a closed literal");
        &text[start..end]
    }

    /// A route's path as the router sees it, for one wall `{id}`.
    fn path_of(arg: &str) -> String {
        let path = if arg.starts_with('"') {
            literal(arg).to_string()
        } else if arg.starts_with("&format!(") {
            // Rust interpolations of the wall's id.
            literal(arg).replace("{wall}", "{id}")
        } else if let Some(rest) = arg.strip_prefix("&api(") {
            format!("/api/join/{{id}}/{}", literal(rest))
        } else if arg.starts_with("&webhook_setup::webhook_path(") {
            "/webhook/telegram/{id}".to_string()
        } else {
            panic!("a route path this test cannot read; teach it: {arg}");
        };
        path.replace("{*", "{")
    }

    fn routes_in(dir: &Path, out: &mut Routes) {
        for entry in std::fs::read_dir(dir).expect("source dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                routes_in(&path, out);
                continue;
            }
            // This file names `.route(` in its own text; testing.rs is the tests' fake platform.
            let skipped = path.ends_with("http/openapi.rs") || path.ends_with("src/testing.rs");
            if path.extension().is_none_or(|e| e != "rs") || skipped {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("source file");
            let mut from = 0;
            while let Some(at) = text[from..].find(".route(") {
                let open = from + at + ".route(".len();
                from = open;
                let (first, rest) = first_argument(balanced(&text, open));
                if rest.contains("no_such_route") {
                    continue; // the JSON 404 of paths no wall has
                }
                let route = path_of(first);
                for method in METHODS {
                    let call = format!("{method}(");
                    let found = rest.match_indices(&call).any(|(i, _)| {
                        i == 0 || !rest[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                    });
                    if found {
                        out.insert((method.to_uppercase(), route.clone()));
                    }
                }
            }
        }
    }

    #[test]
    fn every_route_is_documented_and_every_documented_route_exists() {
        let mut code = Routes::new();
        routes_in(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut code,
        );
        assert!(code.len() > 30, "the scan found the routes: {code:?}");
        let doc = documented();
        let undocumented: Vec<_> = code.difference(&doc).collect();
        let missing: Vec<_> = doc.difference(&code).collect();
        assert!(
            undocumented.is_empty() && missing.is_empty(),
            "src/http/openapi.json is out of step with the router.\n\
             Routes in the code but not in the document: {undocumented:?}\n\
             Routes in the document but not in the code: {missing:?}"
        );
    }

    #[tokio::test]
    async fn the_document_is_served_as_json() {
        let r = document().await;
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["info"]["title"], "Voicewall HTTP API");
    }
}
