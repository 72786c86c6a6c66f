//! Ack throughput of the WeChat webhook (durable: sled inbox + group-commit flush) against two references
//! in one run: a bare axum handler answering "success", and a minimal durable ack (axum, one sled insert
//! and the store's group-commit flush, `Store::durable`). Then a paced run at ACK_RATE pushes/s for the
//! ack latency at a venue's rate. Prints figures; never fails on timing.
//!
//!     cargo bench -p voicewall-core --bench ack     (ACK_CLIENTS, ACK_SECONDS, ACK_RATE to change the load)
//!
//! Each push is a signed plaintext voice push with a unique MsgId, from ACK_SENDERS senders. Its MediaId is
//! unknown to the mock platform, so the pipeline after the ack creates the participant and the message,
//! asks the platform and fails the message (40007) instead of decoding audio: the pipeline works during
//! the run (its progress is printed), the figure is the ack path's, not the decoder's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use voicewall_core::startup::Options;
use voicewall_core::store::Store;
use voicewall_sim::wechat::{self, MockWechat, PushMode, Pusher};
use voicewall_testkit::TestApp;

mod support;
use support::{env_or, loadavg, APP_ID, ORIGINAL_ID, SECRET, TOKEN};

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

fn push_xml(n: u64, senders: u64) -> String {
    wechat::voice_xml(
        ORIGINAL_ID,
        &format!("oBench{:03}", n % senders),
        1_700_000_000,
        &format!("bench-media-{n}"),
        8_000_000_000 + n,
        "",
    )
}

fn percentiles(mut all: Vec<Duration>, errors: u64, secs: f64) -> Figures {
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Figures {
        requests: all.len() as u64,
        errors,
        secs,
        p50: pct(0.50),
        p99: pct(0.99),
    }
}

/// Closed loop: `clients` connections, each sending its next push as soon as the last was answered.
/// Pushes are numbered from `first`, wrapping after `wrap` (0: never) to send the same MsgIds again.
async fn load(url: String, clients: usize, secs: u64, first: u64, wrap: u64) -> Figures {
    let pusher = Pusher::new(TOKEN, None, APP_ID, ORIGINAL_ID);
    let senders = env_or("ACK_SENDERS", 100u64);
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (url, pusher, next, errors) =
            (url.clone(), pusher.clone(), next.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let mut lat = Vec::with_capacity(100_000);
            while Instant::now() < deadline {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let n = if wrap > 0 {
                    first + k % wrap
                } else {
                    first + k
                };
                let xml = push_xml(n, senders);
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
    percentiles(
        all,
        errors.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    )
}

/// Open loop: one push every 1/`rate` s (each on its own task, over a shared connection pool), for
/// `secs`; the latency of each from the moment it was due, so a stalled server cannot hide its queue.
async fn paced(url: String, rate: u64, secs: u64, first: u64) -> Figures {
    let pusher = Pusher::new(TOKEN, None, APP_ID, ORIGINAL_ID);
    let senders = env_or("ACK_SENDERS", 100u64);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let total = rate * secs;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = tick.tick().await;
        let (url, pusher, client, errors) =
            (url.clone(), pusher.clone(), client.clone(), errors.clone());
        let xml = push_xml(first + i, senders);
        tasks.spawn(async move {
            match pusher
                .deliver(&client, &url, &xml, PushMode::Plaintext)
                .await
            {
                Ok(r) if r.status().is_success() => {
                    let _ = r.bytes().await;
                    Some(due.elapsed())
                }
                _ => {
                    errors.fetch_add(1, Ordering::Relaxed);
                    None
                }
            }
        });
    }
    let mut all = Vec::new();
    while let Some(r) = tasks.join_next().await {
        all.extend(r.unwrap());
    }
    percentiles(
        all,
        errors.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    )
}

/// The minimal durable ack: the same stack, one sled insert and the store's group-commit flush.
async fn minimal_durable(dir: &std::path::Path) -> String {
    let store = Store::open(dir).unwrap();
    let next = Arc::new(AtomicU64::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    let router = axum::Router::new().route(
        "/webhook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let (store, next) = (store.clone(), next.clone());
            async move {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let text = String::from_utf8_lossy(&body);
                store.meta_put(&format!("bench-{n:016}"), &text).unwrap();
                store.durable().await.unwrap();
                "success"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

fn row(name: &str, f: &Figures) {
    println!(
        "{name:<44} {:>9.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  ({} ok, {} errors)",
        f.rps(),
        f.p50.as_secs_f64() * 1000.0,
        f.p99.as_secs_f64() * 1000.0,
        f.requests,
        f.errors
    );
}

fn main() {
    let clients: usize = env_or("ACK_CLIENTS", 32);
    let secs: u64 = env_or("ACK_SECONDS", 5);
    let rate: u64 = env_or("ACK_RATE", 2000);
    support::runtime().block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let reference_dir = tempfile::tempdir().unwrap();
        let mock = MockWechat::start(APP_ID, SECRET).await.unwrap();
        let mut config = support::wechat_config(dir.path(), &mock.base_url());
        config.audio.autoplay = false;
        let app = TestApp::spawn_config(config, Options::default()).await;
        let app_url = app.url("/webhook/wechat/wx");

        let bare = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bare_url = format!("http://{}/webhook", bare.local_addr().unwrap());
        let router = axum::Router::new().route("/webhook", axum::routing::post(|| async { "success" }));
        tokio::spawn(async move { axum::serve(bare, router).await.unwrap() });
        let durable_url = minimal_durable(reference_dir.path()).await;

        println!("ack bench: {clients} concurrent clients, {secs} s each, signed plaintext voice pushes, unique MsgIds; load average {}", loadavg());
        let bare_f = load(bare_url, clients, secs, 1, 0).await;
        let durable_f = load(durable_url, clients, secs, 1, 0).await;
        let app_f = load(app_url.clone(), clients, secs, 1, 0).await;
        let pending_after = app.inbox_pending().await;
        row("bare axum \"success\"", &bare_f);
        row("minimal durable ack (1 sled insert + flush)", &durable_f);
        row("voicewall WeChat webhook (durable ack)", &app_f);
        println!("ratio (voicewall / minimal durable): {:.2}", app_f.rps() / durable_f.rps());
        println!("ratio (voicewall / bare):            {:.2}", app_f.rps() / bare_f.rps());
        println!(
            "pipeline during the run: {} accepted, {} processed, {} still pending at its end",
            app_f.requests,
            app_f.requests.saturating_sub(pending_after),
            pending_after
        );
        // Let the pipeline catch up before the next runs, so they start from an empty inbox.
        let caught_up = Instant::now();
        while app.inbox_pending().await > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!("pipeline caught up {:.1} s after the run", caught_up.elapsed().as_secs_f64());
        // The same MsgIds again (freshly signed): the same ack path, but duplicates start no pipeline
        // work. What this run loses against the minimal durable ack is the ack path's own cost; what
        // the first run loses against this one is the pipeline competing for the CPU.
        let dup_f = load(app_url.clone(), clients, secs, 1, app_f.requests.max(1)).await;
        row("voicewall, the same pushes again (duplicates)", &dup_f);
        println!("ratio (duplicates / minimal durable):  {:.2}", dup_f.rps() / durable_f.rps());
        let first = 1_000_000_000;
        let paced_f = paced(app_url, rate, secs, first).await;
        row(&format!("voicewall paced at {rate}/s"), &paced_f);
        println!("load average after: {}", loadavg());
        app.stop().await;
    });
}
