//! The Bot API client against the mock Bot API over real HTTP (no app): files, the download cap, 429
//! with retry_after, error classes, the token kept out of every error, setWebhook, avatars; and the
//! audio crate on a video note (MP4, video track first).

mod telegram_support;

use std::time::Duration;
use telegram_support::*;
use voicewall_core::providers::telegram::api::{
    BotApi, BotApiError, RateLimitPolicy, MAX_DOWNLOAD_BYTES,
};
use voicewall_core::providers::telegram::update::MediaRef;
use voicewall_sim::telegram::{FileKind, MockTelegram, MockUser};

fn api(mock: &MockTelegram) -> BotApi {
    BotApi::new(reqwest::Client::new(), &mock.base_url(), TOKEN)
}

fn media(file_id: &str, mime: &str, size: Option<i64>) -> MediaRef {
    MediaRef {
        file_id: file_id.into(),
        mime_type: mime.into(),
        file_size: size,
    }
}

#[tokio::test]
async fn a_voice_is_fetched_by_get_file_and_keeps_its_mime_type() {
    let mock = MockTelegram::start(TOKEN, BOT).await.unwrap();
    let ogg = voice_ogg();
    let f = mock.add_file(FileKind::Voice, ogg.clone());
    let (bytes, ct) = api(&mock)
        .fetch_media(&media(&f.file_id, "audio/ogg", Some(ogg.len() as i64)))
        .await
        .unwrap();
    assert_eq!(bytes, ogg);
    // The file server says application/octet-stream; the message said audio/ogg.
    assert_eq!(ct, "audio/ogg");
    assert_eq!(mock.count("getFile"), 1);
    assert_eq!(mock.downloads(&f.file_path), 1);
}

#[tokio::test]
async fn rate_limits_are_waited_out_as_asked_then_given_up() {
    let mock = MockTelegram::start(TOKEN, BOT).await.unwrap();
    let f = mock.add_file(FileKind::Voice, voice_ogg());
    mock.rate_limit_next("getFile", 1, 1);
    let file = api(&mock).get_file(&f.file_id).await.unwrap();
    assert_eq!(file.file_path.as_deref(), Some(f.file_path.as_str()));
    let t = mock.call_times("getFile");
    assert_eq!(t.len(), 2);
    assert!(t[1] - t[0] >= Duration::from_secs(1), "{:?}", t[1] - t[0]);

    // Longer than the client waits by itself: a retryable RateLimited for the pipeline's backoff.
    mock.rate_limit_next("getFile", 1, 120);
    let e = api(&mock).get_file(&f.file_id).await.unwrap_err();
    assert_eq!(
        e,
        BotApiError::RateLimited {
            method: "getFile",
            retry_after_s: 120
        }
    );
    assert!(e.to_string().contains("120 s"), "{e}");

    // Rate limited again after every wait: given up after max_waits.
    mock.rate_limit_next("getFile", 5, 0);
    let limited = api(&mock).with_rate_limit(RateLimitPolicy {
        max_waits: 2,
        max_wait: Duration::from_secs(5),
    });
    let before = mock.count("getFile");
    assert!(matches!(
        limited.get_file(&f.file_id).await,
        Err(BotApiError::RateLimited { .. })
    ));
    assert_eq!(mock.count("getFile") - before, 3);
}

#[tokio::test]
async fn errors_are_classified_and_never_carry_the_token() {
    let mock = MockTelegram::start(TOKEN, BOT).await.unwrap();
    let secret_part = TOKEN.split(':').nth(1).unwrap();
    let f = mock.add_file(FileKind::Voice, voice_ogg());

    mock.bad_gateway_next("getFile", 1);
    let e = api(&mock).get_file(&f.file_id).await.unwrap_err();
    assert!(
        matches!(&e, BotApiError::Retryable(m) if m.contains("502")),
        "{e:?}"
    );

    let e = api(&mock).get_file("nope").await.unwrap_err();
    assert_eq!(
        e,
        BotApiError::Permanent("Telegram getFile: 400 Bad Request: invalid file_id".into())
    );

    let wrong = BotApi::new(
        reqwest::Client::new(),
        &mock.base_url(),
        "1:AAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    );
    let e = wrong.get_file(&f.file_id).await.unwrap_err();
    assert!(
        matches!(&e, BotApiError::Permanent(m) if m.contains("401")),
        "{e:?}"
    );

    // A failed download (502 on the file server) and a dead server: no URL, so no token.
    mock.bad_gateway_next("file", 1);
    let e = api(&mock)
        .fetch_media(&media(&f.file_id, "audio/ogg", None))
        .await
        .unwrap_err();
    assert!(matches!(&e, BotApiError::Retryable(_)), "{e:?}");
    assert!(!e.to_string().contains(secret_part), "{e}");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dead = BotApi::new(
        reqwest::Client::new(),
        &format!("http://127.0.0.1:{port}"),
        TOKEN,
    );
    let e = dead.get_file("x").await.unwrap_err();
    assert!(matches!(&e, BotApiError::Retryable(_)), "{e:?}");
    assert!(!format!("{e} {e:?}").contains(secret_part), "{e:?}");
}

#[tokio::test]
async fn the_20_mb_cap_holds_at_each_step() {
    let mock = MockTelegram::start(TOKEN, BOT).await.unwrap();
    // Stated by the update: no call at all.
    let e = api(&mock)
        .fetch_media(&media(
            "x",
            "audio/ogg",
            Some(MAX_DOWNLOAD_BYTES as i64 + 1),
        ))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        BotApiError::Permanent(
            "the file is 20.0 MB; Telegram lets bots download at most 20 MB".into()
        )
    );
    assert_eq!(mock.count("getFile"), 0);
    // Refused by getFile.
    let f = mock.add_file_declared(FileKind::Voice, vec![1; 10], 30 * 1024 * 1024);
    let e = api(&mock)
        .fetch_media(&media(&f.file_id, "audio/ogg", None))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, BotApiError::Permanent(m) if m.contains("file is too big")),
        "{e:?}"
    );
    // Bigger than getFile said: the download stops at the cap.
    let f = mock.add_file_declared(
        FileKind::Voice,
        vec![0; MAX_DOWNLOAD_BYTES as usize + 1],
        1000,
    );
    let e = api(&mock)
        .fetch_media(&media(&f.file_id, "audio/ogg", None))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, BotApiError::Permanent(m) if m.contains("at most 20 MB")),
        "{e:?}"
    );
}

#[tokio::test]
async fn avatars_are_the_largest_size_that_fits_or_none() {
    let mock = MockTelegram::start(TOKEN, BOT).await.unwrap();
    let with = MockUser::new(1, "Ann");
    let without = MockUser::new(2, "Bob");
    mock.add_user(&with);
    mock.add_user(&without);
    let jpeg = tiny_jpeg();
    mock.set_profile_photo(with.id, jpeg.clone());
    assert_eq!(api(&mock).avatar(with.id).await.unwrap(), Some(jpeg));
    assert_eq!(api(&mock).avatar(without.id).await.unwrap(), None);
    // A photo that is not a JPEG is not an avatar.
    let odd = MockUser::new(3, "Odd");
    mock.add_user(&odd);
    mock.set_profile_photo(odd.id, b"<svg/>".to_vec());
    assert!(matches!(
        api(&mock).avatar(odd.id).await,
        Err(BotApiError::Permanent(_))
    ));
}

#[tokio::test]
async fn set_webhook_sends_the_secret_and_message_updates_only() {
    let mock = MockTelegram::start(TOKEN, BOT).await.unwrap();
    let d = api(&mock)
        .set_webhook("https://wall.example/webhook/telegram/tg", SECRET)
        .await
        .unwrap();
    assert_eq!(d, "Webhook was set");
    let info = mock.webhook().unwrap();
    assert_eq!(info.secret_token.as_deref(), Some(SECRET));
    assert_eq!(info.allowed_updates, Some(vec!["message".to_string()]));
    let e = api(&mock)
        .set_webhook("http://wall.example/webhook/telegram/tg", SECRET)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, BotApiError::Permanent(m) if m.contains("HTTPS")),
        "{e:?}"
    );
}

#[tokio::test]
async fn send_message_reaches_the_chat_or_says_why_not() {
    let mock = MockTelegram::start(TOKEN, BOT).await.unwrap();
    let u = MockUser::new(7, "Ann");
    mock.add_user(&u);
    let m = api(&mock).send_message(7, "hi").await.unwrap();
    assert_eq!(m.chat.id, 7);
    assert_eq!(m.text.as_deref(), Some("hi"));
    mock.block(7);
    let e = api(&mock).send_message(7, "hi").await.unwrap_err();
    assert!(
        matches!(&e, BotApiError::Permanent(m) if m.contains("403")),
        "{e:?}"
    );
}

#[test]
fn a_video_note_plays_its_audio_track() {
    // Telegram's video notes are MP4 with the video first; the decoder must pick the audio track.
    let mp4 = fixture("telegram/video_note.mp4");
    let d = voicewall_audio::decode(&mp4).expect("decodes");
    assert_eq!(d.format, voicewall_audio::Format::Mp4Aac);
    assert!((3300..3600).contains(&d.duration_ms()), "{d:?}");
    let a = voicewall_audio::analyse(&d);
    assert!(a.peak > 0.1, "the voice is there, not silence: {a:?}");
}
