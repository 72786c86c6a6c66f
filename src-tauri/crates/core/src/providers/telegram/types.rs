//! The Bot API objects the wall reads, as serde types: `Update`, `Message`, `User`, `Chat`, `Voice`,
//! `Audio`, `VideoNote`, `File`, `PhotoSize`, `UserProfilePhotos` and the
//! response envelope `{ok, result | error_code, description, parameters}`.
//!
//! Only what the wall uses is modelled; unknown fields are ignored, so a newer Bot API still parses.
//! Fields the Bot API marks optional are `Option`, and so are two it made mandatory later
//! (`User.is_bot`, `file_unique_id`): older captures lack them. Integers that the API documents as
//! possibly above 2^31 (ids, `update_id`, `file_size`) are `i64`.

use serde::{Deserialize, Serialize};

/// One incoming update. Exactly one of the optional parts is present on the real API; the wall only
/// acts on `message`, and keeps the names of the other parts for its log.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Update {
    /// Counts up per bot; can pass 2^32.
    pub update_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
    /// Every other part (`edited_message`, `callback_query`, `my_chat_member`, ...), untyped.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl Update {
    /// The update's kind as the Bot API names it (`message`, `edited_message`, ...).
    pub fn kind(&self) -> &str {
        if self.message.is_some() {
            "message"
        } else {
            self.other
                .keys()
                .next()
                .map(String::as_str)
                .unwrap_or("empty")
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Message {
    pub message_id: i64,
    /// Absent for messages sent on behalf of a channel or a group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<User>,
    pub chat: Chat,
    /// Unix time in seconds.
    pub date: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entities: Option<Vec<MessageEntity>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<Voice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<Audio>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_note: Option<VideoNote>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct User {
    /// Up to 52 significant bits.
    pub id: i64,
    #[serde(default)]
    pub is_bot: bool,
    pub first_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_code: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Chat {
    pub id: i64,
    /// `private`, `group`, `supergroup` or `channel`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct MessageEntity {
    #[serde(rename = "type")]
    pub kind: String,
    pub offset: i64,
    pub length: i64,
}

/// A voice note (OGG/Opus in practice).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Voice {
    pub file_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_unique_id: Option<String>,
    /// Seconds, as the sender's client defined it.
    #[serde(default)]
    pub duration: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<i64>,
}

/// A music file sent as audio (MP3, M4A, ...).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Audio {
    pub file_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_unique_id: Option<String>,
    #[serde(default)]
    pub duration: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<i64>,
}

/// A round video message: square MP4, H.264 video first, AAC audio. It has no `mime_type`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct VideoNote {
    pub file_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_unique_id: Option<String>,
    /// Width and height (diameter) in pixels.
    #[serde(default)]
    pub length: i64,
    #[serde(default)]
    pub duration: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<i64>,
}

/// `getFile`'s answer. `file_path` is absent when the file cannot be downloaded.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct File {
    pub file_id: String,
    #[serde(default)]
    pub file_unique_id: Option<String>,
    #[serde(default)]
    pub file_size: Option<i64>,
    #[serde(default)]
    pub file_path: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct PhotoSize {
    pub file_id: String,
    #[serde(default)]
    pub file_unique_id: Option<String>,
    pub width: i64,
    pub height: i64,
    #[serde(default)]
    pub file_size: Option<i64>,
}

/// `getUserProfilePhotos`' answer: each photo is its sizes, ascending.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct UserProfilePhotos {
    pub total_count: i64,
    pub photos: Vec<Vec<PhotoSize>>,
}

/// Extra information on an error; 429 answers carry `retry_after` (seconds).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct ResponseParameters {
    #[serde(default)]
    pub retry_after: Option<u64>,
    #[serde(default)]
    pub migrate_to_chat_id: Option<i64>,
}

/// Every Bot API answer: `{"ok": true, "result": ...}` or
/// `{"ok": false, "error_code": 400, "description": "...", "parameters": {...}}`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Envelope<T> {
    pub ok: bool,
    #[serde(default = "Option::default")]
    pub result: Option<T>,
    #[serde(default)]
    pub error_code: Option<i64>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Option<ResponseParameters>,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::Value;

    /// The real and constructed samples of `tests/fixtures/telegram/updates.json`.
    pub(crate) fn samples() -> Vec<(String, Value)> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../tests/fixtures/telegram/updates.json"
        );
        let text = std::fs::read_to_string(path).expect("tests/fixtures/telegram/updates.json");
        let v: Value = serde_json::from_str(&text).expect("json");
        v["samples"]
            .as_array()
            .expect("samples")
            .iter()
            .map(|s| {
                let body = s.get("update").or_else(|| s.get("message")).expect("body");
                (s["name"].as_str().expect("name").to_string(), body.clone())
            })
            .collect()
    }

    pub(crate) fn sample(name: &str) -> Value {
        samples()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no sample {name}"))
    }

    #[test]
    fn every_real_sample_parses() {
        for (name, body) in samples() {
            if name == "message_replying_to_voice_2017" {
                let m: Message = serde_json::from_value(body).expect(&name);
                assert_eq!(m.text.as_deref(), Some("/convertspeech"));
                // A pre-2019 message: no is_bot, no file_unique_id.
                assert!(!m.from.as_ref().unwrap().is_bot);
                continue;
            }
            let u: Update = serde_json::from_value(body).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(u.kind(), "message", "{name}");
        }
    }

    #[test]
    fn voice_keeps_its_fields() {
        let u: Update = serde_json::from_value(sample("voice_private_real_2023")).unwrap();
        assert_eq!(u.update_id, 279089366);
        let m = u.message.unwrap();
        let v = m.voice.unwrap();
        assert_eq!(v.mime_type.as_deref(), Some("audio/ogg"));
        assert_eq!(v.file_size, Some(5282));
        assert_eq!(v.duration, 1);
        assert_eq!(
            v.file_id,
            "AwACAgQAAxkBAAIDQ2QxvVEjeuOy_y0B9po8m4pqoDp1AAKgEQACLdmRUcuxGB-fVV7XLwQ"
        );
        assert_eq!(m.from.unwrap().id, 648183991);
        assert_eq!(m.chat.kind, "private");
    }

    #[test]
    fn supergroup_ids_below_minus_2_pow_32_fit() {
        let u: Update = serde_json::from_value(sample("voice_supergroup_real_2026")).unwrap();
        assert_eq!(u.message.unwrap().chat.id, -1003986727769);
    }

    #[test]
    fn update_ids_above_2_pow_32_fit() {
        let u: Update =
            serde_json::from_str(r#"{"update_id": 5000000000, "edited_message": {}}"#).unwrap();
        assert_eq!(u.update_id, 5_000_000_000);
        assert_eq!(u.kind(), "edited_message");
    }

    #[test]
    fn envelopes_parse_both_ways() {
        let api: Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../tests/fixtures/telegram/api_samples.json"
            ))
            .unwrap(),
        )
        .unwrap();
        let f: Envelope<File> =
            serde_json::from_value(api["getFile"]["response_CONSTRUCTED"].clone()).unwrap();
        let f = f.result.unwrap();
        assert_eq!(f.file_path.as_deref(), Some("voice/file_12.oga"));
        assert_eq!(f.file_size, Some(5282));
        let p: Envelope<UserProfilePhotos> =
            serde_json::from_value(api["getUserProfilePhotos"]["response_CONSTRUCTED"].clone())
                .unwrap();
        let p = p.result.unwrap();
        assert_eq!(p.total_count, 1);
        assert_eq!(p.photos[0].last().unwrap().width, 640);
        let w: Envelope<bool> =
            serde_json::from_value(api["setWebhook"]["response"].clone()).unwrap();
        assert!(w.ok && w.result == Some(true));
        let e: Envelope<File> = serde_json::from_value(api["envelope"]["error"].clone()).unwrap();
        assert!(!e.ok);
        assert_eq!(e.error_code, Some(400));
        assert_eq!(
            e.description.as_deref(),
            Some("Bad Request: invalid file_id")
        );
        let e: Envelope<bool> = serde_json::from_str(
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#,
        )
        .unwrap();
        assert_eq!(e.parameters.unwrap().retry_after, Some(7));
    }
}
