//! The join page and its upload API, for one wall (`{w}` is the wall id, literally in each route):
//!
//! ```text
//! GET  /join/{w}?t=TOKEN           the phone page (or a localized "scan the screen again" page)
//! GET  /api/join/{w}/info          the page's limits and title (public)
//! POST /api/join/{w}/profile       multipart: nickname, avatar? (file), avatar_mode?, token → {participant}
//! PUT  /api/join/{w}/profile       the same (a guest changing name or picture)
//! POST /api/join/{w}/voice         multipart: audio (file), upload_id?, token → 201 {message_id}
//! GET  /api/join/{w}/me            the device's participant and its messages, or 404
//! GET  /api/join/{w}/me/events     the same, live (Server-Sent Events), or 404
//! ```
//!
//! The token comes from the `X-Join-Token` header, the `t` query parameter or a `token` form field. A
//! phone is known by its signed device cookie (one phone = one participant `web:{device id}`).

use super::config::PROVIDER;
use super::form::{
    check_length, clean_nickname, drain_refused, read_form, valid_upload_id, TokenFirst,
};
use super::refusal::{too_fast, Refusal};
use super::site::JoinSite;
use super::tokens::TokenCheck;
use crate::app::Shutdown;
use crate::board::participant_id;
use crate::domain::{placeholder_svg, Inbound, InboundKind, MediaRef, MessageKind};
use crate::http::client_ip::ClientIp;
use crate::http::error::ApiError;
use crate::http::limits::SseSlots;
use crate::http::state::ParticipantView;
use crate::media::MediaError;
use crate::store::{Accepted, Profile};
use crate::ui;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use voicewall_audio::DecodeError;

type Site = State<Arc<JoinSite>>;

/// A refusal given before the body was read (token, device cookie, rate, declared length): read and
/// drop the body (`drain_refused`: bounded in bytes and time), so the answer reaches the phone
/// instead of a reset.
async fn drain_if_refused(
    body: Option<Body>,
    answer: Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    let refused = answer.as_ref().map_or(true, |r| !r.status().is_success());
    if let (true, Some(body)) = (refused, body) {
        drain_refused(body).await;
    }
    answer
}

#[derive(Deserialize, Default)]
pub struct TokenQuery {
    t: Option<String>,
}

/// The wall's upload API (see the module doc); `/join/{w}` itself is the server's, calling `join_page`.
pub fn routes(site: Arc<JoinSite>) -> Router {
    let api = |path: &str| format!("/api/join/{}/{path}", site.wall);
    let uploads = Router::new()
        .route(&api("profile"), post(post_profile).put(post_profile))
        .route(&api("voice"), post(post_voice))
        // The handlers read each field against the wall's own limits (WebConfig, multer constraints),
        // so the global body limit is lifted here.
        .layer(DefaultBodyLimit::disable());
    Router::new()
        .route(&api("info"), get(info))
        .route(&api("me"), get(me))
        .route(&api("me/events"), get(me_events))
        .merge(uploads)
        .with_state(site)
}

fn header_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-join-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `GET /join/{w}?t=TOKEN`: the phone page, or a friendly page telling the guest to scan again.
pub fn join_page(site: &JoinSite, request: Request) -> Response {
    let headers = request.headers();
    let token = Query::<TokenQuery>::try_from_uri(request.uri())
        .map(|q| q.0.t)
        .unwrap_or_default();
    let lang = site.lang(headers);
    if let Err(refusal) = site.token_refusal(token.as_deref()) {
        let title = match refusal {
            Refusal::TokenExpired => lang.pick("This code has changed", "二维码已更新"),
            _ => lang.pick("Scan the screen again", "请重新扫码"),
        };
        return ui::notice_page(refusal.status(), lang, title, &refusal.message(lang));
    }
    let mut response = ui::asset("join.html");
    let new_device = site.cookies.device_of(headers).is_none();
    let h = response.headers_mut();
    // The token is in the URL: keep it out of caches and Referer headers.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if new_device {
        if let Err(refusal) = site.mint_device(&request) {
            let title = lang.pick("Please wait a moment", "请稍候");
            return ui::notice_page(refusal.status(), lang, title, &refusal.message(lang));
        }
        let device = crate::random::token(20);
        h.append(header::SET_COOKIE, site.cookies.set_cookie(&device));
    }
    response
}

/// `GET /api/join/{w}/info`: what the page needs to know before the guest starts.
async fn info(State(site): Site) -> Json<serde_json::Value> {
    let c = &site.config;
    Json(json!({
        "wall": site.wall,
        "title": site.title,
        "locale": site.locale,
        "retention_days": site.retention_days,
        // What is kept, how long, shown and played in the room: joining is the consent.
        "consent": {
            "en": crate::privacy::consent::line(crate::lang::Lang::En, site.retention_days),
            "zh": crate::privacy::consent::line(crate::lang::Lang::Zh, site.retention_days),
        },
        "limits": {
            "nickname_max_chars": c.nickname_max_chars,
            "avatar_max_bytes": c.avatar_max_bytes,
            "audio_max_bytes": c.audio_max_bytes,
            "audio_max_duration_s": c.audio_max_duration_s,
            "messages_per_minute": c.messages_per_minute,
        },
    }))
}

/// `POST|PUT /api/join/{w}/profile`: join (or change name / picture). Sets the device cookie.
#[tracing::instrument(skip_all, fields(wall = %site.wall))]
async fn post_profile(
    State(site): Site,
    Query(q): Query<TokenQuery>,
    ClientIp(ip): ClientIp,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let mut body = Some(body);
    let answer = profile_form(site, q, ip, parts.headers, &mut body).await;
    drain_if_refused(body, answer).await
}

async fn profile_form(
    site: Arc<JoinSite>,
    q: TokenQuery,
    ip: std::net::IpAddr,
    headers: HeaderMap,
    body: &mut Option<Body>,
) -> Result<Response, ApiError> {
    let lang = site.lang(&headers);
    let refuse = |r: Refusal| r.to_error(lang);
    let cfg = &site.config;
    // A token given outside the body is checked before the body is read; without one, the form's
    // first field must be the token, checked before the rest is read (`read_form`).
    let early_token = header_token(&headers).or(q.t.clone());
    if let Some(t) = &early_token {
        site.token_refusal(Some(t)).map_err(refuse)?;
    }
    let check = |t: &str| site.token_refusal(Some(t));
    let token_first = early_token.is_none().then_some(&check as TokenFirst<'_>);
    // Each profile post may create a participant and decode a picture: bounded per network too.
    let ip_key = format!("profile-ip:{ip}");
    if let Err(s) = site
        .rate
        .try_take(&ip_key, cfg.messages_per_ip_per_minute, site.clock.now_ms())
    {
        return Ok(too_fast(refuse(Refusal::TooFastNetwork(s)), s));
    }
    let too_large = Refusal::AvatarTooLarge(cfg.avatar_max_bytes);
    check_length(&headers, cfg.avatar_max_bytes, too_large).map_err(refuse)?;
    let form = read_form(
        &headers,
        body.take().unwrap_or_default(),
        "avatar",
        cfg.avatar_max_bytes,
        too_large,
        token_first,
    )
    .await
    .map_err(refuse)?;
    let token = early_token.or(form.token.clone());
    site.token_refusal(token.as_deref()).map_err(refuse)?;

    let nickname = clean_nickname(form.nickname.as_deref().unwrap_or(""));
    if nickname.is_empty() {
        return Err(refuse(Refusal::NicknameRequired));
    }
    if nickname.chars().count() > cfg.nickname_max_chars {
        return Err(refuse(Refusal::NicknameTooLong(cfg.nickname_max_chars)));
    }
    let photo = match form.file.filter(|b| !b.is_empty()) {
        Some(bytes) => Some(match crate::avatar::normalise(bytes).await {
            Ok(a) => a,
            Err(crate::avatar::AvatarError::Image(e)) => {
                tracing::info!(error = %e, "avatar refused");
                return Err(refuse(Refusal::NotAnImage));
            }
            Err(e) => return Err(ApiError::internal(e)),
        }),
        None => None,
    };

    let (device, new_device) = match site.cookies.device_of(&headers) {
        Some(d) => (d, false),
        None => {
            if let Err(r) = site.mint_device_for(ip) {
                return Ok(refuse_with_retry(r, lang));
            }
            (crate::random::token(20), true)
        }
    };
    let pid = participant_id(PROVIDER, &device);
    let existing = site.board.participant(&site.wall, &pid)?;
    if existing.is_none() && site.store.count_participants(&site.wall) >= cfg.max_participants {
        tracing::info!(
            max = cfg.max_participants,
            "a guest refused: the wall is full"
        );
        return Err(refuse(Refusal::WallFullOfGuests));
    }
    // Is the current avatar the generated one? Then it follows the (maybe new) name.
    let has_generated = match &existing {
        Some(p) => site
            .store
            .media_info(&p.avatar)?
            .is_some_and(|m| m.content_type == "image/svg+xml"),
        None => true,
    };
    let wants_generated = form.avatar_mode.as_deref() == Some("generated");
    let (avatar, thumb) = match (photo, &existing) {
        (Some(photo), _) => {
            let keys = site
                .store
                .blocking(move |store| crate::avatar::store(store, &photo))
                .await?;
            (keys.avatar, Some(keys.thumb))
        }
        (None, Some(p)) if !(wants_generated || has_generated) => {
            (p.avatar.clone(), p.thumb.clone())
        }
        (None, _) => {
            let svg = placeholder_svg(&pid, &nickname);
            let key = site
                .store
                .blocking(move |store| store.put_media(svg.as_bytes(), "image/svg+xml"))
                .await?;
            (key, None)
        }
    };
    site.store.put_profile(
        PROVIDER,
        &device,
        &Profile {
            nickname: nickname.clone(),
            avatar: Some(avatar.clone()),
            thumb: thumb.clone(),
            unionid: None,
            fetched_at: site.clock.now_ms(),
        },
    )?;
    let (participant, is_new) = match existing {
        Some(mut p) => {
            p.display_name = nickname;
            p.avatar = avatar;
            p.thumb = thumb;
            p.has_profile = true;
            (p, false)
        }
        None => (
            site.board
                .new_participant(PROVIDER, &device, &nickname, avatar, thumb),
            true,
        ),
    };
    site.board
        .save_participant(&site.wall, &participant, is_new)?;
    site.store.durable().await?;
    tracing::info!(participant = %participant.id, is_new, "web guest profile saved");

    let mut response = (
        if is_new {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(json!({
            "participant": ParticipantView::from(&participant),
            "token": site.current_token(),
        })),
    )
        .into_response();
    if new_device {
        response
            .headers_mut()
            .append(header::SET_COOKIE, site.cookies.set_cookie(&device));
    }
    Ok(response)
}

/// `POST /api/join/{w}/voice`: a recorded (or picked) voice message. Decoded here before it is
/// accepted, so a guest learns at once when a file is not playable; stored durably before the 201.
#[tracing::instrument(skip_all, fields(wall = %site.wall))]
async fn post_voice(
    State(site): Site,
    Query(q): Query<TokenQuery>,
    ClientIp(ip): ClientIp,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let mut body = Some(body);
    let answer = voice_form(site, q, ip, parts.headers, &mut body).await;
    drain_if_refused(body, answer).await
}

async fn voice_form(
    site: Arc<JoinSite>,
    q: TokenQuery,
    ip: std::net::IpAddr,
    headers: HeaderMap,
    body: &mut Option<Body>,
) -> Result<Response, ApiError> {
    let lang = site.lang(&headers);
    let refuse = |r: Refusal| r.to_error(lang);
    let cfg = &site.config;
    let early_token = header_token(&headers).or(q.t.clone());
    if let Some(t) = &early_token {
        site.token_refusal(Some(t)).map_err(refuse)?;
    }
    // A voice comes from a phone that opened the join page: no cookie, not a byte of the body read.
    let device = site
        .cookies
        .device_of(&headers)
        .ok_or_else(|| refuse(Refusal::NoDevice))?;
    let check = |t: &str| site.token_refusal(Some(t));
    let token_first = early_token.is_none().then_some(&check as TokenFirst<'_>);
    let too_large = Refusal::AudioTooLarge(cfg.audio_max_bytes);
    check_length(&headers, cfg.audio_max_bytes, too_large).map_err(refuse)?;
    let form = read_form(
        &headers,
        body.take().unwrap_or_default(),
        "audio",
        cfg.audio_max_bytes,
        too_large,
        token_first,
    )
    .await
    .map_err(refuse)?;
    let token = early_token.or(form.token.clone());
    site.token_refusal(token.as_deref()).map_err(refuse)?;
    if site
        .board
        .is_banned(&site.wall, &participant_id(PROVIDER, &device))?
    {
        return Err(refuse(Refusal::Banned));
    }
    // A voice needs a face and a name on the wall: the guest's profile comes first.
    let participant = site
        .board
        .participant(&site.wall, &participant_id(PROVIDER, &device))?;
    if !participant.is_some_and(|p| p.has_profile) {
        return Err(refuse(Refusal::ProfileRequired));
    }
    if site.store.count_messages(&site.wall) >= cfg.max_messages {
        tracing::info!(max = cfg.max_messages, "a voice refused: the wall is full");
        return Err(refuse(Refusal::WallFullOfMessages));
    }

    let now = site.clock.now_ms();
    let (ip_key, device_key) = (format!("ip:{ip}"), format!("dev:{device}"));
    let windows = [
        (device_key.as_str(), cfg.messages_per_minute),
        (ip_key.as_str(), cfg.messages_per_ip_per_minute),
    ];
    if let Err(full) = site.rate.try_take_all(&windows, now) {
        let s = full.wait_s;
        let refusal = if full.window == 0 {
            Refusal::TooFast(s)
        } else {
            Refusal::TooFastNetwork(s)
        };
        return Ok(too_fast(refuse(refusal), s));
    }

    let bytes = form
        .file
        .filter(|b| !b.is_empty())
        .ok_or_else(|| refuse(Refusal::AudioMissing))?;
    let max_s = cfg.audio_max_duration_s;
    let bytes = Arc::new(bytes);
    let decoded = match site.media.decode_upload(bytes.clone(), max_s).await {
        Ok(d) => d,
        Err(MediaError::Decode(DecodeError::NotAudio(why))) => {
            tracing::info!(reason = %why, "upload is not audio");
            return Err(refuse(Refusal::NotAudio));
        }
        Err(MediaError::Decode(DecodeError::TooLong { max_s, .. })) => {
            return Err(refuse(Refusal::AudioTooLong(max_s)))
        }
        Err(MediaError::Decode(DecodeError::Corrupt(why))) => {
            tracing::info!(reason = %why, "upload is damaged");
            return Err(refuse(Refusal::AudioCorrupt));
        }
        Err(MediaError::Decode(
            e @ (DecodeError::SampleRate { .. } | DecodeError::TooManyChannels { .. }),
        )) => {
            tracing::info!(reason = %e, "upload is not a voice recording");
            return Err(refuse(Refusal::AudioCorrupt));
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    if decoded.frames() == 0 {
        return Err(refuse(Refusal::AudioCorrupt));
    }

    let mime = decoded.format.mime();
    let key = {
        let bytes = bytes.clone();
        site.store
            .blocking(move |store| store.put_media(&bytes, mime))
            .await?
    };
    // The pipeline's analysis and the player use this decode: an upload is decoded once.
    site.media.remember(&key, decoded.clone());
    let upload_id = form
        .upload_id
        .filter(|u| valid_upload_id(u))
        .unwrap_or_else(|| crate::random::token(16));
    let inbound = Inbound {
        wall: site.wall.clone(),
        provider: PROVIDER,
        sender: device.clone(),
        kind: InboundKind::Media {
            kind: MessageKind::Voice,
            media: MediaRef::Cached(key),
            transcript: None,
        },
        pushed_at: now,
        received_at: now,
        dedup_key: format!("{device}:{upload_id}"),
    };
    let accepted = site.inbox.accept(&inbound).await?;
    let (status, duplicate) = match accepted {
        Accepted::New(_) => (StatusCode::CREATED, false),
        Accepted::Duplicate(_) => (StatusCode::OK, true),
    };
    tracing::info!(
        seq = accepted.seq(),
        duplicate,
        format = %decoded.format,
        duration_ms = decoded.duration_ms(),
        "web voice accepted"
    );
    Ok((
        status,
        Json(json!({
            "message_id": accepted.seq().to_string(),
            "duplicate": duplicate,
            "duration_ms": decoded.duration_ms(),
            "token": site.current_token(),
        })),
    )
        .into_response())
}

/// A refusal with `Retry-After` when it has one.
fn refuse_with_retry(r: Refusal, lang: crate::lang::Lang) -> Response {
    match r {
        Refusal::TooManyNewDevices(s) => too_fast(r.to_error(lang), s),
        _ => r.to_error(lang).into_response(),
    }
}

/// The phone's participant (by its device cookie), or the 404 of a phone that has not joined.
fn own_participant(
    site: &JoinSite,
    headers: &HeaderMap,
) -> Result<crate::domain::Participant, ApiError> {
    let participant = match site.cookies.device_of(headers) {
        Some(d) => site
            .board
            .participant(&site.wall, &participant_id(PROVIDER, &d))?,
        None => None,
    };
    participant.ok_or_else(|| {
        ApiError::not_found(
            site.lang(headers)
                .pick("This phone has not joined yet.", "这部手机还没有加入。"),
        )
    })
}

/// Did the phone show a valid join token (header or `t`)?
fn valid_token(site: &JoinSite, headers: &HeaderMap, q: TokenQuery) -> bool {
    let now_s = site.clock.now_s();
    header_token(headers)
        .or(q.t)
        .is_some_and(|t| site.tokens.check(&t, now_s) == TokenCheck::Valid)
}

/// `GET /api/join/{w}/me`: this phone's participant and its messages (404 before it joined). With a
/// valid token it also hands back the current one, so an open page keeps working across rotations.
async fn me(
    State(site): Site,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let participant = own_participant(&site, &headers)?;
    let fresh = valid_token(&site, &headers, q).then(|| site.current_token());
    Ok(Json(super::phone::me(&site, &participant, fresh)?))
}

/// `GET /api/join/{w}/me/events`: the same as `/me`, live (Server-Sent Events, `super::phone`): a
/// `me` event at once and on every change of this phone's messages or participant. 404 before the
/// phone joined; one of the client's event-stream slots (`[server] sse_per_client`) while open.
async fn me_events(
    State(site): Site,
    Query(q): Query<TokenQuery>,
    ClientIp(ip): ClientIp,
    Extension(slots): Extension<SseSlots>,
    Extension(shutdown): Extension<Shutdown>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let participant = own_participant(&site, &headers)?;
    let with_token = valid_token(&site, &headers, q);
    let slot = slots.take(ip)?;
    let events = super::phone::stream(site, participant.id, with_token, slot);
    Ok(crate::http::sse::live(json!({"type": "hello"}), events, shutdown).into_response())
}
