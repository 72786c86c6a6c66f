//! Playback timing through the real pipeline and the null output (which consumes samples in real
//! time): how long a clip takes to play against its duration, how often progress events arrive, and
//! push → playback_started. Prints figures; never fails on timing (the tests assert no timing).
//!
//!     cargo bench -p voicewall-core --bench playback            (PLAYBACK_ROUNDS to change the count)

use std::time::{Duration, Instant};
use voicewall_core::domain::now_ms;
use voicewall_core::events::WallEvent;
use voicewall_testkit::{inbound, TestApp};

fn main() {
    let rounds: usize = std::env::var("PLAYBACK_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let clip = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../tests/fixtures/audio/hello.amr"
    ))
    .expect("tests/fixtures/audio/hello.amr");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let app = TestApp::spawn("").await;
        let mut rx = app.state.hub.subscribe("main").unwrap();
        println!("playback bench: {rounds} plays of hello.amr on the null output");
        for round in 0..rounds {
            let key = app.state.store.put_media(&clip, "audio/amr").unwrap();
            let pushed = Instant::now();
            let inbound = inbound::cached_voice(
                "main",
                &format!("bench-{round}"),
                &key,
                &format!("bench-{round}-{}", now_ms()),
            );
            app.state.accept(&inbound).await.unwrap();
            let (mut started, mut duration, mut progress) = (None, 0u64, 0u32);
            loop {
                let ev = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                    .await
                    .expect("an event within 30 s")
                    .expect("event");
                match ev {
                    WallEvent::PlaybackStarted { duration_ms, .. } => {
                        started = Some(Instant::now());
                        duration = duration_ms;
                    }
                    WallEvent::PlaybackProgress { .. } if started.is_some() => progress += 1,
                    WallEvent::PlaybackFinished { outcome, .. } if started.is_some() => {
                        let s = started.unwrap();
                        let played = s.elapsed();
                        println!(
                            "round {round}: push → playback_started {:>6.1} ms; played {duration} ms of audio in {:>6.0} ms ({outcome}); progress {progress} events = {:.1} Hz",
                            (s - pushed).as_secs_f64() * 1000.0,
                            played.as_secs_f64() * 1000.0,
                            f64::from(progress) / played.as_secs_f64()
                        );
                        break;
                    }
                    _ => {}
                }
            }
        }
        app.stop().await;
    });
}
