//! Rate limits keyed by phone number, on governor's GCRA, that survive
//! restarts.
//!
//! Two persistent limiters protect the directory and the organisation's
//! Twilio bill: messages (`limits.messages_per_hour`, default 50) and
//! searches (`limits.searches_per_hour`, default 30). Burst equals the quota
//! unless `limits.*_burst` says otherwise, so a quiet member may use the
//! whole quota at once and then regains one every `3600 s / quota`.
//!
//! # Persistence
//!
//! governor's keyed limiters keep each key's theoretical arrival time (TAT)
//! relative to a private `start`, taken from the clock's first `now()` when
//! the limiter is built. Here the clock ([`WallClock`]) reads wall-clock
//! nanoseconds since the Unix epoch and records that first reading, and the
//! [`SledState`] store keeps the **absolute** TAT (`start + relative`) in the
//! `limits` sled tree. A limiter built after a restart has a new `start`, but
//! the absolute TAT means the same thing to it, so a member who spent the
//! quota is still limited after a restart or a crash. Each check runs under
//! a lock of the phone's shard of an in-memory copy of the TATs (read from
//! sled once, then written through), so check and consume are one atomic
//! step under any concurrency and a check costs one sled write, no read.
//!
//! The clock never runs backwards within a process, and a wall clock set
//! back across a restart only makes a stored TAT lie further in the future:
//! going back in time never hands out a fresh quota.
//!
//! # Refusals
//!
//! A refused member gets one friendly reply that says when to try again;
//! further refusals in the same stretch are silent (an empty `<Response/>`
//! costs nothing). The end of the stretch is stored beside the TAT.
//! Strangers get one polite refusal an hour from an in-memory limiter that
//! remembers at most `limits.max_strangers` numbers (default 100,000), the
//! least recently seen forgotten first.
//!
//! # Memory
//!
//! Every per-phone structure in memory is bounded: strangers by
//! `limits.max_strangers`; the TATs kept in memory are members' only (a
//! stranger is refused before any quota is checked), so the directory
//! bounds them, and they are dropped once their bucket has refilled.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::{Quota, RateLimiter};
use serde::Serialize;

use crate::clock::SharedClock;
use crate::config::LimitsConfig;
use crate::phone::PhoneNumber;
use crate::session::codec::LIMIT_V1;

/// Roster's clock as governor wants it: nanoseconds since the Unix epoch,
/// never going backwards within a process; it remembers its first reading,
/// which governor takes as the limiter's `start`.
#[derive(Debug, Clone)]
pub struct WallClock {
    clock: SharedClock,
    /// The latest reading handed out, in nanoseconds.
    latest: Arc<AtomicU64>,
    first: Arc<OnceLock<u64>>,
}

impl WallClock {
    pub fn new(clock: SharedClock) -> WallClock {
        WallClock {
            clock,
            latest: Arc::new(AtomicU64::new(0)),
            first: Arc::new(OnceLock::new()),
        }
    }

    fn now_nanos(&self) -> u64 {
        let reading = self.clock.now_ms().saturating_mul(1_000_000);
        let previous = self.latest.fetch_max(reading, Ordering::AcqRel);
        let now = previous.max(reading);
        self.first.get_or_init(|| now);
        now
    }
}

impl GovernorClock for WallClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.now_nanos())
    }
}

/// governor state in the `limits` sled tree: `name ‖ ':' ‖ phone` →
/// `LIMIT_V1 ‖ absolute TAT (u64 BE nanoseconds since the epoch)`.
#[derive(Debug, Clone)]
pub struct SledState {
    tree: sled::Tree,
    name: &'static str,
    /// The limiter's `start`: its clock's first reading.
    start: Arc<OnceLock<u64>>,
    /// Absolute TATs already read or written, so a check need not read sled;
    /// 0 stands for "no state". Written through to sled under the same lock.
    memory: Arc<[std::sync::Mutex<HashMap<PhoneNumber, u64>>]>,
}

/// Shards of the in-memory TATs; phones spread over them by hash.
const MEMORY_SHARDS: usize = 32;

impl SledState {
    fn key(&self, phone: &PhoneNumber) -> Vec<u8> {
        state_key(self.name, phone)
    }

    fn shard(&self, phone: &PhoneNumber) -> std::sync::MutexGuard<'_, HashMap<PhoneNumber, u64>> {
        use std::hash::BuildHasher;
        let index = (FIXED_HASHER.hash_one(phone) as usize) % self.memory.len();
        self.memory[index].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The stored absolute TAT of `phone` (0 when none), from memory or sled.
    fn stored(
        &self,
        memory: &HashMap<PhoneNumber, u64>,
        phone: &PhoneNumber,
    ) -> Result<u64, sled::Error> {
        if let Some(&absolute) = memory.get(phone) {
            return Ok(absolute);
        }
        Ok(self
            .tree
            .get(self.key(phone))?
            .as_deref()
            .and_then(decode_nanos)
            .unwrap_or(0))
    }

    /// Drops remembered TATs at or before `now` (their buckets are full).
    fn forget_before(&self, now: u64) {
        for shard in self.memory.iter() {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            shard.retain(|_, &mut absolute| absolute > now);
            shard.shrink_to_fit();
        }
    }

    fn remember(&self, phone: &PhoneNumber, absolute: u64) {
        self.shard(phone).insert(*phone, absolute);
    }

    fn start(&self) -> u64 {
        self.start.get().copied().unwrap_or(0)
    }
}

fn state_key(name: &str, phone: &PhoneNumber) -> Vec<u8> {
    format!("{name}:{phone}").into_bytes()
}

fn notice_key(name: &str, phone: &PhoneNumber) -> Vec<u8> {
    format!("{name}-notice:{phone}").into_bytes()
}

fn encode_nanos(nanos: u64) -> [u8; 9] {
    let mut bytes = [0u8; 9];
    bytes[0] = LIMIT_V1;
    bytes[1..].copy_from_slice(&nanos.to_be_bytes());
    bytes
}

/// The stored absolute time, or `None` for a value this version cannot read
/// (treated as absent: a limit is never a reason to refuse a member forever).
fn decode_nanos(bytes: &[u8]) -> Option<u64> {
    match bytes.split_first() {
        Some((&LIMIT_V1, rest)) => rest.try_into().ok().map(u64::from_be_bytes),
        _ => None,
    }
}

impl StateStore for SledState {
    type Key = PhoneNumber;

    /// Check and consume under the phone's shard lock: atomic for every
    /// thread, and sled is written in the same order as memory.
    fn measure_and_replace<T, F, E>(&self, phone: &PhoneNumber, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let start = self.start();
        let mut memory = self.shard(phone);
        let absolute = match self.stored(&memory, phone) {
            Ok(absolute) => absolute,
            Err(e) => {
                // Fail open for members: storage trouble must not lock the
                // whole organisation out. Logged, not persisted.
                tracing::error!(
                    limiter = self.name,
                    "rate-limit state unreadable, allowing: {e}"
                );
                return f(None).map(|(result, _)| result);
            }
        };
        let relative = absolute
            .checked_sub(start)
            .filter(|&relative| relative > 0)
            .map(Nanos::from);
        let (result, next) = match f(relative) {
            Ok(outcome) => outcome,
            Err(refused) => {
                memory.insert(*phone, absolute);
                return Err(refused);
            }
        };
        let absolute = start.saturating_add(next.as_u64());
        if let Err(e) = self
            .tree
            .insert(self.key(phone), &encode_nanos(absolute)[..])
        {
            tracing::error!(limiter = self.name, "rate-limit state not saved: {e}");
        }
        memory.insert(*phone, absolute);
        Ok(result)
    }
}

/// One hasher for the shards of every limiter (no need for per-process keys:
/// phone numbers are not attacker-chosen keys of a public hash table here;
/// the shard only spreads lock contention).
static FIXED_HASHER: std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher> =
    std::hash::BuildHasherDefault::new();

type PersistentRateLimiter = RateLimiter<PhoneNumber, SledState, WallClock, NoOpMiddleware<Nanos>>;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Remaining {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until one more is available (0 when some are left).
    pub next_in_secs: u64,
    /// Seconds until the full burst is available again.
    pub full_in_secs: u64,
}

/// One persistent limiter (messages or searches).
pub struct PersistentLimiter {
    name: &'static str,
    per_hour: u32,
    quota: Quota,
    limiter: PersistentRateLimiter,
    state: SledState,
    clock: WallClock,
}

impl std::fmt::Debug for PersistentLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistentLimiter")
            .field("name", &self.name)
            .field("per_hour", &self.per_hour)
            .finish_non_exhaustive()
    }
}

impl PersistentLimiter {
    fn new(
        name: &'static str,
        tree: sled::Tree,
        per_hour: u32,
        burst: u32,
        clock: SharedClock,
    ) -> PersistentLimiter {
        let per_hour_nz = NonZeroU32::new(per_hour).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(per_hour_nz);
        let quota = Quota::per_hour(per_hour_nz).allow_burst(burst);
        let clock = WallClock::new(clock);
        let state = SledState {
            tree,
            name,
            start: Arc::clone(&clock.first),
            memory: (0..MEMORY_SHARDS)
                .map(|_| std::sync::Mutex::new(HashMap::new()))
                .collect(),
        };
        let limiter = RateLimiter::new(quota, state.clone(), clock.clone());
        PersistentLimiter {
            name,
            per_hour,
            quota,
            limiter,
            state,
            clock,
        }
    }

    /// Checks and, if allowed, consumes one; atomic under concurrency.
    pub fn check(&self, phone: &PhoneNumber) -> Verdict {
        match self.limiter.check_key(phone) {
            Ok(()) => Verdict::Allowed,
            Err(not_until) => {
                let now = self.clock.now_nanos();
                let wait = not_until.wait_time_from(Nanos::from(now));
                let notify = self.claim_notice(phone, now, wait);
                Verdict::Refused { wait, notify }
            }
        }
    }

    /// Whether this refusal is the first of its stretch; if so, remembers
    /// that the member has been told until they are allowed again.
    fn claim_notice(&self, phone: &PhoneNumber, now: u64, wait: Duration) -> bool {
        let key = notice_key(self.name, phone);
        let until = now.saturating_add(u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX));
        loop {
            let current = match self.state.tree.get(&key) {
                Ok(current) => current,
                Err(e) => {
                    tracing::error!(limiter = self.name, "refusal notice state unreadable: {e}");
                    return true;
                }
            };
            if current
                .as_deref()
                .and_then(decode_nanos)
                .is_some_and(|told_until| told_until > now)
            {
                return false;
            }
            match self.state.tree.compare_and_swap(
                &key,
                current.as_deref(),
                Some(&encode_nanos(until)[..]),
            ) {
                Ok(Ok(())) => return true,
                Ok(Err(_)) => continue,
                Err(e) => {
                    tracing::error!(limiter = self.name, "refusal notice state not saved: {e}");
                    return true;
                }
            }
        }
    }

    /// What `phone` has left, without consuming anything.
    pub fn peek(&self, phone: &PhoneNumber) -> Remaining {
        let now = self.clock.now_nanos();
        let t = u64::try_from(self.quota.replenish_interval().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        let burst = self.quota.burst_size().get();
        let tau = t.saturating_mul(u64::from(burst) - 1);
        let tat = {
            let memory = self.state.shard(phone);
            self.state
                .stored(&memory, phone)
                .ok()
                .filter(|&tat| tat > now)
        };
        let secs = |nanos: u64| nanos.div_ceil(1_000_000_000);
        match tat {
            None => Remaining {
                limit: burst,
                remaining: burst,
                next_in_secs: 0,
                full_in_secs: 0,
            },
            Some(tat) => {
                let budget = now
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
                    full_in_secs: secs(tat - now),
                }
            }
        }
    }

    pub fn per_hour(&self) -> u32 {
        self.per_hour
    }
}

/// All of Roster's rate limits.
#[derive(Debug)]
pub struct Limits {
    pub messages: PersistentLimiter,
    pub searches: PersistentLimiter,
    pub strangers: StrangerLimiter,
    tree: sled::Tree,
    clock: SharedClock,
}

/// What `GET /admin/limits/{phone}` and the session stats show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LimitsView {
    pub messages: Remaining,
    pub searches: Remaining,
}

impl Limits {
    /// Opens the `limits` tree of `db` with `config`'s quotas.
    pub fn open(
        db: &sled::Db,
        config: &LimitsConfig,
        clock: SharedClock,
    ) -> Result<Limits, sled::Error> {
        let tree = db.open_tree("limits")?;
        Ok(Limits {
            messages: PersistentLimiter::new(
                "messages",
                tree.clone(),
                config.messages_per_hour,
                config.messages_burst,
                clock.clone(),
            ),
            searches: PersistentLimiter::new(
                "searches",
                tree.clone(),
                config.searches_per_hour,
                config.searches_burst,
                clock.clone(),
            ),
            strangers: StrangerLimiter::new(
                clock.clone(),
                usize::try_from(config.max_strangers).unwrap_or(usize::MAX),
            ),
            tree,
            clock,
        })
    }

    pub fn view(&self, phone: &PhoneNumber) -> LimitsView {
        LimitsView {
            messages: self.messages.peek(phone),
            searches: self.searches.peek(phone),
        }
    }

    /// Drops state that means nothing any more: TATs and refusal notices in
    /// the past (a bucket that has refilled is the same as no bucket), and
    /// strangers whose hour is over. Returns how many entries went.
    pub fn forget_idle(&self) -> u64 {
        self.strangers.forget_idle();
        let now = self.clock.now_ms().saturating_mul(1_000_000);
        self.messages.state.forget_before(now);
        self.searches.state.forget_before(now);
        let mut removed = 0;
        for item in self.tree.iter() {
            let Ok((key, value)) = item else { break };
            if decode_nanos(&value).is_none_or(|at| at <= now) {
                // Only if unchanged: a check may have just renewed it.
                if let Ok(Ok(())) = self
                    .tree
                    .compare_and_swap(&key, Some(&value), None::<&[u8]>)
                {
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Stored rate-limit entries (TATs and notices).
    pub fn stored_entries(&self) -> usize {
        self.tree.len()
    }

    /// Every stored entry still in force, as `(key, absolute time in ns)`:
    /// what a backup needs to restore the limits exactly.
    pub fn entries(&self) -> impl Iterator<Item = Result<(String, u64), sled::Error>> + '_ {
        let now = self.clock.now_ms().saturating_mul(1_000_000);
        self.tree.iter().filter_map(move |item| match item {
            Ok((key, value)) => {
                let at = decode_nanos(&value).filter(|&at| at > now)?;
                Some(Ok((String::from_utf8_lossy(&key).into_owned(), at)))
            }
            Err(e) => Some(Err(e)),
        })
    }

    /// Restores one entry from a backup, replacing what is stored.
    pub fn restore(&self, key: &str, at: u64) -> Result<(), sled::Error> {
        self.tree.insert(key.as_bytes(), &encode_nanos(at)[..])?;
        for limiter in [&self.messages, &self.searches] {
            let phone = key
                .strip_prefix(limiter.name)
                .and_then(|rest| rest.strip_prefix(':'))
                .and_then(PhoneNumber::from_stored);
            if let Some(phone) = phone {
                limiter.state.remember(&phone, at);
            }
        }
        Ok(())
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
