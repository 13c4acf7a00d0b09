//! The options of an incremental query.

use std::sync::Arc;

use crate::pg::fetch::FetchLimits;
use crate::pg::order::Lookback;
use crate::progress::Progress;

/// Options of [`crate::Db::incremental_query`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IncrementalOptions {
    /// Use the cache (default). When false, fetch everything, ordered, and store nothing.
    pub use_cache: bool,
    /// Re-read this window below the stored maximum on every refresh, for rows that arrive
    /// late by design (devices uploading buffered positions).
    pub lookback: Option<Lookback>,
    /// Counters to update while rows arrive.
    pub progress: Option<Arc<Progress>>,
    /// Most rows (of the whole result) and bytes (of the rows fetched) allowed.
    pub limits: FetchLimits,
    /// xmin mode: the ordering column is the table's key, and refreshes read the rows inserted
    /// *or updated* since the last one, by transaction id. The query must be over one table
    /// and select its `xmin` column (`SELECT xmin, * FROM t`); `xmin` is not in the result.
    pub xmin: bool,
}

impl Default for IncrementalOptions {
    fn default() -> Self {
        IncrementalOptions {
            use_cache: true,
            lookback: None,
            progress: None,
            limits: FetchLimits::default(),
            xmin: false,
        }
    }
}

impl IncrementalOptions {
    /// Bypass the cache.
    pub fn no_cache(mut self) -> Self {
        self.use_cache = false;
        self
    }

    /// Caps the rows of the result and the bytes fetched.
    pub fn limits(mut self, limits: FetchLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Switch to xmin mode (see [`IncrementalOptions::xmin`]).
    pub fn xmin(mut self) -> Self {
        self.xmin = true;
        self
    }

    /// Re-read a window below the maximum on every refresh.
    pub fn lookback(mut self, lookback: Lookback) -> Self {
        self.lookback = Some(lookback);
        self
    }

    /// Report rows and bytes to `progress` while fetching.
    pub fn progress(mut self, progress: Arc<Progress>) -> Self {
        self.progress = Some(progress);
        self
    }
}
