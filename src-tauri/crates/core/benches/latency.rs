//! Latency of a voice through the whole kiosk: push → `message_updated` (ready) on the wall's event
//! stream (SSE over HTTP, as a display reads it), and push → first sample pulled by the null sound
//! output (which consumes samples in real time). LATENCY_PUSHES signed WeChat voice pushes at
//! LATENCY_RATE per second through the real webhook; the mock platform serves each its own 40 ms AMR
//! clip (unique bytes: each is fetched, decoded and analysed, nothing comes from a cache).
//! Prints p50/p95; never fails on timing.
//!
//!     cargo bench -p voicewall-core --bench latency       (LATENCY_PUSHES=200, LATENCY_RATE=20)

use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use voicewall_core::events::WallEvent;
use voicewall_core::startup::Options;
use voicewall_sim::wechat::{self, MockWechat, PushMode, Pusher};
use voicewall_testkit::TestApp;

mod support;
use support::{env_or, loadavg, APP_ID, ORIGINAL_ID, SECRET, TOKEN};

/// The AMR header and the first two 20 ms frames of hello.amr, with push `n` written into the last
/// frame's payload (still a valid frame; unique bytes, so a unique media key and a real decode).
fn clip(amr: &[u8], n: u64) -> Vec<u8> {
    // AMR-NB payload bytes by frame type (the ToC byte's bits 3..6), without the ToC byte.
    const SIZES: [usize; 16] = [12, 13, 15, 17, 19, 20, 26, 31, 5, 0, 0, 0, 0, 0, 0, 0];
    let mut end = 6;
    for _ in 0..2 {
        end += 1 + SIZES[usize::from((amr[end] >> 3) & 0x0f)];
    }
    let mut out = amr[..end].to_vec();
    out[end - 1] = (n & 0xff) as u8;
    out[end - 2] = ((n >> 8) & 0xff) as u8;
    out
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1));
    sorted
        .get(i)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(f64::NAN)
}

fn summary(name: &str, mut v: Vec<Duration>, of: usize) {
    v.sort();
    println!(
        "{name:<40} p50 {:>7.1} ms  p95 {:>7.1} ms  max {:>7.1} ms  ({} of {of})",
        pct(&v, 0.50),
        pct(&v, 0.95),
        v.last()
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(f64::NAN),
        v.len()
    );
}

fn main() {
    let pushes: u64 = env_or("LATENCY_PUSHES", 200);
    let rate: u64 = env_or("LATENCY_RATE", 20);
    let amr = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../tests/fixtures/audio/hello.amr"
    ))
    .expect("tests/fixtures/audio/hello.amr");
    support::runtime().block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let mock = MockWechat::start(APP_ID, SECRET).await.unwrap();
        for n in 0..pushes {
            mock.add_media(&format!("lat-media-{n}"), clip(&amr, n), "audio/amr");
        }
        let mut config = support::wechat_config(dir.path(), &mock.base_url());
        config.audio.output = "null".into();
        config.audio.autoplay = true;
        config.audio.gap_ms = 0;
        let app = TestApp::spawn_config(config, Options::default()).await;
        let webhook = app.url("/webhook/wechat/wx");

        // The wall's stream, read as a display reads it: ready times by transcript ("lat-N").
        let ready: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
        let events = app
            .client
            .get(app.url("/api/walls/wx/events"))
            .send()
            .await
            .expect("events stream");
        assert!(events.status().is_success(), "{}", events.status());
        let seen = ready.clone();
        tokio::spawn(async move {
            let mut body = events.bytes_stream();
            let mut buf = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                let now = Instant::now();
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(at) = buf.find("\n\n") {
                    let frame: String = buf.drain(..at + 2).collect();
                    if !frame.contains("event: message_updated") || !frame.contains("\"ready\"") {
                        continue;
                    }
                    let Some(start) = frame.find("\"transcript\":\"lat-") else { continue };
                    let digits: String = frame[start + 18..]
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    if let Ok(n) = digits.parse() {
                        seen.lock().unwrap().entry(n).or_insert(now);
                    }
                }
            }
        });
        // The player, in process: when the output pulled each voice's first sample (message ids are
        // inbox sequences: mapped back to pushes by transcript).
        let first: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
        let mut hub = app.state.hub.subscribe("wx").unwrap();
        let (playback, found) = (app.state.playback.clone(), first.clone());
        tokio::spawn(async move {
            let mut push_of = HashMap::<String, u64>::new();
            loop {
                match hub.recv().await {
                    Ok(WallEvent::MessageUpdated { message }) | Ok(WallEvent::MessageAdded { message }) => {
                        if let Some(n) = message
                            .transcript
                            .as_deref()
                            .and_then(|t| t.strip_prefix("lat-"))
                            .and_then(|d| d.parse().ok())
                        {
                            push_of.insert(message.id.clone(), n);
                        }
                    }
                    Ok(WallEvent::PlaybackStarted { message_id, .. }) => {
                        let Some(&n) = push_of.get(&message_id) else { continue };
                        let until = Instant::now() + Duration::from_secs(1);
                        while Instant::now() < until {
                            if let Some(at) = playback.first_sample("wx", &message_id) {
                                found.lock().unwrap().insert(n, at);
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break,
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;

        println!(
            "latency bench: {pushes} voice pushes (40 ms AMR, each its own) at {rate}/s through the WeChat webhook, null output; load average {}",
            loadavg()
        );
        let pusher = Pusher::new(TOKEN, None, APP_ID, ORIGINAL_ID);
        let client = reqwest::Client::new();
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
        let mut pushed_at = Vec::new();
        let mut acks = Vec::new();
        for n in 0..pushes {
            tick.tick().await;
            let xml = wechat::voice_xml(
                ORIGINAL_ID,
                &format!("oLatency{:03}", n % 20),
                1_700_000_000,
                &format!("lat-media-{n}"),
                9_000_000_000 + n,
                &format!("lat-{n}"),
            );
            let t = Instant::now();
            let r = pusher
                .deliver(&client, &webhook, &xml, PushMode::Plaintext)
                .await
                .expect("push");
            assert!(r.status().is_success(), "{}", r.status());
            acks.push(t.elapsed());
            pushed_at.push(t);
        }
        // Let the last ones become ready and play.
        let deadline = Instant::now() + Duration::from_secs(30);
        while ready.lock().unwrap().len() < pushes as usize && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;

        let ready = ready.lock().unwrap().clone();
        let to_ready: Vec<Duration> = (0..pushes)
            .filter_map(|n| Some(ready.get(&n)?.duration_since(pushed_at[n as usize])))
            .collect();
        let first = first.lock().unwrap().clone();
        let first_sample: Vec<Duration> = (0..pushes)
            .filter_map(|n| Some(first.get(&n)?.duration_since(pushed_at[n as usize])))
            .collect();
        summary("push → ack (HTTP 200)", acks, pushes as usize);
        summary("push → ready on the wall's stream", to_ready, pushes as usize);
        summary("push → first sample at the null output", first_sample, pushes as usize);
        println!("load average after: {}", loadavg());
        app.stop().await;
    });
}
