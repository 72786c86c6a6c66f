//! The speaker queue over the real app (127.0.0.1 port 0, a temp data dir, the null audio output): people
//! take turns, each in arrival order; the queue survives a real restart on the same data dir in order;
//! its cap drops the newest voice of whoever has the most waiting, and shows on `/healthz` and in the
//! console's playback state.

use serde_json::Value;
use std::path::{Path, PathBuf};
use voicewall_core::events::WallEvent;
use voicewall_core::startup::{Application, Options};
use voicewall_testkit::app::PATIENCE;
use voicewall_testkit::TestApp;

const TOKEN: &str = "queue-op-token";

fn config(dir: &Path, queue_max: usize) -> voicewall_core::config::Config {
    let mut c = voicewall_testkit::test_config(
        dir,
        &format!("[admin]\ntoken = \"{TOKEN}\"\n[[walls]]\nid = \"main\"\nlocale = \"en\"\n[walls.web]\n"),
    );
    c.audio.gap_ms = 0;
    c.audio.queue_max = queue_max;
    c
}

/// A 40 ms voice (the AMR header and two frames of hello.amr), its bytes made unique by `n`.
fn short_voice(n: u8) -> Vec<u8> {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures/audio/hello.amr");
    let amr = std::fs::read(p).unwrap();
    const SIZES: [usize; 16] = [12, 13, 15, 17, 19, 20, 26, 31, 5, 0, 0, 0, 0, 0, 0, 0];
    let mut end = 6;
    for _ in 0..2 {
        end += 1 + SIZES[usize::from((amr[end] >> 3) & 0x0f)];
    }
    let mut out = amr[..end].to_vec();
    out[end - 1] = n;
    out
}

async fn voice(app: &TestApp, sender: &str, n: u8) -> String {
    let key = app
        .state
        .store
        .put_media(&short_voice(n), "audio/amr")
        .unwrap();
    let push =
        voicewall_testkit::inbound::cached_voice("main", sender, &key, &format!("{sender}-{n}"));
    app.state.accept(&push).await.unwrap().seq().to_string()
}

async fn op(app: &TestApp, method: &str, path: &str) -> Value {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let r = app
        .anonymous
        .request(method, app.url(path))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap_or(Value::Null)
}

fn order(v: &Value) -> Vec<String> {
    v["queue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["message_id"].as_str().unwrap().to_string())
        .collect()
}

/// `GET /api/admin/playback` until `pred` holds.
async fn wait_playback(app: &TestApp, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let v = op(app, "GET", "/api/admin/playback").await;
        if pred(&v) {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "playback: {v:#}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn people_take_turns_in_arrival_order_and_the_queue_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_config(config(dir.path(), 200), Options::default()).await;
    op(&app, "POST", "/api/admin/playback/pause").await;
    // a sends three, then b two, then c one.
    let mut ids = std::collections::HashMap::new();
    for (n, (who, k)) in [("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2), ("c", 1)]
        .into_iter()
        .enumerate()
    {
        ids.insert(
            format!("{who}{k}"),
            voice(&app, &format!("dev-{who}"), n as u8).await,
        );
    }
    let expected: Vec<String> = ["a1", "b1", "c1", "a2", "b2", "a3"]
        .iter()
        .map(|k| ids[*k].clone())
        .collect();
    let pb = wait_playback(&app, |v| order(v).len() == 6).await;
    assert_eq!(order(&pb), expected, "round-robin between people");
    assert_eq!(pb["queue_max"], 200);
    let health = app.get_json("/healthz").await;
    assert_eq!(
        (&health["audio"]["queued"], &health["audio"]["queue_max"]),
        (&Value::from(6), &Value::from(200))
    );
    app.stop().await;

    // A real restart on the same data dir, its events watched from before the player starts: the
    // voices play in the order they were queued.
    let built = Application::build_with(config(dir.path(), 200), Options::default())
        .await
        .unwrap();
    let mut events = built.state().hub.subscribe("main").unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(built.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let mut played = Vec::new();
    while played.len() < expected.len() {
        let ev = tokio::time::timeout(PATIENCE, events.recv())
            .await
            .expect("the restarted player plays the queue")
            .unwrap();
        if let WallEvent::PlaybackStarted { message_id, .. } = ev {
            played.push(message_id);
        }
    }
    assert_eq!(played, expected);
    let _ = stop.send(());
    served.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_full_queue_drops_the_newest_voice_of_whoever_has_the_most_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_config(config(dir.path(), 4), Options::default()).await;
    op(&app, "POST", "/api/admin/playback/pause").await;
    let a1 = voice(&app, "dev-a", 1).await;
    let a2 = voice(&app, "dev-a", 2).await;
    let a3 = voice(&app, "dev-a", 3).await;
    let b1 = voice(&app, "dev-b", 4).await;
    wait_playback(&app, |v| order(v).len() == 4).await;
    // Full: a newcomer's voice pushes out a's newest.
    let c1 = voice(&app, "dev-c", 5).await;
    let pb = wait_playback(&app, |v| order(v).contains(&c1)).await;
    assert_eq!(order(&pb), [a1.clone(), b1.clone(), c1.clone(), a2.clone()]);
    assert!(!order(&pb).contains(&a3));
    // a again: a would have the most, so its new voice is the one left out.
    let a4 = voice(&app, "dev-a", 6).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let health = loop {
        let h = app.get_json("/healthz").await;
        if h["audio"]["queue_dropped"] == 2 {
            break h;
        }
        assert!(tokio::time::Instant::now() < deadline, "{h:#}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(health["audio"]["queued"], 4);
    assert_eq!(health["audio"]["queue_max"], 4);
    let pb = op(&app, "GET", "/api/admin/playback").await;
    assert_eq!(order(&pb), [a1, b1, c1, a2]);
    assert!(!order(&pb).contains(&a4));
    // The dropped voices stay on the wall.
    let wall = app.wall("main").await;
    let shown = wall["messages"].as_array().unwrap();
    assert!(shown.iter().any(|m| m["id"] == a3.as_str()));
    app.stop().await;
}
