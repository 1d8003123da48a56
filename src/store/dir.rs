//! The data dir: opening the sled database under `storage.data_dir` with
//! errors an operator can act on.
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

use std::path::{Path, PathBuf};
use std::time::Duration;

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
pub(super) const LOCK_FILE: &str = "db";

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

#[cfg(test)]
mod tests {
    use super::*;

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
