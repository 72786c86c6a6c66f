//! The credentials the server hands out, and how it recognises them again: operator sessions (from the
//! admin token, `vw_session`), display credentials (`vw_display`: a kiosk window or a browser display of
//! one wall), and the one-time display links exchanged for the latter.
//!
//! Only a SHA-256 of each session and display secret is stored (in sled's `meta` tree, so a restart
//! keeps the operator signed in and the displays open); a leaked database names no valid cookie.
//! Sessions expire after `SESSION_IDLE_MS` without a request. One-time links live in memory for
//! `LINK_TTL_MS` and work once. Ended and idle sessions, and displays older than `DISPLAY_TTL_MS` or
//! replaced by a newer kiosk window, are deleted from `meta` (`prune`: at login, logout and every
//! `PRUNE_EVERY`).
//!
//! Failed logins are counted per client address (`LoginThrottle`): after `LOGIN_FAILURES` in a minute,
//! every login from that address is refused until the oldest failure is a minute old.

use crate::clock::Clock;
use crate::domain::Millis;
use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// A session ends after this long without a request (12 h).
pub const SESSION_IDLE_MS: Millis = 12 * 3600 * 1000;
/// A one-time display link works for this long (10 min).
pub const LINK_TTL_MS: Millis = 10 * 60 * 1000;
/// A display credential lasts a season (the kiosk gets a fresh one at every start): 400 days.
pub const DISPLAY_TTL_MS: Millis = 400 * 86_400 * 1000;
/// How often the sweeper prunes `meta` of ended sessions and old displays.
pub const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// Failed logins allowed per client address per minute; the next attempt is refused (429).
pub const LOGIN_FAILURES: usize = 5;
const MINUTE_MS: Millis = 60 * 1000;
/// The last-seen time of a session is written at most this often (not on every request).
const TOUCH_EVERY_MS: Millis = 60 * 1000;

/// What a display credential may show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DisplayScope {
    /// The kiosk's own window (from the shell at start): every wall, and the operator overlay.
    Kiosk,
    /// A browser display opened from the console: that one wall.
    Wall(String),
}

impl DisplayScope {
    /// May this credential show wall `wall`?
    pub fn shows(&self, wall: &str) -> bool {
        match self {
            DisplayScope::Kiosk => true,
            DisplayScope::Wall(w) => w == wall,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct SessionRecord {
    /// The session's public name in the audit log (never the secret).
    actor: String,
    last_seen_ms: Millis,
}

#[derive(Serialize, Deserialize)]
struct DisplayRecord {
    scope: DisplayScope,
    created_ms: Millis,
}

/// A one-time link not yet used: where it leads, and until when.
struct PendingLink {
    scope: DisplayScope,
    /// The wall the link opens.
    wall: String,
    expires_ms: Millis,
}

/// Sessions, displays and one-time links. Cheap to clone.
#[derive(Clone)]
pub struct Credentials {
    store: Store,
    clock: Clock,
    links: Arc<Mutex<HashMap<String, PendingLink>>>,
    /// Failed logins per client address.
    pub throttle: LoginThrottle,
}

/// What `prune` deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub sessions: usize,
    pub displays: usize,
    pub links: usize,
}

/// Failed logins in the last minute, per client address. Cheap to clone.
#[derive(Clone)]
pub struct LoginThrottle {
    clock: Clock,
    failures: Arc<Mutex<HashMap<IpAddr, VecDeque<Millis>>>>,
}

impl LoginThrottle {
    fn new(clock: Clock) -> Self {
        Self {
            clock,
            failures: Arc::default(),
        }
    }

    /// `Err(seconds to wait)` when `client` failed `LOGIN_FAILURES` times in the last minute.
    pub fn check(&self, client: IpAddr) -> Result<(), u64> {
        let now = self.clock.now_ms();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.retain(|_, q| {
            while q
                .front()
                .is_some_and(|t| now.saturating_sub(*t) >= MINUTE_MS)
            {
                q.pop_front();
            }
            !q.is_empty()
        });
        match failures.get(&client) {
            Some(q) if q.len() >= LOGIN_FAILURES => {
                let oldest = q.front().copied().unwrap_or(now);
                Err((MINUTE_MS - now.saturating_sub(oldest))
                    .div_ceil(1000)
                    .max(1))
            }
            _ => Ok(()),
        }
    }

    /// Count one failed login of `client`.
    pub fn failed(&self, client: IpAddr) {
        let now = self.clock.now_ms();
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(client)
            .or_default()
            .push_back(now);
    }
}

/// Set at the first operator sign-in, never cleared (see [`Credentials::signed_in_once`]).
const SIGNED_IN_ONCE: &str = "operator_signed_in_once";

/// The stored name of a secret: its SHA-256 in hex.
fn digest(secret: &str) -> String {
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

const SESSION_PREFIX: &str = "session/";
const DISPLAY_PREFIX: &str = "display/";

impl Credentials {
    pub fn new(store: Store, clock: Clock) -> Self {
        Self {
            store,
            throttle: LoginThrottle::new(clock.clone()),
            clock,
            links: Arc::default(),
        }
    }

    /// Delete ended and idle sessions, displays older than `DISPLAY_TTL_MS`, and expired one-time links.
    pub fn prune(&self) -> Result<Pruned, StoreError> {
        let now = self.clock.now_ms();
        let mut pruned = Pruned::default();
        for (key, value) in self.store.meta_with_prefix(SESSION_PREFIX)? {
            // (an empty value is a logged-out session of an older version)
            let live = serde_json::from_str::<SessionRecord>(&value)
                .is_ok_and(|r| now.saturating_sub(r.last_seen_ms) <= SESSION_IDLE_MS);
            if !live {
                self.store.meta_remove(&key)?;
                pruned.sessions += 1;
            }
        }
        for (key, value) in self.store.meta_with_prefix(DISPLAY_PREFIX)? {
            let live = serde_json::from_str::<DisplayRecord>(&value)
                .is_ok_and(|r| now.saturating_sub(r.created_ms) <= DISPLAY_TTL_MS);
            if !live {
                self.store.meta_remove(&key)?;
                pruned.displays += 1;
            }
        }
        let mut links = self.links.lock().expect("links lock");
        let before = links.len();
        links.retain(|_, l| l.expires_ms > now);
        pruned.links = before - links.len();
        Ok(pruned)
    }

    /// Prune every `PRUNE_EVERY` until the app stops (the task is aborted).
    pub async fn run_pruner(self) {
        loop {
            match self.prune() {
                Ok(p) if p != Pruned::default() => {
                    tracing::info!(
                        sessions = p.sessions,
                        displays = p.displays,
                        links = p.links,
                        "pruned ended credentials"
                    )
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "cannot prune ended credentials; retrying later")
                }
            }
            tokio::time::sleep(PRUNE_EVERY).await;
        }
    }

    /// Has an operator ever signed in to the console (a session opened, on this data dir)? The kiosk's
    /// first-run setup panel shows until then.
    pub fn signed_in_once(&self) -> bool {
        matches!(self.store.meta_get(SIGNED_IN_ONCE), Ok(Some(_)))
    }

    /// A new operator session: its secret (the cookie value) and its actor name for the audit log.
    pub fn open_session(&self) -> Result<(String, String), StoreError> {
        let secret = crate::random::token(32);
        let key = digest(&secret);
        let actor = format!("session:{}", &key[..8]);
        let record = SessionRecord {
            actor: actor.clone(),
            last_seen_ms: self.clock.now_ms(),
        };
        self.store.meta_put(
            &format!("session/{key}"),
            &serde_json::to_string(&record).expect("serialises"),
        )?;
        self.store.meta_put(SIGNED_IN_ONCE, "1")?;
        Ok((secret, actor))
    }

    /// The actor of a live session, touching its idle timer; `None` when unknown, ended or idle too long.
    pub fn session(&self, secret: &str) -> Option<String> {
        let name = format!("session/{}", digest(secret));
        let stored = self.store.meta_get(&name).ok().flatten()?;
        let mut record: SessionRecord = serde_json::from_str(&stored).ok()?;
        let now = self.clock.now_ms();
        if now.saturating_sub(record.last_seen_ms) > SESSION_IDLE_MS {
            let _ = self.store.meta_remove(&name);
            return None;
        }
        if now.saturating_sub(record.last_seen_ms) > TOUCH_EVERY_MS {
            record.last_seen_ms = now;
            if let Err(e) = self
                .store
                .meta_put(&name, &serde_json::to_string(&record).expect("serialises"))
            {
                tracing::warn!(error = %e, "cannot record the session's activity");
            }
        }
        Some(record.actor)
    }

    /// End a session (logout): its record is deleted, and so are other ended ones. Returns the
    /// session's actor, `None` for an unknown secret.
    pub fn close_session(&self, secret: &str) -> Result<Option<String>, StoreError> {
        let name = format!("session/{}", digest(secret));
        let actor = self
            .store
            .meta_get(&name)?
            .and_then(|v| serde_json::from_str::<SessionRecord>(&v).ok())
            .map(|r| r.actor);
        self.store.meta_remove(&name)?;
        self.prune()?;
        Ok(actor)
    }

    /// A one-time link code that opens `wall` with `scope`; valid once, for `LINK_TTL_MS`.
    pub fn display_link(&self, wall: &str, scope: DisplayScope) -> String {
        let code = crate::random::token(32);
        let now = self.clock.now_ms();
        let mut links = self.links.lock().expect("links lock");
        links.retain(|_, l| l.expires_ms > now);
        links.insert(
            digest(&code),
            PendingLink {
                scope,
                wall: wall.to_string(),
                expires_ms: now + LINK_TTL_MS,
            },
        );
        code
    }

    /// Exchange a one-time code for a display credential: `(secret, wall to open)`. `Ok(None)` when the
    /// code is unknown, used or expired.
    pub fn redeem(&self, code: &str) -> Result<Option<(String, String)>, StoreError> {
        let now = self.clock.now_ms();
        let link = self.links.lock().expect("links lock").remove(&digest(code));
        let Some(link) = link.filter(|l| l.expires_ms > now) else {
            return Ok(None);
        };
        if link.scope == DisplayScope::Kiosk {
            // The kiosk window gets a fresh credential at every start: the older ones are no one's.
            for (key, value) in self.store.meta_with_prefix(DISPLAY_PREFIX)? {
                if serde_json::from_str::<DisplayRecord>(&value)
                    .is_ok_and(|r| r.scope == DisplayScope::Kiosk)
                {
                    self.store.meta_remove(&key)?;
                }
            }
        }
        let secret = crate::random::token(32);
        let record = DisplayRecord {
            scope: link.scope,
            created_ms: now,
        };
        self.store.meta_put(
            &format!("display/{}", digest(&secret)),
            &serde_json::to_string(&record).expect("serialises"),
        )?;
        Ok(Some((secret, link.wall)))
    }

    /// What a display credential may show, if it is one.
    pub fn display(&self, secret: &str) -> Option<DisplayScope> {
        let stored = self
            .store
            .meta_get(&format!("display/{}", digest(secret)))
            .ok()
            .flatten()?;
        serde_json::from_str::<DisplayRecord>(&stored)
            .ok()
            .filter(|r| self.clock.now_ms().saturating_sub(r.created_ms) <= DISPLAY_TTL_MS)
            .map(|r| r.scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials() -> (Credentials, Clock, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let clock = Clock::manual(1_000_000);
        (Credentials::new(store, clock.clone()), clock, dir)
    }

    #[test]
    fn a_session_lives_while_used_and_ends_after_twelve_idle_hours() {
        let (c, clock, _dir) = credentials();
        let (secret, actor) = c.open_session().unwrap();
        assert_eq!(c.session(&secret).as_deref(), Some(actor.as_str()));
        // Used every 11 h: still alive after 33 h.
        for _ in 0..3 {
            clock.advance(11 * 3600 * 1000);
            assert!(c.session(&secret).is_some());
        }
        clock.advance(SESSION_IDLE_MS + 1);
        assert_eq!(c.session(&secret), None, "idle too long");
        assert_eq!(c.session("not-a-session"), None);
    }

    #[test]
    fn a_closed_session_is_gone_and_only_digests_are_stored() {
        let (c, _clock, _dir) = credentials();
        let (secret, _) = c.open_session().unwrap();
        assert!(c
            .store
            .meta_get(&format!("session/{}", digest(&secret)))
            .unwrap()
            .is_some_and(|v| !v.contains(&secret)));
        c.close_session(&secret).unwrap();
        assert_eq!(c.session(&secret), None);
    }

    fn meta_keys(c: &Credentials) -> Vec<String> {
        let mut keys: Vec<String> = ["session/", "display/"]
            .iter()
            .flat_map(|p| c.store.meta_with_prefix(p).unwrap())
            .map(|(k, _)| k)
            .collect();
        keys.sort();
        keys
    }

    #[test]
    fn ended_sessions_and_old_displays_are_deleted_from_meta() {
        let (c, clock, _dir) = credentials();
        let (out, _) = c.open_session().unwrap();
        let (idle, _) = c.open_session().unwrap();
        let (kept, _) = c.open_session().unwrap();
        // An older version's tombstone of a logged-out session.
        c.store.meta_put("session/0000", "").unwrap();
        let old_kiosk = c
            .redeem(&c.display_link("main", DisplayScope::Kiosk))
            .unwrap()
            .unwrap()
            .0;
        let old_wall = c
            .redeem(&c.display_link("main", DisplayScope::Wall("main".into())))
            .unwrap()
            .unwrap()
            .0;
        assert_eq!(meta_keys(&c).len(), 6);
        // The kiosk restarts: its new credential replaces the old one.
        let kiosk = c
            .redeem(&c.display_link("main", DisplayScope::Kiosk))
            .unwrap()
            .unwrap()
            .0;
        assert_eq!(c.display(&old_kiosk), None);
        assert_eq!(c.display(&kiosk), Some(DisplayScope::Kiosk));
        clock.advance(SESSION_IDLE_MS - 1000);
        assert!(c.session(&kept).is_some());
        clock.advance(2000);
        let unused = c.display_link("main", DisplayScope::Kiosk);
        clock.advance(LINK_TTL_MS + 1);
        // Logout deletes its own record and prunes the idle one and the tombstone.
        c.close_session(&out).unwrap();
        assert_eq!(
            meta_keys(&c),
            {
                let mut k = vec![
                    format!("session/{}", digest(&kept)),
                    format!("display/{}", digest(&old_wall)),
                    format!("display/{}", digest(&kiosk)),
                ];
                k.sort();
                k
            },
            "left: the live session and the two live displays"
        );
        assert!(
            c.links.lock().unwrap().is_empty(),
            "the expired link went too"
        );
        assert!(c.redeem(&unused).unwrap().is_none());
        assert_eq!(c.session(&idle), None);
        // A season later the displays go on the periodic sweep.
        clock.advance(DISPLAY_TTL_MS);
        assert_eq!(c.display(&kiosk), None);
        let pruned = c.prune().unwrap();
        assert_eq!((pruned.sessions, pruned.displays), (1, 2));
        assert!(meta_keys(&c).is_empty());
    }

    #[test]
    fn five_failed_logins_a_minute_lock_out_that_address_for_the_rest_of_the_minute() {
        let (c, clock, _dir) = credentials();
        let phone: IpAddr = "203.0.113.7".parse().unwrap();
        let other: IpAddr = "203.0.113.8".parse().unwrap();
        for _ in 0..LOGIN_FAILURES {
            assert_eq!(c.throttle.check(phone), Ok(()));
            c.throttle.failed(phone);
            clock.advance(1000);
        }
        assert_eq!(c.throttle.check(phone), Err(55));
        assert_eq!(c.throttle.check(other), Ok(()));
        clock.advance(55_000);
        assert_eq!(
            c.throttle.check(phone),
            Ok(()),
            "the oldest failure is a minute old"
        );
    }

    #[test]
    fn a_display_link_works_once_and_only_for_ten_minutes() {
        let (c, clock, _dir) = credentials();
        let code = c.display_link("main", DisplayScope::Wall("main".into()));
        let (secret, wall) = c.redeem(&code).unwrap().expect("first use");
        assert_eq!(wall, "main");
        assert_eq!(c.display(&secret), Some(DisplayScope::Wall("main".into())));
        assert!(c.redeem(&code).unwrap().is_none(), "used once");
        let late = c.display_link("main", DisplayScope::Kiosk);
        clock.advance(LINK_TTL_MS + 1);
        assert!(c.redeem(&late).unwrap().is_none(), "expired");
        assert_eq!(c.display("made-up"), None);
        assert!(DisplayScope::Kiosk.shows("any"));
        assert!(!DisplayScope::Wall("a".into()).shows("b"));
    }
}
