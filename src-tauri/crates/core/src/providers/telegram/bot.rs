//! One wall's bot: its config, its Bot API client, where its webhook stands, the welcome, and the
//! senders' names kept for their profiles.

use super::api::{self, BotApi};
use super::config::TelegramConfig;
use super::update::Names;
use super::webhook_setup::{self, WebhookPlan};
use crate::board::Board;
use crate::clock::Clock;
use crate::domain::Millis;
use crate::inbox::Inbox;
use crate::metrics::Metrics;
use crate::provider::{ProviderContext, ProviderStatus};
use crate::store::Store;
use serde::Serialize;
use std::sync::{Arc, RwLock};
use std::time::Duration;

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

/// One wall's bot.
pub struct Bot {
    pub wall: String,
    pub locale: String,
    /// The wall's `retention_days`, for the consent line in the join instructions.
    pub retention_days: u32,
    pub config: TelegramConfig,
    pub api: BotApi,
    public_url: String,
    store: Store,
    pub(super) board: Board,
    pub(super) inbox: Inbox,
    pub(super) clock: Clock,
    pub(super) metrics: Arc<Metrics>,
    /// Where the webhook stands, and when it got there (the clock's ms; `None` while pending).
    webhook: RwLock<(WebhookStatus, Option<Millis>)>,
}

impl Bot {
    pub fn new(ctx: ProviderContext, config: TelegramConfig) -> Self {
        Self {
            wall: ctx.wall.id.clone(),
            locale: ctx.wall.locale.clone(),
            retention_days: ctx.wall.retention_days,
            api: BotApi::new(ctx.http.clone(), config.api_base(), &config.bot_token),
            config,
            public_url: ctx.public_url.get().to_string(),
            store: ctx.store,
            board: ctx.board,
            inbox: ctx.inbox,
            clock: ctx.clock,
            metrics: ctx.metrics,
            webhook: RwLock::new((WebhookStatus::Pending, None)),
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
        self.webhook.read().expect("webhook status lock").0.clone()
    }

    fn set_webhook_status(&self, s: WebhookStatus) {
        *self.webhook.write().expect("webhook status lock") = (s, Some(self.clock.now_ms()));
    }

    /// The webhook's state for `/healthz` and the console: ok once Telegram accepted setWebhook; else the
    /// error or what to do. (URLs and Telegram's answer only: the token and the secret are in neither.)
    pub fn provider_status(&self) -> ProviderStatus {
        let (status, at_ms) = self.webhook.read().expect("webhook status lock").clone();
        let (ok, state, detail) = match status {
            WebhookStatus::Pending => (false, "pending", "setWebhook not tried yet".to_string()),
            WebhookStatus::Set { url, description } => {
                (true, "set", format!("webhook set to {url}: {description}"))
            }
            WebhookStatus::Manual { instructions, .. } => (false, "manual", instructions),
            WebhookStatus::Failed { url, error } => (
                false,
                "failed",
                format!("setWebhook to {url} failed: {error}"),
            ),
        };
        ProviderStatus {
            ok,
            state: state.into(),
            detail,
            at_ms,
        }
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

    pub fn names(&self, sender: &str) -> Option<Names> {
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
        self.say(chat_id, &self.welcome_text(), "welcome").await
    }

    /// What a banned sender is told (in their private chat with the bot).
    pub fn banned_text(&self) -> &'static str {
        if self.english() {
            "The organiser has stopped your messages on this wall; they will not be shown or played."
        } else {
            "主办方已停止你在本墙上的发言，你的消息不会再被展示或播放。"
        }
    }

    /// Send a text; failures are logged.
    pub async fn say(&self, chat_id: i64, text: &str, what: &str) {
        match self.api.send_message(chat_id, text).await {
            Ok(_) => tracing::info!(wall = %self.wall, chat_id, what, "Telegram message sent"),
            Err(e) => {
                tracing::warn!(wall = %self.wall, chat_id, what, error = %e, "Telegram message not sent")
            }
        }
    }
}
