//! Who may call what. Four audiences (platforms, guests, displays, the operator); no request gets
//! authority from its source address (a tunnel or reverse proxy on the kiosk makes every request
//! loopback).
//!
//! - `Operator` — an extractor for `/api/admin/…`: the caller proved to be the operator, by
//!   `Authorization: Bearer <admin token>` or the `vw_session` cookie of `POST /api/admin/login`.
//!   Rejects with 401 `unauthorized`. `actor` names who acted, for the audit log.
//! - `Display` — an extractor for what a wall screen reads (`/wall/{id}`, `/api/walls/{id}…`, media): a
//!   display credential (`vw_display`, from the kiosk shell or a one-time link), or the operator.
//!   401 `unauthorized` without one, 403 `forbidden` for a display of another wall.
//! - A request authenticated by a cookie that changes state (POST, PUT, DELETE, …) must carry an
//!   `Origin` that is the kiosk's own, else 403 `bad_origin` (another site cannot ride the cookie).
//!   Bearer calls need no Origin (a browser never adds that header on its own).
//!
//! - Media (`may_fetch_media`): the operator and the kiosk window any blob; a display of wall W only
//!   the avatars of W's unbanned participants and the voices W shows; a guest their own avatar and
//!   voices. One lookup in the store's media index per wall, never a scan of the messages.
//!
//! Cookies are read and built with axum-extra's `CookieJar` and `Cookie` builder (the device cookie of
//! the web provider uses its signed jar): no cookie header is parsed or written by hand.
//!
//! The extractors read the [`Gate`] the router puts into every request's extensions, so they work in
//! any router (the providers' too: Telegram's status page takes `Operator`).

use crate::app::AdminToken;
use crate::credentials::{Credentials, DisplayScope};
use crate::http::error::ApiError;
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

/// The operator's session cookie.
pub const SESSION_COOKIE: &str = "vw_session";
/// A display's cookie.
pub const DISPLAY_COOKIE: &str = "vw_display";

/// What the access rules need of the app; the router adds it to every request's extensions.
#[derive(Clone)]
pub struct Gate {
    pub admin: AdminToken,
    pub credentials: Credentials,
    /// Where phones reach the kiosk (`http://192.168.1.20:8787`): an `Origin` equal to it is the kiosk's own.
    pub public_url: crate::provider::PublicUrl,
    /// Served over HTTPS: cookies get `Secure`.
    pub secure: bool,
}

impl Gate {
    /// A cookie of ours: HttpOnly, path `/`, `Secure` over HTTPS; `max_age_s` 0 deletes it. Add it to a
    /// `CookieJar` to set it.
    pub fn cookie(
        &self,
        name: &'static str,
        value: String,
        same_site: SameSite,
        max_age_s: i64,
    ) -> Cookie<'static> {
        Cookie::build((name, value))
            .path("/")
            .max_age(cookie::time::Duration::seconds(max_age_s))
            .http_only(true)
            .same_site(same_site)
            .secure(self.secure)
            .build()
    }
}

/// The operator, proven by the admin Bearer token or a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operator {
    /// Who acted, as the audit log names it (`"bearer"`, or a session's public id `session:…`).
    pub actor: String,
}

/// Who is looking at a wall.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Display {
    /// The operator (Bearer or session) sees every wall.
    Operator(String),
    /// A display credential.
    Screen(DisplayScope),
}

impl Display {
    /// The kiosk's own window (the shell's credential at start).
    pub fn is_kiosk(&self) -> bool {
        matches!(self, Display::Screen(DisplayScope::Kiosk))
    }
}

/// `Authorization: Bearer <admin token>`, compared in constant time (digests: the length does not leak).
pub fn bearer_is_admin(parts: &Parts, admin: &AdminToken) -> bool {
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    bearer.is_some_and(|b| is_admin_token(b, admin))
}

/// Is `given` the admin token? Constant time (digests: the length does not leak).
pub fn is_admin_token(given: &str, admin: &AdminToken) -> bool {
    use sha2::Digest;
    crate::secret::same(
        &sha2::Sha256::digest(given.as_bytes()),
        &sha2::Sha256::digest(admin.0.as_bytes()),
    )
}

pub fn unauthorized(what: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", what.to_string())
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(name)
        .map(|c| c.value().to_string())
}

fn gate(parts: &Parts) -> Result<&Gate, ApiError> {
    parts
        .extensions
        .get::<Gate>()
        .ok_or_else(|| ApiError::internal("the router did not install the access gate"))
}

/// A cookie-authenticated request that changes state must come from the kiosk's own pages.
fn same_origin(parts: &Parts, gate: &Gate) -> Result<(), ApiError> {
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let origin = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()));
    let own = origin.is_some_and(|o| {
        o == &*gate.public_url.get()
            || host.is_some_and(|h| o.split_once("://").map(|(_, authority)| authority) == Some(h))
    });
    if own {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "bad_origin",
            format!(
                "a signed-in change must come from the kiosk's own pages (Origin {:?} is not this server's)",
                origin.unwrap_or("missing")
            ),
        ))
    }
}

/// The operator's actor name if the request carries the admin Bearer or a live session.
fn operator_of(parts: &Parts, gate: &Gate) -> Result<Option<String>, ApiError> {
    if bearer_is_admin(parts, &gate.admin) {
        return Ok(Some("bearer".into()));
    }
    match cookie(&parts.headers, SESSION_COOKIE).and_then(|s| gate.credentials.session(&s)) {
        Some(actor) => {
            same_origin(parts, gate)?;
            Ok(Some(actor))
        }
        None => Ok(None),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        match operator_of(parts, gate(parts)?)? {
            Some(actor) => Ok(Operator { actor }),
            None => Err(unauthorized(
                "the operator's console needs a session (log in at /admin)",
            )),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Display {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let gate = gate(parts)?.clone();
        if let Some(actor) = operator_of(parts, &gate)? {
            return Ok(Display::Operator(actor));
        }
        let Some(scope) =
            cookie(&parts.headers, DISPLAY_COOKIE).and_then(|s| gate.credentials.display(&s))
        else {
            return Err(unauthorized(
                "a wall is shown only on a display: open one from the operator's console (/admin), or send the admin token as Bearer",
            ));
        };
        same_origin(parts, &gate)?;
        let params = RawPathParams::from_request_parts(parts, state).await.ok();
        let wall = params
            .as_ref()
            .and_then(|p| p.iter().find(|(k, _)| *k == "id").map(|(_, v)| v));
        if let Some(wall) = wall {
            if !scope.shows(wall) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!("this display shows another wall, not {wall:?}"),
                ));
            }
        }
        Ok(Display::Screen(scope))
    }
}

/// May this request fetch blob `key`? `viewer` is the request's display credential, if it has one
/// (see the module doc). `Ok(false)` for a display of another wall or a guest's other media.
pub fn may_fetch_media(
    state: &crate::app::AppState,
    viewer: Option<&Display>,
    headers: &HeaderMap,
    key: &crate::domain::MediaKey,
) -> Result<bool, ApiError> {
    match viewer {
        Some(Display::Operator(_)) | Some(Display::Screen(DisplayScope::Kiosk)) => Ok(true),
        Some(Display::Screen(DisplayScope::Wall(wall))) => {
            let settings = state.board.settings(wall)?;
            for record in state.store.media_records(key, wall)? {
                let shown = match record.split_once(':') {
                    Some(("p", pid)) => !state.store.is_banned(wall, pid)?,
                    Some(("m", mid)) => match state.store.message(wall, mid)? {
                        Some(m) => {
                            let banned: std::collections::HashSet<String> =
                                if state.store.is_banned(wall, &m.participant_id)? {
                                    [m.participant_id.clone()].into()
                                } else {
                                    Default::default()
                                };
                            crate::board::Board::shows(&settings, &banned, &m)
                        }
                        None => false,
                    },
                    _ => false,
                };
                if shown {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        None => {
            for wall in state.walls.iter() {
                let Some(pid) = wall.provider.guest(headers) else {
                    continue;
                };
                let id = &wall.config.id;
                for record in state.store.media_records(key, id)? {
                    let own = match record.split_once(':') {
                        Some(("p", p)) => p == pid,
                        Some(("m", mid)) => state
                            .store
                            .message(id, mid)?
                            .is_some_and(|m| m.participant_id == pid),
                        _ => false,
                    };
                    if own {
                        return Ok(true);
                    }
                }
            }
            Ok(false)
        }
    }
}
