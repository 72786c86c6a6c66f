//! A wall's export at 10,000 messages: time and peak memory of writing the zip, in process to a file
//! (`privacy::export::write_archive`, what `voicewall export` runs) and over HTTP
//! (`GET /api/admin/walls/main/export`, read as a stream). Prints figures; never fails on timing.
//!
//!     cargo bench -p voicewall-core --bench export
//!
//! `EXPORT_MESSAGES` changes the count (default 10000). `EXPORT_KEEP=DIR` seeds DIR instead of a temp
//! dir and keeps it with a `voicewall.toml`, so the CLI can be measured on the same data:
//! `/usr/bin/time -v target/debug/voicewall --config DIR/voicewall.toml export --wall main --out x.zip`.
//!
//! Peak RSS is `VmHWM` of /proc/self/status, reset (`5` into /proc/self/clear_refs) after seeding, so
//! it is the export's own peak (sled's page cache, bounded at 64 MiB by the store, included).

use std::path::{Path, PathBuf};
use std::time::Instant;
use voicewall_core::domain::{MediaKey, Message, Participant};
use voicewall_core::store::Store;
use voicewall_testkit::TestApp;

const TOKEN: &str = "bench-token";
const PEOPLE: usize = 1000;

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Reset the peak RSS to the current RSS (Linux ≥ 4.0).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// `n` ready voices of `PEOPLE` people on wall "main", each a distinct blob (the fixture + its index).
fn seed(data: &Path, n: usize) -> u64 {
    let clip = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../tests/fixtures/audio/hello.ogg"
    ))
    .expect("tests/fixtures/audio/hello.ogg");
    let store = Store::open(data).unwrap();
    for i in 0..PEOPLE.min(n) {
        let id = format!("web:guest{i}");
        store
            .put_participant(
                "main",
                &Participant {
                    id: id.clone(),
                    person_id: id,
                    display_name: format!("Guest {i}"),
                    avatar: MediaKey::of(b"avatar"),
                    thumb: None,
                    provider: voicewall_core::providers::web::PROVIDER,
                    joined_at: 1_796_238_364_000,
                    has_profile: true,
                },
            )
            .unwrap();
    }
    let mut audio = 0u64;
    for i in 0..n {
        let mut bytes = clip.clone();
        bytes.extend_from_slice(&(i as u64).to_be_bytes());
        audio += bytes.len() as u64;
        let key = store.put_media(&bytes, "audio/ogg").unwrap();
        let m: Message = serde_json::from_value(serde_json::json!({
            "id": (i + 1).to_string(), "participant_id": format!("web:guest{}", i % PEOPLE),
            "kind": "voice", "status": "ready", "error": null, "duration_ms": 2300,
            "received_at": 1_796_238_364_000u64 + i as u64 * 1000, "played_count": 1,
            "transcript": format!("message {i}, said aloud"), "media_url": format!("/media/{key}"),
        }))
        .unwrap();
        store.put_message("main", &m).unwrap();
    }
    store.flush().unwrap();
    audio
}

fn main() {
    let n: usize = std::env::var("EXPORT_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = std::env::var_os("EXPORT_KEEP")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let started = Instant::now();
    let audio = seed(&data, n);
    println!(
        "export bench: {n} voices of {PEOPLE} people, {:.1} MiB of audio (seeded in {:.1} s)",
        mib(audio),
        started.elapsed().as_secs_f64()
    );

    // In process, to a file: what `voicewall export` does.
    {
        let store = Store::open(&data).unwrap();
        let out = dir.join("bench-export.zip");
        reset_peak();
        let before = status_kb("VmRSS:");
        let t = Instant::now();
        let file = std::io::BufWriter::new(std::fs::File::create(&out).unwrap());
        let done = voicewall_core::privacy::export::write_archive(&store, "main", 0, file).unwrap();
        let secs = t.elapsed().as_secs_f64();
        let size = std::fs::metadata(&out).unwrap().len();
        let peak = status_kb("VmHWM:");
        println!(
            "  to a file:  {} voices, zip {:.1} MiB in {secs:.2} s ({:.0} MiB/s); RSS before {:.1} MiB, peak {:.1} MiB (+{:.1} MiB)",
            done.messages,
            mib(size),
            mib(size) / secs,
            before as f64 / 1024.0,
            peak as f64 / 1024.0,
            peak.saturating_sub(before) as f64 / 1024.0
        );
        std::fs::remove_file(&out).unwrap();
    }

    // Over HTTP: the app on the same data, the archive read as a stream and counted, never kept.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let app = TestApp::spawn_in(
            &data,
            &format!("[admin]\ntoken = \"{TOKEN}\"\n"),
            Default::default(),
        )
        .await;
        // Let the start-up settle (the player queues nothing: every voice was played once).
        app.wait_inbox_drained().await;
        reset_peak();
        let before = status_kb("VmRSS:");
        let t = Instant::now();
        let mut r = app
            .client
            .get(app.url("/api/admin/walls/main/export"))
            .bearer_auth(TOKEN)
            .timeout(std::time::Duration::from_secs(600))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let (mut size, mut chunks) = (0u64, 0u64);
        while let Some(chunk) = r.chunk().await.unwrap() {
            size += chunk.len() as u64;
            chunks += 1;
        }
        let secs = t.elapsed().as_secs_f64();
        let peak = status_kb("VmHWM:");
        println!(
            "  over HTTP:  zip {:.1} MiB in {chunks} chunks in {secs:.2} s ({:.0} MiB/s); RSS before {:.1} MiB, peak {:.1} MiB (+{:.1} MiB)",
            mib(size),
            mib(size) / secs,
            before as f64 / 1024.0,
            peak as f64 / 1024.0,
            peak.saturating_sub(before) as f64 / 1024.0
        );
        app.stop().await;
    });
    if std::env::var_os("EXPORT_KEEP").is_some() {
        let cfg = dir.join("voicewall.toml");
        std::fs::write(
            &cfg,
            format!(
                "[storage]\ndata_dir = {:?}\n[audio]\noutput = \"null\"\n",
                data.display().to_string()
            ),
        )
        .unwrap();
        println!("  kept: {} (config {})", dir.display(), cfg.display());
    }
}
