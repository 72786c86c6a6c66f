//! Decode bombs: small crafted files that declare a sample rate, channel count or length they do
//! not have (tests/fixtures/bombs/, made by make_bombs.py there). Each must be refused with its
//! own error, without decoding more than the limit allows.

use std::path::PathBuf;
use voicewall_audio::{
    decode, decode_limited, DecodeError, MAX_CHANNELS, MAX_DECODED_SAMPLES, MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
};

fn bomb(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bombs")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[test]
fn vorbis_declaring_400_mhz_is_refused_not_decoded_to_325_s() {
    // 19 KB holding 15.6 M frames: at the declared rate "39 ms", at a real 48 kHz 325 s.
    let got = decode_limited(&bomb("vorbis_400mhz.ogg"), 60);
    assert!(
        matches!(got, Err(DecodeError::SampleRate { rate: 400_000_000 })),
        "{got:?}"
    );
}

#[test]
fn aac_declaring_16_mhz_is_refused_not_decoded_to_512_s() {
    // 32 KB of 4-byte silent AAC frames: at the rate the AAC config declares "0.5 s", at the
    // 16 kHz of the MP4 sample entry 512 s (so a limited decode refuses it up front as too long;
    // `decode`, as `voicewall probe` uses it, decoded all of it).
    let got = decode(&bomb("aac_16mhz.m4a"));
    assert!(
        matches!(got, Err(DecodeError::SampleRate { rate: 16_000_000 })),
        "{got:?}"
    );
}

#[test]
fn vorbis_declaring_1_hz_is_refused() {
    let got = decode(&bomb("vorbis_1hz.ogg"));
    assert!(
        matches!(got, Err(DecodeError::SampleRate { rate: 1 })),
        "{got:?}"
    );
}

#[test]
fn wav_rates_outside_8_to_192_khz_are_refused() {
    for (name, rate) in [("wav_4ghz.wav", 4_000_000_000), ("wav_2hz.wav", 2)] {
        let got = decode_limited(&bomb(name), 60);
        assert!(
            matches!(got, Err(DecodeError::SampleRate { rate: r }) if r == rate),
            "{name}: {got:?}"
        );
    }
    assert_eq!((MIN_SAMPLE_RATE, MAX_SAMPLE_RATE), (8_000, 192_000));
}

#[test]
fn eight_channels_are_refused() {
    // 51 s at 8 kHz: within the duration limit, beyond any voice message's channels.
    let got = decode_limited(&bomb("vorbis_8ch.ogg"), 60);
    assert!(
        matches!(got, Err(DecodeError::TooManyChannels { channels: 8, max }) if max == MAX_CHANNELS),
        "{got:?}"
    );
}

#[test]
fn a_stream_whose_pages_claim_one_second_stops_at_the_budget() {
    // An honest 48 kHz rate, but granules claiming 1 s for 650 s of audio: the header check
    // passes; the budget of decoded samples stops it.
    let got = decode_limited(&bomb("vorbis_lying_granule.ogg"), 60);
    match got {
        Err(DecodeError::TooLong { max_s: 60, got_s }) => assert!(got_s >= 600, "{got_s}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn decoding_without_a_limit_stops_at_the_sample_ceiling() {
    // AMR NO_DATA frames are one byte each and decode to 160 samples: 210 KB is 70 minutes,
    // 33.6 M samples, just over the ceiling.
    let frames = MAX_DECODED_SAMPLES / 160 + 1;
    let mut amr = b"#!AMR\n".to_vec();
    amr.resize(amr.len() + frames, 0x7C);
    let got = decode(&amr);
    match got {
        Err(DecodeError::TooLong { max_s, got_s }) => {
            assert_eq!(max_s, (MAX_DECODED_SAMPLES / 8000) as u64);
            assert_eq!(got_s, (frames as u64 * 20).div_ceil(1000));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn errors_name_the_limit() {
    assert_eq!(
        DecodeError::SampleRate { rate: 400_000_000 }.to_string(),
        "unsupported sample rate: 400000000 Hz (8000 to 192000 Hz are accepted)"
    );
    assert_eq!(
        DecodeError::TooManyChannels {
            channels: 8,
            max: 2
        }
        .to_string(),
        "too many audio channels: 8 (at most 2)"
    );
}

#[test]
fn wav_declaring_65281_channels_is_refused_before_symphonia_reads_it() {
    // Found by the audio_decode fuzz target: symphonia's WAV reader computes the block alignment
    // as channels * bytes-per-sample in u16, which overflows (a panic with debug assertions).
    let got = decode_limited(&bomb("wav_65281ch_fuzz.wav"), 60);
    assert!(
        matches!(
            got,
            Err(DecodeError::TooManyChannels {
                channels: 65281,
                ..
            })
        ),
        "{got:?}"
    );
}
