//! The data dir: opening the sled database under `storage.data_dir`, and
//! knowing, while serving, whether what is written there still reaches it.
//!
//! # Opening
//!
//! [`open`] turns sled's errors into ones an operator can act on: the data
//! dir is locked by another `roster`, not accessible, on a full disk, or
//! unreadable. Before sled reads the data dir, a snapshot sled began but
//! never finished (`snap.<lsn>.generating`: sled writes it, syncs it and
//! only then renames it to `snap.<lsn>`) is moved aside: a start on a full
//! disk leaves such a file at 0 bytes, sled would take it for its newest
//! snapshot and call the whole data dir corrupt, while its log is intact
//! and sled rebuilds the snapshot from it. The file is renamed
//! `moved-aside-<ms>-snap.<lsn>.generating` in the data dir (a name sled
//! does not read, as it reads every `snap.*`), and the move is logged.
//! "Corrupt" is said only when sled still cannot read the data dir, and the
//! advice is never to start empty: keep it, check it, restore a backup.
//!
//! [`open_when_space`] is what `roster serve` uses: on a full disk it logs
//! and retries with a bounded backoff until the start succeeds.
//!
//! # Trees kept here
//!
//! The trees inside belong to the modules that use them (`store`,
//! `limits`); the dashboard's figures ([`HourTree`]), the `embeddings` tree
//! ([`VectorCache`]) and the late-reply outbox ([`OutboxTree`]) are reached
//! through types kept here, so that no sled type leaves this module for them.
//!
//! # While serving
//!
//! [`StorageHealth`] is the serving process's knowledge of its disk. The
//! first failed write or flush (sled 0.34 stays failed after an IO error,
//! and after a failed flush the page cache cannot be trusted) or a data dir
//! that is no longer the one opened ([`DataDirIdentity`]: deleted, replaced,
//! unmounted) marks it failed, for good: writes are refused at once (503,
//! retryable) and `/readyz` says why, while what needs no write goes on.
//! [`watch`] checks the identity every `storage.check_every`, and, once a
//! write or flush failed, probes whether the disk takes writes again; then it
//! asks for a restart: the process exits non-zero and its supervisor
//! (systemd `Restart=on-failure`) starts it afresh on what is on disk.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::duration_ms;
use crate::config::StorageConfig;
use crate::shutdown::Shutdown;

/// Why the data dir could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(
        "data dir {} is locked by another running roster process; stop that process first, or set storage.data_dir to another directory",
        .0.display()
    )]
    Locked(PathBuf),
    #[error(
        "data dir {} is not accessible ({reason}); check that it exists and that this user may read and write it",
        path.display()
    )]
    Unreadable { path: PathBuf, reason: String },
    #[error(
        "data dir {} is on a full disk ({reason}); free some space on its filesystem",
        path.display()
    )]
    NoSpace { path: PathBuf, reason: String },
    #[error(
        "data dir {} is corrupt: sled cannot read it ({reason}). Keep it as it is (copy it \
         aside before trying anything), run `roster check-data --data-dir {}` to see what can \
         be read, and restore a backup (roster import) only if the data cannot be read",
        path.display(),
        path.display()
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error("storage error in {}: {reason}", path.display())]
    Other { path: PathBuf, reason: String },
}

/// Opens (creating if needed) the sled database at `config.data_dir`,
/// after moving aside any snapshot sled left unfinished.
pub fn open(config: &StorageConfig) -> Result<sled::Db, StorageError> {
    let path = config.data_dir.clone();
    if let Err(e) = std::fs::create_dir_all(&path) {
        return Err(StorageError::Unreadable {
            path,
            reason: e.to_string(),
        });
    }
    let sled_config = sled::Config::new()
        .path(&path)
        .cache_capacity(config.cache_bytes)
        .flush_every_ms(Some(duration_ms(config.flush_every)));
    // A database closed a moment ago (a restart in the same process, or a
    // previous roster still exiting) releases its lock when sled's own
    // threads let go; wait briefly before calling the data dir locked.
    let mut attempts = 0;
    loop {
        let opened = match in_use(&path) {
            Ok(true) => Err(StorageError::Locked(path.clone())),
            Ok(false) => set_aside_unfinished_snapshots(&path)
                .map_err(|e| classify_io(&path, e))
                .and_then(|_| sled_config.open().map_err(|e| classify(&path, e))),
            Err(e) => Err(classify_io(&path, e)),
        };
        match opened {
            Err(StorageError::Locked(_)) if attempts < LOCK_RETRIES => {
                attempts += 1;
                std::thread::sleep(LOCK_RETRY_PAUSE);
            }
            result => return result,
        }
    }
}

/// [`open`], waiting out a full disk: logs and retries with a backoff from
/// 1 s up to 30 s until the data dir opens or fails for another reason.
pub fn open_when_space(config: &StorageConfig) -> Result<sled::Db, StorageError> {
    let mut pause = Duration::from_secs(1);
    loop {
        match open(config) {
            Err(StorageError::NoSpace { path, reason }) => {
                tracing::error!(
                    data_dir = %path.display(),
                    retry_in_secs = pause.as_secs(),
                    "cannot start: the data dir's disk is full ({reason}); free some space, \
                     roster retries by itself"
                );
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(30));
            }
            result => return result,
        }
    }
}

/// How long, in all, opening waits for a lock that is being released.
const LOCK_RETRIES: u32 = 20;
const LOCK_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

/// The file sled locks (`flock`, exclusive) while a process has it open.
const LOCK_FILE: &str = "db";

/// Whether another process has the data dir open, asked the way sled locks
/// it (a shared `flock` on its `db` file, released at once), so that
/// nothing in a data dir in use is touched.
pub(crate) fn in_use(dir: &Path) -> std::io::Result<bool> {
    use fs2::FileExt;
    let file = match std::fs::File::open(dir.join(LOCK_FILE)) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    match FileExt::try_lock_shared(&file) {
        Ok(()) => {
            // Dropping the file releases the lock; say so explicitly.
            let _ = FileExt::unlock(&file);
            Ok(false)
        }
        Err(e) if e.kind() == fs2::lock_contended_error().kind() => Ok(true),
        Err(e) => Err(e),
    }
}

/// A snapshot sled left unfinished, and where it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    pub from: PathBuf,
    pub to: PathBuf,
    pub bytes: u64,
}

/// Whether `name` is a snapshot sled began and never finished.
pub(crate) fn is_unfinished_snapshot(name: &str) -> bool {
    name.starts_with("snap.") && name.ends_with(".generating")
}

/// Moves every `snap.*.generating` in `dir` aside (within `dir`, under a
/// name sled does not read), logging each: sled renames a snapshot to its
/// final name only once it is written and synced, so such a file is never
/// a snapshot sled can use, and sled rebuilds one from its log.
pub fn set_aside_unfinished_snapshots(dir: &Path) -> std::io::Result<Vec<SetAside>> {
    let mut moved = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(moved),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_unfinished_snapshot(&name) {
            continue;
        }
        let from = entry.path();
        let bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
        let to = dir.join(format!("moved-aside-{}-{name}", unix_ms()));
        std::fs::rename(&from, &to)?;
        tracing::warn!(
            from = %from.display(),
            to = %to.display(),
            bytes,
            "moved aside a snapshot sled began but never finished (a start on a full disk \
             leaves one); sled rebuilds its snapshot from its log"
        );
        moved.push(SetAside { from, to, bytes });
    }
    Ok(moved)
}

fn unix_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// Whether `error` means the disk is out of space (or quota).
pub(crate) fn is_no_space(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

fn classify_io(path: &Path, e: std::io::Error) -> StorageError {
    classify(path, sled::Error::Io(e))
}

fn classify(path: &Path, error: sled::Error) -> StorageError {
    let path = path.to_owned();
    match error {
        sled::Error::Io(e)
            if e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("lock") =>
        {
            StorageError::Locked(path)
        }
        sled::Error::Io(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            StorageError::Unreadable {
                path,
                reason: e.to_string(),
            }
        }
        sled::Error::Io(e) if is_no_space(&e) => StorageError::NoSpace {
            path,
            reason: e.to_string(),
        },
        sled::Error::Corruption { .. } | sled::Error::Unsupported(_) => StorageError::Corrupt {
            path,
            reason: error.to_string(),
        },
        other => StorageError::Other {
            path,
            reason: other.to_string(),
        },
    }
}

/// What failed, for the log, `/readyz` and `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// A write to sled returned an error.
    Write,
    /// A flush to disk failed (or did not finish in time).
    Flush,
    /// The data dir is no longer the one opened.
    DataDir,
}

impl FailureKind {
    pub const ALL: [FailureKind; 3] =
        [FailureKind::Write, FailureKind::Flush, FailureKind::DataDir];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Write => "write",
            FailureKind::Flush => "flush",
            FailureKind::DataDir => "data-dir",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The failure that put the store out of service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub reason: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            FailureKind::Write => write!(f, "a write to the data dir failed: {}", self.reason),
            FailureKind::Flush => write!(f, "a flush to the data dir failed: {}", self.reason),
            FailureKind::DataDir => write!(f, "{}", self.reason),
        }
    }
}

/// Whether the data dir can still be written, shared by the store, the
/// watcher, `/readyz` and `/metrics`. A failure is for good (until the
/// process restarts): see the module docs.
#[derive(Debug, Default)]
pub struct StorageHealth {
    failed: AtomicBool,
    failure: Mutex<Option<Failure>>,
    /// Failed operations seen, by [`FailureKind`].
    failures: [AtomicU64; 3],
    /// Writes refused because the store had failed.
    refused: AtomicU64,
    restart: tokio::sync::Notify,
    restart_requested: AtomicBool,
}

impl StorageHealth {
    /// `None` while healthy; else the first failure.
    pub fn failure(&self) -> Option<Failure> {
        if !self.failed.load(Ordering::Acquire) {
            return None;
        }
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Records a failed operation; the first one puts the store out of
    /// service and is logged. Returns the failure in force.
    pub fn fail(&self, kind: FailureKind, reason: impl Into<String>) -> Failure {
        self.failures[kind.index()].fetch_add(1, Ordering::Relaxed);
        let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(first) = failure.as_ref() {
            return first.clone();
        }
        let first = Failure {
            kind,
            reason: reason.into(),
        };
        tracing::error!(
            kind = kind.as_str(),
            "storage failed: {first}. Writes are refused from now on (503, which Twilio \
             retries); what needs no write is still answered. Exchanges acknowledged before \
             this are on disk"
        );
        *failure = Some(first.clone());
        self.failed.store(true, Ordering::Release);
        first
    }

    /// Counts a write refused because the store had failed.
    pub(crate) fn refuse(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Failed operations seen of `kind`.
    pub fn failures(&self, kind: FailureKind) -> u64 {
        self.failures[kind.index()].load(Ordering::Relaxed)
    }

    /// Writes refused since the failure.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Asks the server to exit for a restart (the disk takes writes again).
    pub(crate) fn request_restart(&self) {
        self.restart_requested.store(true, Ordering::Release);
        self.restart.notify_waiters();
        self.restart.notify_one();
    }

    pub fn restart_requested(&self) -> bool {
        self.restart_requested.load(Ordering::Acquire)
    }

    /// Resolves once a restart is requested.
    pub async fn wait_for_restart(&self) {
        loop {
            let notified = self.restart.notified();
            if self.restart_requested() {
                return;
            }
            notified.await;
        }
    }
}

/// The data dir as opened: the (device, inode) of the directory and of
/// sled's lock file in it. Deleting, replacing or unmounting the data dir
/// changes one of them (or makes it vanish) while sled goes on writing
/// into files no path leads to any more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDirIdentity {
    dir: PathBuf,
    dir_id: (u64, u64),
    lock_id: (u64, u64),
}

fn file_id(path: &Path) -> std::io::Result<(u64, u64)> {
    let meta = std::fs::metadata(path)?;
    Ok((meta.dev(), meta.ino()))
}

impl DataDirIdentity {
    /// The identity of `dir` now (sled has it open).
    pub fn capture(dir: &Path) -> std::io::Result<DataDirIdentity> {
        Ok(DataDirIdentity {
            dir: dir.to_owned(),
            dir_id: file_id(dir)?,
            lock_id: file_id(&dir.join(LOCK_FILE))?,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `Err(why)` when the data dir is not the one opened any more.
    pub fn check(&self) -> Result<(), String> {
        let dir = self.dir.display();
        match file_id(&self.dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!(
                    "the data dir {dir} is gone (deleted, moved or unmounted) while serving"
                ));
            }
            Err(e) => return Err(format!("the data dir {dir} cannot be checked: {e}")),
            Ok(id) if id != self.dir_id => {
                return Err(format!(
                    "the data dir {dir} is another directory than the one opened (replaced or \
                     unmounted) while serving"
                ));
            }
            Ok(_) => {}
        }
        match file_id(&self.dir.join(LOCK_FILE)) {
            Ok(id) if id == self.lock_id => Ok(()),
            Ok(_) => Err(format!(
                "sled's file {dir}/{LOCK_FILE} was replaced while serving"
            )),
            Err(e) => Err(format!(
                "sled's file {dir}/{LOCK_FILE} is gone while serving ({e})"
            )),
        }
    }
}

/// What the watcher needs of the disk: the identity check and a probe of
/// whether writes succeed again (the session store's seam provides both).
pub trait Probe: Send + Sync {
    /// `Err(why)` when the data dir is not the one opened.
    fn check_identity(&self) -> Result<(), String>;
    /// Whether a write of [`SPACE_PROBE_BYTES`] to the data dir succeeds
    /// (written, synced and removed).
    fn probe_space(&self) -> std::io::Result<()>;
}

/// What the space probe writes: enough for sled to open and write a segment.
pub const SPACE_PROBE_BYTES: usize = 1024 * 1024;

/// Writes [`SPACE_PROBE_BYTES`] to a file in `dir`, syncs it and removes it.
pub fn probe_space(dir: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let path = dir.join(".roster-space-probe");
    let written = (|| {
        let mut file = std::fs::File::create(&path)?;
        file.write_all(&vec![0u8; SPACE_PROBE_BYTES])?;
        file.sync_all()
    })();
    let removed = std::fs::remove_file(&path);
    written?;
    match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Every `every` until `shutdown`: while healthy, checks that the data dir
/// is still the one opened; after a failed write or flush, probes the disk
/// and, once it takes writes again, requests a restart. A lost data dir
/// stays failed: restarting would start on an empty one.
pub async fn watch(
    health: std::sync::Arc<StorageHealth>,
    probe: std::sync::Arc<dyn Probe>,
    every: Duration,
    mut shutdown: Shutdown,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.recv() => break,
        }
        let disk = std::sync::Arc::clone(&probe);
        let outcome = match health.failure() {
            None => {
                let checked = tokio::task::spawn_blocking(move || disk.check_identity()).await;
                if let Ok(Err(why)) = checked {
                    health.fail(FailureKind::DataDir, why);
                }
                continue;
            }
            Some(failure) if failure.kind == FailureKind::DataDir => continue,
            Some(_) if health.restart_requested() => continue,
            Some(_) => tokio::task::spawn_blocking(move || disk.probe_space()).await,
        };
        if let Ok(Ok(())) = outcome {
            tracing::error!(
                "the data dir takes writes again: roster exits (status 1) so that its \
                 supervisor (systemd Restart=on-failure) starts it afresh on what is on disk; \
                 sled cannot be trusted in-process after a failed write"
            );
            health.request_restart();
        }
    }
    tracing::debug!("storage watcher stopped");
}

/// The storage-fault behaviour through the real router, with the store's
/// disk failing on demand ([`crate::session`]'s seam): the logic the tmpfs
/// tests (`tests/storage_faults.rs`, root only) check on a really full disk.
/// Member-profile vectors already computed, in the `embeddings` tree: key
/// = model name, a zero byte, SHA-1 of the text embedded; value = a version
/// byte and the vector's `f32`s, little-endian. A restart, or a reload that
/// changed ten members, embeds those ten only.
#[derive(Clone)]
pub struct VectorCache {
    tree: sled::Tree,
}

impl std::fmt::Debug for VectorCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorCache")
            .field("vectors", &self.tree.len())
            .finish()
    }
}

/// The format of a cached vector.
const VECTOR_VERSION: u8 = 1;

impl VectorCache {
    /// Opens (creating) the `embeddings` tree of `db`.
    pub fn open(db: &sled::Db) -> Result<VectorCache, StorageError> {
        db.open_tree("embeddings")
            .map(|tree| VectorCache { tree })
            .map_err(|e| StorageError::Other {
                path: PathBuf::from("embeddings"),
                reason: e.to_string(),
            })
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

    /// The cached vector at `key`; `None` if absent, unreadable or of
    /// another format (it is then embedded again).
    pub fn get(&self, key: &[u8]) -> Option<Vec<f32>> {
        let value = self.tree.get(key).ok()??;
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

    /// Stores vectors; a failure only means they are embedded again later.
    pub fn put(&self, key: &[u8], vector: &[f32]) -> Result<(), StorageError> {
        let mut value = Vec::with_capacity(1 + vector.len() * 4);
        value.push(VECTOR_VERSION);
        for x in vector {
            value.extend_from_slice(&x.to_le_bytes());
        }
        self.tree
            .insert(key, value)
            .map(drop)
            .map_err(|e| StorageError::Other {
                path: PathBuf::from("embeddings"),
                reason: e.to_string(),
            })
    }
}

/// Replies waiting to be sent through Twilio's Messages API, in the
/// `outbox` tree (key: the inbound MessageSid; value: the owner's encoding).
/// An entry stays until Twilio accepted every part, so a crash or restart
/// sends it afterwards.
#[derive(Clone)]
pub struct OutboxTree {
    tree: sled::Tree,
}

impl std::fmt::Debug for OutboxTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxTree")
            .field("pending", &self.tree.len())
            .finish()
    }
}

fn outbox_error(e: sled::Error) -> StorageError {
    StorageError::Other {
        path: PathBuf::from("outbox"),
        reason: e.to_string(),
    }
}

impl OutboxTree {
    pub fn open(db: &sled::Db) -> Result<OutboxTree, StorageError> {
        db.open_tree("outbox")
            .map(|tree| OutboxTree { tree })
            .map_err(outbox_error)
    }

    /// Stores `value` at `key` and flushes it to disk.
    pub async fn put_durably(&self, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        self.tree.insert(key, value).map_err(outbox_error)?;
        self.tree.flush_async().await.map_err(outbox_error)?;
        Ok(())
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .tree
            .get(key)
            .map_err(outbox_error)?
            .map(|v| v.to_vec()))
    }

    pub async fn remove(&self, key: &[u8]) -> Result<(), StorageError> {
        self.tree.remove(key).map_err(outbox_error)?;
        self.tree.flush_async().await.map_err(outbox_error)?;
        Ok(())
    }

    /// Every entry, oldest key first.
    pub fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.tree
            .iter()
            .filter_map(Result::ok)
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect()
    }
}

/// A tree of values keyed by a number (big-endian, so in order): the
/// dashboard's hourly figures, one value per hour.
pub(crate) struct HourTree {
    tree: sled::Tree,
}

/// The name of the dashboard's tree.
const AGGREGATES_TREE: &str = "aggregates";

fn tree_error(e: sled::Error) -> StorageError {
    StorageError::Other {
        path: PathBuf::from(AGGREGATES_TREE),
        reason: e.to_string(),
    }
}

impl HourTree {
    /// Opens (creating if needed) the `aggregates` tree of `db`.
    pub(crate) fn open(db: &sled::Db) -> Result<HourTree, StorageError> {
        Ok(HourTree {
            tree: db.open_tree(AGGREGATES_TREE).map_err(tree_error)?,
        })
    }

    /// Every stored value with its key, in key order.
    pub(crate) fn all(&self) -> Result<Vec<(u64, Vec<u8>)>, StorageError> {
        let mut out = Vec::new();
        for item in self.tree.iter() {
            let (key, value) = item.map_err(tree_error)?;
            let Ok(key) = <[u8; 8]>::try_from(key.as_ref()) else {
                continue;
            };
            out.push((u64::from_be_bytes(key), value.to_vec()));
        }
        Ok(out)
    }

    /// Writes the values in one batch.
    pub(crate) fn put_all(&self, values: &[(u64, Vec<u8>)]) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for (key, value) in values {
            batch.insert(&key.to_be_bytes(), value.as_slice());
        }
        self.tree.apply_batch(batch).map_err(tree_error)
    }

    /// Removes every value whose key is below `key`.
    pub(crate) fn remove_below(&self, key: u64) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for item in self.tree.range(..key.to_be_bytes()) {
            let (old, _) = item.map_err(tree_error)?;
            batch.remove(old);
        }
        self.tree.apply_batch(batch).map_err(tree_error)
    }

    /// Flushes the tree's writes to disk.
    pub(crate) fn flush(&self) -> Result<(), StorageError> {
        self.tree.flush().map(drop).map_err(tree_error)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::clock::ManualClock;
    use crate::config::Config;
    use crate::http::{App, Options};
    use crate::shutdown::ShutdownTrigger;
    use crate::twilio::SignatureVerifier;

    const TOKEN: &str = "unit-auth-token";
    const ADMIN: &str = "unit-admin-token";
    const MEMBER: &str = "+919845000007";
    const ASHA: &str = "+919845000001";
    const STRANGER: &str = "+919900000099";

    fn config(dir: &Path) -> Config {
        let mut config = Config::default();
        config.server.bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        config.twilio.auth_token = TOKEN.to_owned();
        config.admin.token = ADMIN.to_owned();
        config.directory.members_csv =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/members.csv");
        config.storage.data_dir = dir.join("state");
        config.storage.check_every = Duration::from_millis(20);
        config
    }

    struct Running {
        url: String,
        app: crate::http::AppState,
        trigger: ShutdownTrigger,
        handle: tokio::task::JoinHandle<anyhow::Result<()>>,
        client: reqwest::Client,
    }

    async fn start(config: Config) -> Running {
        let app = App::build(
            config,
            Options {
                dev: false,
                clock: ManualClock::starting_now(),
            },
        )
        .expect("app builds");
        let state = app.state().clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (trigger, shutdown) = ShutdownTrigger::new();
        let handle = tokio::spawn(app.run(listener, shutdown));
        Running {
            url,
            app: state,
            trigger,
            handle,
            client: reqwest::Client::new(),
        }
    }

    impl Running {
        /// Sends `body` from `from` as message `sid`: (status, Retry-After, body, time taken).
        async fn send(
            &self,
            from: &str,
            body: &str,
            sid: &str,
        ) -> (u16, Option<String>, String, Duration) {
            let url = format!("{}/whatsapp/webhook", self.url);
            let fields: Vec<(String, String)> = [
                ("MessageSid", sid.to_owned()),
                ("From", format!("whatsapp:{from}")),
                ("To", "whatsapp:+14155238886".to_owned()),
                ("Body", body.to_owned()),
                ("NumMedia", "0".to_owned()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            let signature = SignatureVerifier::new(TOKEN).sign(&url, &fields);
            let form = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&fields)
                .finish();
            let started = Instant::now();
            let response = self
                .client
                .post(&url)
                .header("x-twilio-signature", signature)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let text = response.text().await.unwrap();
            (status, retry_after, text, started.elapsed())
        }

        async fn get(&self, path: &str) -> (u16, String) {
            let response = self
                .client
                .get(format!("{}{path}", self.url))
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }

        async fn message_count(&self, phone: &str) -> Option<u64> {
            let (status, body) = self.get(&format!("/admin/sessions/{phone}")).await;
            if status == 404 {
                return None;
            }
            let session: serde_json::Value = serde_json::from_str(&body).unwrap();
            session["messageCount"].as_u64()
        }

        /// Waits for `run` to return by itself (a restart), at most `limit`.
        async fn ended_within(self, limit: Duration) -> anyhow::Result<()> {
            let _trigger = self.trigger;
            tokio::time::timeout(limit, self.handle)
                .await
                .expect("the server ended by itself")
                .expect("server task")
        }

        async fn stop(self) -> (anyhow::Result<()>, Duration) {
            let started = Instant::now();
            self.trigger.fire();
            let result = self.handle.await.expect("server task");
            (result, started.elapsed())
        }
    }

    fn metric(text: &str, series: &str) -> f64 {
        text.lines()
            .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_flush_fails_fast_with_503_serves_what_needs_no_write_then_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let server = start(config(dir.path())).await;
        let (status, _, acknowledged, _) = server.send(MEMBER, "hi", "SMunit-a").await;
        assert_eq!(status, 200);
        let (ready, _) = server.get("/readyz").await;
        assert_eq!(ready, 200);

        // sled takes writes into memory; the flush is what fails.
        server.app.sessions.fault().fail_flushes();
        let (status, retry_after, _, took) = server.send(MEMBER, "doctors", "SMunit-b").await;
        assert_eq!(status, 503, "a failed flush is retryable");
        assert_eq!(retry_after.as_deref(), Some("5"));
        assert!(
            took < Duration::from_secs(1),
            "fast, not the request timeout: {took:?}"
        );

        let (ready, body) = server.get("/readyz").await;
        assert_eq!(ready, 503, "{body}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["storageFailure"]["kind"], "flush", "{body}");
        assert!(
            body["storageFailure"]["reason"]
                .as_str()
                .unwrap()
                .contains("flush"),
            "{body}"
        );

        // Every later write is refused at once, without touching sled.
        let (status, _, _, took) = server.send(ASHA, "hi", "SMunit-c").await;
        assert_eq!(status, 503);
        assert!(took < Duration::from_secs(1), "{took:?}");
        // What needs no write goes on: a redelivery of an acknowledged
        // exchange, a refusal to a stranger.
        let (status, _, again, _) = server.send(MEMBER, "hi", "SMunit-a").await;
        assert_eq!((status, again), (200, acknowledged.clone()));
        let (status, _, refusal, _) = server.send(STRANGER, "hi", "SMunit-d").await;
        assert_eq!(status, 200);
        assert!(refusal.contains("registered with"), "{refusal}");
        // The exchange whose flush failed was never acknowledged: its
        // redelivery is not answered from memory.
        let (status, _, _, _) = server.send(MEMBER, "doctors", "SMunit-b").await;
        assert_eq!(status, 503);

        let (_, metrics) = server.get("/metrics").await;
        assert_eq!(metric(&metrics, "roster_storage_failed"), 1.0);
        assert!(metric(&metrics, r#"roster_storage_failures_total{kind="flush"}"#) >= 1.0);
        assert_eq!(
            metric(
                &metrics,
                r#"roster_storage_failures_total{kind="data-dir"}"#
            ),
            0.0
        );
        assert!(
            metric(&metrics, "roster_storage_refused_writes_total") >= 2.0,
            "{metrics}"
        );

        // Space again: the watcher's probe succeeds and the server exits
        // for its supervisor to restart it.
        server.app.sessions.fault().free();
        let ended = server.ended_within(Duration::from_secs(10)).await;
        let error = ended.expect_err("a restart is an error exit");
        assert!(error.to_string().contains("restart"), "{error:#}");

        // The restart: what was acknowledged is there; the unacknowledged
        // exchange counts exactly once, whether or not it reached the disk.
        let server = start(config(dir.path())).await;
        let before = server
            .message_count(MEMBER)
            .await
            .expect("the session survived");
        assert!((1..=2).contains(&before), "{before}");
        let (status, _, _, _) = server.send(MEMBER, "doctors", "SMunit-b").await;
        assert_eq!(status, 200);
        assert_eq!(server.message_count(MEMBER).await, Some(2));
        let (status, _, again, _) = server.send(MEMBER, "hi", "SMunit-a").await;
        assert_eq!((status, again), (200, acknowledged));
        assert_eq!(server.message_count(MEMBER).await, Some(2));
        let (result, _) = server.stop().await;
        result.expect("a clean stop");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_write_refuses_every_waiter_and_the_stop_says_what_was_not_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path());
        config.server.shutdown_timeout = Duration::from_secs(2);
        // No probe during this test: the failure stays.
        config.storage.check_every = Duration::from_secs(3600);
        let server = Arc::new(start(config).await);
        assert_eq!(server.send(MEMBER, "hi", "SMunit-w0").await.0, 200);
        server.app.sessions.fault().fill();
        let senders: Vec<_> = ["+919845000001", "+919845000002", "+919845000003", MEMBER]
            .into_iter()
            .enumerate()
            .map(|(i, phone)| {
                let server = Arc::clone(&server);
                tokio::spawn(async move {
                    server
                        .send(phone, "hi", &format!("SMunit-w{}", i + 1))
                        .await
                })
            })
            .collect();
        for sender in senders {
            let (status, _, _, took) = sender.await.unwrap();
            assert_eq!(status, 503);
            assert!(took < Duration::from_secs(1), "{took:?}");
        }
        let health = server.app.sessions.health();
        assert_eq!(health.failure().map(|f| f.kind), Some(FailureKind::Write));
        let server = Arc::into_inner(server).expect("senders are done");
        let (result, took) = server.stop().await;
        assert!(
            took < Duration::from_secs(2) + crate::store::FINAL_FLUSH_LIMIT,
            "{took:?}"
        );
        let error = result.expect_err("what could not be flushed is an error");
        let error = format!("{error:#}");
        assert!(error.contains("state not flushed"), "{error}");
        assert!(error.contains("none of them was acknowledged"), "{error}");
    }

    #[test]
    fn the_identity_tells_a_deleted_or_replaced_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(state.join(LOCK_FILE), b"").unwrap();
        let identity = DataDirIdentity::capture(&state).unwrap();
        assert_eq!(identity.check(), Ok(()));

        std::fs::rename(&state, dir.path().join("elsewhere")).unwrap();
        let gone = identity.check().unwrap_err();
        assert!(gone.contains("is gone"), "{gone}");

        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(state.join(LOCK_FILE), b"").unwrap();
        let replaced = identity.check().unwrap_err();
        assert!(replaced.contains("another directory"), "{replaced}");

        let identity = DataDirIdentity::capture(&state).unwrap();
        // A new file put in its place (made while the old one still exists,
        // so it cannot reuse its inode).
        std::fs::write(state.join("db.new"), b"").unwrap();
        std::fs::rename(state.join("db.new"), state.join(LOCK_FILE)).unwrap();
        let lock = identity.check().unwrap_err();
        assert!(lock.contains("was replaced"), "{lock}");
    }

    #[test]
    fn only_unfinished_snapshots_are_moved_and_under_names_sled_does_not_read() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "snap.0000000000000010",
            "snap.0000000000000020.generating",
            "db",
            "conf",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let moved = set_aside_unfinished_snapshots(dir.path()).unwrap();
        assert_eq!(moved.len(), 1);
        let to = moved[0]
            .to
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            to.starts_with("moved-aside-") && !to.starts_with("snap."),
            "{to}"
        );
        assert!(dir.path().join("snap.0000000000000010").exists());
        assert!(!dir.path().join("snap.0000000000000020.generating").exists());
        assert!(
            set_aside_unfinished_snapshots(dir.path())
                .unwrap()
                .is_empty()
        );
    }
}
