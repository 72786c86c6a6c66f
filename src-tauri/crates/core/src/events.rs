//! Typed wall events on one broadcast channel per wall. The server streams them as SSE
//! (`GET /api/walls/{id}/events`, event name = `type`, data = `http::state::EventView`: these events
//! with media as URLs); the Tauri shell and tests subscribe to the same channel.
//!
//! Each wall event gets an id (`{epoch}-{n}`: `n` counts from 1 in this process, `epoch` tells processes
//! apart), and the last [`REPLAY`] events of each wall are kept: a page that reconnects with the id it
//! saw last (`Last-Event-ID`) gets what it missed ([`Hub::resume`]) instead of refetching the state; only
//! when that is gone (or the server restarted) is it told to resync.
//!
//! The wall's channel carries only what the wall shows (approved messages of unbanned participants
//! since the last clear: `board` decides). The operator's console has its own channel (`AdminEvent`):
//! every message change with its moderation, and the player's queue.

use crate::domain::{AdminMessage, MediaKey, Message, Participant, PlaybackState};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// How many of a wall's latest events a reconnecting page can get back.
pub const REPLAY: usize = 1024;

/// A wall event with its id on the wall's stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Numbered {
    pub id: EventId,
    pub event: WallEvent,
}

/// `{epoch}-{n}` on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventId {
    pub epoch: u64,
    pub n: u64,
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.epoch, self.n)
    }
}

impl std::str::FromStr for EventId {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let (epoch, n) = s.split_once('-').ok_or(())?;
        Ok(Self {
            epoch: epoch.parse().map_err(|_| ())?,
            n: n.parse().map_err(|_| ())?,
        })
    }
}

/// What a page reconnecting after `last` gets.
#[derive(Debug)]
pub enum Resume {
    /// The events it missed (maybe none), oldest first; the receiver carries the ones after.
    Replay(Vec<Numbered>),
    /// Too much was missed (or the id is from another process): rebuild from the state.
    Resync,
}

/// One wall's channels and its latest events.
struct Channel {
    plain: broadcast::Sender<WallEvent>,
    numbered: broadcast::Sender<Numbered>,
    /// The next event's number and the last [`REPLAY`] events; `publish` sends under this lock, so a
    /// subscriber taken under it sees each event exactly once (replayed or received).
    recent: Mutex<(u64, VecDeque<Numbered>)>,
}

impl Channel {
    fn new() -> Self {
        Self {
            plain: broadcast::channel(1024).0,
            numbered: broadcast::channel(1024).0,
            recent: Mutex::new((1, VecDeque::with_capacity(REPLAY))),
        }
    }
}

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
    channels: Arc<HashMap<String, Channel>>,
    admin: broadcast::Sender<AdminEvent>,
    /// Tells this process's event ids from an earlier one's (its start, in ms).
    epoch: u64,
}

impl Hub {
    pub fn new<'a>(walls: impl IntoIterator<Item = &'a str>) -> Self {
        let channels = walls
            .into_iter()
            .map(|w| (w.to_string(), Channel::new()))
            .collect();
        Self {
            channels: Arc::new(channels),
            admin: broadcast::channel(1024).0,
            epoch: crate::domain::now_ms(),
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
        if let Some(ch) = self.channels.get(wall) {
            let mut recent = ch.recent.lock().unwrap_or_else(|e| e.into_inner());
            let numbered = Numbered {
                id: EventId {
                    epoch: self.epoch,
                    n: recent.0,
                },
                event: event.clone(),
            };
            recent.0 += 1;
            if recent.1.len() == REPLAY {
                recent.1.pop_front();
            }
            recent.1.push_back(numbered.clone());
            // No subscriber is fine: state is rebuilt from the API on connect.
            let _ = ch.numbered.send(numbered);
            let _ = ch.plain.send(event);
        }
    }

    pub fn subscribe(&self, wall: &str) -> Option<broadcast::Receiver<WallEvent>> {
        self.channels.get(wall).map(|ch| ch.plain.subscribe())
    }

    /// The id of the wall's latest event (`{epoch}-0` before the first): a page that read the state after
    /// taking it resumes from it and misses nothing.
    pub fn last_id(&self, wall: &str) -> Option<EventId> {
        let ch = self.channels.get(wall)?;
        let recent = ch.recent.lock().unwrap_or_else(|e| e.into_inner());
        Some(EventId {
            epoch: self.epoch,
            n: recent.0 - 1,
        })
    }

    /// The wall's numbered events after `last` (what a reconnecting page missed, or [`Resume::Resync`]
    /// when that is no longer kept), and a receiver of the ones to come. `last` None: from now.
    pub fn resume(
        &self,
        wall: &str,
        last: Option<EventId>,
    ) -> Option<(Resume, broadcast::Receiver<Numbered>)> {
        let ch = self.channels.get(wall)?;
        let recent = ch.recent.lock().unwrap_or_else(|e| e.into_inner());
        let rx = ch.numbered.subscribe();
        let Some(last) = last else {
            return Some((Resume::Replay(Vec::new()), rx));
        };
        let next = recent.0;
        let oldest = recent.1.front().map_or(next, |e| e.id.n);
        let resume = if last.epoch != self.epoch || last.n >= next || last.n + 1 < oldest {
            Resume::Resync
        } else {
            Resume::Replay(
                recent
                    .1
                    .iter()
                    .filter(|e| e.id.n > last.n)
                    .cloned()
                    .collect(),
            )
        };
        Some((resume, rx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(n: usize) -> WallEvent {
        WallEvent::WallChanged {
            reason: format!("r{n}"),
        }
    }

    #[test]
    fn a_reconnect_gets_what_it_missed_then_the_rest_live() {
        let hub = Hub::new(["w"]);
        hub.publish("w", changed(1));
        let seen = hub.last_id("w").unwrap();
        hub.publish("w", changed(2));
        hub.publish("w", changed(3));
        let (Resume::Replay(missed), mut rx) = hub.resume("w", Some(seen)).unwrap() else {
            panic!("expected a replay");
        };
        let reasons: Vec<_> = missed.iter().map(|e| e.event.clone()).collect();
        assert_eq!(reasons, [changed(2), changed(3)]);
        assert_eq!(
            missed[1].id.to_string().parse::<EventId>(),
            Ok(missed[1].id)
        );
        hub.publish("w", changed(4));
        assert_eq!(rx.try_recv().unwrap().event, changed(4));
        // Up to date: nothing to replay.
        let last = hub.last_id("w");
        assert!(matches!(hub.resume("w", last), Some((Resume::Replay(v), _)) if v.is_empty()));
    }

    #[test]
    fn too_much_missed_or_another_process_means_resync() {
        let hub = Hub::new(["w"]);
        hub.publish("w", changed(0));
        let first = hub.last_id("w").unwrap();
        for n in 0..REPLAY {
            hub.publish("w", changed(n));
        }
        // The event right after `first` is still kept: a replay of exactly REPLAY events.
        assert!(
            matches!(hub.resume("w", Some(first)), Some((Resume::Replay(v), _)) if v.len() == REPLAY)
        );
        hub.publish("w", changed(0));
        assert!(matches!(
            hub.resume("w", Some(first)),
            Some((Resume::Resync, _))
        ));
        let other = EventId {
            epoch: first.epoch + 1,
            n: 1,
        };
        assert!(matches!(
            hub.resume("w", Some(other)),
            Some((Resume::Resync, _))
        ));
        let future = EventId {
            epoch: first.epoch,
            n: 1_000_000,
        };
        assert!(matches!(
            hub.resume("w", Some(future)),
            Some((Resume::Resync, _))
        ));
    }
}
