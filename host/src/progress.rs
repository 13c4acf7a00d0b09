//! Counters a long fetch updates as it goes, so a caller can show rows, bytes and rates.

use std::sync::atomic::{AtomicU64, Ordering};

/// Rows and wire bytes received so far by a fetch. Cheap to update from the fetching task and
/// to read from another thread.
///
/// ```
/// let progress = pgcache::Progress::default();
/// assert_eq!(progress.rows(), 0);
/// ```
#[derive(Debug, Default)]
pub struct Progress {
    rows: AtomicU64,
    bytes: AtomicU64,
}

impl Progress {
    /// Rows received.
    pub fn rows(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }

    /// Bytes received from the server.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub(crate) fn add(&self, rows: u64, bytes: u64) {
        self.rows.fetch_add(rows, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}
