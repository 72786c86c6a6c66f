//! The Telegram provider end to end over real HTTP: the app on 127.0.0.1 with the mock Bot API of the
//! simulator crate. Join by deep link, voice / audio / video note / text, redelivery, the secret,
//! ignored update kinds, malformed bodies, getFile failures, 429 with retry_after, the 20 MB cap, avatar
//! caching, setWebhook at start.

mod telegram_support;

use serde_json::json;
use telegram_support::*;
use voicewall_core::events::WallEvent;
use voicewall_core::providers::telegram::WebhookStatus;
use voicewall_sim::telegram::{FileKind, MockTelegram, MockUser};

fn ann() -> MockUser {
    MockUser::new(218485655, "Ann")
        .last("Lee")
        .username("annlee")
}

async fn setup() -> (tempfile::TempDir, MockTelegram, TgApp) {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockTelegram::start(TOKEN, BOT).await.unwrap();
    let app = spawn_app(dir.path(), &mock, "http://127.0.0.1:1").await;
    (dir, mock, app)
}

fn one_message(wall: &serde_json::Value) -> serde_json::Value {
    let m = messages(wall);
    assert_eq!(m.len(), 1, "{wall:#}");
    m[0].clone()
}

#[tokio::test]
async fn join_by_deep_link_makes_a_participant_with_profile_and_welcome() {
    let (_dir, mock, app) = setup().await;
    let user = ann();
    mock.add_user(&user);
    // A photo bigger than the wall draws: kept at 256 px, with a 64 px thumbnail for the grid.
    let jpeg = photo_jpeg(640, 480);
    mock.set_profile_photo(user.id, jpeg.clone());

    // The wall's QR is the bot's deep link with the wall as payload.
    let wall = app.wall().await;
    assert_eq!(
        wall["join"]["url"],
        format!("https://t.me/{BOT}?start={WALL}"),
        "{wall:#}"
    );

    // The wall's join route sends a phone to the same deep link.
    let r = app
        .client
        .get(app.url(&format!("/join/{WALL}")))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    assert_eq!(
        r.headers()["location"],
        format!("https://t.me/{BOT}?start={WALL}").as_str()
    );

    let r = app.deliver(&mock.start_update(&user, WALL)).await;
    assert_eq!(r.status(), 200);
    let wall = app
        .wait_wall(10, |w| {
            participant(w, user.id).is_some_and(|p| p["has_profile"] == true)
        })
        .await;
    let p = participant(&wall, user.id).unwrap();
    assert_eq!(p["display_name"], "Ann Lee");
    assert_eq!(p["provider"], "telegram");
    assert!(messages(&wall).is_empty(), "a join is not a message");
    // The avatar is downloaded and served by the wall, never a Telegram URL (it holds the token).
    let avatar = p["avatar_url"].as_str().unwrap();
    assert!(avatar.starts_with("/media/"), "{avatar}");
    for (url, side) in [(avatar, 256), (p["thumb_url"].as_str().unwrap(), 64)] {
        assert!(url.starts_with("/media/"), "{url}");
        let (ct, bytes) = app.get_bytes(url).await;
        assert_eq!(ct, "image/jpeg");
        let img = image::load_from_memory(&bytes).unwrap();
        assert_eq!((img.width(), img.height()), (side, side), "{url}");
    }
    assert!(!wall.to_string().contains(TOKEN.split(':').nth(1).unwrap()));

    // The bot answered /start in the person's chat with the wall's welcome.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while mock.sent_messages().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let sent = mock.sent_messages();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["chat_id"], user.id);
    assert_eq!(sent[0]["text"], WELCOME);
    app.stop().await;
}

#[tokio::test]
async fn a_voice_note_appears_and_plays_on_the_wall() {
    let (_dir, mock, app) = setup().await;
    let user = ann();
    mock.add_user(&user);
    let ogg = voice_ogg();
    let file = mock.add_file(FileKind::Voice, ogg.clone());
    let mut events = app.events();

    let update = mock.voice_update(&user, &file, 3);
    assert_eq!(app.deliver(&update).await.status(), 200);

    let started = next_event(&mut events, |e| {
        matches!(e, WallEvent::PlaybackStarted { .. })
    })
    .await;
    let WallEvent::PlaybackStarted {
        message_id,
        participant_id,
        duration_ms,
        ..
    } = started
    else {
        unreachable!()
    };
    assert_eq!(participant_id, format!("telegram:{}", user.id));
    assert!((3300..3600).contains(&duration_ms), "{duration_ms}");
    let finished = next_event(
        &mut events,
        |e| matches!(e, WallEvent::PlaybackFinished { message_id: id, .. } if *id == message_id),
    )
    .await;
    assert!(
        matches!(&finished, WallEvent::PlaybackFinished { outcome, .. } if outcome == "finished"),
        "{finished:?}"
    );

    let m = one_message(&app.wall().await);
    assert_eq!(m["status"], "ready");
    assert_eq!(m["kind"], "voice");
    let (ct, bytes) = app.get_bytes(m["media_url"].as_str().unwrap()).await;
    assert_eq!(ct, "audio/ogg", "the MIME type comes from the Voice object");
    assert_eq!(bytes, ogg);
    assert_eq!(mock.downloads(&file.file_path), 1);
    app.stop().await;
}

#[tokio::test]
async fn audio_and_video_notes_play_their_sound() {
    let (_dir, mock, app) = setup().await;
    let user = ann();
    mock.add_user(&user);
    let mp3 = mock.add_file(FileKind::Audio, fixture("audio/hello.mp3"));
    let mp4 = mock.add_file(FileKind::VideoNote, fixture("telegram/video_note.mp4"));
    app.deliver(&mock.audio_update(&user, &mp3, 3, "audio/mpeg"))
        .await;
    app.deliver(&mock.video_note_update(&user, &mp4, 4)).await;
    let wall = app
        .wait_wall(15, |w| {
            let m = messages(w);
            m.len() == 2 && m.iter().all(|m| m["status"] == "ready")
        })
        .await;
    let mut kinds = vec![];
    for m in messages(&wall) {
        let (ct, _) = app.get_bytes(m["media_url"].as_str().unwrap()).await;
        let ms = m["duration_ms"].as_u64().unwrap();
        kinds.push((ct, ms));
    }
    kinds.sort();
    assert_eq!(kinds[0].0, "audio/mpeg");
    assert!((2800..3300).contains(&kinds[0].1), "{kinds:?}");
    // The video note's audio track: the 3.44 s voice inside a 4.4 s video.
    assert_eq!(kinds[1].0, "video/mp4");
    assert!((3300..3600).contains(&kinds[1].1), "{kinds:?}");
    app.stop().await;
}

#[tokio::test]
async fn text_is_shown_and_redelivered_updates_are_one_message() {
    let (_dir, mock, app) = setup().await;
    let user = ann();
    mock.add_user(&user);
    let text = mock.text_update(&user, "hello from Telegram");
    let file = mock.add_file(FileKind::Voice, voice_ogg());
    let voice = mock.voice_update(&user, &file, 3);
    for _ in 0..3 {
        assert_eq!(app.deliver(&text).await.status(), 200);
        assert_eq!(app.deliver(&voice).await.status(), 200);
    }
    let wall = app
        .wait_wall(10, |w| {
            messages(w)
                .iter()
                .filter(|m| m["status"] == "ready")
                .count()
                == 2
        })
        .await;
    let msgs = messages(&wall);
    assert_eq!(msgs.len(), 2, "{wall:#}");
    assert!(msgs.iter().any(|m| m["text"] == "hello from Telegram"));
    assert_eq!(mock.count("getFile"), 1, "a redelivery fetches nothing");
    app.stop().await;
}

#[tokio::test]
async fn bad_or_missing_secret_is_refused_and_stores_nothing() {
    let (_dir, mock, app) = setup().await;
    let user = ann();
    let update = mock.text_update(&user, "sneaky");
    for secret in [
        None,
        Some("wrong"),
        Some("wall_secret-12"),
        Some("wall_secret-1234"),
    ] {
        let r = MockTelegram::deliver(&app.client, &app.webhook(), secret, &update)
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{secret:?}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["code"], "bad_secret");
    }
    assert_eq!(app.state.store.inbox_len(), 0);
    assert!(messages(&app.wall().await).is_empty());
    // A wall that is not a Telegram wall has no Telegram webhook.
    let r = MockTelegram::deliver(
        &app.client,
        &app.url("/webhook/telegram/nope"),
        Some(SECRET),
        &update,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn other_update_kinds_are_answered_200_and_not_stored() {
    let (_dir, mock, app) = setup().await;
    let user = ann();
    let edited = mock.edited_message_update(&user, "edited");
    let callback = json!({"update_id": 5_000_000_123_i64, "callback_query": {"id": "1", "from": user.json(), "chat_instance": "1", "data": "x"}});
    let mut sticker = mock.text_update(&user, "x");
    let msg = sticker["message"].as_object_mut().unwrap();
    msg.remove("text");
    msg.insert("sticker".into(), json!({"file_id": "CAAC", "file_unique_id": "AgAD", "type": "regular", "width": 512, "height": 512, "is_animated": false, "is_video": false}));
    let help = {
        let mut u = mock.text_update(&user, "/help");
        u["message"]["entities"] = json!([{"type": "bot_command", "offset": 0, "length": 5}]);
        u
    };
    for u in [&edited, &callback, &sticker, &help] {
        let r = app.deliver(u).await;
        assert_eq!(r.status(), 200, "{u}");
    }
    assert_eq!(app.state.store.inbox_len(), 0);
    let wall = app.wall().await;
    assert!(messages(&wall).is_empty(), "{wall:#}");
    assert!(
        wall["participants"].as_array().unwrap().is_empty(),
        "{wall:#}"
    );
    app.stop().await;
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_400_and_413() {
    let (_dir, _mock, app) = setup().await;
    let post = |body: Vec<u8>| {
        app.client
            .post(app.webhook())
            .header("content-type", "application/json")
            .header(voicewall_sim::telegram::SECRET_HEADER, SECRET)
            .body(body)
            .send()
    };
    let r = post(b"{not json".to_vec()).await.unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "malformed_update");
    let r = post(br#"{"message": {}}"#.to_vec()).await.unwrap();
    assert_eq!(r.status(), 400, "no update_id");
    let mut big = br#"{"update_id": 1, "pad": ""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 2 * 1024 * 1024));
    big.extend(br#""}"#);
    let r = post(big).await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(app.state.store.inbox_len(), 0);
    app.stop().await;
}

#[tokio::test]
async fn get_file_failures_are_retried_then_fail_with_a_reason() {
    let (_dir, mock, app) = setup().await;
    let user = ann();
    mock.add_user(&user);
    // Two 502s, then the file: ready after three getFile calls.
    let file = mock.add_file(FileKind::Voice, voice_ogg());
    mock.bad_gateway_next("getFile", 2);
    app.deliver(&mock.voice_update(&user, &file, 3)).await;
    let wall = app
        .wait_wall(10, |w| messages(w).iter().any(|m| m["status"] == "ready"))
        .await;
    assert_eq!(one_message(&wall)["attempts"], 3);
    assert_eq!(mock.count("getFile"), 3);

    // An unknown file id is permanent: failed at once, with Telegram's reason.
    let mut bogus = file.clone();
    bogus.file_id = "AwACAgQAAxkBAAInvalid".into();
    app.deliver(&mock.voice_update(&user, &bogus, 3)).await;
    let wall = app
        .wait_wall(10, |w| messages(w).iter().any(|m| m["status"] == "failed"))
        .await;
    let failed = messages(&wall)
        .into_iter()
        .find(|m| m["status"] == "failed")
        .unwrap();
    assert_eq!(failed["attempts"], 1);
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("invalid file_id"), "{error}");
    assert!(!error.contains(TOKEN), "{error}");
    app.stop().await;
}

#[tokio::test]
async fn a_429_is_waited_out_for_its_retry_after() {
    let (_dir, mock, app) = setup().await;
    let user = ann();
    mock.add_user(&user);
    let file = mock.add_file(FileKind::Voice, voice_ogg());
    mock.rate_limit_next("getFile", 1, 1);
    app.deliver(&mock.voice_update(&user, &file, 3)).await;
    let wall = app
        .wait_wall(15, |w| messages(w).iter().any(|m| m["status"] == "ready"))
        .await;
    let times = mock.call_times("getFile");
    assert_eq!(times.len(), 2);
    // The pipeline's own backoff here is 20-100 ms: only honouring retry_after makes this gap.
    let gap = times[1] - times[0];
    assert!(gap >= std::time::Duration::from_secs(1), "{gap:?}");
    assert_eq!(one_message(&wall)["status"], "ready");
    app.stop().await;
}

#[tokio::test]
async fn files_above_20_mb_fail_with_a_readable_reason() {
    let (_dir, mock, app) = setup().await;
    let user = ann();
    mock.add_user(&user);
    // The update states the size: refused without a call.
    let big = mock.add_file_declared(FileKind::Voice, voice_ogg(), 25 * 1024 * 1024 + 300 * 1024);
    app.deliver(&mock.voice_update(&user, &big, 900)).await;
    let wall = app
        .wait_wall(10, |w| messages(w).iter().any(|m| m["status"] == "failed"))
        .await;
    assert_eq!(
        one_message(&wall)["error"],
        "the file is 25.3 MB; Telegram lets bots download at most 20 MB"
    );
    assert_eq!(mock.count("getFile"), 0);

    // An update without file_size: getFile refuses it ("file is too big").
    let mut update = mock.voice_update(&user, &big, 900);
    update["message"]["voice"]
        .as_object_mut()
        .unwrap()
        .remove("file_size");
    app.deliver(&update).await;
    let wall = app
        .wait_wall(10, |w| {
            messages(w)
                .iter()
                .filter(|m| m["status"] == "failed")
                .count()
                == 2
        })
        .await;
    let reasons: Vec<String> = messages(&wall)
        .iter()
        .map(|m| m["error"].as_str().unwrap().to_string())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("file is too big") && r.contains("20 MB")),
        "{reasons:?}"
    );
    assert_eq!(mock.count("getFile"), 1);
    assert_eq!(mock.downloads(&big.file_path), 0);
    app.stop().await;
}

#[tokio::test]
async fn the_avatar_is_fetched_once_and_cached() {
    let (_dir, mock, app) = setup().await;
    let user = ann();
    mock.add_user(&user);
    mock.set_profile_photo(user.id, tiny_jpeg());
    for i in 0..3 {
        app.deliver(&mock.text_update(&user, &format!("message {i}")))
            .await;
    }
    let wall = app
        .wait_wall(10, |w| {
            messages(w).len() == 3
                && participant(w, user.id).is_some_and(|p| p["has_profile"] == true)
        })
        .await;
    assert!(participant(&wall, user.id).unwrap()["avatar_url"]
        .as_str()
        .unwrap()
        .starts_with("/media/"));
    assert_eq!(mock.count("getUserProfilePhotos"), 1);
    assert_eq!(mock.count("getFile"), 1);
    app.stop().await;
}

async fn wait_webhook_status(app: &TgApp) -> WebhookStatus {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let s: serde_json::Value = app
            .client
            .get(app.webhook())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if s["state"] != "pending" {
            let s: WebhookStatus = match s["state"].as_str() {
                Some("set") => WebhookStatus::Set {
                    url: s["url"].as_str().unwrap().into(),
                    description: s["description"].as_str().unwrap().into(),
                },
                Some("manual") => WebhookStatus::Manual {
                    url: s["url"].as_str().unwrap().into(),
                    instructions: s["instructions"].as_str().unwrap().into(),
                },
                _ => panic!("{s}"),
            };
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "webhook never handled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn set_webhook_on_start_when_public_url_is_https() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockTelegram::start(TOKEN, BOT).await.unwrap();
    let app = spawn_app(dir.path(), &mock, "https://wall.example").await;
    let status = wait_webhook_status(&app).await;
    let url = format!("https://wall.example/webhook/telegram/{WALL}");
    assert_eq!(
        status,
        WebhookStatus::Set {
            url: url.clone(),
            description: "Webhook was set".into()
        }
    );
    let info = mock.webhook().expect("setWebhook was called");
    assert_eq!(info.url, url);
    assert_eq!(info.secret_token.as_deref(), Some(SECRET));
    assert_eq!(info.allowed_updates, Some(vec!["message".to_string()]));
    // /healthz shows it per wall (through `WallProvider::status`), without the token or the secret.
    let health = healthz(&app).await;
    let tg = &health["providers"][WALL];
    assert_eq!(
        (&tg["ok"], &tg["state"]),
        (&json!(true), &json!("set")),
        "{health}"
    );
    assert!(tg["detail"].as_str().unwrap().contains(&url), "{health}");
    assert!(tg["at_ms"].as_u64().is_some(), "{health}");
    assert!(!health.to_string().contains(TOKEN) && !health.to_string().contains(SECRET));
    app.stop().await;
}

async fn healthz(app: &TgApp) -> serde_json::Value {
    app.client
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn no_set_webhook_without_https_but_instructions() {
    let (_dir, mock, app) = setup().await;
    let status = wait_webhook_status(&app).await;
    let WebhookStatus::Manual { instructions, .. } = status else {
        panic!("{status:?}")
    };
    assert!(instructions.contains("https://"), "{instructions}");
    assert!(!instructions.contains(TOKEN) && !instructions.contains(SECRET));
    assert_eq!(mock.count("setWebhook"), 0);
    // The status page is the operator's: without the admin token (or a session) it is 401.
    let r = app.anonymous.get(app.webhook()).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let health = healthz(&app).await;
    let tg = &health["providers"][WALL];
    assert_eq!(
        (&tg["ok"], &tg["state"]),
        (&json!(false), &json!("manual")),
        "{health}"
    );
    assert_eq!(tg["detail"].as_str(), Some(instructions.as_str()));
    app.stop().await;
}

#[test]
fn check_config_refuses_what_serve_would() {
    use voicewall_core::providers::check;
    let base = format!(
        "[[walls]]\nid = \"{WALL}\"\n[walls.telegram]\nbot_username = \"{BOT}\"\nsecret_token = \"{SECRET}\"\n"
    );
    let check_text = |text: &str| {
        let config =
            voicewall_core::config::Config::from_toml(text, std::path::Path::new("t.toml"))
                .expect("the generic config parses");
        check(&config.provider_sections()[0])
    };
    assert!(check_text(&format!("{base}bot_token = \"{TOKEN}\"\n")).is_ok());
    for (extra, key) in [
        ("", "walls[0].telegram.bot_token"),
        ("bot_token = \"nope\"\n", "walls[0].telegram.bot_token"),
        (
            &format!("bot_token = \"{TOKEN}\"\nsecret_token2 = \"x\"\n") as &str,
            "walls[0].telegram.secret_token2",
        ),
    ] {
        let e = check_text(&format!("{base}{extra}"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(key), "{e}");
        assert!(!e.contains("AAHdq"), "the token is never echoed: {e}");
    }
    // The line of a bad value is named.
    let e = check_text(&format!("{base}bot_token = \"nope\"\n"))
        .unwrap_err()
        .to_string();
    assert!(e.ends_with("(line 6)"), "{e}");
}

/// Poll `cond` until it holds (panics after 10 s).
async fn until(cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "not within 10 s");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_banned_sender_gets_a_polite_refusal_and_nothing_is_stored() {
    let (_dir, mock, app) = setup().await;
    let user = ann();
    mock.add_user(&user);
    assert_eq!(
        app.deliver(&mock.text_update(&user, "hi")).await.status(),
        200
    );
    app.wait_wall(10, |w| messages(w).len() == 1).await;

    let pid = format!("telegram:{}", user.id);
    let r = app
        .client
        .post(app.url(&format!("/api/admin/walls/{WALL}/participants/{pid}/ban")))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    app.wait_wall(10, |w| {
        messages(w).is_empty() && participant(w, user.id).is_none()
    })
    .await;

    // Their next voice: Telegram gets its 200 (no redelivery), the sender a refusal in their chat.
    let before = mock.sent_messages().len();
    let file = mock.add_file(FileKind::Voice, voice_ogg());
    assert_eq!(
        app.deliver(&mock.voice_update(&user, &file, 3))
            .await
            .status(),
        200
    );
    until(|| mock.sent_messages().len() > before).await;
    let sent = mock.sent_messages();
    let refusal = sent.last().unwrap();
    assert_eq!(refusal["chat_id"], user.id);
    let text = refusal["text"].as_str().unwrap();
    assert!(
        text.contains("organiser") || text.contains("主办方"),
        "{text}"
    );
    // Nothing was accepted: the inbox never saw it and the file was never fetched.
    app.wait_inbox_drained().await;
    assert_eq!(mock.count("getFile"), 0, "a refused voice is not fetched");
    let admin: serde_json::Value = app
        .client
        .get(app.url(&format!("/api/admin/walls/{WALL}/messages")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(admin["messages"].as_array().unwrap().len(), 1, "{admin}");
    app.stop().await;
}

#[tokio::test]
async fn a_profile_photo_that_does_not_decode_keeps_the_placeholder_and_the_message() {
    let (_dir, mock, app) = setup().await;
    let user = ann();
    mock.add_user(&user);
    // JPEG's magic, then nothing a decoder can use.
    let mut broken = vec![0xFF, 0xD8, 0xFF, 0xE0];
    broken.extend_from_slice(&[7; 200]);
    mock.set_profile_photo(user.id, broken);
    app.deliver(&mock.text_update(&user, "hello")).await;
    let wall = app
        .wait_wall(10, |w| {
            messages(w).len() == 1
                && participant(w, user.id).is_some_and(|p| p["has_profile"] == true)
        })
        .await;
    assert_eq!(one_message(&wall)["status"], "ready", "{wall:#}");
    let p = participant(&wall, user.id).unwrap();
    assert_eq!(p["display_name"], "Ann Lee");
    let (ct, _) = app.get_bytes(p["avatar_url"].as_str().unwrap()).await;
    assert_eq!(ct, "image/svg+xml", "the generated placeholder stays");
    assert_eq!(p["thumb_url"], p["avatar_url"]);
    app.stop().await;
}
