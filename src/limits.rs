//! Rate limits, keyed by phone number, on governor's GCRA.
//!
//! The clock governor sees is Roster's injected wall clock in nanoseconds
//! since the Unix epoch ([`WallClock`]), clamped so that it never runs
//! backwards: a wall clock set back by NTP must never hand out a fresh quota.
//!
//! Strangers (numbers not in the directory) get one polite refusal an hour
//! and silence otherwise, so nobody can make the organisation pay for
//! outbound messages by writing to it.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::clock::SharedClock;
use crate::phone::PhoneNumber;

/// Roster's clock as governor wants it: nanoseconds since the Unix epoch,
/// never going backwards within a process.
#[derive(Debug, Clone)]
pub struct WallClock {
    clock: SharedClock,
    /// The latest reading handed out, in nanoseconds.
    latest: Arc<AtomicU64>,
}

impl WallClock {
    pub fn new(clock: SharedClock) -> WallClock {
        WallClock {
            clock,
            latest: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl GovernorClock for WallClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let reading = self.clock.now_ms().saturating_mul(1_000_000);
        let previous = self.latest.fetch_max(reading, Ordering::AcqRel);
        Nanos::from(previous.max(reading))
    }
}

/// A keyed in-memory limiter on the wall clock.
type MemoryLimiter =
    RateLimiter<PhoneNumber, DefaultKeyedStateStore<PhoneNumber>, WallClock, NoOpMiddleware<Nanos>>;

/// One refusal per stranger per hour.
#[derive(Debug)]
pub struct StrangerLimiter {
    limiter: MemoryLimiter,
}

impl StrangerLimiter {
    pub fn new(clock: SharedClock) -> StrangerLimiter {
        let quota = Quota::per_hour(NonZeroU32::MIN);
        StrangerLimiter {
            limiter: RateLimiter::dashmap_with_clock(quota, WallClock::new(clock)),
        }
    }

    /// Whether this stranger should get the polite refusal now (else silence).
    pub fn may_reply(&self, phone: &PhoneNumber) -> bool {
        self.limiter.check_key(phone).is_ok()
    }

    /// Forgets strangers whose hour has passed.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// Rounds a wait up to whole minutes, at least one.
pub fn minutes_to_wait(wait: std::time::Duration) -> u64 {
    wait.as_secs().div_ceil(60).max(1)
}
