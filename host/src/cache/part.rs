//! One Parquet part file: how it is written (ZSTD, page statistics, row groups bounded in
//! bytes, sorting column, pgcache metadata) and read back (projection, batches).

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchReader};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReader;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use super::interval;
use super::manifest::Part;
use crate::error::{Error, Result};
use crate::pg::order::OrderValue;

/// Upper bound of a row group's size in bytes.
const ROW_GROUP_BYTES: usize = 128 << 20;

/// Rows per batch when reading from the cache.
pub const READ_BATCH_ROWS: usize = 65_536;

/// Metadata keys pgcache writes into every part.
pub const META_KEY: &str = "pgcache.key";
/// The query, normalised.
pub const META_QUERY: &str = "pgcache.query";
/// The largest ordering value in the part (JSON), i.e. its watermark.
pub const META_WATERMARK: &str = "pgcache.watermark";

/// What every part of one entry shares.
#[derive(Debug, Clone)]
pub(crate) struct PartFormat {
    /// The schema as stored (intervals as structs).
    pub disk_schema: SchemaRef,
    pub properties: WriterProperties,
}

impl PartFormat {
    /// The format for an entry with logical schema `schema`, sorted by column `order` if any.
    pub fn new(schema: &SchemaRef, key: &str, query: &str, order: Option<usize>) -> PartFormat {
        let disk_schema = interval::disk_schema(schema);
        let sorting = order.map(|index| {
            vec![SortingColumn {
                column_idx: leaf_index(&disk_schema, index) as i32,
                descending: false,
                nulls_first: false,
            }]
        });
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
            .set_sorting_columns(sorting)
            .set_created_by(format!("pgcache {}", env!("CARGO_PKG_VERSION")))
            .set_key_value_metadata(Some(vec![
                KeyValue::new(META_KEY.to_owned(), key.to_owned()),
                KeyValue::new(META_QUERY.to_owned(), query.to_owned()),
            ]))
            .build();
        PartFormat {
            disk_schema,
            properties,
        }
    }
}

/// Index of the first Parquet leaf column of top-level field `index`.
fn leaf_index(schema: &SchemaRef, index: usize) -> usize {
    fn leaves(t: &DataType) -> usize {
        match t {
            DataType::Struct(fields) => fields.iter().map(|f| leaves(f.data_type())).sum(),
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                leaves(f.data_type())
            }
            DataType::Map(f, _) => leaves(f.data_type()),
            _ => 1,
        }
    }
    schema
        .fields()
        .iter()
        .take(index)
        .map(|f| leaves(f.data_type()))
        .sum()
}

/// Name of part number `seq`.
pub(crate) fn part_file_name(seq: u64) -> String {
    format!("part-{seq:08}.parquet")
}

/// A part being written.
pub(crate) struct PartWriter {
    path: PathBuf,
    file_name: String,
    writer: ArrowWriter<File>,
    rows: u64,
    min: Option<OrderValue>,
    max: Option<OrderValue>,
}

impl PartWriter {
    pub fn create(dir: &Path, seq: u64, format: &PartFormat) -> Result<PartWriter> {
        let file_name = part_file_name(seq);
        let path = dir.join(&file_name);
        let file = File::create(&path).map_err(Error::cache_io("creating", &path))?;
        PartWriter::to_file(file, path, file_name, format)
    }

    /// Writes into an open `file`; errors name `path`, the manifest calls it `file_name`.
    pub fn to_file(
        file: File,
        path: PathBuf,
        file_name: String,
        format: &PartFormat,
    ) -> Result<PartWriter> {
        let writer = ArrowWriter::try_new(
            file,
            format.disk_schema.clone(),
            Some(format.properties.clone()),
        )
        .map_err(Error::parquet(&path))?;
        Ok(PartWriter {
            path,
            file_name,
            writer,
            rows: 0,
            min: None,
            max: None,
        })
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes this part takes so far: what reached the file plus what is buffered for it.
    pub fn bytes(&self) -> u64 {
        (self.writer.bytes_written() + self.writer.in_progress_size()) as u64
    }

    /// Writes a batch already in disk form; `bounds` are its first and last ordering values.
    pub fn write(
        &mut self,
        batch: &RecordBatch,
        bounds: Option<(OrderValue, OrderValue)>,
    ) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.writer
            .write(batch)
            .map_err(Error::parquet(&self.path))?;
        self.rows += batch.num_rows() as u64;
        if let Some((first, last)) = bounds {
            self.min.get_or_insert(first);
            self.max = Some(last);
        }
        Ok(())
    }

    /// Finishes the file durably and describes it for the manifest.
    pub fn close(mut self) -> Result<Part> {
        if let Some(max) = &self.max {
            let json = serde_json::to_string(max).unwrap_or_default();
            self.writer
                .append_key_value_metadata(KeyValue::new(META_WATERMARK.to_owned(), json));
        }
        let file = self
            .writer
            .into_inner()
            .map_err(Error::parquet(&self.path))?;
        file.sync_all()
            .map_err(Error::cache_io("syncing", &self.path))?;
        let bytes = file
            .metadata()
            .map_err(Error::cache_io("measuring", &self.path))?
            .len();
        Ok(Part {
            file: self.file_name,
            rows: self.rows,
            bytes,
            min: self.min,
            max: self.max,
        })
    }
}

/// Batches of one part, with stored intervals converted back.
#[derive(Debug)]
pub(crate) struct PartReader {
    inner: ParquetRecordBatchReader,
    schema: SchemaRef,
    path: PathBuf,
}

impl PartReader {
    pub fn new(inner: ParquetRecordBatchReader, path: &Path) -> PartReader {
        let schema = interval::memory_schema(&inner.schema());
        PartReader {
            inner,
            schema,
            path: path.to_path_buf(),
        }
    }
}

impl Iterator for PartReader {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let batch = self.inner.next()?;
        Some(
            batch
                .map_err(|e| Error::Parquet {
                    path: self.path.clone(),
                    source: e.into(),
                })
                .and_then(|b| interval::to_memory(b, &self.schema)),
        )
    }
}
