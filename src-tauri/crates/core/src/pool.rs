//! The pipeline's pool: the work after the ack (platform fetches, decoding, analysis, the wall's
//! updates) runs on a small runtime of its own — one async thread and at most two blocking threads for
//! decoding, all at a lower CPU priority (nice 10) — so that a burst of pushes, or a pile of voices to
//! decode, can never starve the webhooks' acks on the server's runtime. Accepted pushes wait durably in
//! the inbox meanwhile; the pipeline catches up when the burst is over.
//!
//! Why a runtime and not a semaphore: a semaphore bounds how many tasks run, not how much CPU they take
//! from the acks (on a 2-core kiosk the pipeline's sled writes, events and fetches for one push cost a few
//! times the ack itself). A thread of its own at a lower priority gives the acks the CPU first, whatever
//! the pipeline has queued.

use std::future::Future;
use std::time::Duration;

/// The pool's async threads.
const WORKERS: usize = 1;
/// Its blocking threads (decoding, analysis): at most this many decodes at once.
const BLOCKING: usize = 2;
/// What the pool's threads are niced to.
const NICE: i32 = 10;

/// Run `work` on the pool until it ends or the returned future is dropped (the app stops: the pool's
/// tasks are dropped too, and the thread is joined, so nothing keeps the store open behind it).
pub async fn run_apart<F>(name: &str, work: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let thread_name = name.to_string();
    let spawned = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            lower_priority();
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(WORKERS)
                .max_blocking_threads(BLOCKING)
                .thread_name(thread_name)
                .on_thread_start(lower_priority)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the pipeline's pool");
                    return;
                }
            };
            rt.block_on(async move {
                tokio::select! {
                    _ = work => {}
                    _ = stop_rx => {}
                }
            });
            rt.shutdown_timeout(Duration::from_secs(2));
            let _ = done_tx.send(());
        });
    let thread = match spawned {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the pipeline's thread");
            return;
        }
    };
    let _joined = JoinOnDrop {
        stop: Some(stop_tx),
        thread: Some(thread),
    };
    let _ = done_rx.await;
}

/// Stops the pool and waits for its thread (bounded by the runtime's shutdown timeout).
struct JoinOnDrop {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for JoinOnDrop {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Nice the calling thread (on Linux the nice value is per thread). Best effort.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority has no memory effects; `who` 0 is the calling thread on Linux.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, NICE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn work_runs_on_its_own_thread_and_stops_with_its_owner() {
        let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
        let dropped = Arc::new(AtomicBool::new(false));
        struct Flag(Arc<AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let flag = Flag(dropped.clone());
        let owner = tokio::spawn(run_apart("pool-test", async move {
            let _flag = flag;
            let _ = seen_tx.send(std::thread::current().name().map(str::to_string));
            std::future::pending::<()>().await;
        }));
        let name = seen_rx.await.unwrap();
        assert_eq!(name.as_deref(), Some("pool-test"));
        owner.abort();
        let _ = owner.await;
        // Joined on drop: the work (and what it holds, e.g. the store) is gone when the owner is.
        assert!(dropped.load(Ordering::SeqCst));
    }
}
