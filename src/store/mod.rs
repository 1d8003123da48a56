//! Where everything Roster keeps about phones lives: one record per phone in
//! a sled tree, a moka cache in front, per-phone turns, group commit, the
//! sweeper, and the migration of older data dirs; or, with
//! `storage.backend = "redis"`, the same records in a Redis that several
//! instances share ([`shared`]), behind the same [`Store`] and [`Turn`]:
//! [`Store::turn`] then takes the phone's lease with the read and
//! [`Turn::commit`] writes under it, so nothing above the store knows
//! which backend it runs on.
//!
//! # Layout
//!
//! One sled tree, `phones`, holds:
//!
//! | key | value |
//! | --- | --- |
//! | `p` ‖ E.164 phone | the versioned [`PhoneRecord`]: session, limits, opt-out, remembered replies |
//! | `e` ‖ due minute (ms, u64 BE, rounded up) ‖ phone | empty: the expiry index the sweeper scans |
//! | `o` ‖ E.164 phone | empty: the phones opted out, for counting and export without a scan |
//! | `#count`, `#open` | the number of stored sessions; present while a process has the store open |
//!
//! A message that is answered commits with **one** insert, the record, plus
//! the index key when the record's due minute changes. Data dirs from before
//! (sessions, replies, limits and opt-outs in trees of their own) are moved
//! into records once, at open (`migrate`).
//!
//! # Crash safety without batches
//!
//! sled 0.34's `apply_batch` and transactions switch the whole process to a
//! global reader-writer lock for every later write (measured: half the
//! webhook throughput), so the store writes single keys, each atomic, in an
//! order in which every crash prefix is harmless: the new index key first,
//! then the record, **the commit point** of an exchange (its session, its
//! limits and the reply to its MessageSid together). An index key whose
//! record does not match it is dropped by the sweeper as stale. An opt-out's
//! `o` key is written before the record and removed after it, so the keys are
//! never fewer than the opted-out records; extras are dropped at open.
//!
//! # Turns and the cache
//!
//! [`Store::turn`] waits for the phone's turn ([`PhoneLocks`]) and loads its
//! record; every read-through, write and eviction of a phone's cache entry
//! happens in its turn (the webhook, the admin API, the sweeper), so a
//! read-through can never put back a record that a concurrent delete just
//! removed, and plain moka operations suffice.
//!
//! # Durability
//!
//! In strict mode a commit waits until a flush that started after it has
//! finished (`commit`: group commit). In relaxed mode sled flushes every
//! `storage.flush_every_ms`.
//!
//! # Storage faults
//!
//! Writes and flushes go through `Disk`, the seam to sled. A failed write
//! or flush (or a data dir that is no longer the one opened) puts storage
//! out of service for good ([`self::health::StorageHealth`]): the commits
//! waiting on that flush get [`StoreError::Unavailable`] at once, as does
//! every later write, without touching sled. The MessageSids of exchanges
//! that were written but never confirmed durable are remembered, so that a
//! redelivery of one is refused (503) rather than answered from memory.
//! Closing flushes within [`FINAL_FLUSH_LIMIT`] and says what could not be
//! flushed.

pub mod check;
pub mod codec;
mod commit;
pub mod dir;
mod disk;
pub(crate) mod export;
pub mod health;
mod locks;
mod migrate;
pub mod record;
pub mod shared;
mod sweeper;
pub(crate) mod trees;
mod turn;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moka::future::Cache;
use serde::{Deserialize, Serialize};

use self::codec::CodecError;
use self::commit::GroupCommit;
pub use self::dir::{StorageError, open, open_when_space};
use self::disk::Disk;
use self::health::{DataDirIdentity, FailureKind, StorageHealth};
pub use self::locks::{PhoneLocks, PhoneTurn};
use self::record::{Keeping, LimitState, PhoneRecord};
use self::shared::{Lease, SharedRecords};
pub use self::turn::Turn;
use crate::clock::{SharedClock, duration_ms};
use crate::config::{Config, Durability};
use crate::conversation::Session;
use crate::phone::PhoneNumber;
use crate::shutdown::Shutdown;

/// How long the last flush at shutdown (and at close) may take before what
/// it did not cover is reported unsaved and the process exits anyway.
pub const FINAL_FLUSH_LIMIT: Duration = Duration::from_secs(5);

const TREE: &str = "phones";
const RECORD: u8 = b'p';
const DUE: u8 = b'e';
const OPTED_OUT: u8 = b'o';
/// Index keys are per minute (rounded up), so the many messages of one
/// conversation within a minute touch a single index key.
const DUE_BUCKET_MS: u64 = 60_000;

fn due_bucket(due_ms: u64) -> u64 {
    due_ms.div_ceil(DUE_BUCKET_MS).saturating_mul(DUE_BUCKET_MS)
}

/// The number of stored sessions, so that opening a store with a million
/// need not count them. Updated right after each change; a crash between
/// the two is detected by [`OPEN`] and the count rebuilt.
const COUNT: &[u8] = b"#count";
/// Present while a process has the store open; left behind by a crash.
const OPEN: &[u8] = b"#open";

fn encode_count(count: u64) -> [u8; 9] {
    let mut bytes = [0u8; 9];
    bytes[0] = codec::COUNT_V1;
    bytes[1..].copy_from_slice(&count.to_be_bytes());
    bytes
}

fn decode_count(bytes: &[u8]) -> Result<u64, CodecError> {
    match bytes.split_first() {
        Some((&codec::COUNT_V1, rest)) => {
            rest.try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| CodecError::Corrupt {
                    what: "session count",
                    reason: format!("{} bytes", bytes.len()),
                })
        }
        Some((&found, _)) => Err(CodecError::UnknownVersion {
            what: "session count",
            found,
            expected: codec::COUNT_V1,
        }),
        None => Err(CodecError::Empty),
    }
}

fn record_key(phone: &PhoneNumber) -> Vec<u8> {
    phone_key(RECORD, phone)
}

fn phone_key(space: u8, phone: &PhoneNumber) -> Vec<u8> {
    let e164 = phone.e164();
    let mut key = Vec::with_capacity(1 + e164.len());
    key.push(space);
    key.extend_from_slice(e164.as_bytes());
    key
}

fn due_key(bucket: u64, phone: &PhoneNumber) -> Vec<u8> {
    let e164 = phone.e164();
    let mut key = Vec::with_capacity(9 + e164.len());
    key.push(DUE);
    key.extend_from_slice(&bucket.to_be_bytes());
    key.extend_from_slice(e164.as_bytes());
    key
}

/// Splits an index key into its minute and phone.
fn parse_due_key(key: &[u8]) -> Option<(u64, PhoneNumber)> {
    let time = key.get(1..9)?;
    let phone = PhoneNumber::from_stored(std::str::from_utf8(key.get(9..)?).ok()?)?;
    Some((u64::from_be_bytes(time.try_into().ok()?), phone))
}

/// The phone of a `p` or `o` key.
fn parse_phone_key(key: &[u8]) -> Option<PhoneNumber> {
    PhoneNumber::from_stored(std::str::from_utf8(key.get(1..)?).ok()?)
}

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("the durable flush failed: {0}")]
    Flush(String),
    #[error("a background task of the store failed: {0}")]
    Task(String),
    /// Storage is out of service (a failed write or flush, or a lost data
    /// dir): nothing is written until the store is reopened.
    #[error("storage is out of service: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// Whether the same request may succeed later (a retry, a reopen): the
    /// disk or the store failed, not the data. An unreadable stored value
    /// is not retryable.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, StoreError::Codec(_))
    }
}

/// Counters for the admin API and metrics.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StoreStats {
    /// Sessions on disk, including expired ones the sweeper has not reached.
    pub stored_sessions: u64,
    pub cache_entries: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// hits / (hits + misses), 0 when nothing was read yet.
    pub cache_hit_rate: f64,
    pub sweeps: u64,
    pub swept_sessions: u64,
    pub swept_messages: u64,
    /// Durable flushes run by the group committer.
    pub flushes: u64,
    /// Round trips to the shared Redis since start (0 with sled).
    #[serde(default)]
    pub redis_round_trips: u64,
}

#[derive(Debug, Default)]
struct Counters {
    stored_sessions: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    sweeps: AtomicU64,
    swept_sessions: AtomicU64,
    swept_messages: AtomicU64,
}

/// One stored record, or why it could not be read.
pub type RecordItem = Result<(PhoneNumber, PhoneRecord), StoreError>;

/// What one sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Expired sessions removed.
    pub sessions: u64,
    /// Remembered replies past the dedupe window removed.
    pub messages: u64,
    /// Index keys dropped because their record had moved on or was gone.
    pub stale_keys: u64,
    /// Due records left in place because this version cannot read them
    /// (written by a newer Roster, or damaged); each is logged.
    pub unreadable: u64,
}

/// The store; share it behind an `Arc`.
pub struct Store {
    disk: Arc<Disk>,
    tree: sled::Tree,
    cache: Cache<PhoneNumber, Arc<PhoneRecord>>,
    locks: PhoneLocks,
    clock: SharedClock,
    ttl_ms: u64,
    max_history: usize,
    dedupe_ttl_ms: u64,
    sweep_batch: usize,
    durability: Durability,
    commits: GroupCommit,
    counters: Counters,
    /// The phones opted out now (the `o` keys).
    opted_out: Mutex<HashSet<PhoneNumber>>,
    /// MessageSids of exchanges written but never confirmed durable (their
    /// flush failed): a redelivery of one is refused, not answered.
    unconfirmed: Mutex<HashSet<String>>,
    /// With `storage.backend = "redis"`: where the records live instead of
    /// the `phones` tree (the data dir then keeps only this instance's
    /// own trees: figures, vectors, outbox).
    shared: Option<Arc<SharedRecords>>,
    /// With a shared store: Redis's clock less this process's, as of the
    /// last turn (what listings and exports reckon expiry by).
    shared_skew_ms: std::sync::atomic::AtomicI64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("durability", &self.durability)
            .field("ttl_ms", &self.ttl_ms)
            .finish_non_exhaustive()
    }
}

/// moka expiry from each record's own due time, so cache and sled agree.
struct RecordExpiry {
    clock: SharedClock,
}

impl RecordExpiry {
    fn remaining(&self, record: &PhoneRecord) -> Option<Duration> {
        let until = record.live_until()?;
        Some(Duration::from_millis(
            until.saturating_sub(self.clock.now_ms()),
        ))
    }
}

impl moka::Expiry<PhoneNumber, Arc<PhoneRecord>> for RecordExpiry {
    fn expire_after_create(
        &self,
        _key: &PhoneNumber,
        value: &Arc<PhoneRecord>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        self.remaining(value)
    }

    fn expire_after_update(
        &self,
        _key: &PhoneNumber,
        value: &Arc<PhoneRecord>,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        self.remaining(value)
    }
}

/// When the sweeper should next look at `record`: the first of its parts
/// to expire (the session, the oldest remembered reply), or, with neither
/// left, the end of its limits; `None` when there is nothing to sweep (an
/// opt-out with nothing else).
fn due_at(record: &PhoneRecord) -> Option<u64> {
    let session = record.session.as_ref().map(|s| s.expires_at_ms);
    let reply = record.replies.iter().map(|r| r.expires_at_ms).min();
    match session.into_iter().chain(reply).min() {
        Some(due) => Some(due),
        None if record.opted_out_at_ms.is_some() => None,
        None => record.live_until(),
    }
}

impl Store {
    /// Opens the store in `db` with the settings of `config`, moving the
    /// state of an older data dir into records first.
    pub fn open(db: &sled::Db, config: &Config, clock: SharedClock) -> Result<Store, StoreError> {
        let tree = db.open_tree(TREE)?;
        let session = &config.session;
        let dedupe_ttl_ms = duration_ms(session.dedupe_ttl).max(1);
        let keeping = Keeping {
            max_replies: session.max_history,
            dedupe_ttl_ms,
        };
        let migrated = migrate::from_v1(db, &tree, keeping, clock.now_ms())?;
        let clean = tree.get(OPEN)?.is_none() && migrated == 0;
        let stored = match tree.get(COUNT)? {
            Some(bytes) if clean => decode_count(&bytes)?,
            // After a crash, a migration, or in a new data dir: count once.
            _ => {
                let counted = count_sessions(&tree)?;
                tree.insert(COUNT, &encode_count(counted)[..])?;
                counted
            }
        };
        tree.insert(OPEN, &[])?;
        let opted_out = read_opt_outs(&tree)?;
        let cache = Cache::builder()
            .max_capacity(session.cache_capacity)
            .expire_after(RecordExpiry {
                clock: clock.clone(),
            })
            .build();
        let counters = Counters::default();
        counters.stored_sessions.store(stored, Ordering::Relaxed);
        let identity = match DataDirIdentity::capture(&config.storage.data_dir) {
            Ok(identity) => Some(identity),
            Err(e) => {
                tracing::debug!("the data dir's identity is not checked: {e}");
                None
            }
        };
        let disk = Arc::new(Disk::new(db.clone(), identity));
        Ok(Store {
            commits: GroupCommit::new(Arc::clone(&disk)),
            disk,
            tree,
            cache,
            locks: PhoneLocks::default(),
            clock,
            ttl_ms: duration_ms(session.ttl),
            max_history: session.max_history,
            dedupe_ttl_ms,
            sweep_batch: session.sweep_batch,
            durability: config.storage.durability,
            counters,
            opted_out: Mutex::new(opted_out),
            unconfirmed: Mutex::new(HashSet::new()),
            shared: None,
            shared_skew_ms: std::sync::atomic::AtomicI64::new(0),
        })
    }

    /// The same store with its phone records in a shared Redis.
    pub fn with_shared(mut self, shared: SharedRecords) -> Store {
        self.shared = Some(Arc::new(shared));
        self
    }

    /// The shared Redis the records are in, if they are.
    pub fn shared(&self) -> Option<&SharedRecords> {
        self.shared.as_deref()
    }

    /// Waits for this phone's turn and loads its record: what the webhook
    /// reads and changes, committed once at the end. With a shared store
    /// the turn is cluster-wide: this process's lock, then the phone's
    /// lease in Redis.
    pub async fn turn(&self, phone: PhoneNumber) -> Result<Turn<'_>, StoreError> {
        let lock = self.locks.lock(phone).await;
        match &self.shared {
            None => {
                let stored = self.load(&phone).await?;
                Ok(Turn::new(
                    self,
                    phone,
                    lock,
                    stored,
                    None,
                    self.clock.now_ms(),
                ))
            }
            Some(shared) => {
                let begun = shared.begin(phone, self.clock.advanced_ms()).await?;
                let skew = i64::try_from(begun.now_ms).unwrap_or(i64::MAX)
                    - i64::try_from(self.clock.now_ms()).unwrap_or(i64::MAX);
                self.shared_skew_ms.store(skew, Ordering::Relaxed);
                let stored = begun.record.map(Arc::new);
                Ok(Turn::new(
                    self,
                    phone,
                    lock,
                    stored,
                    Some(begun.lease),
                    begun.now_ms,
                ))
            }
        }
    }

    pub fn ttl_ms(&self) -> u64 {
        self.ttl_ms
    }

    pub fn max_history(&self) -> usize {
        self.max_history
    }

    pub fn dedupe_ttl_ms(&self) -> u64 {
        self.dedupe_ttl_ms
    }

    /// The store's time now (this clock, or Redis's with a shared store):
    /// what an export or a view reckons expiry by.
    pub fn now_ms(&self) -> u64 {
        self.live_now()
    }

    fn keeping(&self) -> Keeping {
        Keeping {
            max_replies: self.max_history,
            dedupe_ttl_ms: self.dedupe_ttl_ms,
        }
    }

    /// The record of `phone` as stored, from the cache or sled; the caller
    /// holds the phone's turn.
    async fn load(&self, phone: &PhoneNumber) -> Result<Option<Arc<PhoneRecord>>, StoreError> {
        if let Some(record) = self.cache.get(phone).await {
            self.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(record));
        }
        self.counters.cache_misses.fetch_add(1, Ordering::Relaxed);
        match self.read_stored(phone)? {
            Some(record) => {
                let record = Arc::new(record);
                self.cache.insert(*phone, Arc::clone(&record)).await;
                Ok(Some(record))
            }
            None => Ok(None),
        }
    }

    fn read_stored(&self, phone: &PhoneNumber) -> Result<Option<PhoneRecord>, StoreError> {
        match self.tree.get(record_key(phone))? {
            Some(bytes) => Ok(Some(PhoneRecord::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Writes `record` for `phone` in its crash-safe order, replacing
    /// `stored` (as loaded in this turn), and waits for the disk in strict
    /// mode. `message_sid` is the exchange's, for what a failure leaves.
    async fn commit(
        &self,
        phone: PhoneNumber,
        stored: Option<&PhoneRecord>,
        mut record: PhoneRecord,
        message_sid: Option<&str>,
        lease: Option<&mut Lease>,
        now_ms: u64,
    ) -> Result<Arc<PhoneRecord>, StoreError> {
        if let (Some(shared), Some(lease)) = (&self.shared, lease) {
            shared.commit(lease, &mut record, now_ms).await?;
            return Ok(Arc::new(record));
        }
        let committed = async {
            let record = self.disk.write(|| {
                self.write_record(&phone, stored, &mut record)
                    .map(|()| record)
            })?;
            let record = Arc::new(record);
            self.cache.insert(phone, Arc::clone(&record)).await;
            self.make_durable().await.map(|()| record)
        }
        .await;
        if let (Err(_), Some(sid)) = (&committed, message_sid) {
            self.unconfirmed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(sid.to_owned());
        }
        committed
    }

    /// The writes of a commit, in the order the module docs argue for.
    fn write_record(
        &self,
        phone: &PhoneNumber,
        stored: Option<&PhoneRecord>,
        record: &mut PhoneRecord,
    ) -> Result<(), StoreError> {
        let bucket = due_at(record).map(due_bucket);
        let stored_bucket = stored.and_then(|s| due_at(s).map(due_bucket));
        if let Some(bucket) = bucket.filter(|&b| Some(b) != stored_bucket) {
            self.tree.insert(due_key(bucket, phone), &[])?;
        }
        let was_opted_out = stored.is_some_and(|s| s.opted_out_at_ms.is_some());
        let opts_out = record.opted_out_at_ms.is_some();
        if opts_out && !was_opted_out {
            self.tree.insert(phone_key(OPTED_OUT, phone), &[])?;
        }
        self.tree.insert(record_key(phone), record.encode())?;
        if was_opted_out && !opts_out {
            self.tree.remove(phone_key(OPTED_OUT, phone))?;
        }
        self.note_opt_out(phone, opts_out);
        let had_session = stored.is_some_and(|s| s.session.is_some());
        match (had_session, record.session.is_some()) {
            (false, true) => self.adjust_count(1),
            (true, false) => self.adjust_count(-1),
            _ => Ok(()),
        }
    }

    fn note_opt_out(&self, phone: &PhoneNumber, opted_out: bool) {
        let mut phones = self.opted_out.lock().unwrap_or_else(|p| p.into_inner());
        if opted_out {
            phones.insert(*phone);
        } else {
            phones.remove(phone);
        }
    }

    /// `Err` when `message_sid`'s exchange was written but never confirmed
    /// durable (its flush failed): it was never acknowledged, and it may
    /// not be on disk, so a redelivery must not be answered from memory.
    fn refuse_unconfirmed(&self, message_sid: &str) -> Result<(), StoreError> {
        if self.health().is_failed()
            && self
                .unconfirmed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(message_sid)
        {
            return Err(self.disk.writable().err().unwrap_or_else(|| {
                StoreError::Unavailable("the reply was never confirmed durable".to_owned())
            }));
        }
        Ok(())
    }

    /// `Err` at once when storage is out of service (nothing would be
    /// written): for a caller about to do work that ends in a write.
    pub fn writable(&self) -> Result<(), StoreError> {
        if let Some(reason) = self.shared_failure() {
            return Err(StoreError::Unavailable(reason));
        }
        self.disk.writable()
    }

    /// Why the shared store is failing, if it is (for `/readyz`).
    pub fn shared_failure(&self) -> Option<String> {
        self.shared.as_ref().and_then(|s| s.failure())
    }

    /// Whether the data dir can still be written, and why not.
    pub fn health(&self) -> &Arc<StorageHealth> {
        self.disk.health()
    }

    /// The dashboard's hourly figures: in this store's database, or in the
    /// shared Redis.
    pub(crate) fn hour_tree(&self) -> Result<trees::HourTree, StorageError> {
        match &self.shared {
            Some(shared) => Ok(trees::HourTree::Shared(Box::new(shared.hours()))),
            None => trees::HourTree::open(self.tree_db()),
        }
    }

    /// The cache of embedding vectors, in this store's database.
    pub(crate) fn vector_cache(&self) -> Result<trees::VectorCache, StorageError> {
        match &self.shared {
            Some(shared) => Ok(trees::VectorCache::Shared(shared.vectors())),
            None => trees::VectorCache::open(self.tree_db()),
        }
    }

    /// The outbox of late replies, in this store's database.
    /// `takeover`: with a shared store, how long an entry an instance left
    /// untouched waits before another instance sends it.
    pub(crate) fn outbox_tree(
        &self,
        takeover: Duration,
    ) -> Result<trees::OutboxTree, StorageError> {
        match &self.shared {
            Some(shared) => Ok(trees::OutboxTree::Shared(shared.outbox(takeover))),
            None => trees::OutboxTree::open(self.tree_db()),
        }
    }

    fn tree_db(&self) -> &sled::Db {
        self.disk.db()
    }

    /// Whether the store can read now (for `/readyz`).
    pub fn readable(&self) -> bool {
        self.tree.get(OPEN).is_ok()
    }

    /// The identity check and space probe for [`self::health::watch`].
    pub fn probe(&self) -> Arc<dyn self::health::Probe> {
        Arc::clone(&self.disk) as Arc<dyn self::health::Probe>
    }

    /// The injected disk fault of this store.
    #[cfg(test)]
    pub(crate) fn fault(&self) -> &disk::Fault {
        &self.disk.fault
    }

    /// Adds `delta` to the stored session count (one atomic sled update).
    fn adjust_count(&self, delta: i64) -> Result<(), StoreError> {
        if delta == 0 {
            return Ok(());
        }
        let updated = self.tree.update_and_fetch(COUNT, |current| {
            let count = current
                .and_then(|bytes| decode_count(bytes).ok())
                .unwrap_or(0);
            Some(encode_count(count.saturating_add_signed(delta)).to_vec())
        })?;
        let count = updated.map_or(Ok(0), |bytes| decode_count(&bytes))?;
        self.counters
            .stored_sessions
            .store(count, Ordering::Release);
        Ok(())
    }

    /// Marks a clean close, so the next open trusts the stored count, and
    /// flushes, within [`FINAL_FLUSH_LIMIT`]. An error says what could not
    /// be flushed; nothing is written once storage has failed.
    pub async fn close(&self) -> Result<(), StoreError> {
        let closed = async {
            self.disk
                .write(|| Ok(self.tree.remove(OPEN).map(|_| ())?))?;
            match tokio::time::timeout(FINAL_FLUSH_LIMIT, self.flush()).await {
                Ok(flushed) => flushed,
                Err(_) => Err(StoreError::Unavailable(
                    self.health()
                        .fail(
                            FailureKind::Flush,
                            format!("the last flush did not finish within {FINAL_FLUSH_LIMIT:?}"),
                        )
                        .to_string(),
                )),
            }
        }
        .await;
        closed.map_err(|e| {
            let unflushed = self.disk.unflushed_writes();
            let lost = match self.health().failure() {
                Some(failure) if failure.kind == FailureKind::DataDir => format!(
                    "what was written since the data dir was lost went nowhere ({unflushed} \
                     writes since the last flush that reached it)"
                ),
                _ => {
                    format!("{unflushed} writes since the last successful flush may not be on disk")
                }
            };
            let acknowledged = match self.durability {
                Durability::Strict => "in strict durability none of them was acknowledged",
                Durability::Relaxed => "in relaxed durability some may have been acknowledged",
            };
            StoreError::Unavailable(format!("state not flushed ({e}): {lost}; {acknowledged}"))
        })
    }

    /// Waits for the disk in strict mode; returns at once in relaxed mode.
    async fn make_durable(&self) -> Result<(), StoreError> {
        match self.durability {
            Durability::Strict => self.commits.wait_durable().await,
            Durability::Relaxed => Ok(()),
        }
    }

    /// The live session of `phone`, if any; takes the phone's turn.
    pub async fn get(&self, phone: &PhoneNumber) -> Result<Option<Session>, StoreError> {
        let turn = self.turn(*phone).await?;
        Ok(turn.session().cloned())
    }

    /// Deletes the session of `phone` (its limits, opt-out and remembered
    /// replies stay); whether a live one existed. Takes the phone's turn.
    pub async fn delete(&self, phone: &PhoneNumber) -> Result<bool, StoreError> {
        let mut turn = self.turn(*phone).await?;
        let live = turn.session().is_some();
        turn.forget_session();
        turn.commit().await?;
        Ok(live)
    }

    /// The live session, limits and opt-out of `phone`, read together in
    /// its turn.
    pub async fn phone_state(&self, phone: &PhoneNumber) -> Result<PhoneState, StoreError> {
        let turn = self.turn(*phone).await?;
        Ok(PhoneState {
            session: turn.session().cloned(),
            limits: turn.limit_state(),
            opted_out_at_ms: turn.opted_out_since(),
            now_ms: turn.now_ms(),
        })
    }

    /// When `phone` opted out, if it has; takes the phone's turn.
    pub async fn opted_out_since(&self, phone: &PhoneNumber) -> Result<Option<u64>, StoreError> {
        Ok(self.turn(*phone).await?.opted_out_since())
    }

    /// Phones opted out now, for `/metrics`.
    pub fn opted_out_count(&self) -> u64 {
        if let Some(shared) = &self.shared {
            return shared.opted_out();
        }
        self.opted_out
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len() as u64
    }

    /// Writes many records at once (restore, benchmarks): each part present
    /// in a phone's pieces replaces that part of its record
    /// ([`PhoneRecord::absorb`]), in the phone's turn; flushed before it
    /// returns.
    pub async fn import(
        &self,
        records: impl IntoIterator<Item = (PhoneNumber, PhoneRecord)>,
    ) -> Result<u64, StoreError> {
        let mut written = 0;
        if self.shared.is_some() {
            for (phone, pieces) in records {
                let mut turn = self.turn(phone).await?;
                turn.absorb(pieces, self.keeping());
                turn.commit().await?;
                written += 1;
            }
            return Ok(written);
        }
        for (phone, pieces) in records {
            let _turn = self.locks.lock(phone).await;
            let stored = self.read_stored(&phone)?;
            let mut record = stored.clone().unwrap_or_default();
            record.absorb(pieces, self.keeping(), self.clock.now_ms());
            self.disk
                .write(|| self.write_record(&phone, stored.as_ref(), &mut record))?;
            self.cache.invalidate(&phone).await;
            written += 1;
        }
        self.flush().await?;
        Ok(written)
    }

    /// Writes sessions as [`Store::import`] does.
    pub async fn import_sessions(
        &self,
        sessions: impl IntoIterator<Item = Session>,
    ) -> Result<u64, StoreError> {
        self.import(sessions.into_iter().map(|session| {
            (
                session.phone,
                PhoneRecord {
                    session: Some(session),
                    ..PhoneRecord::default()
                },
            )
        }))
        .await
    }

    /// Up to `limit` stored records after `after`, in phone order, as
    /// stored (export, listing); what is over by now is for the caller to
    /// leave out. An empty page is the end.
    pub async fn records_after(
        &self,
        after: Option<&PhoneNumber>,
        limit: usize,
    ) -> Result<Vec<(PhoneNumber, PhoneRecord)>, StoreError> {
        if let Some(shared) = &self.shared {
            // Phones whose record expired are skipped; keep paging until
            // a page has records or the phones run out.
            let mut after = after.map(PhoneNumber::e164);
            loop {
                let (phones, last) = shared.phones_after(after.as_deref(), limit).await?;
                let Some(last) = last else {
                    return Ok(Vec::new());
                };
                let records = shared.read(&phones).await?;
                if !records.is_empty() {
                    return Ok(records);
                }
                after = Some(last);
            }
        }
        let start = after.map_or_else(
            || vec![RECORD],
            |c| {
                let mut key = record_key(c);
                key.push(0);
                key
            },
        );
        let mut records = Vec::new();
        for item in self.tree.range(start..vec![RECORD + 1]).take(limit) {
            let (key, bytes) = item?;
            let phone = parse_phone_key(&key).ok_or_else(|| CodecError::Corrupt {
                what: "phone record",
                reason: format!("its key is not a phone number ({} bytes)", key.len()),
            })?;
            records.push((phone, PhoneRecord::decode(&bytes)?));
        }
        Ok(records)
    }

    /// Every stored record in phone order, as stored (export, checks), with
    /// what is over at `now` left out by the caller. With a shared store
    /// each page is fetched from Redis in place, so call this where
    /// blocking is allowed (a blocking thread, or a multi-threaded runtime).
    pub fn records(&self) -> Box<dyn Iterator<Item = RecordItem> + Send + '_> {
        if self.shared.is_none() {
            return Box::new(self.tree.scan_prefix([RECORD]).map(|item| {
                let (key, bytes) = item?;
                let phone = parse_phone_key(&key).ok_or_else(|| CodecError::Corrupt {
                    what: "phone record",
                    reason: format!("its key is not a phone number ({} bytes)", key.len()),
                })?;
                Ok((phone, PhoneRecord::decode(&bytes)?))
            }));
        }
        let mut after: Option<PhoneNumber> = None;
        let mut done = false;
        let pages = std::iter::from_fn(move || {
            if done {
                return None;
            }
            let page = match tokio::runtime::Handle::try_current() {
                // block_in_place would panic on a current-thread runtime.
                Ok(runtime)
                    if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread =>
                {
                    Err(StoreError::Task(
                        "reading every record from Redis needs a multi-threaded runtime".to_owned(),
                    ))
                }
                Ok(runtime) => tokio::task::block_in_place(|| {
                    runtime.block_on(self.records_after(after.as_ref(), 500))
                }),
                Err(e) => Err(StoreError::Task(format!("no runtime to reach Redis: {e}"))),
            };
            match page {
                Ok(page) if page.is_empty() => None,
                Ok(page) => {
                    after = page.last().map(|(phone, _)| *phone);
                    Some(page.into_iter().map(Ok).collect::<Vec<_>>())
                }
                Err(e) => {
                    done = true;
                    Some(vec![Err(e)])
                }
            }
        });
        Box::new(pages.flatten())
    }

    /// The store's time now: this process's clock, or with a shared store
    /// Redis's, as far as the last turn showed it.
    fn live_now(&self) -> u64 {
        let skew = match &self.shared {
            Some(_) => self.shared_skew_ms.load(Ordering::Relaxed),
            None => 0,
        };
        self.clock.now_ms().saturating_add_signed(skew)
    }

    /// Live sessions after `cursor` in phone order, at most `limit`.
    pub async fn list(
        &self,
        cursor: Option<&PhoneNumber>,
        limit: usize,
    ) -> Result<Vec<Session>, StoreError> {
        let mut sessions = Vec::new();
        // A page the size of the list asked for: a short list reads no more.
        self.each_live_session(cursor, limit.min(500), |session| {
            sessions.push(session);
            sessions.len() < limit
        })
        .await?;
        Ok(sessions)
    }

    /// Calls `visit` with each live session after `cursor` in phone order
    /// until it returns false, reading `page` records at a time.
    pub async fn each_live_session(
        &self,
        cursor: Option<&PhoneNumber>,
        page: usize,
        mut visit: impl FnMut(Session) -> bool,
    ) -> Result<(), StoreError> {
        let now = self.live_now();
        let mut after = cursor.copied();
        loop {
            let page = self.records_after(after.as_ref(), page.max(1)).await?;
            let Some((last, _)) = page.last() else {
                return Ok(());
            };
            after = Some(*last);
            for (_, record) in page {
                if let Some(session) = record.session.filter(|s| !s.is_expired(now))
                    && !visit(session)
                {
                    return Ok(());
                }
            }
        }
    }

    pub fn stats(&self) -> StoreStats {
        let c = &self.counters;
        let hits = c.cache_hits.load(Ordering::Relaxed);
        let misses = c.cache_misses.load(Ordering::Relaxed);
        let stored_sessions = match &self.shared {
            Some(shared) => shared.live_sessions(),
            None => c.stored_sessions.load(Ordering::Relaxed),
        };
        StoreStats {
            stored_sessions,
            cache_entries: self.cache.entry_count(),
            cache_hits: hits,
            cache_misses: misses,
            cache_hit_rate: if hits + misses == 0 {
                0.0
            } else {
                hits as f64 / (hits + misses) as f64
            },
            sweeps: c.sweeps.load(Ordering::Relaxed),
            swept_sessions: c.swept_sessions.load(Ordering::Relaxed),
            swept_messages: c.swept_messages.load(Ordering::Relaxed),
            flushes: self.commits.flushes.load(Ordering::Relaxed),
            redis_round_trips: self.shared.as_ref().map_or(0, |s| s.round_trips()),
        }
    }

    /// Removes everything due by now, in batches of `session.sweep_batch`,
    /// yielding between them so requests keep flowing.
    pub async fn sweep(&self) -> Result<SweepReport, StoreError> {
        if let Some(shared) = &self.shared {
            // Redis expires the records itself; what is left is the indexes.
            let pruned = shared.housekeep(self.clock.advanced_ms()).await?;
            self.counters.sweeps.fetch_add(1, Ordering::Relaxed);
            return Ok(SweepReport {
                stale_keys: pruned,
                ..SweepReport::default()
            });
        }
        // Nothing is removed from a store out of service.
        self.disk.healthy()?;
        let mut report = SweepReport::default();
        let now = self.clock.now_ms();
        // Records due by now sit in buckets up to a minute later.
        let mut end = vec![DUE];
        end.extend_from_slice(&now.saturating_add(DUE_BUCKET_MS).to_be_bytes());
        let mut cursor = vec![DUE];
        loop {
            let keys = self.keys_between(&cursor, &end)?;
            for (n, key) in keys.iter().enumerate() {
                self.sweep_key(key, now, &mut report).await?;
                // Let requests run between small groups of removals.
                if n % 32 == 31 {
                    tokio::task::yield_now().await;
                }
            }
            match keys.last() {
                Some(last) if keys.len() == self.sweep_batch => {
                    cursor = last.clone();
                    cursor.push(0);
                    tokio::task::yield_now().await;
                }
                _ => break,
            }
        }
        let c = &self.counters;
        c.sweeps.fetch_add(1, Ordering::Relaxed);
        c.swept_sessions
            .fetch_add(report.sessions, Ordering::Relaxed);
        c.swept_messages
            .fetch_add(report.messages, Ordering::Relaxed);
        Ok(report)
    }

    /// Up to one batch of keys from `start` (inclusive) to `end` (exclusive).
    fn keys_between(&self, start: &[u8], end: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        self.tree
            .range(start.to_vec()..end.to_vec())
            .keys()
            .take(self.sweep_batch)
            .map(|key| Ok(key?.to_vec()))
            .collect()
    }

    async fn sweep_key(
        &self,
        key: &[u8],
        now: u64,
        report: &mut SweepReport,
    ) -> Result<(), StoreError> {
        let Some((bucket, phone)) = parse_due_key(key) else {
            self.tree.remove(key)?;
            report.stale_keys += 1;
            return Ok(());
        };
        let _turn = self.locks.lock(phone).await;
        let stored = match self.read_stored(&phone) {
            // Kept as it is (nothing is lost, and a newer Roster may read
            // it), but it must not stop the sweep of everything due after it.
            Err(StoreError::Codec(e)) => {
                tracing::warn!(phone = %phone.masked(), "sweep left an unreadable record: {e}");
                report.unreadable += 1;
                return Ok(());
            }
            read => read?,
        };
        let due = stored.as_ref().and_then(due_at);
        match (stored, due) {
            // Its own minute, and due: what is over goes.
            (Some(record), Some(due)) if due_bucket(due) == bucket && due <= now => {
                self.sweep_record(&phone, record, now, report).await?;
                self.tree.remove(key)?;
            }
            // Its own minute, not due yet: the minute ends after now.
            (Some(_), Some(due)) if due_bucket(due) == bucket => {}
            // The record moved to a later minute, or is gone.
            _ => {
                self.tree.remove(key)?;
                report.stale_keys += 1;
            }
        }
        Ok(())
    }

    /// Drops what is over in `record`, the whole record once nothing in it
    /// is live; in the phone's turn.
    async fn sweep_record(
        &self,
        phone: &PhoneNumber,
        mut record: PhoneRecord,
        now: u64,
        report: &mut SweepReport,
    ) -> Result<(), StoreError> {
        let stored = record.clone();
        if record.session.as_ref().is_some_and(|s| s.is_expired(now)) {
            record.session = None;
            report.sessions += 1;
        }
        let before = record.replies.len();
        record.replies.retain(|r| r.expires_at_ms > now);
        report.messages += (before - record.replies.len()) as u64;
        if record.is_over(now) {
            // Everything is over: the record goes, then its index key.
            self.tree.remove(record_key(phone))?;
            if stored.session.is_some() {
                self.adjust_count(-1)?;
            }
            self.cache.invalidate(phone).await;
            return Ok(());
        }
        self.write_record(phone, Some(&stored), &mut record)?;
        self.cache.invalidate(phone).await;
        Ok(())
    }

    /// The durable flushes' latency, for `/metrics`.
    pub fn flush_latency(&self) -> prometheus_client::metrics::histogram::Histogram {
        self.commits.latency.clone()
    }

    /// Runs the store's background tasks until `shutdown`: the group
    /// committer (which flushes once more at the end), the sweeper every
    /// `sweep_every`, and the storage watcher every `check_every`.
    pub async fn run(
        self: Arc<Self>,
        sweep_every: Duration,
        check_every: Duration,
        shutdown: Shutdown,
    ) {
        let watcher = self::health::watch(
            Arc::clone(self.health()),
            self.probe(),
            check_every,
            shutdown.clone(),
        );
        let sweeper = sweeper::run(Arc::clone(&self), sweep_every, shutdown.clone());
        let shared = self.watch_shared(check_every, shutdown.clone());
        tokio::join!(self.commits.run(shutdown), sweeper, watcher, shared);
    }

    /// With a shared store: asks Redis every `check_every`, so that
    /// `/readyz` and the counts follow it (and a lost Redis is noticed
    /// even while no message comes).
    async fn watch_shared(&self, check_every: Duration, mut shutdown: Shutdown) {
        let Some(shared) = &self.shared else {
            return;
        };
        let mut tick = tokio::time::interval(check_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    // A failure is logged and reported by `shared` itself.
                    let _ = shared.housekeep(self.clock.advanced_ms()).await;
                }
                () = shutdown.recv() => return,
            }
        }
    }

    /// Flushes everything written so far to disk.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let disk = Arc::clone(&self.disk);
        tokio::task::spawn_blocking(move || disk.flush())
            .await
            .map_err(|e| StoreError::Flush(e.to_string()))?
    }
}

/// What the operator's views show of one phone.
#[derive(Debug, Clone, Default)]
pub struct PhoneState {
    pub session: Option<Session>,
    pub limits: LimitState,
    pub opted_out_at_ms: Option<u64>,
    /// The time of the turn that read them (with a shared store, Redis's).
    pub now_ms: u64,
}

/// Counts the records that hold a session.
fn count_sessions(tree: &sled::Tree) -> Result<u64, StoreError> {
    let mut counted = 0;
    for item in tree.scan_prefix([RECORD]) {
        let (_, bytes) = item?;
        match PhoneRecord::decode(&bytes) {
            Ok(record) if record.session.is_some() => counted += 1,
            Ok(_) => {}
            // Counted: it may well hold one this version cannot read.
            Err(_) => counted += 1,
        }
    }
    Ok(counted)
}

/// The phones of the `o` keys whose records are opted out; a key whose
/// record is not (a crash between the two writes) is dropped.
fn read_opt_outs(tree: &sled::Tree) -> Result<HashSet<PhoneNumber>, StoreError> {
    let mut phones = HashSet::new();
    for key in tree.scan_prefix([OPTED_OUT]).keys() {
        let key = key?;
        let opted_out = match parse_phone_key(&key) {
            Some(phone) => match tree.get(record_key(&phone))? {
                Some(bytes) => PhoneRecord::decode(&bytes)
                    .map_or(true, |r| r.opted_out_at_ms.is_some())
                    .then_some(phone),
                None => None,
            },
            None => None,
        };
        match opted_out {
            Some(phone) => {
                phones.insert(phone);
            }
            None => {
                tree.remove(&key)?;
            }
        }
    }
    Ok(phones)
}
