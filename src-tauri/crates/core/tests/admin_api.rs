//! The operator's API over real HTTP (the app on 127.0.0.1 port 0, a temp data dir, the null audio
//! output): every action, its effect on the wall, the events and the speakers, its audit entry, and 401
//! without the operator's credential. Pre-moderation end to end, remove while playing, ban (hidden and
//! refused on the phone), clear, QR, rotate.

use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::broadcast::Receiver;
use voicewall_core::events::WallEvent;
use voicewall_testkit::app::PATIENCE;
use voicewall_testkit::TestApp;

const TOKEN: &str = "op-secret-token";

/// The app with one English web wall "main" (`wall` adds `[[walls]]` keys, e.g. `moderation = "pre"`).
async fn spawn(wall: &str) -> TestApp {
    TestApp::spawn(&format!(
        "[admin]\ntoken = \"{TOKEN}\"\n[[walls]]\nid = \"main\"\ntitle = \"T\"\nlocale = \"en\"\n{wall}\n[walls.web]\n"
    ))
    .await
}

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../tests/fixtures/audio")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

async fn op(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    app.call(method, path, body, Some(TOKEN)).await
}

/// Push a voice (`fixture` bytes, already in the media cache) from web device `sender`; its message id.
async fn voice(app: &TestApp, sender: &str, fixture_name: &str, dedup: &str) -> String {
    let key = app
        .state
        .store
        .put_media(&fixture(fixture_name), "audio/ogg")
        .unwrap();
    let push = voicewall_testkit::inbound::cached_voice("main", sender, &key, dedup);
    app.state.accept(&push).await.unwrap().seq().to_string()
}

/// The console's list until `pred` holds for message `mid`.
async fn wait_message(app: &TestApp, mid: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (s, v) = op(app, "GET", "/api/admin/walls/main/messages", None).await;
        assert_eq!(s, 200, "{v}");
        let m = v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == mid)
            .cloned();
        if let Some(m) = m.filter(|m| pred(m)) {
            return m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "message {mid}: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// `GET /api/admin/playback` until `pred` holds.
async fn wait_playback(app: &TestApp, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (_, v) = op(app, "GET", "/api/admin/playback", None).await;
        if pred(&v) {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "playback: {v:#}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

fn drain(rx: &mut Receiver<WallEvent>) -> Vec<WallEvent> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

/// Whether any of these wall events names message `mid`.
fn names(events: &[WallEvent], mid: &str) -> bool {
    events.iter().any(|e| match e {
        WallEvent::MessageAdded { message } | WallEvent::MessageUpdated { message } => {
            message.id == mid
        }
        WallEvent::PlaybackStarted { message_id, .. } => message_id == mid,
        _ => false,
    })
}

fn message_ids(state: &Value) -> Vec<String> {
    state["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

/// The newest audit entry.
async fn last_audit(app: &TestApp) -> Value {
    let (s, v) = op(app, "GET", "/api/admin/audit?limit=1", None).await;
    assert_eq!(s, 200, "{v}");
    v["entries"][0].clone()
}

#[tokio::test]
async fn every_operator_route_answers_401_without_the_operators_credential() {
    let app = spawn("").await;
    let routes = [
        ("GET", "/api/admin/walls"),
        ("GET", "/api/admin/walls/main/messages"),
        ("GET", "/api/admin/walls/main/events"),
        ("PUT", "/api/admin/walls/main/moderation"),
        ("POST", "/api/admin/walls/main/messages/1/approve"),
        ("POST", "/api/admin/walls/main/messages/1/reject"),
        ("POST", "/api/admin/walls/main/messages/1/remove"),
        ("POST", "/api/admin/walls/main/messages/1/play"),
        ("POST", "/api/admin/walls/main/messages/approve"),
        ("POST", "/api/admin/walls/main/participants/web:x/ban"),
        ("POST", "/api/admin/walls/main/participants/web:x/unban"),
        ("POST", "/api/admin/playback/pause"),
        ("POST", "/api/admin/playback/resume"),
        ("POST", "/api/admin/playback/skip"),
        ("POST", "/api/admin/playback/stop"),
        ("PUT", "/api/admin/playback/volume"),
        ("GET", "/api/admin/playback"),
        ("POST", "/api/admin/playback/queue/main/1/next"),
        ("DELETE", "/api/admin/playback/queue/main/1"),
        ("PUT", "/api/admin/walls/main/qr"),
        ("POST", "/api/admin/walls/main/clear"),
        ("POST", "/api/admin/walls/main/join/rotate"),
        ("PUT", "/api/admin/walls/main/idle-loop"),
        ("GET", "/api/admin/health"),
        ("GET", "/api/admin/audit"),
    ];
    for (method, path) in routes {
        for bearer in [None, Some("not-the-token")] {
            let (status, body) = app.call(method, path, Some(json!({})), bearer).await;
            assert_eq!(status, 401, "{method} {path} as {bearer:?}: {body}");
            assert_eq!(body["code"], "unauthorized", "{method} {path}");
        }
    }
    // Nothing was done, so nothing was audited.
    let (_, v) = op(&app, "GET", "/api/admin/audit", None).await;
    assert_eq!(v["entries"], json!([]));
}

#[tokio::test]
async fn pre_moderation_holds_a_voice_off_the_wall_and_the_speakers_until_approved() {
    let app = spawn("moderation = \"pre\"").await;
    let mut events = app.state.hub.subscribe("main").unwrap();
    let mid = voice(&app, "dev-a", "hello.ogg", "a1").await;

    // Held: the console sees it ready and pending ...
    let m = wait_message(&app, &mid, |m| m["status"] == "ready").await;
    assert_eq!(m["moderation"], "pending");
    assert_eq!(m["banned"], false);
    assert!(m["duration_ms"].as_u64().unwrap() > 500, "{m}");
    assert!(m["media_url"].as_str().unwrap().starts_with("/media/"));
    // ... the wall neither in its state nor in its events, the speakers not at all.
    app.wait_inbox_drained().await;
    assert!(message_ids(&app.wall("main").await).is_empty());
    let (_, pb) = op(&app, "GET", "/api/admin/playback", None).await;
    assert_eq!(
        (pb["queue"].clone(), pb["now_playing"].clone()),
        (json!([]), Value::Null)
    );
    assert!(
        !names(&drain(&mut events), &mid),
        "a held message reached the wall's events"
    );
    let (_, walls) = op(&app, "GET", "/api/admin/walls", None).await;
    assert_eq!(walls[0]["moderation"], "pre");
    assert_eq!(walls[0]["counts"]["pending"], 1);

    // Approved: on the wall, announced, and played.
    let (s, body) = op(
        &app,
        "POST",
        &format!("/api/admin/walls/main/messages/{mid}/approve"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["moderation"], "approved");
    assert_eq!(message_ids(&app.wall("main").await), vec![mid.clone()]);
    let e = last_audit(&app).await;
    assert_eq!(
        (e["actor"].as_str(), e["action"].as_str()),
        (Some("bearer"), Some("message.approve"))
    );
    assert_eq!(
        (e["wall"].as_str(), e["target"].as_str()),
        (Some("main"), Some(mid.as_str()))
    );
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|e| matches!(e, WallEvent::PlaybackStarted { message_id, .. } if *message_id == mid))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never played: {seen:?}"
        );
        if let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
            seen.push(e);
        }
    }
    assert!(
        matches!(&seen[0], WallEvent::MessageAdded { message } if message.id == mid),
        "{seen:?}"
    );

    // Switched live to post: the next voice shows at once.
    let (s, _) = op(
        &app,
        "PUT",
        "/api/admin/walls/main/moderation",
        Some(json!({"mode": "post"})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(last_audit(&app).await["detail"], "mode=post");
    let next = voice(&app, "dev-a", "hello_loud.ogg", "a2").await;
    app.wait_state("main", 30, |s| message_ids(s).contains(&next))
        .await;

    // Rejected: off the wall again, the store keeps it.
    let (s, _) = op(
        &app,
        "POST",
        &format!("/api/admin/walls/main/messages/{next}/reject"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(message_ids(&app.wall("main").await), vec![mid.clone()]);
    assert_eq!(
        wait_message(&app, &next, |_| true).await["moderation"],
        "rejected"
    );
    assert_eq!(last_audit(&app).await["action"], "message.reject");

    // Bulk approve brings it back; unknown ids are reported, not fatal.
    let (s, body) = op(
        &app,
        "POST",
        "/api/admin/walls/main/messages/approve",
        Some(json!({"ids": [next, "999999"]})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["missing"], json!(["999999"]));
    assert_eq!(message_ids(&app.wall("main").await).len(), 2);
    assert_eq!(last_audit(&app).await["action"], "message.approve_many");

    // Bad input: a clear status and code.
    let (s, body) = op(
        &app,
        "PUT",
        "/api/admin/walls/main/moderation",
        Some(json!({"mode": "never"})),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    let (s, body) = op(
        &app,
        "POST",
        "/api/admin/walls/nope/messages/1/approve",
        None,
    )
    .await;
    assert_eq!((s, body["code"].as_str()), (404, Some("not_found")));
    let (s, _) = op(
        &app,
        "POST",
        "/api/admin/walls/main/messages/424242/remove",
        None,
    )
    .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn playback_controls_queue_and_remove_while_playing() {
    let app = spawn("").await;
    let mut events = app.state.hub.subscribe("main").unwrap();
    // Paused first: nothing starts, everything queues in order.
    let (s, _) = op(&app, "POST", "/api/admin/playback/pause", None).await;
    assert_eq!(s, 202);
    assert_eq!(last_audit(&app).await["action"], "playback.pause");
    let order = |v: &Value| -> Vec<String> {
        v["queue"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["message_id"].as_str().unwrap().to_string())
            .collect()
    };
    // One after the other: the pipeline prepares pushes concurrently, and the queue follows readiness.
    let mut ids = Vec::new();
    for (n, (sender, audio)) in [
        ("dev-a", "hello.ogg"),
        ("dev-b", "hello_loud.ogg"),
        ("dev-c", "hello_quiet.ogg"),
    ]
    .into_iter()
    .enumerate()
    {
        ids.push(voice(&app, sender, audio, &format!("q{n}")).await);
        wait_playback(&app, |v| order(v).len() == n + 1).await;
    }
    let [a, b, c] = <[String; 3]>::try_from(ids).unwrap();
    let pb = wait_playback(&app, |v| order(v).len() == 3).await;
    assert_eq!(order(&pb), [a.clone(), b.clone(), c.clone()]);
    assert_eq!(pb["paused"], true);
    assert_eq!(pb["now_playing"], Value::Null);
    assert!(
        pb["queue"][0]["name"]
            .as_str()
            .unwrap()
            .starts_with("Guest"),
        "{pb}"
    );

    // Play next moves c to the front; removing b takes it out.
    let (s, _) = op(
        &app,
        "POST",
        &format!("/api/admin/playback/queue/main/{c}/next"),
        None,
    )
    .await;
    assert_eq!(s, 202);
    assert_eq!(last_audit(&app).await["action"], "queue.next");
    wait_playback(&app, |v| order(v) == [c.clone(), a.clone(), b.clone()]).await;
    let (s, _) = op(
        &app,
        "DELETE",
        &format!("/api/admin/playback/queue/main/{b}"),
        None,
    )
    .await;
    assert_eq!(s, 202);
    assert_eq!(last_audit(&app).await["action"], "queue.remove");
    wait_playback(&app, |v| order(v) == [c.clone(), a.clone()]).await;
    let (s, _) = op(
        &app,
        "DELETE",
        &format!("/api/admin/playback/queue/main/{b}"),
        None,
    )
    .await;
    assert_eq!(s, 404, "no longer queued");

    // Volume: kept, audited, bad values refused.
    let (s, _) = op(
        &app,
        "PUT",
        "/api/admin/playback/volume",
        Some(json!({"volume": 0.5})),
    )
    .await;
    assert_eq!(s, 202);
    assert_eq!(last_audit(&app).await["detail"], "volume=0.5");
    wait_playback(&app, |v| v["volume"] == 0.5).await;
    let (s, _) = op(
        &app,
        "PUT",
        "/api/admin/playback/volume",
        Some(json!({"volume": 1.5})),
    )
    .await;
    assert_eq!(s, 400);

    // Play a long voice now; pause it mid-way so it cannot finish on its own; then remove it.
    let long = voice(&app, "dev-d", "join-speech.wav", "q4").await;
    wait_message(&app, &long, |m| m["status"] == "ready").await;
    let (s, body) = op(
        &app,
        "POST",
        &format!("/api/admin/walls/main/messages/{long}/play"),
        None,
    )
    .await;
    assert_eq!(s, 202, "{body}");
    assert_eq!(last_audit(&app).await["action"], "message.play");
    wait_playback(&app, |v| v["now_playing"]["message_id"] == long.as_str()).await;
    op(&app, "POST", "/api/admin/playback/pause", None).await;
    wait_playback(&app, |v| v["paused"] == true).await;
    let (s, _) = op(
        &app,
        "POST",
        &format!("/api/admin/walls/main/messages/{long}/remove"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let pb = wait_playback(&app, |v| v["now_playing"].is_null()).await;
    assert!(!order(&pb).contains(&long));
    assert!(!message_ids(&app.wall("main").await).contains(&long));
    let finished = drain(&mut events).into_iter().find_map(|e| match e {
        WallEvent::PlaybackFinished {
            message_id,
            outcome,
        } if message_id == long => Some(outcome),
        _ => None,
    });
    assert_eq!(finished.as_deref(), Some("removed"));

    // Stop empties the queue; skip, resume are accepted and audited.
    for action in ["resume", "skip", "stop"] {
        let (s, _) = op(&app, "POST", &format!("/api/admin/playback/{action}"), None).await;
        assert_eq!(s, 202);
        assert_eq!(
            last_audit(&app).await["action"],
            format!("playback.{action}")
        );
    }
    wait_playback(&app, |v| order(v).is_empty()).await;
    let (s, _) = op(&app, "POST", "/api/admin/playback/rewind", None).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn a_ban_hides_the_person_and_their_messages_and_an_unban_brings_them_back() {
    let app = spawn("").await;
    let (s, _) = op(&app, "POST", "/api/admin/playback/pause", None).await;
    assert_eq!(s, 202);
    let mine = voice(&app, "dev-bad", "hello.ogg", "b1").await;
    let theirs = voice(&app, "dev-good", "hello_loud.ogg", "b2").await;
    app.wait_state("main", 30, |s| message_ids(s).len() == 2)
        .await;
    wait_playback(&app, |v| v["queue"].as_array().unwrap().len() == 2).await;
    let mut events = app.state.hub.subscribe("main").unwrap();

    let (s, body) = op(
        &app,
        "POST",
        "/api/admin/walls/main/participants/web:dev-bad/ban",
        None,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let e = last_audit(&app).await;
    assert_eq!(
        (e["action"].as_str(), e["target"].as_str()),
        (Some("participant.ban"), Some("web:dev-bad"))
    );
    let state = app.wall("main").await;
    assert_eq!(message_ids(&state), vec![theirs.clone()]);
    let people: Vec<_> = state["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].clone())
        .collect();
    assert_eq!(people, [json!("web:dev-good")]);
    assert!(drain(&mut events)
        .iter()
        .any(|e| matches!(e, WallEvent::WallChanged { reason } if reason == "banned")));
    // Out of the queue too; the console still lists it, marked.
    wait_playback(&app, |v| v["queue"].as_array().unwrap().len() == 1).await;
    assert_eq!(wait_message(&app, &mine, |_| true).await["banned"], true);
    // A new message of theirs stays off the wall and its events.
    let again = voice(&app, "dev-bad", "hello_quiet.ogg", "b3").await;
    wait_message(&app, &again, |m| m["status"] == "ready").await;
    assert!(!message_ids(&app.wall("main").await).contains(&again));
    assert!(!names(&drain(&mut events), &again));

    let (s, _) = op(
        &app,
        "POST",
        "/api/admin/walls/main/participants/web:dev-bad/unban",
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(last_audit(&app).await["action"], "participant.unban");
    assert_eq!(message_ids(&app.wall("main").await).len(), 3);
    let (s, _) = op(
        &app,
        "POST",
        "/api/admin/walls/main/participants/web:nobody/ban",
        None,
    )
    .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn clear_qr_idle_loop_health_and_rotate() {
    let app = spawn("").await;
    let before = voice(&app, "dev-a", "hello.ogg", "c1").await;
    app.wait_state("main", 30, |s| message_ids(s) == [before.clone()])
        .await;
    assert_eq!(app.wall("main").await["qr_visible"], true);

    // QR hidden and shown: in the wall state, audited.
    let (s, _) = op(
        &app,
        "PUT",
        "/api/admin/walls/main/qr",
        Some(json!({"visible": false})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(app.wall("main").await["qr_visible"], false);
    assert_eq!(last_audit(&app).await["detail"], "visible=false");
    op(
        &app,
        "PUT",
        "/api/admin/walls/main/qr",
        Some(json!({"visible": true})),
    )
    .await;
    assert_eq!(app.wall("main").await["qr_visible"], true);

    // Clear: everything shown so far leaves the wall; the console keeps it; new messages show.
    let (s, _) = op(&app, "POST", "/api/admin/walls/main/clear", None).await;
    assert_eq!(s, 200);
    assert_eq!(last_audit(&app).await["action"], "wall.clear");
    let state = app.wall("main").await;
    assert!(message_ids(&state).is_empty(), "{state:#}");
    assert_eq!(state["participants"], json!([]));
    wait_message(&app, &before, |_| true).await;
    let after = voice(&app, "dev-a", "hello_loud.ogg", "c2").await;
    let state = app
        .wait_state("main", 30, |s| message_ids(s) == [after.clone()])
        .await;
    assert_eq!(
        state["participants"].as_array().unwrap().len(),
        1,
        "the speaker is back"
    );

    // Idle loop: set, shown, refused when nonsense, turned off.
    let (s, _) = op(
        &app,
        "PUT",
        "/api/admin/walls/main/idle-loop",
        Some(json!({"seconds": 30})),
    )
    .await;
    assert_eq!(s, 200);
    let (_, walls) = op(&app, "GET", "/api/admin/walls", None).await;
    assert_eq!(walls[0]["idle_loop_s"], 30);
    assert_eq!(last_audit(&app).await["detail"], "seconds=30");
    let (s, _) = op(
        &app,
        "PUT",
        "/api/admin/walls/main/idle-loop",
        Some(json!({"seconds": 0})),
    )
    .await;
    assert_eq!(s, 400);
    op(
        &app,
        "PUT",
        "/api/admin/walls/main/idle-loop",
        Some(json!({"seconds": null})),
    )
    .await;
    assert_eq!(
        op(&app, "GET", "/api/admin/walls", None).await.1[0]["idle_loop_s"],
        Value::Null
    );

    // Health at a glance.
    let (s, h) = op(&app, "GET", "/api/admin/health", None).await;
    assert_eq!(s, 200, "{h}");
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(h["audio"]["state"], "null");
    assert!(h["disk"]["used_bytes"].as_u64().unwrap() > 0, "{h}");
    assert!(h["disk"]["free_bytes"].as_u64().unwrap() > 0, "{h}");
    assert_eq!(h["walls"][0]["participants"], 1);
    assert_eq!(h["walls"][0]["counts"]["approved"], 2);

    // Rotate: the old join link stops at once, the wall shows the new one.
    let old = app.wall("main").await["join"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let old_path = &old[old.find("/join/").unwrap()..];
    let r = app.client.get(app.url(old_path)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (s, body) = op(&app, "POST", "/api/admin/walls/main/join/rotate", None).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(last_audit(&app).await["action"], "wall.rotate_join");
    let new = app.wall("main").await["join"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new, old);
    assert_eq!(body["join_url"], new.as_str());
    let r = app.client.get(app.url(old_path)).send().await.unwrap();
    assert_eq!(r.status(), 403, "the old link no longer admits");
    let r = app
        .client
        .get(app.url(&new[new.find("/join/").unwrap()..]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// A phone's nickname on the join page (a voice needs a profile first).
async fn phone_profile(app: &TestApp, cookie: &str, token: &str) {
    let fields = [("token", token), ("nickname", "Guest")];
    let (status, body) = phone_form(app, "profile", cookie, &fields, None).await;
    assert_eq!(status, 201, "{body}");
}

/// A phone's voice upload on the join page: the token, an upload id and the recording.
async fn phone_voice(app: &TestApp, cookie: &str, token: &str, upload: &str) -> (u16, Value) {
    let fields = [("token", token), ("upload_id", upload)];
    let audio = fixture("hello_mediarecorder.webm");
    phone_form(app, "voice", cookie, &fields, Some(&audio)).await
}

/// A multipart POST to `/api/join/main/{endpoint}` from a phone (Chinese), with text fields and
/// maybe an `audio` file.
async fn phone_form(
    app: &TestApp,
    endpoint: &str,
    cookie: &str,
    fields: &[(&str, &str)],
    audio: Option<&[u8]>,
) -> (u16, Value) {
    let boundary = "vw-admin-test";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").bytes());
    }
    if let Some(audio) = audio {
        body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"v.webm\"\r\nContent-Type: audio/webm\r\n\r\n").bytes());
        body.extend(audio);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").bytes());
    let r = app
        .client
        .post(app.url(&format!("/api/join/main/{endpoint}")))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("cookie", cookie)
        .header("accept-language", "zh-CN")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_banned_guest_is_told_on_their_phone_and_nothing_is_accepted() {
    let app = spawn("").await;
    let url = app.wall("main").await["join"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let token = url.split("t=").nth(1).unwrap().to_string();
    let r = app
        .client
        .get(app.url(&url[url.find("/join/").unwrap()..]))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    // The signed value (the `cookie` crate's, percent-encoded): a base64 tag ending in `=`, then
    // the device id.
    let value = cookie.trim_start_matches("vw_device=").replace("%3D", "=");
    let device = value.rsplit_once('=').unwrap().1.to_string();
    phone_profile(&app, &cookie, &token).await;
    let (s, body) = phone_voice(&app, &cookie, &token, "u1").await;
    assert_eq!(s, 201, "{body}");
    // The voice accepted before the ban becomes a message (the pipeline works after the ack).
    app.wait_inbox_drained().await;

    let pid = format!("web:{device}");
    let (s, _) = op(
        &app,
        "POST",
        &format!("/api/admin/walls/main/participants/{pid}/ban"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let pending = app.inbox_pending().await;
    let (s, body) = phone_voice(&app, &cookie, &token, "u2").await;
    assert_eq!((s, body["code"].as_str()), (403, Some("banned")), "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("主办方"),
        "in the phone's language: {body}"
    );
    assert_eq!(app.inbox_pending().await, pending, "nothing accepted");
    let (_, list) = op(&app, "GET", "/api/admin/walls/main/messages", None).await;
    assert_eq!(list["messages"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_console_stream_sends_every_message_change_and_the_queue() {
    let app = spawn("moderation = \"pre\"").await;
    let mut r = app
        .client
        .get(app.url("/api/admin/walls/main/events"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut text = String::new();
    // The stream is open once its hello arrived.
    while !text.contains("event: hello") {
        text.push_str(&String::from_utf8_lossy(&r.chunk().await.unwrap().unwrap()));
    }
    let mid = voice(&app, "dev-a", "hello.ogg", "s1").await;
    wait_message(&app, &mid, |m| m["status"] == "ready").await;
    op(
        &app,
        "POST",
        &format!("/api/admin/walls/main/messages/{mid}/approve"),
        None,
    )
    .await;
    let wanted = [
        format!("\"id\":\"{mid}\""),
        "\"moderation\":\"pending\"".to_string(),
        "\"moderation\":\"approved\"".to_string(),
        "event: queue".to_string(),
    ];
    let read = async {
        while !wanted.iter().all(|w| text.contains(w.as_str())) {
            text.push_str(&String::from_utf8_lossy(&r.chunk().await.unwrap().unwrap()));
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .unwrap_or_else(|_| panic!("the console stream missed one of {wanted:?}"));
    assert!(text.contains("event: message"));
}

/// The health view's per-wall figures, computed the slow way from the console's full message list.
fn figures_of(list: &Value) -> Value {
    let ms = list["messages"].as_array().unwrap();
    let count = |f: &dyn Fn(&Value) -> bool| ms.iter().filter(|m| f(m)).count();
    let by = |mode: &str| count(&|m: &Value| m["moderation"] == mode);
    let mut failed: Vec<Value> = ms
        .iter()
        .filter(|m| m["status"] == "failed")
        .map(|m| json!({"message_id": m["id"], "reason": m["failure"]}))
        .collect();
    failed.sort_by_key(|f| f["message_id"].as_str().unwrap().parse::<u64>().unwrap());
    json!({
        "counts": {
            "pending": by("pending"), "approved": by("approved"), "rejected": by("rejected"),
            "removed": by("removed"), "failed": failed.len(),
        },
        "fetching": count(&|m: &Value| m["status"] == "fetching"),
        "failed_fetches": failed,
    })
}

/// Health's figures for wall "main" equal the ones counted from the full list, and `participants`.
async fn health_matches(app: &TestApp, participants: usize) -> Value {
    let (s, h) = op(app, "GET", "/api/admin/health", None).await;
    assert_eq!(s, 200, "{h}");
    let w = &h["walls"][0];
    let (_, list) = op(app, "GET", "/api/admin/walls/main/messages", None).await;
    let got = json!({"counts": w["counts"], "fetching": w["fetching"], "failed_fetches": w["failed_fetches"]});
    assert_eq!(got, figures_of(&list), "health vs the message list");
    assert_eq!(w["participants"], participants, "{h:#}");
    let (_, walls) = op(app, "GET", "/api/admin/walls", None).await;
    assert_eq!(walls[0]["counts"], w["counts"], "the walls list agrees");
    h
}

#[tokio::test]
async fn health_figures_follow_approve_remove_and_failed_fetches() {
    let app = spawn("moderation = \"pre\"").await;
    // Asked before anything arrives: the figures are then kept as messages change, not rescanned.
    let h = health_matches(&app, 0).await;
    assert_eq!(h["walls"][0]["counts"]["pending"], 0);

    let a = voice(&app, "dev-a", "hello.ogg", "h1").await;
    let b = voice(&app, "dev-b", "hello_loud.ogg", "h2").await;
    let key = app
        .state
        .store
        .put_media(b"hello, not audio", "audio/ogg")
        .unwrap();
    let push = voicewall_testkit::inbound::cached_voice("main", "dev-c", &key, "h3");
    let bad = app.state.accept(&push).await.unwrap().seq().to_string();
    wait_message(&app, &a, |m| m["status"] == "ready").await;
    wait_message(&app, &b, |m| m["status"] == "ready").await;
    let failed = wait_message(&app, &bad, |m| m["status"] == "failed").await;
    assert!(failed["failure"].is_string(), "{failed}");
    let h = health_matches(&app, 3).await;
    let w = &h["walls"][0];
    assert_eq!(w["counts"]["pending"], 3, "{h:#}");
    assert_eq!(w["counts"]["failed"], 1);
    assert_eq!(w["failed_fetches"][0]["message_id"], bad.as_str());

    for (mid, act) in [
        (&a, "approve"),
        (&b, "approve"),
        (&b, "remove"),
        (&bad, "reject"),
    ] {
        let (s, v) = op(
            &app,
            "POST",
            &format!("/api/admin/walls/main/messages/{mid}/{act}"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{act} {mid}: {v}");
    }
    let h = health_matches(&app, 3).await;
    let c = &h["walls"][0]["counts"];
    assert_eq!(
        (
            c["pending"].clone(),
            c["approved"].clone(),
            c["removed"].clone(),
            c["rejected"].clone()
        ),
        (json!(0), json!(1), json!(1), json!(1)),
        "{h:#}"
    );
}

#[tokio::test]
async fn an_override_holds_until_the_config_changes_the_key_then_the_config_wins() {
    use voicewall_core::startup::Options;
    let dir = tempfile::tempdir().unwrap();
    let config = |moderation: &str, idle: &str| {
        format!(
            "[admin]\ntoken = \"{TOKEN}\"\n[[walls]]\nid = \"main\"\ntitle = \"T\"\nlocale = \"en\"\nmoderation = \"{moderation}\"\n{idle}\n[walls.web]\n"
        )
    };
    let settings = |app: &TestApp| {
        let s = app.state.board.settings("main").unwrap();
        (format!("{:?}", s.moderation), s.idle_loop_s)
    };
    let config_entries = |v: &Value| {
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["actor"] == "config")
            .map(|e| (e["action"].clone(), e["target"].clone()))
            .collect::<Vec<_>>()
    };

    // The operator changes both keys (and the QR, which is no config key).
    let app = TestApp::spawn_in(dir.path(), &config("post", ""), Options::default()).await;
    for (path, body) in [
        ("moderation", json!({"mode": "pre"})),
        ("idle-loop", json!({"seconds": 30})),
        ("qr", json!({"visible": false})),
    ] {
        let (s, v) = op(
            &app,
            "PUT",
            &format!("/api/admin/walls/main/{path}"),
            Some(body),
        )
        .await;
        assert_eq!(s, 200, "{path}: {v}");
    }
    assert_eq!(settings(&app), ("Pre".into(), Some(30)));
    app.stop().await;

    // Restarts on the same data dir: (config, settings then, entries by the config in the audit).
    for (step, (text, want, by_config)) in [
        // Same config: the operator's choices hold.
        (config("post", ""), ("Pre", Some(30)), 0),
        // The config changes both keys: the config wins, audited as the config's doing.
        (config("pre", "idle_loop_s = 60"), ("Pre", Some(60)), 2),
        // No override left: the next edit of the config is followed as is; nothing more dropped.
        (config("post", "idle_loop_s = 60"), ("Post", Some(60)), 2),
    ]
    .into_iter()
    .enumerate()
    {
        let app = TestApp::spawn_in(dir.path(), &text, Options::default()).await;
        assert_eq!(settings(&app), (want.0.to_string(), want.1), "step {step}");
        let (_, walls) = op(&app, "GET", "/api/admin/walls", None).await;
        assert_eq!(walls[0]["idle_loop_s"], json!(want.1), "step {step}");
        assert_eq!(walls[0]["qr_visible"], false, "the QR is no config key");
        let (_, audit) = op(&app, "GET", "/api/admin/audit?limit=50", None).await;
        assert_eq!(
            config_entries(&audit).len(),
            by_config,
            "step {step}: {audit:#}"
        );
        app.stop().await;
    }
}
