//! [`pgcache::Error`] as the exceptions of `pgcache.errors`: a hierarchy under
//! `pgcache.Error` with DB-API names (`ProgrammingError`, `DataError`, `OperationalError` ...)
//! whose instances keep the server's SQLSTATE, severity, detail, hint and position.

use pgcache::Error;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The exception class (in `pgcache.errors`) for an error the server reported with `code`,
/// by its SQLSTATE class, as psycopg2 chooses them.
fn class_of_sqlstate(code: &str) -> &'static str {
    match code.get(..2).unwrap_or("") {
        "0A" => "NotSupportedError",
        "20" | "21" | "3D" | "3F" | "42" | "44" => "ProgrammingError",
        "22" => "DataError",
        "23" => "IntegrityError",
        "24" | "25" | "2B" | "2D" | "2F" | "38" | "39" | "3B" | "F0" | "P0" | "XX" => {
            "InternalError"
        }
        "08" | "26" | "27" | "28" | "34" | "40" | "53" | "54" | "55" | "57" | "58" | "HV" => {
            "OperationalError"
        }
        _ => "DatabaseError",
    }
}

/// The exception class (in `pgcache.errors`) for `e`.
fn class_of(e: &Error) -> &'static str {
    match e {
        Error::Db(db) => class_of_sqlstate(&db.code),
        Error::Config { .. } => "ConfigError",
        Error::Connect { .. } | Error::PoolTimeout { .. } | Error::Connection { .. } => {
            "OperationalError"
        }
        Error::StatementTimeout { .. } => "StatementTimeout",
        Error::BadParameter { .. } | Error::ParameterCount { .. } => "ParameterError",
        Error::LimitExceeded { .. } => "LimitExceeded",
        Error::Denied(_) => "Denied",
        Error::InvalidQuery(_) => "ProgrammingError",
        Error::OrderColumnMissing { .. }
        | Error::OrderColumnType { .. }
        | Error::OrderColumnNulls { .. }
        | Error::IncrementalRefused { .. }
        | Error::LookbackUnit { .. } => "IncrementalError",
        Error::Decode { .. } => "DataError",
        Error::CacheIo { .. }
        | Error::CacheCorrupt { .. }
        | Error::LockTimeout { .. }
        | Error::Parquet { .. }
        | Error::Arrow { .. } => "CacheError",
        _ => "Error",
    }
}

/// The message of `e` with its causes, one line.
fn message(e: &Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `e` as an instance of its `pgcache.errors` class.
pub fn to_py(py: Python<'_>, e: Error) -> PyErr {
    match build(py, &e) {
        Ok(err) => err,
        // The Python side is missing or broken: still raise, with the message.
        Err(_) => PyRuntimeError::new_err(message(&e)),
    }
}

fn build(py: Python<'_>, e: &Error) -> PyResult<PyErr> {
    let class = py.import("pgcache.errors")?.getattr(class_of(e))?;
    let kwargs = PyDict::new(py);
    match e {
        Error::Db(db) => {
            kwargs.set_item("sqlstate", &db.code)?;
            kwargs.set_item("severity", &db.severity)?;
            kwargs.set_item("detail", db.detail.as_deref())?;
            kwargs.set_item("hint", db.hint.as_deref())?;
            kwargs.set_item("position", db.position)?;
            kwargs.set_item("query", &db.query)?;
        }
        Error::StatementTimeout { query, .. } => {
            kwargs.set_item("sqlstate", "57014")?;
            kwargs.set_item("query", query)?;
        }
        Error::Connection { query, .. } => kwargs.set_item("query", query)?,
        _ => {}
    }
    let instance = class.call((message(e),), Some(&kwargs))?;
    Ok(PyErr::from_value(instance))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstate_classes_follow_psycopg2() {
        assert_eq!(class_of_sqlstate("42P01"), "ProgrammingError");
        assert_eq!(class_of_sqlstate("23505"), "IntegrityError");
        assert_eq!(class_of_sqlstate("22P02"), "DataError");
        assert_eq!(class_of_sqlstate("57014"), "OperationalError");
        assert_eq!(class_of_sqlstate("XX000"), "InternalError");
        assert_eq!(class_of_sqlstate("P"), "DatabaseError");
    }
}
