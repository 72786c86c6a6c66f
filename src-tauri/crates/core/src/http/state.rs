//! The wall state, `GET /api/walls/{id}`, as types: what a wall page rebuilds itself from on (re)connect.
//! Its JSON Schema is generated from these types by a unit test and committed at
//! `tests/browser/wall-state.schema.json`; the browser tests' fake server checks its own answers against
//! that file, so the fake and the server cannot drift apart.
//!
//! The domain keeps media as keys ([`MediaKey`]); the URLs pages load them from are built here only
//! ([`media_url`]), with the participant and message as pages see them ([`ParticipantView`],
//! [`MessageView`]) — in the state, in live events ([`EventView`]) and on the join page's API — and
//! the operator console's messages ([`AdminMessageView`]).

use crate::config::ThemeConfig;
use crate::domain::{
    AdminMessage, MediaKey, Message, MessageKind, MessageStatus, Moderation, NowPlaying,
    Participant, Provider,
};
use crate::events::{AdminEvent, WallEvent};
use crate::http::error::ApiError;
use crate::walls::{Wall, Walls};
use serde::Serialize;

/// Where the server serves a cached blob (the `/media/{key}` route).
pub fn media_url(key: &MediaKey) -> String {
    format!("/media/{key}")
}

/// A configured wall, or 404 `not_found` (every route with a wall id in its path starts here).
pub fn known_wall<'a>(walls: &'a Walls, id: &str) -> Result<&'a Wall, ApiError> {
    walls
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("no wall {id:?}")))
}

/// The answer of `GET /api/walls/{id}`.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct WallState {
    pub id: String,
    pub title: String,
    /// `zh-CN` or `en`.
    pub locale: String,
    /// The wall's platform.
    pub provider: Provider,
    pub theme: WallTheme,
    /// True when the wall runs the labelled demo (`voicewall demo`).
    pub demo: bool,
    pub join: JoinState,
    /// The newest participants (at most [`STATE_PARTICIPANTS`], by join time) and the senders of
    /// `messages`, oldest first.
    pub participants: Vec<ParticipantView>,
    /// Cursor of the older participants (`GET /api/walls/{id}/participants?before=`); None: all are here.
    pub participants_before: Option<String>,
    /// The newest messages the wall shows (at most [`STATE_MESSAGES`]), oldest first, without
    /// waveforms (`GET /api/walls/{id}/messages/{mid}/waveform`).
    pub messages: Vec<MessageView>,
    /// Cursor of the older messages (`GET /api/walls/{id}/messages?before=`); None: all are here.
    pub messages_before: Option<String>,
    /// What is playing on this wall now, if anything.
    pub playback: Option<NowPlaying>,
    /// Whether the wall shows its join QR (the operator hides it, e.g. during a speech).
    pub qr_visible: bool,
    /// The id of the wall's latest event when this state was read: the page opens its event stream with
    /// `?last_event_id=` so it misses nothing in between.
    pub last_event_id: Option<String>,
}

/// How a wall looks (from the wall's `[walls.theme]` config).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct WallTheme {
    pub background: String,
    pub background_image: Option<String>,
    pub accent: String,
    /// Safe margin around the whole page, in percent of the screen's shorter side.
    pub safe_margin_pct: f32,
}

impl From<&ThemeConfig> for WallTheme {
    fn from(t: &ThemeConfig) -> Self {
        Self {
            background: t.background.clone(),
            background_image: t.background_image.clone(),
            accent: t.accent.clone(),
            safe_margin_pct: t.safe_margin_pct,
        }
    }
}

/// How a phone joins the wall.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct JoinState {
    /// What the QR encodes.
    pub url: String,
    /// Instructions in the wall's locale.
    pub instructions: String,
    /// The QR image; its `v` changes with the URL, so a page reloads it only then.
    pub qr_svg_url: String,
}

/// One person on one wall. `id` is `{provider}:{provider user id}` (for WeChat the openid);
/// `person_id` links the same person across walls (WeChat's unionid when known).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(rename = "Participant"))]
pub struct ParticipantView {
    pub id: String,
    pub person_id: String,
    pub display_name: String,
    /// `/media/{key}` of the cached avatar, or a generated `/avatar/{id}.svg`.
    pub avatar_url: String,
    /// `/media/{key}` of its 64 px thumbnail, for small grid cells; the avatar's own URL when it has
    /// none (a generated SVG draws at any size).
    pub thumb_url: String,
    pub provider: Provider,
    pub joined_at: u64,
    /// False until a real profile (name, avatar) arrived; the wall shows a generated placeholder meanwhile.
    #[serde(default)]
    pub has_profile: bool,
}

impl From<&Participant> for ParticipantView {
    fn from(p: &Participant) -> Self {
        // Every field named: a field added to the domain type must be added here (or left out on purpose).
        let Participant {
            id,
            person_id,
            display_name,
            avatar,
            thumb,
            provider,
            joined_at,
            has_profile,
        } = p;
        Self {
            id: id.clone(),
            person_id: person_id.clone(),
            display_name: display_name.clone(),
            avatar_url: media_url(avatar),
            thumb_url: media_url(thumb.as_ref().unwrap_or(avatar)),
            provider: *provider,
            joined_at: *joined_at,
            has_profile: *has_profile,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(rename = "Message"))]
pub struct MessageView {
    pub id: String,
    pub participant_id: String,
    pub kind: MessageKind,
    pub status: MessageStatus,
    pub error: Option<String>,
    pub duration_ms: Option<u64>,
    pub received_at: u64,
    pub played_count: u32,
    pub transcript: Option<String>,
    /// `/media/{key}` of the original bytes once fetched.
    #[serde(default)]
    pub media_url: Option<String>,
    /// Text of a text message.
    #[serde(default)]
    pub text: Option<String>,
    /// How many fetch attempts were made (shown to the operator on failure).
    #[serde(default)]
    pub attempts: u32,
    /// The operator's decision. Records stored before moderation existed were shown at once: approved.
    #[serde(default)]
    pub moderation: Moderation,
}

impl From<&Message> for MessageView {
    fn from(m: &Message) -> Self {
        // Every field named: a field added to the domain type must be added here (or left out on purpose).
        let Message {
            id,
            participant_id,
            kind,
            status,
            error,
            duration_ms,
            received_at,
            played_count,
            transcript,
            media,
            // Fetched on its own when the wall spotlights the message ([`WaveformView`]).
            waveform: _,
            text,
            attempts,
            moderation,
        } = m;
        Self {
            id: id.clone(),
            participant_id: participant_id.clone(),
            kind: *kind,
            status: *status,
            error: error.clone(),
            duration_ms: *duration_ms,
            received_at: *received_at,
            played_count: *played_count,
            transcript: transcript.clone(),
            media_url: media.as_ref().map(media_url),
            text: text.clone(),
            attempts: *attempts,
            moderation: *moderation,
        }
    }
}

/// How many messages the wall state carries; older ones are paged.
pub const STATE_MESSAGES: usize = 200;
/// How many participants the wall state carries besides the senders of its messages; older ones are paged.
pub const STATE_PARTICIPANTS: usize = 2000;
/// The largest page `?limit=` asks for.
pub const PAGE_MAX: usize = 1000;

/// `GET /api/walls/{id}/messages?before=&limit=`: older messages the wall shows, oldest first.
#[derive(Clone, Debug, Serialize)]
pub struct MessagePage {
    pub messages: Vec<MessageView>,
    /// Cursor of the page before this one; None: this is the oldest.
    pub before: Option<String>,
}

/// `GET /api/walls/{id}/participants?before=&limit=`: older participants the wall shows, oldest first.
#[derive(Clone, Debug, Serialize)]
pub struct ParticipantPage {
    pub participants: Vec<ParticipantView>,
    /// Cursor of the page before this one; None: this is the oldest.
    pub before: Option<String>,
}

/// `GET /api/walls/{id}/messages/{mid}/waveform`: what the spotlight draws.
#[derive(Clone, Debug, Serialize)]
pub struct WaveformView {
    pub message_id: String,
    /// Peak waveform (0..1, ~100 buckets); empty for a text or a voice not analysed yet.
    pub waveform: Vec<f32>,
}

/// A wall event as pages get it (`GET /api/walls/{id}/events`): `type` names it, media as URLs.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventView {
    ParticipantJoined {
        participant: ParticipantView,
    },
    ParticipantUpdated {
        participant: ParticipantView,
    },
    ParticipantLeft {
        participant_id: String,
    },
    MessageAdded {
        message: MessageView,
    },
    MessageUpdated {
        message: MessageView,
    },
    PlaybackStarted {
        message_id: String,
        participant_id: String,
        duration_ms: u64,
        kind: MessageKind,
        media_url: Option<String>,
    },
    PlaybackProgress {
        message_id: String,
        position_ms: u64,
        duration_ms: u64,
    },
    PlaybackFinished {
        message_id: String,
        outcome: String,
    },
    JoinUpdated {
        join_url: String,
    },
    WallChanged {
        reason: String,
    },
}

impl From<&WallEvent> for EventView {
    fn from(ev: &WallEvent) -> Self {
        match ev.clone() {
            WallEvent::ParticipantJoined { participant } => Self::ParticipantJoined {
                participant: (&participant).into(),
            },
            WallEvent::ParticipantUpdated { participant } => Self::ParticipantUpdated {
                participant: (&participant).into(),
            },
            WallEvent::ParticipantLeft { participant_id } => {
                Self::ParticipantLeft { participant_id }
            }
            WallEvent::MessageAdded { message } => Self::MessageAdded {
                message: (&message).into(),
            },
            WallEvent::MessageUpdated { message } => Self::MessageUpdated {
                message: (&message).into(),
            },
            WallEvent::PlaybackStarted {
                message_id,
                participant_id,
                duration_ms,
                kind,
                media,
            } => Self::PlaybackStarted {
                message_id,
                participant_id,
                duration_ms,
                kind,
                media_url: media.as_ref().map(media_url),
            },
            WallEvent::PlaybackProgress {
                message_id,
                position_ms,
                duration_ms,
            } => Self::PlaybackProgress {
                message_id,
                position_ms,
                duration_ms,
            },
            WallEvent::PlaybackFinished {
                message_id,
                outcome,
            } => Self::PlaybackFinished {
                message_id,
                outcome,
            },
            WallEvent::JoinUpdated { join_url } => Self::JoinUpdated { join_url },
            WallEvent::WallChanged { reason } => Self::WallChanged { reason },
        }
    }
}

/// A message as the operator's console gets it (`GET /api/admin/walls/{id}/messages`, its `message`
/// events, single moderation actions): `AdminMessage` with media as URLs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AdminMessageView {
    pub id: String,
    pub participant_id: String,
    pub name: String,
    /// `/media/{key}` of the sender's avatar; empty if the participant record is missing.
    pub avatar_url: String,
    /// `/media/{key}` of its thumbnail; the avatar's URL when it has none.
    pub thumb_url: String,
    pub provider: Option<Provider>,
    pub kind: MessageKind,
    pub duration_ms: Option<u64>,
    pub transcript: Option<String>,
    pub text: Option<String>,
    pub status: MessageStatus,
    pub failure: Option<String>,
    pub moderation: Moderation,
    pub banned: bool,
    pub created_at: u64,
    /// `/media/{key}` of the original bytes once fetched.
    pub media_url: Option<String>,
    pub played_count: u32,
}

impl From<&AdminMessage> for AdminMessageView {
    fn from(m: &AdminMessage) -> Self {
        // Every field named: a field added to the domain type must be added here (or left out on purpose).
        let AdminMessage {
            id,
            participant_id,
            name,
            avatar,
            thumb,
            provider,
            kind,
            duration_ms,
            transcript,
            text,
            status,
            failure,
            moderation,
            banned,
            created_at,
            media,
            played_count,
        } = m;
        Self {
            id: id.clone(),
            participant_id: participant_id.clone(),
            name: name.clone(),
            avatar_url: avatar.as_ref().map(media_url).unwrap_or_default(),
            thumb_url: thumb
                .as_ref()
                .or(avatar.as_ref())
                .map(media_url)
                .unwrap_or_default(),
            provider: *provider,
            kind: *kind,
            duration_ms: *duration_ms,
            transcript: transcript.clone(),
            text: text.clone(),
            status: *status,
            failure: failure.clone(),
            moderation: *moderation,
            banned: *banned,
            created_at: *created_at,
            media_url: media.as_ref().map(media_url),
            played_count: *played_count,
        }
    }
}

/// The admin messages as the console gets them.
pub fn admin_views(messages: &[AdminMessage]) -> Vec<AdminMessageView> {
    messages.iter().map(AdminMessageView::from).collect()
}

/// An operator console event's data on its stream: the message as [`AdminMessageView`], or the player's
/// state.
pub fn admin_event_data(ev: &AdminEvent) -> String {
    match ev {
        AdminEvent::Message { message, .. } => {
            serde_json::to_string(&AdminMessageView::from(message))
        }
        AdminEvent::Queue(state) => serde_json::to_string(state),
    }
    .unwrap_or_default()
}

impl WallState {
    /// The JSON on the wire: keys sorted at every level, as the server has always sent them.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("the wall state serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../tests/browser/wall-state.schema.json"
    );

    /// The server always sends every field (none is skipped when empty), so every field is required;
    /// and every object of the contract lists all its fields: an unknown one is drift too.
    fn closed(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::Object(props)) = map.get("properties") {
                    let all: Vec<serde_json::Value> =
                        props.keys().map(|k| k.as_str().into()).collect();
                    map.insert("required".into(), all.into());
                    map.insert("additionalProperties".into(), false.into());
                }
                map.values_mut().for_each(closed);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(closed),
            _ => {}
        }
    }

    fn schema() -> String {
        let mut v = serde_json::to_value(schemars::schema_for!(WallState)).unwrap();
        closed(&mut v);
        serde_json::to_string_pretty(&v).unwrap() + "\n"
    }

    /// Pages get media as `/media/{key}` URLs, with the same fields as before keys were typed.
    #[test]
    fn participants_messages_and_events_carry_media_urls() {
        let key = MediaKey::of(b"voice");
        let url = format!("/media/{key}");
        let m = crate::testing::ready_voice("3", Some(key.clone()));
        let view = serde_json::to_value(MessageView::from(&m)).unwrap();
        assert_eq!(view["media_url"], url.as_str());
        assert!(view.get("media").is_none(), "{view}");
        let p = Participant {
            id: "web:d".into(),
            person_id: "web:d".into(),
            display_name: "Ann".into(),
            avatar: key.clone(),
            thumb: None,
            provider: crate::providers::web::PROVIDER,
            joined_at: 1,
            has_profile: true,
        };
        let keys = |v: &serde_json::Value| -> Vec<String> {
            v.as_object().unwrap().keys().cloned().collect()
        };
        let view = serde_json::to_value(ParticipantView::from(&p)).unwrap();
        assert_eq!(view["avatar_url"], url.as_str());
        assert_eq!(
            keys(&view),
            [
                "avatar_url",
                "display_name",
                "has_profile",
                "id",
                "joined_at",
                "person_id",
                "provider",
                "thumb_url"
            ]
        );
        let started = serde_json::to_value(EventView::from(&WallEvent::PlaybackStarted {
            message_id: "3".into(),
            participant_id: "web:d".into(),
            duration_ms: 900,
            kind: MessageKind::Voice,
            media: Some(key.clone()),
        }))
        .unwrap();
        assert_eq!(started["type"], "playback_started");
        assert_eq!(started["media_url"], url.as_str());
        let p_again = p.clone();
        let joined = serde_json::to_value(EventView::from(&WallEvent::ParticipantJoined {
            participant: p,
        }))
        .unwrap();
        assert_eq!(joined["type"], "participant_joined");
        assert_eq!(joined["participant"]["avatar_url"], url.as_str());
        // Without a thumbnail (a generated SVG) the thumbnail is the avatar; with one, its own URL.
        assert_eq!(joined["participant"]["thumb_url"], url.as_str());
        let thumb = MediaKey::of(b"thumb");
        let with_thumb = Participant {
            thumb: Some(thumb.clone()),
            ..p_again
        };
        let view = serde_json::to_value(ParticipantView::from(&with_thumb)).unwrap();
        assert_eq!(view["thumb_url"], format!("/media/{thumb}").as_str());
    }

    #[test]
    fn the_committed_wall_state_schema_is_current() {
        let fresh = schema();
        if std::env::var_os("VOICEWALL_WRITE_SCHEMA").is_some() {
            std::fs::write(SCHEMA, &fresh).unwrap();
        }
        let committed = std::fs::read_to_string(SCHEMA).unwrap_or_default();
        assert!(
            committed == fresh,
            "tests/browser/wall-state.schema.json is stale: regenerate it with\n  \
             VOICEWALL_WRITE_SCHEMA=1 cargo test -p voicewall-core --lib the_committed_wall_state_schema_is_current\n\
             and commit it (the browser tests' fake server checks its answers against it)"
        );
    }

    #[test]
    fn the_schema_requires_every_field_of_the_state() {
        let v: serde_json::Value = serde_json::from_str(&schema()).unwrap();
        let required: Vec<&str> = v["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        for field in [
            "id",
            "title",
            "locale",
            "provider",
            "theme",
            "demo",
            "join",
            "participants",
            "participants_before",
            "messages",
            "messages_before",
            "playback",
            "qr_visible",
            "last_event_id",
        ] {
            assert!(required.contains(&field), "{field} not required");
        }
    }
}
