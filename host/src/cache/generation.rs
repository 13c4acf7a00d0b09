//! Building a new generation of an entry: a directory that is removed again unless it is
//! committed, and the Parquet rewrites (splits, compactions) done inside it.

use std::path::{Path, PathBuf};

use arrow::record_batch::RecordBatch;

use super::entry::OpenPart;
use super::manifest::Part;
use super::part::PartFormat;
use super::store::Store;
use super::writer::{self, OrderSpec, WritePlan, Written};
use crate::error::{Error, Result};
use crate::pg::order::{OrderColumn, OrderValue};

/// A generation being built; dropped uncommitted, its directory is removed.
#[derive(Debug)]
pub(crate) struct NewGeneration {
    store: Store,
    name: String,
    pub generation: u64,
    pub dir: PathBuf,
    committed: bool,
}

impl NewGeneration {
    /// Starts generation `generation` of `name` (one past the current one). Leftovers are
    /// removed first: directories of refreshes killed before they committed, or after they
    /// published but before they cleaned up, so an entry never holds more than its current
    /// generation, the previous one (which readers may still be opening) and this one.
    /// Callers hold the entry's lock, so no other refresh is building one.
    pub fn create(store: &Store, name: &str, generation: u64) -> Result<NewGeneration> {
        store.remove_generations(name, |g| g >= generation || g + 2 < generation);
        let dir = store.create_gen(name, generation)?;
        Ok(NewGeneration {
            store: store.clone(),
            name: name.to_owned(),
            generation,
            dir,
            committed: false,
        })
    }

    /// Shares an existing part with this generation (a hard link: no data is copied).
    pub fn link(&self, from_dir: &Path, part: &Part) -> Result<()> {
        link_part(from_dir, &self.dir, part)
    }

    /// Publishes the generation; older ones but `keep_previous` are removed.
    pub fn commit(mut self, keep_previous: Option<u64>) -> Result<()> {
        self.store
            .commit(&self.name, self.generation, keep_previous)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for NewGeneration {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Hard-links `part` from one generation directory into another.
pub(crate) fn link_part(from_dir: &Path, to_dir: &Path, part: &Part) -> Result<()> {
    let from = from_dir.join(&part.file);
    std::fs::hard_link(&from, to_dir.join(&part.file)).map_err(Error::cache_io("linking", &from))
}

/// Rewrites `sources` (parts in ascending order), keeping only rows below `below` if given,
/// into new parts of this generation starting at part number `seq`.
pub(crate) fn rewrite(
    dir: &Path,
    seq: u64,
    format: &PartFormat,
    order: &OrderSpec,
    sources: &[(PathBuf, String)],
    below: Option<&OrderValue>,
    part_rows: u64,
) -> Result<Written> {
    let plan = WritePlan {
        order: Some(order.clone()),
        ..WritePlan::new(dir.to_path_buf(), seq, format.clone(), part_rows)
    };
    // One part open at a time, streamed batch by batch.
    let iter = sources.iter().flat_map(|(path, entry)| {
        let reader =
            OpenPart::open(path, entry).and_then(|p| p.reader(None, super::part::READ_BATCH_ROWS));
        let items: Box<dyn Iterator<Item = Result<RecordBatch>>> = match reader {
            Ok(r) => Box::new(r),
            Err(e) => Box::new(std::iter::once(Err(e))),
        };
        items
    });
    let iter = iter.map(|batch| {
        let batch = batch?;
        Ok(match below {
            Some(v) => {
                let col = OrderColumn::new(batch.column(order.index).as_ref(), order.numeric_text);
                let keep = col.lower_bound(0, batch.num_rows(), v);
                batch.slice(0, keep)
            }
            None => batch,
        })
    });
    writer::write_all(plan, iter)
}
