//! The background sweeper: removes expired sessions and remembered replies
//! from disk every `session.sweep_interval`.
//!
//! Reads never need it (an expired session is absent as soon as it expires);
//! it keeps the disk and the cache from filling with the dead. The shape is
//! mini-redis's `purge_expired_tasks`: a loop that sleeps until the next
//! tick or the shutdown, whichever comes first.

use std::sync::Arc;
use std::time::Duration;

use super::SessionStore;
use crate::shutdown::Shutdown;

/// Sweeps every `interval` until `shutdown`; `housekeeping` runs after each
/// sweep for other state that forgets idle phones (rate limiters).
pub async fn run(
    store: Arc<SessionStore>,
    interval: Duration,
    housekeeping: Arc<dyn Fn() + Send + Sync>,
    mut shutdown: Shutdown,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.recv() => break,
        }
        let started = std::time::Instant::now();
        match store.sweep().await {
            Ok(report) if report.sessions + report.messages > 0 => tracing::info!(
                sessions = report.sessions,
                messages = report.messages,
                stale_keys = report.stale_keys,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "swept expired state"
            ),
            Ok(report) => {
                tracing::debug!(stale_keys = report.stale_keys, "sweep found nothing due")
            }
            Err(e) => tracing::error!("sweep failed (will retry next interval): {e}"),
        }
        // Housekeeping scans other trees; keep it off the async workers.
        let chores = Arc::clone(&housekeeping);
        if let Err(e) = tokio::task::spawn_blocking(move || chores()).await {
            tracing::error!("housekeeping failed: {e}");
        }
    }
    tracing::debug!("sweeper stopped");
}
