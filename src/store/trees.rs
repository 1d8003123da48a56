//! The trees the store keeps for other parts of Roster: the dashboard's
//! figures ([`HourTree`]), the `embeddings` tree ([`VectorCache`]) and the
//! late-reply outbox ([`OutboxTree`]), reached through these types so that
//! no sled type leaves the store for them.

use std::path::PathBuf;

use super::dir::StorageError;
use super::shared::{OthersHour, SharedHours, SharedOutbox, SharedVectors};

/// Member-profile vectors already computed: key = model name, a zero
/// byte, SHA-1 of the text embedded; value = a version byte and the
/// vector's `f32`s, little-endian. Kept in the `embeddings` tree, or, with a
/// shared store, in one Redis hash per model (`<prefix>vectors:<model>`,
/// field = the text's SHA-1), so that no instance embeds a profile another
/// already did. A restart, or a reload that changed ten members, embeds
/// those ten only.
#[derive(Clone)]
pub enum VectorCache {
    Local(sled::Tree),
    Shared(SharedVectors),
}

impl std::fmt::Debug for VectorCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VectorCache::Local(tree) => f
                .debug_struct("VectorCache")
                .field("vectors", &tree.len())
                .finish(),
            VectorCache::Shared(_) => f.debug_struct("VectorCache").finish_non_exhaustive(),
        }
    }
}

/// The format of a cached vector.
const VECTOR_VERSION: u8 = 1;

fn vector_error(e: impl std::fmt::Display) -> StorageError {
    StorageError::Other {
        path: PathBuf::from("embeddings"),
        reason: e.to_string(),
    }
}

impl VectorCache {
    /// Opens (creating) the `embeddings` tree of `db`.
    pub fn open(db: &sled::Db) -> Result<VectorCache, StorageError> {
        db.open_tree("embeddings")
            .map(VectorCache::Local)
            .map_err(vector_error)
    }

    /// The key of `text` embedded by `model`.
    pub fn key(model: &str, text: &str) -> Vec<u8> {
        use sha1::Digest;
        let mut key = Vec::with_capacity(model.len() + 21);
        key.extend_from_slice(model.as_bytes());
        key.push(0);
        key.extend_from_slice(&sha1::Sha1::digest(text.as_bytes()));
        key
    }

    /// The cached vector of each key, in order; `None` where absent,
    /// unreadable or of another format (it is then embedded again), and
    /// for every key when the cache cannot be read.
    pub async fn get_many(&self, keys: &[Vec<u8>]) -> Vec<Option<Vec<f32>>> {
        let values: Vec<Option<Vec<u8>>> = match self {
            VectorCache::Local(tree) => keys
                .iter()
                .map(|key| tree.get(key).ok().flatten().map(|v| v.to_vec()))
                .collect(),
            VectorCache::Shared(shared) => match shared.get_many(keys).await {
                Ok(values) => values,
                Err(e) => {
                    tracing::warn!("cannot read the shared vector cache: {e}");
                    vec![None; keys.len()]
                }
            },
        };
        values
            .into_iter()
            .map(|value| decode_vector(&value?))
            .collect()
    }

    /// Stores vectors; a failure only means they are embedded again later.
    pub async fn put_many(&self, vectors: &[(Vec<u8>, Vec<f32>)]) -> Result<(), StorageError> {
        let encoded: Vec<(&[u8], Vec<u8>)> = vectors
            .iter()
            .map(|(key, vector)| (key.as_slice(), encode_vector(vector)))
            .collect();
        match self {
            VectorCache::Local(tree) => {
                for (key, value) in encoded {
                    tree.insert(key, value).map_err(vector_error)?;
                }
                Ok(())
            }
            VectorCache::Shared(shared) => shared.put_many(&encoded).await.map_err(vector_error),
        }
    }
}

fn encode_vector(vector: &[f32]) -> Vec<u8> {
    let mut value = Vec::with_capacity(1 + vector.len() * 4);
    value.push(VECTOR_VERSION);
    for x in vector {
        value.extend_from_slice(&x.to_le_bytes());
    }
    value
}

fn decode_vector(value: &[u8]) -> Option<Vec<f32>> {
    let (&version, floats) = value.split_first()?;
    if version != VECTOR_VERSION || floats.len() % 4 != 0 {
        return None;
    }
    Some(
        floats
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// Replies waiting to be sent through Twilio's Messages API, each under
/// the inbound MessageSid, with the owner's encoding. An entry stays until
/// Twilio accepted every part, so a crash or restart sends it afterwards.
///
/// Kept in the `outbox` tree of this instance's data dir, or, with a
/// shared store, in a Redis stream with a consumer group
/// ([`SharedOutbox`]): any instance sends each reply, and another takes it
/// over if that one stops.
pub enum OutboxTree {
    Local(sled::Tree),
    Shared(SharedOutbox),
}

impl std::fmt::Debug for OutboxTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutboxTree::Local(tree) => f
                .debug_struct("OutboxTree")
                .field("pending", &tree.len())
                .finish(),
            OutboxTree::Shared(_) => f.debug_struct("OutboxTree").finish_non_exhaustive(),
        }
    }
}

/// One pending reply: its id in the outbox and its value.
pub type OutboxEntry = (Vec<u8>, Vec<u8>);

fn outbox_error(e: impl std::fmt::Display) -> StorageError {
    StorageError::Other {
        path: PathBuf::from("outbox"),
        reason: e.to_string(),
    }
}

impl OutboxTree {
    pub fn open(db: &sled::Db) -> Result<OutboxTree, StorageError> {
        db.open_tree("outbox")
            .map(OutboxTree::Local)
            .map_err(outbox_error)
    }

    /// Queues `value` for `message_sid`, durably; `false` (and nothing
    /// queued) when a reply for it was queued before.
    pub async fn add(&self, message_sid: &str, value: &[u8]) -> Result<bool, StorageError> {
        match self {
            OutboxTree::Local(tree) => {
                let key = message_sid.as_bytes();
                if tree.get(key).map_err(outbox_error)?.is_some() {
                    return Ok(false);
                }
                tree.insert(key, value).map_err(outbox_error)?;
                tree.flush_async().await.map_err(outbox_error)?;
                Ok(true)
            }
            OutboxTree::Shared(shared) => {
                shared.add(message_sid, value).await.map_err(outbox_error)
            }
        }
    }

    /// The entries for this instance to send now: every entry locally; with
    /// a shared store, new ones and those an instance that stopped left.
    pub async fn take(&self) -> Result<Vec<OutboxEntry>, StorageError> {
        match self {
            OutboxTree::Local(tree) => Ok(tree
                .iter()
                .filter_map(Result::ok)
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .collect()),
            OutboxTree::Shared(shared) => shared.take().await.map_err(outbox_error),
        }
    }

    /// Records `value` (how far the entry got), durably; with a shared
    /// store only while this instance still holds the entry. Whether it
    /// still does (always, locally).
    pub async fn progress(&self, id: &[u8], value: &[u8]) -> Result<bool, StorageError> {
        match self {
            OutboxTree::Local(tree) => {
                tree.insert(id, value).map_err(outbox_error)?;
                tree.flush_async().await.map_err(outbox_error)?;
                Ok(true)
            }
            OutboxTree::Shared(shared) => shared.hold(id, Some(value)).await.map_err(outbox_error),
        }
    }

    /// Whether this instance still holds `id` (always, locally); with a
    /// shared store it also tells the others it is still on it, so that
    /// none takes it over. Before each part is sent, and while waiting to
    /// retry. Redis not answering counts as held: the next check decides.
    pub async fn hold(&self, id: &[u8]) -> bool {
        match self {
            OutboxTree::Local(_) => true,
            OutboxTree::Shared(shared) => match shared.hold(id, None).await {
                Ok(held) => held,
                Err(e) => {
                    tracing::warn!("cannot hold on to a late reply being sent: {e}");
                    true
                }
            },
        }
    }

    /// Whether the outbox is shared with other instances.
    pub fn is_shared(&self) -> bool {
        matches!(self, OutboxTree::Shared(_))
    }

    /// Removes a sent (or given up) entry.
    pub async fn done(&self, id: &[u8]) -> Result<(), StorageError> {
        match self {
            OutboxTree::Local(tree) => {
                tree.remove(id).map_err(outbox_error)?;
                tree.flush_async().await.map_err(outbox_error)?;
                Ok(())
            }
            OutboxTree::Shared(shared) => shared.done(id).await.map_err(outbox_error),
        }
    }
}

/// Where the dashboard's hourly figures are kept: the `aggregates` tree of
/// this instance's data dir, or, with a shared store, Redis, where each
/// instance writes its own counts and reads the others' ([`SharedHours`]).
pub(crate) enum HourTree {
    Local(sled::Tree),
    Shared(Box<SharedHours>),
}

/// The name of the dashboard's tree.
const AGGREGATES_TREE: &str = "aggregates";

fn tree_error(e: impl std::fmt::Display) -> StorageError {
    StorageError::Other {
        path: PathBuf::from(AGGREGATES_TREE),
        reason: e.to_string(),
    }
}

impl HourTree {
    /// Opens (creating if needed) the `aggregates` tree of `db`.
    pub(crate) fn open(db: &sled::Db) -> Result<HourTree, StorageError> {
        Ok(HourTree::Local(
            db.open_tree(AGGREGATES_TREE).map_err(tree_error)?,
        ))
    }

    /// The hours this instance counted before (its own, to go on from):
    /// every stored one locally; none with a shared store, where a new
    /// process starts a field of its own.
    pub(crate) fn own(&self) -> Result<Vec<(u64, Vec<u8>)>, StorageError> {
        let HourTree::Local(tree) = self else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in tree.iter() {
            let (key, value) = item.map_err(tree_error)?;
            let Ok(key) = <[u8; 8]>::try_from(key.as_ref()) else {
                continue;
            };
            out.push((u64::from_be_bytes(key), value.to_vec()));
        }
        Ok(out)
    }

    /// What other instances counted in the hours from `first` to `last`
    /// (none locally).
    pub(crate) fn others(&self, first: u64, last: u64) -> Result<Vec<OthersHour>, StorageError> {
        match self {
            HourTree::Local(_) => Ok(Vec::new()),
            HourTree::Shared(shared) => shared.others(first, last).map_err(tree_error),
        }
    }

    /// Writes this instance's `values` (hour, bytes); with a shared store
    /// each expires at the end of `retention_hours` after its hour.
    pub(crate) fn put_all(
        &self,
        values: &[(u64, Vec<u8>)],
        retention_hours: u64,
    ) -> Result<(), StorageError> {
        match self {
            HourTree::Local(tree) => {
                let mut batch = sled::Batch::default();
                for (key, value) in values {
                    batch.insert(&key.to_be_bytes(), value.as_slice());
                }
                tree.apply_batch(batch).map_err(tree_error)
            }
            HourTree::Shared(shared) => {
                let expiring: Vec<(u64, Vec<u8>, u64)> = values
                    .iter()
                    .map(|(hour, value)| (*hour, value.clone(), expiry(*hour, retention_hours)))
                    .collect();
                shared.write_own(&expiring).map_err(tree_error)
            }
        }
    }

    /// Rewrites what every instance stored for the hours from `first` to
    /// `last` through `rewrite` (forgetting texts everywhere); locally
    /// this instance's own hours are rewritten by their next flush.
    pub(crate) fn rewrite_others(
        &self,
        first: u64,
        last: u64,
        retention_hours: u64,
        rewrite: impl Fn(&[u8]) -> Option<Vec<u8>>,
    ) -> Result<Option<u64>, StorageError> {
        match self {
            HourTree::Local(_) => Ok(None),
            HourTree::Shared(shared) => shared
                .rewrite_all(first, last, |h| expiry(h, retention_hours), rewrite)
                .map(Some)
                .map_err(tree_error),
        }
    }

    /// When any instance last forgot the kept texts (ms), if one did.
    pub(crate) fn texts_forgotten(&self) -> Result<Option<u64>, StorageError> {
        match self {
            HourTree::Local(_) => Ok(None),
            HourTree::Shared(shared) => shared.texts_forgotten().map_err(tree_error),
        }
    }

    /// Removes every value whose key is below `key` (Redis expires them).
    pub(crate) fn remove_below(&self, key: u64) -> Result<(), StorageError> {
        let HourTree::Local(tree) = self else {
            return Ok(());
        };
        let mut batch = sled::Batch::default();
        for item in tree.range(..key.to_be_bytes()) {
            let (old, _) = item.map_err(tree_error)?;
            batch.remove(old);
        }
        tree.apply_batch(batch).map_err(tree_error)
    }

    /// Flushes the tree's writes to disk.
    pub(crate) fn flush(&self) -> Result<(), StorageError> {
        match self {
            HourTree::Local(tree) => tree.flush().map(drop).map_err(tree_error),
            HourTree::Shared(_) => Ok(()),
        }
    }
}

/// When an hour's shared figures expire: the end of retention after it, in
/// seconds since the epoch.
fn expiry(hour: u64, retention_hours: u64) -> u64 {
    hour.saturating_add(1)
        .saturating_add(retention_hours)
        .saturating_mul(3600)
}
