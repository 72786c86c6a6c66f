//! `[walls.web]`: the join page's limits and token rotation. The web provider parses and checks its own
//! section (`web::check`); every key is optional.

use crate::domain::Provider;
use serde::{Deserialize, Serialize};

/// This platform as stored records and the wire name it (also its config table, `[walls.web]`).
pub const PROVIDER: Provider = Provider::new("web");

/// The built-in web join page (the default provider).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// How often the join token in the QR rotates, in seconds.
    #[serde(default = "default_token_rotate")]
    pub token_rotate_s: u64,
    /// How long the previous token stays valid after a rotation, in seconds.
    #[serde(default = "default_token_grace")]
    pub token_grace_s: u64,
    #[serde(default = "default_nickname_max")]
    pub nickname_max_chars: usize,
    #[serde(default = "default_avatar_max")]
    pub avatar_max_bytes: usize,
    #[serde(default = "default_audio_max")]
    pub audio_max_bytes: usize,
    #[serde(default = "default_web_duration")]
    pub audio_max_duration_s: u64,
    #[serde(default = "default_per_minute")]
    pub messages_per_minute: u32,
    #[serde(default = "default_per_ip_minute")]
    pub messages_per_ip_per_minute: u32,
    /// New phones (device cookies minted) per client address per minute.
    #[serde(default = "default_new_devices_per_ip")]
    pub new_devices_per_ip_per_minute: u32,
    /// The most guests who may join this wall; the next one is refused.
    #[serde(default = "default_max_participants")]
    pub max_participants: usize,
    /// The most messages this wall keeps; a voice beyond it is refused.
    #[serde(default = "default_max_messages")]
    pub max_messages: usize,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            token_rotate_s: default_token_rotate(),
            token_grace_s: default_token_grace(),
            nickname_max_chars: default_nickname_max(),
            avatar_max_bytes: default_avatar_max(),
            audio_max_bytes: default_audio_max(),
            audio_max_duration_s: default_web_duration(),
            messages_per_minute: default_per_minute(),
            messages_per_ip_per_minute: default_per_ip_minute(),
            new_devices_per_ip_per_minute: default_new_devices_per_ip(),
            max_participants: default_max_participants(),
            max_messages: default_max_messages(),
        }
    }
}

fn default_token_rotate() -> u64 {
    600
}
fn default_token_grace() -> u64 {
    300
}
fn default_nickname_max() -> usize {
    24
}
fn default_avatar_max() -> usize {
    2 * 1024 * 1024
}
fn default_audio_max() -> usize {
    4 * 1024 * 1024
}
fn default_web_duration() -> u64 {
    60
}
fn default_per_minute() -> u32 {
    6
}
fn default_per_ip_minute() -> u32 {
    30
}
fn default_new_devices_per_ip() -> u32 {
    20
}
fn default_max_participants() -> usize {
    5_000
}
fn default_max_messages() -> usize {
    20_000
}
