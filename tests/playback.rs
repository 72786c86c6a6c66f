//! From an accepted voice to the player, through the real pipeline and the null output (real time):
//! the message becomes ready with its duration and waveform, auto-play starts it, progress goes forward,
//! it finishes, and `played_count` goes up. A tap replays it from the cache; a corrupt file fails
//! with a readable reason and nothing else is affected.

use std::time::Duration;
use voicewall_core::events::WallEvent;
use voicewall_tests::{inbound, test_config, TestApp};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/audio/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Cache the bytes (as an upload would) and accept a voice push that refers to them.
async fn send_voice(app: &TestApp, sender: &str, bytes: &[u8], dedup: &str) -> String {
    let mime = voicewall_audio::sniff(bytes).map_or("application/octet-stream", |f| f.mime());
    let key = app.state.store.put_media(bytes, mime).unwrap();
    app.state
        .accept(&inbound::cached_voice("main", sender, &key, dedup))
        .await
        .unwrap();
    key.to_string()
}

async fn next_event(
    rx: &mut tokio::sync::broadcast::Receiver<WallEvent>,
    pred: impl Fn(&WallEvent) -> bool,
) -> WallEvent {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let ev = rx.recv().await.expect("event");
            if pred(&ev) {
                return ev;
            }
        }
    })
    .await
    .expect("event in time")
}

#[tokio::test]
async fn a_voice_is_decoded_autoplayed_and_counted() {
    let app = TestApp::spawn("").await;
    let mut rx = app.state.hub.subscribe("main").unwrap();
    let key = send_voice(&app, "phone-1", &fixture("hello.amr"), "u1").await;

    let s = app
        .wait_state("main", 20, |s| s["messages"][0]["status"] == "ready")
        .await;
    let m = &s["messages"][0];
    let duration = m["duration_ms"].as_u64().unwrap();
    assert!((1000..6000).contains(&duration), "duration {duration}");
    assert_eq!(m["kind"], "voice");
    assert_eq!(m["media_url"], format!("/media/{key}"));
    // The compact wall state carries no waveforms: the wall reads one when it spotlights a voice.
    let w = app
        .get_json(&format!(
            "/api/walls/main/messages/{}/waveform",
            m["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(w["waveform"].as_array().unwrap().len(), 100, "{w}");

    let started = next_event(&mut rx, |e| matches!(e, WallEvent::PlaybackStarted { .. })).await;
    let WallEvent::PlaybackStarted {
        duration_ms,
        participant_id,
        ..
    } = started
    else {
        unreachable!()
    };
    assert_eq!(participant_id, "web:phone-1");
    assert!(duration_ms.abs_diff(duration) < 200);
    // Progress goes forward through the clip and playback finishes. How often progress arrives is a
    // timing figure: the bench measures it, a test does not assert it.
    let mut progress = 0;
    let mut last = 0;
    loop {
        match next_event(&mut rx, |e| {
            matches!(
                e,
                WallEvent::PlaybackProgress { .. } | WallEvent::PlaybackFinished { .. }
            )
        })
        .await
        {
            WallEvent::PlaybackProgress { position_ms, .. } => {
                assert!(position_ms >= last, "progress goes forward");
                assert!(
                    position_ms <= duration + 200,
                    "{position_ms} within {duration}"
                );
                last = position_ms;
                progress += 1;
            }
            WallEvent::PlaybackFinished { outcome, .. } => {
                assert_eq!(outcome, "finished");
                break;
            }
            _ => unreachable!(),
        }
    }
    assert!(progress >= 1, "progress events during a {duration} ms clip");
    app.wait_state("main", 10, |s| s["messages"][0]["played_count"] == 1)
        .await;

    // A tap replays from the cache.
    let r = app
        .client
        .post(app.url("/api/walls/main/play"))
        .json(&serde_json::json!({"participant_id": "web:phone-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    next_event(&mut rx, |e| matches!(e, WallEvent::PlaybackStarted { .. })).await;
    app.stop().await;
}

#[tokio::test]
async fn corrupt_audio_fails_readably_and_others_still_play() {
    let app = TestApp::spawn("").await;
    let mut bad = fixture("hello.ogg");
    bad.truncate(60);
    bad.extend(std::iter::repeat_n(0x5a, 400));
    send_voice(&app, "p-bad", &bad, "b1").await;
    send_voice(&app, "p-good", &fixture("hello.ogg"), "g1").await;
    let s = app
        .wait_state("main", 20, |s| {
            let m = s["messages"].as_array().unwrap();
            m.len() == 2 && m.iter().all(|m| m["status"] != "fetching")
        })
        .await;
    let msgs = s["messages"].as_array().unwrap();
    let bad = msgs
        .iter()
        .find(|m| m["participant_id"] == "web:p-bad")
        .unwrap();
    let good = msgs
        .iter()
        .find(|m| m["participant_id"] == "web:p-good")
        .unwrap();
    assert_eq!(bad["status"], "failed");
    assert!(bad["error"].as_str().unwrap().len() > 5, "{bad}");
    assert_eq!(good["status"], "ready");
    let r = app
        .client
        .post(app.url("/api/walls/main/play"))
        .json(&serde_json::json!({"message_id": bad["id"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "a failed message cannot be played");
    app.stop().await;
}

#[tokio::test]
async fn without_a_sound_device_messages_still_arrive_and_playback_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), "");
    config.audio.output = "no-such-sound-card".into();
    let app = TestApp::spawn_config(config, Default::default()).await;
    let mut rx = app.state.hub.subscribe("main").unwrap();
    let health = app.get_json("/healthz").await;
    // The output opens in the background; wait for its verdict.
    let mut state = health["audio"]["state"].clone();
    for _ in 0..100 {
        if state != "starting" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        state = app.get_json("/healthz").await["audio"]["state"].clone();
    }
    // A named card that is not there is tried again, less and less often (it may be plugged in later).
    assert_eq!(state, "unavailable", "the operator sees there is no sound");
    send_voice(&app, "phone-9", &fixture("hello.amr"), "n1").await;
    app.wait_state("main", 20, |s| s["messages"][0]["status"] == "ready")
        .await;
    let ev = next_event(&mut rx, |e| matches!(e, WallEvent::PlaybackFinished { .. })).await;
    let WallEvent::PlaybackFinished { outcome, .. } = ev else {
        unreachable!()
    };
    assert_eq!(outcome, "no_device");
    app.stop().await;
}

#[tokio::test]
async fn ready_messages_that_never_played_are_played_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), "");
    config.audio.output = "no-such-sound-card".into();
    let app = TestApp::spawn_config(config, Default::default()).await;
    send_voice(&app, "phone-r", &fixture("hello.amr"), "r1").await;
    app.wait_state("main", 20, |s| s["messages"][0]["status"] == "ready")
        .await;
    app.stop().await;

    // Back with a working output: the unplayed message is queued again and plays.
    let app = TestApp::spawn_config(test_config(dir.path(), ""), Default::default()).await;
    let s = app
        .wait_state("main", 20, |s| s["messages"][0]["played_count"] == 1)
        .await;
    assert_eq!(s["messages"].as_array().unwrap().len(), 1);
    app.stop().await;
}

/// This machine's non-loopback IPv4 address (the route to a private network; no packet is sent), or
/// `None` on a machine without one (a CI container with loopback only).
fn lan_ip() -> Option<std::net::IpAddr> {
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    sock.connect("10.254.254.254:1").ok()?;
    let ip = sock.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn only_a_display_or_the_operator_can_drive_the_speakers_wherever_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), "[admin]\ntoken = \"op-secret\"\n");
    config.server.listen = "0.0.0.0:0".into();
    let app = TestApp::spawn_config(config, Default::default()).await;
    let port = app.addr.rsplit(':').next().unwrap().to_string();
    let body = serde_json::json!({"participant_id": "web:nobody"});
    let local = app
        .url("/api/walls/main/play")
        .replace("0.0.0.0", "127.0.0.1");
    // A tunnel or reverse proxy on the kiosk makes every request loopback: the address grants nothing.
    let r = app.anonymous.post(&local).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 401, "loopback without a credential");
    let display = app.display_cookie("main").await;
    let r = app
        .anonymous
        .post(&local)
        .header("cookie", &display)
        .header("origin", local.trim_end_matches("/api/walls/main/play"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        404,
        "a display passes (and nobody has a message)"
    );
    let Some(ip) = lan_ip() else {
        eprintln!("no LAN address on this machine: the request from the network is not tried");
        app.stop().await;
        return;
    };
    let remote = format!("http://{ip}:{port}/api/walls/main/play");

    let r = app
        .anonymous
        .post(&remote)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "a phone on the Wi-Fi cannot start playback"
    );
    let r = app
        .anonymous
        .post(&remote)
        .bearer_auth("wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .anonymous
        .post(&remote)
        .bearer_auth("op-secret")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        404,
        "the operator passes (and nobody has a message)"
    );
    app.stop().await;
}
