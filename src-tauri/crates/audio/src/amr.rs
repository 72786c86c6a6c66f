//! AMR-NB (WeChat voice) through a three-function FFI to Debian's libopencore-amrnb.
//!
//! The file format is RFC 4867 §5 "storage format": the magic `#!AMR\n`, then frames of one TOC
//! byte (`0 FT(4) Q 0 0`) followed by a payload whose size depends on the frame type. Every frame
//! decodes to 160 samples at 8 kHz (20 ms), including SID (comfort noise, FT 8) and NO_DATA
//! (FT 15) frames, which the library turns into comfort noise / concealment.

use std::os::raw::{c_int, c_uchar, c_void};

use crate::DecodeError;

const MAGIC: &[u8] = b"#!AMR\n";
/// Samples per frame at 8 kHz.
pub(crate) const FRAME_SAMPLES: usize = 160;
pub(crate) const SAMPLE_RATE: u32 = 8000;

/// Payload bytes (excluding the TOC byte) per frame type 0..=15; `None` = invalid/reserved.
const PAYLOAD: [Option<usize>; 16] = [
    Some(12), // 4.75 kbit/s
    Some(13), // 5.15
    Some(15), // 5.90
    Some(17), // 6.70
    Some(19), // 7.40
    Some(20), // 7.95
    Some(26), // 10.2
    Some(31), // 12.2
    Some(5),  // SID (comfort noise)
    None,     // GSM-EFR SID: not in AMR-NB files
    None,     // TDMA-EFR SID
    None,     // PDC-EFR SID
    None,
    None,
    None,
    Some(0), // NO_DATA
];

extern "C" {
    fn Decoder_Interface_init() -> *mut c_void;
    fn Decoder_Interface_exit(state: *mut c_void);
    fn Decoder_Interface_Decode(
        state: *mut c_void,
        input: *const c_uchar,
        out: *mut i16,
        bfi: c_int,
    );
}

/// Owns one libopencore decoder state; freed on drop.
struct AmrDecoder(*mut c_void);

impl AmrDecoder {
    fn new() -> Result<Self, DecodeError> {
        // SAFETY: no preconditions; returns NULL on allocation failure, checked below.
        let state = unsafe { Decoder_Interface_init() };
        if state.is_null() {
            return Err(DecodeError::Internal(
                "could not start the AMR decoder".into(),
            ));
        }
        Ok(AmrDecoder(state))
    }

    /// `frame` is the TOC byte plus its full payload; `out` receives 160 samples.
    fn decode(&mut self, frame: &[u8], out: &mut [i16; FRAME_SAMPLES]) {
        // SAFETY: the state is live; the library reads exactly 1 + PAYLOAD[ft] bytes, which the
        // caller guarantees `frame` holds (it is sliced with that length), and writes 160 samples.
        unsafe { Decoder_Interface_Decode(self.0, frame.as_ptr(), out.as_mut_ptr(), 0) }
    }
}

impl Drop for AmrDecoder {
    fn drop(&mut self) {
        // SAFETY: the state came from Decoder_Interface_init and is freed exactly once.
        unsafe { Decoder_Interface_exit(self.0) }
    }
}

/// One frame's position in the file.
struct Frame {
    start: usize,
    len: usize,
}

/// Length (TOC byte + payload) of a frame whose TOC byte is at `pos`, if that byte is a valid
/// storage-format TOC.
fn frame_len_at(bytes: &[u8], pos: usize) -> Option<usize> {
    let toc = *bytes.get(pos)?;
    if toc & 0x83 != 0 {
        return None;
    }
    PAYLOAD[usize::from((toc >> 3) & 0x0F)].map(|p| 1 + p)
}

/// True if `RESYNC_CHAIN` valid frames follow each other from `pos` (or valid frames run exactly
/// to the end of the file): a resync point after damage. One valid-looking byte is common in
/// random data; three chained frames are not.
fn chain_at(bytes: &[u8], mut pos: usize) -> bool {
    const RESYNC_CHAIN: usize = 3;
    for _ in 0..RESYNC_CHAIN {
        match frame_len_at(bytes, pos) {
            Some(len) if pos + len <= bytes.len() => pos += len,
            _ => return false,
        }
        if pos == bytes.len() {
            return true;
        }
    }
    true
}

/// Walks the frame headers without decoding. A damaged stretch (invalid TOC bytes) is skipped
/// up to the next run of valid frames, as long as no more than a tenth of the file is skipped;
/// a truncated last frame (a cut-off upload) is dropped.
fn frames(bytes: &[u8]) -> Result<Vec<Frame>, DecodeError> {
    let mut frames = Vec::with_capacity(bytes.len() / 32);
    let mut pos = MAGIC.len();
    let mut skipped = 0usize;
    let budget = (bytes.len() - MAGIC.len()) / 10;
    while pos < bytes.len() {
        match frame_len_at(bytes, pos) {
            Some(len) if pos + len <= bytes.len() => {
                frames.push(Frame { start: pos, len });
                pos += len;
            }
            Some(_) => {
                tracing::warn!(
                    pos,
                    "AMR file ends inside a frame; dropping the partial frame"
                );
                break;
            }
            None => {
                let from = pos;
                pos += 1;
                while pos < bytes.len() && !chain_at(bytes, pos) {
                    pos += 1;
                }
                skipped += pos - from;
                if skipped > budget {
                    return Err(DecodeError::Corrupt(format!(
                        "invalid AMR frame header 0x{:02x} at byte {from}, and too much damage to skip",
                        bytes[from]
                    )));
                }
                tracing::warn!(from, to = pos, "skipped a damaged stretch of AMR data");
            }
        }
    }
    Ok(frames)
}

/// Duration in milliseconds from the frame headers alone (cheap: no decoding).
pub(crate) fn duration_ms(bytes: &[u8]) -> Result<u64, DecodeError> {
    Ok(frames(bytes)?.len() as u64 * 20)
}

/// Decodes a whole AMR-NB file to mono f32 at 8 kHz. ([`crate::decode_limited`] checks its
/// limit against [`duration_ms`] first, so an over-long file is never decoded.)
pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<f32>, DecodeError> {
    if !bytes.starts_with(MAGIC) {
        return Err(DecodeError::NotAudio("not an AMR-NB file".into()));
    }
    let frames = frames(bytes)?;
    if frames.is_empty() {
        return Err(DecodeError::Corrupt(
            "the AMR file holds no audio frames".into(),
        ));
    }
    let mut decoder = AmrDecoder::new()?;
    let mut out = Vec::with_capacity(frames.len() * FRAME_SAMPLES);
    let mut pcm = [0i16; FRAME_SAMPLES];
    for f in &frames {
        decoder.decode(&bytes[f.start..f.start + f.len], &mut pcm);
        out.extend(pcm.iter().map(|&s| f32::from(s) / 32768.0));
    }
    Ok(out)
}
