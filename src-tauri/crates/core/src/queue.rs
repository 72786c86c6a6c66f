//! The speaker queue: the voices waiting for the speakers, kept in the store (one record per voice), so
//! a restart plays on in the same order — the voice that was playing first, from its start.
//!
//! Fair between people: each voice gets a round tag, one past the later of the round playing and its
//! sender's last tag, and the queue plays by (tag, arrival). So people take turns (round-robin):
//! someone who sent ten voices plays one per round, and a newcomer waits at most one round, not
//! behind all ten. A person's own voices play in arrival order (the message sequence), even when a
//! later one was ready first: a person's tags are handed to their voices sorted by arrival.
//!
//! The operator's "play next" goes to a front lane before every round (the latest first).
//!
//! Bounded (`[audio] queue_max`): when full, the newest voice of whoever has the most queued leaves the
//! queue (counting the newcomer; on a tie it is the newcomer's, i.e. the new voice is refused). Why this
//! and not "refuse at enqueue": refusing would let one busy sender fill the queue and shut out everyone
//! after them; this way the cap only ever costs the person who has the most waiting. A dropped voice
//! stays on the wall (a tap plays it); the count of dropped voices is on `/healthz`. The operator's
//! front lane is never dropped.

use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};

/// Where the round playing now is kept (the store's meta tree), so tags keep growing over restarts.
const ROUND_KEY: &str = "speaker_queue_round";
/// Set once the queue has lived in the store: before that (an older version's data), the never-played
/// voices are queued at start instead.
const STARTED_KEY: &str = "speaker_queue_started";

/// One waiting voice.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub wall: String,
    pub id: String,
    /// Who sent it (the participant id): the unit of fairness.
    pub person: String,
    /// Arrival order: the message's sequence.
    pub arrival: u64,
    /// The round it plays in (front lane: a descending counter).
    pub tag: u64,
    /// Put first by the operator.
    pub front: bool,
}

impl Entry {
    fn order(&self) -> (bool, u64, u64) {
        (!self.front, self.tag, self.arrival)
    }
    fn is(&self, wall: &str, id: &str) -> bool {
        self.wall == wall && self.id == id
    }
}

/// What `push` did.
#[derive(Debug, PartialEq)]
pub enum Pushed {
    Queued,
    /// Already waiting.
    Already,
    /// The queue was full and this sender has the most queued: the new voice is not queued.
    Refused,
    /// Queued; to make room the newest voice of the sender with the most queued left: (wall, id).
    Displaced(String, String),
}

/// The queue in memory, mirrored record by record in the store.
pub struct SpeakerQueue {
    store: Store,
    /// In play order.
    entries: Vec<Entry>,
    /// The round of the voice taken last.
    round: u64,
    max: usize,
    dropped: u64,
}

impl SpeakerQueue {
    /// The queue as the store keeps it; `first_start` is true when the store never held a queue.
    pub fn load(store: Store, max: usize) -> Result<(Self, bool), StoreError> {
        let mut entries: Vec<Entry> = store.queued()?;
        entries.sort_by_key(Entry::order);
        let round = store
            .meta_get(ROUND_KEY)?
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        let first_start = store.meta_get(STARTED_KEY)?.is_none();
        if first_start {
            store.meta_put(STARTED_KEY, "1")?;
        }
        let queue = Self {
            store,
            entries,
            round,
            max: max.max(1),
            dropped: 0,
        };
        Ok((queue, first_start))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Voices dropped by the cap since start.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// (wall, message id) in play order.
    pub fn list(&self) -> Vec<(String, String)> {
        self.entries
            .iter()
            .map(|e| (e.wall.clone(), e.id.clone()))
            .collect()
    }

    fn contains(&self, wall: &str, id: &str) -> bool {
        self.entries.iter().any(|e| e.is(wall, id))
    }

    /// Queue a ready voice from `person`, arrived as `arrival`.
    pub fn push(
        &mut self,
        wall: &str,
        id: &str,
        person: &str,
        arrival: u64,
    ) -> Result<Pushed, StoreError> {
        if self.contains(wall, id) {
            return Ok(Pushed::Already);
        }
        let mut outcome = Pushed::Queued;
        if self.len() >= self.max {
            match self.victim(person) {
                None => {
                    self.dropped += 1;
                    tracing::info!(
                        wall,
                        message = id,
                        max = self.max,
                        "speaker queue full: the new voice is not queued (its sender has the most waiting)"
                    );
                    return Ok(Pushed::Refused);
                }
                Some(i) => {
                    let gone = self.entries.remove(i);
                    self.store.remove_queued(&gone.wall, &gone.id)?;
                    self.dropped += 1;
                    tracing::info!(wall = %gone.wall, message = %gone.id, max = self.max,
                        "speaker queue full: the newest voice of the sender with the most waiting left it");
                    outcome = Pushed::Displaced(gone.wall, gone.id);
                }
            }
        }
        let last = self
            .entries
            .iter()
            .filter(|e| !e.front && e.person == person)
            .map(|e| e.tag)
            .max()
            .unwrap_or(0);
        self.entries.push(Entry {
            wall: wall.into(),
            id: id.into(),
            person: person.into(),
            arrival,
            tag: (self.round + 1).max(last + 1),
            front: false,
        });
        self.retag(person)?;
        Ok(outcome)
    }

    /// Hand `person`'s tags to their voices in arrival order, store what changed, and re-sort.
    fn retag(&mut self, person: &str) -> Result<(), StoreError> {
        let mut mine: Vec<usize> = (0..self.entries.len())
            .filter(|&i| !self.entries[i].front && self.entries[i].person == person)
            .collect();
        let mut tags: Vec<u64> = mine.iter().map(|&i| self.entries[i].tag).collect();
        tags.sort_unstable();
        mine.sort_by_key(|&i| self.entries[i].arrival);
        // The new voice's record is written here too (a person's waiting voices are few).
        for (i, tag) in mine.into_iter().zip(tags) {
            let e = &mut self.entries[i];
            e.tag = tag;
            self.store.put_queued(&e.wall, &e.id, e)?;
        }
        self.entries.sort_by_key(Entry::order);
        Ok(())
    }

    /// When full: the index of the voice to drop for a voice from `person`, or None to refuse it.
    fn victim(&self, person: &str) -> Option<usize> {
        let mut counts = std::collections::HashMap::<&str, usize>::new();
        for e in self.entries.iter().filter(|e| !e.front) {
            *counts.entry(e.person.as_str()).or_default() += 1;
        }
        let mine = counts.get(person).copied().unwrap_or(0) + 1;
        let most = counts.values().copied().max().unwrap_or(0);
        if most <= mine {
            return None;
        }
        // Among those with the most, the newest voice.
        (0..self.entries.len())
            .filter(|&i| {
                let e = &self.entries[i];
                !e.front && counts.get(e.person.as_str()) == Some(&most)
            })
            .max_by_key(|&i| self.entries[i].arrival)
    }

    /// Put a voice first (after what plays now): the operator's "play next".
    pub fn play_next(
        &mut self,
        wall: &str,
        id: &str,
        person: &str,
        arrival: u64,
    ) -> Result<(), StoreError> {
        self.entries.retain(|e| !e.is(wall, id));
        let tag = self
            .entries
            .iter()
            .filter(|e| e.front)
            .map(|e| e.tag)
            .min()
            .unwrap_or(u64::MAX / 2)
            - 1;
        let e = Entry {
            wall: wall.into(),
            id: id.into(),
            person: person.into(),
            arrival,
            tag,
            front: true,
        };
        self.store.put_queued(wall, id, &e)?;
        self.entries.push(e);
        self.entries.sort_by_key(Entry::order);
        Ok(())
    }

    /// Take the next voice to play. Its record stays in the store until `done`: a restart while it
    /// plays plays it again.
    pub fn take(&mut self) -> Result<Option<Entry>, StoreError> {
        if self.entries.is_empty() {
            return Ok(None);
        }
        let e = self.entries.remove(0);
        if !e.front && e.tag > self.round {
            self.round = e.tag;
            self.store.meta_put(ROUND_KEY, &self.round.to_string())?;
        }
        Ok(Some(e))
    }

    /// A voice played (or could not): its record goes.
    pub fn done(&mut self, wall: &str, id: &str) -> Result<(), StoreError> {
        if !self.contains(wall, id) {
            self.store.remove_queued(wall, id)?;
        }
        Ok(())
    }

    /// Take a voice out of the queue; true when it was waiting.
    pub fn remove(&mut self, wall: &str, id: &str) -> Result<bool, StoreError> {
        let before = self.entries.len();
        self.entries.retain(|e| !e.is(wall, id));
        self.store.remove_queued(wall, id)?;
        Ok(self.entries.len() != before)
    }

    /// Empty the queue (the operator's stop).
    pub fn clear(&mut self) -> Result<(), StoreError> {
        self.entries.clear();
        self.store.clear_queued()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(dir: &std::path::Path, max: usize) -> SpeakerQueue {
        SpeakerQueue::load(Store::open(dir).unwrap(), max)
            .unwrap()
            .0
    }

    fn ids(q: &SpeakerQueue) -> Vec<String> {
        q.list().into_iter().map(|(_, id)| id).collect()
    }

    #[test]
    fn three_people_take_turns_and_each_plays_in_arrival_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = queue(dir.path(), 100);
        // A sends four, then B two, then C one; A's second was ready before its first.
        for (id, who) in [("1", "a"), ("3", "a"), ("4", "a"), ("5", "b"), ("6", "b")] {
            q.push("w", id, who, id.parse().unwrap()).unwrap();
        }
        q.push("w", "2", "a", 2).unwrap();
        q.push("w", "7", "c", 7).unwrap();
        assert_eq!(ids(&q), ["1", "5", "7", "2", "6", "3", "4"]);
        // Playing moves the round on: a newcomer joins the next round, not the first.
        assert_eq!(q.take().unwrap().unwrap().id, "1");
        assert_eq!(q.take().unwrap().unwrap().id, "5");
        assert_eq!(q.take().unwrap().unwrap().id, "7");
        q.push("w", "8", "d", 8).unwrap();
        assert_eq!(ids(&q), ["2", "6", "8", "3", "4"]);
    }

    #[test]
    fn a_full_queue_drops_the_newest_of_whoever_has_the_most_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = queue(dir.path(), 4);
        for (id, who) in [("1", "a"), ("2", "a"), ("3", "a"), ("4", "b")] {
            assert_eq!(
                q.push("w", id, who, id.parse().unwrap()).unwrap(),
                Pushed::Queued
            );
        }
        // A newcomer displaces a's newest.
        assert_eq!(
            q.push("w", "5", "c", 5).unwrap(),
            Pushed::Displaced("w".into(), "3".into())
        );
        // a (2 queued) sends again: a would have the most, so the new voice is refused.
        assert_eq!(q.push("w", "6", "a", 6).unwrap(), Pushed::Refused);
        assert_eq!(ids(&q), ["1", "4", "5", "2"]);
        assert_eq!((q.len(), q.max(), q.dropped()), (4, 4, 2));
        // The operator's "play next" is never dropped, and plays first.
        q.play_next("w", "6", "a", 6).unwrap();
        assert_eq!(ids(&q)[0], "6");
    }

    #[test]
    fn the_queue_reloads_in_order_with_the_playing_voice_first() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut q = queue(dir.path(), 100);
            for (id, who) in [("1", "a"), ("2", "a"), ("3", "b"), ("4", "c")] {
                q.push("w", id, who, id.parse().unwrap()).unwrap();
            }
            q.play_next("w", "4", "c", 4).unwrap();
            assert_eq!(q.take().unwrap().unwrap().id, "4");
            q.done("w", "4").unwrap();
            assert_eq!(q.take().unwrap().unwrap().id, "1"); // playing when the power goes
            q.remove("w", "3").unwrap();
            assert_eq!(ids(&q), ["2"]);
        }
        let (mut q, first) = SpeakerQueue::load(Store::open(dir.path()).unwrap(), 100).unwrap();
        assert!(!first);
        assert_eq!(ids(&q), ["1", "2"]);
        // The round survived: a newcomer after the restart waits behind a's second voice's round.
        q.push("w", "5", "d", 5).unwrap();
        assert_eq!(ids(&q), ["1", "2", "5"]);
        q.clear().unwrap();
        drop(q);
        let (q, _) = SpeakerQueue::load(Store::open(dir.path()).unwrap(), 100).unwrap();
        assert!(q.is_empty());
    }
}
