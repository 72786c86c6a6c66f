//! The nonce cache: a signed `(timestamp, nonce)` names one push. In plaintext mode the URL signature
//! does not cover the body, so whoever saw one push URL could post any XML under it while the
//! timestamp is fresh (5 minutes). Each pair is bound to the digest of the first body it carried: the
//! same body again is a retry (the inbox's dedup makes it one message), another body is a replay.

use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Pairs kept at most; past this the oldest go first (a push rate far above any venue's).
const MAX_ENTRIES: usize = 200_000;

#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// First time, or the same body again (a retry).
    Fresh,
    /// The pair already carried another body.
    Replayed,
}

#[derive(Default)]
pub struct NonceCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    bodies: HashMap<(u64, String), [u8; 32]>,
    /// Insertion order, for expiry (timestamps of a fresh push are within the window of now).
    order: VecDeque<(u64, String)>,
}

impl NonceCache {
    /// Record `(timestamp, nonce)` → `body`; pairs older than `oldest_s` are forgotten first (they are
    /// refused as stale before they get here).
    pub fn check(&self, timestamp: u64, nonce: &str, body: &[u8], oldest_s: u64) -> Seen {
        let digest: [u8; 32] = Sha256::digest(body).into();
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Inner { bodies, order } = &mut *g;
        while let Some(front) = order.front() {
            if front.0 >= oldest_s && order.len() < MAX_ENTRIES {
                break;
            }
            let k = order.pop_front().expect("front exists");
            bodies.remove(&k);
        }
        let key = (timestamp, nonce.to_string());
        match bodies.get(&key) {
            Some(d) if crate::secret::same(d, &digest) => Seen::Fresh,
            Some(_) => Seen::Replayed,
            None => {
                bodies.insert(key.clone(), digest);
                order.push_back(key);
                Seen::Fresh
            }
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map(|g| g.bodies.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_is_bound_to_its_first_body() {
        let c = NonceCache::default();
        assert_eq!(c.check(1000, "n1", b"<xml>a</xml>", 700), Seen::Fresh);
        assert_eq!(c.check(1000, "n1", b"<xml>a</xml>", 700), Seen::Fresh);
        assert_eq!(c.check(1000, "n1", b"<xml>b</xml>", 700), Seen::Replayed);
        assert_eq!(c.check(1000, "n2", b"<xml>b</xml>", 700), Seen::Fresh);
        assert_eq!(c.check(1001, "n1", b"<xml>b</xml>", 700), Seen::Fresh);
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn stale_pairs_are_forgotten() {
        let c = NonceCache::default();
        c.check(1000, "n1", b"a", 700);
        c.check(1500, "n2", b"a", 700);
        // The window moved past 1000: that pair is gone (such a push is refused as stale anyway).
        assert_eq!(c.check(1600, "n3", b"a", 1200), Seen::Fresh);
        assert_eq!(c.len(), 2);
    }
}
