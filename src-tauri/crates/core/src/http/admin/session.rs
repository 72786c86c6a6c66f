//! The operator's sign-in and the displays they open.
//!
//! - `POST /api/admin/login {"token"}` → 204 + `vw_session` (HttpOnly, SameSite=Strict); wrong token 401.
//!   After `credentials::LOGIN_FAILURES` wrong tokens in a minute from one client address (`ClientIp`,
//!   which believes `X-Forwarded-For` only from `trusted_proxies`), every login from it is 429
//!   `too_many_attempts` with `Retry-After` until the oldest failure is a minute old.
//! - `POST /api/admin/logout` → 204; the session ends and its cookie is cleared.
//! - `POST /api/admin/walls/{id}/displays` (operator) → `{"url": "/display/<one-time code>"}`.
//! - `GET /display/{code}`: single use, 10 minutes → `vw_display` (HttpOnly, SameSite=Lax) and 303 to the
//!   clean `/wall/{id}`, with `Referrer-Policy: no-referrer` so the code leaks nowhere.
//!
//! All of these are in the audit log: `session.login`, `session.login_failed` (actor `anonymous`,
//! detail the client address), `session.logout`, `display.link`, `display.open` (actor `display`).

use crate::app::AdminToken;
use crate::audit::Audit;
use crate::credentials::{Credentials, DisplayScope, DISPLAY_TTL_MS};
use crate::http::access::{self, Gate, Operator, DISPLAY_COOKIE, SESSION_COOKIE};
use crate::http::client_ip::ClientIp;
use crate::http::error::ApiError;
use crate::walls::Walls;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use axum_extra::extract::cookie::{CookieJar, SameSite};
use serde::Deserialize;
use serde_json::json;

/// The browser keeps the session cookie this long; the server ends the session after 12 idle hours.
const SESSION_COOKIE_MAX_AGE_S: i64 = 30 * 86_400;
/// A display cookie lasts as long as its record (the kiosk gets a fresh one at every start).
const DISPLAY_MAX_AGE_S: i64 = (DISPLAY_TTL_MS / 1000) as i64;

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

const NO_STORE: (header::HeaderName, HeaderValue) =
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store"));

async fn login(
    State(admin): State<AdminToken>,
    State(credentials): State<Credentials>,
    State(audit): State<Audit>,
    Extension(gate): Extension<Gate>,
    ClientIp(client): ClientIp,
    Json(body): Json<Login>,
) -> Result<Response, ApiError> {
    if let Err(wait_s) = credentials.throttle.check(client) {
        tracing::warn!(%client, wait_s, "console login refused: too many wrong tokens from this address");
        let refusal = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!("too many wrong tokens from this address; try again in {wait_s} s"),
        );
        return Ok(([(header::RETRY_AFTER, HeaderValue::from(wait_s))], refusal).into_response());
    }
    if !access::is_admin_token(&body.token, &admin) {
        credentials.throttle.failed(client);
        tracing::warn!(%client, "console login with a wrong token");
        audit.record(
            "anonymous",
            "session.login_failed",
            None,
            None,
            &format!("client={client}"),
        )?;
        return Err(access::unauthorized("that is not the admin token"));
    }
    let (secret, actor) = credentials.open_session()?;
    credentials.prune()?;
    audit.record(
        &actor,
        "session.login",
        None,
        None,
        &format!("client={client}"),
    )?;
    let cookie = gate.cookie(
        SESSION_COOKIE,
        secret,
        SameSite::Strict,
        SESSION_COOKIE_MAX_AGE_S,
    );
    Ok((
        StatusCode::NO_CONTENT,
        CookieJar::new().add(cookie),
        [NO_STORE],
    )
        .into_response())
}

async fn logout(
    State(credentials): State<Credentials>,
    State(audit): State<Audit>,
    Extension(gate): Extension<Gate>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(secret) = access::cookie(&headers, SESSION_COOKIE) {
        if let Some(actor) = credentials.close_session(&secret)? {
            audit.record(&actor, "session.logout", None, None, "")?;
        }
    }
    let cleared = gate.cookie(SESSION_COOKIE, String::new(), SameSite::Strict, 0);
    Ok((
        StatusCode::NO_CONTENT,
        CookieJar::new().add(cleared),
        [NO_STORE],
    )
        .into_response())
}

async fn open_display(
    op: Operator,
    State(walls): State<Walls>,
    State(credentials): State<Credentials>,
    State(audit): State<Audit>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if walls.get(&id).is_none() {
        return Err(ApiError::not_found(format!("no wall {id:?}")));
    }
    let code = credentials.display_link(&id, DisplayScope::Wall(id.clone()));
    audit.record(&op.actor, "display.link", Some(&id), None, "")?;
    Ok(Json(json!({ "url": format!("/display/{code}") })))
}

async fn redeem(
    State(credentials): State<Credentials>,
    State(audit): State<Audit>,
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
    let scope = credentials.display(&secret);
    let detail = match scope {
        Some(DisplayScope::Kiosk) => "kiosk",
        _ => "browser",
    };
    audit.record("display", "display.open", Some(&wall), None, detail)?;
    let cookie = gate.cookie(DISPLAY_COOKIE, secret, SameSite::Lax, DISPLAY_MAX_AGE_S);
    Ok((
        StatusCode::SEE_OTHER,
        [
            no_referrer,
            (
                header::LOCATION,
                HeaderValue::from_str(&format!("/wall/{wall}")).expect("wall ids are URL-safe"),
            ),
            NO_STORE,
        ],
        CookieJar::new().add(cookie),
    )
        .into_response())
}
