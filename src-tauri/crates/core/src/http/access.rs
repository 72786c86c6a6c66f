//! Who may call what. Four audiences (platforms, guests, displays, the operator); no request gets
//! authority from its source address (a tunnel or reverse proxy on the kiosk makes every request
//! loopback).
//!
//! - `Operator` — an extractor for `/api/admin/…`: the caller proved to be the operator. Rejects with
//!   401 `unauthorized`. `actor` names who acted, for the audit log.

use crate::app::AdminToken;
use crate::http::error::ApiError;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};

/// The operator, proven by `Authorization: Bearer <admin token>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operator {
    /// Who acted, as the audit log names it (`"bearer"`, or a session's public id).
    pub actor: String,
}

/// `Authorization: Bearer <admin token>`, compared in constant time (digests: the length does not leak).
pub fn bearer_is_admin(parts: &Parts, admin: &AdminToken) -> bool {
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    bearer.is_some_and(|b| {
        use sha2::Digest;
        crate::secret::same(
            &sha2::Sha256::digest(b.as_bytes()),
            &sha2::Sha256::digest(admin.0.as_bytes()),
        )
    })
}

pub fn unauthorized(what: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", what.to_string())
}

impl<S: Send + Sync> FromRequestParts<S> for Operator
where
    AdminToken: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let admin = AdminToken::from_ref(state);
        if bearer_is_admin(parts, &admin) {
            return Ok(Operator {
                actor: "bearer".into(),
            });
        }
        Err(unauthorized(
            "the operator's console needs a session (log in at /admin)",
        ))
    }
}
