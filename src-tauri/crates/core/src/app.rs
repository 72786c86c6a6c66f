//! Application state shared by the server's shared routes, the pipeline and the player: `Clone`, with
//! cheap handles. Providers never see it (they get a `provider::ProviderContext`).

use crate::board::Board;
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::Inbound;
use crate::events::Hub;
use crate::inbox::Inbox;
use crate::metrics::Metrics;
use crate::playback::Playback;
use crate::store::{Accepted, Store, StoreError};
use crate::walls::{Wall, Walls};
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub hub: Hub,
    pub walls: Walls,
    pub inbox: Inbox,
    pub board: Board,
    pub clock: Clock,
    pub playback: Playback,
    pub metrics: Arc<Metrics>,
    pub public_url: Arc<str>,
    pub admin_token: Arc<str>,
    /// Set by `voicewall demo`: the wall shows a DEMO label.
    pub demo: bool,
    /// Turns true when the app starts shutting down: long-lived responses (SSE) end so the server can drain.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

impl AppState {
    pub fn wall(&self, id: &str) -> Option<&Wall> {
        self.walls.get(id)
    }

    /// Store a push durably, then wake the pipeline (see `Inbox::accept`).
    pub async fn accept(&self, inbound: &Inbound) -> Result<Accepted, StoreError> {
        self.inbox.accept(inbound).await
    }

    /// Resolves once shutdown has begun.
    pub async fn shutting_down(&self) {
        let mut rx = self.shutdown.clone();
        let _ = rx.wait_for(|v| *v).await;
    }

    pub fn publish(&self, wall: &str, event: crate::events::WallEvent) {
        self.hub.publish(wall, event);
    }
}
