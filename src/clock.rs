//! Time, injected: everything that expires or refills asks a [`Clock`].
//!
//! Production uses [`SystemClock`] (wall-clock milliseconds since the Unix
//! epoch, so stored expiry times and rate-limit state stay meaningful across
//! restarts). Tests use [`ManualClock`] and move time forward themselves
//! instead of sleeping through a TTL or a rate window.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + Debug + 'static {
    fn now_ms(&self) -> u64;

    /// How far a test has moved this clock since it was made (ms); 0 for
    /// the system clock. A shared store keeps time by its server's clock
    /// and adds this, so that tests move a shared store's time as they move
    /// their own, while every instance still reads the one server clock.
    fn advanced_ms(&self) -> i64 {
        0
    }
}

/// The clock every component shares.
pub type SharedClock = Arc<dyn Clock>;

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock that moves only when told to; for tests.
#[derive(Debug)]
pub struct ManualClock {
    now_ms: AtomicU64,
    /// Where it started, for [`Clock::advanced_ms`].
    start_ms: u64,
}

impl ManualClock {
    /// A clock at `start_ms` milliseconds since the epoch.
    pub fn new(start_ms: u64) -> Arc<ManualClock> {
        Arc::new(ManualClock {
            now_ms: AtomicU64::new(start_ms),
            start_ms,
        })
    }

    /// A clock at the current wall-clock time.
    pub fn starting_now() -> Arc<ManualClock> {
        Self::new(SystemClock.now_ms())
    }

    pub fn advance(&self, by: Duration) {
        self.now_ms.fetch_add(duration_ms(by), Ordering::SeqCst);
    }

    /// Moves the clock back, as a wall clock adjusted by NTP may.
    pub fn rewind(&self, by: Duration) {
        self.now_ms.fetch_sub(duration_ms(by), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::SeqCst)
    }

    fn advanced_ms(&self) -> i64 {
        let now = i64::try_from(self.now_ms()).unwrap_or(i64::MAX);
        now.saturating_sub(i64::try_from(self.start_ms).unwrap_or(i64::MAX))
    }
}

/// A duration in whole milliseconds, saturating.
pub fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
