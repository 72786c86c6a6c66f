//! Providers: one module per platform. Each turns its platform's pushes into `Inbound`s (its own webhook
//! routes), fetches media and profiles by reference, and says how a person joins. The rest of the app
//! knows no platform: it talks to `dyn ProviderClient`.

pub mod telegram;
pub mod web;
pub mod wechat;

use crate::domain::MessageKind;
use async_trait::async_trait;

/// Media fetched from a platform.
pub enum Fetched {
    Bytes {
        bytes: Vec<u8>,
        content_type: String,
    },
}

/// A profile fetched from a platform, before its avatar is cached.
#[derive(Clone, Debug, Default)]
pub struct FetchedProfile {
    pub nickname: String,
    /// Bytes of the avatar image, already downloaded (the wall never hotlinks platform URLs).
    pub avatar: Option<(Vec<u8>, String)>,
    pub unionid: Option<String>,
}

/// Why a fetch failed; `retryable` failures are retried with backoff, the others fail the message at once.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct FetchError {
    pub message: String,
    pub retryable: bool,
}

impl FetchError {
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }
}

/// How people join a wall, as shown on the wall's QR panel.
#[derive(Clone, Debug, serde::Serialize)]
pub struct JoinInfo {
    /// What the QR encodes.
    pub url: String,
    /// Instructions in the wall's locale.
    pub instructions: String,
}

#[async_trait]
pub trait ProviderClient: Send + Sync {
    fn provider(&self) -> crate::domain::Provider;

    /// Fetch the media a push refers to (step 12 of the patent's method).
    async fn fetch_media(&self, media: &str, kind: MessageKind) -> Result<Fetched, FetchError>;

    /// Fetch the sender's profile by their per-account id (step 13). `Ok(None)`: the platform has none
    /// for this person yet (e.g. WeChat before the person opened the join page).
    async fn fetch_profile(&self, sender: &str) -> Result<Option<FetchedProfile>, FetchError>;

    /// The join QR's target and instructions right now.
    fn join_info(&self) -> JoinInfo;

    /// Background upkeep for the whole run (join token rotation, platform QR renewal). Default: none.
    async fn maintain(&self, _state: crate::app::AppState, _wall: String) {}

    /// The concrete provider, for its own routes.
    fn as_any(&self) -> &dyn std::any::Any;
}

/// Run a provider's upkeep (spawned once per wall at start).
pub async fn maintain(
    provider: std::sync::Arc<dyn ProviderClient>,
    state: crate::app::AppState,
    wall: String,
) {
    provider.maintain(state, wall).await;
}
