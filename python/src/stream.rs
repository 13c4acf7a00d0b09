//! Record batches as an Arrow C stream in a PyCapsule (the Arrow PyCapsule interface): what
//! `__arrow_c_stream__` returns, read by pyarrow, polars, pandas and DuckDB without a copy.

use std::ffi::CStr;

use arrow::array::RecordBatchIterator;
use arrow::datatypes::SchemaRef;
use arrow::ffi_stream::FFI_ArrowArrayStream;
use arrow::record_batch::RecordBatch;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

/// The capsule name the interface requires.
const NAME: &CStr = c"arrow_array_stream";

/// A capsule holding a stream over `batches`. The consumer moves the stream out (leaving a
/// released one behind); a capsule dropped unread releases it itself.
pub fn capsule(
    py: Python<'_>,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> PyResult<Bound<'_, PyCapsule>> {
    let reader = RecordBatchIterator::new(batches.into_iter().map(Ok), schema);
    let stream = FFI_ArrowArrayStream::new(Box::new(reader));
    PyCapsule::new_with_value(py, stream, NAME)
}
