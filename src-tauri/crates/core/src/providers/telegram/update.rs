//! An `Update` turned into the app's common `Inbound` push, and the `/start <wall>` deep link.
//!
//! What the wall takes: a `message` from a person (not a bot) carrying a `voice`, an `audio`, a
//! `video_note` (played for its audio track) or `text`; `/start [payload]` is a join. Everything else
//! (other update kinds, photos, stickers, other bot commands, messages from bots or on behalf of a
//! chat) is acknowledged and dropped, or Telegram would deliver it again.
//!
//! The dedup key is the `update_id` (an i64: it counts per bot and can pass 2^32); the store scopes it
//! by provider and wall, so a redelivered update is one message.

use super::config::PROVIDER;
use super::types::{Message, Update};
use crate::domain::{Inbound, InboundKind, MessageKind, Millis};
use serde::{Deserialize, Serialize};

/// A person's names as their last message gave them (the Bot API has no "get user").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Names {
    pub first_name: String,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
}

impl Names {
    /// "First Last", else "@username".
    pub fn display(&self) -> String {
        let full = match &self.last_name {
            Some(l) if !l.trim().is_empty() => format!("{} {}", self.first_name.trim(), l.trim()),
            _ => self.first_name.trim().to_string(),
        };
        if !full.is_empty() {
            return full;
        }
        self.username
            .as_deref()
            .map(|u| format!("@{u}"))
            .unwrap_or_default()
    }
}

/// What a media message refers to on Telegram: the provider's own reference, carried through the
/// inbox as the `media` string of `InboundKind::Media` (see [`MediaRef::encode`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MediaRef {
    pub file_id: String,
    /// From the Voice/Audio object (getFile may not keep it); `video/mp4` for a video note.
    pub mime_type: String,
    /// As the update states it, when it does: lets a file above the download cap fail without a call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<i64>,
}

impl MediaRef {
    /// A compact JSON text (file ids are base64url, so it stays short).
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("a MediaRef serialises")
    }

    /// The reference back from the inbox; a bare file id (no JSON) is read as one with no type.
    pub fn decode(media: &str) -> Self {
        serde_json::from_str(media).unwrap_or_else(|_| Self {
            file_id: media.to_string(),
            mime_type: "application/octet-stream".into(),
            file_size: None,
        })
    }
}

/// The update, read.
#[derive(Clone, Debug, PartialEq)]
pub enum Parsed {
    /// Store it (durably, before the 200).
    Accept(Box<Accepted>),
    /// Answer 200 and store nothing; the reason is for the log.
    Ignore(String),
}

/// An update the wall takes, with what the webhook needs to answer a join.
#[derive(Clone, Debug, PartialEq)]
pub struct Accepted {
    pub inbound: Inbound,
    /// The chat to welcome the person in, for a join (`/start`).
    pub welcome_chat: Option<i64>,
    /// The `/start` payload, when there was one.
    pub start_payload: Option<String>,
    /// The sender's names as this message gives them (the profile's source).
    pub names: Names,
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("the body is not a Telegram Update: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// The dedup key of an update.
pub fn dedup_key(update_id: i64) -> String {
    format!("update:{update_id}")
}

/// Read a webhook body for `wall`. `received_at` is passed in (time is never read here).
pub fn parse_update(body: &[u8], wall: &str, received_at: Millis) -> Result<Parsed, UpdateError> {
    let update: Update = serde_json::from_slice(body)?;
    Ok(classify(&update, wall, received_at))
}

/// What the wall does with an update.
pub fn classify(update: &Update, wall: &str, received_at: Millis) -> Parsed {
    let Some(message) = &update.message else {
        return Parsed::Ignore(format!("update kind {:?}", update.kind()));
    };
    let Some(from) = &message.from else {
        return Parsed::Ignore("a message sent on behalf of a chat".into());
    };
    if from.is_bot {
        return Parsed::Ignore("a message from a bot".into());
    }
    let mut start_payload = None;
    let kind = match message_kind(message) {
        Some(MessageContent::Media(kind)) => kind,
        Some(MessageContent::Text(text)) => InboundKind::Text { text },
        Some(MessageContent::Start(payload)) => {
            start_payload = payload;
            InboundKind::Join
        }
        Some(MessageContent::OtherCommand(cmd)) => {
            return Parsed::Ignore(format!("bot command {cmd}"));
        }
        None => return Parsed::Ignore("a message with no voice, audio, video note or text".into()),
    };
    let welcome_chat = matches!(kind, InboundKind::Join).then_some(message.chat.id);
    Parsed::Accept(Box::new(Accepted {
        inbound: Inbound {
            wall: wall.to_string(),
            provider: PROVIDER,
            sender: from.id.to_string(),
            kind,
            pushed_at: u64::try_from(message.date)
                .unwrap_or(0)
                .saturating_mul(1000),
            received_at,
            dedup_key: dedup_key(update.update_id),
        },
        welcome_chat,
        start_payload,
        names: Names {
            first_name: from.first_name.clone(),
            last_name: from.last_name.clone(),
            username: from.username.clone(),
        },
    }))
}

enum MessageContent {
    Media(InboundKind),
    Text(String),
    Start(Option<String>),
    OtherCommand(String),
}

fn media(kind: MessageKind, file_id: &str, mime: String, size: Option<i64>) -> MessageContent {
    MessageContent::Media(InboundKind::Media {
        kind,
        media: crate::domain::MediaRef::Platform(
            MediaRef {
                file_id: file_id.to_string(),
                mime_type: mime,
                file_size: size,
            }
            .encode(),
        ),
        transcript: None,
    })
}

fn message_kind(m: &Message) -> Option<MessageContent> {
    // Voice, audio and video notes all play on the wall: a video note for its audio track.
    if let Some(v) = &m.voice {
        let mime = v.mime_type.clone().unwrap_or_else(|| "audio/ogg".into());
        return Some(media(MessageKind::Voice, &v.file_id, mime, v.file_size));
    }
    if let Some(a) = &m.audio {
        let mime = a.mime_type.clone().unwrap_or_else(|| "audio/mpeg".into());
        return Some(media(MessageKind::Voice, &a.file_id, mime, a.file_size));
    }
    if let Some(n) = &m.video_note {
        return Some(media(
            MessageKind::Voice,
            &n.file_id,
            "video/mp4".into(),
            n.file_size,
        ));
    }
    let text = m.text.as_deref()?;
    if let Some(cmd) = leading_command(m, text) {
        return Some(match cmd.name {
            "start" => MessageContent::Start(cmd.args.map(str::to_string)),
            other => MessageContent::OtherCommand(format!("/{other}")),
        });
    }
    if text.trim().is_empty() {
        return None;
    }
    Some(MessageContent::Text(text.to_string()))
}

struct Command<'a> {
    name: &'a str,
    args: Option<&'a str>,
}

/// A bot command at the start of the text: `/name[@bot][ args]`. The entity is what Telegram marks;
/// a client that sent none (old captures) is read from the text.
fn leading_command<'a>(m: &Message, text: &'a str) -> Option<Command<'a>> {
    let marked = m
        .entities
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|e| e.kind == "bot_command" && e.offset == 0);
    if !text.starts_with('/') || (!marked && m.entities.is_some()) {
        return None;
    }
    let (head, args) = match text.split_once(char::is_whitespace) {
        Some((h, a)) => (h, Some(a.trim()).filter(|a| !a.is_empty())),
        None => (text, None),
    };
    let name = head[1..].split('@').next().unwrap_or("");
    if name.is_empty() {
        return None;
    }
    Some(Command { name, args })
}

/// A deep-link payload: 1–64 characters of `A-Z a-z 0-9 _ -`.
pub fn valid_start_payload(payload: &str) -> bool {
    (1..=64).contains(&payload.len())
        && payload
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The `/start` payload naming a wall: its id, cut to the 64 characters a payload may hold (wall ids
/// already use the payload's alphabet). The payload is informative only: the bot, and so the webhook
/// path, already says which wall a `/start` is for.
pub fn start_payload(wall: &str) -> &str {
    let end = wall.char_indices().nth(64).map_or(wall.len(), |(i, _)| i);
    &wall[..end]
}

/// The join QR's target: opens the bot, and its Start button sends `/start <wall>`.
pub fn deep_link(bot_username: &str, wall: &str) -> String {
    format!("https://t.me/{bot_username}?start={}", start_payload(wall))
}

#[cfg(test)]
mod tests {
    use super::super::types::tests::sample;
    use super::*;

    fn accept(name: &str, wall: &str) -> Accepted {
        let body = serde_json::to_vec(&sample(name)).unwrap();
        match parse_update(&body, wall, 42).unwrap() {
            Parsed::Accept(a) => *a,
            Parsed::Ignore(r) => panic!("{name} ignored: {r}"),
        }
    }

    #[test]
    fn a_real_voice_update_becomes_an_inbound() {
        let a = accept("voice_private_real_2023", "hall");
        assert_eq!(
            a.inbound,
            Inbound {
                wall: "hall".into(),
                provider: PROVIDER,
                sender: "648183991".into(),
                kind: InboundKind::Media {
                    kind: MessageKind::Voice,
                    media: crate::domain::MediaRef::Platform(
                        MediaRef {
                            file_id: "AwACAgQAAxkBAAIDQ2QxvVEjeuOy_y0B9po8m4pqoDp1AAKgEQACLdmRUcuxGB-fVV7XLwQ".into(),
                            mime_type: "audio/ogg".into(),
                            file_size: Some(5282),
                        }
                        .encode()
                    ),
                    transcript: None,
                },
                pushed_at: 1680981329000,
                received_at: 42,
                dedup_key: "update:279089366".into(),
            }
        );
        assert_eq!(a.welcome_chat, None);
        assert_eq!(a.names.first_name, "Igor");
    }

    #[test]
    fn group_and_forwarded_voices_are_taken_from_their_sender() {
        let a = accept("voice_supergroup_real_2026", "hall");
        assert_eq!(a.inbound.sender, "1609506098");
        let a = accept("voice_forwarded_real_2023", "hall");
        // The forwarder is the participant; the original author is not on the wall.
        assert_eq!(a.inbound.sender, "5337682436");
    }

    #[test]
    fn start_with_the_wall_is_a_join_answered_in_its_chat() {
        let a = accept("start_with_payload_CONSTRUCTED", "wall-7f3a");
        assert_eq!(a.inbound.kind, InboundKind::Join);
        assert_eq!(a.welcome_chat, Some(218485655));
        assert_eq!(a.start_payload.as_deref(), Some("wall-7f3a"));
        assert_eq!(a.inbound.dedup_key, "update:892252935");
    }

    #[test]
    fn text_is_a_text_and_other_commands_are_ignored() {
        let a = accept("text_private_teloxide", "hall");
        assert_eq!(
            a.inbound.kind,
            InboundKind::Text {
                text: "hello there".into()
            }
        );
        let mut v = sample("text_private_teloxide");
        v["message"]["text"] = "/help".into();
        v["message"]["entities"] =
            serde_json::json!([{"type": "bot_command", "offset": 0, "length": 5}]);
        let parsed = parse_update(&serde_json::to_vec(&v).unwrap(), "hall", 0).unwrap();
        assert_eq!(parsed, Parsed::Ignore("bot command /help".into()));
        // "/start@Bot" (groups) and a bare "/start" are joins too.
        v["message"]["text"] = "/start@VoicewallBot".into();
        let parsed = parse_update(&serde_json::to_vec(&v).unwrap(), "hall", 0).unwrap();
        assert!(
            matches!(parsed, Parsed::Accept(a) if a.inbound.kind == InboundKind::Join && a.start_payload.is_none())
        );
        // Text that merely starts with a slash, with entities that mark no command, is text.
        v["message"]["text"] = "/shrug".into();
        v["message"]["entities"] =
            serde_json::json!([{"type": "italic", "offset": 0, "length": 6}]);
        let parsed = parse_update(&serde_json::to_vec(&v).unwrap(), "hall", 0).unwrap();
        assert!(
            matches!(parsed, Parsed::Accept(a) if a.inbound.kind == InboundKind::Text { text: "/shrug".into() })
        );
    }

    #[test]
    fn other_update_kinds_and_senders_are_ignored() {
        let edited = br#"{"update_id": 7, "edited_message": {"message_id": 1, "chat": {"id": 1, "type": "private"}, "date": 1, "text": "x"}}"#;
        assert_eq!(
            parse_update(edited, "hall", 0).unwrap(),
            Parsed::Ignore("update kind \"edited_message\"".into())
        );
        let mut v = sample("voice_private_real_2023");
        v["message"]["from"]["is_bot"] = true.into();
        assert!(matches!(
            parse_update(&serde_json::to_vec(&v).unwrap(), "hall", 0).unwrap(),
            Parsed::Ignore(_)
        ));
        v["message"].as_object_mut().unwrap().remove("from");
        assert!(matches!(
            parse_update(&serde_json::to_vec(&v).unwrap(), "hall", 0).unwrap(),
            Parsed::Ignore(_)
        ));
        let mut v = sample("voice_private_real_2023");
        v["message"].as_object_mut().unwrap().remove("voice");
        v["message"]["sticker"] = serde_json::json!({"file_id": "x"});
        assert!(matches!(
            parse_update(&serde_json::to_vec(&v).unwrap(), "hall", 0).unwrap(),
            Parsed::Ignore(_)
        ));
    }

    #[test]
    fn audio_and_video_notes_keep_their_type() {
        let mut v = sample("voice_private_real_2023");
        let msg = v["message"].as_object_mut().unwrap();
        msg.remove("voice");
        msg.insert(
            "video_note".into(),
            serde_json::json!({"file_id": "DQAC", "file_unique_id": "AgAD", "length": 240, "duration": 2, "file_size": 30000}),
        );
        let a = match parse_update(&serde_json::to_vec(&v).unwrap(), "hall", 0).unwrap() {
            Parsed::Accept(a) => a,
            other => panic!("{other:?}"),
        };
        let InboundKind::Media { kind, media, .. } = a.inbound.kind else {
            panic!("not media")
        };
        let media = String::from(media);
        assert_eq!(kind, MessageKind::Voice);
        assert_eq!(MediaRef::decode(&media).mime_type, "video/mp4");

        let msg = v["message"].as_object_mut().unwrap();
        msg.remove("video_note");
        msg.insert(
            "audio".into(),
            serde_json::json!({"file_id": "CQAC", "duration": 2, "mime_type": "audio/mp4", "file_size": 1}),
        );
        let a = match parse_update(&serde_json::to_vec(&v).unwrap(), "hall", 0).unwrap() {
            Parsed::Accept(a) => a,
            other => panic!("{other:?}"),
        };
        let InboundKind::Media { media, .. } = a.inbound.kind else {
            panic!("not media")
        };
        let media = String::from(media);
        assert_eq!(
            MediaRef::decode(&media),
            MediaRef {
                file_id: "CQAC".into(),
                mime_type: "audio/mp4".into(),
                file_size: Some(1)
            }
        );
    }

    #[test]
    fn malformed_bodies_are_errors() {
        assert!(parse_update(b"not json", "hall", 0).is_err());
        assert!(
            parse_update(b"{}", "hall", 0).is_err(),
            "update_id is required"
        );
        assert!(parse_update(br#"{"update_id": "7"}"#, "hall", 0).is_err());
        assert!(parse_update(b"[]", "hall", 0).is_err());
    }

    #[test]
    fn start_payloads_follow_the_deep_link_alphabet() {
        assert!(valid_start_payload("wall-7f3a"));
        assert!(valid_start_payload("A_z-09"));
        assert!(valid_start_payload(&"a".repeat(64)));
        assert!(!valid_start_payload(&"a".repeat(65)));
        assert!(!valid_start_payload(""));
        assert!(!valid_start_payload("wall 1"));
        assert!(!valid_start_payload("wall.1"));
        assert!(!valid_start_payload("wäll"));
        assert_eq!(
            deep_link("VoicewallBot", "wall-7f3a"),
            "https://t.me/VoicewallBot?start=wall-7f3a"
        );
        let long = "w".repeat(70);
        assert!(valid_start_payload(start_payload(&long)));
        assert_eq!(start_payload(&long).len(), 64);
    }

    #[test]
    fn a_bare_file_id_decodes_as_a_reference() {
        assert_eq!(MediaRef::decode("AwAC").file_id, "AwAC");
    }

    #[test]
    fn names_display_first_last_or_username() {
        let n = |f: &str, l: Option<&str>, u: Option<&str>| Names {
            first_name: f.into(),
            last_name: l.map(Into::into),
            username: u.map(Into::into),
        };
        assert_eq!(
            n("Mloda", Some("Alchimiczka"), None).display(),
            "Mloda Alchimiczka"
        );
        assert_eq!(n("Igor", None, Some("igor")).display(), "Igor");
        assert_eq!(n(" ", None, Some("igor")).display(), "@igor");
        assert_eq!(n("", None, None).display(), "");
    }
}
