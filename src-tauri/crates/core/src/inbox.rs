//! The inbox handle: how a platform's push (or a web upload) enters the pipeline. `accept` stores the
//! push durably (group commit, see `store`), counts it, wakes the pipeline, and only then returns — the
//! caller acknowledges the platform after it. Providers get this handle, never the whole app.

use crate::domain::Inbound;
use crate::metrics::Metrics;
use crate::store::{Accepted, Store, StoreError};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Where accepted pushes go. Cheap to clone.
#[derive(Clone)]
pub struct Inbox {
    store: Store,
    wake: mpsc::UnboundedSender<u64>,
    metrics: Arc<Metrics>,
}

/// The pipeline's end: the sequence numbers of accepted pushes, in order.
pub type Wakeups = mpsc::UnboundedReceiver<u64>;

impl Inbox {
    pub fn new(store: Store, metrics: Arc<Metrics>) -> (Self, Wakeups) {
        let (wake, rx) = mpsc::unbounded_channel();
        (
            Self {
                store,
                wake,
                metrics,
            },
            rx,
        )
    }

    /// Store a push durably, then wake the pipeline. Returns once it is safe to acknowledge.
    pub async fn accept(&self, inbound: &Inbound) -> Result<Accepted, StoreError> {
        let accepted = self.store.accept(inbound)?;
        self.store.durable().await?;
        match accepted {
            Accepted::New(_) => self.metrics.inc_accepted(inbound.provider),
            Accepted::Duplicate(_) => self.metrics.inc_duplicate(),
        }
        // A duplicate wakes the pipeline too: if the first delivery's ack failed (flush timeout) its entry
        // is still in the inbox. The pipeline skips entries already done or in flight.
        let _ = self.wake.send(accepted.seq());
        Ok(accepted)
    }

    /// Accepted pushes not yet processed.
    pub fn pending(&self) -> usize {
        self.store.inbox_len()
    }
}
