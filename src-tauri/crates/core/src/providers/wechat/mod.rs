//! WeChat Official Account provider (patent CN103491087A end to end):
//!
//! - `webhook` — `GET/POST /webhook/wechat/{wall}`: server verification, plaintext / compatible / safe
//!   mode pushes, durable ack through `AppState::accept`, passive "you're in" replies;
//! - `join` — the web OAuth join (`join_redirect`, `GET /join/{wall}/oauth`): the person's nickname and
//!   avatar, since `user/info` no longer returns them;
//! - `api` — access_token, media/get, qrcode/create, OAuth, custom/send;
//! - `crypto`, `xml` — the protocol, small and exact.
//!
//! The wall's join QR is the account's parametric QR (scene = wall id), renewed before it expires; until
//! the platform hands one out, the wall shows `{public_url}/join/{wall}`.

pub mod api;
pub mod crypto;
pub mod join;
pub mod webhook;
pub mod xml;

pub use join::join_redirect;

use crate::app::AppState;
use crate::config::{WallConfig, WechatConfig};
use crate::domain::{now_ms, MessageKind, Provider};
use crate::events::WallEvent;
use crate::providers::{FetchError, Fetched, FetchedProfile, JoinInfo, ProviderClient};
use crate::store::Store;
use async_trait::async_trait;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use std::sync::RwLock;
use std::time::Duration;

/// Largest push body accepted (WeChat's are a few hundred bytes).
pub const MAX_PUSH_BYTES: usize = 1024 * 1024;
/// The longest a temporary parametric QR may live (30 days).
pub const QR_EXPIRE_SECONDS: u64 = 2_592_000;

pub struct WechatProvider {
    pub wall: String,
    pub locale: String,
    pub config: WechatConfig,
    pub public_url: String,
    pub api: api::WechatApi,
    /// Safe/compatible mode, when an EncodingAESKey is configured.
    pub crypt: Option<crypto::MsgCrypt>,
    pub store: Store,
    join_url: RwLock<String>,
}

/// What `maintain` keeps across restarts so a restart does not mint a new QR.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedQr {
    url: String,
    created_ms: u64,
    expires_ms: u64,
}

impl WechatProvider {
    pub fn new(
        wall: &WallConfig,
        config: &WechatConfig,
        public_url: &str,
        http: reqwest::Client,
        store: Store,
    ) -> Self {
        let crypt = config
            .encoding_aes_key
            .as_deref()
            .and_then(|k| match crypto::MsgCrypt::new(k, &config.app_id) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(wall = %wall.id, error = %e, "walls.wechat.encoding_aes_key is unusable; safe-mode pushes will be refused");
                    None
                }
            });
        let public_url = public_url.trim_end_matches('/').to_string();
        Self {
            wall: wall.id.clone(),
            locale: wall.locale.clone(),
            api: api::WechatApi::new(
                http,
                &config.app_id,
                &config.app_secret,
                &config.api_base,
                &config.oauth_base,
            ),
            config: config.clone(),
            join_url: RwLock::new(format!("{public_url}/join/{}", wall.id)),
            public_url,
            crypt,
            store,
        }
    }

    /// The kiosk's own join page (OAuth entry), also the QR's fallback.
    pub fn join_page_url(&self) -> String {
        format!("{}/join/{}", self.public_url, self.wall)
    }

    pub fn current_join_url(&self) -> String {
        self.join_url.read().expect("join url lock").clone()
    }

    fn set_join_url(&self, state: &AppState, url: &str) {
        let changed = {
            let mut cur = self.join_url.write().expect("join url lock");
            if *cur != url {
                *cur = url.to_string();
                true
            } else {
                false
            }
        };
        if changed {
            tracing::info!(wall = %self.wall, %url, "join QR updated");
            state.publish(
                &self.wall,
                WallEvent::JoinUpdated {
                    join_url: url.to_string(),
                },
            );
        }
    }

    pub fn english(&self) -> bool {
        self.locale == "en"
    }

    /// The "you're in" text for a follow or scan.
    pub fn welcome_text(&self) -> String {
        let link = self.join_page_url();
        match &self.config.welcome {
            Some(w) if !w.trim().is_empty() => format!("{}\n{link}", w.trim()),
            _ if self.english() => {
                format!("You're on the wall! Send a voice message and it plays on the big screen. Add your name and photo: {link}")
            }
            _ => format!("你已上墙！发送语音，大屏幕就会播放。点此设置头像和昵称：{link}"),
        }
    }

    fn saved_qr_key(&self) -> String {
        format!("wechat_qr:{}", self.wall)
    }

    fn load_saved_qr(&self) -> Option<SavedQr> {
        let text = self.store.meta_get(&self.saved_qr_key()).ok().flatten()?;
        serde_json::from_str(&text).ok()
    }
}

/// The WeChat provider of a wall, if it is a WeChat wall.
pub fn provider_of<'a>(state: &'a AppState, wall: &str) -> Option<&'a WechatProvider> {
    state
        .wall(wall)
        .and_then(|w| w.provider.as_any().downcast_ref::<WechatProvider>())
}

#[async_trait]
impl ProviderClient for WechatProvider {
    fn provider(&self) -> Provider {
        Provider::Wechat
    }

    /// `media/get` by MediaId (voice AMR, image; video through its `video_url`).
    async fn fetch_media(&self, media: &str, _kind: MessageKind) -> Result<Fetched, FetchError> {
        let (bytes, content_type) = self.api.media_get(media).await?;
        Ok(Fetched::Bytes {
            bytes,
            content_type,
        })
    }

    /// `user/info` no longer returns nickname or avatar: the only profile is the one the person
    /// consented to on the OAuth join page, stored by openid. Returning it here closes the race where
    /// the OAuth callback stored it while the pipeline was creating the participant.
    async fn fetch_profile(&self, sender: &str) -> Result<Option<FetchedProfile>, FetchError> {
        let stored = self
            .store
            .profile(Provider::Wechat, sender)
            .map_err(|e| FetchError::retryable(e.to_string()))?;
        let Some(p) = stored else { return Ok(None) };
        let avatar = p
            .avatar_url
            .as_deref()
            .and_then(|u| u.strip_prefix("/media/"))
            .and_then(|key| self.store.media(key).ok().flatten())
            .map(|(meta, bytes)| (bytes.to_vec(), meta.content_type));
        Ok(Some(FetchedProfile {
            nickname: p.nickname,
            avatar,
            unionid: p.unionid,
        }))
    }

    fn join_info(&self) -> JoinInfo {
        JoinInfo {
            url: self.current_join_url(),
            instructions: if self.english() {
                "Scan with WeChat, follow, then send a voice message".into()
            } else {
                "微信扫码关注，发送语音即可上墙".into()
            },
        }
    }

    /// Keep the account's parametric QR (scene = wall id) on the wall: reuse a saved one, create one,
    /// renew it at 80 % of its life; while the platform is unreachable the wall shows the join page
    /// and this retries with backoff.
    async fn maintain(&self, state: AppState, wall: String) {
        let mut next_wait = Duration::ZERO;
        if let Some(saved) = self.load_saved_qr() {
            let now = now_ms();
            let life = saved.expires_ms.saturating_sub(saved.created_ms);
            let renew_at = saved.created_ms + life * 4 / 5;
            if now < renew_at {
                self.set_join_url(&state, &saved.url);
                next_wait = Duration::from_millis(renew_at - now);
            }
        }
        let mut backoff = Duration::from_millis(500);
        loop {
            tokio::time::sleep(next_wait).await;
            match self.api.qrcode_create(&wall, QR_EXPIRE_SECONDS).await {
                Ok(qr) => {
                    let life_s = qr.expire_seconds.unwrap_or(QR_EXPIRE_SECONDS).max(1);
                    let created = now_ms();
                    let saved = SavedQr {
                        url: qr.url.clone(),
                        created_ms: created,
                        expires_ms: created + life_s * 1000,
                    };
                    if let Ok(text) = serde_json::to_string(&saved) {
                        let _ = self.store.meta_put(&self.saved_qr_key(), &text);
                    }
                    self.set_join_url(&state, &qr.url);
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

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// `GET/POST /webhook/wechat/{wall}` (bodies over 1 MiB → 413) and `GET /join/{wall}/oauth`.
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route(
            "/webhook/wechat/{wall}",
            get(webhook::verify).post(webhook::push),
        )
        .layer(DefaultBodyLimit::max(MAX_PUSH_BYTES))
        .route("/join/{wall}/oauth", get(join::oauth_callback))
}
