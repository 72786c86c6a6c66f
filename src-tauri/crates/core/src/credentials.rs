//! The credentials the server hands out, and how it recognises them again: operator sessions (from the
//! admin token, `vw_session`), display credentials (`vw_display`: a kiosk window or a browser display of
//! one wall), and the one-time display links exchanged for the latter.
//!
//! Only a SHA-256 of each session and display secret is stored (in sled's `meta` tree, so a restart
//! keeps the operator signed in and the displays open); a leaked database names no valid cookie.
//! Sessions expire after `SESSION_IDLE_MS` without a request. One-time links live in memory for
//! `LINK_TTL_MS` and work once.

use crate::clock::Clock;
use crate::domain::Millis;
use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A session ends after this long without a request (12 h).
pub const SESSION_IDLE_MS: Millis = 12 * 3600 * 1000;
/// A one-time display link works for this long (10 min).
pub const LINK_TTL_MS: Millis = 10 * 60 * 1000;
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
}

/// Set at the first operator sign-in, never cleared (see [`Credentials::signed_in_once`]).
const SIGNED_IN_ONCE: &str = "operator_signed_in_once";

/// The stored name of a secret: its SHA-256 in hex.
fn digest(secret: &str) -> String {
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

/// A tombstone: sled's `meta` tree is written, never pruned, by this module (a logged-out session).
const REVOKED: &str = "";

impl Credentials {
    pub fn new(store: Store, clock: Clock) -> Self {
        Self {
            store,
            clock,
            links: Arc::default(),
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
            let _ = self.store.meta_put(&name, REVOKED);
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

    /// End a session (logout). Unknown secrets are ignored.
    pub fn close_session(&self, secret: &str) -> Result<(), StoreError> {
        let name = format!("session/{}", digest(secret));
        if self.store.meta_get(&name)?.is_some() {
            self.store.meta_put(&name, REVOKED)?;
        }
        Ok(())
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
