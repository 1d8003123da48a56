//! The store's seam to the disk: every write sequence and every flush of
//! the [`super::Store`] goes through [`Disk`], which refuses at once
//! once storage has failed, turns an IO error into that failure
//! ([`StorageHealth`]), and checks before and after each flush that the
//! data dir is still the one opened, so that a flush into a deleted data
//! dir is never reported durable.
//!
//! In unit tests a [`Fault`] makes writes or flushes fail on demand, as a
//! full disk would; nothing of it exists in a normal build.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::StoreError;
use super::health::{self as storage, DataDirIdentity, FailureKind, StorageHealth};

/// The sled database as the store writes to it.
pub(crate) struct Disk {
    db: sled::Db,
    health: Arc<StorageHealth>,
    /// `None` when the database has no data dir of its own to check.
    identity: Option<DataDirIdentity>,
    /// Write sequences started, and how many of them the last successful
    /// flush covered: the difference is what a failed close leaves unsaved.
    writes: AtomicU64,
    flushed_writes: AtomicU64,
    #[cfg(test)]
    pub(crate) fault: Arc<Fault>,
}

/// Whether a sled error means the disk (not the data) failed.
fn is_disk_error(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Sled(
            sled::Error::Io(_) | sled::Error::ReportableBug(_) | sled::Error::Corruption { .. }
        )
    )
}

impl Disk {
    pub(crate) fn new(db: sled::Db, identity: Option<DataDirIdentity>) -> Disk {
        Disk {
            db,
            health: Arc::new(StorageHealth::default()),
            identity,
            writes: AtomicU64::new(0),
            flushed_writes: AtomicU64::new(0),
            #[cfg(test)]
            fault: Arc::new(Fault::default()),
        }
    }

    pub(crate) fn db(&self) -> &sled::Db {
        &self.db
    }

    pub(crate) fn health(&self) -> &Arc<StorageHealth> {
        &self.health
    }

    /// `Err` at once when storage has failed: nothing more is written.
    /// Counted as a refused write.
    pub(crate) fn writable(&self) -> Result<(), StoreError> {
        self.healthy().inspect_err(|_| self.health.refuse())
    }

    /// `Err` when storage has failed (not counted).
    pub(crate) fn healthy(&self) -> Result<(), StoreError> {
        match self.health.failure() {
            None => Ok(()),
            Some(failure) => Err(StoreError::Unavailable(failure.to_string())),
        }
    }

    /// Runs one write sequence of the store, unless storage has failed; an
    /// IO error from it puts storage out of service.
    pub(crate) fn write<T>(
        &self,
        write: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.writable()?;
        self.writes.fetch_add(1, Ordering::AcqRel);
        #[cfg(test)]
        let result = self.fault.check_write().and_then(|()| write());
        #[cfg(not(test))]
        let result = write();
        result.inspect_err(|e| {
            if is_disk_error(e) {
                self.health.fail(FailureKind::Write, e.to_string());
            }
        })
    }

    /// Flushes everything written so far (blocking: sled's `flush`),
    /// checking the data dir's identity before and after. Any failure puts
    /// storage out of service.
    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        self.healthy()?;
        let covered = self.writes.load(Ordering::Acquire);
        self.check_identity()?;
        #[cfg(test)]
        self.fault
            .check_flush()
            .map_err(|e| self.flush_failed(e.to_string()))?;
        self.db
            .flush()
            .map_err(|e| self.flush_failed(e.to_string()))?;
        // Written, but into the data dir still? Else it went nowhere.
        self.check_identity()?;
        self.flushed_writes.fetch_max(covered, Ordering::AcqRel);
        Ok(())
    }

    fn flush_failed(&self, reason: String) -> StoreError {
        StoreError::Unavailable(self.health.fail(FailureKind::Flush, reason).to_string())
    }

    fn check_identity(&self) -> Result<(), StoreError> {
        match self.identity.as_ref().map(DataDirIdentity::check) {
            Some(Err(why)) => Err(StoreError::Unavailable(
                self.health.fail(FailureKind::DataDir, why).to_string(),
            )),
            _ => Ok(()),
        }
    }

    /// Write sequences no successful flush has covered.
    pub(crate) fn unflushed_writes(&self) -> u64 {
        self.writes
            .load(Ordering::Acquire)
            .saturating_sub(self.flushed_writes.load(Ordering::Acquire))
    }
}

impl storage::Probe for Disk {
    fn check_identity(&self) -> Result<(), String> {
        self.identity
            .as_ref()
            .map_or(Ok(()), DataDirIdentity::check)
    }

    fn probe_space(&self) -> std::io::Result<()> {
        #[cfg(test)]
        self.fault.check_probe()?;
        match &self.identity {
            Some(identity) => storage::probe_space(identity.dir()),
            None => Ok(()),
        }
    }
}

/// A disk that fails on demand, as a full one does; unit tests only.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct Fault {
    writes: std::sync::atomic::AtomicBool,
    flushes: std::sync::atomic::AtomicBool,
}

#[cfg(test)]
impl Fault {
    /// From now on writes and flushes fail with "no space left on device".
    pub(crate) fn fill(&self) {
        self.writes.store(true, Ordering::SeqCst);
        self.flushes.store(true, Ordering::SeqCst);
    }

    /// Only flushes fail (sled takes writes into memory until it flushes).
    pub(crate) fn fail_flushes(&self) {
        self.flushes.store(true, Ordering::SeqCst);
    }

    /// Space again: writes, flushes and the space probe succeed.
    pub(crate) fn free(&self) {
        self.writes.store(false, Ordering::SeqCst);
        self.flushes.store(false, Ordering::SeqCst);
    }

    fn full() -> std::io::Error {
        std::io::Error::from(std::io::ErrorKind::StorageFull)
    }

    fn check_write(&self) -> Result<(), StoreError> {
        if self.writes.load(Ordering::SeqCst) {
            return Err(StoreError::Sled(sled::Error::Io(Self::full())));
        }
        Ok(())
    }

    fn check_flush(&self) -> std::io::Result<()> {
        if self.flushes.load(Ordering::SeqCst) {
            return Err(Self::full());
        }
        Ok(())
    }

    fn check_probe(&self) -> std::io::Result<()> {
        self.check_flush()
    }
}
