//! Decoding to interleaved f32 PCM: AMR-NB through libopencore (see [`crate::amr`]), everything
//! else through symphonia's demuxers, with libopus (symphonia-adapter-libopus) for Opus.
//!
//! Policy for damaged input, chosen for a wall that would rather play most of a message than none:
//! a stream that ends early (truncated upload, unfinalised MediaRecorder WebM ending in an
//! unexpected EOF) decodes to what is there; a packet the codec rejects is skipped; a file that
//! yields no audio at all is [`DecodeError::Corrupt`].
//!
//! Policy for hostile input: nothing a file declares about itself is trusted to bound the work.
//! The sample rate and channel count must be inside [`MIN_SAMPLE_RATE`]..=[`MAX_SAMPLE_RATE`] and
//! [`MAX_CHANNELS`] (checked on what the container declares and again on every decoded buffer),
//! and decoding stops once the samples actually produced exceed a budget: the duration limit at
//! the stream's real rate, and never more than [`MAX_DECODED_SAMPLES`]. A stream that changes its
//! rate or channels midway ends there.

use std::io::Cursor;
use std::sync::OnceLock;

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::codecs::registry::CodecRegistry;
use symphonia::core::codecs::CodecParameters;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream, ReadOnlySource};
use symphonia::core::meta::MetadataOptions;
use symphonia_adapter_libopus::OpusDecoder;

use crate::{
    amr, sniff, DecodeError, Decoded, Format, MAX_CHANNELS, MAX_DECODED_SAMPLES, MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
};

/// Grace over a duration limit: encoders pad the last frame, and a "60 s" recording from a phone
/// is often 60.3 s long.
const LIMIT_GRACE_MS: u64 = 500;

/// More rejected packets than this (and more than half of all packets) means the file is garbage
/// rather than a good file with a few damaged packets.
const MAX_BAD_PACKETS: usize = 16;

fn codecs() -> &'static CodecRegistry {
    static REGISTRY: OnceLock<CodecRegistry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut registry = CodecRegistry::new();
        symphonia::default::register_enabled_codecs(&mut registry);
        registry.register_audio_decoder::<OpusDecoder>();
        registry
    })
}

/// How much audio one decode may produce: the duration limit (plus grace) at the stream's real
/// rate, capped by [`MAX_DECODED_SAMPLES`].
#[derive(Clone, Copy, Debug)]
struct Budget {
    limit_s: Option<u64>,
}

impl Budget {
    /// The most frames a stream of `rate` Hz and `channels` channels may decode to.
    fn max_frames(self, rate: u32, channels: usize) -> u64 {
        let ceiling = (MAX_DECODED_SAMPLES / channels.max(1)) as u64;
        match self.limit_s {
            Some(s) => {
                let ms = s.saturating_mul(1000).saturating_add(LIMIT_GRACE_MS);
                (ms.saturating_mul(u64::from(rate)) / 1000).min(ceiling)
            }
            None => ceiling,
        }
    }

    /// The refusal for `got_ms` of audio at `rate` Hz: the configured limit, or the ceiling in
    /// seconds when that is the lower.
    fn too_long(self, got_ms: u64, rate: u32, channels: usize) -> DecodeError {
        let ceiling_s = (MAX_DECODED_SAMPLES / channels.max(1)) as u64 / u64::from(rate.max(1));
        DecodeError::TooLong {
            max_s: self.limit_s.map_or(ceiling_s, |s| s.min(ceiling_s)),
            got_s: got_ms.div_ceil(1000),
        }
    }
}

fn check_rate(rate: u32) -> Result<(), DecodeError> {
    if (MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&rate) {
        Ok(())
    } else {
        Err(DecodeError::SampleRate { rate })
    }
}

fn check_channels(channels: usize) -> Result<(), DecodeError> {
    if channels <= MAX_CHANNELS {
        Ok(())
    } else {
        Err(DecodeError::TooManyChannels {
            channels,
            max: MAX_CHANNELS,
        })
    }
}

/// Sniffs, then decodes within the [`Budget`] for `limit_s` (plus a half-second grace), stopping
/// with [`DecodeError::TooLong`] as soon as the audio is known to exceed it.
pub(crate) fn decode(bytes: &[u8], limit_s: Option<u64>) -> Result<Decoded, DecodeError> {
    let format =
        sniff(bytes).ok_or_else(|| DecodeError::NotAudio(sniff::describe_unknown(bytes)))?;
    let budget = Budget { limit_s };
    match format {
        Format::AmrNb => {
            // The frame headers give the exact length without decoding anything.
            let ms = amr::duration_ms(bytes)?;
            let frames = ms * u64::from(amr::SAMPLE_RATE) / 1000;
            if frames > budget.max_frames(amr::SAMPLE_RATE, 1) {
                return Err(budget.too_long(ms, amr::SAMPLE_RATE, 1));
            }
            Ok(Decoded {
                format,
                sample_rate: amr::SAMPLE_RATE,
                channels: 1,
                samples: amr::decode(bytes)?,
            })
        }
        Format::Wav => {
            check_wav_header(bytes)?;
            decode_with_symphonia(bytes, format, budget)
        }
        _ => decode_with_symphonia(bytes, format, budget),
    }
}

/// Checks a WAV's `fmt ` chunk (channels, sample rate) before symphonia reads it: its WAV reader
/// multiplies the declared channel count in u16, which overflows on a hostile count (a panic
/// with debug assertions; found by the `audio_decode` fuzz target).
fn check_wav_header(bytes: &[u8]) -> Result<(), DecodeError> {
    let mut pos = 12; // after "RIFF", the size and "WAVE"
    while let Some(head) = bytes.get(pos..pos + 8) {
        let size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        if &head[..4] == b"fmt " {
            if let Some(fmt) = bytes.get(pos + 8..pos + 16) {
                check_channels(usize::from(u16::from_le_bytes([fmt[2], fmt[3]])))?;
                check_rate(u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]))?;
            }
            return Ok(());
        }
        // Chunks are padded to an even length.
        pos = pos
            .saturating_add(8)
            .saturating_add(size)
            .saturating_add(size & 1);
    }
    Ok(())
}

fn decode_with_symphonia(
    bytes: &[u8],
    format: Format,
    budget: Budget,
) -> Result<Decoded, DecodeError> {
    // A Cursor is seekable and knows its length, which MP4 needs (its index may sit at the end).
    // Some demuxers also check element sizes against that length, which fails on a truncated
    // file (a finalised WebM cut short claims a Segment longer than the bytes); such a file is
    // read again as a plain sequential stream, the way a live recording would be.
    let open = |seekable: bool| {
        let source: Box<dyn MediaSource + '_> = if seekable {
            Box::new(Cursor::new(bytes))
        } else {
            Box::new(ReadOnlySource::new(Cursor::new(bytes)))
        };
        let mss = MediaSourceStream::new(source, Default::default());
        symphonia::default::get_probe().probe(
            &Hint::new(),
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
    };
    let mut reader = match open(true) {
        Ok(reader) => reader,
        Err(first) if format != Format::Mp4Aac => match open(false) {
            Ok(reader) => {
                tracing::debug!(%format, error = %first, "container read as a sequential stream");
                reader
            }
            Err(_) => return Err(corrupt(format, "cannot read the container", &first)),
        },
        Err(e) => return Err(corrupt(format, "cannot read the container", &e)),
    };

    let track = reader.default_track(TrackType::Audio).ok_or_else(|| {
        DecodeError::Corrupt(format!(
            "the {} file has no audio track",
            format.container()
        ))
    })?;
    let track_id = track.id;
    let params = match &track.codec_params {
        Some(CodecParameters::Audio(p)) => p.clone(),
        _ => {
            return Err(DecodeError::Corrupt(format!(
                "the {} file's audio track has no codec parameters",
                format.container()
            )))
        }
    };
    let time_base = track.time_base;

    // What the container declares is checked first, so a bomb is refused before any decoding.
    if let Some(rate) = params.sample_rate {
        check_rate(rate)?;
    }
    if let Some(channels) = &params.channels {
        check_channels(channels.count())?;
    }
    // When the container states its length, refuse an over-long file before decoding anything.
    let header_ms = match (track.num_frames, params.sample_rate) {
        (Some(n), Some(rate)) => Some(n.saturating_mul(1000) / u64::from(rate)),
        _ => match (track.duration, time_base) {
            (Some(d), Some(tb)) => tb.calc_duration(d).map(|t| t.as_millis().max(0) as u64),
            _ => None,
        },
    };
    if let Some(ms) = header_ms {
        // Without a declared rate, assume the lowest: the most lenient reading of the length.
        let rate = params.sample_rate.unwrap_or(MIN_SAMPLE_RATE);
        let channels = params.channels.as_ref().map_or(1, |c| c.count());
        if ms.saturating_mul(u64::from(rate)) / 1000 > budget.max_frames(rate, channels) {
            return Err(budget.too_long(ms, rate, channels));
        }
    }

    let mut decoder = codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| corrupt(format, "unsupported audio codec settings", &e))?;

    let mut samples: Vec<f32> = Vec::new();
    let mut scratch: Vec<f32> = Vec::new();
    // The stream's real shape, fixed by its first decoded buffer: (rate, channels, max frames).
    let mut shape: Option<(u32, usize, u64)> = None;
    let mut frames = 0u64;
    let (mut good, mut bad) = (0usize, 0usize);
    let mut last_error: Option<String> = None;

    loop {
        let packet = match reader.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                // An unfinalised WebM or a truncated upload: what we have is the message.
                tracing::debug!(%format, "stream ended early (unexpected EOF); treating as end");
                break;
            }
            Err(SymError::ResetRequired) => break,
            Err(e) => {
                if samples.is_empty() {
                    return Err(corrupt(format, "cannot read the audio data", &e));
                }
                tracing::warn!(%format, error = %e, "stopping at a damaged part of the stream");
                break;
            }
        };
        if packet.track_id != track_id {
            continue;
        }
        let buf = match decoder.decode(&packet) {
            Ok(buf) => buf,
            Err(e @ (SymError::DecodeError(_) | SymError::IoError(_))) => {
                bad += 1;
                last_error = Some(e.to_string());
                if bad > MAX_BAD_PACKETS && bad > good {
                    return Err(corrupt(format, "too many damaged audio packets", &e));
                }
                continue;
            }
            Err(e) => return Err(corrupt(format, "the audio cannot be decoded", &e)),
        };
        good += 1;
        if buf.frames() == 0 {
            continue;
        }
        let (rate, channels) = (buf.spec().rate(), buf.spec().channels().count());
        let (_, _, max_frames) = match shape {
            None => {
                check_rate(rate)?;
                check_channels(channels)?;
                *shape.insert((rate, channels, budget.max_frames(rate, channels)))
            }
            Some(s) if (s.0, s.1) == (rate, channels) => s,
            Some((was_rate, was_channels, _)) => {
                // Appending would mix rates or misalign the interleaving: the message ends here.
                tracing::warn!(%format, was_rate, was_channels, rate, channels,
                    "stopping where the stream changes its sample rate or channels");
                break;
            }
        };
        let buf_frames = buf.frames() as u64;
        if frames + buf_frames > max_frames {
            // Over budget: stop decoding; demux the rest (cheap, bounded by the file's size) to
            // tell the operator how long it is. Packet durations are not always set (WebM
            // SimpleBlocks), so estimate from the average length of the packets decoded so far.
            let ms = (frames + buf_frames) * 1000 / u64::from(rate);
            let mut rest_packets = 0u64;
            while let Ok(Some(p)) = reader.next_packet() {
                if p.track_id == track_id {
                    rest_packets += 1;
                }
            }
            let rest_ms = rest_packets.saturating_mul(ms) / (good as u64).max(1);
            return Err(budget.too_long(ms.saturating_add(rest_ms), rate, channels));
        }
        frames += buf_frames;
        buf.copy_to_vec_interleaved(&mut scratch);
        samples.extend_from_slice(&scratch);
    }

    let Some((sample_rate, channels, _)) = shape.filter(|_| !samples.is_empty()) else {
        let why = last_error.map_or_else(String::new, |e| format!(" ({e})"));
        return Err(DecodeError::Corrupt(format!(
            "the {} file contains no decodable audio{why}",
            format.container()
        )));
    };
    if bad > 0 {
        tracing::warn!(%format, bad, good, "skipped damaged audio packets");
    }
    Ok(Decoded {
        format,
        sample_rate,
        channels: channels as u16,
        samples,
    })
}

fn corrupt(format: Format, what: &str, e: &SymError) -> DecodeError {
    DecodeError::Corrupt(format!("{what} in this {} file: {e}", format.container()))
}
