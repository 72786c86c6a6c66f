//! Decoding to interleaved f32 PCM: AMR-NB through libopencore (see [`crate::amr`]), everything
//! else through symphonia's demuxers, with libopus (symphonia-adapter-libopus) for Opus.
//!
//! Policy for damaged input, chosen for a wall that would rather play most of a message than none:
//! a stream that ends early (truncated upload, unfinalised MediaRecorder WebM ending in an
//! unexpected EOF) decodes to what is there; a packet the codec rejects is skipped; a file that
//! yields no audio at all is [`DecodeError::Corrupt`].

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

use crate::{amr, sniff, DecodeError, Decoded, Format};

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

/// Sniffs, then decodes, stopping early with [`DecodeError::TooLong`] once the audio is known to
/// exceed `limit_s` (plus a half-second grace).
pub(crate) fn decode(bytes: &[u8], limit_s: Option<u64>) -> Result<Decoded, DecodeError> {
    let format =
        sniff(bytes).ok_or_else(|| DecodeError::NotAudio(sniff::describe_unknown(bytes)))?;
    let limit_ms = limit_s.map(|s| s.saturating_mul(1000).saturating_add(LIMIT_GRACE_MS));
    let too_long = |got_ms: u64| DecodeError::TooLong {
        max_s: limit_s.unwrap_or(0),
        got_s: got_ms.div_ceil(1000),
    };
    match format {
        Format::AmrNb => {
            // The frame headers give the exact length without decoding anything.
            let ms = amr::duration_ms(bytes)?;
            if limit_ms.is_some_and(|l| ms > l) {
                return Err(too_long(ms));
            }
            Ok(Decoded {
                format,
                sample_rate: amr::SAMPLE_RATE,
                channels: 1,
                samples: amr::decode(bytes)?,
            })
        }
        _ => decode_with_symphonia(bytes, format, limit_ms, too_long),
    }
}

fn decode_with_symphonia(
    bytes: &[u8],
    format: Format,
    limit_ms: Option<u64>,
    too_long: impl Fn(u64) -> DecodeError,
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

    // When the container states its length, refuse an over-long file before decoding anything.
    if let Some(limit) = limit_ms {
        let header_ms = match (track.num_frames, params.sample_rate) {
            (Some(n), Some(rate)) if rate > 0 => Some(n * 1000 / u64::from(rate)),
            _ => match (track.duration, time_base) {
                (Some(d), Some(tb)) => tb.calc_duration(d).map(|t| t.as_millis().max(0) as u64),
                _ => None,
            },
        };
        if let Some(ms) = header_ms.filter(|&ms| ms > limit) {
            return Err(too_long(ms));
        }
    }

    let mut decoder = codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| corrupt(format, "unsupported audio codec settings", &e))?;

    let mut samples: Vec<f32> = Vec::new();
    let mut scratch: Vec<f32> = Vec::new();
    let mut sample_rate = params.sample_rate.unwrap_or(0);
    let mut channels = params.channels.as_ref().map_or(0, |c| c.count()) as u16;
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
        match decoder.decode(&packet) {
            Ok(buf) => {
                good += 1;
                if buf.frames() == 0 {
                    continue;
                }
                sample_rate = buf.spec().rate();
                channels = buf.spec().channels().count() as u16;
                buf.copy_to_vec_interleaved(&mut scratch);
                samples.extend_from_slice(&scratch);
            }
            Err(e @ (SymError::DecodeError(_) | SymError::IoError(_))) => {
                bad += 1;
                last_error = Some(e.to_string());
                if bad > MAX_BAD_PACKETS && bad > good {
                    return Err(corrupt(format, "too many damaged audio packets", &e));
                }
                continue;
            }
            Err(e) => return Err(corrupt(format, "the audio cannot be decoded", &e)),
        }
        if let Some(limit) = limit_ms {
            let frames = samples.len() as u64 / u64::from(channels.max(1));
            let ms = frames * 1000 / u64::from(sample_rate.max(1));
            if ms > limit {
                // Stop decoding; demux the rest (cheap) to tell the operator how long it is.
                // Packet durations are not always set (WebM SimpleBlocks), so estimate from the
                // average length of the packets decoded so far.
                let mut rest_packets = 0u64;
                while let Ok(Some(p)) = reader.next_packet() {
                    if p.track_id == track_id {
                        rest_packets += 1;
                    }
                }
                let rest_ms = rest_packets * ms / (good as u64).max(1);
                return Err(too_long(ms + rest_ms));
            }
        }
    }

    if samples.is_empty() || sample_rate == 0 || channels == 0 {
        let why = last_error.map_or_else(String::new, |e| format!(" ({e})"));
        return Err(DecodeError::Corrupt(format!(
            "the {} file contains no decodable audio{why}",
            format.container()
        )));
    }
    if bad > 0 {
        tracing::warn!(%format, bad, good, "skipped damaged audio packets");
    }
    Ok(Decoded {
        format,
        sample_rate,
        channels,
        samples,
    })
}

fn corrupt(format: Format, what: &str, e: &SymError) -> DecodeError {
    DecodeError::Corrupt(format!("{what} in this {} file: {e}", format.container()))
}
