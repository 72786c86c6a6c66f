//! The WeChat join page (patent claims 5–6, and the profile of step 13): `user/info` no longer returns a
//! nickname or avatar, so the person's profile comes from web OAuth (`snsapi_userinfo`).
//!
//! `consent_redirect` (what `GET /join/{wall}` does on a WeChat wall) sends the phone to WeChat's
//! consent page with a signed `state`; `GET /join/{wall}/oauth` exchanges the code, reads userinfo,
//! caches the avatar, stores the profile by openid and makes the person a participant, then shows a small
//! "you're in" page. Failures show a friendly page with a retry link, never a stack trace.

use super::account::Account;
use super::api::{WxError, MAX_AVATAR_BYTES};
use super::config::PROVIDER;
use crate::board::participant_id;
use crate::domain::{FetchedProfile, Inbound, InboundKind, MediaKey};
use crate::http::state::media_url;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use std::sync::Arc;

/// How long a consent round trip may take.
const STATE_TTL_S: u64 = 30 * 60;

fn state_mac(p: &Account, wall: &str, ts: &str, nonce: &str) -> String {
    // Keyed by the app secret, which never leaves the kiosk: no extra secret to store.
    let mut mac =
        Hmac::<Sha256>::new_from_slice(format!("oauth-state:{}", p.config.app_secret).as_bytes())
            .expect("any key length");
    mac.update(format!("{wall}|{ts}|{nonce}").as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// A `state` for the consent round trip: letters and digits only (WeChat's rule), signed, timestamped.
fn make_state(p: &Account, wall: &str, now_s: u64) -> String {
    let ts = now_s.to_string();
    let nonce = hex::encode(rand::random::<[u8; 6]>());
    let mac = state_mac(p, wall, &ts, &nonce);
    format!("{ts}Z{nonce}Z{mac}")
}

fn check_state(p: &Account, wall: &str, state: &str, now_s: u64) -> bool {
    let mut parts = state.split('Z');
    let (Some(ts), Some(nonce), Some(mac), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(t) = ts.parse::<u64>() else {
        return false;
    };
    if t > now_s + 60 || now_s.saturating_sub(t) > STATE_TTL_S {
        return false;
    }
    super::crypto::signature_matches(&state_mac(p, wall, ts, nonce), mac)
}

/// `GET /join/{wall}` for a WeChat wall: 302 to WeChat's consent page.
pub fn consent_redirect(p: &Account) -> Response {
    let redirect_uri = format!("{}/oauth", p.join_page_url());
    let url = p
        .api
        .authorize_url(&redirect_uri, &make_state(p, &p.wall, p.clock.now_s()));
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, url),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct OauthQuery {
    pub code: Option<String>,
    pub state: Option<String>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(status: StatusCode, lang: &str, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{t}</title><style>body{{font-family:system-ui,sans-serif;background:#0b1020;color:#fff;text-align:center;padding:12vh 6vw}}img{{width:120px;height:120px;border-radius:50%;object-fit:cover}}a{{color:#ffb703;font-size:1.2em}}h1{{font-size:1.8em}}</style></head><body><h1>{t}</h1>{body}</body></html>",
        t = esc(title)
    );
    (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

fn failure(p: &Account, status: StatusCode, detail_en: &str, detail_zh: &str) -> Response {
    let retry = esc(&p.join_page_url());
    if p.english() {
        page(
            status,
            "en",
            "That did not work",
            &format!(
                "<p>{}</p><p><a href=\"{retry}\">Try again</a></p>",
                esc(detail_en)
            ),
        )
    } else {
        page(
            status,
            "zh-CN",
            "没有成功",
            &format!(
                "<p>{}</p><p><a href=\"{retry}\">重试</a></p>",
                esc(detail_zh)
            ),
        )
    }
}

/// `GET /join/{wall}/oauth?code=…&state=…`: WeChat's redirect after consent.
#[tracing::instrument(skip_all, fields(wall = %p.wall))]
pub async fn oauth_callback(
    State(p): State<Arc<Account>>,
    Query(q): Query<OauthQuery>,
) -> Response {
    let p = &*p;
    let wall = p.wall.as_str();
    let Some(code) = q.code.as_deref().filter(|c| !c.is_empty()) else {
        // WeChat redirects without a code when the person declines.
        return failure(
            p,
            StatusCode::OK,
            "You did not allow the wall to use your WeChat name and photo. You can still send voice messages to the account.",
            "你没有授权使用微信昵称和头像。你仍可以给公众号发送语音。",
        );
    };
    if !q
        .state
        .as_deref()
        .is_some_and(|s| check_state(p, wall, s, p.clock.now_s()))
    {
        p.metrics.inc_rejected();
        tracing::info!("OAuth callback with a missing, forged or expired state");
        return failure(
            p,
            StatusCode::BAD_REQUEST,
            "This link has expired. Please start again.",
            "链接已过期，请重新开始。",
        );
    }
    match complete(p, code).await {
        Ok((name, avatar)) => {
            let img = avatar
                .map(|key| format!("<p><img src=\"{}\" alt=\"\"></p>", esc(&media_url(&key))))
                .unwrap_or_default();
            if p.english() {
                page(
                    StatusCode::OK,
                    "en",
                    "You're in!",
                    &format!("{img}<p>Welcome, {}. Look for yourself on the big screen, then send a voice message to the account.</p>", esc(&name)),
                )
            } else {
                page(
                    StatusCode::OK,
                    "zh-CN",
                    "你已上墙！",
                    &format!(
                        "{img}<p>欢迎，{}。在大屏幕上找到自己，然后给公众号发送语音吧。</p>",
                        esc(&name)
                    ),
                )
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "OAuth join failed");
            let (status, en, zh) = match e {
                JoinError::Platform(WxError::Permanent(_)) => (
                    StatusCode::BAD_REQUEST,
                    "WeChat did not accept this sign-in (it may have been used already). Please start again.",
                    "微信未接受本次授权（可能已被使用），请重新开始。",
                ),
                JoinError::Platform(_) => (
                    StatusCode::BAD_GATEWAY,
                    "WeChat is not answering right now. Please try again in a moment.",
                    "微信暂时没有响应，请稍后再试。",
                ),
                JoinError::Store(_) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The wall could not save your profile. Please try again.",
                    "大屏暂时无法保存你的资料，请重试。",
                ),
            };
            failure(p, status, en, zh)
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum JoinError {
    #[error("{0}")]
    Platform(WxError),
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
}

/// Exchange the code, read the profile, cache the avatar, store by openid, join the wall.
async fn complete(p: &Account, code: &str) -> Result<(String, Option<MediaKey>), JoinError> {
    let wall = p.wall.as_str();
    let grant = p
        .api
        .oauth_exchange(code)
        .await
        .map_err(JoinError::Platform)?;
    let info = p.api.userinfo(&grant).await.map_err(JoinError::Platform)?;
    if info.openid != grant.openid {
        return Err(JoinError::Platform(WxError::Permanent(
            "WeChat sns/userinfo: answered for another openid".into(),
        )));
    }
    let avatar = if info.headimgurl.is_empty() {
        None
    } else {
        match p
            .api
            .download("avatar", &info.headimgurl, MAX_AVATAR_BYTES)
            .await
        {
            Ok((bytes, ct)) if ct.starts_with("image/") => Some((bytes, ct)),
            Ok((_, ct)) => {
                tracing::warn!(content_type = %ct, "avatar is not an image; keeping the placeholder");
                None
            }
            Err(e) => {
                // The join still succeeds; the wall keeps the generated avatar.
                tracing::warn!(error = %e, "cannot download the avatar");
                None
            }
        }
    };
    let profile = p
        .board
        .store_profile(
            wall,
            PROVIDER,
            &grant.openid,
            FetchedProfile {
                nickname: info.nickname.clone(),
                avatar,
                unionid: info.unionid.clone().or(grant.unionid.clone()),
            },
        )
        .await?;
    let participant_id = participant_id(PROVIDER, &grant.openid);
    if p.board.participant(wall, &participant_id)?.is_none() {
        // The pipeline creates them with the stored profile (ensure_participant reads it).
        let now = p.clock.now_ms();
        p.inbox
            .accept(&Inbound {
                wall: wall.to_string(),
                provider: PROVIDER,
                sender: grant.openid.clone(),
                kind: InboundKind::Join,
                pushed_at: now,
                received_at: now,
                dedup_key: format!("oauth:{}", grant.openid),
            })
            .await?;
    }
    Ok((info.nickname, profile.avatar))
}
