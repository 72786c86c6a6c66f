//! Shared helpers for the audio crate's integration tests: fixture loading and signal measures.
#![allow(dead_code)]

use std::path::PathBuf;

/// `tests/fixtures/audio/` at the workspace root.
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures/audio")
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt()
}

/// A deterministic byte generator (xorshift), so "garbage" is the same on every run.
pub fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The fixtures with their format and true duration in ms (from the source WAV / the Ogg
/// granule position), see tests/fixtures/audio/README.md.
pub const CLIPS: &[(&str, voicewall_audio::Format, u64)] = &[
    ("hello.amr", voicewall_audio::Format::AmrNb, 2998),
    ("hello.ogg", voicewall_audio::Format::OggOpus, 2998),
    ("hello.webm", voicewall_audio::Format::WebmOpus, 2998),
    (
        "hello_unfinalised.webm",
        voicewall_audio::Format::WebmOpus,
        2998,
    ),
    (
        "hello_mediarecorder.webm",
        voicewall_audio::Format::WebmOpus,
        2998,
    ),
    ("hello.m4a", voicewall_audio::Format::Mp4Aac, 2998),
    ("hello.mp3", voicewall_audio::Format::Mp3, 2998),
    ("hello.wav", voicewall_audio::Format::Wav, 2998),
    (
        "voice_ptb_telegram.ogg",
        voicewall_audio::Format::OggOpus,
        3444,
    ),
];
