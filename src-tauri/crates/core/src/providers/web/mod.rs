//! The built-in web join page (the default provider): the wall's QR opens `/join/{wall}?t=TOKEN` on the
//! kiosk itself; the phone joins with a nickname and picture and sends voice recorded in the browser.
//!
//! - `config` — `[walls.web]`, parsed and checked here;
//! - `tokens` — the rotating join tokens in the QR;
//! - `device` — the signed device cookie (one phone = one participant);
//! - `form` — reading an upload within limits (pictures are normalised by `crate::avatar`);
//! - `refusal` — every refusal with its status and texts in both languages;
//! - `rate` — per-device and per-network upload windows;
//! - `site` — one wall's join site (config, secrets, handles); `handlers` — its routes;
//! - `phone` — what a phone learns of its own messages.

pub mod config;
pub mod device;
pub mod form;
pub mod handlers;
pub mod phone;
pub mod rate;
pub mod refusal;
pub mod site;
pub mod tokens;

pub use config::PROVIDER;
pub use site::JoinSite;
pub use tokens::{JoinTokens, TokenCheck};

use crate::domain::{FetchedProfile, MessageKind, Provider};
use crate::events::WallEvent;
use crate::provider::{
    FetchError, Fetched, JoinInfo, ProviderContext, ProviderError, ProviderSection, RotateError,
    WallProvider,
};
use async_trait::async_trait;
use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use config::WebConfig;
use std::sync::Arc;
use std::time::Duration;

/// Parse and validate `[walls.web]`.
pub fn check(section: &ProviderSection) -> Result<(), ProviderError> {
    parse(section).map(|_| ())
}

fn parse(section: &ProviderSection) -> Result<WebConfig, ProviderError> {
    let config: WebConfig = section.parse()?;
    if config.token_rotate_s < 10 {
        return Err(section
            .invalid("token_rotate_s", "must be at least 10 seconds")
            .into());
    }
    Ok(config)
}

pub fn build(
    ctx: ProviderContext,
    section: &ProviderSection,
) -> Result<Arc<dyn WallProvider>, ProviderError> {
    Ok(Arc::new(JoinSite::new(ctx, parse(section)?)))
}

#[async_trait]
impl WallProvider for JoinSite {
    fn kind(&self) -> Provider {
        PROVIDER
    }

    fn guest(&self, headers: &axum::http::HeaderMap) -> Option<String> {
        self.cookies
            .device_of(headers)
            .map(|d| crate::board::participant_id(PROVIDER, &d))
    }

    /// Uploads are stored before the ack (`cache:` references), so there is nothing to fetch.
    async fn fetch_media(&self, media: &str, _kind: MessageKind) -> Result<Fetched, FetchError> {
        Err(FetchError::permanent(format!(
            "web upload {media:?} is not in the cache"
        )))
    }

    /// The profile is given on the join page itself.
    async fn fetch_profile(&self, _sender: &str) -> Result<Option<FetchedProfile>, FetchError> {
        Ok(None)
    }

    fn join_info(&self) -> JoinInfo {
        JoinInfo {
            url: self.join_url(),
            instructions: if self.locale == "en" {
                "Scan with your phone camera, then hold to talk".into()
            } else {
                "用手机相机扫码，按住说话".into()
            },
        }
    }

    async fn join(&self, request: Request) -> Response {
        handlers::join_page(self, request)
    }

    fn routes(self: Arc<Self>) -> Router {
        handlers::routes(self)
    }

    fn rotate_join(&self) -> Result<(), RotateError> {
        self.rotate_now()
            .map_err(|e| RotateError::Failed(e.to_string()))
    }

    /// Rotate the join token: at each epoch boundary the wall's QR follows.
    async fn upkeep(self: Arc<Self>) {
        loop {
            let wait = self.tokens.until_next_ms(self.clock.now_ms()) + 50;
            tokio::time::sleep(Duration::from_millis(wait)).await;
            tracing::info!(wall = %self.wall, "join token rotated");
            self.events.publish(
                &self.wall,
                WallEvent::JoinUpdated {
                    join_url: self.join_url(),
                },
            );
        }
    }
}
