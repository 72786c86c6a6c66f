//! Reading a join form: multipart through multer's constraints — the allowed fields, the one file field
//! against the wall's configured size, text fields small, the whole body bounded — and a bounded number
//! of fields; every part header (and the preamble before the first boundary) at most
//! `PART_HEADER_MAX` bytes (multer buffers a header until it ends); a form whose token is not in the
//! header or query must send `token` first, checked before the next field is read; and the small text
//! rules (nicknames, upload ids).

use super::refusal::Refusal;
use axum::body::{Body, BodyDataStream};
use axum::http::{header, HeaderMap};
use futures_util::StreamExt;
use std::sync::Arc;

/// Text fields (nickname, token, upload id) are small; anything longer is refused.
const TEXT_FIELD_MAX: usize = 4 * 1024;
/// The text fields of the join page's forms; with the endpoint's file field, the only ones accepted.
const TEXT_FIELDS: [&str; 4] = ["token", "nickname", "avatar_mode", "upload_id"];
/// A form has a handful of fields; more is not our page.
const MAX_FIELDS: usize = 12;
/// Room for each part's boundary and headers in the whole body's limit.
const PART_OVERHEAD: usize = 1024;
/// The most a part's headers (or the preamble before the first boundary) may weigh.
pub const PART_HEADER_MAX: usize = 8 * 1024;
/// Oversized uploads are read (and dropped) up to this much past the limit, so that the browser gets our
/// 413 answer instead of a reset connection; beyond it the connection is cut short.
const DRAIN_SLACK: usize = 2 * 1024 * 1024;
/// A body refused before it was read (a stale token, no device cookie) is read and dropped up to this
/// much before the answer: closing a socket with unread data resets it, and the reset can overtake our
/// answer, so the phone showed "network error" instead of "scan the QR code again". A voice of a minute
/// fits; a bigger body, or one still coming after `REFUSED_DRAIN_FOR` (a hostile client that never
/// finishes), is cut short as before.
pub const REFUSED_DRAIN: usize = 512 * 1024;
pub const REFUSED_DRAIN_FOR: std::time::Duration = std::time::Duration::from_secs(2);
/// The parts of a join form, read field by field against the wall's limits.
#[derive(Default)]
pub struct JoinForm {
    pub token: Option<String>,
    pub nickname: Option<String>,
    pub avatar_mode: Option<String>,
    pub upload_id: Option<String>,
    /// The bytes of the one file field the endpoint expects.
    pub file: Option<Vec<u8>>,
}

/// The most a form may weigh: the file, every text field, their part headers.
fn whole_max(file_max: usize) -> usize {
    file_max + MAX_FIELDS * (TEXT_FIELD_MAX + PART_OVERHEAD)
}

/// A check of the form's `token` field, for a request that gave none in its header or query.
pub type TokenFirst<'a> = &'a (dyn Fn(&str) -> Result<(), Refusal> + Sync);

/// Read a multipart body (`headers` give its boundary). `file_field` is the one file this endpoint takes,
/// limited to `file_max` bytes (`too_large` names the refusal, 413); a field that is not ours, a text
/// field over its limit, a part header over `PART_HEADER_MAX` or a broken body is `BadForm` (400).
/// With `token_first`, the first field must be `token` (else `TokenMissing`) and passes it before the
/// rest of the body is read.
pub async fn read_form(
    headers: &HeaderMap,
    body: Body,
    file_field: &str,
    file_max: usize,
    too_large: Refusal,
    token_first: Option<TokenFirst<'_>>,
) -> Result<JoinForm, Refusal> {
    let boundary = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or(Refusal::BadForm)?;
    let constraints = multer::Constraints::new()
        .allowed_fields(TEXT_FIELDS.iter().copied().chain([file_field]).collect())
        .size_limit(
            multer::SizeLimit::new()
                .whole_stream(whole_max(file_max) as u64)
                .per_field(TEXT_FIELD_MAX as u64)
                .for_field(file_field, file_max as u64),
        );
    let body = SharedBody::new(body, &boundary);
    let mut multipart = multer::Multipart::with_constraints(body.stream(), boundary, constraints);
    let read = read_fields(&mut multipart, file_field, token_first).await;
    drop(multipart);
    let refusal = match read {
        Ok(form) => return Ok(form),
        Err(FormError::Multipart(e)) => {
            tracing::debug!(error = %e, "join form refused");
            match e {
                multer::Error::FieldSizeExceeded { field_name, .. }
                    if field_name.as_deref() == Some(file_field) =>
                {
                    too_large
                }
                multer::Error::StreamSizeExceeded { .. } => too_large,
                _ => Refusal::BadForm,
            }
        }
        Err(FormError::TooManyFields | FormError::NotText) => Refusal::BadForm,
        Err(FormError::Refused(r)) => r,
    };
    if refusal == too_large {
        body.drain(DRAIN_SLACK).await;
    } else {
        let _ = tokio::time::timeout(REFUSED_DRAIN_FOR, body.drain(REFUSED_DRAIN)).await;
    }
    Err(refusal)
}

/// Why a form could not be read.
#[derive(Debug, thiserror::Error)]
enum FormError {
    #[error(transparent)]
    Multipart(#[from] multer::Error),
    #[error("more than {MAX_FIELDS} fields")]
    TooManyFields,
    #[error("a text field is not UTF-8")]
    NotText,
    #[error("refused: {0:?}")]
    Refused(Refusal),
}

async fn read_fields(
    multipart: &mut multer::Multipart<'static>,
    file_field: &str,
    token_first: Option<TokenFirst<'_>>,
) -> Result<JoinForm, FormError> {
    let mut form = JoinForm::default();
    let mut fields = 0;
    while let Some(field) = multipart.next_field().await? {
        fields += 1;
        if fields > MAX_FIELDS {
            return Err(FormError::TooManyFields);
        }
        let name = field.name().unwrap_or("").to_string();
        if fields == 1 && token_first.is_some() && name != "token" {
            // No token yet: nothing more of the body is read.
            return Err(FormError::Refused(Refusal::TokenMissing));
        }
        let bytes = field.bytes().await?.to_vec();
        if let (1, Some(check)) = (fields, token_first) {
            let token = std::str::from_utf8(&bytes).map_err(|_| FormError::NotText)?;
            check(token).map_err(FormError::Refused)?;
        }
        if name == file_field {
            form.file = Some(bytes);
            continue;
        }
        let text = String::from_utf8(bytes).map_err(|_| FormError::NotText)?;
        match name.as_str() {
            "token" => form.token = Some(text),
            "nickname" => form.nickname = Some(text),
            "avatar_mode" => form.avatar_mode = Some(text),
            "upload_id" => form.upload_id = Some(text),
            _ => {} // not reached: multer refuses fields that are not allowed
        }
    }
    Ok(form)
}

/// The request body, shared between multer and us: when multer stops at a limit, the rest of an
/// oversized upload is still read (up to `DRAIN_SLACK`) so the browser gets the 413. What multer reads
/// passes a `PartHeaders` scan first.
#[derive(Clone)]
struct SharedBody(Arc<tokio::sync::Mutex<(BodyDataStream, PartHeaders)>>);

impl SharedBody {
    fn new(body: Body, boundary: &str) -> Self {
        Self(Arc::new(tokio::sync::Mutex::new((
            body.into_data_stream(),
            PartHeaders::new(boundary),
        ))))
    }

    fn stream(
        &self,
    ) -> impl futures_util::Stream<Item = Result<axum::body::Bytes, axum::Error>> + Send + 'static
    {
        futures_util::stream::unfold(self.0.clone(), |body| async move {
            let next = {
                let mut guard = body.lock().await;
                let (stream, scan) = &mut *guard;
                match stream.next().await {
                    Some(Ok(chunk)) => Some(match scan.feed(&chunk) {
                        Ok(()) => Ok(chunk),
                        Err(e) => Err(axum::Error::new(e)),
                    }),
                    other => other,
                }
            };
            next.map(|chunk| (chunk, body))
        })
    }

    async fn drain(&self, max: usize) {
        drop_up_to(&mut self.0.lock().await.0, max).await;
    }
}

/// Read and drop what a refused request sends: up to `REFUSED_DRAIN` bytes within `REFUSED_DRAIN_FOR`.
pub async fn drain_refused(body: Body) {
    let mut stream = body.into_data_stream();
    let _ = tokio::time::timeout(REFUSED_DRAIN_FOR, drop_up_to(&mut stream, REFUSED_DRAIN)).await;
}

/// Read and drop `stream` until it ends, fails, or more than `max` bytes went by.
async fn drop_up_to(stream: &mut BodyDataStream, max: usize) {
    let mut seen = 0;
    while let Some(Ok(chunk)) = stream.next().await {
        seen += chunk.len();
        if seen > max {
            break;
        }
    }
}

/// A part header (or the preamble before the first boundary) longer than `PART_HEADER_MAX`.
#[derive(Debug, thiserror::Error)]
#[error("a multipart part header (or the preamble) is longer than {PART_HEADER_MAX} bytes")]
pub struct HeaderTooLong;

/// Where a multipart stream is: the scan that bounds what multer would buffer whole.
#[derive(Debug, PartialEq)]
enum Scan {
    /// Before the first boundary (`n` bytes seen).
    Preamble(usize),
    /// In a part's headers (`n` bytes seen), up to the blank line.
    Header(usize),
    /// In a part's content, up to the next boundary.
    Content,
}

/// A streaming scan of a multipart body for its delimiters (`--boundary`) and header ends.
#[derive(Debug)]
pub struct PartHeaders {
    delimiter: Vec<u8>,
    scan: Scan,
    /// The end of the last chunk, so that a delimiter split across chunks is found.
    carry: Vec<u8>,
}

impl PartHeaders {
    pub fn new(boundary: &str) -> Self {
        Self {
            delimiter: format!("--{boundary}").into_bytes(),
            scan: Scan::Preamble(0),
            carry: Vec::new(),
        }
    }

    /// Scan the next chunk of the body.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), HeaderTooLong> {
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(chunk);
        let mut pos = 0;
        loop {
            let rest = &buf[pos..];
            let needle: &[u8] = match self.scan {
                Scan::Preamble(_) | Scan::Content => &self.delimiter,
                Scan::Header(_) => b"\r\n\r\n",
            };
            match memchr::memmem::find(rest, needle) {
                Some(i) => {
                    let seen = match self.scan {
                        Scan::Preamble(n) | Scan::Header(n) => n + i,
                        Scan::Content => 0,
                    };
                    if seen > PART_HEADER_MAX {
                        return Err(HeaderTooLong);
                    }
                    self.scan = match self.scan {
                        Scan::Header(_) => Scan::Content,
                        _ => Scan::Header(0),
                    };
                    pos += i + needle.len();
                }
                None => {
                    let keep = rest.len().min(needle.len() - 1);
                    let counted = rest.len() - keep;
                    match &mut self.scan {
                        Scan::Preamble(n) | Scan::Header(n) => {
                            *n += counted;
                            if *n > PART_HEADER_MAX {
                                return Err(HeaderTooLong);
                            }
                        }
                        Scan::Content => {}
                    }
                    self.carry = rest[counted..].to_vec();
                    return Ok(());
                }
            }
        }
    }
}

/// Refuse a body whose declared length is far beyond anything the endpoint takes, before reading it.
pub fn check_length(
    headers: &HeaderMap,
    file_max: usize,
    too_large: Refusal,
) -> Result<(), Refusal> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    match declared {
        Some(n) if n > whole_max(file_max) + DRAIN_SLACK => Err(too_large),
        _ => Ok(()),
    }
}

/// A nickname as shown on the wall: control characters dropped, whitespace collapsed.
pub fn clean_nickname(raw: &str) -> String {
    raw.chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .filter(|c| !c.is_control())
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// An upload id the page chose (for retries of one recording): short, URL-safe.
pub fn valid_upload_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicknames_are_cleaned() {
        assert_eq!(clean_nickname("  Ada \n\t Lovelace\u{7}  "), "Ada Lovelace");
        assert_eq!(clean_nickname("\u{0}\u{1}"), "");
    }

    #[test]
    fn upload_ids_are_short_and_url_safe() {
        assert!(valid_upload_id("rec-1_a"));
        assert!(!valid_upload_id(""));
        assert!(!valid_upload_id("a/b"));
        assert!(!valid_upload_id(&"x".repeat(65)));
    }

    #[test]
    fn a_declared_length_far_beyond_the_limit_is_refused_before_reading() {
        let mut h = HeaderMap::new();
        let too_large = Refusal::AudioTooLarge(1000);
        assert_eq!(check_length(&h, 1000, too_large), Ok(()));
        h.insert(header::CONTENT_LENGTH, "5000".parse().unwrap());
        assert_eq!(
            check_length(&h, 1000, too_large),
            Ok(()),
            "within the slack"
        );
        h.insert(
            header::CONTENT_LENGTH,
            (whole_max(1000) + DRAIN_SLACK + 1)
                .to_string()
                .parse()
                .unwrap(),
        );
        assert_eq!(check_length(&h, 1000, too_large), Err(too_large));
    }

    /// A multipart body of these `(name, bytes)` parts, and its headers.
    fn multipart(parts: &[(&str, &[u8])]) -> (HeaderMap, Body) {
        let mut body = Vec::new();
        for (name, bytes) in parts {
            body.extend_from_slice(
                format!("--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                    .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"--XyZ--\r\n");
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            "multipart/form-data; boundary=XyZ".parse().unwrap(),
        );
        (h, Body::from(body))
    }

    async fn read(parts: &[(&str, &[u8])]) -> Result<JoinForm, Refusal> {
        let (h, body) = multipart(parts);
        read_form(&h, body, "audio", 1000, Refusal::AudioTooLarge(1000), None).await
    }

    #[tokio::test]
    async fn forms_are_read_within_their_limits() {
        let form = read(&[
            ("token", b"t1"),
            ("upload_id", b"u1"),
            ("audio", &[7; 1000]),
        ])
        .await
        .unwrap();
        assert_eq!(form.token.as_deref(), Some("t1"));
        assert_eq!(form.upload_id.as_deref(), Some("u1"));
        assert_eq!(form.file.unwrap().len(), 1000);

        let too_large = read(&[("token", b"t1"), ("audio", &[7; 1001])]).await;
        assert_eq!(too_large.err(), Some(Refusal::AudioTooLarge(1000)));
        let long_text = vec![b'a'; TEXT_FIELD_MAX + 1];
        let bad = read(&[("nickname", &long_text)]).await;
        assert_eq!(
            bad.err(),
            Some(Refusal::BadForm),
            "a text field over its limit"
        );
        let bad = read(&[("token", b"t1"), ("payload", b"x")]).await;
        assert_eq!(
            bad.err(),
            Some(Refusal::BadForm),
            "a field that is not ours"
        );
        let bad = read(&[("nickname", &[0xff, 0xfe])]).await;
        assert_eq!(bad.err(), Some(Refusal::BadForm), "not UTF-8");
        let many: Vec<(&str, &[u8])> = vec![("token", b"t"); MAX_FIELDS + 1];
        assert_eq!(
            read(&many).await.err(),
            Some(Refusal::BadForm),
            "too many fields"
        );
        let no_boundary = read_form(
            &HeaderMap::new(),
            Body::from("x"),
            "audio",
            1000,
            Refusal::AudioTooLarge(1000),
            None,
        )
        .await;
        assert_eq!(no_boundary.err(), Some(Refusal::BadForm));
    }

    #[test]
    fn part_headers_and_the_preamble_are_bounded_across_chunks() {
        let mut scan = PartHeaders::new("XyZ");
        let form = b"--XyZ\r\nContent-Disposition: form-data; name=\"audio\"\r\n\r\n";
        // Split at every byte: the delimiter and the blank line are found across chunks.
        for b in form.iter() {
            scan.feed(&[*b]).unwrap();
        }
        assert_eq!(scan.scan, Scan::Content);
        scan.feed(&vec![7u8; 100_000])
            .expect("content is not a header");
        scan.feed(b"\r\n--X").unwrap();
        scan.feed(b"yZ\r\nContent-Disposition: x\r\n").unwrap();
        assert!(matches!(scan.scan, Scan::Header(_)));
        let never_ends = vec![b'a'; 1024];
        let mut refused = false;
        for _ in 0..(PART_HEADER_MAX / 1024 + 2) {
            if scan.feed(&never_ends).is_err() {
                refused = true;
                break;
            }
        }
        assert!(refused, "a header that never ends");
        let mut no_boundary = PartHeaders::new("XyZ");
        assert!(no_boundary.feed(&vec![b'x'; PART_HEADER_MAX + 10]).is_err());
    }

    #[tokio::test]
    async fn without_a_token_outside_the_body_the_form_starts_with_it() {
        let check = |t: &str| {
            if t == "good" {
                Ok(())
            } else {
                Err(Refusal::TokenInvalid)
            }
        };
        let form = |parts: &[(&str, &[u8])]| {
            let (h, body) = multipart(parts);
            async move {
                read_form(
                    &h,
                    body,
                    "audio",
                    1000,
                    Refusal::AudioTooLarge(1000),
                    Some(&check),
                )
                .await
            }
        };
        assert!(form(&[("token", b"good"), ("audio", &[7; 10])])
            .await
            .is_ok());
        assert_eq!(
            form(&[("audio", &[7; 10]), ("token", b"good")]).await.err(),
            Some(Refusal::TokenMissing)
        );
        assert_eq!(
            form(&[("token", b"forged"), ("audio", &[7; 10])])
                .await
                .err(),
            Some(Refusal::TokenInvalid)
        );
    }
}
