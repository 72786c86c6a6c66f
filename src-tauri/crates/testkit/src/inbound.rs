//! Pushes as a provider hands them to the app (`Inbound`), for the tests that drive the pipeline
//! without a platform: a web join, and a voice whose bytes are already in the media cache.

use voicewall_core::domain::{now_ms, Inbound, InboundKind, MediaKey, MediaRef, MessageKind};

/// A web guest joining wall `wall` from device `sender`.
pub fn join(wall: &str, sender: &str) -> Inbound {
    Inbound {
        wall: wall.into(),
        provider: voicewall_core::providers::web::PROVIDER,
        sender: sender.into(),
        kind: InboundKind::Join,
        pushed_at: now_ms(),
        received_at: now_ms(),
        dedup_key: format!("join:{sender}"),
    }
}

/// A web voice whose bytes are cached under `media_key`.
pub fn cached_voice(wall: &str, sender: &str, media_key: &str, dedup: &str) -> Inbound {
    Inbound {
        wall: wall.into(),
        provider: voicewall_core::providers::web::PROVIDER,
        sender: sender.into(),
        kind: InboundKind::Media {
            kind: MessageKind::Voice,
            media: MediaRef::Cached(MediaKey::parse(media_key).expect("a media key")),
            transcript: None,
        },
        pushed_at: now_ms(),
        received_at: now_ms(),
        dedup_key: dedup.into(),
    }
}
