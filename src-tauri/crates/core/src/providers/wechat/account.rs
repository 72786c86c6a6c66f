//! One Official Account serving one wall: its config, API client, message crypt, the QR the wall
//! shows, and the handles its webhook and join handlers use.

use super::config::WechatConfig;
use super::{api, crypto};
use crate::board::Board;
use crate::clock::Clock;
use crate::events::{Hub, WallEvent};
use crate::inbox::Inbox;
use crate::metrics::Metrics;
use crate::provider::ProviderContext;
use crate::store::Store;
use std::sync::{Arc, RwLock};

pub struct Account {
    pub wall: String,
    pub locale: String,
    /// The wall's `retention_days`, for the consent line in the join instructions.
    pub retention_days: u32,
    pub config: WechatConfig,
    pub public_url: String,
    pub api: api::WechatApi,
    /// Safe/compatible mode, when an EncodingAESKey is configured.
    pub crypt: Option<crypto::MsgCrypt>,
    pub store: Store,
    pub board: Board,
    pub inbox: Inbox,
    pub events: Hub,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
    /// Signed (timestamp, nonce) pairs seen, each bound to its body.
    pub nonces: super::replay::NonceCache,
    join_url: RwLock<String>,
}

/// What `maintain` keeps across restarts so a restart does not mint a new QR.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct SavedQr {
    pub url: String,
    pub created_ms: u64,
    pub expires_ms: u64,
}

impl Account {
    pub fn new(ctx: ProviderContext, config: WechatConfig) -> Self {
        let wall = &ctx.wall;
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
        // WeChat needs a configured public address (OAuth): no LAN following here.
        let public_url = ctx.public_url.get().to_string();
        Self {
            wall: wall.id.clone(),
            locale: wall.locale.clone(),
            retention_days: wall.retention_days,
            api: api::WechatApi::new(
                ctx.http.clone(),
                &config.app_id,
                &config.app_secret,
                &config.api_base,
                &config.oauth_base,
                ctx.clock.clone(),
                Some(ctx.store.clone()),
            ),
            config: config.clone(),
            join_url: RwLock::new(format!("{public_url}/join/{}", wall.id)),
            public_url,
            crypt,
            store: ctx.store,
            board: ctx.board,
            inbox: ctx.inbox,
            events: ctx.events,
            clock: ctx.clock,
            metrics: ctx.metrics,
            nonces: Default::default(),
        }
    }

    /// The kiosk's own join page (OAuth entry), also the QR's fallback.
    pub fn join_page_url(&self) -> String {
        format!("{}/join/{}", self.public_url, self.wall)
    }

    pub fn current_join_url(&self) -> String {
        self.join_url.read().expect("join url lock").clone()
    }

    /// Show `url` in the wall's QR (and tell open walls) when it changed.
    pub fn set_join_url(&self, url: &str) {
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
            self.events.publish(
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

    /// The passive reply to a banned sender's message.
    pub fn banned_text(&self) -> String {
        if self.english() {
            "The organiser has stopped your messages on this wall; they will not be shown or played."
                .into()
        } else {
            "主办方已停止你在本墙上的发言，你的消息不会再被展示或播放。".into()
        }
    }

    pub fn saved_qr_key(&self) -> String {
        format!("wechat_qr:{}", self.wall)
    }

    pub fn load_saved_qr(&self) -> Option<SavedQr> {
        let text = self.store.meta_get(&self.saved_qr_key()).ok().flatten()?;
        serde_json::from_str(&text).ok()
    }
}
