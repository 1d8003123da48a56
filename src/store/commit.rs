//! Group commit: durable writes share `db.flush()` calls.
//!
//! In strict mode a commit waits until a flush that started after it has
//! finished. One flusher task runs `db.flush()` on a blocking thread and
//! publishes the highest ticket it covered, so concurrent commits share
//! flushes. sled's own `flush_async` deadlocks with many concurrent callers
//! and is never used.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Notify, watch};

use super::disk::Disk;
use super::health::FailureKind;
use super::{FINAL_FLUSH_LIMIT, StoreError};
use crate::shutdown::Shutdown;

/// What the flusher has published: the highest ticket a finished flush
/// covered, and whether flushing has failed for good.
#[derive(Debug, Clone, Copy, Default)]
struct Committed {
    durable: u64,
    failed: bool,
}

/// Shares `db.flush()` calls among concurrent writers.
pub(super) struct GroupCommit {
    disk: Arc<Disk>,
    /// Tickets handed out: one per write that wants to be durable.
    requested: AtomicU64,
    committed: watch::Sender<Committed>,
    wake: Notify,
    pub(super) flushes: AtomicU64,
    pub(super) latency: prometheus_client::metrics::histogram::Histogram,
}

impl GroupCommit {
    pub(super) fn new(disk: Arc<Disk>) -> GroupCommit {
        GroupCommit {
            disk,
            requested: AtomicU64::new(0),
            committed: watch::Sender::new(Committed::default()),
            wake: Notify::new(),
            flushes: AtomicU64::new(0),
            // 100 µs to ~3 s.
            latency: prometheus_client::metrics::histogram::Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(0.000_1, 2.0, 15),
            ),
        }
    }

    /// Waits until a flush that began after this call has finished; fails
    /// at once when flushing has failed (now or before).
    pub(super) async fn wait_durable(&self) -> Result<(), StoreError> {
        // The write was applied before the ticket was taken, and the flusher
        // reads `requested` before it starts flushing: a flush that covers
        // the ticket covers the write.
        let ticket = self.requested.fetch_add(1, Ordering::AcqRel) + 1;
        let mut committed = self.committed.subscribe();
        self.wake.notify_one();
        let durable = committed
            .wait_for(|c| c.durable >= ticket || c.failed)
            .await
            .map(|c| c.durable >= ticket)
            .map_err(|_| StoreError::Flush("the flusher stopped".to_owned()))?;
        if durable {
            Ok(())
        } else {
            Err(self
                .disk
                .healthy()
                .err()
                .unwrap_or_else(|| StoreError::Unavailable("the durable flush failed".to_owned())))
        }
    }

    pub(super) async fn run(&self, mut shutdown: Shutdown) {
        loop {
            tokio::select! {
                () = self.wake.notified() => {}
                () = shutdown.recv() => break,
            }
            self.flush_requested().await;
        }
        // Writers may still be waiting on the last tickets: one more flush,
        // bounded, so that a stop never hangs on a disk that does not answer.
        if tokio::time::timeout(FINAL_FLUSH_LIMIT, self.flush_requested())
            .await
            .is_err()
        {
            self.disk.health().fail(
                FailureKind::Flush,
                format!("the last flush did not finish within {FINAL_FLUSH_LIMIT:?}"),
            );
            self.committed.send_modify(|c| c.failed = true);
        }
    }

    /// One flush covering every ticket handed out so far, unless they are
    /// covered already or flushing has failed. A failure is published to
    /// every waiter, never retried: after a failed flush sled's state in
    /// memory cannot be trusted to reach the disk.
    async fn flush_requested(&self) {
        let target = self.requested.load(Ordering::Acquire);
        let now = *self.committed.borrow();
        if target <= now.durable || now.failed {
            return;
        }
        let disk = Arc::clone(&self.disk);
        let started = std::time::Instant::now();
        match tokio::task::spawn_blocking(move || disk.flush()).await {
            Ok(Ok(())) => {
                self.latency.observe(started.elapsed().as_secs_f64());
                self.flushes.fetch_add(1, Ordering::Relaxed);
                self.committed
                    .send_modify(|c| c.durable = c.durable.max(target));
            }
            Ok(Err(e)) => {
                // The disk recorded (and logged) the failure.
                tracing::debug!("durable flush failed: {e}");
                self.committed.send_modify(|c| c.failed = true);
            }
            Err(e) => {
                self.disk
                    .health()
                    .fail(FailureKind::Flush, format!("the flush task failed: {e}"));
                self.committed.send_modify(|c| c.failed = true);
            }
        }
    }
}
