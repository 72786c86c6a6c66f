//! Deleting guests' data. `Eraser::purge` removes everything of one wall (its people, their voices,
//! the profiles only it uses, pending pushes, dedup records and media); `Eraser::sweep` removes a wall's
//! messages older than a cutoff and the people left with nothing. Both then release media: blobs are
//! content-addressed and may be shared (the same avatar on two walls, the same upload sent twice), so a
//! candidate blob (and its derived data: the stored analysis, the decoded samples in memory) is deleted
//! only when no record left in the store names it.
//!
//! Time is passed in (the sweeper's cutoff); the wall's display is told through its event channel.

use crate::config::WallConfig;
use crate::domain::{
    legacy_placeholder_svg, placeholder_name, placeholder_svg, InboundKind, MediaKey, MediaRef,
    Message, Participant,
};
use crate::events::{Hub, WallEvent};
use crate::media::Media;
use crate::store::{Store, StoreError};
use serde::Serialize;
use std::collections::HashSet;
use std::sync::Arc;

/// What an erasure removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Erased {
    pub messages: usize,
    pub participants: usize,
    pub profiles: usize,
    /// Blobs deleted from the media cache (shared ones still in use are kept).
    pub media: usize,
    /// Accepted pushes that were still waiting to be processed.
    pub pending: usize,
}

impl Erased {
    pub fn is_empty(&self) -> bool {
        *self == Erased::default()
    }

    /// The counts in words, for the audit log.
    pub fn detail(&self) -> String {
        format!(
            "messages={} participants={} profiles={} media={} pending={}",
            self.messages, self.participants, self.profiles, self.media, self.pending
        )
    }
}

/// The `meta` key of a wall's purge mark: the last push sequence the purge covers.
fn purge_mark(wall: &str) -> String {
    format!("purged/{wall}")
}

/// Was push `seq` of `wall` accepted before the wall's last purge? The pipeline asks before and after
/// it writes, so a push in flight during a purge (its media fetch still running) brings nothing back.
pub fn purged(store: &Store, wall: &str, seq: u64) -> Result<bool, StoreError> {
    Ok(store
        .meta_get(&purge_mark(wall))?
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|through| seq <= through))
}

/// Undo what a push of a purged wall wrote after the purge: its message, its participant, and the blob
/// it fetched when no record and no waiting push names it.
pub fn drop_in_flight(
    store: &Store,
    wall: &str,
    message_id: &str,
    participant_id: &str,
    blob: Option<&MediaKey>,
) -> Result<(), StoreError> {
    store.remove_message(wall, message_id)?;
    store.remove_participant(wall, participant_id)?;
    if let Some(key) = blob {
        let waiting = store.inbox()?.into_iter().any(|(_, i)| {
            matches!(&i.kind, InboundKind::Media { media: MediaRef::Cached(k), .. } if k == key)
        });
        if !store.media_named(key)? && !waiting {
            store.remove_media(key.as_str())?;
        }
    }
    tracing::info!(
        wall,
        message = message_id,
        "a push in flight during the purge was dropped"
    );
    Ok(())
}

/// Deletes through narrow handles. Cheap to clone.
#[derive(Clone)]
pub struct Eraser {
    store: Store,
    media: Media,
    events: Hub,
    /// Blobs the config names (a wall's background image): never deleted.
    pinned: Arc<HashSet<MediaKey>>,
}

/// The blob a `/media/{key}` URL written in the config names (a wall's background image; the records
/// in the store hold keys).
fn key_of(url: &str) -> Option<MediaKey> {
    url.strip_prefix("/media/")
        .and_then(|k| MediaKey::parse(k).ok())
}

impl Eraser {
    /// Over these handles; the media the walls' config names (a background image) is never deleted.
    pub fn new(store: Store, media: Media, events: Hub, walls: &[WallConfig]) -> Self {
        Self {
            store,
            media,
            events,
            pinned: Arc::new(
                walls
                    .iter()
                    .filter_map(|w| w.theme.background_image.as_deref())
                    .filter_map(key_of)
                    .collect(),
            ),
        }
    }

    /// Everything of `wall`: its messages, participants, the profiles no other wall's participant uses,
    /// its pushes still in the inbox and its dedup records, and every blob nothing else names. The
    /// wall's display sees each person leave.
    pub fn purge(&self, wall: &str) -> Result<Erased, StoreError> {
        // First the mark: a push accepted up to now and still in flight writes nothing after this.
        let through = self.store.sequence_now()?;
        self.store
            .meta_put(&purge_mark(wall), &through.to_string())?;
        let mut erased = Erased::default();
        let mut candidates = HashSet::new();
        for m in self.store.iter_messages(wall) {
            let m = m?;
            self.drop_message(wall, &m, &mut candidates, &mut erased)?;
        }
        let people = self.store.participants(wall)?;
        let mut gone = Vec::with_capacity(people.len());
        for p in people {
            self.drop_participant(wall, &p, &mut candidates, &mut erased)?;
            gone.push(p.id);
        }
        self.drop_unused_profiles(&gone, &mut candidates, &mut erased)?;
        for inbound in self.store.remove_inbox_of(wall)? {
            erased.pending += 1;
            if let InboundKind::Media {
                media: MediaRef::Cached(key),
                ..
            } = inbound.kind
            {
                candidates.insert(key);
            }
        }
        self.store.remove_dedup_of(wall, u64::MAX)?;
        // Bans name people too; the wall's settings (moderation mode, QR) are not personal and stay.
        for id in self.store.banned(wall)? {
            self.store.set_banned(wall, &id, false)?;
        }
        erased.media = self.release(candidates)?;
        self.store.flush()?;
        self.changed(wall, "purged");
        Ok(erased)
    }

    /// `wall`'s messages received before `cutoff_ms`, then its participants who joined before it and
    /// have no message left (and their profiles when no other wall uses them), the dedup records of
    /// pushes as old, and the blobs nothing names any more.
    pub fn sweep(&self, wall: &str, cutoff_ms: u64) -> Result<Erased, StoreError> {
        let mut erased = Erased::default();
        let mut candidates = HashSet::new();
        // Sequence numbers grow with time: every push accepted at or before the newest expired
        // message is as old as the cutoff (its dedup record has served its purpose). Messages are
        // read oldest first and the sweep stops at the first one kept: an hourly sweep of a wall of
        // 180,000 messages read them all (the soak's RSS took a 14 MiB step at 3,600 s). A message
        // stamped earlier than one before it (the clock stepped back) goes at a later sweep.
        let mut horizon = 0u64;
        for m in self.store.iter_messages(wall) {
            let m = m?;
            if m.received_at >= cutoff_ms {
                break;
            }
            horizon = horizon.max(m.id.parse().unwrap_or(0));
            self.drop_message(wall, &m, &mut candidates, &mut erased)?;
        }
        let mut gone = Vec::new();
        for p in self.store.participants(wall)? {
            if p.joined_at < cutoff_ms && !self.store.has_messages(wall, &p.id)? {
                self.drop_participant(wall, &p, &mut candidates, &mut erased)?;
                gone.push(p.id);
            }
        }
        self.drop_unused_profiles(&gone, &mut candidates, &mut erased)?;
        if horizon > 0 {
            self.store.remove_dedup_of(wall, horizon)?;
        }
        erased.media = self.release(candidates)?;
        if erased.messages > 0 {
            self.changed(wall, "expired");
        }
        Ok(erased)
    }

    /// Tell the wall's pages to rebuild from the state API (what they showed may be gone).
    fn changed(&self, wall: &str, reason: &str) {
        self.events.publish(
            wall,
            WallEvent::WallChanged {
                reason: reason.into(),
            },
        );
    }

    fn drop_message(
        &self,
        wall: &str,
        m: &Message,
        candidates: &mut HashSet<MediaKey>,
        erased: &mut Erased,
    ) -> Result<(), StoreError> {
        if self.store.remove_message(wall, &m.id)?.is_some() {
            erased.messages += 1;
        }
        if let Some(key) = &m.media {
            candidates.insert(key.clone());
        }
        Ok(())
    }

    fn drop_participant(
        &self,
        wall: &str,
        p: &Participant,
        candidates: &mut HashSet<MediaKey>,
        erased: &mut Erased,
    ) -> Result<(), StoreError> {
        if self.store.remove_participant(wall, &p.id)?.is_some() {
            erased.participants += 1;
        }
        candidates.insert(p.avatar.clone());
        candidates.extend(p.thumb.clone());
        // The generated pictures this person had (the placeholder before a profile arrived, the one
        // drawn from their nickname): replaced avatars are named by no record, so derive their keys.
        for name in [placeholder_name(&p.id), p.display_name.clone()] {
            candidates.insert(MediaKey::of(placeholder_svg(&p.id, &name).as_bytes()));
            candidates.insert(MediaKey::of(
                legacy_placeholder_svg(&p.id, &name).as_bytes(),
            ));
        }
        self.events.publish(
            wall,
            WallEvent::ParticipantLeft {
                participant_id: p.id.clone(),
            },
        );
        Ok(())
    }

    /// The profiles of these participant ids (`{provider}:{sender}`) that no participant of any wall
    /// still has.
    fn drop_unused_profiles(
        &self,
        ids: &[String],
        candidates: &mut HashSet<MediaKey>,
        erased: &mut Erased,
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut unused: HashSet<&str> = ids.iter().map(String::as_str).collect();
        for r in self.store.iter_all_participants() {
            let (_, p) = r?;
            unused.remove(p.id.as_str());
        }
        for id in unused {
            let Some((provider, sender)) = id.split_once(':') else {
                continue;
            };
            if let Some(profile) = self.store.remove_profile(provider, sender)? {
                erased.profiles += 1;
                candidates.extend(profile.avatar);
                candidates.extend(profile.thumb);
            }
        }
        Ok(())
    }

    /// Delete the candidate blobs that no record left names; returns how many were deleted.
    ///
    /// One pass over every record that can name a blob (messages and participants of every wall,
    /// profiles, uploads waiting in the inbox, the config's pinned blobs) strikes the candidates still
    /// in use; memory is bounded by the candidates, not the store.
    fn release(&self, mut candidates: HashSet<MediaKey>) -> Result<usize, StoreError> {
        candidates.retain(|k| !self.pinned.contains(k));
        if candidates.is_empty() {
            return Ok(0);
        }
        for r in self.store.iter_all_messages() {
            let (_, m) = r?;
            if let Some(key) = &m.media {
                candidates.remove(key);
            }
        }
        for r in self.store.iter_all_participants() {
            let (_, p) = r?;
            candidates.remove(&p.avatar);
            if let Some(key) = &p.thumb {
                candidates.remove(key);
            }
        }
        for r in self.store.iter_profiles() {
            let (_, _, profile) = r?;
            for key in profile.avatar.iter().chain(&profile.thumb) {
                candidates.remove(key);
            }
        }
        for (_, inbound) in self.store.inbox()? {
            if let InboundKind::Media {
                media: MediaRef::Cached(key),
                ..
            } = inbound.kind
            {
                candidates.remove(&key);
            }
        }
        // A record written between the pass and here (the same picture uploaded again this instant)
        // would lose its blob: the window is one pass over the store.
        let mut deleted = 0;
        for key in candidates {
            if self.store.remove_media(&key)? {
                deleted += 1;
            }
            self.media.forget(&key);
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Inbound, MessageKind};
    use crate::pipeline::{Pipeline, RetryPolicy};
    use crate::testing::{fixture, FakePlatform, Fixture, WALL};
    use std::time::Duration;
    use tokio::sync::Notify;

    /// A voice whose media fetch is held; the wall is purged meanwhile; then the fetch answers. Nothing
    /// of the push may come back: no message, no participant, no blob, nothing queued or announced.
    #[tokio::test]
    async fn a_push_in_flight_during_a_purge_brings_nothing_back() {
        let (started, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let bytes = fixture("hello.ogg");
        let fx = Fixture::new(FakePlatform {
            hold: Some((started.clone(), release.clone())),
            ..FakePlatform::serving(bytes.clone(), "audio/ogg")
        });
        let (player, mut task) = crate::playback::Playback::new(true);
        let pipeline = Pipeline {
            store: fx.store.clone(),
            board: fx.board.clone(),
            walls: fx.walls.clone(),
            media: fx.media.clone(),
            player,
            metrics: Arc::default(),
            retry: RetryPolicy {
                attempts: 1,
                base: Duration::ZERO,
                max: Duration::ZERO,
            },
        };
        let push = Inbound {
            wall: WALL.into(),
            provider: crate::providers::telegram::PROVIDER,
            sender: "u1".into(),
            kind: InboundKind::Media {
                kind: MessageKind::Voice,
                media: MediaRef::Platform("file-1".into()),
                transcript: None,
            },
            pushed_at: 1,
            received_at: 2,
            dedup_key: "a".into(),
        };
        let seq = fx.store.accept(&push).unwrap().seq();
        // A second push accepted before the purge, whose worker starts only after it (e.g. it waited
        // for a fetch slot).
        let late = Inbound {
            dedup_key: "b".into(),
            kind: InboundKind::Text { text: "hi".into() },
            ..push.clone()
        };
        let late_seq = fx.store.accept(&late).unwrap().seq();
        let run = {
            let (p, push) = (pipeline.clone(), push.clone());
            tokio::spawn(async move { p.process(seq, &push).await })
        };
        started.notified().await;
        assert!(fx.store.message(WALL, &seq.to_string()).unwrap().is_some());
        let eraser = Eraser::new(fx.store.clone(), fx.media.clone(), fx.hub.clone(), &[]);
        let erased = eraser.purge(WALL).unwrap();
        assert_eq!((erased.messages, erased.participants), (1, 1));
        let mut events = fx.events();
        release.notify_one();
        run.await.unwrap().unwrap();
        pipeline.process(late_seq, &late).await.unwrap();

        let left: Vec<_> = fx
            .store
            .dump_keys()
            .unwrap()
            .into_iter()
            .filter(|(tree, _)| {
                ["messages", "participants", "media", "media_index"].contains(&tree.as_str())
            })
            .collect();
        assert!(left.is_empty(), "left after the purge: {left:?}");
        assert!(fx
            .store
            .media(MediaKey::of(&bytes).as_str())
            .unwrap()
            .is_none());
        assert!(crate::testing::drain(&mut events).is_empty());
        assert_eq!(task.try_next(), None, "nothing queued for the speakers");
    }
}
