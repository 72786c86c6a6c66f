//! The clock, passed in rather than read inside logic: `Clock::system()` in the product, and
//! `Clock::manual(start)` in tests, which only moves when the test says so (token rotation, rate
//! windows, timestamps — deterministic, no sleeps).

use crate::domain::Millis;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Wall-clock time in milliseconds since the Unix epoch. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Clock(Source);

#[derive(Clone, Debug)]
enum Source {
    System,
    Manual(Arc<AtomicU64>),
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl Clock {
    /// The machine's clock.
    pub fn system() -> Self {
        Self(Source::System)
    }

    /// A clock that stands still at `start_ms` until `set` or `advance` moves it (tests).
    pub fn manual(start_ms: Millis) -> Self {
        Self(Source::Manual(Arc::new(AtomicU64::new(start_ms))))
    }

    pub fn now_ms(&self) -> Millis {
        match &self.0 {
            Source::System => crate::domain::now_ms(),
            Source::Manual(t) => t.load(Ordering::SeqCst),
        }
    }

    pub fn now_s(&self) -> u64 {
        self.now_ms() / 1000
    }

    /// Move a manual clock forward (no effect on the system clock).
    pub fn advance(&self, ms: Millis) {
        if let Source::Manual(t) = &self.0 {
            t.fetch_add(ms, Ordering::SeqCst);
        }
    }

    /// Set a manual clock (no effect on the system clock).
    pub fn set(&self, ms: Millis) {
        if let Source::Manual(t) = &self.0 {
            t.store(ms, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Clock;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_its_clones_follow() {
        let c = Clock::manual(5_000);
        let seen_by_other = c.clone();
        assert_eq!(c.now_ms(), 5_000);
        c.advance(1_500);
        assert_eq!(seen_by_other.now_ms(), 6_500);
        assert_eq!(seen_by_other.now_s(), 6);
        c.set(10);
        assert_eq!(seen_by_other.now_ms(), 10);
    }

    #[test]
    fn the_system_clock_is_past_2020() {
        assert!(Clock::system().now_ms() > 1_577_836_800_000);
    }
}
