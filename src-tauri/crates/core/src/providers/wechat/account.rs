//! One Official Account serving one wall: its config, API client, message crypt, the QR the wall
//! shows, and the handles its webhook and join handlers use.

use super::config::WechatConfig;
use super::{api, crypto};
use crate::board::Board;
use crate::clock::Clock;
use crate::events::{Hub, WallEvent};
use crate::inbox::Inbox;
use crate::metrics::Metrics;
use crate::provider::{ProviderContext, PublicUrl};
use crate::store::Store;
use std::sync::{Arc, RwLock};

pub struct Account {
    pub wall: String,
    pub locale: String,
    /// The wall's `retention_days`, for the consent line in the join instructions.
    pub retention_days: u32,
    pub config: WechatConfig,
    /// Where phones reach the kiosk: read at every use, so the join page, the OAuth redirect and the
    /// fallback QR follow a detected address when the kiosk moves to another network.
    pub public_url: PublicUrl,
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
    /// The platform's parametric QR once it handed one out; until then the QR shows the join page.
    platform_qr: RwLock<Option<String>>,
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
            platform_qr: RwLock::new(None),
            public_url: ctx.public_url,
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
        format!("{}/join/{}", self.public_url.get(), self.wall)
    }

    /// What the wall's QR encodes: the platform's QR, else the join page at the address of now.
    pub fn current_join_url(&self) -> String {
        self.platform_qr
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| self.join_page_url())
    }

    /// Show the platform's QR `url` on the wall (and tell open walls) when it changed.
    pub fn set_join_url(&self, url: &str) {
        let changed = self.current_join_url() != url;
        *self.platform_qr.write().unwrap_or_else(|e| e.into_inner()) = Some(url.to_string());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::WallProvider;
    use crate::testing::{FakePlatform, Fixture, WALL};

    fn account(fx: &Fixture, url: &PublicUrl) -> Account {
        let config: WechatConfig = toml::from_str(
            "app_id = \"wx1\"\napp_secret = \"s\"\ntoken = \"t\"\noriginal_id = \"gh_1\"\n",
        )
        .expect("a wechat table");
        let (inbox, _wakeups) = Inbox::new(fx.store.clone(), Arc::default());
        let ctx = ProviderContext {
            wall: crate::config::WallConfig::with_id(WALL),
            public_url: url.clone(),
            secure: false,
            http: reqwest::Client::new(),
            inbox,
            board: fx.board.clone(),
            events: fx.hub.clone(),
            store: fx.store.clone(),
            media: fx.media.clone(),
            clock: Clock::manual(1_000_000),
            metrics: Arc::default(),
        };
        Account::new(ctx, config)
    }

    /// The `redirect_uri` of the consent redirect `GET /join/{wall}` answers.
    fn oauth_redirect(a: &Account) -> String {
        let response = super::super::join::consent_redirect(a);
        let location = response.headers()[axum::http::header::LOCATION]
            .to_str()
            .unwrap()
            .to_string();
        let url = reqwest::Url::parse(&location).unwrap();
        url.query_pairs()
            .find(|(k, _)| k == "redirect_uri")
            .map(|(_, v)| v.into_owned())
            .expect("a redirect_uri")
    }

    #[test]
    fn the_join_links_follow_a_moved_lan_address_and_the_platform_qr_stays() {
        let fx = Fixture::new(FakePlatform::serving(Vec::new(), "audio/ogg"));
        let url = PublicUrl::new("http://192.168.1.20:8787");
        let a = account(&fx, &url);
        let at = |host: &str| format!("http://{host}:8787/join/{WALL}");
        assert_eq!(a.join_info().url, at("192.168.1.20"));
        assert_eq!(oauth_redirect(&a), format!("{}/oauth", at("192.168.1.20")));

        // The kiosk moved (what `startup`'s LAN follower does to the shared handle).
        assert!(url.set("http://10.0.0.7:8787"));
        assert_eq!(a.join_info().url, at("10.0.0.7"), "the fallback QR follows");
        assert_eq!(a.join_page_url(), at("10.0.0.7"));
        assert_eq!(oauth_redirect(&a), format!("{}/oauth", at("10.0.0.7")));
        assert!(a.welcome_text().contains(&at("10.0.0.7")));

        // Once the platform hands out its QR, the wall shows that (it is WeChat's, not at our address);
        // open walls are told.
        let mut events = fx.hub.subscribe(WALL).expect("the wall's channel");
        let qr = "https://weixin.qq.com/q/abc";
        a.set_join_url(qr);
        match events.try_recv() {
            Ok(WallEvent::JoinUpdated { join_url }) => assert_eq!(join_url, qr),
            other => panic!("{other:?}"),
        }
        a.set_join_url(qr);
        assert!(events.try_recv().is_err(), "no change, no event");
        assert!(url.set("http://10.0.0.8:8787"));
        assert_eq!(a.join_info().url, qr);
        assert_eq!(oauth_redirect(&a), format!("{}/oauth", at("10.0.0.8")));
    }
}
