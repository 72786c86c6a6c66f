//! The WeChat webhook over real HTTP: verification, pushes in the three modes, dedup of retries,
//! hostile input, the platform's failures (token refresh, 5xx, busy, permanent errors), follows with the
//! parametric QR, and the wall's join QR.

mod common;

use common::*;
use voicewall_core::providers::wechat::crypto::signature;
use voicewall_core::providers::wechat::xml;
use voicewall_sim::wechat::{self, MockWechat, PushMode};

async fn setup() -> (tempfile::TempDir, MockWechat, TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockWechat::start(APP_ID, SECRET).await.unwrap();
    let app = spawn_app_in(dir.path(), &mock).await;
    (dir, mock, app)
}

fn unique() -> u64 {
    rand::random::<u32>() as u64 + 6_000_000_000_000_000_000
}

#[tokio::test]
async fn verification_echoes_and_refuses_bad_signatures() {
    let (_d, _mock, app) = setup().await;
    let (ts, nonce) = ("1714037059", "486452656");
    let sig = signature(&[TOKEN, ts, nonce]);
    let r = app
        .client
        .get(format!(
            "{}?signature={sig}&timestamp={ts}&nonce={nonce}&echostr=5837397749",
            app.webhook()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(r.text().await.unwrap(), "5837397749");

    let bad = app
        .client
        .get(format!("{}?signature=899cf89e464efb63f54ddac96b0a0a235f53aa78&timestamp={ts}&nonce={nonce}&echostr=x", app.webhook()))
        .send()
        .await
        .unwrap();
    assert!(
        bad.status() == 401 || bad.status() == 403,
        "{}",
        bad.status()
    );
    let body: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(body["code"], "bad_signature");
    let missing = app
        .client
        .get(format!("{}?echostr=x", app.webhook()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
    let unknown = app
        .client
        .get(app.url(&format!(
            "/webhook/wechat/nope?signature={sig}&timestamp={ts}&nonce={nonce}&echostr=x"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    // A web wall is not a WeChat wall.
    let web = app
        .client
        .get(app.url(&format!(
            "/webhook/wechat/web?signature={sig}&timestamp={ts}&nonce={nonce}&echostr=x"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(web.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn pushes_in_both_encrypted_modes_become_ready_voice_messages() {
    let (_d, mock, app) = setup().await;
    let amr = hello_amr();
    for (i, mode) in [PushMode::Compatible, PushMode::Safe]
        .into_iter()
        .enumerate()
    {
        let media = format!("media-{i}");
        mock.add_media(&media, amr.clone(), "audio/amr");
        let openid = format!("oUser{i}");
        let xml = wechat::voice_xml(ORIGINAL_ID, &openid, now_s(), &media, unique(), "hello");
        let r = app.push(&xml, mode).await;
        assert_eq!(r.status(), 200, "{mode:?}");
        assert_eq!(r.text().await.unwrap(), "success", "{mode:?}");
    }
    let wall = app
        .wait_wall(20, |w| with_status(w, "ready").len() == 2)
        .await;
    for m in with_status(&wall, "ready") {
        assert_eq!(m["kind"], "voice");
        let d = m["duration_ms"].as_u64().expect("duration_ms");
        assert!((300..5000).contains(&d), "duration {d}");
        assert_eq!(m["transcript"], "hello");
        let url = m["media_url"].as_str().unwrap();
        assert!(url.starts_with("/media/"), "{url}");
        let (ct, bytes) = app.get_bytes(url).await;
        assert_eq!(ct, "audio/amr");
        assert_eq!(bytes, amr, "the cached bytes are the platform's");
        // The compact wall state carries no waveforms: the wall reads one when it spotlights a voice.
        assert!(m.get("waveform").is_none(), "{m}");
        let w = app
            .get_json(&format!(
                "/api/walls/wx/messages/{}/waveform",
                m["id"].as_str().unwrap()
            ))
            .await;
        assert!(!w["waveform"].as_array().unwrap().is_empty(), "{w}");
    }
    for i in 0..2 {
        let p = participant(&wall, &format!("oUser{i}")).expect("participant");
        assert!(p["avatar_url"].as_str().unwrap().starts_with("/media/"));
        let (ct, _) = app.get_bytes(p["avatar_url"].as_str().unwrap()).await;
        assert!(ct.starts_with("image/"), "{ct}");
    }
    app.stop().await;
}

#[tokio::test]
async fn four_deliveries_of_one_msgid_are_one_message() {
    let (_d, mock, app) = setup().await;
    mock.add_media("m-dup", hello_amr(), "audio/amr");
    let xml = wechat::voice_xml(ORIGINAL_ID, "oDup", now_s(), "m-dup", unique(), "");
    for mode in [
        PushMode::Compatible,
        PushMode::Compatible,
        PushMode::Safe,
        PushMode::Compatible,
    ] {
        let r = app.push(&xml, mode).await;
        assert_eq!(r.status(), 200);
    }
    // A follow retried four times is one join too.
    let sub = wechat::subscribe_xml(ORIGINAL_ID, "oDup", now_s(), Some(WALL));
    for _ in 0..4 {
        assert_eq!(app.push(&sub, PushMode::Compatible).await.status(), 200);
    }
    let wall = app
        .wait_wall(20, |w| with_status(w, "ready").len() == 1)
        .await;
    // Every delivery was acknowledged above; once the inbox is empty they have all been processed, so
    // a second message could no longer appear.
    app.wait_inbox_drained().await;
    let wall2 = app.wx().await;
    assert_eq!(message_count(&wall2), 1, "{wall:#}");
    assert_eq!(wall2["participants"].as_array().unwrap().len(), 1);
    assert_eq!(mock.media_count("m-dup"), 1, "fetched once");
    app.stop().await;
}

#[tokio::test]
async fn hostile_input_is_refused_and_the_server_stays_up() {
    let (_d, mock, app) = setup().await;
    mock.add_media("m-ok", hello_amr(), "audio/amr");
    let good = wechat::voice_xml(ORIGINAL_ID, "oGood", now_s(), "m-ok", unique(), "");
    assert_eq!(app.push(&good, PushMode::Compatible).await.status(), 200);
    app.wait_wall(20, |w| with_status(w, "ready").len() == 1)
        .await;

    let p = pusher();
    let post = |query: String, body: String| {
        let c = app.client.clone();
        let url = format!("{}?{query}", app.webhook());
        async move { c.post(url).body(body).send().await.unwrap() }
    };
    // Bad signature.
    let (q, body) = p.sign(&good, PushMode::Compatible);
    let forged = q.replacen("signature=", "signature=0", 1);
    let r = post(forged, body.clone()).await;
    assert!(r.status() == 401 || r.status() == 403);
    // A correctly signed push an hour old: a replay, refused.
    let old_ts = (now_s() - 3600).to_string();
    let replay = format!(
        "signature={}&timestamp={old_ts}&nonce=42",
        signature(&[TOKEN, &old_ts, "42"])
    );
    assert_eq!(post(replay, good.clone()).await.status(), 401);
    // Safe mode with a tampered msg_signature.
    let (q, body) = p.sign(&good, PushMode::Safe);
    let i = q.find("msg_signature=").unwrap() + "msg_signature=".len();
    let tampered = format!("{}{}", &q[..i], "0".repeat(40));
    assert_eq!(post(tampered, body).await.status(), 401);
    // Plaintext on a wall with an encoding_aes_key: refused, whatever the URL signature says.
    let r = app.push(&good, PushMode::Plaintext).await;
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "plaintext_refused");
    // A NUL character in a text field is not XML 1.0.
    let nul = wechat::text_xml(ORIGINAL_ID, "oNul", now_s(), "a\u{0}b", unique());
    let r = app.push(&nul, PushMode::Compatible).await;
    assert_eq!(r.status(), 400);
    // Malformed XML.
    let (q, _) = p.sign("<xml/>", PushMode::Compatible);
    let r = post(q.clone(), "<xml><ToUserName>gh".into()).await;
    assert_eq!(r.status(), 400);
    assert_eq!(post(q.clone(), "not xml at all".into()).await.status(), 400);
    // Billion laughs: refused, never expanded.
    let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><xml><ToUserName>gh_97417a04a28d</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>&lol3;</Content><MsgId>1</MsgId></xml>"#;
    let r = post(q.clone(), bomb.into()).await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "doctype_refused");
    // 2 MiB body.
    let big = format!(
        "<xml><Content>{}</Content></xml>",
        "a".repeat(2 * 1024 * 1024)
    );
    let r = app
        .client
        .post(format!("{}?{q}", app.webhook()))
        .body(big)
        .send()
        .await;
    match r {
        Ok(r) => assert_eq!(r.status(), 413),
        Err(e) => panic!("the 2 MiB body got no answer: {e}"),
    }
    // Unknown wall.
    let (q, body) = p.sign(&good, PushMode::Compatible);
    let r = app
        .client
        .post(app.url(&format!("/webhook/wechat/nope?{q}")))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Another account's push.
    let other = wechat::voice_xml("gh_someone_else", "oX", now_s(), "m-ok", unique(), "");
    let r = app.push(&other, PushMode::Compatible).await;
    assert_eq!(r.status(), 400);
    // Encrypted for another appid.
    let stranger =
        voicewall_sim::wechat::Pusher::new(TOKEN, Some(AES_KEY), "wx_other_app", ORIGINAL_ID);
    let r = stranger
        .deliver(&app.client, &app.webhook(), &good, PushMode::Safe)
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // Still up; the earlier message is intact; nothing else was stored.
    let wall = app.wx().await;
    assert_eq!(message_count(&wall), 1);
    assert_eq!(with_status(&wall, "ready").len(), 1);
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rejected: u64 = metrics
        .lines()
        .find(|l| l.starts_with("voicewall_requests_rejected_total "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(rejected >= 11, "rejected {rejected}");
    assert_eq!(app.push(&good, PushMode::Compatible).await.status(), 200);
    app.stop().await;
}

/// Wait until the wall shows the platform's QR (so the QR's token use is behind us).
async fn wait_platform_qr(app: &TestApp) {
    app.wait_wall(10, |w| {
        w["join"]["url"]
            .as_str()
            .unwrap_or("")
            .starts_with("http://weixin.qq.com/q/")
    })
    .await;
}

#[tokio::test]
async fn a_rejected_token_is_refreshed_once_and_the_fetch_retried() {
    let (_d, mock, app) = setup().await;
    wait_platform_qr(&app).await;
    assert_eq!(mock.count("/cgi-bin/token"), 1);
    // A known follower (their user/info is behind us), so the media fetch is the next token use.
    let sub = wechat::subscribe_xml(ORIGINAL_ID, "oTok", now_s(), Some(WALL));
    assert_eq!(app.push(&sub, PushMode::Compatible).await.status(), 200);
    app.wait_wall(10, |w| participant(w, "oTok").is_some())
        .await;
    wait_for(|| mock.count("/cgi-bin/user/info") == 1).await;
    mock.add_media("m-tok", hello_amr(), "audio/amr");
    mock.reject_token_once();
    let xml = wechat::voice_xml(ORIGINAL_ID, "oTok", now_s(), "m-tok", unique(), "");
    assert_eq!(app.push(&xml, PushMode::Compatible).await.status(), 200);
    let wall = app
        .wait_wall(20, |w| with_status(w, "ready").len() == 1)
        .await;
    assert_eq!(mock.count("/cgi-bin/token"), 2, "one refresh");
    assert_eq!(mock.media_count("m-tok"), 2, "40001, then the retry");
    assert_eq!(
        with_status(&wall, "ready")[0]["attempts"],
        1,
        "the refresh is inside one attempt"
    );
    app.stop().await;
}

#[tokio::test]
async fn server_errors_and_busy_are_retried_until_ready() {
    let (_d, mock, app) = setup().await;
    wait_platform_qr(&app).await;
    mock.add_media("m-5xx", hello_amr(), "audio/amr");
    mock.fail_next("/cgi-bin/media/get", 2);
    let xml = wechat::voice_xml(ORIGINAL_ID, "o5xx", now_s(), "m-5xx", unique(), "");
    assert_eq!(app.push(&xml, PushMode::Compatible).await.status(), 200);
    let wall = app
        .wait_wall(20, |w| with_status(w, "ready").len() == 1)
        .await;
    assert_eq!(with_status(&wall, "ready")[0]["attempts"], 3);

    mock.add_media("m-busy", hello_amr(), "audio/amr");
    mock.busy_next("/cgi-bin/media/get", 1);
    let xml = wechat::voice_xml(ORIGINAL_ID, "oBusy", now_s(), "m-busy", unique(), "");
    assert_eq!(app.push(&xml, PushMode::Compatible).await.status(), 200);
    app.wait_wall(20, |w| with_status(w, "ready").len() == 2)
        .await;

    // Down for longer than the retry budget: failed, with a readable reason.
    mock.add_media("m-down", hello_amr(), "audio/amr");
    mock.fail_next("/cgi-bin/media/get", 100);
    let xml = wechat::voice_xml(ORIGINAL_ID, "oDown", now_s(), "m-down", unique(), "");
    assert_eq!(app.push(&xml, PushMode::Compatible).await.status(), 200);
    let wall = app
        .wait_wall(20, |w| with_status(w, "failed").len() == 1)
        .await;
    let err = with_status(&wall, "failed")[0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        err.contains("HTTP 500") && err.contains("gave up after 4 attempts"),
        "{err}"
    );
    mock.fail_next("/cgi-bin/media/get", 0);
    app.stop().await;
}

#[tokio::test]
async fn a_permanent_error_fails_the_message_with_a_readable_reason() {
    let (_d, mock, app) = setup().await;
    let xml = wechat::voice_xml(ORIGINAL_ID, "oPerm", now_s(), "no-such-media", unique(), "");
    assert_eq!(app.push(&xml, PushMode::Safe).await.status(), 200);
    let wall = app
        .wait_wall(20, |w| with_status(w, "failed").len() == 1)
        .await;
    let m = with_status(&wall, "failed")[0];
    assert_eq!(
        m["error"],
        "WeChat media/get: errcode 40007 invalid media_id"
    );
    assert_eq!(m["attempts"], 1, "not retried");
    assert_eq!(mock.media_count("no-such-media"), 1);
    app.stop().await;
}

#[tokio::test]
async fn text_image_and_video_pushes() {
    let (_d, mock, app) = setup().await;
    let png = wechat::avatar_png("picture");
    mock.add_media("m-img", png.clone(), "image/jpeg");
    let video = b"\x00\x00\x00\x18ftypmp42fake video bytes".to_vec();
    mock.add_video("m-vid", video.clone());
    let t = now_s();
    let text = wechat::text_xml(ORIGINAL_ID, "oText", t, "大家好 & <hi>", unique());
    let image = format!("<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName><FromUserName><![CDATA[oText]]></FromUserName><CreateTime>{t}</CreateTime><MsgType><![CDATA[image]]></MsgType><PicUrl><![CDATA[http://mmbiz.qpic.cn/x]]></PicUrl><MediaId><![CDATA[m-img]]></MediaId><MsgId>{}</MsgId></xml>", unique());
    let vid = format!("<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName><FromUserName><![CDATA[oText]]></FromUserName><CreateTime>{t}</CreateTime><MsgType><![CDATA[video]]></MsgType><MediaId><![CDATA[m-vid]]></MediaId><ThumbMediaId><![CDATA[th]]></ThumbMediaId><MsgId>{}</MsgId></xml>", unique());
    let location = format!("<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName><FromUserName><![CDATA[oText]]></FromUserName><CreateTime>{t}</CreateTime><MsgType><![CDATA[location]]></MsgType><Location_X>23.1</Location_X><Location_Y>113.3</Location_Y><Scale>20</Scale><Label><![CDATA[x]]></Label><MsgId>{}</MsgId></xml>", unique());
    for x in [&text, &image, &vid, &location] {
        let r = app.push(x, PushMode::Compatible).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "success");
    }
    let wall = app
        .wait_wall(20, |w| with_status(w, "ready").len() == 3)
        .await;
    assert_eq!(message_count(&wall), 3, "the location push is ignored");
    let by_kind = |k: &str| {
        wall["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["kind"] == k)
            .unwrap()
            .clone()
    };
    assert_eq!(by_kind("text")["text"], "大家好 & <hi>");
    let (ct, bytes) = app
        .get_bytes(by_kind("image")["media_url"].as_str().unwrap())
        .await;
    assert_eq!(
        (ct.as_str(), bytes),
        ("image/png", png),
        "sniffed, not the header's word"
    );
    let (ct, bytes) = app
        .get_bytes(by_kind("video")["media_url"].as_str().unwrap())
        .await;
    assert_eq!((ct.as_str(), bytes), ("video/mp4", video));
    app.stop().await;
}

#[tokio::test]
async fn a_follow_with_the_wall_scene_joins_and_gets_a_reply() {
    let (_d, mock, app) = setup().await;
    let t = now_s();
    // Plaintext follow on a plaintext-mode wall: a plaintext reply.
    let plain_dir = tempfile::tempdir().unwrap();
    let plain = plaintext_app(plain_dir.path(), &mock).await;
    let sub = wechat::subscribe_xml(ORIGINAL_ID, "oFollow", t, Some(WALL));
    let r = plain.push(&sub, PushMode::Plaintext).await;
    assert_eq!(r.status(), 200);
    let reply = r.text().await.unwrap();
    let f = xml::fields(&reply).unwrap();
    assert_eq!(f["ToUserName"], "oFollow");
    assert_eq!(f["FromUserName"], ORIGINAL_ID);
    assert_eq!(f["MsgType"], "text");
    let link = format!("{}/join/{WALL}", plain.addr);
    assert!(f["Content"].contains(&link), "{}", f["Content"]);
    let wall = plain
        .wait_wall(10, |w| participant(w, "oFollow").is_some())
        .await;
    let p = participant(&wall, "oFollow").unwrap();
    assert_eq!(p["has_profile"], false, "placeholder until OAuth");
    assert!(p["avatar_url"].as_str().unwrap().starts_with("/media/"));
    plain.stop().await;

    // Safe-mode SCAN by an existing follower: an encrypted, signed reply.
    let scan = wechat::scan_xml(ORIGINAL_ID, "oScan", t, WALL);
    let r = app.push(&scan, PushMode::Safe).await;
    assert_eq!(r.status(), 200);
    let envelope = r.text().await.unwrap();
    let outer = xml::fields(&envelope).unwrap();
    assert!(
        outer.contains_key("Encrypt")
            && outer.contains_key("MsgSignature")
            && outer.contains_key("TimeStamp")
            && outer.contains_key("Nonce")
    );
    let inner = pusher()
        .open_reply(&envelope)
        .expect("valid signed envelope for our appid");
    let f = xml::fields(&inner).unwrap();
    assert_eq!(f["ToUserName"], "oScan");
    let link = format!("{}/join/{WALL}", app.addr);
    assert!(f["Content"].contains(&link));
    app.wait_wall(10, |w| participant(w, "oScan").is_some())
        .await;

    // Unfollow is acknowledged; the person stays with what they said.
    let unsub = format!("<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName><FromUserName><![CDATA[oFollow]]></FromUserName><CreateTime>{}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[unsubscribe]]></Event></xml>", t + 1);
    let r = app.push(&unsub, PushMode::Compatible).await;
    assert_eq!(r.text().await.unwrap(), "success");
    app.stop().await;
}

#[tokio::test]
async fn the_join_qr_is_the_platform_qr_with_fallback_and_renewal() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockWechat::start(APP_ID, SECRET).await.unwrap();
    mock.fail_next("/cgi-bin/qrcode/create", 2);
    mock.set_qr_expire(Some(2));
    let app = spawn_app_in(dir.path(), &mock).await;
    let mut events = app.state.hub.subscribe(WALL).unwrap();
    // Until the platform answers, the wall shows the kiosk's own join page.
    let first = app.wx().await;
    assert_eq!(first["join"]["url"], format!("{}/join/{WALL}", app.addr));
    let wall = app
        .wait_wall(10, |w| {
            w["join"]["url"]
                .as_str()
                .unwrap()
                .starts_with("http://weixin.qq.com/q/")
        })
        .await;
    let qr1 = wall["join"]["url"].as_str().unwrap().to_string();
    assert!(mock.qr_scenes().iter().all(|s| s == WALL));
    // Renewed at 80 % of its 2 s life.
    let wall = app
        .wait_wall(10, |w| w["join"]["url"].as_str().unwrap() != qr1)
        .await;
    let qr2 = wall["join"]["url"].as_str().unwrap().to_string();
    assert!(qr2.starts_with("http://weixin.qq.com/q/"));
    // The QR the wall draws encodes the platform's URL (read between two identical wall states, as
    // the code renews every 1.6 s).
    let decoded = loop {
        let before = app.wx().await;
        let svg = app
            .client
            .get(app.url(before["join"]["qr_svg_url"].as_str().unwrap()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let after = app.wx().await;
        if before["join"]["url"] == after["join"]["url"] {
            let text = voicewall_testkit::qr::decode_svg(&svg).expect("a readable QR code");
            break (text, after["join"]["url"].as_str().unwrap().to_string());
        }
    };
    assert_eq!(decoded.0, decoded.1);
    let mut seen = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if let voicewall_core::events::WallEvent::JoinUpdated { join_url } = ev {
            seen.push(join_url);
        }
    }
    assert!(seen.contains(&qr1) && seen.contains(&qr2), "{seen:?}");
    assert!(mock.count("/cgi-bin/qrcode/create") >= 4);
    app.stop().await;
}

/// The app with the same account as a plaintext-mode wall (no encoding_aes_key).
async fn plaintext_app(dir: &std::path::Path, mock: &MockWechat) -> TestApp {
    let walls =
        wechat_walls(&mock.base_url()).replace(&format!("encoding_aes_key = \"{AES_KEY}\"\n"), "");
    assert!(!walls.contains("encoding_aes_key"));
    TestApp::try_spawn_config(
        voicewall_testkit::test_config(dir, &walls),
        voicewall_core::startup::Options {
            retry: Some(fast_retry()),
            ..Default::default()
        },
    )
    .await
    .expect("build app")
}

#[tokio::test]
async fn a_plaintext_wall_binds_each_signed_url_to_its_first_body() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockWechat::start(APP_ID, SECRET).await.unwrap();
    let app = plaintext_app(dir.path(), &mock).await;
    mock.add_media("m-plain", hello_amr(), "audio/amr");
    let good = wechat::voice_xml(ORIGINAL_ID, "oPlain", now_s(), "m-plain", unique(), "hi");
    let (q, body) = pusher().sign(&good, PushMode::Plaintext);
    let post = |body: String| {
        let c = app.client.clone();
        let url = format!("{}?{q}", app.webhook());
        async move { c.post(url).body(body).send().await.unwrap() }
    };
    let r = post(body.clone()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "success");
    app.wait_wall(20, |w| with_status(w, "ready").len() == 1)
        .await;
    // The same signed URL with another body: someone who saw the URL posting as someone else.
    let forged = wechat::text_xml(ORIGINAL_ID, "oVictim", now_s(), "not me", unique());
    let r = post(forged).await;
    assert_eq!(r.status(), 401);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["code"], "bad_signature");
    assert!(v["message"].as_str().unwrap().contains("nonce"), "{v}");
    // The same body again is WeChat's retry: acknowledged, still one message.
    assert_eq!(post(body).await.status(), 200);
    app.wait_inbox_drained().await;
    let wall = app.wx().await;
    assert_eq!(message_count(&wall), 1, "{wall:#}");
    assert!(participant(&wall, "oVictim").is_none());
    app.stop().await;
}

#[tokio::test]
async fn the_access_token_is_kept_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockWechat::start(APP_ID, SECRET).await.unwrap();
    let tokens = |m: &MockWechat| m.count("/cgi-bin/token") + m.count("/cgi-bin/stable_token");
    for (i, media) in ["m-run1", "m-run2"].into_iter().enumerate() {
        let app = spawn_app_in(dir.path(), &mock).await;
        mock.add_media(media, hello_amr(), "audio/amr");
        let xml = wechat::voice_xml(ORIGINAL_ID, "oKeep", now_s(), media, unique(), "");
        assert_eq!(app.push(&xml, PushMode::Compatible).await.status(), 200);
        app.wait_wall(20, |w| with_status(w, "ready").len() == i + 1)
            .await;
        app.stop().await;
    }
    assert_eq!(tokens(&mock), 1, "the second run reused the kept token");

    // The platform forgot it (another server of the account fetched a new one): refreshed once.
    let other = MockWechat::start(APP_ID, SECRET).await.unwrap();
    let app = spawn_app_in(dir.path(), &other).await;
    other.add_media("m-run3", hello_amr(), "audio/amr");
    let xml = wechat::voice_xml(ORIGINAL_ID, "oKeep", now_s(), "m-run3", unique(), "");
    assert_eq!(app.push(&xml, PushMode::Compatible).await.status(), 200);
    app.wait_wall(20, |w| with_status(w, "ready").len() == 3)
        .await;
    assert_eq!(tokens(&other), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_follower_of_two_accounts_is_one_person_from_the_first_voice() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        MockWechat::start(APP_ID, SECRET).await.unwrap(),
        MockWechat::start("wx_second_account", SECRET)
            .await
            .unwrap(),
    );
    a.add_user("oOnA", "", Some("union-42"));
    b.add_user("oOnB", "", Some("union-42"));
    a.add_user("oLoner", "", None);
    let walls = format!(
        "{}[[walls]]\nid = \"wx2\"\n[walls.wechat]\napp_id = \"wx_second_account\"\napp_secret = \"{SECRET}\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"{AES_KEY}\"\noriginal_id = \"gh_second\"\napi_base = \"{b_base}\"\noauth_base = \"{b_base}\"\n",
        wechat_walls(&a.base_url()),
        b_base = b.base_url()
    );
    let app = TestApp::try_spawn_config(
        voicewall_testkit::test_config(dir.path(), &walls),
        voicewall_core::startup::Options {
            retry: Some(fast_retry()),
            ..Default::default()
        },
    )
    .await
    .expect("build app");
    for (media, mock) in [("m-a", &a), ("m-b", &b)] {
        mock.add_media(media, hello_amr(), "audio/amr");
    }
    let second =
        voicewall_sim::wechat::Pusher::new(TOKEN, Some(AES_KEY), "wx_second_account", "gh_second");
    let r = second
        .deliver(
            &app.client,
            &app.url("/webhook/wechat/wx2"),
            &wechat::voice_xml("gh_second", "oOnB", now_s(), "m-b", unique(), ""),
            PushMode::Safe,
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for openid in ["oOnA", "oLoner"] {
        let xml = wechat::voice_xml(ORIGINAL_ID, openid, now_s(), "m-a", unique(), "");
        assert_eq!(app.push(&xml, PushMode::Safe).await.status(), 200);
    }
    let person = |w: &serde_json::Value, id: &str| {
        w["participants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .map(|p| p["person_id"].as_str().unwrap().to_string())
    };
    let on_a = app
        .wait_wall(20, |w| {
            person(w, "wechat:oOnA").is_some_and(|p| p.contains("union"))
                && person(w, "wechat:oLoner").is_some()
        })
        .await;
    let on_b = app
        .wait_state("wx2", 20, |w| {
            person(w, "wechat:oOnB").is_some_and(|p| p.contains("union"))
        })
        .await;
    assert_eq!(person(&on_a, "wechat:oOnA"), person(&on_b, "wechat:oOnB"));
    assert_eq!(
        person(&on_a, "wechat:oOnA").unwrap(),
        "wechat:union:union-42"
    );
    // Nobody else is linked by accident; user/info was asked once per new follower.
    assert_eq!(person(&on_a, "wechat:oLoner").unwrap(), "wechat:oLoner");
    assert_eq!(a.count("/cgi-bin/user/info"), 2);
    assert_eq!(b.count("/cgi-bin/user/info"), 1);
    app.stop().await;
}

/// Poll `cond` until it holds (panics after 10 s).
async fn wait_for(cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "condition not met in 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_banned_senders_voice_is_refused_with_a_passive_reply() {
    let (_d, mock, app) = setup().await;
    mock.add_media("media-ban", hello_amr(), "audio/amr");
    app.state
        .board
        .set_banned(WALL, "wechat:oBanned", true)
        .unwrap();
    let xml = wechat::voice_xml(ORIGINAL_ID, "oBanned", now_s(), "media-ban", unique(), "hi");
    let r = app.push(&xml, PushMode::Safe).await;
    assert_eq!(r.status(), 200);
    let inner = pusher()
        .open_reply(&r.text().await.unwrap())
        .expect("a sealed passive reply");
    let f = xml::fields(&inner).unwrap();
    assert_eq!(
        (f["ToUserName"].as_str(), f["MsgType"].as_str()),
        ("oBanned", "text")
    );
    assert!(f["Content"].contains("organiser"), "{}", f["Content"]);
    assert_eq!(app.inbox_pending().await, 0);
    assert!(
        app.state.store.messages(WALL).unwrap().is_empty(),
        "nothing stored"
    );
    app.stop().await;
}
