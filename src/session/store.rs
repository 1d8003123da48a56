//! Where sessions live: a sled tree with a moka cache in front, and group
//! commit for strict durability.
//!
//! # Layout
//!
//! One sled tree, `sessions`, holds two key spaces:
//!
//! | key | value |
//! | --- | --- |
//! | `s` ‖ E.164 phone | versioned bincode [`Session`] |
//! | `e` ‖ expiry minute (ms, u64 BE, rounded up) ‖ phone | empty: the expiry index |
//!
//! The replies sent for each MessageSid live in trees of their own
//! ([`super::replies`]), keyed by MessageSid and phone. Data dirs from before kept them here, under `m` ‖
//! MessageSid with an `x` ‖ expiry ‖ MessageSid index; [`SessionStore::open`]
//! moves such records over. Opt-outs (STOP) live in the `optouts` tree
//! ([`super::optouts`]), because they outlive sessions.
//!
//! # Crash safety without batches
//!
//! sled 0.34's `apply_batch` and transactions switch the whole process to a
//! global reader-writer lock for every later write (measured: half the
//! webhook throughput), so Roster writes single keys, each atomic, in an
//! order in which every crash prefix is harmless:
//!
//! 1. the new expiry-index key, then
//! 2. the session, which also carries the reply to its latest message:
//!    **the commit point** of an exchange, then
//! 3. the remembered reply (24 h).
//!
//! So a session never lacks its index entry. A crash before (2) leaves only
//! an index key whose session does not match it, which the sweeper drops as
//! stale; a crash after (2) but before (3) is covered by the session's own
//! `last_reply`: a redelivery of that message is still recognised. Removals
//! go the other way round (the session first, then its index key). A save
//! into a new minute leaves the previous index key behind; the sweeper
//! removes a session only when the key it meets is the session's own minute
//! and the session has expired, and drops stale keys.
//!
//! # Cache
//!
//! Every read-through, write and eviction of a phone's cache entry happens
//! while that phone's [`PhoneLocks`] turn is held (the webhook, the admin
//! API, the sweeper), so a read-through can never put back a session that a
//! concurrent delete just removed (what moka's `get_with` alone would allow),
//! and plain moka operations suffice.
//!
//! # Durability
//!
//! In strict mode a save waits until a flush that started after it has
//! finished. One flusher task runs `db.flush()` on a blocking thread and
//! publishes the highest ticket it covered, so concurrent saves share
//! flushes (group commit). sled's own `flush_async` deadlocks with many
//! concurrent callers and is never used.
//!
//! # Storage faults
//!
//! Writes and flushes go through [`Disk`], the seam to sled. A failed write
//! or flush (or a data dir that is no longer the one opened) puts storage
//! out of service for good ([`crate::storage::StorageHealth`]): the writers
//! waiting on that flush get [`StoreError::Unavailable`] at once, as does
//! every later write, without touching sled. The MessageSids of exchanges
//! that were written but never confirmed durable are remembered, so that a
//! redelivery of one is refused (503) rather than answered from memory: it
//! was never acknowledged, and it may not be on disk. What needs no write
//! (a redelivery of an acknowledged exchange, a refusal to a stranger)
//! goes on. Closing flushes within [`FINAL_FLUSH_LIMIT`] and says what
//! could not be flushed.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moka::future::Cache;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use super::codec::{self, CodecError};
use super::disk::Disk;
use super::optouts::OptOuts;
use super::replies::{RememberedReplies, SeenReply};
use super::{PhoneLocks, PhoneTurn, SentReply, Session};
use crate::clock::{SharedClock, duration_ms};
use crate::config::{Config, Durability};
use crate::directory::Member;
use crate::phone::PhoneNumber;
use crate::shutdown::Shutdown;
use crate::storage::{DataDirIdentity, FailureKind, StorageHealth};

/// How long the last flush at shutdown (and at close) may take before what
/// it did not cover is reported unsaved and the process exits anyway.
pub const FINAL_FLUSH_LIMIT: Duration = Duration::from_secs(5);

const SESSION: u8 = b's';
const SESSION_EXPIRY: u8 = b'e';
/// Remembered replies and their expiry index, in the layout before
/// [`RememberedReplies`]; only read to move them over.
const LEGACY_SEEN: u8 = b'm';
const LEGACY_SEEN_EXPIRY: u8 = b'x';
/// Expiry-index keys are per minute (rounded up), so the many messages of
/// one conversation within a minute touch a single index key.
const EXPIRY_BUCKET_MS: u64 = 60_000;

fn expiry_bucket(expires_at_ms: u64) -> u64 {
    expires_at_ms
        .div_ceil(EXPIRY_BUCKET_MS)
        .saturating_mul(EXPIRY_BUCKET_MS)
}

/// The number of stored sessions, so that opening a store with a million
/// sessions need not count them. Updated right after each change; a crash
/// between the two is detected by [`OPEN`] and the count rebuilt.
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
    /// dir): nothing is written until the process restarts.
    #[error("storage is out of service: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// Whether the same request may succeed later (a retry, a restart): the
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

/// What one sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub sessions: u64,
    pub messages: u64,
    /// Index keys dropped because their session had moved on or was gone.
    pub stale_keys: u64,
    /// Due sessions left in place because this version cannot read them
    /// (written by a newer Roster, or damaged); each is logged.
    pub unreadable: u64,
}

/// The session store; share it behind an `Arc`.
pub struct SessionStore {
    disk: Arc<Disk>,
    tree: sled::Tree,
    cache: Cache<PhoneNumber, Arc<Session>>,
    replies: Arc<RememberedReplies>,
    optouts: OptOuts,
    locks: PhoneLocks,
    clock: SharedClock,
    ttl_ms: u64,
    max_history: usize,
    sweep_batch: usize,
    durability: Durability,
    commits: GroupCommit,
    counters: Counters,
    /// MessageSids of exchanges written but never confirmed durable (their
    /// flush failed): a redelivery of one is refused, not answered.
    unconfirmed: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("durability", &self.durability)
            .field("ttl_ms", &self.ttl_ms)
            .finish_non_exhaustive()
    }
}

/// moka expiry from each session's own `expires_at`, so cache and sled agree.
struct SessionExpiry {
    clock: SharedClock,
}

impl SessionExpiry {
    fn remaining(&self, session: &Session) -> Option<Duration> {
        Some(Duration::from_millis(
            session.expires_at_ms.saturating_sub(self.clock.now_ms()),
        ))
    }
}

impl moka::Expiry<PhoneNumber, Arc<Session>> for SessionExpiry {
    fn expire_after_create(
        &self,
        _key: &PhoneNumber,
        value: &Arc<Session>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        self.remaining(value)
    }

    fn expire_after_update(
        &self,
        _key: &PhoneNumber,
        value: &Arc<Session>,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        self.remaining(value)
    }
}

/// The stored bytes of `session`, dropping its oldest exchanges if it would
/// not otherwise be readable again ([`codec::MAX_DECODE_BYTES`]): a session
/// written is a session that can be read.
fn encode_readable(session: &mut Session) -> Vec<u8> {
    loop {
        let bytes = codec::encode(codec::SESSION_V1, &*session);
        if bytes.len() <= codec::MAX_DECODE_BYTES || session.history.is_empty() {
            return bytes;
        }
        let dropped = session.history.len().div_ceil(2);
        tracing::warn!(
            phone = %session.phone.masked(),
            bytes = bytes.len(),
            dropped,
            "session too large to store; dropping its oldest exchanges"
        );
        session.history.drain(..dropped);
    }
}

fn session_key(phone: &PhoneNumber) -> Vec<u8> {
    let e164 = phone.e164();
    let mut key = Vec::with_capacity(1 + e164.len());
    key.push(SESSION);
    key.extend_from_slice(e164.as_bytes());
    key
}

fn expiry_key(space: u8, expires_at_ms: u64, id: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(9 + id.len());
    key.push(space);
    key.extend_from_slice(&expires_at_ms.to_be_bytes());
    key.extend_from_slice(id);
    key
}

/// Splits an expiry key into its time and id.
fn parse_expiry_key(key: &[u8]) -> Option<(u64, &[u8])> {
    let time = key.get(1..9)?;
    Some((u64::from_be_bytes(time.try_into().ok()?), &key[9..]))
}

impl SessionStore {
    /// Opens the `sessions` tree of `db` with the session settings of `config`.
    pub fn open(
        db: &sled::Db,
        config: &Config,
        clock: SharedClock,
    ) -> Result<SessionStore, StoreError> {
        let tree = db.open_tree("sessions")?;
        let clean = tree.get(OPEN)?.is_none();
        let stored = match tree.get(COUNT)? {
            Some(bytes) if clean => decode_count(&bytes)?,
            // After a crash (or a data dir without a count): count once.
            _ => {
                let counted = tree
                    .scan_prefix([SESSION])
                    .keys()
                    .try_fold(0u64, |n, key| key.map(|_| n + 1))?;
                tree.insert(COUNT, &encode_count(counted)[..])?;
                counted
            }
        };
        tree.insert(OPEN, &[])?;
        let session = &config.session;
        let replies = RememberedReplies::open(db, duration_ms(session.dedupe_ttl))?;
        move_legacy_replies(&tree, &replies, clock.now_ms())?;
        let optouts = OptOuts::open(db)?;
        let cache = Cache::builder()
            .max_capacity(session.cache_capacity)
            .expire_after(SessionExpiry {
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
        Ok(SessionStore {
            commits: GroupCommit::new(Arc::clone(&disk)),
            disk,
            tree,
            cache,
            replies: Arc::new(replies),
            optouts,
            locks: PhoneLocks::default(),
            clock,
            ttl_ms: duration_ms(session.ttl),
            max_history: session.max_history,
            sweep_batch: session.sweep_batch,
            durability: config.storage.durability,
            counters,
            unconfirmed: Mutex::new(HashSet::new()),
        })
    }

    /// Waits for this phone's turn; hold it across a read-modify-save.
    pub async fn lock(&self, phone: PhoneNumber) -> PhoneTurn<'_> {
        self.locks.lock(phone).await
    }

    pub fn ttl_ms(&self) -> u64 {
        self.ttl_ms
    }

    pub fn max_history(&self) -> usize {
        self.max_history
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The live session of `phone`, if any (expired counts as absent),
    /// while the caller holds the phone's turn.
    pub async fn load_in_turn(
        &self,
        phone: &PhoneNumber,
    ) -> Result<Option<Arc<Session>>, StoreError> {
        let now = self.clock.now_ms();
        if let Some(session) = self.cache.get(phone).await {
            self.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(session).filter(|s| !s.is_expired(now)));
        }
        self.counters.cache_misses.fetch_add(1, Ordering::Relaxed);
        match self.read_stored(phone)? {
            Some(session) if !session.is_expired(now) => {
                let session = Arc::new(session);
                self.cache.insert(*phone, Arc::clone(&session)).await;
                Ok(Some(session))
            }
            _ => Ok(None),
        }
    }

    fn read_stored(&self, phone: &PhoneNumber) -> Result<Option<Session>, StoreError> {
        match self.tree.get(session_key(phone))? {
            Some(bytes) => Ok(Some(codec::decode("session", codec::SESSION_V1, &bytes)?)),
            None => Ok(None),
        }
    }

    /// The live session of `phone`, if any; takes the phone's turn.
    pub async fn get(&self, phone: &PhoneNumber) -> Result<Option<Session>, StoreError> {
        let _turn = self.lock(*phone).await;
        Ok(self.load_in_turn(phone).await?.map(|s| Session::clone(&s)))
    }

    /// What the webhook works on: the `stored` live session (from
    /// [`SessionStore::load_in_turn`]), or a new one for `member`.
    pub fn session_for(&self, member: &Member, stored: Option<&Session>) -> Session {
        match stored {
            Some(session) => session.clone(),
            None => Session::new(member, self.clock.now_ms(), self.ttl_ms),
        }
    }

    /// Saves `session` and, for a webhook, the reply sent for its MessageSid;
    /// `stored` is the session as loaded in this turn (None if it was new).
    /// In strict mode, returns once everything is on disk.
    pub async fn save(
        &self,
        session: Session,
        stored: Option<&Session>,
        seen: Option<(&str, &str)>,
    ) -> Result<(), StoreError> {
        let saved = async {
            let phone = session.phone;
            let session = self
                .disk
                .write(|| self.write_session(session, stored, seen))?;
            self.cache.insert(phone, Arc::new(session)).await;
            self.make_durable().await
        }
        .await;
        self.unconfirmed_if_failed(&saved, seen);
        saved
    }

    /// The writes of [`SessionStore::save`], in their crash-safe order.
    fn write_session(
        &self,
        mut session: Session,
        stored: Option<&Session>,
        seen: Option<(&str, &str)>,
    ) -> Result<Session, StoreError> {
        let phone = session.phone;
        let now = self.clock.now_ms();
        let key = session_key(&phone);
        // An expired session may still be on disk until swept.
        let existed = stored.is_some() || self.tree.contains_key(&key)?;
        session.last_reply = seen.map(|(message_sid, twiml)| SentReply {
            message_sid: message_sid.to_owned(),
            twiml: twiml.to_owned(),
        });
        // The order is the crash-safety argument in the module docs. The
        // stored session's index key exists already.
        let bucket = expiry_bucket(session.expires_at_ms);
        if stored.is_none_or(|previous| expiry_bucket(previous.expires_at_ms) != bucket) {
            self.tree.insert(
                expiry_key(SESSION_EXPIRY, bucket, phone.e164().as_bytes()),
                &[],
            )?;
        }
        self.tree.insert(key, encode_readable(&mut session))?;
        if let Some((message_sid, twiml)) = seen {
            self.replies.remember(&phone, message_sid, twiml, now)?;
        }
        if !existed {
            self.adjust_count(1)?;
        }
        Ok(session)
    }

    /// After a write that storage could not confirm, remembers its
    /// MessageSid: a redelivery must not be answered from memory.
    fn unconfirmed_if_failed<T>(&self, result: &Result<T, StoreError>, seen: Option<(&str, &str)>) {
        if let (Err(_), Some((message_sid, _))) = (result, seen) {
            self.unconfirmed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(message_sid.to_owned());
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
        self.disk.writable()
    }

    /// Whether the data dir can still be written, and why not.
    pub fn health(&self) -> &Arc<StorageHealth> {
        self.disk.health()
    }

    /// The identity check and space probe for [`crate::storage::watch`].
    pub fn probe(&self) -> Arc<dyn crate::storage::Probe> {
        Arc::clone(&self.disk) as Arc<dyn crate::storage::Probe>
    }

    /// The injected disk fault of this store.
    #[cfg(test)]
    pub(crate) fn fault(&self) -> &super::disk::Fault {
        &self.disk.fault
    }

    /// Writes many sessions at once (restore, benchmarks), replacing any
    /// stored under the same phones; flushed before it returns. Not for a
    /// serving store: it bypasses the per-phone turns.
    pub async fn import(
        &self,
        sessions: impl IntoIterator<Item = Session>,
    ) -> Result<u64, StoreError> {
        let mut written = 0;
        let mut added = 0;
        for mut session in sessions {
            let key = session_key(&session.phone);
            if !self.tree.contains_key(&key)? {
                added += 1;
            }
            self.tree.insert(
                expiry_key(
                    SESSION_EXPIRY,
                    expiry_bucket(session.expires_at_ms),
                    session.phone.e164().as_bytes(),
                ),
                &[],
            )?;
            self.tree.insert(key, encode_readable(&mut session))?;
            self.evict(&session.phone).await;
            written += 1;
        }
        self.adjust_count(added)?;
        self.flush().await?;
        Ok(written)
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

    /// Removes the session of `phone` while the caller holds its turn;
    /// whether there was a live one.
    pub(super) async fn delete_in_turn(&self, phone: &PhoneNumber) -> Result<bool, StoreError> {
        let now = self.clock.now_ms();
        let Some(stored) = self.read_stored(phone)? else {
            self.evict(phone).await;
            return Ok(false);
        };
        self.disk.write(|| {
            self.tree.remove(session_key(phone))?;
            self.tree.remove(expiry_key(
                SESSION_EXPIRY,
                expiry_bucket(stored.expires_at_ms),
                phone.e164().as_bytes(),
            ))?;
            self.adjust_count(-1)
        })?;
        self.evict(phone).await;
        self.make_durable().await?;
        Ok(!stored.is_expired(now))
    }

    async fn evict(&self, phone: &PhoneNumber) {
        self.cache.invalidate(phone).await;
    }

    /// The reply already sent to `phone` for `message_sid`, if it is
    /// remembered: its duplicate record, or the latest reply of `stored`,
    /// the phone's own live session (covering a crash between the two writes
    /// of an exchange). A reply sent to another phone under the same
    /// MessageSid is never returned.
    pub fn reply_for(
        &self,
        phone: &PhoneNumber,
        message_sid: &str,
        stored: Option<&Session>,
    ) -> Result<Option<String>, StoreError> {
        self.refuse_unconfirmed(message_sid)?;
        let own = stored.filter(|session| session.phone == *phone);
        let answered_at = |sent_ms: u64| {
            own.is_some_and(|session| {
                session
                    .history
                    .iter()
                    .any(|e| e.timestamp_ms.abs_diff(sent_ms) <= super::replies::VOUCH_MS)
            })
        };
        if let Some(twiml) =
            self.replies
                .get(phone, message_sid, self.clock.now_ms(), answered_at)?
        {
            return Ok(Some(twiml));
        }
        Ok(stored
            .filter(|session| session.phone == *phone)
            .and_then(|session| session.last_reply.as_ref())
            .filter(|last| last.message_sid == message_sid)
            .map(|last| last.twiml.clone()))
    }

    /// The reply remembered for `message_sid`, whatever phone it went to
    /// (including records that name none), or the latest reply of `stored`:
    /// for inspection and tests only. Answering a webhook with it would hand
    /// one phone's reply to another; the webhook asks
    /// [`SessionStore::reply_for`].
    #[doc(hidden)]
    pub fn seen(
        &self,
        message_sid: &str,
        stored: Option<&Session>,
    ) -> Result<Option<String>, StoreError> {
        self.refuse_unconfirmed(message_sid)?;
        if let Some(twiml) = self.replies.get_any(message_sid, self.clock.now_ms())? {
            return Ok(Some(twiml));
        }
        Ok(stored
            .and_then(|session| session.last_reply.as_ref())
            .filter(|last| last.message_sid == message_sid)
            .map(|last| last.twiml.clone()))
    }

    /// When `phone` opted out (STOP), if it has and not opted in since.
    pub fn opted_out_since(&self, phone: &PhoneNumber) -> Result<Option<u64>, StoreError> {
        self.optouts.since(phone)
    }

    /// Records that `phone` opted out now and, for a webhook, the reply sent
    /// for its MessageSid; the caller holds the phone's turn. The opt-out is
    /// written first: a crash before the reply is remembered leaves the
    /// phone opted out, and a redelivery of the message gets silence, never
    /// a second acknowledgement of an opt-out that was lost. In strict mode,
    /// returns once both are on disk.
    pub async fn opt_out(
        &self,
        phone: &PhoneNumber,
        seen: Option<(&str, &str)>,
    ) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        let saved = async {
            self.disk.write(|| {
                self.optouts.insert(phone, now)?;
                if let Some((message_sid, twiml)) = seen {
                    self.replies.remember(phone, message_sid, twiml, now)?;
                }
                Ok(())
            })?;
            self.make_durable().await
        }
        .await;
        self.unconfirmed_if_failed(&saved, seen);
        saved
    }

    /// Forgets the opt-out of `phone` (START) and remembers the reply sent,
    /// as [`SessionStore::opt_out`] does; whether it had opted out.
    pub async fn opt_in(
        &self,
        phone: &PhoneNumber,
        seen: Option<(&str, &str)>,
    ) -> Result<bool, StoreError> {
        let saved = async {
            let removed = self.disk.write(|| {
                let removed = self.optouts.remove(phone)?;
                if let Some((message_sid, twiml)) = seen {
                    self.replies
                        .remember(phone, message_sid, twiml, self.clock.now_ms())?;
                }
                Ok(removed)
            })?;
            self.make_durable().await?;
            Ok(removed)
        }
        .await;
        self.unconfirmed_if_failed(&saved, seen);
        saved
    }

    /// Phones opted out now, for `/metrics`.
    pub fn opted_out_count(&self) -> u64 {
        self.optouts.count()
    }

    /// Every opt-out, phone and time (ms), in phone order (export).
    pub fn opt_outs(&self) -> impl Iterator<Item = Result<(PhoneNumber, u64), StoreError>> + '_ {
        self.optouts.all()
    }

    /// Writes opt-outs as exported (restore); flushed before it returns.
    /// Not for a serving store: it bypasses the per-phone turns.
    pub async fn import_opt_outs(
        &self,
        opt_outs: impl IntoIterator<Item = (PhoneNumber, u64)>,
    ) -> Result<u64, StoreError> {
        let mut written = 0;
        for (phone, at_ms) in opt_outs {
            self.optouts.insert(&phone, at_ms)?;
            written += 1;
        }
        self.flush().await?;
        Ok(written)
    }

    /// Removes a duplicate record only, as a crash between the two writes
    /// of an exchange would leave things; for crash-safety tests.
    #[doc(hidden)]
    pub fn forget_seen_record_for_tests(&self, message_sid: &str) -> Result<(), StoreError> {
        self.replies.forget(message_sid)
    }

    /// Every live session in phone order, read straight from disk (export).
    pub fn live_sessions(&self) -> impl Iterator<Item = Result<Session, StoreError>> + '_ {
        let now = self.clock.now_ms();
        self.tree
            .scan_prefix([SESSION])
            .values()
            .map(|bytes| -> Result<Session, StoreError> {
                Ok(codec::decode("session", codec::SESSION_V1, &bytes?)?)
            })
            .filter(move |session| session.as_ref().map_or(true, |s| !s.is_expired(now)))
    }

    /// Live sessions' phones after `cursor` in phone order, at most `limit`.
    pub fn list(
        &self,
        cursor: Option<&PhoneNumber>,
        limit: usize,
    ) -> Result<Vec<Session>, StoreError> {
        let now = self.clock.now_ms();
        let start = cursor.map_or_else(
            || vec![SESSION],
            |c| {
                let mut key = session_key(c);
                key.push(0);
                key
            },
        );
        let mut sessions = Vec::new();
        for item in self.tree.range(start..vec![SESSION + 1]) {
            let (_, bytes) = item?;
            let session: Session = codec::decode("session", codec::SESSION_V1, &bytes)?;
            if !session.is_expired(now) {
                sessions.push(session);
                if sessions.len() >= limit {
                    break;
                }
            }
        }
        Ok(sessions)
    }

    pub fn stats(&self) -> StoreStats {
        let c = &self.counters;
        let hits = c.cache_hits.load(Ordering::Relaxed);
        let misses = c.cache_misses.load(Ordering::Relaxed);
        StoreStats {
            stored_sessions: c.stored_sessions.load(Ordering::Relaxed),
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
        }
    }

    /// Removes everything due by now, in batches of `session.sweep_batch`,
    /// yielding between them so requests keep flowing.
    pub async fn sweep(&self) -> Result<SweepReport, StoreError> {
        // Nothing is removed from a store out of service.
        self.disk.healthy()?;
        let mut report = SweepReport::default();
        let now = self.clock.now_ms();
        // Sessions due by now sit in buckets up to a minute later.
        let end = expiry_key(SESSION_EXPIRY, now.saturating_add(EXPIRY_BUCKET_MS), &[]);
        let mut cursor = vec![SESSION_EXPIRY];
        loop {
            let keys = self.keys_between(&cursor, &end)?;
            for (n, key) in keys.iter().enumerate() {
                self.sweep_session_key(key, now, &mut report).await?;
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
        // Whole windows of replies go at once; dropping a tree blocks.
        let replies = Arc::clone(&self.replies);
        report.messages = tokio::task::spawn_blocking(move || replies.drop_expired(now))
            .await
            .map_err(|e| StoreError::Task(format!("dropping expired replies: {e}")))??;
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

    async fn sweep_session_key(
        &self,
        key: &[u8],
        now: u64,
        report: &mut SweepReport,
    ) -> Result<(), StoreError> {
        let parsed = parse_expiry_key(key).and_then(|(bucket, id)| {
            let phone = PhoneNumber::from_stored(std::str::from_utf8(id).ok()?)?;
            Some((bucket, phone))
        });
        let Some((bucket, phone)) = parsed else {
            self.tree.remove(key)?;
            report.stale_keys += 1;
            return Ok(());
        };
        let _turn = self.lock(phone).await;
        let stored = match self.read_stored(&phone) {
            // Kept as it is (nothing is lost, and a newer Roster may read
            // it), but it must not stop the sweep of everything due after it.
            Err(StoreError::Codec(e)) => {
                tracing::warn!(phone = %phone.masked(), "sweep left an unreadable session: {e}");
                report.unreadable += 1;
                return Ok(());
            }
            read => read?,
        };
        match stored {
            // Its own minute, and due: the session goes, then its index key.
            Some(session)
                if expiry_bucket(session.expires_at_ms) == bucket && session.is_expired(now) =>
            {
                self.tree.remove(session_key(&phone))?;
                self.adjust_count(-1)?;
                self.evict(&phone).await;
                self.tree.remove(key)?;
                report.sessions += 1;
            }
            // Its own minute, not due yet: the minute ends after now.
            Some(session) if expiry_bucket(session.expires_at_ms) == bucket => {}
            // The session moved to a later minute, or is gone.
            _ => {
                self.tree.remove(key)?;
                report.stale_keys += 1;
            }
        }
        Ok(())
    }

    /// The durable flushes' latency, for `/metrics`.
    pub fn flush_latency(&self) -> prometheus_client::metrics::histogram::Histogram {
        self.commits.latency.clone()
    }

    /// Runs the group committer until `shutdown`, then flushes once more.
    pub async fn run_flusher(self: Arc<Self>, shutdown: Shutdown) {
        self.commits.run(shutdown).await;
    }

    /// Flushes everything written so far to disk.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let disk = Arc::clone(&self.disk);
        tokio::task::spawn_blocking(move || disk.flush())
            .await
            .map_err(|e| StoreError::Flush(e.to_string()))?
    }
}

/// Moves remembered replies kept in the sessions tree (the layout before
/// [`RememberedReplies`]) into their windows; an unreadable one is dropped
/// with a warning rather than keeping the store from opening. Each record is
/// written anew before the old key goes, so a crash midway repeats the move.
fn move_legacy_replies(
    tree: &sled::Tree,
    replies: &RememberedReplies,
    now_ms: u64,
) -> Result<(), StoreError> {
    let mut moved = 0u64;
    for item in tree.scan_prefix([LEGACY_SEEN]) {
        let (key, bytes) = item?;
        match codec::decode::<SeenReply>("remembered reply", codec::SEEN_V1, &bytes) {
            Ok(reply) if reply.expires_at_ms > now_ms => {
                replies.restore(&key[1..], &reply)?;
                moved += 1;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("dropping an unreadable remembered reply: {e}"),
        }
        tree.remove(key)?;
    }
    for key in tree.scan_prefix([LEGACY_SEEN_EXPIRY]).keys() {
        tree.remove(key?)?;
    }
    if moved > 0 {
        tracing::info!(
            replies = moved,
            "moved remembered replies to their own trees"
        );
    }
    Ok(())
}

/// What the flusher has published: the highest ticket a finished flush
/// covered, and whether flushing has failed for good.
#[derive(Debug, Clone, Copy, Default)]
struct Committed {
    durable: u64,
    failed: bool,
}

/// Shares `db.flush()` calls among concurrent writers.
struct GroupCommit {
    disk: Arc<Disk>,
    /// Tickets handed out: one per write that wants to be durable.
    requested: AtomicU64,
    committed: watch::Sender<Committed>,
    wake: Notify,
    flushes: AtomicU64,
    latency: prometheus_client::metrics::histogram::Histogram,
}

impl GroupCommit {
    fn new(disk: Arc<Disk>) -> GroupCommit {
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
    async fn wait_durable(&self) -> Result<(), StoreError> {
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

    async fn run(&self, mut shutdown: Shutdown) {
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
