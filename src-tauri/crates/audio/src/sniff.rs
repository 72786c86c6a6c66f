//! Format sniffing from the bytes themselves (magic numbers), never from a file name or a MIME
//! type a platform claims: voice notes arrive as `.amr`, `.oga`, `.ogg`, `.webm`, `.m4a`, `.mp3`
//! or with no name at all, and platforms are not always right about what they send.

/// A container + codec pair this crate can decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// AMR-NB in the RFC 4867 storage format (`#!AMR\n`): WeChat voice messages.
    AmrNb,
    /// Opus in Ogg: Telegram and WhatsApp voice notes.
    OggOpus,
    /// Opus in WebM/Matroska: what a browser's MediaRecorder produces.
    WebmOpus,
    /// AAC in an ISO-BMFF (MP4/M4A/3GP) container: iOS recordings, uploads.
    Mp4Aac,
    /// MPEG-1/2 layer III.
    Mp3,
    /// RIFF/WAVE PCM.
    Wav,
    /// Vorbis in Ogg (older Android recorders, uploads).
    OggVorbis,
}

impl Format {
    /// The container name used in reports and stored metadata (`ogg`, `webm`, `mp4`, ...).
    pub fn container(&self) -> &'static str {
        match self {
            Format::AmrNb => "amr",
            Format::OggOpus | Format::OggVorbis => "ogg",
            Format::WebmOpus => "webm",
            Format::Mp4Aac => "mp4",
            Format::Mp3 => "mp3",
            Format::Wav => "wav",
        }
    }

    /// The codec name (`amr-nb`, `opus`, `aac`, `mp3`, `pcm`, `vorbis`).
    pub fn codec(&self) -> &'static str {
        match self {
            Format::AmrNb => "amr-nb",
            Format::OggOpus | Format::WebmOpus => "opus",
            Format::Mp4Aac => "aac",
            Format::Mp3 => "mp3",
            Format::Wav => "pcm",
            Format::OggVorbis => "vorbis",
        }
    }

    /// The MIME type to serve the original bytes with.
    pub fn mime(&self) -> &'static str {
        match self {
            Format::AmrNb => "audio/amr",
            Format::OggOpus | Format::OggVorbis => "audio/ogg",
            Format::WebmOpus => "audio/webm",
            Format::Mp4Aac => "audio/mp4",
            Format::Mp3 => "audio/mpeg",
            Format::Wav => "audio/wav",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.container(), self.codec())
    }
}

/// How far into an EBML (WebM) header we look for the codec id. MediaRecorder writes the Tracks
/// element within the first few hundred bytes.
const EBML_SCAN: usize = 4096;

/// Identifies the format from the leading bytes. `None` means "not audio we can decode"; see
/// [`describe_unknown`] for a readable reason.
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(b"#!AMR\n") {
        return Some(Format::AmrNb);
    }
    if bytes.starts_with(b"OggS") {
        return sniff_ogg(bytes);
    }
    if bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        let head = &bytes[..bytes.len().min(EBML_SCAN)];
        return contains(head, b"A_OPUS").then_some(Format::WebmOpus);
    }
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        // 3GP files from old phones carry AMR inside MP4 (`samr`), which we do not decode.
        if contains(bytes, b"samr") && !contains(bytes, b"mp4a") {
            return None;
        }
        return Some(Format::Mp4Aac);
    }
    if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WAVE" {
        return Some(Format::Wav);
    }
    if bytes.starts_with(b"ID3") && bytes.len() >= 10 {
        // ID3v2: a 10-byte header with a 28-bit "syncsafe" size, then (usually) MPEG frames.
        let size = bytes[6..10]
            .iter()
            .fold(0usize, |acc, b| (acc << 7) | usize::from(b & 0x7F));
        let footer = if bytes[5] & 0x10 != 0 { 10 } else { 0 };
        let after = 10 + size + footer;
        // A tag with nothing (yet) after it is still an MP3 as far as the bytes tell us; a tag
        // followed by something that is not an MPEG frame is not.
        return match bytes.get(after..) {
            Some(rest) if rest.len() >= 4 => mp3_frame_len(rest).map(|_| Format::Mp3),
            _ => Some(Format::Mp3),
        };
    }
    if looks_like_mp3_frames(bytes) {
        return Some(Format::Mp3);
    }
    None
}

/// A short, operator-readable description of bytes that [`sniff`] refused.
pub(crate) fn describe_unknown(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "the file is empty".into();
    }
    if bytes.starts_with(b"#!AMR-WB\n") {
        return "AMR-WB (wideband AMR) is not supported".into();
    }
    if bytes.starts_with(b"OggS") {
        return "an Ogg file without Opus or Vorbis audio (e.g. Speex or video)".into();
    }
    if bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return "a WebM/Matroska file without Opus audio".into();
    }
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        return "an MP4/3GP file with AMR audio, which is not supported inside MP4".into();
    }
    let head = &bytes[..bytes.len().min(512)];
    let printable = head
        .iter()
        .filter(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
        .count();
    if printable * 10 >= head.len() * 9 {
        return "the file is text, not audio".into();
    }
    let hex: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("unrecognised data (starts with {})", hex.join(" "))
}

fn sniff_ogg(bytes: &[u8]) -> Option<Format> {
    // The first page's first packet identifies the stream: 27-byte page header, segment table,
    // then the packet.
    if bytes.len() < 27 {
        return None;
    }
    let segments = usize::from(bytes[26]);
    let start = 27 + segments;
    let packet = bytes.get(start..)?;
    if packet.starts_with(b"OpusHead") {
        Some(Format::OggOpus)
    } else if packet.starts_with(b"\x01vorbis") {
        Some(Format::OggVorbis)
    } else {
        None
    }
}

/// Length of the MPEG audio layer III frame whose header starts `b`, if it is one.
fn mp3_frame_len(b: &[u8]) -> Option<usize> {
    if b.len() < 4 || b[0] != 0xFF || b[1] & 0xE0 != 0xE0 {
        return None;
    }
    let version = (b[1] >> 3) & 0x03; // 0 = MPEG2.5, 1 = reserved, 2 = MPEG2, 3 = MPEG1
    let layer = (b[1] >> 1) & 0x03; // 1 = layer III
    let bitrate_idx = usize::from(b[2] >> 4);
    let rate_idx = usize::from((b[2] >> 2) & 0x03);
    let padding = usize::from((b[2] >> 1) & 0x01);
    if version == 1 || layer != 1 || bitrate_idx == 0 || bitrate_idx == 15 || rate_idx == 3 {
        return None;
    }
    const V1: [usize; 15] = [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ];
    const V2: [usize; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    const RATES: [[usize; 3]; 4] = [
        [11025, 12000, 8000],
        [0, 0, 0],
        [22050, 24000, 16000],
        [44100, 48000, 32000],
    ];
    let rate = RATES[usize::from(version)][rate_idx];
    let (kbps, coeff) = if version == 3 {
        (V1[bitrate_idx], 144)
    } else {
        (V2[bitrate_idx], 72)
    };
    Some(coeff * kbps * 1000 / rate + padding)
}

/// Without an ID3 tag, demand two consecutive valid frame headers: one 0xFFEx pair occurs by
/// chance in binary data far too often to be trusted.
fn looks_like_mp3_frames(bytes: &[u8]) -> bool {
    match mp3_frame_len(bytes) {
        Some(len) => match bytes.get(len..) {
            Some(next) if next.len() >= 4 => mp3_frame_len(next).is_some(),
            // A single-frame file: accept only if the frame is complete.
            Some(next) => next.is_empty(),
            None => false,
        },
        None => false,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_not_audio() {
        assert_eq!(sniff(b"hello, this is not an mp3 file\n"), None);
        assert_eq!(
            describe_unknown(b"hello, this is not an mp3 file\n"),
            "the file is text, not audio"
        );
    }

    #[test]
    fn empty_is_not_audio() {
        assert_eq!(sniff(b""), None);
        assert_eq!(describe_unknown(b""), "the file is empty");
    }

    #[test]
    fn amr_wb_is_refused_with_a_reason() {
        assert_eq!(sniff(b"#!AMR-WB\n\x04\x00"), None);
        assert!(describe_unknown(b"#!AMR-WB\n").contains("AMR-WB"));
    }

    #[test]
    fn lone_mpeg_sync_word_is_not_mp3() {
        // 0xFFFB90 is a valid MPEG1 layer III header but nothing valid follows it.
        let mut bytes = vec![0xFF, 0xFB, 0x90, 0x64];
        bytes.extend_from_slice(&[0x11; 2000]);
        assert_eq!(sniff(&bytes), None);
    }

    #[test]
    fn names_are_stable() {
        assert_eq!(Format::OggOpus.container(), "ogg");
        assert_eq!(Format::OggOpus.codec(), "opus");
        assert_eq!(Format::WebmOpus.mime(), "audio/webm");
        assert_eq!(Format::AmrNb.to_string(), "amr/amr-nb");
    }
}
