//! Sliding one-minute windows of upload attempts, per device and per client network, so one phone
//! (or one crowded Wi-Fi) cannot flood the wall.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// A window was full.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("window {window} is full for {wait_s} s")]
pub struct Full {
    /// The index of the full window in the list asked for.
    pub window: usize,
    /// Seconds until it has a free slot again.
    pub wait_s: u64,
}

#[derive(Default)]
pub struct RateLimits {
    hits: Mutex<HashMap<String, VecDeque<u64>>>,
}

impl RateLimits {
    /// Take one slot of `limit` per minute for `key` at `now_ms`; `Err(seconds to wait)` when full.
    pub fn try_take(&self, key: &str, limit: u32, now_ms: u64) -> Result<(), u64> {
        self.try_take_all(&[(key, limit)], now_ms)
            .map_err(|full| full.wait_s)
    }

    /// Take a slot in each window at once, or in none: `Err` names the full window.
    /// A refused attempt costs nothing, so one phone over its own limit does not eat its network's.
    pub fn try_take_all(&self, windows: &[(&str, u32)], now_ms: u64) -> Result<(), Full> {
        let mut hits = self.hits.lock().unwrap_or_else(|e| e.into_inner());
        if hits.len() > 10_000 {
            hits.retain(|_, q| q.back().is_some_and(|t| now_ms.saturating_sub(*t) < 60_000));
        }
        for (i, (key, limit)) in windows.iter().enumerate() {
            let q = hits.entry(key.to_string()).or_default();
            while q
                .front()
                .is_some_and(|t| now_ms.saturating_sub(*t) >= 60_000)
            {
                q.pop_front();
            }
            if q.len() >= *limit as usize {
                let oldest = q.front().copied().unwrap_or(now_ms);
                let wait = (60_000 - now_ms.saturating_sub(oldest))
                    .div_ceil(1000)
                    .max(1);
                return Err(Full {
                    window: i,
                    wait_s: wait,
                });
            }
        }
        for (key, _) in windows {
            hits.entry(key.to_string()).or_default().push_back(now_ms);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_slide_over_a_minute() {
        let r = RateLimits::default();
        assert!(r.try_take("k", 2, 1_000).is_ok());
        assert!(r.try_take("k", 2, 2_000).is_ok());
        assert_eq!(r.try_take("k", 2, 3_000), Err(58));
        assert!(r.try_take("other", 2, 3_000).is_ok());
        assert!(
            r.try_take("k", 2, 61_000).is_ok(),
            "the first hit left the window"
        );
    }

    #[test]
    fn a_refused_attempt_takes_no_slot_in_the_other_window() {
        let r = RateLimits::default();
        assert!(r.try_take_all(&[("dev", 1), ("ip", 2)], 0).is_ok());
        assert_eq!(
            r.try_take_all(&[("dev", 1), ("ip", 2)], 1),
            Err(Full {
                window: 0,
                wait_s: 60
            })
        );
        assert!(
            r.try_take_all(&[("dev2", 1), ("ip", 2)], 2).is_ok(),
            "ip still had a slot"
        );
        assert_eq!(
            r.try_take_all(&[("dev3", 1), ("ip", 2)], 3),
            Err(Full {
                window: 1,
                wait_s: 60
            })
        );
    }
}
