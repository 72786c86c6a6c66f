//! The media cap (`[storage] max_bytes`): when the stored media is over it, the oldest blobs no longer
//! shown are evicted until it is under, in bounded steps on a background task (never in an ack's path).
//!
//! Never evicted: a blob named by a message among the newest a wall shows (the wall state's window,
//! `http::state::STATE_MESSAGES`), a voice waiting for the speakers or playing (it stays queued until it
//! ends), a message held for moderation, any participant's avatar, and a blob nothing names yet (just
//! stored, its message not yet written; a profile's avatar). An evicted voice keeps its message: its
//! media is gone (`media: None`, `error` says so), so playing it is refused with 409 `not_ready` and
//! `/media/{key}` answers 404. When nothing more can be evicted and the media is still over the cap, the
//! operator is told (a `/healthz` notice).

use crate::board::Board;
use crate::domain::Moderation;
use crate::store::{Store, StoreError};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Blobs looked at per step at most (each a few small reads): a step stays short however many blobs
/// are protected.
pub const STEP: usize = 256;

/// How often the evictor looks even when not woken (a cap still exceeded after everything evictable
/// went: messages leave the window, voices leave the queue).
pub const EVERY: Duration = Duration::from_secs(60);

/// After a run that left the media over the cap (all of it protected), the least wait before the next
/// one: a burst of new blobs does not make a pass over every blob each.
pub const RESTING: Duration = Duration::from_secs(5);

/// The `error` of a message whose media was evicted.
pub const EVICTED: &str =
    "not available: its media was evicted to keep the stored media under [storage] max_bytes";

/// What one step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub evicted: u64,
    pub bytes: u64,
    /// The step reached the newest blob (the next one starts again from the oldest).
    pub wrapped: bool,
}

/// The evictor: its position in the blobs (oldest first) carries over from step to step.
pub struct Evictor {
    store: Store,
    board: Board,
    cursor: Option<Vec<u8>>,
}

impl Evictor {
    pub fn new(store: Store, board: Board) -> Self {
        Self {
            store,
            board,
            cursor: None,
        }
    }

    /// Evict until the media is under its cap, or a whole pass over the blobs found nothing more to
    /// evict; returns the blobs and bytes evicted. Each step is logged.
    pub fn run_once(&mut self) -> Result<(u64, u64), StoreError> {
        let (mut count, mut bytes) = (0, 0);
        // Evicted since the pass over the blobs began (a pass with none: nothing more can go).
        let mut this_pass = 0;
        self.cursor = None;
        while self.store.media_over_cap() {
            let step = self.step()?;
            if step.evicted > 0 {
                let usage = self.store.media_usage();
                tracing::info!(
                    count = step.evicted,
                    bytes = step.bytes,
                    media_bytes = usage.bytes,
                    max_bytes = usage.max_bytes,
                    "media over [storage] max_bytes: evicted the oldest not shown"
                );
                count += step.evicted;
                bytes += step.bytes;
                this_pass += step.evicted;
            }
            if step.wrapped {
                if this_pass == 0 {
                    break;
                }
                this_pass = 0;
            }
        }
        let usage = self.store.media_usage();
        self.store.set_notice(
            "media",
            (usage.bytes > usage.max_bytes).then(|| {
                format!(
                    "stored media is {} bytes, over [storage] max_bytes = {}: nothing more can be evicted \
                     (the rest is shown on a wall, queued for the speakers, held for moderation or an avatar)",
                    usage.bytes, usage.max_bytes
                )
            }),
        );
        Ok((count, bytes))
    }

    /// One bounded step: look at up to [`STEP`] blobs from the cursor, evicting the evictable ones
    /// while the media is over its cap.
    pub fn step(&mut self) -> Result<Step, StoreError> {
        let mut out = Step::default();
        let batch = self.store.media_oldest(self.cursor.as_deref(), STEP)?;
        if batch.len() < STEP {
            out.wrapped = true;
        }
        // Each wall's window, read once per step.
        let mut windows: HashMap<String, HashSet<String>> = HashMap::new();
        let mut next = None;
        for (age, key) in batch {
            if !self.store.media_over_cap() {
                // Resume here next time.
                out.wrapped = false;
                break;
            }
            next = Some(age.clone());
            if !self.store.has_media(&key) {
                // Erased or purged since it was stored: its age entry names nothing any more.
                self.store.drop_media_age(&age)?;
                continue;
            }
            let Some(users) = self.evictable(&key, &mut windows)? else {
                continue;
            };
            for (wall, record) in users {
                if let Some(id) = record.strip_prefix("m:") {
                    self.board.update_message(&wall, id, |m| {
                        if m.media.as_ref().is_some_and(|k| k.as_str() == key) {
                            m.media = None;
                            m.waveform.clear();
                            m.error = Some(EVICTED.into());
                        }
                    })?;
                }
            }
            let freed = self.store.evict_media(&key, &age)?;
            if freed > 0 {
                out.evicted += 1;
                out.bytes += freed;
            }
        }
        self.cursor = if out.wrapped { None } else { next };
        Ok(out)
    }

    /// Whether blob `key` may go: named only by messages, none of them in a wall's window, queued or
    /// held for moderation. When it may, the (wall, record) pairs that name it (the messages to mark).
    fn evictable(
        &self,
        key: &str,
        windows: &mut HashMap<String, HashSet<String>>,
    ) -> Result<Option<Vec<(String, String)>>, StoreError> {
        let users = self.store.media_users(key)?;
        if users.is_empty() {
            return Ok(None);
        }
        for (wall, record) in &users {
            let Some(id) = record.strip_prefix("m:") else {
                // An avatar (`p:`), or a record of a kind this build does not know: kept.
                return Ok(None);
            };
            if self.store.is_queued(wall, id)? {
                return Ok(None);
            }
            if let Some(m) = self.store.message(wall, id)? {
                if m.moderation == Moderation::Pending {
                    return Ok(None);
                }
            }
            if !windows.contains_key(wall) {
                let (shown, _) =
                    self.board
                        .recent_messages(wall, None, crate::http::state::STATE_MESSAGES)?;
                windows.insert(wall.clone(), shown.into_iter().map(|m| m.id).collect());
            }
            if windows[wall].contains(id) {
                return Ok(None);
            }
        }
        Ok(Some(users))
    }

    /// The background task: at start, whenever a new blob takes the media over the cap, and every
    /// [`EVERY`], evict down to the cap (on the blocking pool: sled reads and writes).
    pub async fn run(self) {
        let store = self.store.clone();
        let evictor = std::sync::Arc::new(std::sync::Mutex::new(self));
        loop {
            if store.media_over_cap() {
                let e = evictor.clone();
                let done =
                    tokio::task::spawn_blocking(move || e.lock().expect("evictor lock").run_once())
                        .await;
                match done {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "media eviction failed; retried later")
                    }
                    Err(e) => tracing::error!(error = %e, "media eviction task failed"),
                }
                if store.media_over_cap() {
                    tokio::time::sleep(RESTING).await;
                }
            } else {
                // Under the cap again (a purge, a raised cap): the notice, if any, is past.
                store.set_notice("media", None);
            }
            tokio::select! {
                _ = store.media_went_over() => {}
                _ = tokio::time::sleep(EVERY) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{MediaKey, Participant};
    use crate::testing::{ready_voice, FakePlatform, Fixture, WALL};

    /// A blob of `len` bytes, different for each `i`.
    fn blob(i: usize, len: usize) -> Vec<u8> {
        let mut b = format!("voice {i} ").into_bytes();
        b.resize(len, b'.');
        b
    }

    fn voice(fx: &Fixture, i: usize, len: usize, moderation: Moderation) -> MediaKey {
        let key = fx.store.put_media(&blob(i, len), "audio/ogg").unwrap();
        let mut m = ready_voice(&i.to_string(), Some(key.clone()));
        m.moderation = moderation;
        fx.store.put_message(WALL, &m).unwrap();
        key
    }

    /// Over the cap, the oldest media no longer shown goes first until the media is under the cap; the
    /// window a wall shows, a queued voice, a held one, an avatar and a blob nothing names stay. An
    /// evicted voice keeps its message, without its media.
    #[test]
    fn the_oldest_media_not_shown_is_evicted_down_to_the_cap() {
        let fx = Fixture::new(FakePlatform::serving(Vec::new(), "audio/ogg"));
        let store = &fx.store;
        // Nothing names it (a blob whose message is not yet written).
        let orphan = store.put_media(&blob(0, 1000), "audio/ogg").unwrap();
        // 40 old voices of 1000 bytes, shown but long out of the wall's window.
        let mut old = vec![MediaKey::of(b"")];
        for i in 1..=40 {
            let moderation = if i == 2 {
                Moderation::Pending
            } else {
                Moderation::Approved
            };
            old.push(voice(&fx, i, 1000, moderation));
        }
        store.put_queued(WALL, "3", &"waiting").unwrap();
        store
            .put_participant(
                WALL,
                &Participant {
                    id: "web:p".into(),
                    person_id: "p".into(),
                    display_name: "P".into(),
                    avatar: old[4].clone(),
                    thumb: None,
                    provider: crate::providers::web::PROVIDER,
                    joined_at: 1,
                    has_profile: true,
                },
            )
            .unwrap();
        // The window: the newest STATE_MESSAGES the wall shows, 10 bytes each.
        let window = crate::http::state::STATE_MESSAGES;
        for i in 41..41 + window {
            voice(&fx, i, 10, Moderation::Approved);
        }
        let total = 41_000 + 10 * window as u64;
        assert_eq!(store.media_usage().bytes, total);
        store.set_media_cap(20_000);

        let mut evictor = Evictor::new(store.clone(), fx.board.clone());
        let (count, bytes) = evictor.run_once().unwrap();
        let usage = store.media_usage();
        assert!(usage.bytes <= 20_000, "{usage:?}");
        // 23 blobs of 1000 bytes: the oldest evictable ones, 1 and 5..=26.
        assert_eq!((count, bytes), (23, 23_000));
        assert_eq!(
            usage,
            crate::store::MediaUsage {
                bytes: total - 23_000,
                max_bytes: 20_000,
                evicted_blobs: 23,
                evicted_bytes: 23_000,
            }
        );
        let evicted: Vec<usize> = (1..=40)
            .filter(|i| !store.has_media(old[*i].as_str()))
            .collect();
        let expected: Vec<usize> = std::iter::once(1).chain(5..=26).collect();
        assert_eq!(
            evicted, expected,
            "oldest first; held, queued and avatar kept"
        );
        assert!(store.has_media(orphan.as_str()));
        for i in 41..41 + window {
            assert!(store
                .message(WALL, &i.to_string())
                .unwrap()
                .unwrap()
                .media
                .is_some());
        }
        // The evicted voice's message stays, not available; its blob and metadata are gone.
        let m = store
            .message(WALL, "1")
            .unwrap()
            .expect("the message stays");
        assert_eq!((m.media, m.error.as_deref()), (None, Some(EVICTED)));
        assert!(store.media(old[1].as_str()).unwrap().is_none());
        assert!(store.media_users(old[1].as_str()).unwrap().is_empty());
        // Nothing is over the cap any more: a second run does nothing, and says nothing.
        assert_eq!(evictor.run_once().unwrap(), (0, 0));
        assert!(store.notices().is_empty());
    }

    /// A blob erased by other means (a guest's erasure, a purge) leaves no entry behind in the age index
    /// once the evictor has walked past it; a blob stored again later is dated anew, not evicted for it.
    #[test]
    fn an_erased_blob_s_age_entry_goes_when_the_evictor_walks_past_it() {
        let fx = Fixture::new(FakePlatform::serving(Vec::new(), "audio/ogg"));
        let store = &fx.store;
        let erased = store.put_media(&blob(1, 1000), "audio/ogg").unwrap();
        let kept = voice(&fx, 2, 1000, Moderation::Approved);
        assert!(store.remove_media(erased.as_str()).unwrap());
        let ages = |s: &crate::store::Store| -> Vec<String> {
            s.media_oldest(None, 100)
                .unwrap()
                .into_iter()
                .map(|(_, k)| k)
                .collect()
        };
        assert_eq!(
            ages(store),
            [erased.as_str(), kept.as_str()],
            "left behind by the erasure"
        );
        store.set_media_cap(10);
        let mut evictor = Evictor::new(store.clone(), fx.board.clone());
        assert_eq!(evictor.run_once().unwrap(), (0, 0), "the one left is shown");
        assert_eq!(ages(store), [kept.as_str()]);
        // The same bytes again: a new blob, a new date, kept (nothing names it yet).
        let again = store.put_media(&blob(1, 1000), "audio/ogg").unwrap();
        assert_eq!(again, erased);
        evictor.run_once().unwrap();
        assert!(store.has_media(again.as_str()));
        assert_eq!(ages(store), [kept.as_str(), again.as_str()]);
    }

    /// When everything left is protected, the evictor stops after one pass and the operator is told.
    #[test]
    fn a_cap_that_cannot_be_met_stops_and_tells_the_operator() {
        let fx = Fixture::new(FakePlatform::serving(Vec::new(), "audio/ogg"));
        for i in 1..=5 {
            voice(&fx, i, 100, Moderation::Approved);
        }
        fx.store.set_media_cap(10);
        let mut evictor = Evictor::new(fx.store.clone(), fx.board.clone());
        assert_eq!(evictor.run_once().unwrap(), (0, 0), "all five are shown");
        let notices = fx.store.notices();
        assert!(
            notices.len() == 1 && notices[0].contains("max_bytes"),
            "{notices:?}"
        );
        // The counted bytes come back at open (from the metadata) and stay exact as blobs go.
        let usage = fx.store.media_usage();
        assert_eq!(usage.bytes, 500);
        fx.store
            .remove_media(
                fx.store
                    .message(WALL, "1")
                    .unwrap()
                    .unwrap()
                    .media
                    .unwrap()
                    .as_str(),
            )
            .unwrap();
        assert_eq!(fx.store.media_usage().bytes, 400);
    }
}
