//! The frame of the product over real HTTP: health, routes and their 404s, the wall state contract,
//! the events stream, media, metrics, QR, and a clean stop that keeps what was accepted.

use futures_util::StreamExt;
use std::time::Duration;
use voicewall_tests::{inbound, TestApp};

fn join(sender: &str) -> voicewall_core::domain::Inbound {
    inbound::join("main", sender)
}

#[tokio::test]
async fn healthz_reports_status_version_and_how_many_walls_without_naming_them() {
    let app = TestApp::spawn("").await;
    let r = app.anonymous.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200, "public");
    let h: serde_json::Value = r.json().await.unwrap();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(h["walls"], 1);
    assert!(!h.to_string().contains("main"), "{h}");
    app.stop().await;
}

#[tokio::test]
async fn unknown_wall_is_404_everywhere() {
    let app = TestApp::spawn("").await;
    for path in [
        "/wall/nope",
        "/api/walls/nope",
        "/api/walls/nope/events",
        "/api/walls/nope/qr.svg",
        "/join/nope",
        "/media/0123",
    ] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    let r = app
        .client
        .post(app.url("/api/walls/nope/play"))
        .json(&serde_json::json!({"participant_id": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn wall_page_and_its_assets_are_served() {
    let app = TestApp::spawn("").await;
    let r = app.client.get(app.url("/wall/main")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = r.text().await.unwrap();
    assert!(html.contains("/ui/wall.js"), "the page loads its script");
    let js = app.client.get(app.url("/ui/wall.js")).send().await.unwrap();
    assert_eq!(js.status(), 200);
    assert!(js.text().await.unwrap().contains("EventSource"));
    assert!(
        html.contains("/ui/grid.js"),
        "the page loads the crowd's drawing"
    );
    let grid = app.client.get(app.url("/ui/grid.js")).send().await.unwrap();
    assert_eq!(grid.status(), 200);
    assert!(grid.text().await.unwrap().contains("VoicewallGrid"));
    let root = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(root.headers()["location"], "/wall/main");
    app.stop().await;
}

#[tokio::test]
async fn wall_state_follows_the_contract_and_qr_encodes_the_join_url() {
    let app = TestApp::spawn("").await;
    let s = app.get_json("/api/walls/main").await;
    assert_eq!(s["id"], "main");
    assert_eq!(s["title"], "Voicewall");
    assert!(s["participants"].as_array().unwrap().is_empty());
    assert!(s["messages"].as_array().unwrap().is_empty());
    let join_url = s["join"]["url"].as_str().unwrap();
    assert!(
        join_url.starts_with(&format!("{}/join/main?t=", app.addr)),
        "{join_url}"
    );
    let qr = app
        .client
        .get(app.url(s["join"]["qr_svg_url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(qr.headers()["content-type"], "image/svg+xml");
    // What a phone's camera reads off the wall is the join URL.
    let svg = qr.text().await.unwrap();
    assert_eq!(
        voicewall_tests::qr::decode_svg(&svg).expect("a readable QR code"),
        join_url
    );

    app.state.accept(&join("device-1")).await.unwrap();
    let s = app
        .wait_state("main", 10, |s| {
            s["participants"].as_array().unwrap().len() == 1
        })
        .await;
    let p = &s["participants"][0];
    for key in [
        "id",
        "person_id",
        "display_name",
        "avatar_url",
        "provider",
        "joined_at",
    ] {
        assert!(!p[key].is_null(), "participant.{key} missing: {p}");
    }
    assert_eq!(p["provider"], "web");
    let avatar = p["avatar_url"].as_str().unwrap();
    assert!(avatar.starts_with("/media/"), "{avatar}");
    let img = app.client.get(app.url(avatar)).send().await.unwrap();
    assert_eq!(img.status(), 200);
    assert_eq!(img.headers()["content-type"], "image/svg+xml");
    app.stop().await;
}

#[tokio::test]
async fn events_stream_carries_joins_as_sse() {
    let app = TestApp::spawn("").await;
    let r = app
        .client
        .get(app.url("/api/walls/main/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut body = r.bytes_stream();
    let mut seen = String::new();
    // The stream says hello first, so the subscription is live before the join.
    while !seen.contains("event: hello") {
        seen.push_str(&String::from_utf8_lossy(
            &body.next().await.unwrap().unwrap(),
        ));
    }
    app.state.accept(&join("device-2")).await.unwrap();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while !seen.contains("event: participant_joined") {
            seen.push_str(&String::from_utf8_lossy(
                &body.next().await.unwrap().unwrap(),
            ));
        }
    })
    .await;
    assert!(found.is_ok(), "no participant_joined event: {seen}");
    assert!(seen.contains("\"type\":\"participant_joined\""));
    assert!(seen.contains("web:device-2"));
    app.stop().await;
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let app = TestApp::spawn("").await;
    app.state.accept(&join("device-3")).await.unwrap();
    app.state.accept(&join("device-3")).await.unwrap();
    let r = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = r.text().await.unwrap();
    assert!(
        text.contains("voicewall_pushes_accepted_total{provider=\"web\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("voicewall_pushes_duplicate_total 1"),
        "{text}"
    );
    assert!(text.contains("# TYPE voicewall_inbox_pending gauge"));
    // The allocator's figures: a running server has live heap, and what it keeps beyond that apart.
    let gauge = |name: &str| -> u64 {
        let line = text.lines().find(|l| l.starts_with(&format!("{name} ")));
        line.and_then(|l| l.split(' ').nth(1)?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing: {text}"))
    };
    if cfg!(target_os = "linux") {
        assert!(gauge("voicewall_heap_in_use_bytes") > 1 << 20, "{text}");
        gauge("voicewall_heap_free_bytes");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_clean_stop_keeps_everything_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_in(dir.path(), "", Default::default()).await;
    for i in 0..5 {
        app.state.accept(&join(&format!("d{i}"))).await.unwrap();
    }
    app.wait_state("main", 10, |s| {
        s["participants"].as_array().unwrap().len() == 5
    })
    .await;
    app.stop().await;
    let app = TestApp::spawn_in(dir.path(), "", Default::default()).await;
    let s = app.get_json("/api/walls/main").await;
    assert_eq!(s["participants"].as_array().unwrap().len(), 5);
    app.stop().await;
}
