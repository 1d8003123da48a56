//! While serving: whether what is written to the data dir still reaches it.
//!
//! [`StorageHealth`] is the serving process's knowledge of its disk. The
//! first failed write or flush (sled 0.34 stays failed after an IO error,
//! and after a failed flush the page cache cannot be trusted) or a data dir
//! that is no longer the one opened ([`DataDirIdentity`]: deleted, replaced,
//! unmounted) marks it failed, for good: writes are refused at once (503,
//! retryable) and `/readyz` says why, while what needs no write goes on.
//! [`watch`] checks the identity every `storage.check_every`, and, once a
//! write or flush failed, probes whether the disk takes writes again; then it
//! asks for a reopen: the server closes this store and opens the data dir
//! afresh, in-process, from what is on disk (`http::App::run`).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::dir::LOCK_FILE;
use crate::shutdown::Shutdown;

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
/// store is reopened): see the module docs.
#[derive(Debug, Default)]
pub struct StorageHealth {
    failed: AtomicBool,
    failure: Mutex<Option<Failure>>,
    /// Failed operations seen, by [`FailureKind`].
    failures: [AtomicU64; 3],
    /// Writes refused because the store had failed.
    refused: AtomicU64,
    reopen: tokio::sync::Notify,
    reopen_requested: AtomicBool,
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

    /// Asks the server to reopen the store (the disk takes writes again).
    pub(crate) fn request_reopen(&self) {
        self.reopen_requested.store(true, Ordering::Release);
        self.reopen.notify_waiters();
        self.reopen.notify_one();
    }

    pub fn reopen_requested(&self) -> bool {
        self.reopen_requested.load(Ordering::Acquire)
    }

    /// Resolves once a reopen is requested.
    pub async fn wait_for_reopen(&self) {
        loop {
            let notified = self.reopen.notified();
            if self.reopen_requested() {
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
/// and, once it takes writes again, requests a reopen. A lost data dir
/// stays failed: reopening would start on an empty one.
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
            Some(_) if health.reopen_requested() => continue,
            Some(_) => tokio::task::spawn_blocking(move || disk.probe_space()).await,
        };
        if let Ok(Ok(())) = outcome {
            tracing::warn!(
                "the data dir takes writes again: reopening it from what is on disk (sled \
                 cannot be trusted after a failed write, so the store is built afresh)"
            );
            health.request_reopen();
        }
    }
    tracing::debug!("storage watcher stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
