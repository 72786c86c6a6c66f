//! The store's resident memory per text message kept (issue 18's soak): what a stream of Telegram texts
//! costs the kiosk's memory once every cache is warm. Each message is stored as the soak's are: accepted
//! (its dedup record holding the push), written as a message (with its by-participant index), then
//! finished (the dedup record cut to its sequence), with a group commit every 50. Prints RSS and the
//! database's size every `STORE_MEMORY_STEP` messages, and the growth per 10,000 messages after the
//! first 40,000 (sled's page cache, 8 MiB, is full long before). Figures, never pass/fail.
//!
//!     cargo bench -p voicewall-core --bench store_memory
//!
//! `STORE_MEMORY_MESSAGES` (default 200000: the soak's hour at 50 pushes/s is 180,000);
//! `STORE_MEMORY_CACHE_MIB` (default: the kiosk's `[storage] cache_bytes`, 8 MiB): sled's page cache.
//! `live_MiB` is the allocator's own count of live allocations (jemalloc's `stats.allocated`): RSS
//! less what the allocator holds free.

use voicewall_core::domain::{Inbound, InboundKind, Message};
use voicewall_core::store::Store;

fn rss_mib() -> f64 {
    let kib: f64 = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// The allocator's live allocations (0 where the kiosk's allocator keeps no statistics).
fn live_mib() -> f64 {
    voicewall_core::metrics::heap_figures().map_or(0.0, |h| h.in_use as f64 / (1024.0 * 1024.0))
}

fn dir_mib(dir: &std::path::Path) -> f64 {
    fn walk(d: &std::path::Path) -> u64 {
        std::fs::read_dir(d)
            .map(|rd| {
                rd.flatten()
                    .map(|e| match e.metadata() {
                        Ok(m) if m.is_dir() => walk(&e.path()),
                        Ok(m) => m.len(),
                        Err(_) => 0,
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    walk(dir) as f64 / (1024.0 * 1024.0)
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // As the kiosk runs: Rust's allocations on jemalloc (lib.rs), glibc's malloc tuned for the rest.
    voicewall_core::startup::tune_allocator();
    let n = env("STORE_MEMORY_MESSAGES", 200_000);
    let step = env("STORE_MEMORY_STEP", 20_000).max(1);
    let tmp = tempfile::tempdir().unwrap();
    let cache = env(
        "STORE_MEMORY_CACHE_MIB",
        voicewall_core::store::CACHE_CAPACITY >> 20,
    ) << 20;
    let store = Store::open_with_cache(tmp.path(), cache).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "store memory bench: {n} Telegram texts of 500 senders on one wall, sled cache {} MiB; load {}",
        cache >> 20,
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    println!(
        "{:>9}  {:>8}  {:>8}  {:>7}",
        "messages", "rss_MiB", "live_MiB", "db_MiB"
    );
    let mut marks = Vec::new();
    for i in 0..n {
        let sender = (1000 + i % 500).to_string();
        let inbound = Inbound {
            wall: "tg".into(),
            provider: voicewall_core::providers::telegram::PROVIDER,
            sender: sender.clone(),
            kind: InboundKind::Text {
                text: format!("soak@1796238364000 #{i}"),
            },
            pushed_at: 1_796_238_364_000 + i,
            received_at: 1_796_238_364_000 + i,
            dedup_key: format!("{}", i + 1),
        };
        let seq = store.accept(&inbound).unwrap().seq();
        let m: Message = serde_json::from_value(serde_json::json!({
            "id": seq.to_string(), "participant_id": format!("telegram:{sender}"),
            "kind": "text", "status": "ready", "error": null,
            "received_at": inbound.received_at, "played_count": 0,
            "text": format!("soak@1796238364000 #{i}"),
        }))
        .unwrap();
        store.put_message("tg", &m).unwrap();
        store.finish_inbox(seq, &inbound).unwrap();
        if i % 50 == 49 {
            rt.block_on(store.durable()).unwrap();
        }
        if (i + 1) % step == 0 {
            let (rss, live, db) = (rss_mib(), live_mib(), dir_mib(&tmp.path().join("db")));
            println!("{:>9}  {rss:>8.1}  {live:>8.1}  {db:>7.1}", i + 1);
            marks.push((i + 1, rss, live));
        }
    }
    // The hourly retention sweep on this wall, nothing old enough to go (the clock stands just after
    // the last message): what it costs, and what reading every message once costs (what it did before
    // it stopped at the first message it keeps).
    let mut wall = voicewall_core::config::Config::builtin().walls.remove(0);
    wall.id = "tg".into();
    let retention = voicewall_core::privacy::retention::Retention::new(
        voicewall_core::privacy::erase::Eraser::new(
            store.clone(),
            voicewall_core::media::Media::new(store.clone(), 60),
            voicewall_core::events::Hub::new(["tg"]),
            std::slice::from_ref(&wall),
        ),
        [&wall],
        voicewall_core::clock::Clock::manual(1_796_238_364_000 + n + 1),
    );
    let (before, t) = (rss_mib(), std::time::Instant::now());
    let swept = retention.sweep().unwrap();
    println!(
        "retention sweep, nothing expired: {:.1} ms, RSS {before:.1} → {:.1} MiB ({} erased)",
        t.elapsed().as_secs_f64() * 1000.0,
        rss_mib(),
        swept.iter().map(|(_, e)| e.messages).sum::<usize>()
    );
    let (before, t) = (rss_mib(), std::time::Instant::now());
    let read = store.iter_messages("tg").filter_map(Result::ok).count();
    println!(
        "reading every message once ({read}): {:.1} ms, RSS {before:.1} → {:.1} MiB",
        t.elapsed().as_secs_f64() * 1000.0,
        rss_mib()
    );
    let from = marks.iter().find(|(m, ..)| *m >= 40_000).copied();
    if let (Some((m0, r0, l0)), Some(&(m1, r1, l1))) = (from, marks.last()) {
        if m1 > m0 {
            let per = |a: f64, b: f64| {
                (
                    (b - a) / ((m1 - m0) as f64 / 10_000.0),
                    (b - a) * 1024.0 * 1024.0 / (m1 - m0) as f64,
                )
            };
            let ((rss10k, rss1), (live10k, live1)) = (per(r0, r1), per(l0, l1));
            println!(
                "after {m0} messages: RSS {r0:.1} → {r1:.1} MiB at {m1}: {rss10k:.2} MiB per 10,000 messages ({rss1:.0} bytes each); live {l0:.1} → {l1:.1} MiB: {live10k:.2} MiB per 10,000 ({live1:.0} bytes each)"
            );
        }
    }
}
