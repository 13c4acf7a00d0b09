//! The `rows` resource: a result fetched as an Arrow IPC stream, answered from here.
//!
//! The server writes a result's batches as the host reads them, so streaming them in order
//! (a batch split at `max-rows`, never joined to the next) gives the host's `next-batch`.

use std::cell::RefCell;

use arrow::array::{ArrayRef, RecordBatch, new_empty_array};
use arrow::buffer::Buffer;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamDecoder;

use super::columns;
use super::wit;

/// A result held by the adapter.
pub struct Rows {
    /// The stream as the server sent it (what `arrow-ipc` returns).
    ipc: Buffer,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    num_rows: u64,
    /// Where `next-batch` continues: the batch, and the row in it.
    cursor: RefCell<(usize, usize)>,
}

impl Rows {
    /// Decodes an Arrow IPC stream (without copying its buffers).
    pub fn new(ipc: Vec<u8>) -> Result<Rows, wit::Error> {
        let ipc = Buffer::from_vec(ipc);
        let bad = |e: arrow::error::ArrowError| {
            wit::Error::Other(format!("pgcache serve sent a bad Arrow IPC stream: {e}"))
        };
        let mut decoder = StreamDecoder::new();
        let mut rest = ipc.clone();
        let mut batches = Vec::new();
        while !rest.is_empty() {
            match decoder.decode(&mut rest).map_err(bad)? {
                Some(batch) => batches.push(batch),
                None if rest.is_empty() => break,
                None => {}
            }
        }
        decoder.finish().map_err(bad)?;
        let schema = decoder.schema().ok_or_else(|| {
            wit::Error::Other("pgcache serve sent an Arrow IPC stream without a schema".into())
        })?;
        let num_rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        Ok(Rows {
            ipc,
            schema,
            batches,
            num_rows,
            cursor: RefCell::new((0, 0)),
        })
    }

    /// Column `index` of every batch as one array.
    fn whole_column(&self, index: usize) -> Result<ArrayRef, wit::Error> {
        let parts: Vec<&dyn arrow::array::Array> = self
            .batches
            .iter()
            .map(|b| b.column(index).as_ref())
            .collect();
        match parts.as_slice() {
            [] => Ok(new_empty_array(self.schema.field(index).data_type())),
            [one] => Ok(one.slice(0, one.len())),
            many => arrow::compute::concat(many)
                .map_err(|e| wit::Error::Other(format!("joining the batches of a column: {e}"))),
        }
    }
}

impl wit::GuestRows for Rows {
    fn schema(&self) -> Vec<wit::Column> {
        columns::schema(&self.schema)
    }

    fn num_rows(&self) -> u64 {
        self.num_rows
    }

    fn column(&self, index: u32) -> Result<wit::ColumnValues, wit::Error> {
        let count = self.schema.fields().len();
        if index as usize >= count {
            return Err(columns::no_column(index, count));
        }
        Ok(columns::column(&self.whole_column(index as usize)?))
    }

    fn next_batch(&self, max_rows: u32) -> Result<Option<wit::Batch>, wit::Error> {
        if max_rows == 0 {
            return Err(columns::zero_max_rows());
        }
        let mut cursor = self.cursor.borrow_mut();
        loop {
            let (index, offset) = *cursor;
            let Some(batch) = self.batches.get(index) else {
                return Ok(None);
            };
            let left = batch.num_rows() - offset;
            if left == 0 {
                *cursor = (index + 1, 0);
                continue;
            }
            let take = left.min(max_rows as usize);
            *cursor = if take == left {
                (index + 1, 0)
            } else {
                (index, offset + take)
            };
            let part = batch.slice(offset, take);
            return Ok(Some(wit::Batch {
                num_rows: take as u32,
                columns: part.columns().iter().map(columns::column).collect(),
            }));
        }
    }

    fn arrow_ipc(&self) -> Result<Vec<u8>, wit::Error> {
        Ok(self.ipc.as_slice().to_vec())
    }
}
