//! Voicewall audio: format sniffing, decoding, analysis and native playback.
//!
//! The only crate of the workspace that links codec and sound libraries:
//! - [`sniff`] tells the format from magic numbers (never the file name);
//! - [`decode`] / [`decode_limited`] turn AMR-NB (WeChat), Ogg/Opus (Telegram, WhatsApp),
//!   WebM/Opus (browsers), MP4/AAC, MP3, WAV and Ogg/Vorbis into interleaved f32 PCM —
//!   AMR-NB through Debian's libopencore-amrnb, Opus through Debian's libopus, the rest with
//!   symphonia (pure Rust);
//! - [`analyse`] computes duration, a 100-bucket waveform, BS.1770 loudness, peak and the gain to
//!   reach -16 LUFS;
//! - [`Output`] plays a decoded message through rodio on a device, or on a real-time null sink; a
//!   device that goes away is reopened when it is back ([`DeviceHealth`]).
//!
//! Decoding is bounded for hostile input: sample rates outside [`MIN_SAMPLE_RATE`]..=
//! [`MAX_SAMPLE_RATE`] and more than [`MAX_CHANNELS`] channels are refused, decoding stops at a
//! budget of samples actually produced (the duration limit at the stream's real rate, never more
//! than [`MAX_DECODED_SAMPLES`]), and at most one decode per core runs at a time ([`DecodeSlots`]).

mod amr;
mod analysis;
mod decode;
mod device;
mod output;
mod slots;
mod sniff;

pub use analysis::{
    analyse, gain_for, loudness_lufs, peak, waveform, Analysis, MAX_GAIN, PEAK_CEILING,
    SILENCE_LUFS, TARGET_LUFS, WAVEFORM_BUCKETS,
};
pub use device::DeviceHealth;
pub use output::{list_devices, Output, OutputError, OutputKind, Playing, Tap};
pub use slots::{DecodeSlot, DecodeSlots};
pub use sniff::{sniff, Format};

/// The lowest sample rate a decoded stream may have (AMR-NB's, the lowest of any voice codec).
/// A stream declaring less is refused with [`DecodeError::SampleRate`].
pub const MIN_SAMPLE_RATE: u32 = 8_000;
/// The highest sample rate a decoded stream may have (studio WAV). Limits are checked against the
/// samples actually decoded at the stream's rate, so a rate is trusted only inside this range:
/// a file declaring 400 MHz would otherwise fit an hour of audio into "9 ms".
pub const MAX_SAMPLE_RATE: u32 = 192_000;
/// The most channels a decoded stream may have: a voice message is mono or stereo.
pub const MAX_CHANNELS: usize = 2;
/// The most samples (all channels) one decode produces, whatever the limit asked for: 128 MiB of
/// f32 — 5.8 min of 48 kHz stereo, 70 min of 8 kHz mono. Beyond it the decode fails with
/// [`DecodeError::TooLong`].
pub const MAX_DECODED_SAMPLES: usize = 1 << 25;

/// A decoded message: interleaved f32 samples in -1..=1.
#[derive(Clone, PartialEq)]
pub struct Decoded {
    pub format: Format,
    pub sample_rate: u32,
    pub channels: u16,
    /// Interleaved by frame: `[l0, r0, l1, r1, ...]` for stereo.
    pub samples: Vec<f32>,
}

impl std::fmt::Debug for Decoded {
    // A minute of audio is millions of samples: print a summary, not the samples.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoded")
            .field("format", &self.format)
            .field("sample_rate", &self.sample_rate)
            .field("channels", &self.channels)
            .field(
                "samples",
                &format_args!(
                    "[{} samples, {} ms]",
                    self.samples.len(),
                    self.duration_ms()
                ),
            )
            .finish()
    }
}

impl Decoded {
    /// Number of frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }

    pub fn duration_ms(&self) -> u64 {
        self.frames() as u64 * 1000 / u64::from(self.sample_rate.max(1))
    }

    /// The channels averaged into one.
    pub fn mono(&self) -> Vec<f32> {
        let ch = usize::from(self.channels.max(1));
        if ch == 1 {
            return self.samples.clone();
        }
        self.samples
            .chunks_exact(ch)
            .map(|f| f.iter().sum::<f32>() / ch as f32)
            .collect()
    }
}

/// Why bytes could not be turned into audio. Messages are meant for the wall's operator.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not a format we know (text, an image, an unsupported codec...).
    #[error("not a supported audio file: {0}")]
    NotAudio(String),
    /// The format was recognised but the data is damaged or holds no audio.
    #[error("damaged audio file: {0}")]
    Corrupt(String),
    /// Longer than the wall allows.
    #[error("message too long: {got_s} s (the limit is {max_s} s)")]
    TooLong { max_s: u64, got_s: u64 },
    /// The stream's sample rate is outside [`MIN_SAMPLE_RATE`]..=[`MAX_SAMPLE_RATE`].
    #[error("unsupported sample rate: {rate} Hz ({MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz are accepted)")]
    SampleRate { rate: u32 },
    /// More channels than [`MAX_CHANNELS`].
    #[error("too many audio channels: {channels} (at most {max})")]
    TooManyChannels { channels: usize, max: usize },
    /// A decoder library failed in a way that is not the file's fault.
    #[error("audio decoder failure: {0}")]
    Internal(String),
}

/// Decodes a whole file, up to [`MAX_DECODED_SAMPLES`] (beyond: [`DecodeError::TooLong`]).
/// Waits for a slot of [`DecodeSlots::shared`] first: call it from a blocking context.
pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let _slot = DecodeSlots::shared().acquire();
    decode::decode(bytes, None)
}

/// Decodes a file of at most `max_duration_s` seconds (plus 0.5 s of grace for encoder padding).
/// Longer input fails with [`DecodeError::TooLong`] as soon as that is known: before decoding
/// when the container states its duration (AMR, MP4, WAV, finalised WebM), otherwise once the
/// samples decoded at the stream's real rate pass the limit (the rest is then only demuxed, to
/// report its length). Rates, channels and the sample ceiling are bounded as for [`decode`], and
/// it waits for a slot of [`DecodeSlots::shared`] first: call it from a blocking context.
pub fn decode_limited(bytes: &[u8], max_duration_s: u64) -> Result<Decoded, DecodeError> {
    let _slot = DecodeSlots::shared().acquire();
    decode::decode(bytes, Some(max_duration_s))
}

/// One line describing a file, for `voicewall probe FILE...`:
/// `container=ogg codec=opus sample_rate=48000 channels=1 duration=3.45 loudness=-18.2 LUFS peak=0.71 gain=1.33`.
pub fn probe_report(bytes: &[u8]) -> Result<String, DecodeError> {
    let d = decode(bytes)?;
    let a = analyse(&d);
    Ok(format!(
        "container={} codec={} sample_rate={} channels={} duration={:.2} loudness={:.1} LUFS peak={:.2} gain={:.2}",
        d.format.container(),
        d.format.codec(),
        d.sample_rate,
        d.channels,
        d.frames() as f64 / f64::from(d.sample_rate.max(1)),
        a.loudness_lufs,
        a.peak,
        a.gain,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mono_averages_channels() {
        let d = Decoded {
            format: Format::Wav,
            sample_rate: 4,
            channels: 2,
            samples: vec![1.0, 0.0, 0.5, 0.5, -1.0, 1.0, 0.2, 0.2],
        };
        assert_eq!(d.mono(), vec![0.5, 0.5, 0.0, 0.2]);
        assert_eq!(d.duration_ms(), 1000);
    }

    #[test]
    fn errors_read_well() {
        let e = DecodeError::TooLong {
            max_s: 60,
            got_s: 151,
        };
        assert_eq!(e.to_string(), "message too long: 151 s (the limit is 60 s)");
        assert_eq!(
            decode(b"just some text\n").unwrap_err().to_string(),
            "not a supported audio file: the file is text, not audio"
        );
    }
}
