//! What a [`crate::Db`] has served since it was made: hits, misses, rows fetched from the
//! database. Counted where results come out, read by `pgcache serve`'s `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one [`crate::Db`] (shared by its clones).
#[derive(Debug, Default)]
pub struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    rows_fetched: AtomicU64,
}

/// A reading of [`Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CounterValues {
    /// Results answered from the cache without the database.
    pub hits: u64,
    /// Results that needed the database (stored, refreshed or uncached).
    pub misses: u64,
    /// Rows read from the database.
    pub rows_fetched: u64,
}

impl Counters {
    /// Counts one result: a hit, or a miss that read `rows` from the database.
    pub(crate) fn count(&self, hit: bool, rows: u64) {
        if hit {
            self.hits.fetch_add(1, Ordering::Relaxed);
        } else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            self.rows_fetched.fetch_add(rows, Ordering::Relaxed);
        }
    }

    /// The counts so far.
    pub fn values(&self) -> CounterValues {
        CounterValues {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            rows_fetched: self.rows_fetched.load(Ordering::Relaxed),
        }
    }
}
