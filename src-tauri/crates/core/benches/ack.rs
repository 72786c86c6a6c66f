//! Ack throughput of the WeChat webhook (durable: sled inbox + group-commit flush) against a bare axum
//! handler answering "success", in one run. Prints figures; never fails on timing.
//!
//!     cargo bench -p voicewall-core --bench ack            (ACK_CLIENTS, ACK_SECONDS to change the load)
//!
//! Each push is a signed plaintext voice push with a unique MsgId. Its MediaId is unknown to the mock
//! platform, so the pipeline after the ack fails it fast (40007) instead of decoding audio: the figure is
//! the ack path's, not the decoder's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use voicewall_core::startup::Options;
use voicewall_sim::wechat::{self, MockWechat, PushMode, Pusher};
use voicewall_testkit::TestApp;

const APP_ID: &str = "wxbench000000001";
const SECRET: &str = "bench-secret";
const TOKEN: &str = "benchtoken";
const ORIGINAL_ID: &str = "gh_bench";

struct Figures {
    requests: u64,
    errors: u64,
    secs: f64,
    p50: Duration,
    p99: Duration,
}

impl Figures {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.secs
    }
}

async fn load(url: String, clients: usize, secs: u64) -> Figures {
    let pusher = Pusher::new(TOKEN, None, APP_ID, ORIGINAL_ID);
    let next = Arc::new(AtomicU64::new(1));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (url, pusher, next, errors) =
            (url.clone(), pusher.clone(), next.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let mut lat = Vec::with_capacity(100_000);
            let openid = format!("oBench{c:03}");
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let xml = wechat::voice_xml(
                    ORIGINAL_ID,
                    &openid,
                    1_700_000_000,
                    &format!("bench-media-{n}"),
                    8_000_000_000 + n,
                    "",
                );
                let t = Instant::now();
                match pusher
                    .deliver(&client, &url, &xml, PushMode::Plaintext)
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed());
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Figures {
        requests: all.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        secs,
        p50: pct(0.50),
        p99: pct(0.99),
    }
}

fn main() {
    let clients: usize = std::env::var("ACK_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let secs: u64 = std::env::var("ACK_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let mock = MockWechat::start(APP_ID, SECRET).await.unwrap();
        let mut config = voicewall_testkit::test_config(
            dir.path(),
            &format!(
                "[[walls]]\nid = \"wx\"\n[walls.wechat]\napp_id = \"{APP_ID}\"\napp_secret = \"{SECRET}\"\ntoken = \"{TOKEN}\"\n\
                 original_id = \"{ORIGINAL_ID}\"\napi_base = \"{b}\"\noauth_base = \"{b}\"\n[[walls]]\nid = \"web\"\n[walls.web]\n",
                b = mock.base_url()
            ),
        );
        config.audio.autoplay = false;
        let app = TestApp::spawn_config(config, Options::default()).await;
        let app_url = app.url("/webhook/wechat/wx");

        let bare = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bare_url = format!("http://{}/webhook", bare.local_addr().unwrap());
        let router = axum::Router::new().route("/webhook", axum::routing::post(|| async { "success" }));
        tokio::spawn(async move { axum::serve(bare, router).await.unwrap() });

        println!("ack bench: {clients} concurrent clients, {secs} s each target, signed plaintext voice pushes, unique MsgIds");
        let bare_f = load(bare_url, clients, secs).await;
        let app_f = load(app_url, clients, secs).await;
        for (name, f) in [("bare axum \"success\"", &bare_f), ("voicewall WeChat webhook (durable ack)", &app_f)] {
            println!(
                "{name:<42} {:>9.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  ({} ok, {} errors)",
                f.rps(),
                f.p50.as_secs_f64() * 1000.0,
                f.p99.as_secs_f64() * 1000.0,
                f.requests,
                f.errors
            );
        }
        println!("ratio (voicewall / bare): {:.2}", app_f.rps() / bare_f.rps());
        println!("accepted into the inbox: {} (+{} still pending)", app_f.requests, app.inbox_pending().await);
        app.stop().await;
    });
}
