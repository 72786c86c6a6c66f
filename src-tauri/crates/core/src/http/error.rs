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
            crate::store::StoreError::Blob(e) if e.kind() == std::io::ErrorKind::StorageFull => {
                tracing::error!(error = %e, "a media file could not be written: the disk is full");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "disk_full",
                    "storage: the disk is full; retry later",
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

/// Every refusal is `{code, message}`: axum's own answers (a JSON or path the extractor rejects,
/// a method the route does not have, a path no route has) come as plain text or empty; they are
/// rewritten here, for every route (a layer of the router).
pub async fn json_refusals(response: Response) -> Response {
    let status = response.status();
    let plain = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_none_or(|t| t.as_bytes().starts_with(b"text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        _ if status.is_server_error() => "internal",
        _ => "refused",
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("refused").to_string()
    } else {
        text
    };
    let mut rewritten = ApiError::new(status, code, message).into_response();
    for (name, value) in parts.headers.iter() {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            rewritten.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rewritten
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

    /// A media file that cannot be written on a full disk is 503 `disk_full` (the platform retries),
    /// like a push refused for the space kept free; another I/O error is a 500.
    #[test]
    fn a_full_disk_under_a_media_file_is_503_disk_full() {
        use crate::store::StoreError;
        let full = ApiError::from(StoreError::Blob(std::io::Error::from(
            std::io::ErrorKind::StorageFull,
        )));
        assert_eq!(
            (full.status, full.code),
            (StatusCode::SERVICE_UNAVAILABLE, "disk_full")
        );
        let other = ApiError::from(StoreError::Blob(std::io::Error::from(
            std::io::ErrorKind::PermissionDenied,
        )));
        assert_eq!(other.status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn axum_rejections_become_code_and_message() {
        let plain = (StatusCode::UNPROCESSABLE_ENTITY, "Failed to deserialize").into_response();
        let r = json_refusals(plain).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = axum::body::to_bytes(r.into_body(), 1024).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], "unprocessable");
        assert_eq!(v["message"], "Failed to deserialize");
        let empty = StatusCode::METHOD_NOT_ALLOWED.into_response();
        let body = axum::body::to_bytes(json_refusals(empty).await.into_body(), 1024)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], "method_not_allowed");
        let ok = (StatusCode::OK, "fine").into_response();
        assert_eq!(json_refusals(ok).await.status(), StatusCode::OK);
    }
}
