//! Every refusal a guest can meet on the join page and its upload API: the HTTP status, a stable
//! `code` the page branches on, and a readable message in Chinese and English.

use crate::http::error::ApiError;
use crate::lang::Lang;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Every refusal the page can meet, with its status and readable text in both languages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    TokenMissing,
    TokenInvalid,
    TokenExpired,
    NoDevice,
    NicknameRequired,
    NicknameTooLong(usize),
    AvatarTooLarge(usize),
    NotAnImage,
    AudioMissing,
    AudioTooLarge(usize),
    NotAudio,
    AudioTooLong(u64),
    AudioCorrupt,
    TooFast(u64),
    TooFastNetwork(u64),
    BadForm,
    /// The operator banned this guest from the wall.
    Banned,
    /// A voice before the guest gave a nickname (`[walls.web]` needs a profile first).
    ProfileRequired,
    /// Too many new phones from this network in the last minute.
    TooManyNewDevices(u64),
    /// The wall has `max_participants` guests.
    WallFullOfGuests,
    /// The wall has `max_messages` messages.
    WallFullOfMessages,
}

fn mb(bytes: usize) -> String {
    let m = bytes as f64 / (1024.0 * 1024.0);
    if m >= 10.0 || m.fract() == 0.0 {
        format!("{m:.0}")
    } else {
        format!("{m:.1}")
    }
}

impl Refusal {
    pub fn status(self) -> StatusCode {
        use Refusal::*;
        match self {
            TokenMissing | TokenInvalid | NoDevice | Banned => StatusCode::FORBIDDEN,
            ProfileRequired | WallFullOfGuests | WallFullOfMessages => StatusCode::CONFLICT,
            TokenExpired => StatusCode::GONE,
            NicknameRequired | AudioMissing | BadForm => StatusCode::BAD_REQUEST,
            NicknameTooLong(_) | AudioTooLong(_) | AudioCorrupt => StatusCode::UNPROCESSABLE_ENTITY,
            AvatarTooLarge(_) | AudioTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            NotAnImage | NotAudio => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            TooFast(_) | TooFastNetwork(_) | TooManyNewDevices(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    pub fn code(self) -> &'static str {
        use Refusal::*;
        match self {
            TokenMissing => "token_missing",
            TokenInvalid => "token_invalid",
            TokenExpired => "token_expired",
            NoDevice => "no_device",
            NicknameRequired => "nickname_required",
            NicknameTooLong(_) => "nickname_too_long",
            AvatarTooLarge(_) => "avatar_too_large",
            NotAnImage => "not_an_image",
            AudioMissing => "audio_missing",
            AudioTooLarge(_) => "audio_too_large",
            NotAudio => "not_audio",
            AudioTooLong(_) => "audio_too_long",
            AudioCorrupt => "audio_corrupt",
            TooFast(_) => "too_many_messages",
            TooFastNetwork(_) => "too_many_from_network",
            BadForm => "bad_form",
            Banned => "banned",
            ProfileRequired => "profile_required",
            TooManyNewDevices(_) => "too_many_new_devices",
            WallFullOfGuests => "wall_full_of_guests",
            WallFullOfMessages => "wall_full_of_messages",
        }
    }

    pub fn message(self, lang: Lang) -> String {
        use Refusal::*;
        match self {
            TokenMissing => lang
                .pick(
                    "This link is incomplete. Scan the QR code on the screen again.",
                    "链接不完整，请重新扫描屏幕上的二维码。",
                )
                .into(),
            TokenInvalid => lang
                .pick(
                    "This link is not valid. Scan the QR code on the screen again.",
                    "链接无效，请重新扫描屏幕上的二维码。",
                )
                .into(),
            TokenExpired => lang
                .pick(
                    "This link has expired. Scan the QR code on the screen again.",
                    "链接已过期，请重新扫描屏幕上的二维码。",
                )
                .into(),
            NoDevice => lang
                .pick(
                    "Join first: open the link from the QR code on the screen.",
                    "请先扫描屏幕上的二维码加入。",
                )
                .into(),
            NicknameRequired => lang.pick("Please enter a nickname.", "请输入昵称。").into(),
            NicknameTooLong(n) => match lang {
                Lang::En => format!("That nickname is too long: at most {n} characters."),
                Lang::Zh => format!("昵称太长了，最多 {n} 个字。"),
            },
            AvatarTooLarge(n) => match lang {
                Lang::En => format!("That photo is too large: at most {} MB.", mb(n)),
                Lang::Zh => format!("照片太大了，最大 {} MB。", mb(n)),
            },
            NotAnImage => lang
                .pick(
                    "That file is not a picture. Choose a photo (JPEG, PNG, WebP or GIF).",
                    "这不是图片，请选择一张照片（JPEG、PNG、WebP 或 GIF）。",
                )
                .into(),
            AudioMissing => lang
                .pick("No recording was sent. Please try again.", "没有收到录音，请重试。")
                .into(),
            AudioTooLarge(n) => match lang {
                Lang::En => format!("That recording is too large: at most {} MB.", mb(n)),
                Lang::Zh => format!("录音文件太大了，最大 {} MB。", mb(n)),
            },
            NotAudio => lang
                .pick(
                    "That file is not a voice recording we can play. Record again or choose an audio file.",
                    "无法识别这个录音，请重新录制或选择音频文件。",
                )
                .into(),
            AudioTooLong(s) => match lang {
                Lang::En => format!("That recording is too long: at most {s} seconds."),
                Lang::Zh => format!("录音太长了，最长 {s} 秒。"),
            },
            AudioCorrupt => lang
                .pick(
                    "That recording is damaged or empty. Please record again.",
                    "录音已损坏或为空，请重新录制。",
                )
                .into(),
            TooFast(s) => match lang {
                Lang::En => format!("You are sending too fast. Try again in {s} seconds."),
                Lang::Zh => format!("发送太频繁了，请 {s} 秒后再试。"),
            },
            TooFastNetwork(s) => match lang {
                Lang::En => format!("Too many messages from this network. Try again in {s} seconds."),
                Lang::Zh => format!("这个网络发送的消息太多了，请 {s} 秒后再试。"),
            },
            BadForm => lang
                .pick(
                    "The upload could not be read. Please try again.",
                    "上传内容无法读取，请重试。",
                )
                .into(),
            Banned => lang
                .pick(
                    "The organiser has stopped your messages on this wall; they will not be shown or played.",
                    "主办方已停止你在本墙上的发言，你的消息不会再被展示或播放。",
                )
                .into(),
            ProfileRequired => lang
                .pick(
                    "Enter your nickname first, then send your voice.",
                    "请先填写昵称，再发送语音。",
                )
                .into(),
            TooManyNewDevices(s) => match lang {
                Lang::En => format!("Too many new phones joined from this network. Try again in {s} seconds."),
                Lang::Zh => format!("这个网络新加入的手机太多了，请 {s} 秒后再试。"),
            },
            WallFullOfGuests => lang
                .pick(
                    "This wall is full: no more guests can join.",
                    "本墙人数已满，无法再加入。",
                )
                .into(),
            WallFullOfMessages => lang
                .pick(
                    "This wall is full: it takes no more messages.",
                    "本墙消息已满，无法再发送。",
                )
                .into(),
        }
    }

    pub fn to_error(self, lang: Lang) -> ApiError {
        ApiError::new(self.status(), self.code(), self.message(lang))
    }
}

/// A 429 with `Retry-After`.
pub fn too_fast(e: ApiError, retry_after_s: u64) -> Response {
    let mut r = e.into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_megabytes() {
        assert_eq!(mb(4 * 1024 * 1024), "4");
        assert_eq!(mb(1536 * 1024), "1.5");
        assert_eq!(mb(20 * 1024 * 1024 + 1), "20");
    }

    #[test]
    fn every_refusal_has_both_languages_and_a_client_status() {
        use Refusal::*;
        for r in [
            TokenMissing,
            TokenInvalid,
            TokenExpired,
            NoDevice,
            NicknameRequired,
            NicknameTooLong(8),
            AvatarTooLarge(1 << 20),
            NotAnImage,
            AudioMissing,
            AudioTooLarge(1 << 20),
            NotAudio,
            AudioTooLong(60),
            AudioCorrupt,
            TooFast(5),
            TooFastNetwork(5),
            BadForm,
            Banned,
            ProfileRequired,
            TooManyNewDevices(5),
            WallFullOfGuests,
            WallFullOfMessages,
        ] {
            assert!(r.status().is_client_error(), "{r:?}");
            assert_ne!(r.message(Lang::En), r.message(Lang::Zh), "{r:?}");
            assert!(!r.code().is_empty());
        }
        assert_eq!(
            AudioTooLong(60).message(Lang::En),
            "That recording is too long: at most 60 seconds."
        );
    }
}
