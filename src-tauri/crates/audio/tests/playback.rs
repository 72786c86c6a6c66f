//! Playback through rodio: samples reach the sink (device-less player, pulled by the test), the
//! null output keeps real time, stop fades, pause holds, missing devices are reported.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{fixture, rms};
use voicewall_audio::{decode, Decoded, Format, Output, OutputError, OutputKind};

fn tone(secs: f32, rate: u32) -> Decoded {
    let n = (secs * rate as f32) as usize;
    Decoded {
        format: Format::Wav,
        sample_rate: rate,
        channels: 1,
        samples: (0..n).map(|i| 0.5 * (i as f32 * 0.05).sin()).collect(),
    }
}

/// Pulls from the tap until the clip reports finished (bounded), returning the samples pulled.
fn pull_until_finished(
    tap: &mut voicewall_audio::Tap,
    playing: &voicewall_audio::Playing,
    cap: usize,
) -> Vec<f32> {
    let mut out = Vec::new();
    while !playing.is_finished() && out.len() < cap {
        out.push(tap.next().expect("the player's queue never ends"));
    }
    out
}

#[test]
fn decoded_samples_reach_the_sink() {
    let clip = Arc::new(decode(&fixture("hello.wav")).unwrap());
    // A sink in the clip's own format (8 kHz mono), so no resampling blurs the count.
    let (output, mut tap) = Output::detached(1, 8000);
    let playing = output.play(clip.clone(), 0.5);
    assert_eq!(playing.duration_ms(), clip.duration_ms());
    let pulled = pull_until_finished(&mut tap, &playing, clip.samples.len() * 2);
    assert!(
        playing.is_finished(),
        "clip did not finish within twice its length"
    );
    assert!(playing.first_sample_at().is_some());
    // Every sample went through.
    let expected = clip.samples.len() as f64;
    let got = pulled.len() as f64;
    assert!(
        (got - expected).abs() / expected < 0.02,
        "pulled {got}, clip has {expected}"
    );
    // At half gain: the energy is the clip's, 6 dB down.
    let ratio = rms(&pulled) / rms(&clip.samples);
    assert!((ratio - 0.5).abs() < 0.03, "level ratio {ratio}");
    assert_eq!(playing.position_ms(), clip.duration_ms());
}

#[test]
fn a_stereo_48k_clip_keeps_its_channels_apart() {
    let mono = tone(0.5, 48_000);
    let stereo = Decoded {
        channels: 2,
        samples: mono.samples.iter().flat_map(|s| [*s, -*s]).collect(),
        ..mono
    };
    let n = stereo.samples.len();
    let (output, mut tap) = Output::detached(2, 48_000);
    let playing = output.play(Arc::new(stereo), 1.0);
    let first = tap.next().unwrap();
    assert_eq!((tap.channels(), tap.sample_rate()), (2, 48_000));
    let mut pulled = vec![first];
    pulled.extend(pull_until_finished(&mut tap, &playing, n * 2));
    assert!(
        (pulled.len() as i64 - n as i64).abs() < 100,
        "{} vs {n}",
        pulled.len()
    );
    // Left and right stayed in their places.
    assert!(pulled
        .chunks_exact(2)
        .take(1000)
        .all(|f| (f[0] + f[1]).abs() < 1e-6));
}

#[test]
fn stop_fades_out_over_about_150_ms() {
    let clip = tone(2.0, 8000);
    let (output, mut tap) = Output::detached(1, 8000);
    let playing = output.play(Arc::new(clip), 1.0);
    let before: Vec<f32> = (&mut tap).take(4000).collect();
    assert!(rms(&before) > 0.3);
    output.stop();
    let after = pull_until_finished(&mut tap, &playing, 16_000);
    assert!(playing.is_finished());
    // 150 ms at 8 kHz = 1200 samples of fade instead of 12,000 more of tone.
    assert!(
        (1100..=1300).contains(&after.len()),
        "{} samples after stop",
        after.len()
    );
    let head = rms(&after[..100]);
    let tail = rms(&after[after.len() - 100..]);
    assert!(tail < head * 0.2, "fade: head {head} tail {tail}");
}

#[test]
fn pause_holds_position_and_resume_continues() {
    let clip = tone(1.0, 8000);
    let (output, mut tap) = Output::detached(1, 8000);
    let playing = output.play(Arc::new(clip), 1.0);
    (&mut tap).take(2000).for_each(drop);
    output.pause();
    assert!(output.is_paused());
    // The pause is picked up within rodio's 5 ms control period; then silence, no progress.
    (&mut tap).take(200).for_each(drop);
    let at_pause = playing.position_ms();
    let during: Vec<f32> = (&mut tap).take(4000).collect();
    assert!(rms(&during) < 1e-6, "paused output is not silent");
    assert_eq!(playing.position_ms(), at_pause);
    output.resume();
    assert!(!output.is_paused());
    let rest = pull_until_finished(&mut tap, &playing, 20_000);
    assert!(playing.is_finished());
    assert!(rest.len() > 5000, "{}", rest.len());
}

#[test]
fn a_new_message_replaces_the_playing_one() {
    let (output, mut tap) = Output::detached(1, 8000);
    let first = output.play(Arc::new(tone(2.0, 8000)), 1.0);
    (&mut tap).take(800).for_each(drop);
    let second = output.play(Arc::new(tone(0.5, 8000)), 1.0);
    let pulled = pull_until_finished(&mut tap, &second, 20_000);
    assert!(first.is_finished());
    // A 30 ms fade of the first (240 samples) plus the whole second (4000).
    assert!((4000..=4600).contains(&pulled.len()), "{}", pulled.len());
}

#[test]
fn null_output_plays_in_real_time() {
    let output = Output::open(&OutputKind::Null).expect("null output always opens");
    assert!(output.describe().starts_with("null"));
    let clip = Arc::new(tone(1.0, 16_000));
    let started = Instant::now();
    let playing = output.play(clip, 1.0);
    assert!(
        playing.wait(Duration::from_secs(5)),
        "1 s clip not finished after 5 s"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "finished in {took:?}: not real time"
    );
    assert!(took < Duration::from_millis(2000), "took {took:?}");
    let first = playing.first_sample_at().expect("first sample pulled");
    assert!(first.duration_since(started) < Duration::from_millis(100));
    assert_eq!(playing.position_ms(), 1000);
}

#[test]
fn null_output_is_shareable_across_threads() {
    let output = Arc::new(Output::open(&OutputKind::Null).unwrap());
    output.set_volume(0.5);
    let o = output.clone();
    let playing = std::thread::spawn(move || o.play(Arc::new(tone(0.2, 8000)), 1.0))
        .join()
        .unwrap();
    assert!(playing.wait(Duration::from_secs(3)));
    assert_eq!(output.volume(), 0.5);
}

#[test]
fn missing_devices_are_reported_as_no_device() {
    match Output::open(&OutputKind::Device("voicewall-no-such-device".into())) {
        Err(OutputError::NoDevice(msg)) => {
            assert!(
                msg.contains("voicewall-no-such-device") || msg.contains("cannot list"),
                "{msg}"
            );
        }
        other => panic!("expected NoDevice, got {other:?}"),
    }
    // The default device may or may not exist where tests run; either way no panic, and a
    // failure is NoDevice with a message for the operator.
    match Output::open(&OutputKind::Default) {
        Ok(output) => assert!(!output.describe().is_empty()),
        Err(OutputError::NoDevice(msg)) => assert!(!msg.is_empty()),
        Err(e) => panic!("unexpected error kind: {e}"),
    }
}

#[test]
fn a_clip_is_converted_to_the_sink_format() {
    // 8 kHz mono message into a 48 kHz stereo sink, as on a real device.
    let clip = Arc::new(decode(&fixture("hello.amr")).unwrap());
    let (output, mut tap) = Output::detached(2, 48_000);
    let playing = output.play(clip.clone(), 1.0);
    let pulled = pull_until_finished(&mut tap, &playing, clip.samples.len() * 20);
    assert!(playing.is_finished());
    let expected = clip.duration_ms() as f64 / 1000.0 * 48_000.0 * 2.0;
    let got = pulled.len() as f64;
    assert!(
        (got - expected).abs() / expected < 0.02,
        "pulled {got}, expected {expected}"
    );
    let ratio = rms(&pulled) / rms(&clip.samples);
    assert!((ratio - 1.0).abs() < 0.1, "level ratio {ratio}");
}
