//! A wall's export: a zip with every approved voice's original audio (`audio/…`, stored as received)
//! and two manifests, `manifest.json` and `manifest.csv` (who, provider, when, duration, status,
//! transcript, and the file in the archive).
//!
//! It streams: messages are read from the store one at a time, each blob is written and dropped, and
//! the manifest rows are spooled to an unnamed temporary file while the audio is written (the zip takes
//! one entry at a time) — so 10,000 messages never sit in memory. The writer only needs `Write`: a
//! file for the CLI, a channel of chunks for the HTTP response.

use crate::domain::{Message, MessageKind, MessageStatus, Millis, Moderation};
use crate::store::{Store, StoreError};
use serde::Serialize;
use std::collections::HashSet;
use std::io::{BufWriter, Seek, SeekFrom, Write};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the archive: {0}")]
    Io(#[from] std::io::Error),
    #[error("writing the archive: {0}")]
    Zip(#[from] zip::result::ZipError),
}

/// What an export wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Exported {
    pub messages: usize,
    /// Bytes of audio (before the zip's own headers).
    pub audio_bytes: u64,
}

/// One exported message, as both manifests list it.
#[derive(Debug, Serialize)]
struct Row {
    id: String,
    /// The audio's path in the archive.
    file: String,
    participant_id: String,
    name: String,
    provider: String,
    received_at_ms: Millis,
    received_at: String,
    duration_ms: Option<u64>,
    status: &'static str,
    /// The operator's decision (always "approved": only approved voices are exported).
    moderation: &'static str,
    transcript: Option<String>,
    content_type: String,
    bytes: u64,
}

const CSV_HEADER: &str = "id,file,participant_id,name,provider,received_at,received_at_ms,duration_ms,status,moderation,transcript,content_type,bytes\n";

/// Whether a message belongs in the export: an approved voice whose audio is stored, of someone not
/// banned from the wall (`banned`: the wall's banned participant ids).
pub fn exported(m: &Message, banned: &HashSet<String>) -> bool {
    m.kind == MessageKind::Voice
        && m.status == MessageStatus::Ready
        && m.moderation == Moderation::Approved
        && m.media.is_some()
        && !banned.contains(&m.participant_id)
}

/// Write `wall`'s export to `out` (`exported_at` stamps the manifest). Returns what was written; an
/// error leaves `out` with a partial archive.
pub fn write_archive<W: Write>(
    store: &Store,
    wall: &str,
    exported_at: Millis,
    out: W,
) -> Result<Exported, ExportError> {
    let mut zip = zip::ZipWriter::new_stream(out);
    // Audio is already compressed: stored as is. The manifests are text: deflated.
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let text = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip_time(exported_at));
    let mut json_rows = BufWriter::new(tempfile::tempfile()?);
    let mut csv_rows = BufWriter::new(tempfile::tempfile()?);
    csv_rows.write_all(CSV_HEADER.as_bytes())?;
    let mut done = Exported::default();
    let banned = store.banned(wall)?;
    for m in store.iter_messages(wall) {
        let m = m?;
        if !exported(&m, &banned) {
            continue;
        }
        let Some(key) = &m.media else {
            continue;
        };
        let Some((meta, bytes)) = store.media(key)? else {
            tracing::warn!(wall, message = %m.id, "export: the audio is missing from the cache");
            continue;
        };
        let participant = store.participant(wall, &m.participant_id)?;
        let name = participant
            .as_ref()
            .map(|p| p.display_name.clone())
            .unwrap_or_default();
        let provider = match &participant {
            Some(p) => p.provider.as_str().to_string(),
            None => m
                .participant_id
                .split_once(':')
                .map(|(p, _)| p.to_string())
                .unwrap_or_default(),
        };
        let file = format!(
            "audio/{:0>8}_{}.{}",
            m.id,
            file_safe(&name),
            extension(&meta.content_type)
        );
        zip.start_file(
            file.as_str(),
            stored.last_modified_time(zip_time(m.received_at)),
        )?;
        zip.write_all(&bytes)?;
        let row = Row {
            id: m.id.clone(),
            file,
            participant_id: m.participant_id.clone(),
            name,
            provider,
            received_at_ms: m.received_at,
            received_at: rfc3339(m.received_at),
            duration_ms: m.duration_ms,
            status: status_of(&m),
            moderation: m.moderation.as_str(),
            transcript: m.transcript.clone(),
            content_type: meta.content_type.clone(),
            bytes: bytes.len() as u64,
        };
        if done.messages > 0 {
            json_rows.write_all(b",\n")?;
        }
        serde_json::to_writer(&mut json_rows, &row).map_err(std::io::Error::from)?;
        csv_rows.write_all(csv_line(&row).as_bytes())?;
        done.messages += 1;
        done.audio_bytes += bytes.len() as u64;
    }

    zip.start_file("manifest.json", text)?;
    writeln!(
        zip,
        "{{\"wall\":{},\"exported_at\":{},\"messages\":[",
        serde_json::Value::from(wall),
        serde_json::Value::from(rfc3339(exported_at))
    )?;
    copy_spool(json_rows, &mut zip)?;
    zip.write_all(b"\n]}\n")?;
    zip.start_file("manifest.csv", text)?;
    copy_spool(csv_rows, &mut zip)?;
    let mut out = zip.finish()?;
    out.flush()?;
    Ok(done)
}

/// Rewind a spooled temporary file and copy it into the archive's current entry.
fn copy_spool(spool: BufWriter<std::fs::File>, to: &mut impl Write) -> std::io::Result<()> {
    let mut file = spool.into_inner().map_err(|e| e.into_error())?;
    file.seek(SeekFrom::Start(0))?;
    std::io::copy(&mut file, to)?;
    Ok(())
}

/// The message's state as the manifest says it.
fn status_of(m: &Message) -> &'static str {
    match m.status {
        MessageStatus::Fetching => "fetching",
        MessageStatus::Ready => "ready",
        MessageStatus::Failed => "failed",
    }
}

/// One CSV record (RFC 4180 quoting). A field a spreadsheet would run as a formula (`=`, `+`, `-`,
/// `@`, tab, CR first) gets a leading `'`: names and transcripts come from guests.
fn csv_line(r: &Row) -> String {
    let opt = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_default();
    let fields = [
        r.id.clone(),
        r.file.clone(),
        r.participant_id.clone(),
        r.name.clone(),
        r.provider.clone(),
        r.received_at.clone(),
        r.received_at_ms.to_string(),
        opt(r.duration_ms),
        r.status.to_string(),
        r.moderation.to_string(),
        r.transcript.clone().unwrap_or_default(),
        r.content_type.clone(),
        r.bytes.to_string(),
    ];
    let mut line = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

fn csv_field(f: &str) -> String {
    let f = if f.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{f}")
    } else {
        f.to_string()
    };
    if f.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f
    }
}

/// A name as part of a file name: letters and digits (any script) kept, the rest `_`, at most 32.
fn file_safe(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '_' })
        .take(32)
        .collect();
    if s.is_empty() {
        "guest".into()
    } else {
        s
    }
}

/// The file extension of a stored audio type.
fn extension(content_type: &str) -> &'static str {
    let base = content_type.split(';').next().unwrap_or("").trim();
    match base {
        "audio/amr" => "amr",
        "audio/ogg" | "audio/opus" => "ogg",
        "audio/webm" => "webm",
        "audio/mpeg" | "audio/mp3" => "mp3",
        "audio/mp4" | "audio/m4a" | "audio/x-m4a" | "audio/aac" => "m4a",
        "audio/wav" | "audio/x-wav" | "audio/wave" => "wav",
        _ => "bin",
    }
}

/// (year, month, day, hour, minute, second) in UTC of a time in ms (days-from-civil, inverted).
fn civil(ms: Millis) -> (i64, u32, u32, u32, u32, u32) {
    let secs = (ms / 1000) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

/// `2026-12-02T19:06:04Z`.
pub fn rfc3339(ms: Millis) -> String {
    let (y, mo, d, h, mi, s) = civil(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// The zip's own timestamp (DOS time: 1980–2107; outside it, the format's default).
fn zip_time(ms: Millis) -> zip::DateTime {
    let (y, mo, d, h, mi, s) = civil(ms);
    u16::try_from(y)
        .ok()
        .and_then(|y| {
            zip::DateTime::from_date_and_time(y, mo as u8, d as u8, h as u8, mi as u8, s as u8).ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_calendar_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_238_364_999), "2026-12-02T19:06:04Z");
    }

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("@cmd"), "'@cmd");
    }

    #[test]
    fn file_names_keep_letters_of_any_script() {
        assert_eq!(file_safe("小明 Li/../x"), "小明_Li____x");
        assert_eq!(file_safe(""), "guest");
        assert_eq!(extension("audio/ogg; codecs=opus"), "ogg");
        assert_eq!(extension("audio/amr"), "amr");
    }
}
