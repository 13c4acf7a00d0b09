//! `pgcache._pgcache`: the native part of the `pgcache` Python package.
//!
//! The package is a thin layer over the `pgcache` crate: [`engine::Engine`] holds a
//! [`pgcache::Db`] (pool, cache directory, settings) and runs its calls on one shared tokio
//! runtime with the GIL released ([`runtime`]); [`result::QueryResult`] hands a result to
//! pyarrow, pandas and polars through the Arrow C stream interface ([`stream`]), without
//! copying it. Python values become [`pgcache::Value`]s in [`params`]; server and cache errors
//! become the exceptions of `pgcache.errors` in [`errors`].

#![deny(missing_docs)]

mod engine;
mod errors;
mod params;
mod result;
mod runtime;
mod stream;

/// The native module.
#[pyo3::pymodule]
mod _pgcache {
    #[pymodule_export]
    use super::engine::Engine;
    #[pymodule_export]
    use super::result::QueryResult;

    use pyo3::prelude::*;

    /// `sql` with psycopg2's `%s` placeholders (and `%%` for `%`) as `$1 ... $n`; a statement
    /// that uses `$n` is returned as it is. Scanned by PostgreSQL's own scanner: a `%s` inside
    /// a string literal or a comment stays.
    #[pyfunction]
    fn numbered_placeholders(py: Python<'_>, sql: &str) -> PyResult<String> {
        pgcache::sql::placeholders::numbered(sql)
            .map(|s| s.into_owned())
            .map_err(|e| super::errors::to_py(py, e))
    }

    /// The version of the engine.
    #[pymodule_export]
    const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");
}
