//! Telegram bot provider: a wall is one bot.
//!
//! - `config` — `[walls.telegram]`, read and validated here; `bot` — one wall's bot (client, webhook
//!   status, welcome, senders' names);
//! - `types` — the Bot API objects (serde), `update` — an Update → the common `Inbound`, the
//!   `/start <wall>` deep link;
//! - `secret` — the webhook's `X-Telegram-Bot-Api-Secret-Token`, compared in constant time;
//! - `webhook` — `POST /webhook/telegram/{wall}`: secret → parse → durable inbox → 200;
//! - `api` — getFile + download (20 MB cap), getUserProfilePhotos, sendMessage, setWebhook, with
//!   429 `retry_after` honoured;
//! - `webhook_setup` — whether start-up can call setWebhook (https, ports 443/80/88/8443) or must say
//!   what to do.
//!
//! Join: the wall's QR is `https://t.me/<bot_username>?start=<wall>`; the Start button sends
//! `/start <wall>`, which makes the sender a participant at once and is answered with the welcome.
//! Profile: the names come with every message (kept by sender id), the avatar from
//! getUserProfilePhotos → getFile, downloaded and cached (the bot token is in every file URL: the
//! wall never links to Telegram).

pub mod api;
pub mod bot;
pub mod config;
pub mod secret;
pub mod types;
pub mod update;
pub mod webhook;
pub mod webhook_setup;

use crate::domain::{FetchedProfile, MessageKind, Provider};
use crate::provider::{
    FetchError, Fetched, JoinInfo, ProviderContext, ProviderError, ProviderSection, ProviderStatus,
    WallProvider,
};
use async_trait::async_trait;
use axum::extract::{DefaultBodyLimit, Request};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::Router;
pub use bot::{Bot, WebhookStatus};
use config::TelegramConfig;
pub use config::PROVIDER;
use std::sync::Arc;
pub use update::Names;

/// Parse and validate `[walls.telegram]` (what `check-config` runs).
pub fn check(section: &ProviderSection) -> Result<(), ProviderError> {
    parse(section).map(|_| ())
}

/// A bot has one webhook: two walls on one `bot_token` would take each other's updates. The second
/// wall's `bot_token` is named, never echoed (it is a credential).
pub fn check_walls(sections: &[&ProviderSection]) -> Result<(), ProviderError> {
    let mut bots: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for s in sections {
        let token = s
            .table
            .get("bot_token")
            .and_then(toml::Value::as_str)
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let Some(token) = token else { continue };
        if let Some(first) = bots.insert(token, &s.wall_id) {
            return Err(s
                .invalid(
                    "bot_token",
                    format!(
                        "wall {:?} uses the same bot as wall {first:?}; a Telegram bot has one webhook, so each wall needs its own bot (make another with @BotFather)",
                        s.wall_id
                    ),
                )
                .into());
        }
    }
    Ok(())
}

fn parse(section: &ProviderSection) -> Result<TelegramConfig, ProviderError> {
    TelegramConfig::from_table(&section.table)
        .map_err(|e| section.invalid(&e.key, e.message).into())
}

/// Build a wall's bot (what `serve` runs).
pub fn build(
    ctx: ProviderContext,
    section: &ProviderSection,
) -> Result<Arc<dyn WallProvider>, ProviderError> {
    // Nothing here may refuse what `check` accepted (check-config must refuse what serve would):
    // the wall id's length is not checked, the deep link copes with it (`update::start_payload`).
    Ok(Arc::new(Bot::new(ctx, parse(section)?)))
}

#[async_trait]
impl WallProvider for Bot {
    fn kind(&self) -> Provider {
        PROVIDER
    }

    /// getFile → download, MIME type from the message, refused above 20 MB.
    async fn fetch_media(&self, media: &str, _kind: MessageKind) -> Result<Fetched, FetchError> {
        let media = update::MediaRef::decode(media);
        let (bytes, content_type) = self.api.fetch_media(&media).await?;
        Ok(Fetched::Bytes {
            bytes,
            content_type,
        })
    }

    /// The names the person's messages carried, and their profile photo (downloaded; none when
    /// they have none or hide it).
    async fn fetch_profile(&self, sender: &str) -> Result<Option<FetchedProfile>, FetchError> {
        let Ok(user_id) = sender.parse::<i64>() else {
            return Ok(None);
        };
        let nickname = self.names(sender).map(|n| n.display()).unwrap_or_default();
        // A transient failure is retried (by the pipeline); a permanent one costs the avatar, not
        // the names.
        let avatar = match self.api.avatar(user_id).await {
            Ok(a) => a.map(|jpeg| (jpeg, "image/jpeg".to_string())),
            Err(e @ api::BotApiError::Permanent(_)) => {
                tracing::info!(wall = %self.wall, error = %e, "no Telegram avatar");
                None
            }
            Err(e) => return Err(e.into()),
        };
        if nickname.is_empty() && avatar.is_none() {
            return Ok(None);
        }
        Ok(Some(FetchedProfile {
            nickname,
            avatar,
            unionid: None,
        }))
    }

    fn join_info(&self) -> JoinInfo {
        JoinInfo {
            url: update::deep_link(&self.config.bot_username, &self.wall),
            instructions: format!(
                "{} {}",
                if self.english() {
                    "Scan to open the bot in Telegram, tap Start, then send a voice message."
                } else {
                    "用 Telegram 扫码，点击“开始”，然后发送语音。"
                },
                crate::privacy::consent::line(
                    crate::lang::Lang::of_locale(&self.locale),
                    self.retention_days
                )
            ),
        }
    }

    /// setWebhook at start (or the instructions, when the kiosk cannot ask for it itself).
    async fn upkeep(self: Arc<Self>) {
        self.ensure_webhook().await;
    }

    /// The setWebhook result (ok / the error or what to do / when), for `/healthz` and the console.
    fn status(&self) -> Option<ProviderStatus> {
        Some(self.provider_status())
    }

    /// `GET /join/{wall}`: to the bot's deep link (its Start button sends `/start <wall>`).
    async fn join(&self, _request: Request) -> Response {
        Redirect::temporary(&update::deep_link(&self.config.bot_username, &self.wall))
            .into_response()
    }

    /// `POST /webhook/telegram/{wall}` (bodies over 1 MiB → 413), and `GET` of the same path: where the
    /// webhook stands (no secrets in it).
    fn routes(self: Arc<Self>) -> Router {
        Router::new()
            .route(
                &webhook_setup::webhook_path(&self.wall),
                post(webhook::push).get(webhook::status),
            )
            .layer(DefaultBodyLimit::max(webhook::MAX_UPDATE_BYTES))
            // A declared length over it is refused before the body is read (http::limits).
            .layer(axum::middleware::from_fn_with_state(
                crate::http::limits::BodyLimit {
                    max: webhook::MAX_UPDATE_BYTES,
                    metrics: Some(self.metrics.clone()),
                },
                crate::http::limits::limit_body,
            ))
            .with_state(self)
    }
}
