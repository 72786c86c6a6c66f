//! The kiosk's first-run setup panel: while this kiosk has one wall and no operator has ever signed in
//! to the console, the wall page shows the console's address as a QR next to the join QR, so setup
//! happens from a phone. Once an operator has signed in (on this data dir) it is gone for good.
//!
//! The QR carries the console's address only, never the admin token: the wall is on a screen in a
//! public room, and anyone in it could scan it. The operator signs in with the token printed once at
//! the first start, or with the sign-in QR of the kiosk's Ctrl+Shift+A overlay (shown only on demand).
//!
//! `GET /api/walls/{id}/setup` (a display of the wall) → `{"show": true, "console_url", "qr_svg"}` or
//! `{"show": false}`.

use crate::app::AppState;
use crate::credentials::Credentials;
use crate::http::access::Display;
use crate::http::error::ApiError;
use crate::http::state::known_wall;
use crate::walls::Walls;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/walls/{id}/setup", get(setup_panel))
}

/// Is this a first run: one wall, and nobody ever signed in to the console?
pub fn first_run(walls: &Walls, credentials: &Credentials) -> bool {
    walls.iter().count() == 1 && !credentials.signed_in_once()
}

async fn setup_panel(
    _display: Display,
    State(walls): State<Walls>,
    State(credentials): State<Credentials>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    known_wall(&walls, &id)?;
    let body = if first_run(&walls, &credentials) {
        let console_url = format!("{}/admin", state.public_url.get());
        let qr_svg = crate::qr::svg(&console_url).map_err(ApiError::internal)?;
        json!({"show": true, "console_url": console_url, "qr_svg": qr_svg})
    } else {
        json!({"show": false})
    };
    Ok((
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(body),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::config::WallConfig;
    use crate::testing::{FakePlatform, Fixture};
    use crate::walls::Wall;

    #[test]
    fn a_first_run_is_one_wall_and_no_sign_in_ever() {
        let fx = Fixture::new(FakePlatform::serving(Vec::new(), "audio/ogg"));
        let credentials = Credentials::new(fx.store.clone(), Clock::manual(1_000));
        assert!(first_run(&fx.walls, &credentials));
        let two = Walls::new(vec![
            Wall {
                config: WallConfig::with_id("a"),
                provider: fx.platform.clone(),
            },
            Wall {
                config: WallConfig::with_id("b"),
                provider: fx.platform.clone(),
            },
        ]);
        assert!(!first_run(&two, &credentials), "a configured venue");
        credentials.open_session().unwrap();
        assert!(!first_run(&fx.walls, &credentials));
        // For good: a restart (new handles over the same store) still knows.
        let again = Credentials::new(fx.store.clone(), Clock::manual(2_000));
        assert!(again.signed_in_once() && !first_run(&fx.walls, &again));
    }
}
