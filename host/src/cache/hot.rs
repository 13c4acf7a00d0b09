//! Hot columns: decoded columns of cached results kept in memory between reads, bounded by
//! bytes (least recently used first out), so the second run that reads a cached column does
//! not decode Parquet again. Keyed by the identity of the part files (inode, size, mtime of
//! each: parts are immutable, and a refresh writes new ones), so a refresh is never served
//! stale data: its new generation is another key.

use arrow::array::ArrayRef;

/// A byte-bounded cache of decoded columns, shared by the results of one or more handles.
#[derive(Clone)]
pub struct HotColumns {
    cache: moka::sync::Cache<String, ArrayRef>,
}

impl std::fmt::Debug for HotColumns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotColumns")
            .field("entries", &self.cache.entry_count())
            .field("bytes", &self.cache.weighted_size())
            .finish()
    }
}

impl HotColumns {
    /// A cache holding at most `bytes` of column data.
    pub fn new(bytes: u64) -> HotColumns {
        HotColumns {
            cache: moka::sync::Cache::builder()
                .max_capacity(bytes)
                .weigher(|_, array: &ArrayRef| {
                    u32::try_from(array.get_array_memory_size()).unwrap_or(u32::MAX)
                })
                .build(),
        }
    }

    /// The column under `key`, if kept.
    pub(crate) fn get(&self, key: &str) -> Option<ArrayRef> {
        self.cache.get(key)
    }

    /// Keeps `column` under `key`.
    pub(crate) fn insert(&self, key: String, column: ArrayRef) {
        self.cache.insert(key, column);
    }

    /// Bytes kept now (after pending evictions run).
    pub fn bytes(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.weighted_size()
    }
}
