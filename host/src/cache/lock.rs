//! Serialising refreshes of one entry: across tasks of this process (an async mutex per entry,
//! which also lets concurrent callers share one fetch) and across processes (an advisory
//! `flock` on a file through `std::fs::File::try_lock`, polled until a timeout).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Per-entry state shared by the tasks of this process.
#[derive(Debug, Default)]
struct Slot {
    mutex: Arc<tokio::sync::Mutex<()>>,
    /// Refreshes of this entry completed successfully by this process.
    completed: AtomicU64,
}

/// The in-process locks of all entries.
#[derive(Debug, Default)]
pub(crate) struct Locks {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

/// Holds an entry for one refresh, in this process and (once [`EntryLock::lock_files`] is
/// called) across processes.
#[derive(Debug)]
pub(crate) struct EntryLock<'a> {
    locks: &'a Locks,
    name: String,
    slot: Arc<Slot>,
    _guard: tokio::sync::OwnedMutexGuard<()>,
    file: Option<File>,
    /// Whether another task of this process completed a refresh while this one waited.
    pub refreshed_while_waiting: bool,
}

impl Locks {
    /// Waits for the in-process lock of entry `name`.
    pub async fn lock(&self, name: &str) -> EntryLock<'_> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.entry(name.to_owned()).or_default().clone()
        };
        let seen = slot.completed.load(Ordering::Acquire);
        let guard = slot.mutex.clone().lock_owned().await;
        let refreshed_while_waiting = slot.completed.load(Ordering::Acquire) > seen;
        EntryLock {
            locks: self,
            name: name.to_owned(),
            slot,
            _guard: guard,
            file: None,
            refreshed_while_waiting,
        }
    }
}

impl EntryLock<'_> {
    /// Also takes the cross-process lock file at `path`, waiting up to `timeout`.
    pub async fn lock_files(&mut self, path: &Path, timeout: Duration) -> Result<()> {
        let path = path.to_path_buf();
        let name = self.name.clone();
        let file = tokio::task::spawn_blocking(move || lock_file(&path, &name, timeout))
            .await
            .map_err(|e| Error::CacheIo {
                action: "locking",
                path: PathBuf::new(),
                source: std::io::Error::other(e),
            })??;
        self.file = Some(file);
        Ok(())
    }

    /// Records a successful refresh, so that tasks waiting behind this one can share it.
    pub fn completed(&self) {
        self.slot.completed.fetch_add(1, Ordering::AcqRel);
    }
}

impl Drop for EntryLock<'_> {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            let _ = file.unlock();
        }
        let mut slots = self.locks.slots.lock().unwrap_or_else(|p| p.into_inner());
        // Two references: the map's and ours. Nobody else is waiting: forget the slot.
        if Arc::strong_count(&self.slot) == 2 {
            slots.remove(&self.name);
        }
    }
}

/// Takes an exclusive advisory lock on `path`, polling until `timeout`.
fn lock_file(path: &Path, name: &str, timeout: Duration) -> Result<File> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(Error::cache_io("opening lock file", path))?;
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::cache_io("locking", path)(e));
            }
        }
        if start.elapsed() >= timeout {
            return Err(Error::LockTimeout {
                entry: name.to_owned(),
                waited: start.elapsed(),
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
