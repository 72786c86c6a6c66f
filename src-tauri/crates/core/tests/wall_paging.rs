//! The compact wall state over real HTTP, filled through the signed WeChat webhook: the state carries the
//! newest messages without waveforms and a cursor; older messages and participants come a page at a
//! time; a spotlighted message's waveform on its own route; the event stream resumes from
//! `Last-Event-ID` / `?last_event_id=` with the missed events, or says `resync`.

mod common;

use common::*;
use std::time::Duration;
use voicewall_core::http::state::{STATE_MESSAGES, STATE_PARTICIPANTS};
use voicewall_sim::wechat::{self, MockWechat, PushMode};

async fn setup() -> (tempfile::TempDir, MockWechat, TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockWechat::start(APP_ID, SECRET).await.unwrap();
    let app = spawn_app_in(dir.path(), &mock).await;
    (dir, mock, app)
}

/// `n` text pushes, the i-th from follower `i % people`, 16 at a time; waits until they are on the wall.
async fn texts(app: &TestApp, from: u64, n: u64, people: u64) {
    let webhook = app.webhook();
    let mut tasks = Vec::new();
    for lane in 0..16u64 {
        let (webhook, client) = (webhook.clone(), app.anonymous.clone());
        tasks.push(tokio::spawn(async move {
            let p = pusher();
            let mut i = from + lane;
            while i < from + n {
                let xml = wechat::text_xml(
                    ORIGINAL_ID,
                    &format!("oPage{:05}", i % people),
                    now_s(),
                    &format!("text {i}"),
                    7_000_000_000 + i,
                );
                let r = p.deliver(&client, &webhook, &xml, PushMode::Safe).await;
                assert!(r.unwrap().status().is_success());
                i += 16;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    app.wait_inbox_drained().await;
}

fn ids(list: &serde_json::Value, field: &str) -> Vec<String> {
    list[field]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_state_is_the_newest_page_and_older_ones_are_paged() {
    let (_d, _mock, app) = setup().await;
    let extra = 30u64;
    texts(&app, 0, STATE_MESSAGES as u64 + extra, 7).await;
    let state = app.wall(WALL).await;
    let messages = ids(&state, "messages");
    assert_eq!(messages.len(), STATE_MESSAGES);
    assert!(state["messages"][0].get("waveform").is_none(), "{state:#}");
    let cursor = state["messages_before"].as_str().expect("older messages");
    assert_eq!(
        cursor, messages[0],
        "the cursor is the oldest message in the state"
    );

    let page = app
        .get_json(&format!(
            "/api/walls/{WALL}/messages?before={cursor}&limit=1000"
        ))
        .await;
    let older = ids(&page, "messages");
    assert_eq!(older.len() as u64, extra);
    assert!(page["before"].is_null(), "{page:#}");
    // Oldest first, all older than the state's, none twice.
    let all: Vec<u64> = older
        .iter()
        .chain(&messages)
        .map(|id| id.parse().unwrap())
        .collect();
    assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");

    // Bad input: a clear status and code.
    for q in ["limit=0", "limit=5000", "before=abc"] {
        let r = app
            .client
            .get(app.url(&format!("/api/walls/{WALL}/messages?{q}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{q}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["code"], "bad_request", "{q}");
    }
    // Not for guests or nobody.
    let r = app
        .anonymous
        .get(app.url(&format!("/api/walls/{WALL}/messages")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The waveform route answers for a shown message (a text's is empty), 404 for another.
    let wf = app
        .get_json(&format!(
            "/api/walls/{WALL}/messages/{}/waveform",
            messages[3]
        ))
        .await;
    assert_eq!(wf["message_id"], messages[3].as_str());
    assert_eq!(wf["waveform"], serde_json::json!([]));
    let r = app
        .client
        .get(app.url(&format!("/api/walls/{WALL}/messages/999999/waveform")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn participants_beyond_the_state_come_a_page_at_a_time() {
    let (_d, _mock, app) = setup().await;
    let people = STATE_PARTICIPANTS as u64 + 25;
    texts(&app, 0, people, people).await;
    let state = app.wall(WALL).await;
    let in_state = ids(&state, "participants");
    // The newest participants, plus the senders of the messages shown (all of them are among the newest
    // here: each sent one message).
    assert_eq!(in_state.len(), STATE_PARTICIPANTS);
    let mut seen: std::collections::HashSet<String> = in_state.iter().cloned().collect();
    let mut before = state["participants_before"].as_str().map(str::to_string);
    let mut pages = 0;
    while let Some(cursor) = before {
        let page = app
            .get_json(&format!(
                "/api/walls/{WALL}/participants?before={}&limit=10",
                urlencode(&cursor)
            ))
            .await;
        for id in ids(&page, "participants") {
            assert!(seen.insert(id.clone()), "{id} twice");
        }
        before = page["before"].as_str().map(str::to_string);
        pages += 1;
    }
    assert_eq!(seen.len() as u64, people);
    assert_eq!(pages, 3);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The SSE events of a stream read for `wait`: (event name, id) pairs.
async fn read_events(app: &TestApp, query: &str, header: Option<&str>) -> Vec<(String, String)> {
    let mut req = app
        .client
        .get(app.url(&format!("/api/walls/{WALL}/events{query}")));
    if let Some(h) = header {
        req = req.header("last-event-id", h);
    }
    let mut r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, r.chunk()).await {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text.split("\n\n")
        .filter_map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}:")))
                    .map(|v| v.trim().to_string())
            };
            Some((field("event")?, field("id").unwrap_or_default()))
        })
        .collect()
}

#[tokio::test]
async fn a_reconnect_gets_the_missed_events_or_a_resync() {
    let (_d, _mock, app) = setup().await;
    texts(&app, 0, 2, 2).await;
    let state = app.wall(WALL).await;
    let seen = state["last_event_id"].as_str().unwrap().to_string();
    // Two new messages while the page was away (a new follower: a join, then its message).
    texts(&app, 100, 1, 1000).await;
    let missed = read_events(&app, &format!("?last_event_id={seen}"), None).await;
    let names: Vec<&str> = missed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"hello"), "{missed:?}");
    assert!(names.contains(&"participant_joined"), "{missed:?}");
    assert!(names.contains(&"message_added"), "{missed:?}");
    assert!(!names.contains(&"resync"), "{missed:?}");
    let last = missed.last().unwrap().1.clone();
    assert!(!last.is_empty(), "replayed events carry ids: {missed:?}");

    // The header does the same; from the latest id there is nothing to replay.
    let nothing = read_events(&app, "", Some(&last)).await;
    assert!(
        nothing
            .iter()
            .all(|(n, _)| n == "hello" || n == "heartbeat"),
        "{nothing:?}"
    );
    // An id of another process (a restart) or garbage: resync.
    for bad in ["1-1", "garbage"] {
        let got = read_events(&app, "", Some(bad)).await;
        assert!(got.iter().any(|(n, _)| n == "resync"), "{bad}: {got:?}");
    }
}
