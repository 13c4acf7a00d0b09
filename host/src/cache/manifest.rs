//! The manifest of an entry generation: what it is (key, query, mode), what it holds (parts
//! with row counts and ordering bounds), and the incremental state (watermark, safe point,
//! checkpoints awaiting late commits).

use std::fs;
use std::io::Write;
use std::path::Path;

use arrow::datatypes::Schema;
use serde::{Deserialize, Serialize};

use super::store::MANIFEST;
use crate::error::{Error, Result};
use crate::pg::order::{Lookback, OrderValue};
use crate::pg::types::PG_TYPE_KEY;

/// Version of the manifest format; other versions are treated as corrupt and rebuilt.
pub(crate) const FORMAT: u32 = 1;

/// How an entry is kept up to date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(crate) enum Mode {
    /// Stored once, served until cleared or too old.
    Simple,
    /// Refreshed by fetching rows past the watermark of `column`.
    Incremental {
        column: String,
        #[serde(default)]
        lookback: Option<Lookback>,
        /// Refreshed by the rows' transaction ids (xmin mode), `column` being the key.
        #[serde(default)]
        xmin: bool,
    },
}

/// One immutable Parquet part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Part {
    /// File name inside the generation directory.
    pub file: String,
    pub rows: u64,
    pub bytes: u64,
    /// Smallest and largest ordering value (incremental entries with rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<OrderValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<OrderValue>,
}

/// A refresh whose maximum becomes final once the transactions in flight at its snapshot end
/// (see `crate::incremental::inflight` for the rule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    /// The largest ordering value that refresh read.
    pub max: OrderValue,
    /// Transactions that were running (virtual transaction ids, `xid:N` for prepared ones).
    pub in_flight: Vec<String>,
    /// The top-level xids (64-bit) the running ones had, by virtual transaction id. Absent in
    /// manifests written before it was recorded.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub xids: std::collections::BTreeMap<String, u64>,
    /// The next xid when the transactions were listed. `None` in manifests written before it
    /// was recorded: such checkpoints are held by any prepared transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xmax: Option<u64>,
    /// When the refresh ran, Unix microseconds.
    pub at: i64,
}

/// A column of the stored schema, for detecting schema changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ColumnMeta {
    pub name: String,
    pub arrow_type: String,
    pub pg_type: String,
}

impl ColumnMeta {
    /// The columns of `schema` as stored in a manifest.
    pub fn of(schema: &Schema) -> Vec<ColumnMeta> {
        schema
            .fields()
            .iter()
            .map(|f| ColumnMeta {
                name: f.name().clone(),
                arrow_type: f.data_type().to_string(),
                pg_type: f.metadata().get(PG_TYPE_KEY).cloned().unwrap_or_default(),
            })
            .collect()
    }
}

/// The manifest of one generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub format: u32,
    /// The full sha256 key, hex.
    pub key: String,
    pub name: String,
    /// The normalised query text.
    pub query: String,
    /// The parameters, as text for people.
    pub params: Vec<String>,
    pub mode: Mode,
    pub columns: Vec<ColumnMeta>,
    pub parts: Vec<Part>,
    pub generation: u64,
    /// Next part number to use.
    pub next_part: u64,
    /// Unix microseconds.
    pub created: i64,
    pub refreshed: i64,
    /// Largest ordering value stored.
    #[serde(default)]
    pub watermark: Option<OrderValue>,
    /// Rows below this value are final; `None` means nothing is final yet.
    #[serde(default)]
    pub safe: Option<OrderValue>,
    #[serde(default)]
    pub pending: Vec<Checkpoint>,
    /// xmin mode: the snapshot of the last refresh (`pg_current_snapshot()` text).
    #[serde(default)]
    pub snapshot: Option<String>,
}

/// What identifies an entry, for [`Manifest::new`].
pub(crate) struct Identity<'a> {
    pub key: &'a str,
    pub name: &'a str,
    pub query: &'a str,
    pub params: &'a [crate::Value],
    pub mode: Mode,
}

impl Manifest {
    /// A manifest for generation `generation` of an entry first stored at `created`, holding
    /// `parts`; the incremental state starts empty.
    pub fn new(
        id: Identity<'_>,
        columns: Vec<ColumnMeta>,
        parts: Vec<Part>,
        generation: u64,
        next_part: u64,
        created: Option<i64>,
    ) -> Manifest {
        let now = crate::pg::time::now_micros();
        Manifest {
            format: FORMAT,
            key: id.key.to_owned(),
            name: id.name.to_owned(),
            query: id.query.to_owned(),
            params: id.params.iter().map(|p| format!("{p:?}")).collect(),
            mode: id.mode,
            columns,
            parts,
            generation,
            next_part,
            created: created.unwrap_or(now),
            refreshed: now,
            watermark: None,
            safe: None,
            pending: Vec::new(),
            snapshot: None,
        }
    }

    pub fn rows(&self) -> u64 {
        self.parts.iter().map(|p| p.rows).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.parts.iter().map(|p| p.bytes).sum()
    }

    /// Reads the manifest of a generation directory, checking what can be checked without
    /// opening the parts: the format, the name, and that every part file exists with the
    /// recorded size.
    pub fn read(dir: &Path, name: &str) -> Result<Manifest> {
        let corrupt = |reason: String| Error::CacheCorrupt {
            entry: name.to_owned(),
            reason,
        };
        let path = dir.join(MANIFEST);
        let text =
            fs::read(&path).map_err(|e| corrupt(format!("cannot read {}: {e}", path.display())))?;
        let manifest: Manifest = serde_json::from_slice(&text)
            .map_err(|e| corrupt(format!("bad manifest {}: {e}", path.display())))?;
        if manifest.format != FORMAT {
            return Err(corrupt(format!(
                "manifest format {} (expected {FORMAT})",
                manifest.format
            )));
        }
        if manifest.name != name {
            return Err(corrupt(format!("manifest names entry {}", manifest.name)));
        }
        for part in &manifest.parts {
            let path = dir.join(&part.file);
            match fs::metadata(&path) {
                Ok(m) if m.len() == part.bytes => {}
                Ok(m) => {
                    return Err(corrupt(format!(
                        "{} has {} bytes, expected {}",
                        part.file,
                        m.len(),
                        part.bytes
                    )));
                }
                Err(e) => return Err(corrupt(format!("{}: {e}", part.file))),
            }
        }
        Ok(manifest)
    }

    /// Writes the manifest into a (not yet published) generation directory, durably.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join(MANIFEST);
        let json = serde_json::to_vec_pretty(self).map_err(|e| Error::CacheIo {
            action: "encoding",
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        let mut file = fs::File::create(&path).map_err(Error::cache_io("creating", &path))?;
        file.write_all(&json)
            .and_then(|()| file.sync_all())
            .map_err(Error::cache_io("writing", &path))
    }
}
