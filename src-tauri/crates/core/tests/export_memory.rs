//! An export reads every voice once and must not keep them (blobs are files, read one at a time; when
//! they were in sled, its page cache kept what a one-pass read touched). Its own test binary, one test: the process's resident
//! memory is the figure. (Time and the figures at 10,000 voices: `cargo bench --bench export`.)

use voicewall_core::domain::{MediaKey, Message};
use voicewall_core::store::Store;

const VOICES: usize = 10_000;
const VOICE_BYTES: usize = 8 * 1024;
/// A page cache far smaller than the audio, so keeping it shows.
const CACHE: u64 = 2 * 1024 * 1024;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn an_export_of_78_mib_of_voices_does_not_keep_them_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open_with_cache(dir.path(), CACHE).unwrap();
        for i in 0..VOICES {
            // Distinct, incompressible-looking bytes: one blob each.
            let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let bytes: Vec<u8> = (0..VOICE_BYTES)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let key: MediaKey = store.put_media(&bytes, "audio/ogg").unwrap();
            let m: Message = serde_json::from_value(serde_json::json!({
                "id": (i + 1).to_string(), "participant_id": "web:guest", "kind": "voice",
                "status": "ready", "error": null, "duration_ms": 2000,
                "received_at": 1_796_238_364_000u64 + i as u64, "played_count": 1,
                "transcript": null, "media_url": format!("/media/{key}"),
            }))
            .unwrap();
            store.put_message("main", &m).unwrap();
        }
        store.flush().unwrap();
    }
    // Reopened: nothing of the audio is in the cache yet.
    let store = Store::open_with_cache(dir.path(), CACHE).unwrap();
    let before = rss_kib();
    let done =
        voicewall_core::privacy::export::write_archive(&store, "main", 0, std::io::sink()).unwrap();
    let grown_mib = rss_kib().saturating_sub(before) as f64 / 1024.0;
    let audio_mib = (VOICES * VOICE_BYTES) as f64 / (1024.0 * 1024.0);
    eprintln!(
        "exported {} voices ({audio_mib:.0} MiB): resident memory grew {grown_mib:.1} MiB",
        done.messages
    );
    assert_eq!(done.messages, VOICES);
    // Measured here with the blobs in sled: reading with `Store::media` it grew 32 MiB (red); touching
    // each blob's pages to let sled's cache evict, 3 MiB. Blobs as files: see the note of stop 28.
    assert!(
        grown_mib < audio_mib / 8.0,
        "the export kept {grown_mib:.1} MiB of {audio_mib:.0} MiB of audio in memory"
    );
}
