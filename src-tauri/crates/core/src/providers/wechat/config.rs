//! `[walls.wechat]`: one Official Account's credentials and endpoints. The WeChat provider parses and
//! checks its own section (`wechat::check`); secrets are never printed by `Debug`.

use crate::domain::Provider;
use serde::{Deserialize, Serialize};

/// This platform as stored records and the wire name it (also its config table, `[walls.wechat]`).
pub const PROVIDER: Provider = Provider::new("wechat");

/// A WeChat Official Account (see the WeChat provider).
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WechatConfig {
    pub app_id: String,
    pub app_secret: String,
    pub token: String,
    #[serde(default)]
    pub encoding_aes_key: Option<String>,
    pub original_id: String,
    #[serde(default = "default_wechat_api")]
    pub api_base: String,
    #[serde(default = "default_wechat_oauth")]
    pub oauth_base: String,
    #[serde(default)]
    pub welcome: Option<String>,
}

impl std::fmt::Debug for WechatConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatConfig")
            .field("app_id", &self.app_id)
            .field("original_id", &self.original_id)
            .field("api_base", &self.api_base)
            .field("oauth_base", &self.oauth_base)
            .field("safe_mode", &self.encoding_aes_key.is_some())
            .finish_non_exhaustive()
    }
}

fn default_wechat_api() -> String {
    "https://api.weixin.qq.com".into()
}
fn default_wechat_oauth() -> String {
    "https://open.weixin.qq.com".into()
}
