//! Typed wall events on one broadcast channel per wall. The server streams them as SSE
//! (`GET /api/walls/{id}/events`, event name = `type`, data = `http::state::EventView`: these events
//! with media as URLs); the Tauri shell and tests subscribe to the same channel.

use crate::domain::{MediaKey, Message, Participant};
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
        }
    }
}

/// One broadcast channel per configured wall.
#[derive(Clone)]
pub struct Hub {
    channels: Arc<HashMap<String, broadcast::Sender<WallEvent>>>,
}

impl Hub {
    pub fn new<'a>(walls: impl IntoIterator<Item = &'a str>) -> Self {
        let channels = walls
            .into_iter()
            .map(|w| (w.to_string(), broadcast::channel(1024).0))
            .collect();
        Self {
            channels: Arc::new(channels),
        }
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
