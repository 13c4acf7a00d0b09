//! Query results: an Arrow schema plus rows that stay where they are (in the cache's Parquet
//! parts, or in memory for uncached queries) until asked for, as batches or single columns.

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use crate::cache::entry::OpenPart;
use crate::error::{Error, Result};
use crate::pg::order::OrderValue;

pub use crate::cache::part::READ_BATCH_ROWS;

/// Where a result came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// Served from the cache without touching the database.
    Hit,
    /// Fetched from the database and stored.
    Stored,
    /// An incremental entry brought up to date (new rows fetched, the rest from the cache).
    Refreshed,
    /// Shared: another caller refreshed this entry while this one waited.
    Shared,
    /// Fetched from the database with the cache bypassed.
    Uncached,
}

/// What an incremental refresh did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshReport {
    /// Rows read from the database by this refresh.
    pub rows_from_database: u64,
    /// Rows kept from the cache.
    pub rows_from_cache: u64,
    /// The largest ordering value now stored.
    pub watermark: Option<OrderValue>,
    /// The value the refresh read from (`None`: from the start, which a refresh also does
    /// while nothing is final yet).
    pub read_from: Option<OrderValue>,
    /// Rows below this value are final and will not be read again.
    pub safe: Option<OrderValue>,
    /// The entry was built from scratch (first run, changed columns, damage).
    pub full: bool,
}

#[derive(Debug, Clone)]
enum Rows {
    Memory(Vec<RecordBatch>),
    Parts(Vec<OpenPart>),
}

/// The result of a query. Cheap to clone; reading it does not touch the database.
///
/// Rows from the cache are read lazily from the entry's Parquet parts, which stay readable
/// for as long as the result lives, even if a later refresh replaces the entry.
#[derive(Debug, Clone)]
pub struct ResultSet {
    schema: SchemaRef,
    rows: Rows,
    num_rows: u64,
    origin: Origin,
    entry: Option<String>,
    refresh: Option<RefreshReport>,
    /// Decoded columns kept between reads, when the handle that made this result has them.
    hot: Option<crate::cache::HotColumns>,
}

impl ResultSet {
    /// Serves `column_at` of this result from (and into) `hot`, for results read from cache
    /// files; results in memory are left as they are.
    pub(crate) fn with_hot(mut self, hot: &crate::cache::HotColumns) -> ResultSet {
        if matches!(self.rows, Rows::Parts(_)) {
            self.hot = Some(hot.clone());
        }
        self
    }

    /// The key of column `index` in the hot cache: the identities of every part file.
    fn hot_key(&self, index: usize) -> Option<String> {
        let Rows::Parts(parts) = &self.rows else {
            return None;
        };
        let mut key = format!("{index}");
        for p in parts {
            let id = p.identity();
            if id.is_empty() {
                return None;
            }
            key.push('/');
            key.push_str(&id);
        }
        Some(key)
    }
    pub(crate) fn from_memory(
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        origin: Origin,
    ) -> ResultSet {
        let num_rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        ResultSet {
            schema,
            rows: Rows::Memory(batches),
            num_rows,
            origin,
            entry: None,
            refresh: None,
            hot: None,
        }
    }

    /// Bytes of Arrow buffers this result holds in memory (0 for results read from cache
    /// files, which stay on disk until read).
    pub fn memory_size(&self) -> u64 {
        match &self.rows {
            Rows::Memory(batches) => batches
                .iter()
                .map(|b| b.get_array_memory_size() as u64)
                .sum(),
            Rows::Parts(_) => 0,
        }
    }

    pub(crate) fn from_parts(
        schema: SchemaRef,
        parts: Vec<OpenPart>,
        origin: Origin,
        entry: &str,
    ) -> ResultSet {
        let num_rows = parts.iter().map(|p| p.rows).sum();
        ResultSet {
            schema,
            rows: Rows::Parts(parts),
            num_rows,
            origin,
            entry: Some(entry.to_owned()),
            refresh: None,
            hot: None,
        }
    }

    pub(crate) fn with_refresh(mut self, report: RefreshReport) -> ResultSet {
        self.refresh = Some(report);
        self
    }

    /// The columns, also for a result with no rows. Each field carries its PostgreSQL type in
    /// its metadata under [`crate::pg::types::PG_TYPE_KEY`].
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Number of rows.
    pub fn num_rows(&self) -> u64 {
        self.num_rows
    }

    /// Where the rows came from.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// The cache entry holding the rows, if any (`cache_<12 hex>`).
    pub fn entry_name(&self) -> Option<&str> {
        self.entry.as_deref()
    }

    /// What the refresh did, for incremental queries.
    pub fn refresh_report(&self) -> Option<&RefreshReport> {
        self.refresh.as_ref()
    }

    /// All rows, as batches of at most [`READ_BATCH_ROWS`] rows. Reading is blocking I/O.
    pub fn batches(&self) -> Batches {
        Batches::new(self.clone(), None, READ_BATCH_ROWS)
    }

    /// Only the named columns, read without decoding the others.
    pub fn project(&self, columns: &[&str]) -> Result<Batches> {
        let indices = columns
            .iter()
            .map(|name| self.index_of(name))
            .collect::<Result<Vec<_>>>()?;
        Ok(Batches::new(self.clone(), Some(indices), READ_BATCH_ROWS))
    }

    /// The position of the (first) column called `name`.
    fn index_of(&self, name: &str) -> Result<usize> {
        self.schema.index_of(name).map_err(|_| Error::Decode {
            column: name.to_owned(),
            message: format!(
                "no such column; the result has: {}",
                self.schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }

    /// All rows in memory.
    ///
    /// Cached parts are decoded by several threads at once (as many as there are cores, at most
    /// four), each taking the next column not yet taken, largest first.
    pub fn to_batches(&self) -> Result<Vec<RecordBatch>> {
        let Rows::Parts(parts) = &self.rows else {
            return self.batches().collect();
        };
        let columns = self.schema.fields().len();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(columns)
            .min(4);
        if threads < 2 {
            return self.batches().collect();
        }
        let mut out = Vec::new();
        for part in parts {
            let order = part.columns_by_size();
            let next = std::sync::atomic::AtomicUsize::new(0);
            // Each thread decodes whole columns, one at a time, until none is left.
            let decode = || -> Result<Vec<(usize, Vec<RecordBatch>)>> {
                let mut mine = Vec::new();
                while let Some(&c) =
                    order.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                {
                    mine.push((
                        c,
                        part.reader(Some(&[c]), READ_BATCH_ROWS)?
                            .collect::<Result<_>>()?,
                    ));
                }
                Ok(mine)
            };
            let mut decoded: Vec<Vec<RecordBatch>> = vec![Vec::new(); columns];
            std::thread::scope(|scope| -> Result<()> {
                let handles: Vec<_> = (0..threads).map(|_| scope.spawn(decode)).collect();
                for handle in handles {
                    let mine = handle.join().unwrap_or_else(|_| {
                        Err(Error::Decode {
                            column: "(all)".into(),
                            message: "a decoding thread panicked".into(),
                        })
                    })?;
                    for (c, batches) in mine {
                        decoded[c] = batches;
                    }
                }
                Ok(())
            })?;
            for b in 0..decoded[0].len() {
                let rows = decoded[0][b].num_rows();
                let arrays: Vec<ArrayRef> = decoded
                    .iter()
                    .map(|batches| batches[b].column(0).clone())
                    .collect();
                let options =
                    arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows));
                out.push(
                    RecordBatch::try_new_with_options(self.schema.clone(), arrays, &options)
                        .map_err(Error::arrow("joining columns decoded in parallel"))?,
                );
            }
        }
        Ok(out)
    }

    /// Writes all rows to one Parquet file at `path` (ZSTD, statistics, intervals as structs,
    /// as in the cache), atomically: a temporary file renamed into place. Returns its size.
    pub fn write_parquet(&self, path: &std::path::Path) -> Result<u64> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        let format = crate::cache::part::PartFormat::new(&self.schema, "", "", None);
        let tmp = tempfile::Builder::new()
            .prefix(".pgcache-out")
            .tempfile_in(&dir)
            .map_err(Error::cache_io("creating a temporary file in", &dir))?;
        let file = tmp
            .reopen()
            .map_err(Error::cache_io("opening", tmp.path()))?;
        let mut writer =
            crate::cache::part::PartWriter::to_file(file, path.to_owned(), String::new(), &format)?;
        for batch in self.batches() {
            let batch = crate::cache::interval::to_disk(&batch?, &format.disk_schema)?;
            writer.write(&batch, None)?;
        }
        let bytes = writer.close()?.bytes;
        tmp.persist(path).map_err(|e| Error::CacheIo {
            action: "renaming into",
            path: path.to_path_buf(),
            source: e.error,
        })?;
        Ok(bytes)
    }

    /// Rows in slices of at most `max_rows`, for callers that stream at their own pace.
    pub fn cursor(&self) -> BatchCursor {
        BatchCursor {
            batches: self.batches(),
            pending: None,
        }
    }

    /// Writes all rows as an Arrow IPC stream (schema, then batches).
    pub fn write_ipc(&self, out: impl std::io::Write) -> Result<()> {
        let mut writer = arrow::ipc::writer::StreamWriter::try_new(out, &self.schema)
            .map_err(Error::arrow("starting an Arrow IPC stream"))?;
        for batch in self.batches() {
            writer
                .write(&batch?)
                .map_err(Error::arrow("writing an Arrow IPC stream"))?;
        }
        writer
            .finish()
            .map_err(Error::arrow("finishing an Arrow IPC stream"))
    }

    /// One column, all rows, as a single array.
    pub fn column(&self, name: &str) -> Result<ArrayRef> {
        self.column_at(self.index_of(name)?)
    }

    /// The column at position `index`, all rows, as a single array. Columns are told apart by
    /// position: a result may have two columns of one name (`SELECT a.id, b.id ...`).
    pub fn column_at(&self, index: usize) -> Result<ArrayRef> {
        let Some(field) = self.schema.fields().get(index) else {
            return Err(Error::Decode {
                column: index.to_string(),
                message: format!(
                    "no such column; the result has {} columns",
                    self.schema.fields().len()
                ),
            });
        };
        let hot = self
            .hot
            .as_ref()
            .and_then(|h| Some((h, self.hot_key(index)?)));
        if let Some((cache, key)) = &hot
            && let Some(column) = cache.get(key)
        {
            return Ok(column);
        }
        let column = self.decode_column(index, field)?;
        if let Some((cache, key)) = hot {
            cache.insert(key, column.clone());
        }
        Ok(column)
    }

    fn decode_column(&self, index: usize, field: &arrow::datatypes::Field) -> Result<ArrayRef> {
        let batches: Vec<RecordBatch> =
            Batches::new(self.clone(), Some(vec![index]), READ_BATCH_ROWS)
                .collect::<Result<_>>()?;
        let arrays: Vec<&dyn arrow::array::Array> =
            batches.iter().map(|b| b.column(0).as_ref()).collect();
        if arrays.is_empty() {
            return Ok(arrow::array::new_empty_array(field.data_type()));
        }
        arrow::compute::concat(&arrays).map_err(Error::arrow("joining a column"))
    }
}

/// Iterator over the batches of a [`ResultSet`]; it holds its own (cheap) copy of the result.
#[derive(Debug)]
pub struct Batches {
    result: ResultSet,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    batch_size: usize,
    next: usize,
    reader: Option<crate::cache::part::PartReader>,
}

impl Batches {
    fn new(result: ResultSet, projection: Option<Vec<usize>>, batch_size: usize) -> Batches {
        let schema = match &projection {
            Some(p) => Arc::new(result.schema.project(p).unwrap_or_else(|_| Schema::empty())),
            None => result.schema.clone(),
        };
        Batches {
            result,
            projection,
            schema,
            batch_size,
            next: 0,
            reader: None,
        }
    }

    /// The schema of the batches (the projection's, if any).
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Returns batches with the result's field metadata, whatever the part's own says.
    fn conform(&self, batch: RecordBatch) -> Result<RecordBatch> {
        if batch.schema_ref() == &self.schema {
            return Ok(batch);
        }
        RecordBatch::try_new_with_options(
            self.schema.clone(),
            batch.columns().to_vec(),
            &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
        )
        .map_err(Error::arrow("reading a cached part"))
    }
}

impl Iterator for Batches {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Result<RecordBatch>> {
        match &self.result.rows {
            Rows::Memory(batches) => {
                let batch = batches.get(self.next)?;
                self.next += 1;
                Some(match &self.projection {
                    Some(p) => batch
                        .project(p)
                        .map_err(Error::arrow("projecting a result")),
                    None => Ok(batch.clone()),
                })
            }
            Rows::Parts(parts) => loop {
                if let Some(reader) = &mut self.reader {
                    match reader.next() {
                        Some(Ok(batch)) if batch.num_rows() == 0 => continue,
                        Some(batch) => return Some(batch.and_then(|b| self.conform(b))),
                        None => self.reader = None,
                    }
                }
                let part = parts.get(self.next)?;
                self.next += 1;
                match part.reader(self.projection.as_deref(), self.batch_size) {
                    Ok(r) => self.reader = Some(r),
                    Err(e) => return Some(Err(e)),
                }
            },
        }
    }
}

/// Reads a result in slices of a size the reader chooses per call.
#[derive(Debug)]
pub struct BatchCursor {
    batches: Batches,
    pending: Option<RecordBatch>,
}

impl BatchCursor {
    /// The next at most `max_rows` rows (at least one row unless the result is exhausted).
    pub fn next_rows(&mut self, max_rows: usize) -> Result<Option<RecordBatch>> {
        let max_rows = max_rows.max(1);
        loop {
            let batch = match self.pending.take() {
                Some(b) => b,
                None => match self.batches.next() {
                    Some(b) => b?,
                    None => return Ok(None),
                },
            };
            if batch.num_rows() == 0 {
                continue;
            }
            if batch.num_rows() > max_rows {
                self.pending = Some(batch.slice(max_rows, batch.num_rows() - max_rows));
                return Ok(Some(batch.slice(0, max_rows)));
            }
            return Ok(Some(batch));
        }
    }
}
