//! How many decodes may run at once: [`DecodeSlots`], a counting semaphore sized to the cores.
//!
//! Decoding is pure CPU. With no bound, a burst of uploads (or a backlog of WeChat voices after a
//! restart) starts one decode per request on the blocking pool, each holding its PCM in memory,
//! and the kiosk's player and server starve. [`crate::decode`] and [`crate::decode_limited`]
//! take a slot of [`DecodeSlots::shared`] for as long as they run, so every caller in the process
//! is bounded without having to remember it. Waiting blocks the thread: call them from a blocking
//! context (`tokio::task::spawn_blocking`), as the server does, never on an async worker.

use std::sync::{Arc, Condvar, Mutex, OnceLock};

/// A fixed number of slots in which decodes run; cloning shares the slots.
#[derive(Clone, Debug)]
pub struct DecodeSlots {
    inner: Arc<Slots>,
}

#[derive(Debug)]
struct Slots {
    total: usize,
    state: Mutex<Counts>,
    freed: Condvar,
}

#[derive(Debug, Default)]
struct Counts {
    in_use: usize,
    waiting: usize,
}

/// One taken slot; the slot is free again when this is dropped.
#[derive(Debug)]
#[must_use = "the slot is released as soon as this is dropped"]
pub struct DecodeSlot {
    slots: Arc<Slots>,
}

impl DecodeSlots {
    /// `slots` decodes at once (at least one).
    pub fn new(slots: usize) -> Self {
        Self {
            inner: Arc::new(Slots {
                total: slots.max(1),
                state: Mutex::new(Counts::default()),
                freed: Condvar::new(),
            }),
        }
    }

    /// One slot per core the process may use (`std::thread::available_parallelism`).
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// The process-wide slots every decode of this crate takes ([`DecodeSlots::per_core`]).
    pub fn shared() -> &'static DecodeSlots {
        static SHARED: OnceLock<DecodeSlots> = OnceLock::new();
        SHARED.get_or_init(DecodeSlots::per_core)
    }

    /// How many decodes may run at once.
    pub fn total(&self) -> usize {
        self.inner.total
    }

    /// Slots taken now.
    pub fn in_use(&self) -> usize {
        self.counts().in_use
    }

    /// Threads blocked in [`DecodeSlots::acquire`] now.
    pub fn waiting(&self) -> usize {
        self.counts().waiting
    }

    /// Takes a slot, blocking the thread until one is free.
    pub fn acquire(&self) -> DecodeSlot {
        let mut counts = self.counts();
        counts.waiting += 1;
        while counts.in_use >= self.inner.total {
            counts = self
                .inner
                .freed
                .wait(counts)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        counts.waiting -= 1;
        counts.in_use += 1;
        DecodeSlot {
            slots: self.inner.clone(),
        }
    }

    /// Takes a slot if one is free now.
    pub fn try_acquire(&self) -> Option<DecodeSlot> {
        let mut counts = self.counts();
        (counts.in_use < self.inner.total).then(|| {
            counts.in_use += 1;
            DecodeSlot {
                slots: self.inner.clone(),
            }
        })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        // The counts stay consistent even if a holder panicked: every change is one statement.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for DecodeSlot {
    fn drop(&mut self) {
        let mut counts = self
            .slots
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        counts.in_use -= 1;
        drop(counts);
        self.slots.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_admit_their_number_and_free_on_drop() {
        let slots = DecodeSlots::new(2);
        let a = slots.acquire();
        let b = slots.try_acquire().expect("a second slot");
        assert!(slots.try_acquire().is_none(), "a third decode must wait");
        assert_eq!(slots.in_use(), 2);
        drop(a);
        let c = slots.try_acquire().expect("a freed slot");
        drop((b, c));
        assert_eq!(slots.in_use(), 0);
    }

    #[test]
    fn a_waiting_decode_runs_when_a_slot_frees() {
        let slots = DecodeSlots::new(1);
        let held = slots.acquire();
        let waiter = {
            let slots = slots.clone();
            std::thread::spawn(move || {
                let _slot = slots.acquire();
                slots.in_use()
            })
        };
        // Wait for the event "the thread is blocked on the slot", then free it.
        while slots.waiting() == 0 {
            std::thread::yield_now();
        }
        assert_eq!(slots.in_use(), 1);
        drop(held);
        assert_eq!(waiter.join().unwrap(), 1);
        assert_eq!((slots.in_use(), slots.waiting()), (0, 0));
    }

    #[test]
    fn zero_slots_means_one() {
        assert_eq!(DecodeSlots::new(0).total(), 1);
        assert!(DecodeSlots::per_core().total() >= 1);
    }
}
