//! Who may see what (DESIGN.md, "Audiences"), as one table over real HTTP: every display and operator
//! route × every audience → the status it must get. The app listens on 0.0.0.0 port 0, so "nobody"
//! comes from the machine's LAN address when it has one; "loopback" and "forged XFF" come from
//! 127.0.0.1 without a credential and must be refused like anyone else — a tunnel or reverse proxy on
//! the kiosk makes every request local, so the address grants nothing.
//!
//! `cargo test -p voicewall-core --test audiences -- --nocapture` prints the table.
//!
//! Also: the console's sign-in (login, cookie flags, logout, a restart keeps the session), and the
//! one-time display link (works once, HttpOnly cookie, clean URL, no referrer).

use std::net::IpAddr;
use voicewall_core::credentials::DisplayScope;
use voicewall_core::startup::Options;
use voicewall_testkit::{inbound, test_config, TestApp};

/// This machine's non-loopback IPv4 address, if it has one.
fn lan_ip() -> Option<IpAddr> {
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    sock.connect("10.254.254.254:1").ok()?;
    let ip = sock.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// Who asks: a base URL (which address it comes from) and the headers it sends.
struct Audience {
    name: &'static str,
    base: String,
    headers: Vec<(&'static str, String)>,
}

/// One route: method, path, and for POST a JSON body.
struct Route {
    method: &'static str,
    path: String,
    body: Option<serde_json::Value>,
}

async fn status(client: &reqwest::Client, who: &Audience, route: &Route) -> u16 {
    let url = format!("{}{}", who.base, route.path);
    let mut req = match route.method {
        "POST" => client
            .post(&url)
            .json(route.body.as_ref().unwrap_or(&serde_json::json!({}))),
        _ => client.get(&url),
    };
    for (k, v) in &who.headers {
        req = req.header(*k, v);
    }
    // Only the status: an event stream's body is never read (the response is dropped).
    req.send().await.expect("request").status().as_u16()
}

fn media_path(url: &serde_json::Value) -> String {
    url.as_str().expect("a /media/ url").to_string()
}

#[tokio::test]
async fn every_route_answers_each_audience_as_the_table_says() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(
        dir.path(),
        "[[walls]]\nid = \"main\"\nlocale = \"en\"\n[walls.web]\n[[walls]]\nid = \"side\"\nlocale = \"en\"\n[walls.web]\n",
    );
    config.server.listen = "0.0.0.0:0".into();
    let app = TestApp::spawn_config(config, Options::default()).await;
    let port = app.addr.rsplit(':').next().unwrap().to_string();
    let local = format!("http://127.0.0.1:{port}");
    let lan = lan_ip().map(|ip| format!("http://{ip}:{port}"));
    if lan.is_none() {
        eprintln!("no LAN address on this machine: \"nobody\" also comes from loopback");
    }
    let nobody_base = lan.clone().unwrap_or_else(|| local.clone());

    // Two guests join wall "main" through the join page (device cookie); guest A also speaks.
    let state = app.wall("main").await;
    let join_url = state["join"]["url"].as_str().unwrap().to_string();
    let token = join_url.rsplit("t=").next().unwrap().to_string();
    let join_path = &join_url[join_url.find("/join/").unwrap()..];
    let mut devices = Vec::new();
    for _ in 0..2 {
        let r = app.anonymous.get(app.url(join_path)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let cookie = voicewall_testkit::app::cookie_pair(&r, "vw_device");
        // The signed value (the `cookie` crate's, percent-encoded): a base64 tag ending in `=`, then
        // the device id.
        let value = cookie.trim_start_matches("vw_device=").replace("%3D", "=");
        let device = value.rsplit_once('=').unwrap().1.to_string();
        app.state
            .accept(&inbound::join("main", &device))
            .await
            .unwrap();
        devices.push((cookie, device));
    }
    let audio = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../tests/fixtures/audio/hello.ogg"),
    )
    .unwrap();
    let key = app.state.store.put_media(&audio, "audio/ogg").unwrap();
    app.state
        .accept(&inbound::cached_voice(
            "main",
            &devices[0].1,
            key.as_str(),
            "voice-a",
        ))
        .await
        .unwrap();
    let state = app
        .wait_state("main", 30, |s| {
            s["participants"].as_array().unwrap().len() == 2
                && s["messages"][0]["status"] == "ready"
        })
        .await;
    let guest_a = format!("web:{}", devices[0].1);
    let avatar_a = state["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == guest_a.as_str())
        .map(|p| media_path(&p["avatar_url"]))
        .unwrap();
    let voice_a = media_path(&state["messages"][0]["media_url"]);
    let message_a = state["messages"][0]["id"].as_str().unwrap().to_string();
    let waveform_a = format!("/api/walls/main/messages/{message_a}/waveform");
    // Guest A's second voice, rejected by the operator: not on the wall, so no display may fetch it.
    let other_audio = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../tests/fixtures/audio/hello.wav"),
    )
    .unwrap();
    let rejected_key = app
        .state
        .store
        .put_media(&other_audio, "audio/wav")
        .unwrap();
    app.state
        .accept(&inbound::cached_voice(
            "main",
            &devices[0].1,
            rejected_key.as_str(),
            "voice-a-2",
        ))
        .await
        .unwrap();
    let held = app
        .wait_state("main", 30, |s| s["messages"].as_array().unwrap().len() == 2)
        .await;
    let rejected_id = held["messages"][1]["id"].as_str().unwrap().to_string();
    let r = app
        .client
        .post(app.url(&format!(
            "/api/admin/walls/main/messages/{rejected_id}/reject"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rejected = format!("/media/{}", rejected_key.as_str());

    // The credentials: displays from the console's one-time links, the kiosk's from the core, a session.
    let display_main = app.display_cookie("main").await;
    let display_side = app.display_cookie("side").await;
    let kiosk_code = app
        .state
        .credentials
        .display_link("main", DisplayScope::Kiosk);
    let kiosk = app.redeem_display(&format!("/display/{kiosk_code}")).await;
    let session = app.operator_session().await;

    let origin = ("origin", local.clone());
    let with = |name, base: &str, headers: Vec<(&'static str, String)>| Audience {
        name,
        base: base.to_string(),
        headers,
    };
    let audiences = vec![
        with("nobody", &nobody_base, vec![]),
        with("loopback", &local, vec![]),
        with(
            "forged XFF",
            &local,
            vec![("x-forwarded-for", "127.0.0.1".into())],
        ),
        with(
            "guest",
            &nobody_base,
            vec![
                ("cookie", devices[0].0.clone()),
                ("x-join-token", token.clone()),
            ],
        ),
        with(
            "other guest",
            &nobody_base,
            vec![
                ("cookie", devices[1].0.clone()),
                ("x-join-token", token.clone()),
            ],
        ),
        with(
            "display",
            &local,
            vec![("cookie", display_main), origin.clone()],
        ),
        with(
            "display:side",
            &local,
            vec![("cookie", display_side), origin.clone()],
        ),
        with("kiosk", &local, vec![("cookie", kiosk), origin.clone()]),
        with(
            "session",
            &local,
            vec![("cookie", session.clone()), origin.clone()],
        ),
        with(
            "session, evil Origin",
            &local,
            vec![
                ("cookie", session),
                ("origin", "https://evil.example".into()),
            ],
        ),
        with(
            "admin Bearer",
            &nobody_base,
            vec![("authorization", format!("Bearer {}", app.admin_token))],
        ),
    ];

    let get = |path: &str| Route {
        method: "GET",
        path: path.to_string(),
        body: None,
    };
    let post = |path: &str, body: serde_json::Value| Route {
        method: "POST",
        path: path.to_string(),
        body: Some(body),
    };
    // Expected statuses, in the order of `audiences` above.
    #[rustfmt::skip]
    let table: Vec<(Route, [u16; 11])> = vec![
        //                                            nobody loop  xff  guest other disp side kiosk sess evil bearer
        (get("/wall/main"),                           [401, 401, 401, 401, 401, 200, 403, 200, 200, 200, 200]),
        (get("/api/walls/main"),                      [401, 401, 401, 401, 401, 200, 403, 200, 200, 200, 200]),
        (get("/api/walls/main/events"),               [401, 401, 401, 401, 401, 200, 403, 200, 200, 200, 200]),
        (get("/api/walls/main/qr.svg"),               [401, 401, 401, 401, 401, 200, 403, 200, 200, 200, 200]),
        (get("/api/walls/main/setup"),                [401, 401, 401, 401, 401, 200, 403, 200, 200, 200, 200]),
        (get("/api/walls/main/messages"),             [401, 401, 401, 401, 401, 200, 403, 200, 200, 200, 200]),
        (get("/api/walls/main/participants"),         [401, 401, 401, 401, 401, 200, 403, 200, 200, 200, 200]),
        (get(&waveform_a),                            [401, 401, 401, 401, 401, 200, 403, 200, 200, 200, 200]),
        (post("/api/walls/main/play", serde_json::json!({"message_id": message_a})),
                                                      [401, 401, 401, 401, 401, 202, 403, 202, 202, 403, 202]),
        (get(&avatar_a),                              [401, 401, 401, 200, 401, 200, 403, 200, 200, 200, 200]),
        (get(&voice_a),                               [401, 401, 401, 200, 401, 200, 403, 200, 200, 200, 200]),
        (get(&rejected),                              [401, 401, 401, 200, 401, 403, 403, 200, 200, 200, 200]),
        (get("/api/walls/main/operator"),             [401, 401, 401, 401, 401, 403, 403, 200, 403, 403, 403]),
        (get("/api/admin/whoami"),                    [401, 401, 401, 401, 401, 401, 401, 401, 200, 200, 200]),
        (post("/api/admin/walls/main/displays", serde_json::json!({})),
                                                      [401, 401, 401, 401, 401, 401, 401, 401, 200, 403, 200]),
        (get("/healthz"),                             [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
    ];

    let width = 44;
    let mut out = format!("{:width$}", "route \\ audience");
    for a in &audiences {
        out.push_str(&format!(" | {}", a.name));
    }
    out.push('\n');
    let mut wrong = Vec::new();
    for (route, expected) in &table {
        let label = format!(
            "{} {}",
            route.method,
            route.path.replace(key.as_str(), "{voice}")
        );
        let label = if route.path == avatar_a {
            "GET /media/{guest's avatar}".to_string()
        } else if route.path == voice_a {
            "GET /media/{guest's voice}".to_string()
        } else if route.path == rejected {
            "GET /media/{guest's rejected voice}".to_string()
        } else if route.path == waveform_a {
            "GET /api/walls/main/messages/{mid}/waveform".to_string()
        } else {
            label
        };
        out.push_str(&format!("{label:width$}"));
        for (who, want) in audiences.iter().zip(expected) {
            let got = status(&app.anonymous, who, route).await;
            let cell = if got == *want {
                got.to_string()
            } else {
                wrong.push(format!("{label} as {}: {got}, want {want}", who.name));
                format!("{got}≠{want}")
            };
            out.push_str(&format!(" | {cell:w$}", w = who.name.len()));
        }
        out.push('\n');
    }
    println!("{out}");
    assert!(wrong.is_empty(), "{out}\n{}", wrong.join("\n"));
    app.stop().await;
}

#[tokio::test]
async fn the_operator_signs_in_with_the_token_and_a_restart_keeps_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_in(dir.path(), "", Options::default()).await;
    let login = |token: &str| {
        app.anonymous
            .post(app.url("/api/admin/login"))
            .json(&serde_json::json!({"token": token}))
            .send()
    };
    let r = login("not-the-token").await.unwrap();
    assert_eq!(r.status(), 401);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["code"], "unauthorized");
    let r = login(&app.admin_token).await.unwrap();
    assert_eq!(r.status(), 204);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.starts_with("vw_session=")
            && set.contains("HttpOnly")
            && set.contains("SameSite=Strict")
            && set.contains("Path=/")
            && !set.contains("Secure"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let whoami = |cookie: String| {
        let req = app
            .anonymous
            .get(app.url("/api/admin/whoami"))
            .header("cookie", cookie);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, body) = whoami(cookie.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("session:"), "{body}");
    // Only a digest of the session id is stored.
    let secret = cookie.trim_start_matches("vw_session=");
    let db = std::fs::read_dir(dir.path().join("db"))
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .any(|bytes| bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    assert!(!db, "the session id itself is on disk");

    app.stop().await;
    let app = TestApp::spawn_in(dir.path(), "", Options::default()).await;
    let r = app
        .anonymous
        .get(app.url("/api/admin/whoami"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a restart keeps the operator signed in");
    let r = app
        .anonymous
        .post(app.url("/api/admin/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let r = app
        .anonymous
        .get(app.url("/api/admin/whoami"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "logged out");
    app.stop().await;
}

#[tokio::test]
async fn a_display_link_works_once_and_leads_to_the_clean_wall_url() {
    let app = TestApp::spawn("").await;
    let r = app
        .client
        .post(app.url("/api/admin/walls/main/displays"))
        .send()
        .await
        .unwrap();
    let link: serde_json::Value = r.json().await.unwrap();
    let path = link["url"].as_str().unwrap().to_string();
    assert!(path.starts_with("/display/"), "{path}");
    let r = app.anonymous.get(app.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/wall/main");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    let set = r.headers()["set-cookie"].to_str().unwrap();
    assert!(
        set.starts_with("vw_display=") && set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    let again = app.anonymous.get(app.url(&path)).send().await.unwrap();
    assert_eq!(again.status(), 401, "a one-time link");
    assert_eq!(again.headers()["referrer-policy"], "no-referrer");
    let r = app
        .client
        .post(app.url("/api/admin/walls/nope/displays"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Without a credential the wall page says how to open a display, in both languages.
    let r = app
        .anonymous
        .get(app.url("/wall/main"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let page = r.text().await.unwrap();
    assert!(page.contains("/admin") && page.contains("显示屏"), "{page}");
    app.stop().await;
}

#[tokio::test]
async fn the_kiosk_overlay_qr_signs_the_operators_phone_in() {
    let app = TestApp::spawn("").await;
    let code = app
        .state
        .credentials
        .display_link("main", DisplayScope::Kiosk);
    let kiosk = app.redeem_display(&format!("/display/{code}")).await;
    let r = app
        .anonymous
        .get(app.url("/api/walls/main/operator"))
        .header("cookie", kiosk)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let v: serde_json::Value = r.json().await.unwrap();
    let console = format!("{}/admin", app.state.public_url.get());
    assert_eq!(v["console_url"], console.as_str());
    assert_eq!(v["token"], app.admin_token.as_str());
    let scanned = voicewall_testkit::qr::decode_svg(v["qr_svg"].as_str().unwrap()).unwrap();
    assert_eq!(scanned, format!("{console}#token={}", app.admin_token));
    app.stop().await;
}

/// Behind a trusted proxy (127.0.0.0/8 here), each phone's address is its own: five wrong tokens from
/// one lock that one out (429 with Retry-After, even with the right token), not the other. Every
/// sign-in, sign-out, refusal and display link is in the audit log.
#[tokio::test]
async fn failed_logins_are_limited_per_client_and_sign_ins_and_displays_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), "");
    config.server.trusted_proxies =
        vec![voicewall_core::config::Cidr::parse("127.0.0.0/8").unwrap()];
    let app = TestApp::spawn_config(config, Options::default()).await;
    let login = |from: &'static str, token: String| {
        app.anonymous
            .post(app.url("/api/admin/login"))
            .header("x-forwarded-for", from)
            .json(&serde_json::json!({ "token": token }))
            .send()
    };
    for _ in 0..voicewall_core::credentials::LOGIN_FAILURES {
        let r = login("203.0.113.7", "wrong".into()).await.unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = login("203.0.113.7", app.admin_token.clone()).await.unwrap();
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["code"], "too_many_attempts");
    assert!(v["message"].as_str().unwrap().contains("try again"), "{v}");
    // Another phone behind the same proxy signs in.
    let r = login("203.0.113.8", app.admin_token.clone()).await.unwrap();
    assert_eq!(r.status(), 204);
    let cookie = voicewall_testkit::app::cookie_pair(&r, "vw_session");
    let whoami: serde_json::Value = app
        .anonymous
        .get(app.url("/api/admin/whoami"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actor = whoami["actor"].as_str().unwrap().to_string();
    let display = app.display_cookie("main").await;
    assert!(display.starts_with("vw_display="));
    let r = app
        .anonymous
        .post(app.url("/api/admin/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    let audit: serde_json::Value = app.get_json("/api/admin/audit?limit=20").await;
    let got: Vec<(String, String, String, String)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
            (s("actor"), s("action"), s("wall"), s("detail"))
        })
        .collect();
    let entry = |actor: &str, action: &str, wall: &str, detail: &str| {
        (actor.into(), action.into(), wall.into(), detail.into())
    };
    let mut want = vec![
        entry(
            "anonymous",
            "session.login_failed",
            "",
            "client=203.0.113.7"
        );
        voicewall_core::credentials::LOGIN_FAILURES
    ];
    want.extend([
        entry(&actor, "session.login", "", "client=203.0.113.8"),
        entry("bearer", "display.link", "main", ""),
        entry("display", "display.open", "main", "browser"),
        entry(&actor, "session.logout", "", ""),
    ]);
    assert_eq!(got, want);
    // The session's record is gone from the store, not kept as a tombstone.
    assert!(app
        .state
        .store
        .meta_with_prefix("session/")
        .unwrap()
        .is_empty());
    app.stop().await;
}
