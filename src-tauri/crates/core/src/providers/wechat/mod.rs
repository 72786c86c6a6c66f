//! WeChat Official Account provider (patent CN103491087A end to end):
//!
//! - `webhook` — `GET/POST /webhook/wechat/{wall}`: server verification, plaintext / compatible / safe
//!   mode pushes, durable ack through the inbox, passive "you're in" replies;
//! - `join` — the web OAuth join (`GET /join/{wall}` redirects to consent, `GET /join/{wall}/oauth`
//!   comes back): the person's nickname and avatar, since `user/info` no longer returns them;
//! - `api` — access_token, media/get, qrcode/create, OAuth, custom/send;
//! - `crypto`, `xml` — the protocol, small and exact;
//! - `config` — `[walls.wechat]`, parsed and checked here;
//! - `replay` — the nonce cache that binds a signed (timestamp, nonce) to one body;
//! - `account` — one wall's account: config, API client, crypt, the QR it shows.
//!
//! The wall's join QR is the account's parametric QR (scene = wall id), renewed before it expires; until
//! the platform hands one out, the wall shows `{public_url}/join/{wall}`.

pub mod account;
pub mod api;
pub mod config;
pub mod crypto;
pub mod join;
pub mod replay;
pub mod webhook;
pub mod xml;

pub use account::Account;
pub use config::PROVIDER;

use crate::domain::{FetchedProfile, MessageKind, Provider};
use crate::provider::{
    FetchError, Fetched, JoinInfo, ProviderContext, ProviderError, ProviderSection, WallProvider,
};
use account::SavedQr;
use async_trait::async_trait;
use axum::extract::{DefaultBodyLimit, Request};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use config::WechatConfig;
use std::sync::Arc;
use std::time::Duration;

/// Largest push body accepted (WeChat's are a few hundred bytes).
pub const MAX_PUSH_BYTES: usize = 1024 * 1024;
/// The longest a temporary parametric QR may live (30 days).
pub const QR_EXPIRE_SECONDS: u64 = 2_592_000;

/// Parse and validate `[walls.wechat]`.
pub fn check(section: &ProviderSection) -> Result<(), ProviderError> {
    parse(section).map(|_| ())
}

fn parse(section: &ProviderSection) -> Result<WechatConfig, ProviderError> {
    let config: WechatConfig = section.parse()?;
    for (name, value) in [
        ("app_id", &config.app_id),
        ("app_secret", &config.app_secret),
        ("token", &config.token),
        ("original_id", &config.original_id),
    ] {
        if value.trim().is_empty() {
            return Err(section.invalid(name, "must not be empty").into());
        }
    }
    if let Some(k) = &config.encoding_aes_key {
        if k.len() != 43 {
            return Err(section
                .invalid(
                    "encoding_aes_key",
                    format!("must be 43 characters, has {}", k.len()),
                )
                .into());
        }
    }
    for (name, url) in [
        ("api_base", &config.api_base),
        ("oauth_base", &config.oauth_base),
    ] {
        if reqwest::Url::parse(url).is_err() {
            return Err(section
                .invalid(name, format!("{url:?} is not a URL"))
                .into());
        }
    }
    Ok(config)
}

pub fn build(
    ctx: ProviderContext,
    section: &ProviderSection,
) -> Result<Arc<dyn WallProvider>, ProviderError> {
    Ok(Arc::new(Account::new(ctx, parse(section)?)))
}

#[async_trait]
impl WallProvider for Account {
    fn kind(&self) -> Provider {
        PROVIDER
    }

    /// `media/get` by MediaId (voice AMR, image; video through its `video_url`).
    async fn fetch_media(&self, media: &str, _kind: MessageKind) -> Result<Fetched, FetchError> {
        let (bytes, content_type) = self.api.media_get(media).await?;
        Ok(Fetched::Bytes {
            bytes,
            content_type,
        })
    }

    /// `user/info` no longer returns nickname or avatar: the only name and picture are the ones the
    /// person consented to on the OAuth join page, stored by openid. Returning it here closes the race
    /// where the OAuth callback stored it while the pipeline was creating the participant. Without one,
    /// `user/info` still gives the unionid, so a follower of two venue accounts is one person at once.
    async fn fetch_profile(&self, sender: &str) -> Result<Option<FetchedProfile>, FetchError> {
        let stored = self
            .store
            .profile(PROVIDER, sender)
            .map_err(|e| FetchError::retryable(e.to_string()))?;
        let Some(p) = stored else {
            return self.follower_unionid(sender).await;
        };
        let avatar = p
            .avatar
            .and_then(|key| self.store.media(&key).ok().flatten())
            .map(|(meta, bytes)| (bytes, meta.content_type));
        Ok(Some(FetchedProfile {
            nickname: p.nickname,
            avatar,
            unionid: p.unionid,
        }))
    }

    fn join_info(&self) -> JoinInfo {
        JoinInfo {
            url: self.current_join_url(),
            instructions: format!(
                "{} {}",
                if self.english() {
                    "Scan with WeChat, follow, then send a voice message."
                } else {
                    "微信扫码关注，发送语音即可上墙。"
                },
                crate::privacy::consent::line(
                    crate::lang::Lang::of_locale(&self.locale),
                    self.retention_days
                )
            ),
        }
    }

    /// Keep the account's parametric QR (scene = wall id) on the wall: reuse a saved one, create one,
    /// renew it at 80 % of its life; while the platform is unreachable the wall shows the join page
    /// and this retries with backoff.
    async fn upkeep(self: Arc<Self>) {
        let wall = self.wall.clone();
        let mut next_wait = Duration::ZERO;
        if let Some(saved) = self.load_saved_qr() {
            let now = self.clock.now_ms();
            let life = saved.expires_ms.saturating_sub(saved.created_ms);
            let renew_at = saved.created_ms + life * 4 / 5;
            if now < renew_at {
                self.set_join_url(&saved.url);
                next_wait = Duration::from_millis(renew_at - now);
            }
        }
        let mut backoff = Duration::from_millis(500);
        loop {
            tokio::time::sleep(next_wait).await;
            match self.api.qrcode_create(&wall, QR_EXPIRE_SECONDS).await {
                Ok(qr) => {
                    let life_s = qr.expire_seconds.unwrap_or(QR_EXPIRE_SECONDS).max(1);
                    let created = self.clock.now_ms();
                    let saved = SavedQr {
                        url: qr.url.clone(),
                        created_ms: created,
                        expires_ms: created + life_s * 1000,
                    };
                    if let Ok(text) = serde_json::to_string(&saved) {
                        let _ = self.store.meta_put(&self.saved_qr_key(), &text);
                    }
                    self.set_join_url(&qr.url);
                    backoff = Duration::from_millis(500);
                    next_wait = Duration::from_millis(life_s * 800);
                }
                Err(e) => {
                    tracing::warn!(wall = %wall, error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot get the parametric QR; the wall shows the join page meanwhile");
                    next_wait = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(300));
                }
            }
        }
    }

    /// `GET /join/{wall}`: 302 to WeChat's consent page (web OAuth), whose callback is ours.
    async fn join(&self, _request: Request) -> Response {
        join::consent_redirect(self)
    }

    fn routes(self: Arc<Self>) -> Router {
        let wall = self.wall.clone();
        Router::new()
            .route(
                &format!("/webhook/wechat/{wall}"),
                get(webhook::verify).post(webhook::push),
            )
            .layer(DefaultBodyLimit::max(MAX_PUSH_BYTES))
            // A declared length over it is refused before the body is read (http::limits).
            .layer(axum::middleware::from_fn_with_state(
                crate::http::limits::BodyLimit {
                    max: MAX_PUSH_BYTES,
                    metrics: Some(self.metrics.clone()),
                },
                crate::http::limits::limit_body,
            ))
            .route(&format!("/join/{wall}/oauth"), get(join::oauth_callback))
            .with_state(self)
    }
}

impl Account {
    /// A follower known only by openid: their unionid from `user/info` (a nameless profile that links
    /// the person across accounts). An account without the permission, or an unknown openid, is no
    /// profile rather than a failure.
    async fn follower_unionid(&self, openid: &str) -> Result<Option<FetchedProfile>, FetchError> {
        match self.api.user_unionid(openid).await {
            Ok(Some(unionid)) => {
                // The OAuth callback may have stored the full profile meanwhile: it wins.
                if let Ok(Some(p)) = self.store.profile(PROVIDER, openid) {
                    if !p.nickname.is_empty() {
                        return Ok(None);
                    }
                }
                Ok(Some(FetchedProfile {
                    nickname: String::new(),
                    avatar: None,
                    unionid: Some(unionid),
                }))
            }
            Ok(None) => Ok(None),
            Err(api::WxError::Permanent(reason)) => {
                tracing::info!(%reason, "no unionid from user/info");
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }
}
