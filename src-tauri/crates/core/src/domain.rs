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

/// A platform, by its name: what stored records and the wire JSON say (`"web"`, `"wechat"`, ...).
/// Each platform declares its own (`providers::<name>::PROVIDER`, made with `Provider::new`); nothing
/// here knows which exist. Serialized as the bare name; deserialized by the registry
/// (`providers::PLATFORMS`, see the `Deserialize` impl in `providers`), which refuses a name it does
/// not know and hands back its own interned one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Provider(&'static str);

impl Provider {
    /// A platform's name, as stored and sent; only a platform's own module makes one.
    pub const fn new(name: &'static str) -> Self {
        Provider(name)
    }

    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl Serialize for Provider {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
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

/// Where a message is in its life (fetching its media, ready, failed). Its moderation is `Moderation`.
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Participant {
    pub id: String,
    pub person_id: String,
    pub display_name: String,
    /// The avatar in the media cache: a real picture, or the generated placeholder (an SVG). Pages get
    /// it as a URL from the HTTP layer (`avatar_url`).
    #[serde(alias = "avatar_url", deserialize_with = "stored::key")]
    pub avatar: MediaKey,
    /// The avatar's 64 px thumbnail (`thumb_url`) for small grid cells; none for a generated
    /// placeholder (an SVG draws at any size) and in records written before thumbnails.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "stored::optional_key"
    )]
    pub thumb: Option<MediaKey>,
    pub provider: Provider,
    pub joined_at: Millis,
    /// False until a real profile (name, avatar) arrived; the wall shows a generated placeholder meanwhile.
    #[serde(default)]
    pub has_profile: bool,
}

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
    /// The original bytes in the media cache, once fetched. Pages get it as a URL (`media_url`).
    #[serde(
        default,
        alias = "media_url",
        deserialize_with = "stored::optional_key"
    )]
    pub media: Option<MediaKey>,
    /// Peak waveform (0..1, ~100 buckets) of a voice message.
    #[serde(default)]
    pub waveform: Vec<f32>,
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

/// The operator's decision on a message. Only approved messages are shown and played; in a wall's `pre`
/// mode a message starts pending, in `post` mode approved.
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Moderation {
    Pending,
    #[default]
    Approved,
    Rejected,
    Removed,
}

impl Moderation {
    pub fn as_str(self) -> &'static str {
        match self {
            Moderation::Pending => "pending",
            Moderation::Approved => "approved",
            Moderation::Rejected => "rejected",
            Moderation::Removed => "removed",
        }
    }
}

/// How a wall treats new messages: `post` shows them at once (the operator may remove them), `pre`
/// holds them until the operator approves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModerationMode {
    #[default]
    Post,
    Pre,
}

/// A wall's settings the operator changes while it runs (kept in the store; the config gives the
/// defaults of a wall never changed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WallSettings {
    #[serde(default)]
    pub moderation: ModerationMode,
    #[serde(default = "yes")]
    pub qr_visible: bool,
    /// Messages up to this sequence (message id) were cleared off the wall; 0: never cleared.
    #[serde(default)]
    pub cleared_through: u64,
    /// When the wall was last cleared (participants who joined before and said nothing since are hidden).
    #[serde(default)]
    pub cleared_at: Millis,
    /// Replay approved voices when nothing new arrived for this many seconds; None: off.
    #[serde(default)]
    pub idle_loop_s: Option<u64>,
    /// Set when the operator changed `moderation`: the config's value it was changed against. While the
    /// config still says that, the operator's choice holds; once the config says otherwise, the config
    /// wins at the next start (`Board::follow_config`). None: never changed here, the config rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderation_over: Option<Override<ModerationMode>>,
    /// The same for `idle_loop_s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_loop_over: Option<Override<Option<u64>>>,
    /// Written by a version that records overrides (`*_over`). A record without it is older: its
    /// `moderation` / `idle_loop_s` are the operator's where they differ from the config
    /// (`Board::follow_config` records them so at the first start).
    #[serde(default)]
    pub overrides_recorded: bool,
}

/// An operator's change of a config key: the config's value at the time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override<T> {
    pub config: T,
}

fn yes() -> bool {
    true
}

impl Default for WallSettings {
    fn default() -> Self {
        Self {
            moderation: ModerationMode::Post,
            qr_visible: true,
            cleared_through: 0,
            cleared_at: 0,
            idle_loop_s: None,
            moderation_over: None,
            idle_loop_over: None,
            overrides_recorded: false,
        }
    }
}

/// What is playing now, for the wall state and the console.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct NowPlaying {
    pub wall: String,
    pub message_id: String,
    pub participant_id: String,
    pub position_ms: u64,
    pub duration_ms: u64,
}

/// One message waiting in the player's queue.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct QueueItem {
    pub wall: String,
    pub message_id: String,
    /// The sender's display name.
    pub name: String,
}

/// The player as the operator sees it: `GET /api/admin/playback` and the consoles' `queue` event.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PlaybackState {
    pub now_playing: Option<NowPlaying>,
    pub paused: bool,
    pub volume: f32,
    /// In the order they will play.
    pub queue: Vec<QueueItem>,
    /// The queue's cap (`[audio] queue_max`).
    pub queue_max: usize,
}

/// A message as the operator's console lists it: with its sender, status, moderation and the media to
/// listen to in the operator's own browser. The console gets it with media as URLs
/// (`http::state::AdminMessageView`).
#[derive(Clone, Debug, PartialEq)]
pub struct AdminMessage {
    pub id: String,
    pub participant_id: String,
    pub name: String,
    /// The sender's avatar in the media cache; `None` only if the participant record is missing.
    pub avatar: Option<MediaKey>,
    /// Its thumbnail, when it has one.
    pub thumb: Option<MediaKey>,
    pub provider: Option<Provider>,
    pub kind: MessageKind,
    pub duration_ms: Option<u64>,
    pub transcript: Option<String>,
    pub text: Option<String>,
    pub status: MessageStatus,
    /// Why it failed, with the attempts made.
    pub failure: Option<String>,
    pub moderation: Moderation,
    pub banned: bool,
    pub created_at: Millis,
    /// The original bytes in the media cache, once fetched.
    pub media: Option<MediaKey>,
    pub played_count: u32,
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
    /// (uploads already stored).
    Media {
        kind: MessageKind,
        media: MediaRef,
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

/// Stable colour and initials for a generated avatar. The SVG also carries the id's hash: media access
/// is by content, so two guests whose colour and initials agree (one pair in 360) must still get two
/// blobs, or each could fetch the other's avatar as "their own".
pub fn placeholder_svg(id: &str, name: &str) -> String {
    placeholder(id, name, true)
}

/// The placeholder as versions before the seed drew it: its key is still derived when a person is
/// erased (a replaced placeholder is named by no record).
pub fn legacy_placeholder_svg(id: &str, name: &str) -> String {
    placeholder(id, name, false)
}

fn placeholder(id: &str, name: &str, seeded: bool) -> String {
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
    let seed = if seeded {
        format!(" data-seed=\"{hash:08x}\"")
    } else {
        String::new()
    };
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 100 100\"{seed}><rect width=\"100\" height=\"100\" fill=\"hsl({hue},55%,42%)\"/><text x=\"50\" y=\"50\" dy=\"0.35em\" text-anchor=\"middle\" font-family=\"sans-serif\" font-size=\"42\" font-weight=\"700\" fill=\"#fff\">{initials}</text></svg>"
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

/// A blob in the media cache: the first 128 bits of its SHA-256, as 32 lowercase hex digits. The HTTP
/// layer serves it at `/media/{key}`; nothing else in core builds or parses that URL.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct MediaKey(String);

/// A string that is not a media key.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0:?} is not a media key (32 lowercase hex digits)")]
pub struct NotAMediaKey(pub String);

impl MediaKey {
    /// The key of these bytes.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest;
        Self(hex::encode(&sha2::Sha256::digest(bytes)[..16]))
    }

    pub fn parse(s: &str) -> Result<Self, NotAMediaKey> {
        if s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Self(s.to_string()))
        } else {
            Err(NotAMediaKey(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A key is usable wherever the store takes a `&str` key.
impl std::ops::Deref for MediaKey {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for MediaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for MediaKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// What a media push refers to: a file on its platform (WeChat MediaId, Telegram file_id), or a blob
/// already in our cache (a web upload, stored before the ack). Kept in the inbox as one string, exactly
/// as before this type: the platform's id, or `cache:{key}` — so entries written by an earlier version
/// still load, and the other way round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum MediaRef {
    Platform(String),
    Cached(MediaKey),
}

const CACHED: &str = "cache:";

impl From<MediaRef> for String {
    fn from(r: MediaRef) -> Self {
        match r {
            MediaRef::Platform(id) => id,
            MediaRef::Cached(key) => format!("{CACHED}{key}"),
        }
    }
}

impl TryFrom<String> for MediaRef {
    type Error = NotAMediaKey;

    fn try_from(s: String) -> Result<Self, NotAMediaKey> {
        match s.strip_prefix(CACHED) {
            Some(key) => MediaKey::parse(key).map(MediaRef::Cached),
            None => Ok(MediaRef::Platform(s)),
        }
    }
}

/// Reading media keys in stored records. Records written before keys were typed hold the URL the wall
/// was given (`"avatar_url": "/media/{key}"`); they load as keys, and are written back as keys.
pub(crate) mod stored {
    use super::MediaKey;
    use serde::{Deserialize, Deserializer};

    /// The prefix of the URLs that earlier versions stored (the route was `/media/{key}` then too).
    const EARLIER_URL: &str = "/media/";

    pub fn key<'de, D: Deserializer<'de>>(d: D) -> Result<MediaKey, D::Error> {
        let s = String::deserialize(d)?;
        MediaKey::parse(s.strip_prefix(EARLIER_URL).unwrap_or(&s)).map_err(serde::de::Error::custom)
    }

    pub fn optional_key<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MediaKey>, D::Error> {
        #[derive(Deserialize)]
        struct Key(#[serde(deserialize_with = "key")] MediaKey);
        Ok(Option::<Key>::deserialize(d)?.map(|k| k.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_guests_whose_colour_and_initials_agree_still_get_two_placeholders() {
        let fill = |id: &str| {
            let svg = placeholder_svg(id, "Ann Lee");
            let at = svg.find("fill=\"hsl(").unwrap();
            svg[at..at + 20].to_string()
        };
        let first = fill("device-0");
        let twin = (1..10_000)
            .map(|i| format!("device-{i}"))
            .find(|id| fill(id) == first)
            .expect("a second id of the same colour");
        // Same colour, same initials: without the seed these were one blob, owned by both guests.
        assert_ne!(
            MediaKey::of(placeholder_svg("device-0", "Ann Lee").as_bytes()),
            MediaKey::of(placeholder_svg(&twin, "Ann Lee").as_bytes())
        );
    }

    #[test]
    fn media_keys_are_32_lowercase_hex_digits() {
        let key = MediaKey::of(b"hello");
        assert_eq!(key.as_str().len(), 32);
        assert_eq!(MediaKey::parse(key.as_str()), Ok(key.clone()));
        for bad in [
            "",
            "0123",
            "../../etc/passwd",
            &key.as_str().to_uppercase(),
            &format!("{key}0"),
        ] {
            assert!(MediaKey::parse(bad).is_err(), "{bad:?}");
        }
        assert!(serde_json::from_str::<MediaKey>("\"not-a-key\"").is_err());
    }

    /// Inbox entries written before `MediaRef` (a plain string, `cache:` for uploads) load, and are
    /// written back byte for byte the same.
    #[test]
    fn media_refs_keep_the_stored_form_of_earlier_versions() {
        let key = MediaKey::of(b"voice");
        let old_upload =
            format!(r#"{{"type":"media","kind":"voice","media":"cache:{key}","transcript":null}}"#);
        let old_platform =
            r#"{"type":"media","kind":"voice","media":"MEDIA_ID-1","transcript":"hi"}"#;
        let upload: InboundKind = serde_json::from_str(&old_upload).unwrap();
        let platform: InboundKind = serde_json::from_str(old_platform).unwrap();
        assert_eq!(
            upload,
            InboundKind::Media {
                kind: MessageKind::Voice,
                media: MediaRef::Cached(key),
                transcript: None
            }
        );
        assert!(matches!(
            &platform,
            InboundKind::Media { media: MediaRef::Platform(id), .. } if id == "MEDIA_ID-1"
        ));
        assert_eq!(serde_json::to_string(&upload).unwrap(), old_upload);
        assert_eq!(serde_json::to_string(&platform).unwrap(), old_platform);
        // A `cache:` reference to something that is not a key is refused, not taken for a platform id.
        assert!(serde_json::from_str::<InboundKind>(
            r#"{"type":"media","kind":"voice","media":"cache:../x","transcript":null}"#
        )
        .is_err());
    }

    /// Participants and messages written before keys were typed hold `/media/{key}` URLs; they load as
    /// keys. What is written now is the key alone, and reads back.
    #[test]
    fn stored_participants_and_messages_of_earlier_versions_load() {
        let key = MediaKey::of(b"avatar");
        let old_participant = format!(
            r#"{{"id":"web:d1","person_id":"web:d1","display_name":"Ann","avatar_url":"/media/{key}","provider":"web","joined_at":5}}"#
        );
        let p: Participant = serde_json::from_str(&old_participant).unwrap();
        assert_eq!(p.avatar, key);
        assert!(!p.has_profile);
        let written = serde_json::to_string(&p).unwrap();
        assert!(
            written.contains(&format!(r#""avatar":"{key}""#)),
            "{written}"
        );
        assert!(!written.contains("/media/"), "{written}");
        assert_eq!(serde_json::from_str::<Participant>(&written).unwrap(), p);

        let old_message = format!(
            r#"{{"id":"7","participant_id":"web:d1","kind":"voice","status":"ready","error":null,"duration_ms":900,"received_at":5,"played_count":1,"transcript":null,"media_url":"/media/{key}"}}"#
        );
        let m: Message = serde_json::from_str(&old_message).unwrap();
        assert_eq!(m.media, Some(key.clone()));
        let fetching = old_message.replace(&format!(r#""/media/{key}""#), "null");
        assert_eq!(
            serde_json::from_str::<Message>(&fetching).unwrap().media,
            None
        );
        let m2: Message = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(m2, m);
        // Anything else where a key belongs is refused rather than taken for one.
        let bad = old_participant.replace(&format!("/media/{key}"), "/avatar/x.svg");
        assert!(serde_json::from_str::<Participant>(&bad).is_err());
    }

    /// Stored records and the wire name a platform as before `Provider` became the platforms' own
    /// (an enum until issue #15): the same bytes read back and are written again, for each platform
    /// of the registry; and a name the registry does not know is refused, naming it.
    #[test]
    fn provider_names_are_stored_and_sent_as_before() {
        use crate::providers::{telegram, web, wechat};
        let key = MediaKey::of(b"avatar");
        for (name, provider) in [
            ("web", web::PROVIDER),
            ("wechat", wechat::PROVIDER),
            ("telegram", telegram::PROVIDER),
        ] {
            assert_eq!(provider.as_str(), name);
            assert_eq!(provider.to_string(), name);
            assert_eq!(
                serde_json::to_string(&provider).unwrap(),
                format!("\"{name}\"")
            );
            let participant = format!(
                r#"{{"id":"{name}:u1","person_id":"{name}:u1","display_name":"Ann","avatar":"{key}","provider":"{name}","joined_at":5,"has_profile":true}}"#
            );
            let p: Participant = serde_json::from_str(&participant).unwrap();
            assert_eq!(p.provider, provider);
            assert_eq!(serde_json::to_string(&p).unwrap(), participant);
            let inbound = format!(
                r#"{{"wall":"main","provider":"{name}","sender":"u1","kind":{{"type":"text","text":"hi"}},"pushed_at":1,"received_at":2,"dedup_key":"k1"}}"#
            );
            let i: Inbound = serde_json::from_str(&inbound).unwrap();
            assert_eq!(i.provider, provider);
            assert_eq!(serde_json::to_string(&i).unwrap(), inbound);
            // Read from a JSON value (an owned string) as well as from text.
            let v: serde_json::Value = serde_json::from_str(&participant).unwrap();
            assert_eq!(serde_json::from_value::<Participant>(v).unwrap(), p);
        }
        let matrix = format!(
            r#"{{"id":"matrix:u1","person_id":"matrix:u1","display_name":"Ann","avatar":"{key}","provider":"matrix","joined_at":5}}"#
        );
        let e = serde_json::from_str::<Participant>(&matrix)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("unknown variant `matrix`, expected one of `web`, `wechat`, `telegram`"),
            "{e}"
        );
        assert!(serde_json::from_str::<Provider>(r#""Web""#).is_err());
        assert!(serde_json::from_str::<Provider>("3").is_err());
    }
}
