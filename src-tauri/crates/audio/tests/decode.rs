//! Decoding real files of every supported format, and refusing bad ones with the right error.

mod common;

use common::{fixture, garbage, rms, CLIPS};
use voicewall_audio::{decode, decode_limited, probe_report, sniff, DecodeError, Format};

#[test]
fn every_fixture_sniffs_and_decodes_to_its_true_duration() {
    for &(name, format, truth_ms) in CLIPS {
        let bytes = fixture(name);
        assert_eq!(sniff(&bytes), Some(format), "{name}: sniff");
        let d = decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(d.format, format, "{name}");
        let ms = d.duration_ms() as f64;
        let err = (ms - truth_ms as f64).abs() / truth_ms as f64;
        assert!(err <= 0.10, "{name}: decoded {ms} ms, truth {truth_ms} ms");
        assert!(
            d.channels >= 1 && d.sample_rate >= 8000,
            "{name}: {} ch {} Hz",
            d.channels,
            d.sample_rate
        );
        // Speech, not silence: espeak at these levels is around 0.05..0.2 RMS.
        let level = rms(&d.samples);
        assert!(level > 0.02, "{name}: rms {level}");
        assert!(
            d.samples.iter().all(|s| s.is_finite() && s.abs() <= 2.0),
            "{name}: samples out of range"
        );
    }
}

#[test]
fn decoders_agree_on_the_signal() {
    // Every lossy copy of the same speech has about the same level as the WAV it came from.
    let reference = rms(&decode(&fixture("hello.wav")).unwrap().mono());
    for name in [
        "hello.amr",
        "hello.ogg",
        "hello.webm",
        "hello.m4a",
        "hello.mp3",
    ] {
        let level = rms(&decode(&fixture(name)).unwrap().mono());
        let db = 20.0 * (level / reference).log10();
        assert!(db.abs() < 2.0, "{name}: {db:.2} dB from the WAV");
    }
}

#[test]
fn sample_rates_are_what_the_codecs_produce() {
    assert_eq!(decode(&fixture("hello.amr")).unwrap().sample_rate, 8000);
    // libopus decodes at the rate the demuxer announces (the OpusHead input rate in Ogg).
    for name in ["hello.ogg", "hello.webm", "voice_ptb_telegram.ogg"] {
        let rate = decode(&fixture(name)).unwrap().sample_rate;
        assert!([16000, 48000].contains(&rate), "{name}: {rate}");
    }
    assert_eq!(decode(&fixture("hello.wav")).unwrap().sample_rate, 8000);
    assert_eq!(decode(&fixture("hello.m4a")).unwrap().sample_rate, 16000);
    assert_eq!(decode(&fixture("hello.mp3")).unwrap().sample_rate, 16000);
}

#[test]
fn empty_input_is_not_audio() {
    assert!(matches!(decode(&[]), Err(DecodeError::NotAudio(m)) if m.contains("empty")));
}

#[test]
fn text_renamed_mp3_is_refused_by_sniff() {
    let text = b"Dear venue,\nthis is not an MP3, just a text file someone renamed.\n".repeat(20);
    assert_eq!(sniff(&text), None);
    assert!(matches!(decode(&text), Err(DecodeError::NotAudio(m)) if m.contains("text")));
}

#[test]
fn random_bytes_are_not_audio() {
    assert!(matches!(
        decode(&garbage(10_000, 7)),
        Err(DecodeError::NotAudio(_))
    ));
}

#[test]
fn lying_headers_are_corrupt_not_panics() {
    // Each starts like a real file (so sniff says yes) and continues with garbage.
    let cases: &[(&str, usize)] = &[
        ("hello.wav", 12),  // RIFF....WAVE, then no fmt chunk
        ("hello.ogg", 90),  // Ogg page with OpusHead, then no more pages
        ("hello.amr", 6),   // #!AMR\n, then invalid frame headers
        ("hello.m4a", 32),  // ftyp box, then no moov
        ("hello.webm", 48), // EBML header, then garbage where the segment should be
    ];
    for &(name, keep) in cases {
        let mut bytes = fixture(name)[..keep].to_vec();
        bytes.extend(garbage(20_000, keep as u64));
        assert!(
            sniff(&bytes).is_some() || name == "hello.webm",
            "{name}: sniff"
        );
        match decode(&bytes) {
            Err(DecodeError::Corrupt(msg)) => assert!(!msg.is_empty()),
            Err(DecodeError::NotAudio(_)) if name == "hello.webm" => {}
            other => panic!("{name} header + garbage: expected Corrupt, got {other:?}"),
        }
    }
}

#[test]
fn truncated_files_decode_what_is_there() {
    // A cut-off upload plays its first part; only MP4 (whose index is at the end) cannot.
    for &(name, _, truth_ms) in CLIPS {
        let bytes = fixture(name);
        let cut = &bytes[..bytes.len() * 6 / 10];
        match decode(cut) {
            Ok(d) => {
                let ms = d.duration_ms();
                // Ogg pages from ffmpeg hold up to 1 s, so a cut loses up to a page.
                assert!(
                    ms > truth_ms / 4 && ms < truth_ms * 9 / 10,
                    "{name}: {ms} ms after truncation"
                );
                assert!(rms(&d.samples) > 0.01, "{name}: silent after truncation");
            }
            Err(DecodeError::Corrupt(msg)) if name.ends_with(".m4a") => {
                assert!(msg.contains("mp4"), "{msg}");
            }
            Err(e) => panic!("{name} truncated: {e}"),
        }
    }
}

#[test]
fn damage_in_the_middle_is_skipped() {
    for name in ["hello.mp3", "hello.amr", "hello.ogg"] {
        let mut bytes = fixture(name);
        let mid = bytes.len() / 2;
        for b in &mut bytes[mid..mid + 40] {
            *b ^= 0x5A;
        }
        let d = decode(&bytes).unwrap_or_else(|e| panic!("{name} with damage: {e}"));
        // At most the damaged stretch is lost: for Ogg that is the whole page (<= 1 s here).
        assert!(d.duration_ms() >= 1900, "{name}: {} ms", d.duration_ms());
        assert!(rms(&d.samples) > 0.02, "{name}");
    }
}

#[test]
fn unfinalised_webm_has_the_same_audio_as_the_finalised_one() {
    let fin = decode(&fixture("hello.webm")).unwrap();
    for name in ["hello_unfinalised.webm", "hello_mediarecorder.webm"] {
        let d = decode(&fixture(name)).unwrap();
        assert_eq!(d.samples.len(), fin.samples.len(), "{name}");
    }
}

/// 150 s of AMR-NB: the fixture's frames repeated.
fn long_amr(repeats: usize) -> Vec<u8> {
    let one = fixture("hello.amr");
    let mut out = one[..6].to_vec();
    for _ in 0..repeats {
        out.extend_from_slice(&one[6..]);
    }
    out
}

/// A valid 8 kHz mono WAV of `secs` seconds of a quiet tone.
fn long_wav(secs: u32) -> Vec<u8> {
    let n = 8000 * secs;
    let mut out = Vec::with_capacity(44 + 2 * n as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + 2 * n).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&16000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(2 * n).to_le_bytes());
    for i in 0..n {
        let s = ((i as f32 * 0.3).sin() * 3000.0) as i16;
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

#[test]
fn decode_limited_rejects_long_amr_from_its_headers() {
    let bytes = long_amr(50); // 50 x 3 s = 150 s
    let started = std::time::Instant::now();
    match decode_limited(&bytes, 60) {
        Err(DecodeError::TooLong { max_s, got_s }) => {
            assert_eq!(max_s, 60);
            assert!((148..=152).contains(&got_s), "got_s {got_s}");
        }
        other => panic!("expected TooLong, got {other:?}"),
    }
    // Refused from frame headers: no decoding (full decode of 150 s takes far longer in debug).
    assert!(started.elapsed() < std::time::Duration::from_millis(500));
    // Within the limit it decodes normally.
    assert_eq!(
        decode_limited(&long_amr(10), 60).unwrap().duration_ms(),
        30_000
    );
}

#[test]
fn decode_limited_rejects_long_wav_and_accepts_short() {
    match decode_limited(&long_wav(150), 60) {
        Err(DecodeError::TooLong { max_s: 60, got_s }) => assert_eq!(got_s, 150),
        other => panic!("expected TooLong, got {other:?}"),
    }
    assert_eq!(
        decode_limited(&long_wav(60), 60).unwrap().duration_ms(),
        60_000
    );
}

/// A long unfinalised (MediaRecorder-style) WebM: the fixture's clusters repeated. Nothing in
/// it states the total duration.
fn long_live_webm(repeats: usize) -> Vec<u8> {
    let one = fixture("hello_unfinalised.webm");
    let cluster_id = [0x1F, 0x43, 0xB6, 0x75];
    let first_cluster = one
        .windows(4)
        .position(|w| w == cluster_id)
        .expect("a cluster");
    let mut out = one[..first_cluster].to_vec();
    for _ in 0..repeats {
        out.extend_from_slice(&one[first_cluster..]);
    }
    out
}

#[test]
fn decode_limited_stops_a_stream_without_a_stated_length() {
    let bytes = long_live_webm(30); // ~90 s
    let full = decode(&bytes).unwrap();
    assert!(full.duration_ms() > 85_000, "{} ms", full.duration_ms());
    match decode_limited(&bytes, 20) {
        Err(DecodeError::TooLong { max_s: 20, got_s }) => {
            // The rest was demuxed to report the true length.
            assert!((85..=95).contains(&got_s), "got_s {got_s}");
        }
        other => panic!("expected TooLong, got {other:?}"),
    }
    assert!(decode_limited(&bytes, 120).is_ok());
}

#[test]
fn probe_report_is_one_readable_line() {
    let line = probe_report(&fixture("voice_ptb_telegram.ogg")).unwrap();
    assert!(
        line.starts_with("container=ogg codec=opus sample_rate=48000 channels=1 duration=3.4"),
        "{line}"
    );
    assert!(line.contains(" LUFS peak="), "{line}");
    assert!(!line.contains('\n'));
    let amr = probe_report(&fixture("hello.amr")).unwrap();
    assert!(
        amr.starts_with("container=amr codec=amr-nb sample_rate=8000 channels=1 duration=3.0"),
        "{amr}"
    );
    assert!(probe_report(b"nope").is_err());
}

#[test]
fn formats_report_container_codec_and_mime() {
    let d = decode(&fixture("hello.m4a")).unwrap();
    assert_eq!(
        (d.format.container(), d.format.codec(), d.format.mime()),
        ("mp4", "aac", "audio/mp4")
    );
    assert_eq!(Format::AmrNb.mime(), "audio/amr");
}
