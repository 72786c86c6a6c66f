//! Reading a join form: multipart, field by field, each against its limit (the one file field against
//! the wall's configured size, text fields small), a bounded number of fields; and the small text rules
//! (nicknames, upload ids).

use super::refusal::Refusal;
use axum::extract::multipart::MultipartRejection;
use axum::extract::Multipart;
use axum::http::{header, HeaderMap};

/// Text fields (nickname, token, upload id) are small; anything longer is refused.
const TEXT_FIELD_MAX: usize = 4 * 1024;
/// A form has a handful of fields; more is not our page.
const MAX_FIELDS: usize = 12;
/// Oversized uploads are read (and dropped) up to this much past the limit, so that the browser gets our
/// 413 answer instead of a reset connection; beyond it the connection is cut short.
const DRAIN_SLACK: usize = 2 * 1024 * 1024;
/// The parts of a join form, read field by field against the wall's limits.
#[derive(Default)]
pub struct JoinForm {
    pub token: Option<String>,
    pub nickname: Option<String>,
    pub avatar_mode: Option<String>,
    pub upload_id: Option<String>,
    /// (field name, bytes) of the one file field the endpoint expects.
    pub file: Option<Vec<u8>>,
}

/// Read a multipart body. `file_field` is the one file this endpoint takes, limited to `file_max` bytes
/// (`too_large` names the refusal). Unknown fields are read and dropped, within the same bounds.
pub async fn read_form(
    multipart: Result<Multipart, MultipartRejection>,
    file_field: &str,
    file_max: usize,
    too_large: Refusal,
) -> Result<JoinForm, Refusal> {
    let mut multipart = multipart.map_err(|_| Refusal::BadForm)?;
    let mut form = JoinForm::default();
    let mut fields = 0;
    while let Some(mut field) = multipart.next_field().await.map_err(|_| Refusal::BadForm)? {
        fields += 1;
        if fields > MAX_FIELDS {
            return Err(Refusal::BadForm);
        }
        let name = field.name().unwrap_or("").to_string();
        let max = if name == file_field {
            file_max
        } else {
            TEXT_FIELD_MAX
        };
        let mut buf = Vec::new();
        let mut over = false;
        let mut seen = 0usize;
        while let Some(chunk) =
            field
                .chunk()
                .await
                .map_err(|_| if over { too_large } else { Refusal::BadForm })?
        {
            seen += chunk.len();
            if seen > max {
                over = true;
                if seen > max + DRAIN_SLACK {
                    break;
                }
                continue;
            }
            buf.extend_from_slice(&chunk);
        }
        if over {
            return Err(if name == file_field {
                too_large
            } else {
                Refusal::BadForm
            });
        }
        let text = || String::from_utf8(buf.clone()).map_err(|_| Refusal::BadForm);
        match name.as_str() {
            n if n == file_field => form.file = Some(buf),
            "token" => form.token = Some(text()?),
            "nickname" => form.nickname = Some(text()?),
            "avatar_mode" => form.avatar_mode = Some(text()?),
            "upload_id" => form.upload_id = Some(text()?),
            _ => {}
        }
    }
    Ok(form)
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
        Some(n) if n > file_max + MAX_FIELDS * TEXT_FIELD_MAX + DRAIN_SLACK => Err(too_large),
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
            (1000 + MAX_FIELDS * TEXT_FIELD_MAX + DRAIN_SLACK + 1)
                .to_string()
                .parse()
                .unwrap(),
        );
        assert_eq!(check_length(&h, 1000, too_large), Err(too_large));
    }
}
