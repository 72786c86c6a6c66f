//! Application state shared by the server, the pipeline and the player: `Clone`, with `Arc` fields.

use crate::config::{Config, WallConfig};
use crate::domain::{Inbound, Message, Participant};
use crate::events::{Hub, WallEvent};
use crate::metrics::Metrics;
use crate::playback::Playback;
use crate::providers::ProviderClient;
use crate::store::{Accepted, Store, StoreError};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// One configured wall at run time.
pub struct Wall {
    pub config: WallConfig,
    pub provider: Arc<dyn ProviderClient>,
}

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub hub: Hub,
    pub walls: Arc<HashMap<String, Wall>>,
    /// Wakes the pipeline for a newly accepted inbox entry.
    pub pipeline_tx: mpsc::UnboundedSender<u64>,
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

    /// Store a push durably, then wake the pipeline. Returns once it is safe to acknowledge.
    pub async fn accept(&self, inbound: &Inbound) -> Result<Accepted, StoreError> {
        let accepted = self.store.accept(inbound)?;
        self.store.durable().await?;
        match accepted {
            Accepted::New(_) => self.metrics.inc_accepted(inbound.provider),
            Accepted::Duplicate(_) => self.metrics.inc_duplicate(),
        }
        // A duplicate wakes the pipeline too: if the first delivery's ack failed (flush timeout) its entry
        // is still in the inbox. The pipeline skips entries already done or in flight.
        let _ = self.pipeline_tx.send(accepted.seq());
        Ok(accepted)
    }

    /// Resolves once shutdown has begun.
    pub async fn shutting_down(&self) {
        let mut rx = self.shutdown.clone();
        let _ = rx.wait_for(|v| *v).await;
    }

    pub fn publish(&self, wall: &str, event: WallEvent) {
        self.hub.publish(wall, event);
    }

    /// Save a participant and tell the wall.
    pub fn save_participant(
        &self,
        wall: &str,
        p: &Participant,
        new: bool,
    ) -> Result<(), StoreError> {
        self.store.put_participant(wall, p)?;
        let event = if new {
            WallEvent::ParticipantJoined {
                participant: p.clone(),
            }
        } else {
            WallEvent::ParticipantUpdated {
                participant: p.clone(),
            }
        };
        self.publish(wall, event);
        Ok(())
    }

    pub fn save_message(&self, wall: &str, m: &Message, new: bool) -> Result<(), StoreError> {
        self.store.put_message(wall, m)?;
        let event = if new {
            WallEvent::MessageAdded { message: m.clone() }
        } else {
            WallEvent::MessageUpdated { message: m.clone() }
        };
        self.publish(wall, event);
        Ok(())
    }
}
