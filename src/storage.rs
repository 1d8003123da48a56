//! The embedded store: one sled database under `storage.data_dir`.
//!
//! Opening it turns sled's errors into ones an operator can act on (the
//! directory is locked by another `roster`, unreadable, or corrupt). The
//! trees inside belong to the modules that use them: `session::store`,
//! `limits`, and the dashboard's figures, which reach their tree through
//! [`HourTree`] so that no sled type leaves this module for them.

use std::path::{Path, PathBuf};

use crate::clock::duration_ms;
use crate::config::StorageConfig;

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
        "data dir {} is corrupt ({reason}); restore it from a backup (roster import) or move it aside to start empty",
        path.display()
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error("storage error in {}: {reason}", path.display())]
    Other { path: PathBuf, reason: String },
}

/// Opens (creating if needed) the sled database at `config.data_dir`.
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
        match sled_config.open().map_err(|e| classify(&path, e)) {
            Err(StorageError::Locked(_)) if attempts < LOCK_RETRIES => {
                attempts += 1;
                std::thread::sleep(LOCK_RETRY_PAUSE);
            }
            result => return result,
        }
    }
}

/// How long, in all, opening waits for a lock that is being released.
const LOCK_RETRIES: u32 = 20;
const LOCK_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

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
