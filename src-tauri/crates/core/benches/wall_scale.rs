//! A big wall through the real webhook: 10,000 WeChat followers send 50,000 signed text pushes to a
//! real `voicewall serve` process, then the bench prints its RSS, the size and time of the wall state
//! (`GET /api/walls/{id}`), and its RSS while 10 displays reconnect (state + event stream) a few times.
//! Prints figures; never fails on timing.
//!
//!     cargo test -p voicewall --no-run        (builds target/debug/voicewall)
//!     cargo bench -p voicewall-core --bench wall_scale --profile dev
//!
//! Environment: `SCALE_PEOPLE` (10000), `SCALE_MESSAGES` (50000), `SCALE_CLIENTS` (64 concurrent
//! pushers), `SCALE_KEEP=/dir` (keep the filled store there; a later run on the same dir skips the
//! fill), `VOICEWALL_BIN` (the binary; default target/debug/voicewall).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use voicewall_sim::wechat::{self, MockWechat, PushMode, Pusher};
use voicewall_testkit::serve::write_config;
use voicewall_testkit::{Endpoint, ServeProcess};

const APP_ID: &str = "wxscale00000001";
const SECRET: &str = "scale-secret";
const TOKEN: &str = "scaletoken";
const ORIGINAL_ID: &str = "gh_scale";
const WALL: &str = "wx";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `VmRSS` and `VmHWM` (peak) of a process, in MiB.
fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kb("VmRSS:") / 1024.0, kb("VmHWM:") / 1024.0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn config_file(dir: &Path, mock: &MockWechat) -> PathBuf {
    let b = mock.base_url();
    write_config(
        dir,
        &format!(
            "[[walls]]\nid = \"{WALL}\"\n[walls.wechat]\napp_id = \"{APP_ID}\"\napp_secret = \"{SECRET}\"\n\
             token = \"{TOKEN}\"\noriginal_id = \"{ORIGINAL_ID}\"\napi_base = \"{b}\"\noauth_base = \"{b}\"\n"
        ),
    )
}

async fn serve(config: &Path) -> ServeProcess {
    let bin = std::env::var("VOICEWALL_BIN").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../target/debug/voicewall"
        )
        .to_string()
    });
    let config = config.to_path_buf();
    tokio::task::spawn_blocking(move || ServeProcess::start(Path::new(&bin), &config))
        .await
        .unwrap()
        .expect("voicewall serve starts (build it first: cargo test -p voicewall --no-run)")
}

/// 50,000 signed text pushes from 10,000 followers, `clients` at a time.
async fn fill(http: &Endpoint, people: u64, messages: u64, clients: u64) -> (f64, u64) {
    let webhook = http.url(&format!("/webhook/wechat/{WALL}"));
    let pusher = Pusher::new(TOKEN, None, APP_ID, ORIGINAL_ID);
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (webhook, pusher, next, errors) = (
            webhook.clone(),
            pusher.clone(),
            next.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= messages {
                    break;
                }
                // The first `people` pushes come from `people` different followers.
                let openid = format!("oScale{:06}", n % people);
                let xml = wechat::text_xml(
                    ORIGINAL_ID,
                    &openid,
                    1_700_000_000 + n,
                    &format!("message {n} from {openid}: hello wall"),
                    9_000_000_000 + n,
                );
                let ok = matches!(
                    pusher.deliver(&client, &webhook, &xml, PushMode::Plaintext).await,
                    Ok(r) if r.status().is_success()
                );
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let acked = started.elapsed().as_secs_f64();
    http.wait_inbox_drained().await;
    println!(
        "fill: {messages} pushes acked in {acked:.1} s ({:.0}/s), drained after {:.1} s, {} errors  (load {})",
        messages as f64 / acked,
        started.elapsed().as_secs_f64(),
        errors.load(Ordering::Relaxed),
        load_average()
    );
    (acked, errors.load(Ordering::Relaxed))
}

/// GET `path` with the admin Bearer: (bytes, ms, status).
async fn timed_get(http: &Endpoint, path: &str) -> (Vec<u8>, f64, u16) {
    // Not the harness's client: its 20 s timeout is shorter than a debug build's full state under load.
    let client = reqwest::Client::new();
    let t = Instant::now();
    let r = client
        .get(http.url(path))
        .bearer_auth(&http.admin_token)
        .send()
        .await
        .expect("GET");
    let status = r.status().as_u16();
    let body = r.bytes().await.expect("body").to_vec();
    (body, t.elapsed().as_secs_f64() * 1000.0, status)
}

/// One display reconnecting: the wall state, then the event stream until its `hello`.
async fn reconnect(http: Endpoint) -> usize {
    let (state, _, _) = timed_get(&http, &format!("/api/walls/{WALL}")).await;
    let mut events = reqwest::Client::new()
        .get(http.url(&format!("/api/walls/{WALL}/events")))
        .bearer_auth(&http.admin_token)
        .send()
        .await
        .expect("events");
    let _ = tokio::time::timeout(Duration::from_secs(5), events.chunk()).await;
    state.len()
}

fn main() {
    let people = env_or("SCALE_PEOPLE", 10_000);
    let messages = env_or("SCALE_MESSAGES", 50_000);
    let clients = env_or("SCALE_CLIENTS", 64);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let tmp = tempfile::tempdir().unwrap();
        let dir = std::env::var("SCALE_KEEP")
            .map(PathBuf::from)
            .unwrap_or_else(|_| tmp.path().to_path_buf());
        std::fs::create_dir_all(&dir).unwrap();
        let filled = dir.join("data").exists();
        let mock = MockWechat::start(APP_ID, SECRET).await.unwrap();
        let config = config_file(&dir, &mock);
        println!(
            "wall scale bench: {people} people, {messages} text messages through the signed WeChat webhook; store {}",
            dir.display()
        );
        if !filled {
            let process = serve(&config).await;
            let http = process.endpoint();
            let (rss, _) = rss_mib(process.pid());
            println!("rss empty: {rss:.1} MiB  (load {})", load_average());
            fill(&http, people, messages, clients).await;
            let (rss, hwm) = rss_mib(process.pid());
            println!("rss after the fill: {rss:.1} MiB (peak {hwm:.1})  (load {})", load_average());
            drop(process);
        } else {
            println!("store already filled: fill skipped");
        }

        // A fresh process on the filled store, as after a restart.
        let process = serve(&config).await;
        let http = process.endpoint();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (rss, _) = rss_mib(process.pid());
        println!("rss of a fresh serve on the filled store: {rss:.1} MiB  (load {})", load_average());

        for round in 1..=3 {
            let (body, ms, status) = timed_get(&http, &format!("/api/walls/{WALL}")).await;
            let state: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let (rss, hwm) = rss_mib(process.pid());
            println!(
                "GET /api/walls/{WALL} #{round}: {status}, {:.2} MB in {ms:.0} ms ({} participants, {} messages); rss {rss:.1} MiB (peak {hwm:.1})  (load {})",
                body.len() as f64 / 1e6,
                state["participants"].as_array().map_or(0, |a| a.len()),
                state["messages"].as_array().map_or(0, |a| a.len()),
                load_average()
            );
        }

        // Paging and the waveform, where the server has them.
        let (body, ms, status) =
            timed_get(&http, &format!("/api/walls/{WALL}/messages?limit=200")).await;
        let page: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        println!(
            "GET /api/walls/{WALL}/messages?limit=200: {status}, {:.1} kB in {ms:.1} ms",
            body.len() as f64 / 1e3
        );
        if let Some(cursor) = page["before"].as_str() {
            let (body, ms, status) = timed_get(
                &http,
                &format!("/api/walls/{WALL}/messages?before={cursor}&limit=200"),
            )
            .await;
            println!(
                "  older page (before={cursor}): {status}, {:.1} kB in {ms:.1} ms",
                body.len() as f64 / 1e3
            );
        }

        for round in 1..=3 {
            let t = Instant::now();
            let tasks: Vec<_> = (0..10)
                .map(|_| tokio::spawn(reconnect(process.endpoint())))
                .collect();
            let mut total = 0;
            for task in tasks {
                total += task.await.unwrap();
            }
            let (rss, hwm) = rss_mib(process.pid());
            println!(
                "10 displays reconnecting #{round}: {:.1} MB of state in {:.0} ms; rss {rss:.1} MiB (peak {hwm:.1})  (load {})",
                total as f64 / 1e6,
                t.elapsed().as_secs_f64() * 1000.0,
                load_average()
            );
        }
        drop(process);
    });
}
