//! The error every handler answers with: a status and a readable reason as `{code, message}` JSON.
//! Client errors are logged as one info line (bad input is not our failure); internal details are
//! logged and never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    /// A webhook body that could not be read (over the route's limit → 413 `too_large`, otherwise the
    /// rejection's own status as `bad_body`); `what` names the body in the message ("push", "update").
    pub fn body_rejected(what: &str, rej: axum::extract::rejection::BytesRejection) -> Self {
        let status = rej.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "too_large"
        } else {
            "bad_body"
        };
        Self::new(status, code, format!("{what} body: {}", rej.body_text()))
    }
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the kiosk log",
        )
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::FlushTimeout => {
                tracing::error!("store flush timed out");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_busy",
                    "storage did not confirm the write; retry",
                )
            }
            full @ crate::store::StoreError::DiskFull { .. } => {
                tracing::error!(error = %full, "push refused");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "disk_full",
                    full.to_string(),
                )
            }
            other => Self::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_client_error() {
            tracing::info!(status = %self.status, reason = %self.message, "request refused");
        }
        (
            self.status,
            Json(json!({"code": self.code, "message": self.message})),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn errors_serialise_to_code_and_message() {
        let r = ApiError::new(StatusCode::CONFLICT, "not_ready", "later").into_response();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        let body = axum::body::to_bytes(r.into_body(), 1024).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v, json!({"code": "not_ready", "message": "later"}));
        let r = ApiError::internal("secret detail").into_response();
        let body = axum::body::to_bytes(r.into_body(), 1024).await.unwrap();
        assert!(!String::from_utf8_lossy(&body).contains("secret detail"));
    }
}
