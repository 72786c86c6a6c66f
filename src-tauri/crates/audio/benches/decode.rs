//! Decode / analysis / playback-latency figures. Prints, never fails on timing.
//!
//! Run: `cargo bench -p voicewall-audio --bench decode`
//!
//! 60 s inputs are built at bench time from the 3 s fixtures, without ffmpeg:
//! - AMR-NB: the fixture's frames repeated 20x behind one `#!AMR\n` header (a true 60 s file);
//! - WebM/Opus: the unfinalised fixture's clusters repeated 20x (a true 60 s live-style stream);
//! - MP3: the fixture's MPEG frames (ID3 tag and Xing/Info frame removed) repeated 20x;
//! - WAV: the fixture's PCM repeated 20x under one header;
//! - Ogg/Opus and MP4/AAC cannot be concatenated without re-muxing, so those rows decode the 3 s
//!   fixture 20 times (60 s of audio in total, 20 container set-ups instead of one).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use voicewall_audio::{decode, loudness_lufs, waveform, Decoded, Output, OutputKind};

const REPEATS: usize = 20;

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../tests/fixtures/audio")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn long_amr() -> Vec<u8> {
    let one = fixture("hello.amr");
    let mut out = one[..6].to_vec();
    for _ in 0..REPEATS {
        out.extend_from_slice(&one[6..]);
    }
    out
}

fn long_webm() -> Vec<u8> {
    let one = fixture("hello_unfinalised.webm");
    let at = one
        .windows(4)
        .position(|w| w == [0x1F, 0x43, 0xB6, 0x75])
        .expect("cluster");
    let mut out = one[..at].to_vec();
    for _ in 0..REPEATS {
        out.extend_from_slice(&one[at..]);
    }
    out
}

fn long_mp3() -> Vec<u8> {
    let one = fixture("hello.mp3");
    // Skip the ID3v2 tag (syncsafe size) and the first frame if it is a Xing/Info header.
    let mut start = 0;
    if one.starts_with(b"ID3") {
        let size = one[6..10]
            .iter()
            .fold(0usize, |a, b| (a << 7) | usize::from(b & 0x7F));
        start = 10 + size;
    }
    let head = &one[start..start + 64];
    if head.windows(4).any(|w| w == b"Xing" || w == b"Info") {
        // Next sync word after the header frame.
        start += 4 + one[start + 4..]
            .windows(2)
            .position(|w| w[0] == 0xFF && w[1] & 0xE0 == 0xE0)
            .expect("second frame");
    }
    one[start..].repeat(REPEATS)
}

fn long_wav() -> Vec<u8> {
    let one = fixture("hello.wav");
    let data = &one[44..];
    let mut out = one[..44].to_vec();
    let len = (data.len() * REPEATS) as u32;
    out[4..8].copy_from_slice(&(36 + len).to_le_bytes());
    out[40..44].copy_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&data.repeat(REPEATS));
    out
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    println!("voicewall-audio bench (release profile; each figure is the best of 3 runs)");
    let inputs: Vec<(&str, Vec<u8>, usize)> = vec![
        ("amr-nb  (one 60 s file)", long_amr(), 1),
        ("webm    (one 60 s live stream)", long_webm(), 1),
        ("mp3     (one 60 s frame stream)", long_mp3(), 1),
        ("wav     (one 60 s file)", long_wav(), 1),
        ("ogg     (3 s file x20)", fixture("hello.ogg"), REPEATS),
        ("m4a     (3 s file x20)", fixture("hello.m4a"), REPEATS),
        (
            "telegram ogg (3.4 s file x20)",
            fixture("voice_ptb_telegram.ogg"),
            REPEATS,
        ),
    ];
    let mut sixty: Option<Decoded> = None;
    for (label, bytes, times) in &inputs {
        // Best of 3 for each figure: the machine is shared, and the minimum is the cost.
        let mut decode_t = Duration::MAX;
        let mut audio_ms = 0;
        let mut last = None;
        for _ in 0..3 {
            let t = Instant::now();
            audio_ms = 0;
            for _ in 0..*times {
                let d = decode(bytes).expect("decodes");
                audio_ms += d.duration_ms();
                last = Some(d);
            }
            decode_t = decode_t.min(t.elapsed());
        }
        let d = last.expect("decoded");
        // Analysis on one buffer holding all the audio decoded (60 s).
        let pcm = Decoded {
            samples: d.samples.repeat(*times),
            ..d.clone()
        };
        let (mut waveform_t, mut loudness_t) = (Duration::MAX, Duration::MAX);
        let (mut w, mut l) = (Vec::new(), 0.0);
        for _ in 0..3 {
            let t = Instant::now();
            w = waveform(&pcm.samples, pcm.channels, 100);
            waveform_t = waveform_t.min(t.elapsed());
            let t = Instant::now();
            l = loudness_lufs(&pcm.samples, pcm.channels, pcm.sample_rate);
            loudness_t = loudness_t.min(t.elapsed());
        }
        println!(
            "decode {label:<32} audio={:>6.1} s  bytes={:>7}  decode={:>7.2} ms  waveform={:>6.2} ms  loudness={:>6.2} ms  ({} Hz, {} ch, {:.1} LUFS, {} buckets)",
            audio_ms as f64 / 1000.0,
            bytes.len(),
            ms(decode_t),
            ms(waveform_t),
            ms(loudness_t),
            pcm.sample_rate,
            pcm.channels,
            l,
            w.len(),
        );
        if sixty.is_none() && label.starts_with("webm") {
            sixty = Some(pcm);
        }
    }

    // Playback latency: Output::play on the null sink -> first sample pulled by the sink.
    let clip = Arc::new(sixty.expect("webm decoded"));
    let output = Output::open(&OutputKind::Null).expect("null output");
    let mut lat = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let playing = output.play(clip.clone(), 1.0);
        while playing.first_sample_at().is_none() && t.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_micros(200));
        }
        let first = playing.first_sample_at().expect("first sample pulled");
        lat.push(ms(first.duration_since(t)));
        std::thread::sleep(Duration::from_millis(50));
        output.stop();
        playing.wait(Duration::from_secs(2));
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    println!(
        "play->first sample (null output, 48 kHz stereo, 10 ms pull ticks, {} runs): min={:.2} ms  median={:.2} ms  max={:.2} ms",
        lat.len(),
        lat[0],
        lat[lat.len() / 2],
        lat[lat.len() - 1]
    );
    match Output::open(&OutputKind::Default) {
        Ok(o) => println!("default output: {}", o.describe()),
        Err(e) => println!("default output: {e}"),
    }
}
