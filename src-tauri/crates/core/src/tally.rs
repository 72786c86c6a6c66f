//! A wall's figures at a glance — messages by moderation and status, participants, the latest failed
//! fetches with their reasons — kept up to date by the store on every write of a message or participant,
//! so the operator's health view costs nothing per call however many messages a wall holds.

use crate::domain::{Message, MessageStatus, Moderation};
use serde::Serialize;
use std::collections::VecDeque;

/// How many failed fetches a tally lists (the newest; `failed` counts them all).
pub const FAILED_LISTED: usize = 20;

/// One failed fetch as the console lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailedFetch {
    pub message_id: String,
    pub reason: Option<String>,
}

/// One wall's figures.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub participants: usize,
    pub pending: usize,
    pub approved: usize,
    pub rejected: usize,
    pub removed: usize,
    /// Messages whose fetch failed (all of them).
    pub failed: usize,
    /// Messages still being fetched.
    pub fetching: usize,
    /// The newest failed fetches, oldest first, at most `FAILED_LISTED`.
    pub failed_fetches: VecDeque<FailedFetch>,
}

impl Tally {
    /// A message was written (`before` → `after`; `None` = absent).
    pub fn message(&mut self, before: Option<&Message>, after: Option<&Message>) {
        if let Some(m) = before {
            self.count(m, false);
        }
        if let Some(m) = after {
            self.count(m, true);
        }
        let was_failed = before.is_some_and(|m| m.status == MessageStatus::Failed);
        match after {
            // newly failed, or failed again for another reason: it goes to the end of the list
            Some(m)
                if m.status == MessageStatus::Failed
                    && (!was_failed || before.map(|b| &b.error) != Some(&m.error)) =>
            {
                self.list_failed(m);
            }
            Some(m) if m.status == MessageStatus::Failed => {}
            _ if was_failed => {
                if let Some(b) = before {
                    self.failed_fetches.retain(|f| f.message_id != b.id);
                }
            }
            _ => {}
        }
    }

    /// A participant was added (`true`) or removed (`false`).
    pub fn participant(&mut self, added: bool) {
        if added {
            self.participants += 1;
        } else {
            self.participants = self.participants.saturating_sub(1);
        }
    }

    fn count(&mut self, m: &Message, add: bool) {
        let step = |n: &mut usize| {
            *n = if add { *n + 1 } else { n.saturating_sub(1) };
        };
        step(match m.moderation {
            Moderation::Pending => &mut self.pending,
            Moderation::Approved => &mut self.approved,
            Moderation::Rejected => &mut self.rejected,
            Moderation::Removed => &mut self.removed,
        });
        match m.status {
            MessageStatus::Failed => step(&mut self.failed),
            MessageStatus::Fetching => step(&mut self.fetching),
            MessageStatus::Ready => {}
        }
    }

    fn list_failed(&mut self, m: &Message) {
        self.failed_fetches.retain(|f| f.message_id != m.id);
        self.failed_fetches.push_back(FailedFetch {
            message_id: m.id.clone(),
            reason: m.error.clone(),
        });
        while self.failed_fetches.len() > FAILED_LISTED {
            self.failed_fetches.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: u32, status: MessageStatus, moderation: Moderation) -> Message {
        let failed = status == MessageStatus::Failed;
        serde_json::from_value(serde_json::json!({
            "id": id.to_string(), "participant_id": "web:a", "kind": "voice",
            "status": status, "error": failed.then(|| format!("reason {id}")),
            "duration_ms": null, "received_at": 0, "played_count": 0, "transcript": null,
            "moderation": moderation,
        }))
        .expect("a message")
    }

    #[test]
    fn the_failed_list_keeps_the_newest_and_the_count_all() {
        let mut t = Tally::default();
        for i in 0..(FAILED_LISTED as u32 + 5) {
            t.message(
                None,
                Some(&msg(i, MessageStatus::Failed, Moderation::Approved)),
            );
        }
        assert_eq!(t.failed, FAILED_LISTED + 5);
        assert_eq!(t.failed_fetches.len(), FAILED_LISTED);
        assert_eq!(t.failed_fetches[0].message_id, "5");
        let last = msg(24, MessageStatus::Failed, Moderation::Approved);
        t.message(Some(&last), None);
        assert_eq!(t.failed, FAILED_LISTED + 4);
        assert!(t.failed_fetches.iter().all(|f| f.message_id != "24"));
        assert_eq!(t.approved, FAILED_LISTED + 4);
    }
}
