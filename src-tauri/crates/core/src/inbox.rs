//! The inbox handle: how a platform's push (or a web upload) enters the pipeline. `accept` stores the
//! push durably (group commit, see `store`), counts it, wakes the pipeline, and only then returns — the
//! caller acknowledges the platform after it. Providers get this handle, never the whole app.
//!
//! On a nearly full disk (free space under `[storage] min_free_bytes`) a push is refused before it is
//! stored (`StoreError::DiskFull`, answered 503: the platforms retry later) and the operator sees why
//! (a `disk` notice on `/healthz`); the wall keeps running.

use crate::domain::Inbound;
use crate::metrics::Metrics;
use crate::store::{Accepted, Store, StoreError};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Where accepted pushes go. Cheap to clone.
#[derive(Clone)]
pub struct Inbox {
    store: Store,
    wake: mpsc::UnboundedSender<Inbound>,
    metrics: Arc<Metrics>,
    disk: Option<DiskGuard>,
}

/// Free space on the data dir's disk, in bytes (`None`: unknown, never refuses).
pub type FreeSpace = Arc<dyn Fn() -> Option<u64> + Send + Sync>;

/// The free space kept on the data dir's disk.
#[derive(Clone)]
pub struct DiskGuard {
    pub free: FreeSpace,
    pub min_free: u64,
}

impl DiskGuard {
    /// The real probe (statvfs through `fs2`) of the disk holding `dir`.
    pub fn of_dir(dir: std::path::PathBuf, min_free: u64) -> Self {
        Self {
            free: Arc::new(move || fs2::available_space(&dir).ok()),
            min_free,
        }
    }
}

/// The pipeline's end: the accepted pushes, in order (the pipeline checks each is still pending).
pub type Wakeups = mpsc::UnboundedReceiver<Inbound>;

impl Inbox {
    pub fn new(store: Store, metrics: Arc<Metrics>) -> (Self, Wakeups) {
        let (wake, rx) = mpsc::unbounded_channel();
        (
            Self {
                store,
                wake,
                metrics,
                disk: None,
            },
            rx,
        )
    }

    /// Refuse pushes while the disk has less than `guard.min_free` free.
    pub fn with_disk_guard(mut self, guard: DiskGuard) -> Self {
        self.disk = Some(guard);
        self
    }

    /// Store a push durably, then wake the pipeline. Returns once it is safe to acknowledge.
    pub async fn accept(&self, inbound: &Inbound) -> Result<Accepted, StoreError> {
        self.check_disk()?;
        let accepted = self.store.accept(inbound)?;
        self.store.durable().await?;
        match accepted {
            Accepted::New(_) => self.metrics.inc_accepted(inbound.provider),
            Accepted::Duplicate(_) => self.metrics.inc_duplicate(),
        }
        // A duplicate wakes the pipeline too: if the first delivery's ack failed (flush timeout) its entry
        // is still in the inbox. The pipeline skips entries already done or in flight.
        let _ = self.wake.send(inbound.clone());
        Ok(accepted)
    }

    /// Accepted pushes not yet processed.
    pub fn pending(&self) -> usize {
        self.store.inbox_len()
    }

    /// Refuse when the disk is nearly full, and keep the operator's `disk` notice up to date.
    fn check_disk(&self) -> Result<(), StoreError> {
        let Some(guard) = &self.disk else {
            return Ok(());
        };
        let Some(free) = (guard.free)() else {
            return Ok(());
        };
        if free >= guard.min_free {
            self.store.set_notice("disk", None);
            return Ok(());
        }
        let full = StoreError::DiskFull {
            free,
            min: guard.min_free,
        };
        self.store.set_notice(
            "disk",
            Some(format!(
                "new pushes are refused (503): {free} bytes free on the data disk, below [storage] min_free_bytes = {}",
                guard.min_free
            )),
        );
        Err(full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::InboundKind;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[tokio::test]
    async fn a_nearly_full_disk_refuses_pushes_with_a_reason_and_a_notice_until_space_is_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let free = Arc::new(AtomicU64::new(10_000));
        let probe = free.clone();
        let (inbox, _rx) = Inbox::new(store.clone(), Arc::default());
        let inbox = inbox.with_disk_guard(DiskGuard {
            free: Arc::new(move || Some(probe.load(Ordering::SeqCst))),
            min_free: 50_000,
        });
        let push = Inbound {
            wall: "main".into(),
            provider: crate::providers::web::PROVIDER,
            sender: "d1".into(),
            kind: InboundKind::Join,
            pushed_at: 1,
            received_at: 1,
            dedup_key: "j1".into(),
        };
        let e = inbox.accept(&push).await.unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::DiskFull {
                    free: 10_000,
                    min: 50_000
                }
            ),
            "{e}"
        );
        assert_eq!(store.inbox_len(), 0, "nothing stored");
        let notices = store.notices();
        assert!(
            notices.len() == 1 && notices[0].contains("min_free_bytes"),
            "{notices:?}"
        );

        free.store(80_000, Ordering::SeqCst);
        assert!(matches!(
            inbox.accept(&push).await.unwrap(),
            Accepted::New(_)
        ));
        assert!(store.notices().is_empty(), "the notice goes with the cause");
    }
}
