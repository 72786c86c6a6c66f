//! The web join page over real HTTP: the app on 127.0.0.1 port 0 with a temp data dir, a guest who joins
//! (nickname + avatar), records and sends voice; tokens, the device cookie and every limit.

use sha2::Digest;
use std::path::PathBuf;
use voicewall_core::providers::web::config::WebConfig;
use voicewall_core::providers::web::JoinTokens;
use voicewall_core::startup::Options;

/// The harness's app with the join page's own helpers.
struct TestApp(voicewall_testkit::TestApp);

impl std::ops::Deref for TestApp {
    type Target = voicewall_testkit::TestApp;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// Spawn the app with one English web wall "main"; `web` is extra `[walls.web]` keys.
async fn spawn(web: &str) -> TestApp {
    spawn_with("", web).await
}

/// `server` is extra `[server]` tables (e.g. `[server.tls]`).
async fn spawn_with(server: &str, web: &str) -> TestApp {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = voicewall_testkit::test_config(
        tmp.path(),
        &format!(
            "{server}\n[[walls]]\nid = \"main\"\ntitle = \"Test wall\"\nlocale = \"en\"\n[walls.web]\n{web}\n"
        ),
    );
    let app = voicewall_testkit::TestApp::spawn_config(config, Options::default()).await;
    TestApp(app.with_temp_dir(tmp))
}

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../tests/fixtures/audio")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn media_key(bytes: &[u8]) -> String {
    hex::encode(&sha2::Sha256::digest(bytes)[..16])
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, _| image::Rgb([(x % 256) as u8, 80, 160]));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

enum Part<'a> {
    Text(&'a str),
    File(&'a str, &'a str, &'a [u8]),
}

/// A multipart/form-data body (reqwest is built without its multipart feature).
fn multipart(parts: &[(&str, Part)]) -> (String, Vec<u8>) {
    let boundary = "----voicewall-test-boundary-7d1f";
    let mut body = Vec::new();
    for (name, part) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match part {
            Part::Text(v) => {
                body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{v}\r\n")
                        .as_bytes(),
                );
            }
            Part::File(filename, ct, bytes) => {
                body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {ct}\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(bytes);
                body.extend_from_slice(b"\r\n");
            }
        }
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

struct Reply {
    status: u16,
    cookie: Option<String>,
    set_cookie: Option<String>,
    headers: reqwest::header::HeaderMap,
    json: serde_json::Value,
}

impl TestApp {
    /// The wall's join tokens, from the kiosk's stored web secret (the walls here use the default
    /// rotation).
    fn tokens(&self) -> JoinTokens {
        let secret = self.state.store.meta_get("web_secret").unwrap().unwrap();
        JoinTokens::new("main", secret.as_bytes(), &WebConfig::default())
    }

    fn token(&self) -> String {
        self.tokens().current(now_s())
    }

    async fn state_json(&self) -> serde_json::Value {
        self.wall("main").await
    }

    /// The device cookie a valid join page visit sets.
    async fn join(&self) -> String {
        let r = self
            .client
            .get(self.url(&format!("/join/main?t={}", self.token())))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
        set.split(';').next().unwrap().to_string()
    }

    /// A phone that opened the join page and gave a nickname (a voice needs a profile).
    async fn joined(&self, nickname: &str) -> String {
        let cookie = self.join().await;
        let t = self.token();
        let r = self
            .profile(
                Some(&cookie),
                &[
                    ("token", Part::Text(&t)),
                    ("nickname", Part::Text(nickname)),
                ],
            )
            .await;
        assert_eq!(r.status, 201, "{:#}", r.json);
        cookie
    }

    async fn post(
        &self,
        method: reqwest::Method,
        path: &str,
        cookie: Option<&str>,
        parts: &[(&str, Part<'_>)],
    ) -> Reply {
        self.post_with(
            method,
            path,
            cookie,
            parts,
            &[("accept-language", "en-GB,en;q=0.9")],
        )
        .await
    }

    /// A multipart request with the given extra headers (e.g. `x-join-token`, `accept-language`).
    async fn post_with(
        &self,
        method: reqwest::Method,
        path: &str,
        cookie: Option<&str>,
        parts: &[(&str, Part<'_>)],
        headers: &[(&str, &str)],
    ) -> Reply {
        let (ct, body) = multipart(parts);
        let mut req = self
            .client
            .request(method, self.url(path))
            .header("content-type", ct)
            .body(body);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let set_cookie = headers
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_string());
        let json = r.json().await.unwrap_or(serde_json::Value::Null);
        Reply {
            status,
            cookie: set_cookie
                .as_ref()
                .map(|s| s.split(';').next().unwrap().to_string()),
            set_cookie,
            headers,
            json,
        }
    }

    async fn profile(&self, cookie: Option<&str>, parts: &[(&str, Part<'_>)]) -> Reply {
        self.post(
            reqwest::Method::POST,
            "/api/join/main/profile",
            cookie,
            parts,
        )
        .await
    }

    async fn voice(&self, cookie: &str, token: &str, upload_id: &str, audio: &[u8]) -> Reply {
        self.post(
            reqwest::Method::POST,
            "/api/join/main/voice",
            Some(cookie),
            &[
                ("token", Part::Text(token)),
                ("upload_id", Part::Text(upload_id)),
                ("audio", Part::File("voice.webm", "audio/webm", audio)),
            ],
        )
        .await
    }

    /// Read the wall until `pred` holds.
    async fn wait(
        &self,
        secs: u64,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        self.wait_state("main", secs, pred).await
    }
}

fn now_s() -> u64 {
    voicewall_core::domain::now_ms() / 1000
}

fn assert_refusal(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{:#}", r.json);
    assert_eq!(r.json["code"], code, "{:#}", r.json);
    let msg = r.json["message"].as_str().unwrap_or("");
    assert!(msg.len() > 10, "a readable message: {msg:?}");
}

#[tokio::test]
async fn guest_joins_and_their_voice_reaches_the_wall_ready() {
    let app = spawn("").await;
    let t = app.token();
    // The join URL on the wall is the page with this token.
    let s = app.state_json().await;
    let url = s["join"]["url"].as_str().unwrap();
    assert!(url.ends_with(&format!("/join/main?t={t}")), "{url}");

    // Arrange: the page, which sets a signed, HttpOnly, SameSite=Lax, long-lived device cookie.
    let r = app
        .client
        .get(app.url(&format!("/join/main?t={t}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(r.headers()["cache-control"], "no-store");
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    for attr in [
        "vw_device=",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=",
    ] {
        assert!(set.contains(attr), "{attr} in {set}");
    }
    assert!(r.text().await.unwrap().contains("/ui/join.js"));
    let cookie = set.split(';').next().unwrap().to_string();

    // Act: join with a nickname and the generated avatar.
    let joined = app
        .profile(
            Some(&cookie),
            &[
                ("token", Part::Text(&t)),
                ("nickname", Part::Text("  Ada   Lovelace ")),
            ],
        )
        .await;
    assert_eq!(joined.status, 201, "{:#}", joined.json);
    assert!(joined.set_cookie.is_none(), "the page's cookie is kept");
    let p = &joined.json["participant"];
    // The signed value ends with the device id (the `cookie` crate's format: tag, then value).
    let device = p["id"].as_str().unwrap().strip_prefix("web:").unwrap();
    assert!(
        device.len() >= 20 && cookie.ends_with(device),
        "{device} in {cookie}"
    );
    assert_eq!(p["display_name"], "Ada Lovelace");
    assert_eq!(p["has_profile"], true);
    let avatar = p["avatar_url"].as_str().unwrap();
    let r = app.client.get(app.url(avatar)).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert!(
        r.text().await.unwrap().contains(">AL<"),
        "generated initials"
    );

    // ... and send a voice message (MediaRecorder's WebM, as Chrome writes it).
    let audio = fixture("hello_mediarecorder.webm");
    let sent = app.voice(&cookie, &t, "up-1", &audio).await;
    assert_eq!(sent.status, 201, "{:#}", sent.json);
    let mid = sent.json["message_id"].as_str().unwrap().to_string();

    // Assert: the pipeline made it ready, from this participant, with its real duration.
    let s = app
        .wait(20, |s| {
            s["messages"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["id"] == mid.as_str() && m["status"] == "ready")
        })
        .await;
    let m = s["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == mid.as_str())
        .unwrap();
    assert_eq!(m["participant_id"], format!("web:{device}"));
    assert_eq!(m["kind"], "voice");
    let d = m["duration_ms"].as_u64().unwrap();
    assert!((2000..=4000).contains(&d), "duration {d}");
    let media = app
        .client
        .get(app.url(m["media_url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(media.headers()["content-type"], "audio/webm");
    let parts = s["participants"].as_array().unwrap();
    assert_eq!(parts.len(), 1, "one phone = one participant: {parts:#?}");

    // /me shows this phone's participant and its message.
    let me: serde_json::Value = app
        .client
        .get(app.url("/api/join/main/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["participant"]["display_name"], "Ada Lovelace");
    assert_eq!(me["messages"][0]["id"], mid.as_str());
    let r = app
        .client
        .get(app.url("/api/join/main/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "no cookie, no participant");
}

#[tokio::test]
async fn the_device_cookie_keeps_one_participant_across_uploads_and_profile_changes() {
    let app = spawn("").await;
    let t = app.token();
    let mut events = app.state.hub.subscribe("main").unwrap();

    // Joining without having opened the page also hands out the cookie.
    let first = app
        .profile(
            None,
            &[("token", Part::Text(&t)), ("nickname", Part::Text("Bo"))],
        )
        .await;
    assert_eq!(first.status, 201, "{:#}", first.json);
    let set = first.set_cookie.clone().expect("cookie set on join");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    let cookie = first.cookie.clone().unwrap();
    let id = first.json["participant"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Two messages, and a retry of the first (same upload id) that is not a new message.
    let a = app.voice(&cookie, &t, "one", &fixture("hello.ogg")).await;
    assert_eq!(a.status, 201, "{:#}", a.json);
    let again = app.voice(&cookie, &t, "one", &fixture("hello.ogg")).await;
    assert_eq!(again.status, 200, "{:#}", again.json);
    assert_eq!(again.json["duplicate"], true);
    assert_eq!(again.json["message_id"], a.json["message_id"]);
    let b = app.voice(&cookie, &t, "two", &fixture("hello.m4a")).await;
    assert_eq!(b.status, 201, "{:#}", b.json);

    // A new name and a photo: PUT updates the same participant, the photo is re-encoded to 256×256.
    let photo = png(640, 480);
    let changed = app
        .post(
            reqwest::Method::PUT,
            "/api/join/main/profile",
            Some(&cookie),
            &[
                ("token", Part::Text(&t)),
                ("nickname", Part::Text("Bo Peep")),
                ("avatar", Part::File("me.png", "image/png", &photo)),
            ],
        )
        .await;
    assert_eq!(changed.status, 200, "{:#}", changed.json);
    assert_eq!(changed.json["participant"]["id"], id.as_str());
    let avatar = changed.json["participant"]["avatar_url"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app.client.get(app.url(&avatar)).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let img = image::load_from_memory(&r.bytes().await.unwrap()).unwrap();
    assert_eq!((img.width(), img.height()), (256, 256));
    assert!(
        app.state.store.media(&media_key(&photo)).unwrap().is_none(),
        "original never stored"
    );

    // A name change alone keeps the photo.
    let renamed = app
        .profile(
            Some(&cookie),
            &[("token", Part::Text(&t)), ("nickname", Part::Text("Bo P."))],
        )
        .await;
    assert_eq!(renamed.status, 200);
    assert_eq!(renamed.json["participant"]["avatar_url"], avatar.as_str());

    let s = app
        .wait(20, |s| {
            let m = s["messages"].as_array().unwrap();
            m.len() == 2 && m.iter().all(|m| m["status"] == "ready")
        })
        .await;
    let parts = s["participants"].as_array().unwrap();
    assert_eq!(parts.len(), 1, "{parts:#?}");
    assert_eq!(parts[0]["display_name"], "Bo P.");
    for m in s["messages"].as_array().unwrap() {
        assert_eq!(m["participant_id"], id.as_str());
    }

    // The wall heard about the join and each update.
    let mut joined = 0;
    let mut updated = 0;
    while let Ok(ev) = events.try_recv() {
        match ev.name() {
            "participant_joined" => joined += 1,
            "participant_updated" => updated += 1,
            _ => {}
        }
    }
    assert_eq!(joined, 1);
    assert!(updated >= 2, "updated {updated}");

    // A forged cookie is no device.
    // Another device id under this one's signature.
    let last = if cookie.ends_with('a') { "b" } else { "a" };
    let forged = format!("{}{last}", &cookie[..cookie.len() - 1]);
    let r = app.voice(&forged, &t, "three", &fixture("hello.ogg")).await;
    assert_refusal(&r, 403, "no_device");
}

#[tokio::test]
async fn invalid_expired_or_missing_tokens_are_refused() {
    let app = spawn("").await;
    let tokens = app.tokens();
    let expired = tokens.for_epoch(tokens.epoch(now_s()) - 3);

    // The page: a localized "scan the screen again" page.
    for (q, status) in [
        ("", 403),
        ("?t=forged", 403),
        (&*format!("?t={expired}"), 410),
    ] {
        let r = app
            .client
            .get(app.url(&format!("/join/main{q}")))
            .header("accept-language", "zh-CN,zh;q=0.9")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{q}");
        assert!(
            r.headers().get("set-cookie").is_none(),
            "no cookie without a valid token"
        );
        let html = r.text().await.unwrap();
        assert!(
            html.contains("重新扫描") && html.contains("lang=\"zh-CN\""),
            "{html}"
        );
    }
    let r = app
        .client
        .get(app.url(&format!("/join/main?t={expired}")))
        .header("accept-language", "en-US")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Scan the QR code on the screen again"));
    let r = app
        .client
        .get(app.url(&format!("/join/nope?t={}", app.token())))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "unknown wall");

    // The API: 403 invalid / missing, 410 expired, 403 without the device cookie.
    let cookie = app.join().await;
    let audio = fixture("hello.ogg");
    assert_refusal(
        &app.voice(&cookie, "forged", "a", &audio).await,
        403,
        "token_invalid",
    );
    assert_refusal(
        &app.voice(&cookie, "", "a", &audio).await,
        403,
        "token_missing",
    );
    assert_refusal(
        &app.voice(&cookie, &expired, "a", &audio).await,
        410,
        "token_expired",
    );
    let r = app
        .post(
            reqwest::Method::POST,
            "/api/join/main/voice",
            None,
            &[
                ("token", Part::Text(&app.token())),
                ("audio", Part::File("v.ogg", "audio/ogg", &audio)),
            ],
        )
        .await;
    assert_refusal(&r, 403, "no_device");
    let r = app
        .profile(
            None,
            &[
                ("token", Part::Text(&expired)),
                ("nickname", Part::Text("Late")),
            ],
        )
        .await;
    assert_refusal(&r, 410, "token_expired");
    // The header works as well as the form field.
    let r = app
        .post_with(
            reqwest::Method::POST,
            "/api/join/main/voice",
            Some(&cookie),
            &[("audio", Part::File("v.ogg", "audio/ogg", &audio))],
            &[("x-join-token", "forged")],
        )
        .await;
    assert_eq!(r.status, 403);

    let s = app.state_json().await;
    assert!(s["messages"].as_array().unwrap().is_empty());
    assert!(s["participants"].as_array().unwrap().is_empty());
    assert_eq!(app.state.store.inbox_len(), 0);
}

/// Send `body` the way a browser's `fetch` of a `FormData` does (chunked, the first chunk before the
/// rest, as a phone on a slow uplink) on a raw socket, then read the answer: a reset or a closed
/// socket under the upload is an error here, as it is for the phone ("network error").
async fn raw_post(
    app: &TestApp,
    path: &str,
    headers: &str,
    ct: &str,
    body: &[u8],
) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.addr.trim_start_matches("http://").to_string();
    let mut sock = tokio::net::TcpStream::connect(addr).await?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: {ct}\r\ntransfer-encoding: chunked\r\n{headers}\r\n"
    );
    sock.write_all(head.as_bytes()).await?;
    for (i, chunk) in body.chunks(16 * 1024).enumerate() {
        sock.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await?;
        sock.write_all(chunk).await?;
        sock.write_all(b"\r\n").await?;
        if i == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    sock.write_all(b"0\r\n\r\n").await?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // Read up to the end of the JSON answer (the connection may stay open).
    while !String::from_utf8_lossy(&answer).trim_end().ends_with('}') {
        let n = sock.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn a_stale_token_on_a_big_voice_gets_the_refusal_not_a_reset() {
    // A phone that kept the page open across a rotation sends a long voice with the old token. The
    // token is refused before the body is read; the server must still take the body in before it
    // answers, or closing the socket with unread data resets it under the phone, which then shows
    // "network error" instead of "scan the QR code again" (CI's console browser test met it as
    // "fetch failed").
    let app = spawn("").await;
    let cookie = app.join().await;
    let tokens = app.tokens();
    let expired = tokens.for_epoch(tokens.epoch(now_s()) - 3);
    let audio = fixture("hello.ogg").repeat(48); // ~380 KB: more than the socket buffers take at once
    let in_form = multipart(&[
        ("token", Part::Text(&expired)),
        ("audio", Part::File("v.ogg", "audio/ogg", &audio)),
    ]);
    let in_header = multipart(&[("audio", Part::File("v.ogg", "audio/ogg", &audio))]);
    let cookie_line = format!("cookie: {cookie}\r\n");
    let header_line = format!("{cookie_line}x-join-token: forged\r\n");
    for _ in 0..5 {
        for ((ct, body), headers, want) in [
            (&in_form, &cookie_line, "410 Gone"),
            (&in_header, &header_line, "403 Forbidden"),
        ] {
            let answer = raw_post(&app, "/api/join/main/voice", headers, ct, body)
                .await
                .unwrap_or_else(|e| panic!("the phone got {e} instead of {want}"));
            assert!(answer.starts_with(&format!("HTTP/1.1 {want}")), "{answer}");
            assert!(answer.contains("\"code\":\"token_"), "{answer}");
        }
    }
    assert_eq!(app.state.store.inbox_len(), 0, "nothing accepted");
}

#[tokio::test]
async fn profile_limits_nickname_and_avatar() {
    let app = spawn("nickname_max_chars = 8\navatar_max_bytes = 20000").await;
    let t = app.token();
    let cookie = app.join().await;
    let p = |nick: &'static str| [("token", Part::Text(&t)), ("nickname", Part::Text(nick))];

    assert_refusal(
        &app.profile(Some(&cookie), &p("ABCDEFGHI")).await,
        422,
        "nickname_too_long",
    );
    // Characters, not bytes: eight CJK characters fit.
    assert_eq!(
        app.profile(Some(&cookie), &p("八个汉字八个汉字"))
            .await
            .status,
        201
    );
    assert_refusal(
        &app.profile(Some(&cookie), &p("   ")).await,
        400,
        "nickname_required",
    );

    let text = b"this is not an image at all".repeat(10);
    let r = app
        .profile(
            Some(&cookie),
            &[
                ("token", Part::Text(&t)),
                ("nickname", Part::Text("Cy")),
                ("avatar", Part::File("me.jpg", "image/jpeg", &text)),
            ],
        )
        .await;
    assert_refusal(&r, 415, "not_an_image");
    let big = vec![0xFFu8; 30_000];
    let r = app
        .profile(
            Some(&cookie),
            &[
                ("token", Part::Text(&t)),
                ("nickname", Part::Text("Cy")),
                ("avatar", Part::File("me.jpg", "image/jpeg", &big)),
            ],
        )
        .await;
    assert_refusal(&r, 413, "avatar_too_large");
    assert!(r.json["message"].as_str().unwrap().contains("MB"));
    let s = app.state_json().await;
    assert_eq!(
        s["participants"][0]["display_name"], "八个汉字八个汉字",
        "refusals changed nothing"
    );
}

#[tokio::test]
async fn non_audio_is_refused_415_and_nothing_is_stored() {
    let app = spawn("audio_max_bytes = 100000\naudio_max_duration_s = 2").await;
    let t = app.token();
    let cookie = app.join().await;
    assert_eq!(
        app.profile(
            Some(&cookie),
            &[("token", Part::Text(&t)), ("nickname", Part::Text("Di"))]
        )
        .await
        .status,
        201
    );
    let before = app.state.store.inbox_len();

    let not_audio = b"<html>definitely not a voice message</html>".to_vec();
    let r = app.voice(&cookie, &t, "x1", &not_audio).await;
    assert_refusal(&r, 415, "not_audio");
    assert!(app
        .state
        .store
        .media(&media_key(&not_audio))
        .unwrap()
        .is_none());
    let r = app.voice(&cookie, &t, "x2", &png(32, 32)).await;
    assert_refusal(&r, 415, "not_audio");

    // Too long for this wall (the clip is 3 s, the limit 2 s): 422, not stored.
    let long = fixture("hello.ogg");
    let r = app.voice(&cookie, &t, "x3", &long).await;
    assert_refusal(&r, 422, "audio_too_long");
    assert!(app.state.store.media(&media_key(&long)).unwrap().is_none());

    // Damaged: a WAV header with nothing after it.
    let wav = fixture("hello.wav");
    let r = app.voice(&cookie, &t, "x4", &wav[..44]).await;
    assert!([415, 422].contains(&r.status), "{} {:#}", r.status, r.json);

    // Too large: 413 before decoding.
    let huge = vec![7u8; 150_000];
    assert_refusal(
        &app.voice(&cookie, &t, "x5", &huge).await,
        413,
        "audio_too_large",
    );

    // An empty form.
    let r = app
        .post(
            reqwest::Method::POST,
            "/api/join/main/voice",
            Some(&cookie),
            &[("token", Part::Text(&t))],
        )
        .await;
    assert_refusal(&r, 400, "audio_missing");

    assert_eq!(app.state.store.inbox_len(), before);
    let s = app.state_json().await;
    assert!(
        s["messages"].as_array().unwrap().is_empty(),
        "{:#}",
        s["messages"]
    );
}

#[tokio::test]
async fn too_many_messages_per_participant_and_per_ip_are_refused_429() {
    let app = spawn("messages_per_minute = 2\nmessages_per_ip_per_minute = 3").await;
    let t = app.token();
    let audio = fixture("hello.ogg");
    let one = app.joined("One").await;
    assert_eq!(app.voice(&one, &t, "a", &audio).await.status, 201);
    assert_eq!(app.voice(&one, &t, "b", &audio).await.status, 201);
    let r = app.voice(&one, &t, "c", &audio).await;
    assert_refusal(&r, 429, "too_many_messages");
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");

    // A second phone on the same network: its own two, but the network allows three in all.
    let two = app.joined("Two").await;
    assert_eq!(app.voice(&two, &t, "a", &audio).await.status, 201);
    assert_refusal(
        &app.voice(&two, &t, "b", &audio).await,
        429,
        "too_many_from_network",
    );
}

#[tokio::test]
async fn refusals_are_localized_by_accept_language() {
    let app = spawn("").await;
    let cookie = app.join().await;
    let r = app
        .post_with(
            reqwest::Method::POST,
            "/api/join/main/voice",
            Some(&cookie),
            &[("token", Part::Text("forged"))],
            &[("accept-language", "zh-CN")],
        )
        .await;
    assert_eq!(r.status, 403);
    let j = r.json;
    assert_eq!(j["code"], "token_invalid");
    assert!(j["message"].as_str().unwrap().contains("二维码"), "{j}");

    let info: serde_json::Value = app
        .client
        .get(app.url("/api/join/main/info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["title"], "Test wall");
    assert_eq!(info["limits"]["nickname_max_chars"], 24);
}

#[tokio::test]
async fn https_with_a_generated_self_signed_certificate() {
    let app = spawn_with("[server.tls]", "").await;
    assert!(app.addr.starts_with("https://"));
    let t = app.token();
    let s = app.state_json().await;
    assert!(
        s["join"]["url"].as_str().unwrap().starts_with("https://"),
        "{}",
        s["join"]
    );
    let cookie = app.join().await;
    let joined = app
        .profile(
            Some(&cookie),
            &[("token", Part::Text(&t)), ("nickname", Part::Text("Tess"))],
        )
        .await;
    assert_eq!(joined.status, 201, "{:#}", joined.json);
    let sent = app.voice(&cookie, &t, "tls-1", &fixture("hello.ogg")).await;
    assert_eq!(sent.status, 201, "{:#}", sent.json);
    assert!(app.state.config.data_dir().join("tls/cert.pem").exists());
    // Plain HTTP on the TLS port is not served.
    let plain = app.addr.replacen("https://", "http://", 1);
    let r = app.client.get(format!("{plain}/healthz")).send().await;
    assert!(r.map(|r| !r.status().is_success()).unwrap_or(true));
}

#[tokio::test]
async fn a_voice_before_a_profile_is_refused_409_with_a_clear_message() {
    let app = spawn("").await;
    let t = app.token();
    let cookie = app.join().await;
    let audio = fixture("hello.ogg");
    let r = app.voice(&cookie, &t, "early", &audio).await;
    assert_refusal(&r, 409, "profile_required");
    assert!(
        r.json["message"].as_str().unwrap().contains("nickname"),
        "{:#}",
        r.json
    );
    assert_eq!(app.state.store.inbox_len(), 0, "nothing accepted");
    let r = app
        .profile(
            Some(&cookie),
            &[("token", Part::Text(&t)), ("nickname", Part::Text("Ada"))],
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(app.voice(&cookie, &t, "after", &audio).await.status, 201);
}

#[tokio::test]
async fn new_device_cookies_per_client_per_minute_are_capped_429() {
    let app = spawn("new_devices_per_ip_per_minute = 2").await;
    let t = app.token();
    app.join().await;
    app.join().await;
    // The third new phone from this address: the page says to wait, and no cookie is minted.
    let r = app
        .client
        .get(app.url(&format!("/join/main?t={t}")))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("set-cookie").is_none());
    assert!(r.text().await.unwrap().contains("Too many new phones"));
    // Nor through the profile API without a cookie.
    let r = app
        .profile(
            None,
            &[("token", Part::Text(&t)), ("nickname", Part::Text("Eve"))],
        )
        .await;
    assert_refusal(&r, 429, "too_many_new_devices");
    assert!(r.set_cookie.is_none());
    assert!(r.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn guests_per_wall_are_capped_409_and_a_guest_already_in_still_edits() {
    let app = spawn("max_participants = 1").await;
    let t = app.token();
    let first = app.joined("First").await;
    let second = app.join().await;
    let r = app
        .profile(
            Some(&second),
            &[
                ("token", Part::Text(&t)),
                ("nickname", Part::Text("Second")),
            ],
        )
        .await;
    assert_refusal(&r, 409, "wall_full_of_guests");
    let r = app
        .profile(
            Some(&first),
            &[
                ("token", Part::Text(&t)),
                ("nickname", Part::Text("First again")),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{:#}", r.json);
}

#[tokio::test]
async fn messages_per_wall_are_capped_409() {
    let app = spawn("max_messages = 1").await;
    let t = app.token();
    let cookie = app.joined("Ada").await;
    let audio = fixture("hello.ogg");
    assert_eq!(app.voice(&cookie, &t, "one", &audio).await.status, 201);
    app.wait(30, |s| {
        s["messages"].as_array().is_some_and(|m| m.len() == 1)
    })
    .await;
    let r = app.voice(&cookie, &t, "two", &audio).await;
    assert_refusal(&r, 409, "wall_full_of_messages");
}

/// A JPEG `w`×`h` (a phone camera's photo, smaller).
fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 120])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut out),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    out
}

#[tokio::test]
async fn a_photo_is_kept_at_256_px_with_a_64_px_thumbnail_for_the_grid() {
    let app = spawn("avatar_max_bytes = 4000000").await;
    let t = app.token();
    let cookie = app.join().await;
    let photo = jpeg(1600, 1200);
    let r = app
        .profile(
            Some(&cookie),
            &[
                ("token", Part::Text(&t)),
                ("nickname", Part::Text("Cy")),
                ("avatar", Part::File("me.jpg", "image/jpeg", &photo)),
            ],
        )
        .await;
    assert_eq!(r.status, 201, "{:#}", r.json);
    let p = &r.json["participant"];
    let (avatar, thumb) = (
        p["avatar_url"].as_str().unwrap().to_string(),
        p["thumb_url"].as_str().unwrap().to_string(),
    );
    assert_ne!(avatar, thumb);
    for (url, side) in [(&avatar, 256), (&thumb, 64)] {
        let r = app.client.get(app.url(url)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
        assert_eq!(r.headers()["content-type"], "image/jpeg");
        let cache = r.headers()["cache-control"].to_str().unwrap().to_string();
        assert!(cache.contains("immutable"), "{cache}");
        let img = image::load_from_memory(&r.bytes().await.unwrap()).unwrap();
        assert_eq!((img.width(), img.height()), (side, side), "{url}");
    }
    // The wall asks for the size it draws: the state carries both.
    let s = app.state_json().await;
    let on_wall = &s["participants"][0];
    assert_eq!(on_wall["thumb_url"], thumb.as_str());
    assert_eq!(on_wall["avatar_url"], avatar.as_str());
    // The guest may fetch their own thumbnail as they may their avatar; another guest may not.
    let other = app.joined("Di").await;
    for (who, status) in [(&cookie, 200), (&other, 401)] {
        let r = app
            .anonymous
            .get(app.url(&thumb))
            .header("cookie", who.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{who}");
    }
    // A generated picture needs no thumbnail: the thumbnail is the avatar.
    let d = app
        .wait(10, |s| s["participants"].as_array().unwrap().len() == 2)
        .await;
    let di = d["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["display_name"] == "Di")
        .unwrap();
    assert_eq!(di["thumb_url"], di["avatar_url"]);
}

/// The events of an SSE body as (name, data) pairs, read until `done` holds of the last one.
async fn read_events(
    r: &mut reqwest::Response,
    secs: u64,
    mut done: impl FnMut(&str, &serde_json::Value) -> bool,
) -> Vec<(String, serde_json::Value)> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    let (mut buf, mut seen) = (String::new(), Vec::new());
    loop {
        let chunk = tokio::time::timeout_at(deadline, r.chunk())
            .await
            .unwrap_or_else(|_| panic!("no such event within {secs} s: {seen:#?}"))
            .unwrap()
            .expect("the stream stays open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let (mut name, mut data) = (String::from("message"), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if data.is_empty() {
                continue; // a keep-alive comment
            }
            let data: serde_json::Value = serde_json::from_str(&data).unwrap();
            let stop = done(&name, &data);
            seen.push((name, data));
            if stop {
                return seen;
            }
        }
    }
}

#[tokio::test]
async fn the_phone_learns_its_message_states_from_its_own_stream() {
    let app = spawn("").await;
    let t = app.token();
    let path = format!("/api/join/main/me/events?t={t}");
    // Like /me: a phone that has not joined gets a 404, no stream.
    let stray = app.join().await;
    for cookie in [None, Some(stray.as_str())] {
        let mut req = app.anonymous.get(app.url(&path));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 404, "{cookie:?}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["code"], "not_found");
    }

    let cookie = app.joined("Ev").await;
    // No client timeout: the stream stays open.
    let mut stream = reqwest::Client::new()
        .get(app.url(&path))
        .header("cookie", cookie.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    // At once: what /me says, with the current token.
    let first = read_events(&mut stream, 10, |name, _| name == "me").await;
    let me = &first.last().unwrap().1;
    assert_eq!(me["participant"]["display_name"], "Ev");
    assert_eq!(me["messages"], serde_json::json!([]));
    assert_eq!(me["token"], t.as_str());

    // A voice: the stream tells its state as it changes, no request from the phone.
    let sent = app.voice(&cookie, &t, "u1", &fixture("hello.ogg")).await;
    assert_eq!(sent.status, 201, "{:#}", sent.json);
    let id = sent.json["message_id"].as_str().unwrap().to_string();
    let ready = |v: &serde_json::Value| {
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == id.as_str() && m["status"] == "ready")
    };
    let seen = read_events(&mut stream, 20, |name, v| name == "me" && ready(v)).await;
    let (_, last) = seen.last().unwrap();
    let m = &last["messages"][0];
    assert_eq!(m["kind"], "voice");
    assert!(m["waveform"].as_array().unwrap().len() > 10, "{m}");
    // Played on the (null) speakers: the count reaches the phone too.
    read_events(&mut stream, 20, |name, v| {
        name == "me" && v["messages"][0]["played_count"].as_u64() >= Some(1)
    })
    .await;
    // Each payload is sent once: no two consecutive `me` events are the same.
    let mes: Vec<_> = first
        .iter()
        .chain(&seen)
        .filter(|(n, _)| n == "me")
        .map(|(_, v)| v.to_string())
        .collect();
    assert!(mes.windows(2).all(|w| w[0] != w[1]), "{mes:#?}");
}
