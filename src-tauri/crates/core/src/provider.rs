//! The provider interface: what one platform (the web join page, WeChat, Telegram, …) contributes to
//! one wall, and the narrow handles it gets to do it. The rest of the app knows no platform: it holds
//! an `Arc<dyn WallProvider>` per wall and calls the methods below. The registry of platforms is
//! `providers::PLATFORMS` (one line per platform).
//!
//! # Writing a provider (`providers/<platform>/`)
//!
//! 1. A `check(&ProviderSection) -> Result<(), ProviderError>` that parses and validates your typed
//!    config from the wall's raw table (`section.parse::<YourConfig>()`, then your own rules, each
//!    error naming its key with `section.invalid("app_id", "must not be empty")`). `check-config`
//!    calls it; `serve` calls it through `build`, so both reject exactly the same files.
//! 2. A `build(ProviderContext, &ProviderSection) -> Result<Arc<dyn WallProvider>, ProviderError>`
//!    that checks the config, keeps the handles it needs from the context, and returns your provider.
//! 3. `impl WallProvider for YourProvider` (below): fetching by reference, the join, your routes,
//!    your upkeep.
//! 4. Your platform's name, in your module: `pub const PROVIDER: Provider = Provider::new("telegram");`
//!    (what stored records, ids and the wire say; `kind()` returns it).
//! 5. One line in `providers::PLATFORMS`: `Platform { provider: telegram::PROVIDER, check:
//!    telegram::check, check_walls: None, build: telegram::build }`. Nothing else outside your module
//!    changes: the rest of the crate reads the platforms from the registry.
//!
//! # The push path
//! Your webhook handler verifies and parses a push, turns it into an `Inbound` (wall, sender id, kind,
//! media *reference*, times, a dedup key that is the same on every retry of one push), and calls
//! `ctx.inbox.accept(&inbound)`. Answer the platform only after `accept` returned `Ok`: the push is
//! then on disk. Everything after that (fetch, decode, wall, player) is the pipeline's job, which
//! calls back into `fetch_media` / `fetch_profile`.

use crate::board::Board;
use crate::clock::Clock;
pub use crate::config::ProviderSection;
use crate::config::{ConfigError, WallConfig};
use crate::domain::{FetchedProfile, MessageKind, Provider};
use crate::events::Hub;
use crate::inbox::Inbox;
use crate::media::Media;
use crate::metrics::Metrics;
use crate::store::Store;
use async_trait::async_trait;
use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use std::sync::Arc;

/// One platform on one wall. Implementations are shared between the server's tasks: `Send + Sync`,
/// interior mutability where state changes (a rotating QR, a cached access token).
#[async_trait]
pub trait WallProvider: Send + Sync + 'static {
    /// Which platform this is; stored with every `Inbound` and participant (`{kind}:{sender}` ids).
    fn kind(&self) -> Provider;

    /// Fetch the media a push referred to (step 12): `media` is exactly the string your webhook put
    /// in `InboundKind::Media { media, .. }`. Return `FetchError::retryable` for what may pass (5xx,
    /// timeouts, rate limits: the pipeline retries with backoff) and `FetchError::permanent` for what
    /// will not (unknown id, too large): the message is marked failed with your message, which the
    /// operator reads — say what happened, never include secrets or tokens.
    async fn fetch_media(&self, media: &str, kind: MessageKind) -> Result<Fetched, FetchError>;

    /// The sender's profile by their per-account id (step 13), with the avatar already downloaded
    /// (the wall never hotlinks a platform URL). `Ok(None)`: the platform has none (yet); the wall
    /// keeps a generated name and picture. Called off the message path: a slow platform does not
    /// delay a voice.
    async fn fetch_profile(&self, sender: &str) -> Result<Option<FetchedProfile>, FetchError>;

    /// What the wall's QR encodes right now and the one-line instructions under it, in the wall's
    /// locale. Called on every `GET /api/walls/{id}` and QR render: keep it cheap (read a cached
    /// value). When it changes, publish `WallEvent::JoinUpdated` on `ctx.events` so open walls follow.
    fn join_info(&self) -> JoinInfo;

    /// What `GET /join/{wall}` does for this wall — where the QR (or a link) takes a phone: the
    /// web join page, a redirect to a platform's consent page or deep link (`t.me/…?start=…`).
    /// `request` is the phone's request (query, headers, cookies; its body is empty). The route
    /// itself belongs to the server, which answers unknown walls with a localized "no such wall".
    async fn join(&self, request: Request) -> Response;

    /// Your own HTTP routes for this wall (webhooks, a consent callback, an upload API), with their
    /// state bound (`.with_state(self)`) and their own layers (body limits). Put the wall id in every
    /// path, literally — `format!("/webhook/telegram/{}", wall_id)` — since every wall's routes are
    /// merged into one router; the server answers the same shapes for unknown walls
    /// (`/webhook/{platform}/{wall}`, `/join/{wall}/…`, `/api/join/{wall}/…`) with a JSON 404.
    /// Refuse bad input with `http::error::ApiError` (a status and a reason), never a panic.
    fn routes(self: Arc<Self>) -> Router {
        Router::new()
    }

    /// The participant (`{kind}:{sender}`) whose own guest credential this request carries on this wall,
    /// if any (the web join page's signed device cookie): a guest may fetch their own media. Default: none.
    fn guest(&self, _headers: &axum::http::HeaderMap) -> Option<String> {
        None
    }

    /// Change the join link now, because the operator asks (a link leaked, people join from outside
    /// the room): the old link must stop working at once, and the wall's QR follows (publish
    /// `WallEvent::JoinUpdated`). Default: this platform has no join token (the server answers 409).
    fn rotate_join(&self) -> Result<(), RotateError> {
        Err(RotateError::NoJoinToken)
    }

    /// Background upkeep for the whole run (join token rotation, renewing a platform QR, polling).
    /// Spawned once per wall at start and aborted at shutdown: loop for ever, sleep between rounds,
    /// log and retry failures with backoff; never return early on an error. Default: nothing to do.
    async fn upkeep(self: Arc<Self>) {}

    /// Where this wall stands with its platform, for `/healthz` and the operator console: e.g. whether
    /// Telegram accepted the webhook. Read often: return a cached value. No guest data and no secrets in
    /// it. Default: nothing to report (`None`; the web join page has no platform to talk to).
    fn status(&self) -> Option<ProviderStatus> {
        None
    }
}

/// A provider's link with its platform, as [`WallProvider::status`] reports it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ProviderStatus {
    /// The link works as configured; `false`: the operator has something to do (see `detail`).
    pub ok: bool,
    /// A short state for programs, e.g. `"set"`, `"failed"`, `"manual"`, `"pending"`.
    pub state: String,
    /// One line for the operator: what happened, or what to do.
    pub detail: String,
    /// When the state was reached (ms since the epoch, from the provider's clock); `None` before the
    /// first attempt.
    pub at_ms: Option<crate::domain::Millis>,
}

/// What a provider gets at build time: the wall's generic config and narrow handles, each cheap to
/// clone. Keep the ones you need; there is no way back to the whole app.
#[derive(Clone)]
pub struct ProviderContext {
    /// The wall's generic settings: id, title, locale, theme.
    pub wall: WallConfig,
    /// Where phones reach this kiosk, without a trailing slash (e.g. `http://192.168.1.20:8787`). When
    /// it is detected (not configured) it follows the LAN address: read it when you make a join link.
    pub public_url: PublicUrl,
    /// Served over HTTPS: cookies you set get `Secure`.
    pub secure: bool,
    /// One shared HTTP client (timeouts set, user agent `voicewall/…`).
    pub http: reqwest::Client,
    /// Durable accept of a push; wakes the pipeline.
    pub inbox: Inbox,
    /// Participants and messages: save and announce.
    pub board: Board,
    /// The wall's event channel (e.g. `JoinUpdated`).
    pub events: Hub,
    /// The store: your secrets and saved state (`meta_get`/`meta_put` under keys prefixed with your
    /// platform name and the wall id), the media cache, profiles by sender id.
    pub store: Store,
    /// Decoding cached media (a decode made on upload is handed here for the player).
    pub media: Media,
    /// The time: read it here, never from the system inside your logic (tests move it).
    pub clock: Clock,
    /// Counters for `/metrics` (e.g. `inc_rejected` for refused webhook calls).
    pub metrics: Arc<Metrics>,
}

/// Where phones reach this kiosk, without a trailing slash: configured, or detected from the LAN and
/// followed when the kiosk moves to another network (`startup`, which then tells every open wall with
/// `JoinUpdated`). Cheap to clone; all clones see a change.
#[derive(Clone, Debug)]
pub struct PublicUrl(Arc<std::sync::RwLock<Arc<str>>>);

impl PublicUrl {
    pub fn new(url: &str) -> Self {
        Self(Arc::new(std::sync::RwLock::new(
            url.trim_end_matches('/').into(),
        )))
    }

    /// The address now.
    pub fn get(&self) -> Arc<str> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Move to `url`; true when that is a change.
    pub fn set(&self, url: &str) -> bool {
        let url = url.trim_end_matches('/');
        let mut cur = self.0.write().unwrap_or_else(|e| e.into_inner());
        if &**cur == url {
            return false;
        }
        *cur = url.into();
        true
    }
}

/// A provider could not be configured or started.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// A key of the section is wrong: the error names it, and its line or variable.
    #[error(transparent)]
    Invalid(#[from] ConfigError),
    #[error("{key}: no provider {name:?} in this build (known: {known})")]
    Unknown {
        key: String,
        name: String,
        known: String,
    },
}

/// Media fetched from a platform.
pub enum Fetched {
    Bytes {
        bytes: Vec<u8>,
        content_type: String,
    },
}

/// Why a fetch failed; `retryable` failures are retried with backoff, the others fail the message at once.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct FetchError {
    pub message: String,
    pub retryable: bool,
}

impl FetchError {
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }
}

/// Why the join link could not be rotated.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("this platform has no join token to rotate")]
    NoJoinToken,
    #[error("rotating the join token failed: {0}")]
    Failed(String),
}

/// How people join a wall, as shown on the wall's QR panel.
#[derive(Clone, Debug, serde::Serialize)]
pub struct JoinInfo {
    /// What the QR encodes.
    pub url: String,
    /// Instructions in the wall's locale.
    pub instructions: String,
}
