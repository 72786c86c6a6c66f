//! What the wall shows and the player needs before playing a message: duration, a 100-bucket
//! waveform, integrated loudness, sample peak, and the gain that brings the message to the
//! venue's target loudness without clipping.
//!
//! Loudness is ITU-R BS.1770-4 integrated loudness (LUFS): K-weighting (high-shelf + high-pass
//! biquads, coefficients derived for any sample rate as libebur128 does), 400 ms blocks with 75 %
//! overlap, an absolute gate at -70 LUFS and a relative gate 10 LU below the ungated mean. A clip
//! shorter than one block is measured as a single block. Silence reads as the -70 LUFS floor
//! rather than minus infinity, so the value always serialises to JSON.

use serde::{Deserialize, Serialize};

use crate::Decoded;

/// Loudness every message is brought to before playing.
pub const TARGET_LUFS: f32 = -16.0;
/// The gain never pushes the sample peak above this.
pub const PEAK_CEILING: f32 = 0.95;
/// The gain never exceeds +20 dB: past that we would mostly be amplifying background noise.
pub const MAX_GAIN: f32 = 10.0;
/// Loudness reported for silence (the BS.1770 absolute gate).
pub const SILENCE_LUFS: f32 = -70.0;
/// Number of waveform buckets.
pub const WAVEFORM_BUCKETS: usize = 100;

/// Derived audio data, stored with the message and sent to the wall.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Analysis {
    pub duration_ms: u64,
    /// 100 buckets, each the peak |sample| of its stretch, scaled so the loudest bucket is 1.0
    /// (all zeros for silence): the wall draws the shape, the gain takes care of the level.
    pub waveform: Vec<f32>,
    /// BS.1770 integrated loudness in LUFS, floored at -70.
    pub loudness_lufs: f32,
    /// Sample peak, 0..=1 (decoders may overshoot slightly; not clamped).
    pub peak: f32,
    /// Linear gain to reach [`TARGET_LUFS`], limited so `peak * gain <= PEAK_CEILING` and
    /// `gain <= MAX_GAIN`; 1.0 for silence.
    pub gain: f32,
}

/// Analyses a decoded clip. Cost is linear and small (a few ms for a minute of audio).
pub fn analyse(d: &Decoded) -> Analysis {
    let peak = peak(&d.samples);
    let loudness_lufs = loudness_lufs(&d.samples, d.channels, d.sample_rate);
    Analysis {
        duration_ms: d.duration_ms(),
        waveform: waveform(&d.samples, d.channels, WAVEFORM_BUCKETS),
        loudness_lufs,
        peak,
        gain: gain_for(loudness_lufs, peak),
    }
}

/// The sample peak: the largest |sample| in the clip.
pub fn peak(samples: &[f32]) -> f32 {
    samples.iter().fold(0.0f32, |m, s| m.max(s.abs()))
}

/// The playback gain for a clip of the given loudness and peak (see [`Analysis::gain`]).
pub fn gain_for(loudness_lufs: f32, peak: f32) -> f32 {
    if loudness_lufs <= SILENCE_LUFS || peak <= 0.0 {
        return 1.0;
    }
    let wanted = 10f32.powf((TARGET_LUFS - loudness_lufs) / 20.0);
    wanted.min(PEAK_CEILING / peak).min(MAX_GAIN)
}

/// `buckets` peak values over the clip (all channels), normalised to the loudest bucket.
pub fn waveform(samples: &[f32], channels: u16, buckets: usize) -> Vec<f32> {
    let ch = usize::from(channels.max(1));
    let frames = samples.len() / ch;
    let mut out = vec![0.0f32; buckets];
    if frames == 0 {
        return out;
    }
    for (i, slot) in out.iter_mut().enumerate() {
        let start = i * frames / buckets;
        // Short clips: a bucket covers at least the frame it starts at.
        let end = ((i + 1) * frames / buckets).max(start + 1).min(frames);
        *slot = peak(&samples[start * ch..end * ch]);
    }
    let max = out.iter().fold(0.0f32, |m, &v| m.max(v));
    if max > 0.0 {
        for v in &mut out {
            *v = (*v / max).clamp(0.0, 1.0);
        }
    }
    out
}

/// A direct-form-I biquad in f64 (the K-weighting poles sit close to the unit circle at low
/// sample rates; f32 state would drift).
#[derive(Clone, Copy)]
struct Biquad {
    b: [f64; 3],
    a: [f64; 3],
    x: [f64; 2],
    y: [f64; 2],
}

impl Biquad {
    fn process(&mut self, x0: f64) -> f64 {
        let y0 = self.b[0] * x0 + self.b[1] * self.x[0] + self.b[2] * self.x[1]
            - self.a[1] * self.y[0]
            - self.a[2] * self.y[1];
        self.x = [x0, self.x[0]];
        self.y = [y0, self.y[0]];
        y0
    }
}

/// The two K-weighting stages for `rate` (BS.1770-4, as derived in libebur128).
fn k_weighting(rate: f64) -> [Biquad; 2] {
    use std::f64::consts::PI;
    // Stage 1: high shelf, +4 dB above ~1.7 kHz (head effects).
    let f0 = 1_681.974_450_955_533;
    let g = 3.999_843_853_973_347;
    let q = 0.707_175_236_955_419_6;
    let k = (PI * f0 / rate).tan();
    let vh = 10f64.powf(g / 20.0);
    let vb = vh.powf(0.499_666_774_154_541_6);
    let a0 = 1.0 + k / q + k * k;
    let shelf = Biquad {
        b: [
            (vh + vb * k / q + k * k) / a0,
            2.0 * (k * k - vh) / a0,
            (vh - vb * k / q + k * k) / a0,
        ],
        a: [1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0],
        x: [0.0; 2],
        y: [0.0; 2],
    };
    // Stage 2: high pass at ~38 Hz (RLB weighting).
    let f0 = 38.135_470_876_024_44;
    let q = 0.500_327_037_323_877_3;
    let k = (PI * f0 / rate).tan();
    let a0 = 1.0 + k / q + k * k;
    let high_pass = Biquad {
        b: [1.0, -2.0, 1.0],
        a: [1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0],
        x: [0.0; 2],
        y: [0.0; 2],
    };
    [shelf, high_pass]
}

/// BS.1770-4 integrated loudness of interleaved samples, in LUFS (floored at -70).
pub fn loudness_lufs(samples: &[f32], channels: u16, sample_rate: u32) -> f32 {
    let ch = usize::from(channels.max(1));
    let frames = samples.len() / ch;
    if frames == 0 || sample_rate == 0 {
        return SILENCE_LUFS;
    }
    // K-weighted power per frame, summed over channels (weight 1.0 for the front channels,
    // which is all a voice message has).
    let mut filters = vec![k_weighting(f64::from(sample_rate)); ch];
    let mut power = Vec::with_capacity(frames);
    for (i, frame) in samples.chunks_exact(ch).enumerate() {
        // A tiny signal at Nyquist keeps the filter state out of subnormal numbers during
        // digital silence (which made this 4x slower on real voice notes); its power, 1e-40,
        // is far below the -70 LUFS gate.
        let anti_denormal = if i & 1 == 0 { 1e-20 } else { -1e-20 };
        let mut p = 0.0f64;
        for (s, f) in frame.iter().zip(filters.iter_mut()) {
            let shelved = f[0].process(f64::from(*s) + anti_denormal);
            let y = f[1].process(shelved);
            p += y * y;
        }
        power.push(p);
    }
    // Prefix sums make every 400 ms block an O(1) mean.
    let mut prefix = Vec::with_capacity(frames + 1);
    prefix.push(0.0f64);
    let mut acc = 0.0;
    for p in &power {
        acc += p;
        prefix.push(acc);
    }
    let block = (f64::from(sample_rate) * 0.4).round() as usize;
    let step = (f64::from(sample_rate) * 0.1).round() as usize;
    let blocks: Vec<f64> = if frames <= block {
        vec![acc / frames as f64]
    } else {
        (0..=(frames - block) / step.max(1))
            .map(|j| {
                let s = j * step;
                (prefix[s + block] - prefix[s]) / block as f64
            })
            .collect()
    };
    let lufs = |z: f64| -0.691 + 10.0 * z.log10();
    let mean = |zs: &[f64]| zs.iter().sum::<f64>() / zs.len() as f64;
    let above_abs: Vec<f64> = blocks
        .into_iter()
        .filter(|&z| z > 0.0 && lufs(z) > f64::from(SILENCE_LUFS))
        .collect();
    if above_abs.is_empty() {
        return SILENCE_LUFS;
    }
    let relative_gate = lufs(mean(&above_abs)) - 10.0;
    let gated: Vec<f64> = above_abs
        .iter()
        .copied()
        .filter(|&z| lufs(z) > relative_gate)
        .collect();
    let integrated = lufs(mean(&gated)) as f32;
    integrated.max(SILENCE_LUFS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, amp: f32, rate: u32, secs: f32) -> Vec<f32> {
        let n = (rate as f32 * secs) as usize;
        (0..n)
            .map(|i| amp * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin())
            .collect()
    }

    #[test]
    fn full_scale_1khz_sine_reads_minus_3_lufs() {
        // BS.1770's calibration point: a 0 dBFS 1 kHz sine in one channel reads -3.01 LUFS.
        for rate in [8000, 16000, 44100, 48000] {
            let l = loudness_lufs(&sine(1000.0, 1.0, rate, 3.0), 1, rate);
            assert!((l + 3.01).abs() < 0.15, "rate {rate}: {l}");
        }
    }

    #[test]
    fn loudness_tracks_level() {
        let a = loudness_lufs(&sine(1000.0, 0.1, 48000, 2.0), 1, 48000);
        assert!((a + 23.0).abs() < 0.2, "{a}");
        let g = gain_for(a, 0.1);
        // -23 LUFS -> -16 LUFS is +7 dB.
        assert!((20.0 * g.log10() - 7.0).abs() < 0.2, "{g}");
    }

    #[test]
    fn silence_is_floor_and_unity_gain() {
        let z = vec![0.0f32; 16000];
        assert_eq!(loudness_lufs(&z, 1, 16000), SILENCE_LUFS);
        assert_eq!(gain_for(SILENCE_LUFS, 0.0), 1.0);
        assert!(waveform(&z, 1, 100).iter().all(|&v| v == 0.0));
    }

    #[test]
    fn gain_respects_peak_ceiling_and_max() {
        // Loud in LUFS terms but peaky: limited by the peak.
        assert!((gain_for(-30.0, 0.5) - 1.9).abs() < 1e-4);
        // Very quiet: limited by MAX_GAIN.
        assert_eq!(gain_for(-60.0, 0.01), MAX_GAIN);
        // Too loud: attenuated.
        assert!(gain_for(-8.0, 1.0) < 0.5);
    }

    #[test]
    fn waveform_has_shape_and_range() {
        // Silence in the first half, a tone in the second half.
        let mut s = vec![0.0f32; 8000];
        s.extend(sine(440.0, 0.5, 16000, 0.5));
        let w = waveform(&s, 1, 100);
        assert_eq!(w.len(), 100);
        assert!(w[..49].iter().all(|&v| v == 0.0));
        assert!(w[51..].iter().all(|&v| v > 0.8 && v <= 1.0));
        // Fewer samples than buckets still gives 100 buckets.
        assert_eq!(waveform(&[0.5, -0.25], 1, 100).len(), 100);
    }
}
