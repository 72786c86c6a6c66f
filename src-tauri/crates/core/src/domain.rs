//! Domain types shared by every provider and the wall: participants, messages and the common `Inbound`
//! push that every platform's webhook is turned into.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch. Time is passed in, never read inside business logic.
pub type Millis = u64;

pub fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg_attr(test, derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Web,
    Wechat,
    Telegram,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Web => "web",
            Provider::Wechat => "wechat",
            Provider::Telegram => "telegram",
        }
    }
}

#[cfg_attr(test, derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    Voice,
    Video,
    Text,
    Image,
}

/// Where a message is in its life. Moderation states (pending/approved/rejected) come with the console.
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Fetching,
    Ready,
    Failed,
}

/// One person on one wall. `id` is `{provider}:{provider user id}` (for WeChat the openid);
/// `person_id` links the same person across walls (WeChat's unionid when known).
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Participant {
    pub id: String,
    pub person_id: String,
    pub display_name: String,
    /// `/media/{key}` of the cached avatar, or a generated `/avatar/{id}.svg`.
    pub avatar_url: String,
    pub provider: Provider,
    pub joined_at: Millis,
    /// False until a real profile (name, avatar) arrived; the wall shows a generated placeholder meanwhile.
    #[serde(default)]
    pub has_profile: bool,
}

#[cfg_attr(test, derive(schemars::JsonSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    pub participant_id: String,
    pub kind: MessageKind,
    pub status: MessageStatus,
    pub error: Option<String>,
    pub duration_ms: Option<u64>,
    pub received_at: Millis,
    pub played_count: u32,
    pub transcript: Option<String>,
    /// `/media/{key}` of the original bytes once fetched.
    #[serde(default)]
    pub media_url: Option<String>,
    /// Peak waveform (0..1, ~100 buckets) of a voice message.
    #[serde(default)]
    pub waveform: Vec<f32>,
    /// Text of a text message.
    #[serde(default)]
    pub text: Option<String>,
    /// How many fetch attempts were made (shown to the operator on failure).
    #[serde(default)]
    pub attempts: u32,
}

/// What a provider hands to the pipeline: a platform push, normalised. Stored in the inbox before the ack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Inbound {
    pub wall: String,
    pub provider: Provider,
    /// The sender's per-account id (WeChat openid, Telegram user id, web device id).
    pub sender: String,
    pub kind: InboundKind,
    /// The platform's push time (seconds resolution on WeChat), in ms.
    pub pushed_at: Millis,
    pub received_at: Millis,
    /// Unique per push on its platform; retries of one push share it.
    pub dedup_key: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InboundKind {
    /// A media message; `media` names it on its platform (WeChat MediaId, Telegram file_id) or in our cache
    /// (`cache:{key}` for uploads already stored).
    Media {
        kind: MessageKind,
        media: String,
        transcript: Option<String>,
    },
    Text {
        text: String,
    },
    /// Follow / scan / join: the sender becomes a participant of the wall.
    Join,
    Leave,
}

/// A profile fetched from a platform, before its avatar is cached.
#[derive(Clone, Debug, Default)]
pub struct FetchedProfile {
    pub nickname: String,
    /// Bytes and content type of the avatar image, already downloaded (the wall never hotlinks
    /// platform URLs).
    pub avatar: Option<(Vec<u8>, String)>,
    pub unionid: Option<String>,
}

/// Stable colour and initials for a generated avatar.
pub fn placeholder_svg(id: &str, name: &str) -> String {
    let hash = id
        .bytes()
        .fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
    let hue = hash % 360;
    let initials: String = name
        .split_whitespace()
        .filter_map(|w| w.chars().next())
        .take(2)
        .collect::<String>()
        .to_uppercase();
    let initials = if initials.is_empty() {
        "?".to_string()
    } else {
        initials
    };
    let initials = initials
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 100 100\"><rect width=\"100\" height=\"100\" fill=\"hsl({hue},55%,42%)\"/><text x=\"50\" y=\"50\" dy=\"0.35em\" text-anchor=\"middle\" font-family=\"sans-serif\" font-size=\"42\" font-weight=\"700\" fill=\"#fff\">{initials}</text></svg>"
    )
}

/// A friendly generated name for someone whose profile has not arrived yet.
pub fn placeholder_name(id: &str) -> String {
    const ANIMALS: [&str; 12] = [
        "Panda", "Tiger", "Crane", "Koi", "Otter", "Falcon", "Fox", "Lynx", "Heron", "Dolphin",
        "Sparrow", "Whale",
    ];
    let hash = id
        .bytes()
        .fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
    format!(
        "Guest {} {}",
        ANIMALS[(hash % 12) as usize],
        (hash / 12) % 1000
    )
}
