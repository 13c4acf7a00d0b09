//! The Parquet cache: keys, the directory layout with atomic generations, manifests, part
//! files, the streaming writer, locks and statistics.

pub(crate) mod entry;
pub(crate) mod generation;
pub(crate) mod hot;
pub(crate) mod interval;
pub(crate) mod key;
pub(crate) mod lock;
pub(crate) mod manifest;
pub mod part;
pub(crate) mod pread;
pub(crate) mod stats;
pub(crate) mod store;
pub(crate) mod writer;

pub use hot::HotColumns;
pub use stats::{CacheStats, EntryStats};
