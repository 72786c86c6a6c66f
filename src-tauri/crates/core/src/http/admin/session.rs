//! The operator's sign-in and the displays they open.
//!
//! - `POST /api/admin/login {"token"}` → 204 + `vw_session` (HttpOnly, SameSite=Strict); wrong token 401.
//! - `POST /api/admin/logout` → 204; the session ends and its cookie is cleared.
//! - `POST /api/admin/walls/{id}/displays` (operator) → `{"url": "/display/<one-time code>"}`.
//! - `GET /display/{code}`: single use, 10 minutes → `vw_display` (HttpOnly, SameSite=Lax) and 303 to the
//!   clean `/wall/{id}`, with `Referrer-Policy: no-referrer` so the code leaks nowhere.

use crate::app::AdminToken;
use crate::credentials::{Credentials, DisplayScope};
use crate::http::access::{self, Gate, Operator, DISPLAY_COOKIE, SESSION_COOKIE};
use crate::http::error::ApiError;
use crate::walls::Walls;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;

/// The browser keeps the session cookie this long; the server ends the session after 12 idle hours.
const SESSION_COOKIE_MAX_AGE_S: u64 = 30 * 86_400;
/// A display cookie lasts a season (the kiosk gets a fresh one at every start).
const DISPLAY_MAX_AGE_S: u64 = 400 * 86_400;

pub fn routes() -> Router<crate::app::AppState> {
    Router::new()
        .route("/api/admin/login", post(login))
        .route("/api/admin/logout", post(logout))
        .route("/api/admin/walls/{id}/displays", post(open_display))
        .route("/display/{code}", get(redeem))
}

#[derive(Deserialize)]
struct Login {
    token: String,
}

fn set_cookie(value: String) -> [(header::HeaderName, HeaderValue); 2] {
    [
        (
            header::SET_COOKIE,
            HeaderValue::from_str(&value).expect("cookie is ASCII"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ]
}

async fn login(
    State(admin): State<AdminToken>,
    State(credentials): State<Credentials>,
    Extension(gate): Extension<Gate>,
    Json(body): Json<Login>,
) -> Result<Response, ApiError> {
    if !access::is_admin_token(&body.token, &admin) {
        tracing::warn!("console login with a wrong token");
        return Err(access::unauthorized("that is not the admin token"));
    }
    let (secret, actor) = credentials.open_session()?;
    tracing::info!(%actor, "operator signed in");
    let cookie = gate.cookie(SESSION_COOKIE, &secret, "Strict", SESSION_COOKIE_MAX_AGE_S);
    Ok((StatusCode::NO_CONTENT, set_cookie(cookie)).into_response())
}

async fn logout(
    State(credentials): State<Credentials>,
    Extension(gate): Extension<Gate>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(secret) = access::cookie(&headers, SESSION_COOKIE) {
        credentials.close_session(secret)?;
        tracing::info!("operator signed out");
    }
    let cleared = gate.cookie(SESSION_COOKIE, "", "Strict", 0);
    Ok((StatusCode::NO_CONTENT, set_cookie(cleared)).into_response())
}

async fn open_display(
    op: Operator,
    State(walls): State<Walls>,
    State(credentials): State<Credentials>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if walls.get(&id).is_none() {
        return Err(ApiError::not_found(format!("no wall {id:?}")));
    }
    let code = credentials.display_link(&id, DisplayScope::Wall(id.clone()));
    tracing::info!(actor = %op.actor, wall = %id, "display link opened");
    Ok(Json(json!({ "url": format!("/display/{code}") })))
}

async fn redeem(
    State(credentials): State<Credentials>,
    Extension(gate): Extension<Gate>,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let no_referrer = (
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    let Some((secret, wall)) = credentials.redeem(&code)? else {
        let refusal = access::unauthorized(
            "this display link was used already or is older than 10 minutes: open a new one from the console",
        );
        return Ok(([no_referrer], refusal).into_response());
    };
    tracing::info!(%wall, "display opened");
    let cookie = gate.cookie(DISPLAY_COOKIE, &secret, "Lax", DISPLAY_MAX_AGE_S);
    Ok((
        StatusCode::SEE_OTHER,
        [
            no_referrer,
            (
                header::LOCATION,
                HeaderValue::from_str(&format!("/wall/{wall}")).expect("wall ids are URL-safe"),
            ),
        ],
        set_cookie(cookie),
    )
        .into_response())
}
