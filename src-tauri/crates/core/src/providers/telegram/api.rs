//! The Bot API as the wall uses it: `getFile` and the file download, `getUserProfilePhotos` (the
//! avatar), `sendMessage` (the welcome) and `setWebhook`.
//!
//! Every method is `POST {api_base}/bot<token>/<method>` with a JSON body, answered by the envelope
//! `{ok, result | error_code, description, parameters}`. Files come from
//! `GET {api_base}/file/bot<token>/<file_path>`, at most 20 MB for bots.
//!
//! The bot token is in every one of those URLs: no URL is ever logged or put in an error, and the
//! wall never links to a file (it downloads and caches it).
//!
//! Errors are classified for the pipeline's retry rules: transport failures, 5xx and an expired file
//! link are retryable; a 429 is waited out here for its `parameters.retry_after` (a few times, up to
//! a bound), and stays retryable after that; other 4xx (a bad file id, a file too big, a bad token)
//! are permanent.

use super::types::{Envelope, File, Message, PhotoSize, UserProfilePhotos};
use super::update::MediaRef;
use crate::provider::FetchError;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::time::Duration;

/// The Bot API's download cap for bots (getFile refuses bigger files).
pub const MAX_DOWNLOAD_BYTES: u64 = 20 * 1024 * 1024;
/// An avatar bigger than this is not worth a wall tile.
pub const MAX_AVATAR_BYTES: u64 = 4 * 1024 * 1024;
/// The widest profile photo size fetched (the wall shows a small circle).
const AVATAR_WIDTH: i64 = 640;
/// Largest JSON answer read.
const MAX_ANSWER_BYTES: u64 = 1024 * 1024;

/// Why a call failed, in the terms the caller acts on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BotApiError {
    /// Worth retrying later: transport, 5xx, a file link that expired, an unreadable answer.
    #[error("{0}")]
    Retryable(String),
    /// Still rate limited after waiting as Telegram asked.
    #[error("Telegram {method}: too many requests (Telegram asks to wait {retry_after_s} s)")]
    RateLimited {
        method: &'static str,
        retry_after_s: u64,
    },
    /// Will not succeed by retrying.
    #[error("{0}")]
    Permanent(String),
}

impl From<BotApiError> for FetchError {
    fn from(e: BotApiError) -> Self {
        match e {
            BotApiError::Permanent(m) => FetchError::permanent(m),
            other => FetchError::retryable(other.to_string()),
        }
    }
}

/// How 429 answers are honoured inside one call.
#[derive(Clone, Copy, Debug)]
pub struct RateLimitPolicy {
    /// How many times one call waits out a 429 before giving up (retryable).
    pub max_waits: u32,
    /// A `retry_after` longer than this is not waited out here (the pipeline's backoff takes over).
    pub max_wait: Duration,
}

impl Default for RateLimitPolicy {
    fn default() -> Self {
        Self {
            max_waits: 3,
            max_wait: Duration::from_secs(60),
        }
    }
}

/// One bot's API client.
#[derive(Clone)]
pub struct BotApi {
    http: reqwest::Client,
    base: String,
    token: String,
    rate_limit: RateLimitPolicy,
}

impl std::fmt::Debug for BotApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotApi")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// The readable reason a file is refused for its size.
pub fn too_big(size: u64) -> String {
    format!(
        "the file is {:.1} MB; Telegram lets bots download at most {} MB",
        size as f64 / (1024.0 * 1024.0),
        MAX_DOWNLOAD_BYTES / (1024 * 1024)
    )
}

/// What a transport error may say: never its URL (it carries the bot token).
fn transport(what: &str, e: reqwest::Error) -> BotApiError {
    let why = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        e.without_url().to_string()
    };
    BotApiError::Retryable(format!("Telegram {what}: {why}"))
}

/// A `file_path` as getFile hands it out (`voice/file_12.oga`): relative, no `..`, URL-safe.
fn safe_file_path(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && p.split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'.'))
}

impl BotApi {
    pub fn new(http: reqwest::Client, api_base: &str, token: &str) -> Self {
        Self {
            http,
            base: api_base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            rate_limit: RateLimitPolicy::default(),
        }
    }

    pub fn with_rate_limit(mut self, policy: RateLimitPolicy) -> Self {
        self.rate_limit = policy;
        self
    }

    /// Call a method; on a 429 wait `retry_after` and call again (bounded).
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: &Value,
    ) -> Result<T, BotApiError> {
        self.call_described(method, params).await.map(|(r, _)| r)
    }

    /// As `call`, with the `description` a successful answer may carry ("Webhook was set").
    pub async fn call_described<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: &Value,
    ) -> Result<(T, Option<String>), BotApiError> {
        let mut waits = 0;
        loop {
            match self.call_once(method, params).await {
                Err(BotApiError::RateLimited {
                    method,
                    retry_after_s,
                }) => {
                    let wait = Duration::from_secs(retry_after_s);
                    if waits >= self.rate_limit.max_waits || wait > self.rate_limit.max_wait {
                        return Err(BotApiError::RateLimited {
                            method,
                            retry_after_s,
                        });
                    }
                    waits += 1;
                    tracing::info!(
                        method,
                        retry_after_s,
                        "Telegram rate limit: waiting as asked"
                    );
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    async fn call_once<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: &Value,
    ) -> Result<(T, Option<String>), BotApiError> {
        let url = format!("{}/bot{}/{method}", self.base, self.token);
        let resp = self
            .http
            .post(url)
            .json(params)
            .send()
            .await
            .map_err(|e| transport(method, e))?;
        let status = resp.status().as_u16();
        let body = read_bounded(method, resp, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| match e {
                Read::TooBig(_) => {
                    BotApiError::Retryable(format!("Telegram {method}: answer too large"))
                }
                Read::Failed(e) => e,
            })?;
        let envelope: Envelope<T> = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) if status >= 500 => {
                return Err(BotApiError::Retryable(format!(
                    "Telegram {method}: HTTP {status}"
                )))
            }
            Err(e) => {
                return Err(BotApiError::Retryable(format!(
                    "Telegram {method}: unexpected answer (HTTP {status}): {e}"
                )))
            }
        };
        if envelope.ok {
            return match envelope.result {
                Some(r) => Ok((r, envelope.description)),
                None => Err(BotApiError::Retryable(format!(
                    "Telegram {method}: an ok answer without a result"
                ))),
            };
        }
        Err(classify_error(method, status, &envelope))
    }

    /// `getFile`: the path to download a file from (valid for at least an hour).
    pub async fn get_file(&self, file_id: &str) -> Result<File, BotApiError> {
        self.call("getFile", &json!({ "file_id": file_id })).await
    }

    /// Download `file_path` (from getFile), at most `max` bytes.
    pub async fn download(&self, file_path: &str, max: u64) -> Result<Vec<u8>, BotApiError> {
        if !safe_file_path(file_path) {
            return Err(BotApiError::Permanent(
                "Telegram getFile: an unexpected file_path".into(),
            ));
        }
        let url = format!("{}/file/bot{}/{file_path}", self.base, self.token);
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| transport("file download", e))?;
        let status = resp.status().as_u16();
        match status {
            200..=299 => {}
            // The link expired (or the file moved): a fresh getFile gives a new one.
            404 => {
                return Err(BotApiError::Retryable(
                    "Telegram file download: HTTP 404 (the link expired; will ask getFile again)"
                        .into(),
                ))
            }
            429 | 500..=599 => {
                return Err(BotApiError::Retryable(format!(
                    "Telegram file download: HTTP {status}"
                )))
            }
            _ => {
                return Err(BotApiError::Permanent(format!(
                    "Telegram file download: HTTP {status}"
                )))
            }
        }
        match read_bounded("file download", resp, max).await {
            Ok(body) if body.is_empty() => Err(BotApiError::Retryable(
                "Telegram file download: empty body".into(),
            )),
            Ok(body) => Ok(body),
            Err(Read::TooBig(n)) => Err(BotApiError::Permanent(too_big(n))),
            Err(Read::Failed(e)) => Err(e),
        }
    }

    /// A message's media: refused above the download cap (from the update's `file_size`, from
    /// getFile's, and while downloading), its MIME type kept from the message.
    pub async fn fetch_media(&self, media: &MediaRef) -> Result<(Vec<u8>, String), BotApiError> {
        let over = |size: Option<i64>| size.filter(|&s| s as u64 > MAX_DOWNLOAD_BYTES);
        if let Some(size) = over(media.file_size) {
            return Err(BotApiError::Permanent(too_big(size as u64)));
        }
        let file = self.get_file(&media.file_id).await?;
        if let Some(size) = over(file.file_size) {
            return Err(BotApiError::Permanent(too_big(size as u64)));
        }
        let path = file.file_path.ok_or_else(|| {
            BotApiError::Permanent(
                "Telegram getFile: the file cannot be downloaded (no file_path)".into(),
            )
        })?;
        let bytes = self.download(&path, MAX_DOWNLOAD_BYTES).await?;
        Ok((bytes, media.mime_type.clone()))
    }

    /// `getUserProfilePhotos`, newest first.
    pub async fn get_user_profile_photos(
        &self,
        user_id: i64,
        limit: u32,
    ) -> Result<UserProfilePhotos, BotApiError> {
        self.call(
            "getUserProfilePhotos",
            &json!({ "user_id": user_id, "offset": 0, "limit": limit }),
        )
        .await
    }

    /// The person's current profile photo as JPEG bytes, `None` when they have none (or hide it).
    pub async fn avatar(&self, user_id: i64) -> Result<Option<Vec<u8>>, BotApiError> {
        let photos = self.get_user_profile_photos(user_id, 1).await?;
        let Some(size) = photos.photos.first().and_then(|sizes| pick_size(sizes)) else {
            return Ok(None);
        };
        let file = self.get_file(&size.file_id).await?;
        let Some(path) = file.file_path else {
            return Ok(None);
        };
        let bytes = self.download(&path, MAX_AVATAR_BYTES).await?;
        // Profile photos are JPEG; anything else is not shown as one.
        if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            return Err(BotApiError::Permanent(
                "Telegram profile photo: not a JPEG".into(),
            ));
        }
        Ok(Some(bytes))
    }

    /// `sendMessage` with plain text.
    pub async fn send_message(&self, chat_id: i64, text: &str) -> Result<Message, BotApiError> {
        self.call("sendMessage", &json!({ "chat_id": chat_id, "text": text }))
            .await
    }

    /// `setWebhook` for message updates only, with the secret Telegram sends back. Returns
    /// Telegram's description ("Webhook was set").
    pub async fn set_webhook(&self, url: &str, secret_token: &str) -> Result<String, BotApiError> {
        let (set, description): (bool, _) = self
            .call_described(
                "setWebhook",
                &json!({
                    "url": url,
                    "secret_token": secret_token,
                    // Omitting it would keep whatever the bot had before.
                    "allowed_updates": ["message"],
                }),
            )
            .await?;
        if !set {
            return Err(BotApiError::Permanent(
                "Telegram setWebhook: answered false".into(),
            ));
        }
        Ok(description.unwrap_or_else(|| "Webhook was set".into()))
    }
}

/// The biggest size not wider than the wall needs (sizes come ascending), else the smallest.
fn pick_size(sizes: &[PhotoSize]) -> Option<&PhotoSize> {
    sizes
        .iter()
        .filter(|s| s.width <= AVATAR_WIDTH)
        .max_by_key(|s| s.width)
        .or_else(|| sizes.iter().min_by_key(|s| s.width))
}

/// An error envelope, classified.
fn classify_error<T>(method: &'static str, status: u16, e: &Envelope<T>) -> BotApiError {
    let code = e.error_code.map_or(status, |c| c as u16);
    let description = e.description.as_deref().unwrap_or("no description");
    if code == 429 {
        return BotApiError::RateLimited {
            method,
            retry_after_s: e
                .parameters
                .as_ref()
                .and_then(|p| p.retry_after)
                .unwrap_or(1),
        };
    }
    if description.contains("file is too big") {
        return BotApiError::Permanent(format!(
            "Telegram {method}: {description} (bots may download at most {} MB)",
            MAX_DOWNLOAD_BYTES / (1024 * 1024)
        ));
    }
    let text = format!("Telegram {method}: {code} {description}");
    match code {
        500..=599 => BotApiError::Retryable(text),
        401 => BotApiError::Permanent(format!(
            "{text} (the bot token was refused: check walls.telegram.bot_token)"
        )),
        _ => BotApiError::Permanent(text),
    }
}

enum Read {
    TooBig(u64),
    Failed(BotApiError),
}

/// The whole body, refusing more than `max` bytes (by Content-Length first, then while reading).
async fn read_bounded(what: &str, mut resp: reqwest::Response, max: u64) -> Result<Vec<u8>, Read> {
    if let Some(len) = resp.content_length().filter(|&l| l > max) {
        return Err(Read::TooBig(len));
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                body.extend_from_slice(&c);
                if body.len() as u64 > max {
                    return Err(Read::TooBig(body.len() as u64));
                }
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(Read::Failed(transport(what, e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<T: DeserializeOwned>(v: Value) -> Envelope<T> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn errors_are_classified() {
        let e: Envelope<File> = env(
            json!({"ok": false, "error_code": 400, "description": "Bad Request: invalid file_id"}),
        );
        assert_eq!(
            classify_error("getFile", 400, &e),
            BotApiError::Permanent("Telegram getFile: 400 Bad Request: invalid file_id".into())
        );
        let e: Envelope<File> = env(
            json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 7", "parameters": {"retry_after": 7}}),
        );
        assert_eq!(
            classify_error("getFile", 429, &e),
            BotApiError::RateLimited {
                method: "getFile",
                retry_after_s: 7
            }
        );
        let e: Envelope<File> =
            env(json!({"ok": false, "error_code": 502, "description": "Bad Gateway"}));
        assert!(matches!(
            classify_error("getFile", 502, &e),
            BotApiError::Retryable(_)
        ));
        let e: Envelope<File> = env(
            json!({"ok": false, "error_code": 400, "description": "Bad Request: file is too big"}),
        );
        let BotApiError::Permanent(m) = classify_error("getFile", 400, &e) else {
            panic!()
        };
        assert!(m.contains("20 MB"), "{m}");
        let e: Envelope<File> =
            env(json!({"ok": false, "error_code": 401, "description": "Unauthorized"}));
        let BotApiError::Permanent(m) = classify_error("getFile", 401, &e) else {
            panic!()
        };
        assert!(m.contains("walls.telegram.bot_token"), "{m}");
    }

    #[test]
    fn too_big_reads_well() {
        assert_eq!(
            too_big(25 * 1024 * 1024 + 300 * 1024),
            "the file is 25.3 MB; Telegram lets bots download at most 20 MB"
        );
    }

    #[test]
    fn file_paths_are_checked() {
        assert!(safe_file_path("voice/file_12.oga"));
        assert!(safe_file_path("photos/file_0.jpg"));
        assert!(!safe_file_path("../bot1/getMe"));
        assert!(!safe_file_path("voice/../../x"));
        assert!(!safe_file_path("/etc/passwd"));
        assert!(!safe_file_path("voice/a?b"));
        assert!(!safe_file_path(""));
    }

    #[test]
    fn the_avatar_size_fits_the_wall() {
        let s = |w| PhotoSize {
            file_id: format!("f{w}"),
            file_unique_id: None,
            width: w,
            height: w,
            file_size: None,
        };
        assert_eq!(pick_size(&[s(160), s(320), s(640)]).unwrap().width, 640);
        assert_eq!(pick_size(&[s(160), s(640), s(1280)]).unwrap().width, 640);
        assert_eq!(pick_size(&[s(800), s(1280)]).unwrap().width, 800);
        assert!(pick_size(&[]).is_none());
    }

    #[test]
    fn debug_hides_the_token() {
        let api = BotApi::new(
            reqwest::Client::new(),
            "http://127.0.0.1:9",
            "123:SECRETSECRETSECRETSECRET",
        );
        assert!(!format!("{api:?}").contains("SECRET"));
    }
}
