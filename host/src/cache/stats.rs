//! Cache statistics: the origin's four figures plus per-entry details.

use serde::Serialize;

use super::entry;
use super::manifest::{Manifest, Mode};
use super::store::Store;
use crate::error::Result;
use crate::pg::time;

/// What is in the cache directory.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CacheStats {
    /// Number of entries (each a Parquet dataset directory).
    pub total_files: usize,
    /// Bytes of all entries' current parts, in MiB.
    pub total_size_mb: f64,
    /// Rows of all entries.
    pub total_records: u64,
    /// The cache directory.
    pub cache_dir: String,
    /// One record per entry, by name.
    pub entries: Vec<EntryStats>,
}

/// One entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct EntryStats {
    /// `cache_<12 hex>`.
    pub name: String,
    /// The normalised query.
    pub query: String,
    /// `simple` or `incremental`.
    pub mode: String,
    /// The ordering column of an incremental entry.
    pub order_column: Option<String>,
    /// Rows stored.
    pub rows: u64,
    /// Bytes of the parts.
    pub bytes: u64,
    /// Parquet parts.
    pub parts: usize,
    /// Largest ordering value stored, as text.
    pub watermark: Option<String>,
    /// Rows below this value are final, as text.
    pub safe: Option<String>,
    /// When the entry was first stored (RFC 3339, UTC).
    pub created: String,
    /// When it was last stored or refreshed (RFC 3339, UTC).
    pub refreshed: String,
    /// Times it answered from the cache.
    pub hits: u64,
}

impl EntryStats {
    pub(crate) fn of(m: &Manifest, hits: u64) -> EntryStats {
        let (mode, order_column) = match &m.mode {
            Mode::Simple => ("simple".to_owned(), None),
            Mode::Incremental { column, .. } => ("incremental".to_owned(), Some(column.clone())),
        };
        EntryStats {
            name: m.name.clone(),
            query: m.query.clone(),
            mode,
            order_column,
            rows: m.rows(),
            bytes: m.bytes(),
            parts: m.parts.len(),
            watermark: m.watermark.as_ref().map(ToString::to_string),
            safe: m.safe.as_ref().map(ToString::to_string),
            created: time::rfc3339(m.created, true),
            refreshed: time::rfc3339(m.refreshed, true),
            hits,
        }
    }
}

/// Reads the statistics of every entry; damaged entries are listed with what can be read.
pub(crate) fn collect(store: &Store) -> Result<CacheStats> {
    let mut entries = Vec::new();
    for name in store.entries()? {
        let Some((_, dir)) = store.current(&name).ok().flatten() else {
            continue;
        };
        match Manifest::read(&dir, &name) {
            Ok(m) => entries.push(EntryStats::of(&m, entry::read_hits(store, &name))),
            Err(e) => {
                tracing::warn!(entry = %name, error = %e, "skipping a damaged entry in stats")
            }
        }
    }
    let bytes: u64 = entries.iter().map(|e| e.bytes).sum();
    Ok(CacheStats {
        total_files: entries.len(),
        total_size_mb: (bytes as f64 / (1024.0 * 1024.0) * 1000.0).round() / 1000.0,
        total_records: entries.iter().map(|e| e.rows).sum(),
        cache_dir: store.dir().display().to_string(),
        entries,
    })
}
