//! Counters for `GET /metrics` (Prometheus text format).

use crate::domain::Provider;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub struct Metrics {
    started: std::time::Instant,
    /// Accepted pushes, one counter per platform it was made for (`for_platforms`), in that order.
    accepted: Vec<(Provider, AtomicU64)>,
    duplicates: AtomicU64,
    rejected: AtomicU64,
    fetch_failed: AtomicU64,
    ready: AtomicU64,
    played: AtomicU64,
}

impl Metrics {
    /// Counters at zero, with a per-platform one for each of `platforms` (the registry's:
    /// `providers::PLATFORMS`; pushes of any other platform are not counted).
    pub fn for_platforms(platforms: impl IntoIterator<Item = Provider>) -> Self {
        let zero = || AtomicU64::new(0);
        Self {
            started: std::time::Instant::now(),
            accepted: platforms.into_iter().map(|p| (p, zero())).collect(),
            duplicates: zero(),
            rejected: zero(),
            fetch_failed: zero(),
            ready: zero(),
            played: zero(),
        }
    }

    /// Seconds since these counters were made (at start).
    pub fn uptime_s(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    pub fn inc_accepted(&self, p: Provider) {
        if let Some((_, c)) = self.accepted.iter().find(|(x, _)| *x == p) {
            c.fetch_add(1, Relaxed);
        }
    }
    pub fn inc_duplicate(&self) {
        self.duplicates.fetch_add(1, Relaxed);
    }
    pub fn inc_rejected(&self) {
        self.rejected.fetch_add(1, Relaxed);
    }
    pub fn inc_fetch_failed(&self) {
        self.fetch_failed.fetch_add(1, Relaxed);
    }
    pub fn inc_ready(&self) {
        self.ready.fetch_add(1, Relaxed);
    }
    pub fn inc_played(&self) {
        self.played.fetch_add(1, Relaxed);
    }

    /// `corrupt`: corrupt records met since start, by tree (`Store::corrupt_counts`).
    pub fn render(
        &self,
        inbox_len: usize,
        disk_bytes: u64,
        uptime_s: u64,
        corrupt: &[(String, u64)],
    ) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# HELP voicewall_pushes_accepted_total Pushes durably accepted.\n# TYPE voicewall_pushes_accepted_total counter");
        for (p, c) in &self.accepted {
            let _ = writeln!(
                s,
                "voicewall_pushes_accepted_total{{provider=\"{p}\"}} {}",
                c.load(Relaxed)
            );
        }
        for (name, help, c) in [
            (
                "voicewall_pushes_duplicate_total",
                "Platform retries answered from the dedup table.",
                &self.duplicates,
            ),
            (
                "voicewall_requests_rejected_total",
                "Webhook and upload requests refused as bad input.",
                &self.rejected,
            ),
            (
                "voicewall_messages_failed_total",
                "Messages whose media could not be fetched or decoded.",
                &self.fetch_failed,
            ),
            (
                "voicewall_messages_ready_total",
                "Messages fetched and decoded.",
                &self.ready,
            ),
            (
                "voicewall_playbacks_total",
                "Messages played on the kiosk.",
                &self.played,
            ),
        ] {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                c.load(Relaxed)
            );
        }
        let _ = writeln!(s, "# HELP voicewall_corrupt_records_total Stored records that could not be read, moved to quarantine.\n# TYPE voicewall_corrupt_records_total counter");
        for (tree, n) in corrupt {
            let _ = writeln!(s, "voicewall_corrupt_records_total{{tree=\"{tree}\"}} {n}");
        }
        let _ = writeln!(s, "# HELP voicewall_inbox_pending Accepted pushes not yet processed.\n# TYPE voicewall_inbox_pending gauge\nvoicewall_inbox_pending {inbox_len}");
        let _ = writeln!(s, "# HELP voicewall_store_bytes Size of the store on disk.\n# TYPE voicewall_store_bytes gauge\nvoicewall_store_bytes {disk_bytes}");
        if let Some(h) = heap_figures() {
            for (name, help, v) in [
                ("voicewall_heap_in_use_bytes", "Bytes the kiosk's live Rust allocations use (jemalloc's stats.allocated; the C libraries' glibc heap is not counted).", h.in_use),
                ("voicewall_heap_free_bytes", "Bytes jemalloc keeps resident beyond live allocations (stats.resident less stats.allocated): freed pages not yet returned, fragmentation and jemalloc's own metadata.", h.resident.saturating_sub(h.in_use)),
            ] {
                let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
            }
        }
        let _ = writeln!(s, "# HELP voicewall_uptime_seconds Seconds since start.\n# TYPE voicewall_uptime_seconds gauge\nvoicewall_uptime_seconds {uptime_s}");
        s
    }
}

/// The allocator's own figures (jemalloc's statistics), for `/metrics`: what live allocations use,
/// and what it keeps resident beyond that (freed memory not yet returned: the part of RSS a long run
/// gains by fragmentation, not by data). None where the kiosk does not use jemalloc.
#[derive(Clone, Copy, Debug)]
pub struct HeapFigures {
    pub in_use: u64,
    pub resident: u64,
}

pub fn heap_figures() -> Option<HeapFigures> {
    #[cfg(all(target_os = "linux", not(fuzzing)))]
    {
        use tikv_jemalloc_ctl::{epoch, stats};
        // The statistics are a snapshot taken at the last epoch.
        epoch::advance().ok()?;
        Some(HeapFigures {
            in_use: stats::allocated::read().ok()? as u64,
            resident: stats::resident::read().ok()? as u64,
        })
    }
    #[cfg(not(all(target_os = "linux", not(fuzzing))))]
    None
}
