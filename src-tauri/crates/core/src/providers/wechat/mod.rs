//! WeChat Official Account provider (placeholder until the WeChat module lands).

use crate::app::AppState;
use crate::config::{WallConfig, WechatConfig};
use crate::domain::{MessageKind, Provider};
use crate::providers::{FetchError, Fetched, FetchedProfile, JoinInfo, ProviderClient};
use crate::store::Store;
use async_trait::async_trait;

pub struct WechatProvider {
    pub wall: String,
    pub config: WechatConfig,
    pub public_url: String,
    pub http: reqwest::Client,
    pub store: Store,
}

impl WechatProvider {
    pub fn new(
        wall: &WallConfig,
        config: &WechatConfig,
        public_url: &str,
        http: reqwest::Client,
        store: Store,
    ) -> Self {
        Self {
            wall: wall.id.clone(),
            config: config.clone(),
            public_url: public_url.to_string(),
            http,
            store,
        }
    }
}

#[async_trait]
impl ProviderClient for WechatProvider {
    fn provider(&self) -> Provider {
        Provider::Wechat
    }
    async fn fetch_media(&self, _media: &str, _kind: MessageKind) -> Result<Fetched, FetchError> {
        Err(FetchError::permanent("not implemented"))
    }
    async fn fetch_profile(&self, _sender: &str) -> Result<Option<FetchedProfile>, FetchError> {
        Ok(None)
    }
    fn join_info(&self) -> JoinInfo {
        JoinInfo {
            url: format!("{}/join/{}", self.public_url, self.wall),
            instructions: String::new(),
        }
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
}
