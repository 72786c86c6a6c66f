//! Telegram bot provider: a wall is one bot.
//!
//! - `config` — `[walls.telegram]`, read and validated here;
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
pub mod config;
pub mod secret;
pub mod types;
pub mod update;
pub mod webhook;
pub mod webhook_setup;

use crate::clock::Clock;
use crate::domain::{FetchedProfile, MessageKind, Provider};
use crate::inbox::Inbox;
use crate::metrics::Metrics;
use crate::provider::{
    FetchError, Fetched, JoinInfo, ProviderContext, ProviderError, ProviderSection, WallProvider,
};
use crate::store::Store;
use async_trait::async_trait;
use axum::extract::{DefaultBodyLimit, Request};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::Router;
use config::TelegramConfig;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use webhook_setup::WebhookPlan;

/// Parse and validate `[walls.telegram]` (what `check-config` runs).
pub fn check(section: &ProviderSection) -> Result<(), ProviderError> {
    parse(section).map(|_| ())
}

fn parse(section: &ProviderSection) -> Result<TelegramConfig, ProviderError> {
    TelegramConfig::from_table(&section.table).map_err(|e| section.invalid(&e.key, &e.message))
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

/// Where the wall's webhook stands (shown in the log and `/healthz`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum WebhookStatus {
    /// Start-up has not got to it yet.
    Pending,
    /// Telegram accepted setWebhook.
    Set { url: String, description: String },
    /// The kiosk cannot set it itself (public_url not https or on another port): what to do.
    Manual { url: String, instructions: String },
    /// setWebhook failed; start-up keeps retrying retryable failures.
    Failed { url: String, error: String },
}

/// A person's names as their last message gave them (the Bot API has no "get user").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Names {
    pub first_name: String,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
}

impl Names {
    /// "First Last", else "@username".
    pub fn display(&self) -> String {
        let full = match &self.last_name {
            Some(l) if !l.trim().is_empty() => format!("{} {}", self.first_name.trim(), l.trim()),
            _ => self.first_name.trim().to_string(),
        };
        if !full.is_empty() {
            return full;
        }
        self.username
            .as_deref()
            .map(|u| format!("@{u}"))
            .unwrap_or_default()
    }
}

/// One wall's bot.
pub struct Bot {
    pub wall: String,
    pub locale: String,
    pub config: TelegramConfig,
    pub api: api::BotApi,
    public_url: String,
    store: Store,
    inbox: Inbox,
    clock: Clock,
    metrics: Arc<Metrics>,
    webhook: RwLock<WebhookStatus>,
}

impl Bot {
    pub fn new(ctx: ProviderContext, config: TelegramConfig) -> Self {
        Self {
            wall: ctx.wall.id.clone(),
            locale: ctx.wall.locale.clone(),
            api: api::BotApi::new(ctx.http.clone(), config.api_base(), &config.bot_token),
            config,
            public_url: ctx.public_url.trim_end_matches('/').to_string(),
            store: ctx.store,
            inbox: ctx.inbox,
            clock: ctx.clock,
            metrics: ctx.metrics,
            webhook: RwLock::new(WebhookStatus::Pending),
        }
    }

    pub fn english(&self) -> bool {
        self.locale == "en"
    }

    /// The bot's answer to `/start`.
    pub fn welcome_text(&self) -> String {
        match &self.config.welcome {
            Some(w) => w.trim().to_string(),
            None if self.english() => {
                "You're on the wall! Send a voice message and it plays on the big screen.".into()
            }
            None => "你已上墙！发送语音，大屏幕就会播放。".into(),
        }
    }

    pub fn webhook_status(&self) -> WebhookStatus {
        self.webhook.read().expect("webhook status lock").clone()
    }

    fn set_webhook_status(&self, s: WebhookStatus) {
        *self.webhook.write().expect("webhook status lock") = s;
    }

    fn names_key(sender: &str) -> String {
        format!("telegram_names:{sender}")
    }

    /// Keep the sender's names for the profile (called before the push is acknowledged).
    pub fn remember_names(
        &self,
        sender: &str,
        names: &Names,
    ) -> Result<(), crate::store::StoreError> {
        let text = serde_json::to_string(names).expect("names serialise");
        self.store.meta_put(&Self::names_key(sender), &text)
    }

    fn names(&self, sender: &str) -> Option<Names> {
        let text = self
            .store
            .meta_get(&Self::names_key(sender))
            .ok()
            .flatten()?;
        serde_json::from_str(&text).ok()
    }

    /// setWebhook when `public_url` allows it; retryable failures are retried with backoff.
    pub async fn ensure_webhook(&self) {
        let url = match webhook_setup::webhook_plan(&self.public_url, &self.wall) {
            WebhookPlan::Manual { url, instructions } => {
                tracing::warn!(wall = %self.wall, "Telegram webhook not set: {instructions}");
                self.set_webhook_status(WebhookStatus::Manual { url, instructions });
                return;
            }
            WebhookPlan::Set { url } => url,
        };
        let mut backoff = Duration::from_secs(1);
        loop {
            match self.api.set_webhook(&url, &self.config.secret_token).await {
                Ok(description) => {
                    tracing::info!(wall = %self.wall, %url, %description, "Telegram webhook set");
                    self.set_webhook_status(WebhookStatus::Set { url, description });
                    return;
                }
                Err(e) => {
                    let retry = !matches!(e, api::BotApiError::Permanent(_));
                    tracing::error!(wall = %self.wall, %url, error = %e, retry, "Telegram setWebhook failed");
                    self.set_webhook_status(WebhookStatus::Failed {
                        url: url.clone(),
                        error: e.to_string(),
                    });
                    if !retry {
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(300));
                }
            }
        }
    }

    /// Answer a join in its chat; failures are logged (the person is on the wall either way).
    pub async fn welcome(&self, chat_id: i64) {
        match self.api.send_message(chat_id, &self.welcome_text()).await {
            Ok(_) => tracing::info!(wall = %self.wall, chat_id, "Telegram welcome sent"),
            Err(e) => {
                tracing::warn!(wall = %self.wall, chat_id, error = %e, "Telegram welcome not sent")
            }
        }
    }
}

#[async_trait]
impl WallProvider for Bot {
    fn kind(&self) -> Provider {
        Provider::Telegram
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
            instructions: if self.english() {
                "Scan to open the bot in Telegram, tap Start, then send a voice message".into()
            } else {
                "用 Telegram 扫码，点击“开始”，然后发送语音".into()
            },
        }
    }

    /// setWebhook at start (or the instructions, when the kiosk cannot ask for it itself).
    async fn upkeep(self: Arc<Self>) {
        self.ensure_webhook().await;
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
            .with_state(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_display_first_last_or_username() {
        let n = |f: &str, l: Option<&str>, u: Option<&str>| Names {
            first_name: f.into(),
            last_name: l.map(Into::into),
            username: u.map(Into::into),
        };
        assert_eq!(
            n("Mloda", Some("Alchimiczka"), None).display(),
            "Mloda Alchimiczka"
        );
        assert_eq!(n("Igor", None, Some("igor")).display(), "Igor");
        assert_eq!(n(" ", None, Some("igor")).display(), "@igor");
        assert_eq!(n("", None, None).display(), "");
    }
}
