//! One wall's join site: its web config, join tokens, device cookies, rate windows, and the handles
//! its handlers use (store, board, inbox, events, clock). Shared by the handlers as `Arc<JoinSite>`.

use super::config::WebConfig;
use super::device::DeviceCookies;
use super::rate::RateLimits;
use super::refusal::Refusal;
use super::tokens::{JoinTokens, TokenCheck};
use crate::board::Board;
use crate::clock::Clock;
use crate::events::Hub;
use crate::inbox::Inbox;
use crate::lang::Lang;
use crate::media::Media;
use crate::provider::{ProviderContext, PublicUrl};
use crate::store::Store;
use axum::http::HeaderMap;

/// The store key of the secret that derives join tokens and signs device cookies (one per kiosk).
const SECRET_KEY: &str = "web_secret";

pub struct JoinSite {
    pub wall: String,
    pub title: String,
    pub locale: String,
    /// The wall's `retention_days`: the join page's consent line says it.
    pub retention_days: u32,
    pub config: WebConfig,
    /// Read at each link: it follows the kiosk's LAN address when that is detected.
    pub public_url: PublicUrl,
    pub tokens: JoinTokens,
    pub cookies: DeviceCookies,
    /// Upload attempts per device and per client IP in the last minute.
    pub rate: RateLimits,
    pub store: Store,
    pub board: Board,
    pub inbox: Inbox,
    pub events: Hub,
    pub media: Media,
    pub clock: Clock,
}

impl JoinSite {
    pub fn new(ctx: ProviderContext, config: WebConfig) -> Self {
        let secret = secret(&ctx.store);
        let tokens = JoinTokens::new(&ctx.wall.id, secret.as_bytes(), &config);
        let generation = ctx
            .store
            .meta_get(&generation_key(&ctx.wall.id))
            .ok()
            .flatten()
            .and_then(|g| g.parse().ok())
            .unwrap_or(0);
        tokens.set_generation(generation);
        Self {
            tokens,
            cookies: DeviceCookies::new(secret.as_bytes(), ctx.secure),
            wall: ctx.wall.id,
            title: ctx.wall.title,
            locale: ctx.wall.locale,
            retention_days: ctx.wall.retention_days,
            config,
            public_url: ctx.public_url,
            rate: RateLimits::default(),
            store: ctx.store,
            board: ctx.board,
            inbox: ctx.inbox,
            events: ctx.events,
            media: ctx.media,
            clock: ctx.clock,
        }
    }

    /// What the wall's QR encodes now.
    pub fn join_url(&self) -> String {
        format!(
            "{}/join/{}?t={}",
            self.public_url.get(),
            self.wall,
            self.tokens.current(self.clock.now_s())
        )
    }

    pub fn current_token(&self) -> String {
        self.tokens.current(self.clock.now_s())
    }

    /// The operator's "rotate now": a new token generation, kept (a restart keeps the old link dead),
    /// then announced so the wall's QR follows.
    pub fn rotate_now(&self) -> Result<(), crate::store::StoreError> {
        let next = self.tokens.generation() + 1;
        self.store
            .meta_put(&generation_key(&self.wall), &next.to_string())?;
        self.tokens.set_generation(next);
        tracing::info!(wall = %self.wall, generation = next, "join token rotated by the operator");
        self.events.publish(
            &self.wall,
            crate::events::WallEvent::JoinUpdated {
                join_url: self.join_url(),
            },
        );
        Ok(())
    }

    /// The guest's language (the wall's locale unless the phone asks for zh or en).
    pub fn lang(&self, headers: &HeaderMap) -> Lang {
        Lang::from_headers(headers, &self.locale)
    }

    /// Take one of the `new_devices_per_ip_per_minute` for the request's client before a device
    /// cookie is minted for it.
    pub fn mint_device(&self, request: &axum::extract::Request) -> Result<(), Refusal> {
        let ip = crate::http::client_ip::client_of(request.extensions(), request.headers());
        self.mint_device_for(ip)
    }

    /// [`Self::mint_device`] for a known client address.
    pub fn mint_device_for(&self, ip: std::net::IpAddr) -> Result<(), Refusal> {
        let limit = self.config.new_devices_per_ip_per_minute;
        self.rate
            .try_take(&format!("new-device:{ip}"), limit, self.clock.now_ms())
            .map_err(|wait_s| {
                tracing::info!(%ip, limit, "no new device cookie: too many from this client");
                Refusal::TooManyNewDevices(wait_s)
            })
    }

    /// Why a request's token does not admit it, if it does not.
    pub fn token_refusal(&self, token: Option<&str>) -> Result<(), Refusal> {
        match token.filter(|t| !t.is_empty()) {
            None => Err(Refusal::TokenMissing),
            Some(t) => match self.tokens.check(t, self.clock.now_s()) {
                TokenCheck::Valid => Ok(()),
                TokenCheck::Expired => Err(Refusal::TokenExpired),
                TokenCheck::Invalid => Err(Refusal::TokenInvalid),
            },
        }
    }
}

/// Where a wall's join token generation is kept.
fn generation_key(wall: &str) -> String {
    format!("web:{wall}:join_generation")
}

/// The kiosk's web secret: made once, kept in the store (tokens and cookies survive a restart).
fn secret(store: &Store) -> String {
    match store.meta_get(SECRET_KEY).ok().flatten() {
        Some(s) => s,
        None => {
            let s = crate::random::token(32);
            if let Err(e) = store.meta_put(SECRET_KEY, &s) {
                tracing::error!(error = %e, "cannot save the web secret; join links change at restart");
            }
            s
        }
    }
}
