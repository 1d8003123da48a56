//! The store's background tasks: the sweeper, which removes what is due
//! every `session.sweep_interval`, beside the group-commit flusher and the
//! storage watcher; [`super::Store::run`] runs them until shutdown.

use std::sync::Arc;
use std::time::Duration;

use super::Store;
use crate::shutdown::Shutdown;

/// Sweeps every `interval` until `shutdown` fires.
pub(super) async fn run(store: Arc<Store>, interval: Duration, mut shutdown: Shutdown) {
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
    }
}
