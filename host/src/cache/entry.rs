//! Finding an entry for a key (detecting prefix collisions and damage), and opening its parts.

use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};

use super::interval;
use super::key::CacheKey;
use super::manifest::Manifest;
use super::part::PartReader;
use super::pread::PreadFile;
use super::store::Store;
use crate::error::{Error, Result};

/// Where a key's entry is, or would go.
#[derive(Debug)]
pub(crate) enum Slot {
    /// The entry exists and belongs to the key.
    Found {
        name: String,
        generation: u64,
        dir: PathBuf,
        manifest: Box<Manifest>,
    },
    /// The entry exists but is damaged; it is to be rebuilt under this name.
    Damaged { name: String, generation: u64 },
    /// No entry: a new one takes this name.
    Free { name: String },
}

impl Slot {
    pub fn name(&self) -> &str {
        match self {
            Slot::Found { name, .. } | Slot::Damaged { name, .. } | Slot::Free { name } => name,
        }
    }

    /// The generation a rebuild replaces.
    pub fn generation(&self) -> Option<u64> {
        match self {
            Slot::Found { generation, .. } | Slot::Damaged { generation, .. } => Some(*generation),
            Slot::Free { .. } => None,
        }
    }
}

/// Finds the entry of `key`: the first of its names that is free or holds that very key.
/// A name held by a different key (a prefix collision) is logged and skipped, never served.
pub(crate) fn find(store: &Store, key: &CacheKey) -> Result<Slot> {
    for name in key.names() {
        let Some((generation, dir)) = store.current(&name)? else {
            return Ok(Slot::Free { name });
        };
        match Manifest::read(&dir, &name) {
            Ok(m) if m.key == key.hex() => {
                return Ok(Slot::Found {
                    name,
                    generation,
                    dir,
                    manifest: Box::new(m),
                });
            }
            Ok(m) => {
                tracing::warn!(entry = %name, ours = key.hex(), theirs = %m.key, "cache key prefix collision; trying a longer name");
            }
            Err(Error::CacheCorrupt { reason, .. }) => {
                tracing::warn!(entry = %name, %reason, "damaged cache entry; it will be rebuilt");
                return Ok(Slot::Damaged { name, generation });
            }
            Err(e) => return Err(e),
        }
    }
    Err(Error::CacheCorrupt {
        entry: key.primary_name(),
        reason: "every name of this key is taken by other keys".into(),
    })
}

/// An open part: the file handle (so the data stays readable even if a later generation
/// removes the name) and its parsed footer.
#[derive(Debug, Clone)]
pub(crate) struct OpenPart {
    file: PreadFile,
    path: PathBuf,
    metadata: ArrowReaderMetadata,
    pub rows: u64,
}

impl OpenPart {
    /// The identity of the part's file (see [`PreadFile::identity`]).
    pub fn identity(&self) -> String {
        self.file.identity()
    }

    /// Opens a part and reads its footer; a damaged footer is a corrupt entry.
    pub fn open(path: &Path, entry: &str) -> Result<OpenPart> {
        // A part is always a regular file pgcache wrote: a link in its place (planted by
        // whoever could write the cache directory) is not followed but reported.
        let file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
        }
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => Error::CacheCorrupt {
                entry: entry.to_owned(),
                reason: format!("{} is a symbolic link, not a part", path.display()),
            },
            _ => Error::cache_io("opening", path)(e),
        })?;
        let file = PreadFile::new(file).map_err(Error::cache_io("measuring", path))?;
        let metadata =
            ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(|e| {
                Error::CacheCorrupt {
                    entry: entry.to_owned(),
                    reason: format!("{}: {e}", path.display()),
                }
            })?;
        let rows = metadata.metadata().file_metadata().num_rows().max(0) as u64;
        Ok(OpenPart {
            file,
            path: path.to_path_buf(),
            metadata,
            rows,
        })
    }

    /// The schema pgcache returns for this part: the stored one with intervals restored and
    /// without the file-level key-value metadata (which describes the file, not the result).
    pub fn schema(&self) -> SchemaRef {
        let stored = interval::memory_schema(self.metadata.schema());
        std::sync::Arc::new(arrow::datatypes::Schema::new(stored.fields().clone()))
    }

    /// The top-level columns, largest (uncompressed bytes, all row groups) first: the order in
    /// which to hand them to parallel decoders so that no one thread ends with the heavy ones.
    pub fn columns_by_size(&self) -> Vec<usize> {
        let meta = self.metadata.metadata();
        let schema = meta.file_metadata().schema_descr();
        let mut sizes = vec![0i64; schema.root_schema().get_fields().len()];
        for row_group in meta.row_groups() {
            for (leaf, chunk) in row_group.columns().iter().enumerate() {
                sizes[schema.get_column_root_idx(leaf)] += chunk.uncompressed_size();
            }
        }
        let mut order: Vec<usize> = (0..sizes.len()).collect();
        order.sort_by_key(|&c| std::cmp::Reverse(sizes[c]));
        order
    }

    /// Reads the part, optionally only the top-level columns `projection`.
    pub fn reader(&self, projection: Option<&[usize]>, batch_size: usize) -> Result<PartReader> {
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(
            self.file.clone(),
            self.metadata.clone(),
        );
        let builder = match projection {
            Some(indices) => {
                let mask = ProjectionMask::roots(builder.parquet_schema(), indices.iter().copied());
                builder.with_projection(mask)
            }
            None => builder,
        };
        let inner = builder
            .with_batch_size(batch_size)
            .build()
            .map_err(Error::parquet(&self.path))?;
        Ok(PartReader::new(inner, &self.path))
    }
}

/// Opens every part of a manifest, checking each footer and row count.
pub(crate) fn open_parts(dir: &Path, manifest: &Manifest) -> Result<Vec<OpenPart>> {
    manifest
        .parts
        .iter()
        .map(|p| {
            let part = OpenPart::open(&dir.join(&p.file), &manifest.name)?;
            if part.rows != p.rows {
                return Err(Error::CacheCorrupt {
                    entry: manifest.name.clone(),
                    reason: format!(
                        "{} holds {} rows, the manifest says {}",
                        p.file, part.rows, p.rows
                    ),
                });
            }
            Ok(part)
        })
        .collect()
}

/// Counts a hit of entry `name`. Best effort: a lost update only makes the figure low.
pub(crate) fn record_hit(store: &Store, name: &str) {
    let path = store.hits_path(name);
    let hits = read_hits(store, name) + 1;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::write(&tmp, hits.to_string())
        .and_then(|()| std::fs::rename(&tmp, &path))
        .is_err()
    {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// Hits recorded for entry `name`.
pub(crate) fn read_hits(store: &Store, name: &str) -> u64 {
    std::fs::read_to_string(store.hits_path(name))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}
