//! Analysis of real clips: waveform shape, loudness against ffmpeg's ebur128, and gains that
//! bring quiet and loud messages to the same level.

mod common;

use common::{fixture, CLIPS};
use voicewall_audio::{analyse, decode, loudness_lufs, Analysis, PEAK_CEILING, TARGET_LUFS};

#[test]
fn waveform_has_100_buckets_in_range_for_every_format() {
    for &(name, _, _) in CLIPS {
        let a = analyse(&decode(&fixture(name)).unwrap());
        assert_eq!(a.waveform.len(), 100, "{name}");
        assert!(a.waveform.iter().all(|v| (0.0..=1.0).contains(v)), "{name}");
        // Normalised to the loudest bucket, and speech has pauses: not a flat line.
        let max = a.waveform.iter().cloned().fold(0.0, f32::max);
        let min = a.waveform.iter().cloned().fold(1.0, f32::min);
        assert!((max - 1.0).abs() < 1e-6, "{name}: max {max}");
        assert!(min < 0.5, "{name}: min {min}");
    }
}

#[test]
fn loudness_matches_ffmpeg_ebur128() {
    // Reference values from `ffmpeg -i FILE -af ebur128 -f null -` (see the fixtures README).
    for (name, reference) in [
        ("hello_quiet.ogg", -34.7),
        ("hello_loud.ogg", -12.6),
        ("hello.wav", -20.0),
    ] {
        let a = analyse(&decode(&fixture(name)).unwrap());
        assert!(
            (a.loudness_lufs - reference).abs() < 1.0,
            "{name}: {} vs ffmpeg {reference}",
            a.loudness_lufs
        );
    }
}

#[test]
fn quiet_and_loud_clips_end_up_within_1_5_db() {
    let measure = |name: &str| {
        let d = decode(&fixture(name)).unwrap();
        let a = analyse(&d);
        let gained: Vec<f32> = d.samples.iter().map(|s| s * a.gain).collect();
        (a.clone(), loudness_lufs(&gained, d.channels, d.sample_rate))
    };
    let (quiet, quiet_after) = measure("hello_quiet.ogg");
    let (loud, loud_after) = measure("hello_loud.ogg");
    assert!(
        quiet.loudness_lufs < loud.loudness_lufs - 15.0,
        "fixtures differ by > 15 LU"
    );
    assert!(quiet.gain > 5.0, "quiet gain {}", quiet.gain);
    assert!(loud.gain < 1.0, "loud gain {}", loud.gain);
    assert!(
        (quiet_after - loud_after).abs() <= 1.5,
        "after gain: {quiet_after} vs {loud_after}"
    );
    // Both land near the target, and neither clips.
    for (a, after) in [(&quiet, quiet_after), (&loud, loud_after)] {
        assert!((after - TARGET_LUFS).abs() <= 1.5, "{after}");
        assert!(a.peak * a.gain <= PEAK_CEILING + 1e-4);
    }
}

#[test]
fn analysis_round_trips_through_json() {
    let a = analyse(&decode(&fixture("hello.amr")).unwrap());
    assert!((2900..=3100).contains(&a.duration_ms));
    assert!(a.peak > 0.1 && a.peak <= 1.5);
    let json = serde_json::to_string(&a).unwrap();
    let back: Analysis = serde_json::from_str(&json).unwrap();
    assert_eq!(a, back);
    assert!(json.contains("\"loudness_lufs\""));
}
