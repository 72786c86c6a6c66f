//! Typed wall events on one broadcast channel per wall. The server streams them as SSE
//! (`GET /api/walls/{id}/events`, event name = `type`, data = `http::state::EventView`: these events
//! with media as URLs); the Tauri shell and tests subscribe to the same channel.
//!
//! The wall's channel carries only what the wall shows (approved messages of unbanned participants
//! since the last clear: `board` decides). The operator's console has its own channel (`AdminEvent`):
//! every message change with its moderation, and the player's queue.

use crate::domain::{AdminMessage, MediaKey, Message, Participant, PlaybackState};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::broadcast;

#[derive(Clone, Debug, PartialEq)]
pub enum WallEvent {
    ParticipantJoined {
        participant: Participant,
    },
    ParticipantUpdated {
        participant: Participant,
    },
    ParticipantLeft {
        participant_id: String,
    },
    MessageAdded {
        message: Message,
    },
    MessageUpdated {
        message: Message,
    },
    PlaybackStarted {
        message_id: String,
        participant_id: String,
        duration_ms: u64,
        kind: crate::domain::MessageKind,
        media: Option<MediaKey>,
    },
    PlaybackProgress {
        message_id: String,
        position_ms: u64,
        duration_ms: u64,
    },
    PlaybackFinished {
        message_id: String,
        /// "finished", "skipped", "stopped", "interrupted", "no_device" or "failed".
        outcome: String,
    },
    /// The join QR changed (token rotation, platform QR renewal).
    JoinUpdated {
        join_url: String,
    },
    /// The operator changed what the wall shows as a whole (a message removed, a participant banned,
    /// the wall cleared, the QR shown or hidden): the page rebuilds itself from `GET /api/walls/{id}`.
    WallChanged {
        /// "removed", "banned", "unbanned", "cleared", "qr" or "approved".
        reason: String,
    },
}

impl WallEvent {
    pub fn name(&self) -> &'static str {
        match self {
            WallEvent::ParticipantJoined { .. } => "participant_joined",
            WallEvent::ParticipantUpdated { .. } => "participant_updated",
            WallEvent::ParticipantLeft { .. } => "participant_left",
            WallEvent::MessageAdded { .. } => "message_added",
            WallEvent::MessageUpdated { .. } => "message_updated",
            WallEvent::PlaybackStarted { .. } => "playback_started",
            WallEvent::PlaybackProgress { .. } => "playback_progress",
            WallEvent::PlaybackFinished { .. } => "playback_finished",
            WallEvent::JoinUpdated { .. } => "join_updated",
            WallEvent::WallChanged { .. } => "wall_changed",
        }
    }
}

/// What the operator's console follows (`GET /api/admin/walls/{id}/events`).
#[derive(Clone, Debug, PartialEq)]
pub enum AdminEvent {
    /// A message of `wall` was added or changed (status, moderation, its sender banned).
    Message { wall: String, message: AdminMessage },
    /// The player's queue or state changed (every wall's console shows it).
    Queue(PlaybackState),
}

impl AdminEvent {
    pub fn name(&self) -> &'static str {
        match self {
            AdminEvent::Message { .. } => "message",
            AdminEvent::Queue(_) => "queue",
        }
    }

    /// Whether the console of `wall` gets this event.
    pub fn concerns(&self, wall: &str) -> bool {
        match self {
            AdminEvent::Message { wall: w, .. } => w == wall,
            AdminEvent::Queue(_) => true,
        }
    }
}

/// One broadcast channel per configured wall.
#[derive(Clone)]
pub struct Hub {
    channels: Arc<HashMap<String, broadcast::Sender<WallEvent>>>,
    admin: broadcast::Sender<AdminEvent>,
}

impl Hub {
    pub fn new<'a>(walls: impl IntoIterator<Item = &'a str>) -> Self {
        let channels = walls
            .into_iter()
            .map(|w| (w.to_string(), broadcast::channel(1024).0))
            .collect();
        Self {
            channels: Arc::new(channels),
            admin: broadcast::channel(1024).0,
        }
    }

    /// Tell the operator's consoles.
    pub fn publish_admin(&self, event: AdminEvent) {
        let _ = self.admin.send(event);
    }

    pub fn subscribe_admin(&self) -> broadcast::Receiver<AdminEvent> {
        self.admin.subscribe()
    }

    pub fn publish(&self, wall: &str, event: WallEvent) {
        if let Some(tx) = self.channels.get(wall) {
            // No subscriber is fine: state is rebuilt from the API on connect.
            let _ = tx.send(event);
        }
    }

    pub fn subscribe(&self, wall: &str) -> Option<broadcast::Receiver<WallEvent>> {
        self.channels.get(wall).map(|tx| tx.subscribe())
    }
}
