//! The audit log: every operator action (who, what, on which wall and target, when), kept in the
//! store's `audit` tree and listed newest first by `GET /api/admin/audit`. An entry is written after the
//! action took effect; a failed action is not recorded (its refusal is logged by the HTTP layer).

use crate::clock::Clock;
use crate::domain::Millis;
use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};

/// One operator action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: Millis,
    /// Who acted: `access::Operator::actor` (`"bearer"`, or a session's public id).
    pub actor: String,
    /// What was done, e.g. `"message.approve"`, `"playback.pause"`, `"wall.purge"`.
    pub action: String,
    /// The wall it was done on, if any.
    pub wall: Option<String>,
    /// What it was done to (a message id, a participant id), if anything.
    pub target: Option<String>,
    /// Extra detail in words or values (`"mode=pre"`, `"volume=0.5"`); empty when there is none.
    pub detail: String,
}

/// The log's handle. Cheap to clone.
#[derive(Clone)]
pub struct Audit {
    store: Store,
    clock: Clock,
}

/// How many entries `recent` returns at most.
pub const MAX_LIMIT: usize = 1000;

impl Audit {
    pub fn new(store: Store, clock: Clock) -> Self {
        Self { store, clock }
    }

    /// Write one entry (and one log line).
    pub fn record(
        &self,
        actor: &str,
        action: &str,
        wall: Option<&str>,
        target: Option<&str>,
        detail: &str,
    ) -> Result<AuditEntry, StoreError> {
        let entry = AuditEntry {
            at: self.clock.now_ms(),
            actor: actor.to_string(),
            action: action.to_string(),
            wall: wall.map(str::to_string),
            target: target.map(str::to_string),
            detail: detail.to_string(),
        };
        self.store.append_audit(&entry)?;
        tracing::info!(actor, action, wall, target, detail, "operator action");
        Ok(entry)
    }

    /// The newest `limit` entries (at most `MAX_LIMIT`), newest first.
    pub fn recent(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.store.audit_newest(limit.min(MAX_LIMIT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_list_newest_first_up_to_the_limit_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::manual(1_000);
        {
            let audit = Audit::new(Store::open(dir.path()).unwrap(), clock.clone());
            for i in 0..5 {
                clock.advance(10);
                audit
                    .record(
                        "bearer",
                        "message.approve",
                        Some("main"),
                        Some(&i.to_string()),
                        "",
                    )
                    .unwrap();
            }
            audit
                .record("s1", "playback.volume", None, None, "volume=0.5")
                .unwrap();
        }
        let audit = Audit::new(Store::open(dir.path()).unwrap(), clock);
        let all = audit.recent(100).unwrap();
        assert_eq!(all.len(), 6);
        assert_eq!(all[0].action, "playback.volume");
        assert_eq!(
            (all[0].wall.as_deref(), all[0].detail.as_str()),
            (None, "volume=0.5")
        );
        let targets: Vec<_> = all[1..].iter().map(|e| e.target.clone().unwrap()).collect();
        assert_eq!(targets, ["4", "3", "2", "1", "0"]);
        assert!(all.windows(2).all(|w| w[0].at >= w[1].at));
        let two = audit.recent(2).unwrap();
        assert_eq!(two, all[..2].to_vec());
    }
}
