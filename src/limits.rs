//! Rate limits keyed by phone number, on governor's GCRA, that survive
//! restarts.
//!
//! Two limits protect the directory and the organisation's Twilio bill:
//! messages (`limits.messages_per_hour`, default 50) and searches
//! (`limits.searches_per_hour`, default 30). Burst equals the quota unless
//! `limits.*_burst` says otherwise, so a quiet member may use the whole
//! quota at once and then regains one every `3600 s / quota`.
//!
//! # State lives in the phone record
//!
//! This module is the arithmetic and the refusal policy; the state of each
//! phone is a [`Bucket`] in its record ([`crate::store`]), checked and
//! changed within the phone's turn and committed with the rest of the
//! exchange, so a check costs no write of its own. A bucket keeps its
//! theoretical arrival time (TAT) as **absolute** nanoseconds since the Unix
//! epoch, so it means the same after a restart or a crash: a member who spent
//! the quota is still limited. Each check runs governor's GCRA on a limiter
//! built for that one check, whose `start` is the check's own `now`: a TAT at
//! or before now is a full bucket, a later one is `TAT - now` into governor's
//! relative time, and the TAT governor returns is turned back into an
//! absolute one the same way.
//!
//! The clock never runs backwards within a process ([`Limits`] hands out the
//! latest reading it has seen), and a wall clock set back across a restart
//! only makes a stored TAT lie further in the future: going back in time
//! never hands out a fresh quota.
//!
//! # Refusals
//!
//! A refused member gets one friendly reply that says when to try again;
//! further refusals in the same stretch are silent (an empty `<Response/>`
//! costs nothing). The end of the stretch is kept in the bucket. Strangers
//! get one polite refusal an hour from an in-memory limiter that remembers
//! at most `limits.max_strangers` numbers (default 100,000), the least
//! recently seen forgotten first: a stranger has no record, and a flood of
//! numbers must not write to disk.

use std::cell::Cell;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{NotKeyed, StateStore};
use governor::{Quota, RateLimiter};
use serde::Serialize;

use crate::clock::SharedClock;
use crate::config::LimitsConfig;
use crate::phone::PhoneNumber;
use crate::store::record::{Bucket, LimitState};

/// governor's clock for one check: always that check's `now`.
#[derive(Debug, Clone, Copy)]
struct At(Nanos);

impl GovernorClock for At {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        self.0
    }
}

/// governor's state for one check: the bucket's TAT relative to `now`.
#[derive(Debug, Default)]
struct OneBucket {
    relative: Cell<Option<Nanos>>,
}

impl StateStore for OneBucket {
    type Key = NotKeyed;

    fn measure_and_replace<T, F, E>(&self, _key: &NotKeyed, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let (result, next) = f(self.relative.get())?;
        self.relative.set(Some(next));
        Ok(result)
    }
}

/// What a check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Refused; `notify` is true for the first refusal of a stretch only.
    Refused {
        wait: Duration,
        notify: bool,
    },
}

/// A non-consuming view of what a phone has left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Remaining {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until one more is available (0 when some are left).
    pub next_in_secs: u64,
    /// Seconds until the full burst is available again.
    pub full_in_secs: u64,
}

/// One limit (messages or searches): its quota and name.
#[derive(Debug)]
pub struct Limit {
    name: &'static str,
    per_hour: u32,
    quota: Quota,
}

impl Limit {
    fn new(name: &'static str, per_hour: u32, burst: u32) -> Limit {
        let per_hour_nz = NonZeroU32::new(per_hour).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(per_hour_nz);
        Limit {
            name,
            per_hour,
            quota: Quota::per_hour(per_hour_nz).allow_burst(burst),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn per_hour(&self) -> u32 {
        self.per_hour
    }

    /// Checks and, if allowed, consumes one from `bucket` at `now_ns`; on a
    /// refusal, whether it is the first of its stretch (then the stretch is
    /// remembered in the bucket). The caller holds the phone's turn.
    pub fn check(&self, bucket: &mut Bucket, now_ns: u64) -> Verdict {
        let state = OneBucket {
            relative: Cell::new(
                bucket
                    .tat_ns
                    .checked_sub(now_ns)
                    .filter(|&r| r > 0)
                    .map(Nanos::from),
            ),
        };
        let limiter: RateLimiter<NotKeyed, OneBucket, At, NoOpMiddleware<Nanos>> =
            RateLimiter::new(self.quota, state, At(Nanos::from(now_ns)));
        match limiter.check() {
            Ok(()) => {
                let relative = limiter.into_state_store().relative.get();
                bucket.tat_ns = now_ns.saturating_add(relative.map_or(0, |r| r.as_u64()));
                Verdict::Allowed
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(Nanos::from(now_ns));
                let notify = bucket.told_until_ns <= now_ns;
                if notify {
                    bucket.told_until_ns =
                        now_ns.saturating_add(u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX));
                }
                Verdict::Refused { wait, notify }
            }
        }
    }

    /// What `bucket` has left at `now_ns`, without consuming anything.
    pub fn peek(&self, bucket: &Bucket, now_ns: u64) -> Remaining {
        let t = u64::try_from(self.quota.replenish_interval().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        let burst = self.quota.burst_size().get();
        let tau = t.saturating_mul(u64::from(burst) - 1);
        let secs = |nanos: u64| nanos.div_ceil(1_000_000_000);
        if bucket.tat_ns <= now_ns {
            return Remaining {
                limit: burst,
                remaining: burst,
                next_in_secs: 0,
                full_in_secs: 0,
            };
        }
        let tat = bucket.tat_ns;
        let budget = now_ns
            .saturating_add(tau)
            .saturating_add(t)
            .saturating_sub(tat);
        let remaining = u32::try_from(budget / t).unwrap_or(u32::MAX).min(burst);
        Remaining {
            limit: burst,
            remaining,
            next_in_secs: if remaining > 0 {
                0
            } else {
                secs(t - budget % t)
            },
            full_in_secs: secs(tat - now_ns),
        }
    }
}

/// All of Roster's rate limits.
#[derive(Debug)]
pub struct Limits {
    pub messages: Limit,
    pub searches: Limit,
    pub strangers: StrangerLimiter,
    clock: SharedClock,
    /// The latest reading handed out (ns): the clock never runs backwards.
    latest_ns: AtomicU64,
}

/// What `GET /admin/limits/{phone}` and the session stats show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LimitsView {
    pub messages: Remaining,
    pub searches: Remaining,
}

impl Limits {
    /// The limits of `config`.
    pub fn new(config: &LimitsConfig, clock: SharedClock) -> Limits {
        Limits {
            messages: Limit::new("messages", config.messages_per_hour, config.messages_burst),
            searches: Limit::new("searches", config.searches_per_hour, config.searches_burst),
            strangers: StrangerLimiter::new(
                clock.clone(),
                usize::try_from(config.max_strangers).unwrap_or(usize::MAX),
            ),
            clock,
            latest_ns: AtomicU64::new(0),
        }
    }

    /// Now, in ns since the epoch, never earlier than a reading handed out
    /// before.
    pub fn now_ns(&self) -> u64 {
        self.at(self.clock.now_ms())
    }

    /// `now_ms` (a turn's time: this process's clock, or a shared store's
    /// server clock) in ns, never earlier than a reading handed out before.
    pub fn at(&self, now_ms: u64) -> u64 {
        let reading = now_ms.saturating_mul(1_000_000);
        let previous = self.latest_ns.fetch_max(reading, Ordering::AcqRel);
        previous.max(reading)
    }

    /// What a phone with `state` has left at `now_ms` (the time of the turn
    /// that read it: with a shared store, Redis's clock).
    pub fn view_at(&self, state: &LimitState, now_ms: u64) -> LimitsView {
        let now = self.at(now_ms);
        LimitsView {
            messages: self.messages.peek(&state.messages, now),
            searches: self.searches.peek(&state.searches, now),
        }
    }
}

/// One refusal per stranger per hour, remembered for at most
/// `limits.max_strangers` numbers: the least recently seen is forgotten
/// first, so a flood of millions of numbers costs bounded memory. A
/// stranger forgotten early only gets the polite refusal again sooner.
#[derive(Debug)]
pub struct StrangerLimiter {
    /// Each stranger's end of silence (ms since the epoch), least recently
    /// seen first.
    told_until: std::sync::Mutex<lru::LruCache<PhoneNumber, u64>>,
    capacity: usize,
    clock: SharedClock,
}

/// How long a stranger stays silenced after a refusal.
const STRANGER_SILENCE_MS: u64 = 3_600_000;

impl StrangerLimiter {
    /// Remembers at most `capacity` strangers (at least one).
    pub fn new(clock: SharedClock, capacity: usize) -> StrangerLimiter {
        StrangerLimiter {
            // Unbounded in the type, bounded below: no table is reserved
            // for strangers who never come.
            told_until: std::sync::Mutex::new(lru::LruCache::unbounded()),
            capacity: capacity.max(1),
            clock,
        }
    }

    fn told(&self) -> std::sync::MutexGuard<'_, lru::LruCache<PhoneNumber, u64>> {
        self.told_until.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this stranger should get the polite refusal now (else silence).
    pub fn may_reply(&self, phone: &PhoneNumber) -> bool {
        let now = self.clock.now_ms();
        let mut told = self.told();
        // The least recently seen first: those whose hour is over go.
        while told.peek_lru().is_some_and(|(_, &until)| until <= now) {
            told.pop_lru();
        }
        if told.get(phone).is_some_and(|&until| until > now) {
            return false;
        }
        if !told.contains(phone) {
            while told.len() >= self.capacity {
                told.pop_lru();
            }
        }
        told.put(*phone, now.saturating_add(STRANGER_SILENCE_MS));
        true
    }

    /// Forgets strangers whose hour has passed.
    pub fn forget_idle(&self) {
        let now = self.clock.now_ms();
        self.told().retain(|_, &mut until| until > now);
    }

    /// Strangers remembered now (at most the capacity).
    pub fn len(&self) -> usize {
        self.told().len()
    }

    pub fn is_empty(&self) -> bool {
        self.told().is_empty()
    }

    /// The most strangers remembered at once (`limits.max_strangers`).
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// Rounds a wait up to whole minutes, at least one.
pub fn minutes_to_wait(wait: Duration) -> u64 {
    u64::try_from(wait.as_nanos().div_ceil(60_000_000_000))
        .unwrap_or(u64::MAX)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_round_up_to_whole_minutes() {
        assert_eq!(minutes_to_wait(Duration::ZERO), 1);
        assert_eq!(minutes_to_wait(Duration::from_secs(1)), 1);
        assert_eq!(minutes_to_wait(Duration::from_secs(60)), 1);
        assert_eq!(minutes_to_wait(Duration::from_millis(60_001)), 2);
        assert_eq!(minutes_to_wait(Duration::from_secs(72)), 2);
    }
}
