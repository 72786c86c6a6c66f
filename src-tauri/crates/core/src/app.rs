//! The server's state: `Clone`, one cheap handle per field, and `FromRef` so that each handler takes
//! only the handles it uses (`State<Walls>`, `State<Store>`, …) — the router's state is this struct,
//! a handler's is a field. Providers never see it (they get a `provider::ProviderContext`).

use crate::audit::Audit;
use crate::board::Board;
use crate::clock::Clock;
use crate::config::Config;
use crate::credentials::Credentials;
use crate::domain::Inbound;
use crate::events::Hub;
use crate::inbox::Inbox;
use crate::media::Media;
use crate::metrics::Metrics;
use crate::playback::Playback;
use crate::store::{Accepted, Store, StoreError};
use crate::walls::{Wall, Walls};
use axum::extract::FromRef;
use std::sync::Arc;

/// The operator's secret (admin Bearer token).
#[derive(Clone)]
pub struct AdminToken(pub Arc<str>);

/// Set by `voicewall demo`: the wall shows a DEMO label.
#[derive(Clone, Copy, Debug, Default)]
pub struct DemoMode(pub bool);

/// Turns true when the app starts shutting down: long-lived responses (SSE) end so the server can drain.
#[derive(Clone)]
pub struct Shutdown(pub tokio::sync::watch::Receiver<bool>);

impl Shutdown {
    /// Resolves once shutdown has begun.
    pub async fn begun(mut self) {
        let _ = self.0.wait_for(|v| *v).await;
    }
}

#[derive(Clone, FromRef)]
pub struct AppState {
    #[from_ref(skip)]
    pub config: Arc<Config>,
    pub store: Store,
    pub hub: Hub,
    pub walls: Walls,
    pub inbox: Inbox,
    pub board: Board,
    pub clock: Clock,
    pub media: Media,
    pub playback: Playback,
    pub metrics: Arc<Metrics>,
    /// The operator's actions.
    pub audit: Audit,
    #[from_ref(skip)]
    /// Where phones reach the kiosk; a detected address follows the LAN (`startup::LanFollow`).
    pub public_url: crate::provider::PublicUrl,
    pub admin_token: AdminToken,
    /// Operator sessions, display credentials and one-time display links.
    pub credentials: Credentials,
    pub demo: DemoMode,
    pub shutdown: Shutdown,
}

impl AppState {
    pub fn wall(&self, id: &str) -> Option<&Wall> {
        self.walls.get(id)
    }

    /// Store a push durably, then wake the pipeline (see `Inbox::accept`).
    pub async fn accept(&self, inbound: &Inbound) -> Result<Accepted, StoreError> {
        self.inbox.accept(inbound).await
    }
}
