//! [`QueryResult`]: a [`pgcache::ResultSet`] for Python, handed to pyarrow, pandas and polars
//! through the Arrow C stream interface (`__arrow_c_stream__`), without copying the columns.

use std::sync::OnceLock;

use arrow::record_batch::RecordBatch;
use pgcache::{Origin, ResultSet};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};

use crate::errors::to_py;

/// The rows of one query. Reading a cached result decodes its Parquet parts once, with the
/// GIL released; the Arrow buffers are then shared with whatever reads them.
#[pyclass(frozen, module = "pgcache._pgcache")]
pub struct QueryResult {
    result: ResultSet,
    batches: OnceLock<Vec<RecordBatch>>,
}

impl QueryResult {
    /// Wraps `result`.
    pub fn new(result: ResultSet) -> QueryResult {
        QueryResult {
            result,
            batches: OnceLock::new(),
        }
    }

    /// The record batches, read on first use.
    fn batches(&self, py: Python<'_>) -> PyResult<Vec<RecordBatch>> {
        if let Some(b) = self.batches.get() {
            return Ok(b.clone());
        }
        let result = self.result.clone();
        let read = py
            .detach(move || result.to_batches())
            .map_err(|e| to_py(py, e))?;
        Ok(self.batches.get_or_init(|| read).clone())
    }
}

#[pymethods]
impl QueryResult {
    /// The Arrow PyCapsule stream interface: `pyarrow.table(result)`, `polars.DataFrame(result)`.
    /// `requested_schema` is ignored (allowed by the interface): the columns keep their types.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let batches = self.batches(py)?;
        crate::stream::capsule(py, self.result.schema(), batches)
    }

    /// The rows.
    #[getter]
    fn num_rows(&self) -> u64 {
        self.result.num_rows()
    }

    fn __len__(&self) -> usize {
        usize::try_from(self.result.num_rows()).unwrap_or(usize::MAX)
    }

    /// The column names, in order.
    #[getter]
    fn columns(&self) -> Vec<String> {
        self.result
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    /// Where the rows came from: `hit`, `stored`, `refreshed`, `shared` or `uncached`.
    #[getter]
    fn origin(&self) -> &'static str {
        match self.result.origin() {
            Origin::Hit => "hit",
            Origin::Stored => "stored",
            Origin::Refreshed => "refreshed",
            Origin::Shared => "shared",
            Origin::Uncached => "uncached",
            _ => "other",
        }
    }

    /// The cache entry (`cache_<hex>`), when the result is cached.
    #[getter]
    fn entry_name(&self) -> Option<String> {
        self.result.entry_name().map(str::to_owned)
    }

    /// What an incremental query's refresh did: `rows_from_database`, `rows_from_cache`,
    /// `watermark`, `read_from`, `safe` (as text) and `full`; `None` for simple queries.
    #[getter]
    fn refresh_report<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(r) = self.result.refresh_report() else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        d.set_item("rows_from_database", r.rows_from_database)?;
        d.set_item("rows_from_cache", r.rows_from_cache)?;
        d.set_item("watermark", r.watermark.as_ref().map(ToString::to_string))?;
        d.set_item("read_from", r.read_from.as_ref().map(ToString::to_string))?;
        d.set_item("safe", r.safe.as_ref().map(ToString::to_string))?;
        d.set_item("full", r.full)?;
        Ok(Some(d))
    }

    fn __repr__(&self) -> String {
        format!(
            "<pgcache.QueryResult {} rows x {} columns, {}>",
            self.result.num_rows(),
            self.result.schema().fields().len(),
            self.origin()
        )
    }
}
