//! The WeChat server API as the wall uses it: the account's access_token (cached, renewed early,
//! refreshed one at a time and once more when the platform rejects it, kept in the store so that a
//! restart reuses it — an account gets 2,000 a day), temporary media, parametric QR codes, a follower's
//! unionid (`user/info`), web OAuth (code → openid → userinfo), customer-service text, and plain downloads.
//!
//! Errors arrive as HTTP 200 with a JSON `{errcode, errmsg}` body — for media/get even with a
//! `text/plain` content type — so a body is classified by sniffing, never by its headers.

use crate::clock::Clock;
use crate::provider::FetchError;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why a call failed, in the terms the caller acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WxError {
    /// Worth retrying later (busy, 5xx, timeouts).
    Retryable(String),
    /// Will not succeed by retrying (bad media id, bad appid, bad code).
    Permanent(String),
    /// errcode 40001/40014/42001: the access_token was rejected; refresh and retry once.
    TokenRejected(String),
}

impl std::fmt::Display for WxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WxError::Retryable(m) | WxError::Permanent(m) | WxError::TokenRejected(m) => {
                f.write_str(m)
            }
        }
    }
}

impl From<WxError> for FetchError {
    fn from(e: WxError) -> Self {
        match e {
            WxError::Permanent(m) => FetchError::permanent(m),
            WxError::Retryable(m) | WxError::TokenRejected(m) => FetchError::retryable(m),
        }
    }
}

/// errmsg without the per-request " rid: …" / " hint: […]" suffix.
fn clean_errmsg(msg: &str) -> &str {
    let cut = [" rid:", " hint:"]
        .iter()
        .filter_map(|s| msg.find(s))
        .min()
        .unwrap_or(msg.len());
    msg[..cut].trim()
}

/// `Err` when a JSON body carries a non-zero errcode, classified.
pub fn check_errcode(what: &str, v: &Value) -> Result<(), WxError> {
    let code = match v.get("errcode").and_then(Value::as_i64) {
        None | Some(0) => return Ok(()),
        Some(c) => c,
    };
    let msg = clean_errmsg(v.get("errmsg").and_then(Value::as_str).unwrap_or(""));
    let text = format!("WeChat {what}: errcode {code} {msg}")
        .trim_end()
        .to_string();
    Err(match code {
        40001 | 40014 | 42001 => WxError::TokenRejected(text),
        // -1 system busy; 45009 frequency limit: both pass.
        -1 | 45009 => WxError::Retryable(text),
        _ => WxError::Permanent(text),
    })
}

/// A body is a JSON error (or a JSON answer) when it looks like an object.
fn looks_like_json(body: &[u8]) -> bool {
    body.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{')
}

/// Content type of media bytes: the header unless it is generic, else by magic number.
pub fn sniff_content_type(body: &[u8], header: Option<&str>) -> String {
    let magic = if body.starts_with(b"#!AMR-WB\n") {
        Some("audio/amr-wb")
    } else if body.starts_with(b"#!AMR\n") {
        Some("audio/amr")
    } else if body.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if body.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if body.starts_with(b"GIF8") {
        Some("image/gif")
    } else if body.len() > 12 && &body[..4] == b"RIFF" && &body[8..12] == b"WEBP" {
        Some("image/webp")
    } else if body.len() > 8 && &body[4..8] == b"ftyp" {
        Some("video/mp4")
    } else {
        None
    };
    let header = header
        .map(|h| {
            h.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|h| !h.is_empty() && h != "application/octet-stream" && h != "text/plain");
    match (magic, header) {
        (Some(m), _) => m.to_string(),
        (None, Some(h)) => h,
        (None, None) => "application/octet-stream".to_string(),
    }
}

/// A parametric QR code.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct QrCode {
    pub ticket: String,
    #[serde(default)]
    pub expire_seconds: Option<u64>,
    pub url: String,
}

/// The web OAuth grant for one person.
#[derive(Debug, Clone, Deserialize)]
pub struct OauthGrant {
    pub access_token: String,
    pub openid: String,
    #[serde(default)]
    pub unionid: Option<String>,
}

/// `sns/userinfo`: what a person consented to share.
#[derive(Debug, Clone, Deserialize)]
pub struct UserInfo {
    pub openid: String,
    #[serde(default)]
    pub nickname: String,
    #[serde(default)]
    pub headimgurl: String,
    #[serde(default)]
    pub unionid: Option<String>,
}

/// The account's token, with wall-clock times (ms) so that it survives a restart in the store.
#[derive(Clone, Serialize, Deserialize)]
struct CachedToken {
    value: String,
    renew_at: u64,
    expires_at: u64,
}

/// One Official Account's API client.
pub struct WechatApi {
    http: reqwest::Client,
    app_id: String,
    secret: String,
    api_base: String,
    oauth_base: String,
    /// Held across a refresh: one refresh at a time, the others wait and reuse its token.
    token: tokio::sync::Mutex<Option<CachedToken>>,
    clock: Clock,
    /// Where the token is kept across restarts (`wechat_token:{app_id}` in the store's meta).
    saved: Option<Store>,
}

const MAX_MEDIA_BYTES: usize = 32 * 1024 * 1024;
pub const MAX_AVATAR_BYTES: usize = 4 * 1024 * 1024;

impl WechatApi {
    pub fn new(
        http: reqwest::Client,
        app_id: &str,
        secret: &str,
        api_base: &str,
        oauth_base: &str,
        clock: Clock,
        saved: Option<Store>,
    ) -> Self {
        Self {
            http,
            app_id: app_id.to_string(),
            secret: secret.to_string(),
            api_base: api_base.trim_end_matches('/').to_string(),
            oauth_base: oauth_base.trim_end_matches('/').to_string(),
            token: tokio::sync::Mutex::new(None),
            clock,
            saved,
        }
    }

    fn saved_key(&self) -> String {
        format!("wechat_token:{}", self.app_id)
    }

    /// The token a previous run kept, if it is still before its renewal time.
    fn load_saved(&self) -> Option<CachedToken> {
        let store = self.saved.as_ref()?;
        let text = store.meta_get(&self.saved_key()).ok().flatten()?;
        let t: CachedToken = serde_json::from_str(&text).ok()?;
        (self.clock.now_ms() < t.renew_at).then_some(t)
    }

    fn keep(&self, t: &CachedToken) {
        if let Some(store) = &self.saved {
            if let Ok(text) = serde_json::to_string(t) {
                if let Err(e) = store.meta_put(&self.saved_key(), &text) {
                    tracing::warn!(error = %e, "cannot keep the WeChat access_token; the next start fetches a new one");
                }
            }
        }
    }

    fn url(&self, path: &str, params: &[(&str, &str)]) -> Result<reqwest::Url, WxError> {
        reqwest::Url::parse_with_params(&format!("{}{path}", self.api_base), params)
            .map_err(|e| WxError::Permanent(format!("WeChat api_base is not a URL: {e}")))
    }

    /// Send and read the whole body (bounded). Transport failures and 5xx are retryable.
    async fn send(
        &self,
        what: &str,
        req: reqwest::RequestBuilder,
        max: usize,
    ) -> Result<(Vec<u8>, Option<String>), WxError> {
        let resp = req.send().await.map_err(|e| {
            WxError::Retryable(format!(
                "WeChat {what}: {}",
                if e.is_timeout() {
                    "timed out".to_string()
                } else if e.is_connect() {
                    "cannot connect".to_string()
                } else {
                    // Without the URL: it carries the app secret or the access token.
                    e.without_url().to_string()
                }
            ))
        })?;
        let status = resp.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(WxError::Retryable(format!(
                "WeChat {what}: HTTP {}",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            return Err(WxError::Permanent(format!(
                "WeChat {what}: HTTP {}",
                status.as_u16()
            )));
        }
        if resp.content_length().is_some_and(|l| l as usize > max) {
            return Err(WxError::Permanent(format!(
                "WeChat {what}: larger than {max} bytes"
            )));
        }
        let ct = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut resp = resp;
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    body.extend_from_slice(&c);
                    if body.len() > max {
                        return Err(WxError::Permanent(format!(
                            "WeChat {what}: larger than {max} bytes"
                        )));
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(WxError::Retryable(format!("WeChat {what}: body: {e}"))),
            }
        }
        Ok((body, ct))
    }

    async fn json(&self, what: &str, req: reqwest::RequestBuilder) -> Result<Value, WxError> {
        let (body, _) = self.send(what, req, 1024 * 1024).await?;
        let v: Value = serde_json::from_slice(&body)
            .map_err(|_| WxError::Retryable(format!("WeChat {what}: answer is not JSON")))?;
        check_errcode(what, &v)?;
        Ok(v)
    }

    /// The cached access_token (or the one a previous run kept), fetched or renewed (at 80 % of its
    /// life) when needed.
    pub async fn access_token(&self) -> Result<String, WxError> {
        let mut guard = self.token.lock().await;
        if guard.is_none() {
            *guard = self.load_saved();
        }
        if let Some(t) = guard.as_ref() {
            if self.clock.now_ms() < t.renew_at {
                return Ok(t.value.clone());
            }
        }
        let fresh = self.fetch_token().await?;
        let value = fresh.value.clone();
        *guard = Some(fresh);
        Ok(value)
    }

    /// The platform rejected `stale`: refresh, unless someone already did while we waited.
    async fn refresh_after_reject(&self, stale: &str) -> Result<String, WxError> {
        let mut guard = self.token.lock().await;
        if let Some(t) = guard.as_ref() {
            if t.value != stale && self.clock.now_ms() < t.expires_at {
                return Ok(t.value.clone());
            }
        }
        let fresh = self.fetch_token().await?;
        let value = fresh.value.clone();
        *guard = Some(fresh);
        Ok(value)
    }

    async fn fetch_token(&self) -> Result<CachedToken, WxError> {
        let url = self.url(
            "/cgi-bin/token",
            &[
                ("grant_type", "client_credential"),
                ("appid", &self.app_id),
                ("secret", &self.secret),
            ],
        )?;
        let v = self
            .json("token", self.http.get(url))
            .await
            .map_err(|e| match e {
                // A rejected credential while fetching a token is a config problem, not a stale token.
                WxError::TokenRejected(m) => WxError::Permanent(m),
                other => other,
            })?;
        let value = v
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                WxError::Retryable("WeChat token: no access_token in the answer".into())
            })?
            .to_string();
        let expires_in = v
            .get("expires_in")
            .and_then(Value::as_u64)
            .unwrap_or(7200)
            .max(1);
        let now = self.clock.now_ms();
        tracing::info!(expires_in, "WeChat access_token renewed");
        let token = CachedToken {
            value,
            renew_at: now + expires_in * 800,
            expires_at: now + expires_in * 1000,
        };
        self.keep(&token);
        Ok(token)
    }

    /// Run `call` with the token; on a rejected token refresh once and run it again.
    async fn with_token<T, F, Fut>(&self, call: F) -> Result<T, WxError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, WxError>>,
    {
        let token = self.access_token().await?;
        match call(token.clone()).await {
            Err(WxError::TokenRejected(m)) => {
                tracing::info!(reason = %m, "WeChat rejected the access_token; refreshing once");
                let fresh = self.refresh_after_reject(&token).await?;
                match call(fresh).await {
                    Err(WxError::TokenRejected(m)) => Err(WxError::Retryable(m)),
                    other => other,
                }
            }
            other => other,
        }
    }

    /// `cgi-bin/media/get`: bytes and content type. Video answers `{"video_url"}`, which is downloaded.
    pub async fn media_get(&self, media_id: &str) -> Result<(Vec<u8>, String), WxError> {
        let (body, ct) = self
            .with_token(|token| async move {
                let url = self.url(
                    "/cgi-bin/media/get",
                    &[("access_token", &token), ("media_id", media_id)],
                )?;
                let (body, ct) = self
                    .send("media/get", self.http.get(url), MAX_MEDIA_BYTES)
                    .await?;
                if looks_like_json(&body) {
                    if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                        check_errcode("media/get", &v)?;
                    }
                }
                Ok((body, ct))
            })
            .await?;
        if looks_like_json(&body) {
            if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                return match v.get("video_url").and_then(Value::as_str) {
                    Some(u) if !u.is_empty() => {
                        self.download("media/get video_url", u, MAX_MEDIA_BYTES)
                            .await
                    }
                    _ => Err(WxError::Permanent(
                        "WeChat media/get: unexpected JSON answer".into(),
                    )),
                };
            }
        }
        if body.is_empty() {
            return Err(WxError::Retryable("WeChat media/get: empty body".into()));
        }
        let ct = sniff_content_type(&body, ct.as_deref());
        Ok((body, ct))
    }

    /// A plain download (video_url, avatar): bytes and sniffed content type.
    pub async fn download(
        &self,
        what: &str,
        url: &str,
        max: usize,
    ) -> Result<(Vec<u8>, String), WxError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|_| WxError::Permanent(format!("WeChat {what}: not a URL")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(WxError::Permanent(format!(
                "WeChat {what}: not an http(s) URL"
            )));
        }
        let (body, ct) = self.send(what, self.http.get(parsed), max).await?;
        if looks_like_json(&body) {
            if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                check_errcode(what, &v)?;
            }
        }
        let ct = sniff_content_type(&body, ct.as_deref());
        Ok((body, ct))
    }

    /// `cgi-bin/qrcode/create` with a string scene, temporary (at most 30 days).
    pub async fn qrcode_create(&self, scene: &str, expire_seconds: u64) -> Result<QrCode, WxError> {
        let body = serde_json::json!({
            "expire_seconds": expire_seconds,
            "action_name": "QR_STR_SCENE",
            "action_info": {"scene": {"scene_str": scene}},
        });
        let v = self
            .with_token(|token| {
                let body = body.clone();
                async move {
                    let url = self.url("/cgi-bin/qrcode/create", &[("access_token", &token)])?;
                    self.json("qrcode/create", self.http.post(url).json(&body))
                        .await
                }
            })
            .await?;
        serde_json::from_value(v).map_err(|e| {
            WxError::Retryable(format!("WeChat qrcode/create: unexpected answer: {e}"))
        })
    }

    /// `cgi-bin/user/info`: a follower's unionid, the platform-wide id that links one person across the
    /// accounts of one open platform (absent when the account is not bound to one). Since 2021-12-27 it
    /// no longer returns the nickname or avatar.
    pub async fn user_unionid(&self, openid: &str) -> Result<Option<String>, WxError> {
        self.with_token(|token| async move {
            let url = self.url(
                "/cgi-bin/user/info",
                &[
                    ("access_token", &token),
                    ("openid", openid),
                    ("lang", "zh_CN"),
                ],
            )?;
            let v = self.json("user/info", self.http.get(url)).await?;
            Ok(v.get("unionid")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_string))
        })
        .await
    }

    /// `cgi-bin/message/custom/send`, text.
    pub async fn custom_send_text(&self, openid: &str, text: &str) -> Result<(), WxError> {
        let body =
            serde_json::json!({"touser": openid, "msgtype": "text", "text": {"content": text}});
        self.with_token(|token| {
            let body = body.clone();
            async move {
                let url = self.url("/cgi-bin/message/custom/send", &[("access_token", &token)])?;
                self.json("message/custom/send", self.http.post(url).json(&body))
                    .await
            }
        })
        .await?;
        Ok(())
    }

    /// Where the join page sends a person to consent (`snsapi_userinfo`).
    pub fn authorize_url(&self, redirect_uri: &str, state: &str) -> String {
        let mut url = reqwest::Url::parse_with_params(
            &format!("{}/connect/oauth2/authorize", self.oauth_base),
            &[
                ("appid", self.app_id.as_str()),
                ("redirect_uri", redirect_uri),
                ("response_type", "code"),
                ("scope", "snsapi_userinfo"),
                ("state", state),
            ],
        )
        .expect("oauth_base is validated at start");
        url.set_fragment(Some("wechat_redirect"));
        url.to_string()
    }

    /// `sns/oauth2/access_token`: the code from the redirect → the person's openid and web token.
    pub async fn oauth_exchange(&self, code: &str) -> Result<OauthGrant, WxError> {
        let url = self.url(
            "/sns/oauth2/access_token",
            &[
                ("appid", &self.app_id),
                ("secret", &self.secret),
                ("code", code),
                ("grant_type", "authorization_code"),
            ],
        )?;
        let v = self
            .json("sns/oauth2/access_token", self.http.get(url))
            .await
            .map_err(|e| match e {
                // The web token is per person: "invalid credential" here means a bad code or secret.
                WxError::TokenRejected(m) => WxError::Permanent(m),
                other => other,
            })?;
        serde_json::from_value(v).map_err(|e| {
            WxError::Permanent(format!(
                "WeChat sns/oauth2/access_token: unexpected answer: {e}"
            ))
        })
    }

    /// `sns/userinfo` with a person's web token.
    pub async fn userinfo(&self, grant: &OauthGrant) -> Result<UserInfo, WxError> {
        let url = self.url(
            "/sns/userinfo",
            &[
                ("access_token", &grant.access_token),
                ("openid", &grant.openid),
                ("lang", "zh_CN"),
            ],
        )?;
        let v = self
            .json("sns/userinfo", self.http.get(url))
            .await
            .map_err(|e| match e {
                WxError::TokenRejected(m) => WxError::Permanent(m),
                other => other,
            })?;
        serde_json::from_value(v)
            .map_err(|e| WxError::Permanent(format!("WeChat sns/userinfo: unexpected answer: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errcodes_are_classified() {
        let v = serde_json::json!({"errcode": 40007, "errmsg": "invalid media_id hint: [C.5Jka05499012] rid: 66bd627d-234f6532-5f252680"});
        assert_eq!(
            check_errcode("media/get", &v),
            Err(WxError::Permanent(
                "WeChat media/get: errcode 40007 invalid media_id".into()
            ))
        );
        let v = serde_json::json!({"errcode": -1, "errmsg": "system error"});
        assert!(matches!(check_errcode("x", &v), Err(WxError::Retryable(_))));
        for c in [40001, 40014, 42001] {
            let v = serde_json::json!({"errcode": c, "errmsg": "x"});
            assert!(matches!(
                check_errcode("x", &v),
                Err(WxError::TokenRejected(_))
            ));
        }
        assert!(check_errcode("x", &serde_json::json!({"errcode": 0, "errmsg": "ok"})).is_ok());
        assert!(check_errcode("x", &serde_json::json!({"access_token": "t"})).is_ok());
    }

    #[test]
    fn content_type_is_sniffed() {
        assert_eq!(
            sniff_content_type(b"#!AMR\n\x3c", Some("text/plain")),
            "audio/amr"
        );
        assert_eq!(sniff_content_type(b"\xff\xd8\xff\xe0", None), "image/jpeg");
        assert_eq!(
            sniff_content_type(b"xx", Some("audio/mpeg; x=1")),
            "audio/mpeg"
        );
        assert_eq!(
            sniff_content_type(b"xx", Some("text/plain")),
            "application/octet-stream"
        );
        assert!(looks_like_json(b"  {\"errcode\":1}"));
        assert!(!looks_like_json(b"#!AMR\n"));
    }
}
