//! The error type of the library.
//!
//! Every error names what it was about (the query, the column, the parameter, the file), so a
//! one-line message is enough to act on. Errors from PostgreSQL keep the server's SQLSTATE,
//! severity, message, detail and hint so callers (and WebAssembly guests) can branch on them.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in pgcache.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The settings are invalid: a file that does not parse, an unknown key, a value out of range.
    #[error("invalid configuration{}: {message}", origin.as_deref().map(|o| format!(" in {o}")).unwrap_or_default())]
    Config {
        /// Where the bad setting came from (a file with line, an environment variable, a flag).
        origin: Option<String>,
        /// What is wrong with it.
        message: String,
    },

    /// No connection to PostgreSQL could be made. Never contains the password.
    #[error("cannot connect to PostgreSQL at {host}:{port} as user {user:?}: {reason}")]
    Connect {
        /// Host (or socket directory) that was tried.
        host: String,
        /// Port that was tried.
        port: u16,
        /// User name that was used.
        user: String,
        /// The server's message or the network error.
        reason: String,
    },

    /// Waiting for a pooled connection took longer than the pool wait timeout.
    #[error("no database connection became free within {waited:?} (pool max size {max_size})")]
    PoolTimeout {
        /// How long the caller waited.
        waited: Duration,
        /// The pool's maximum size.
        max_size: usize,
    },

    /// The server rejected or failed a statement.
    #[error("{0}")]
    Db(Box<DbError>),

    /// The connection failed while a statement ran (server gone, connection killed, protocol
    /// error). The statement's effects, if any, are unknown; the cache was not touched.
    #[error("database connection failed while running `{query}`")]
    Connection {
        /// The statement that was running, shortened.
        query: String,
        /// The client library's error.
        #[source]
        source: tokio_postgres::Error,
    },

    /// A statement ran longer than the statement timeout.
    #[error("statement timed out after {timeout:?}: `{query}`")]
    StatementTimeout {
        /// The statement, shortened.
        query: String,
        /// The configured timeout.
        timeout: Duration,
    },

    /// A parameter value could not be converted to the type the server expects.
    #[error("parameter ${index} ({type_name}): {message}")]
    BadParameter {
        /// One-based parameter number, as in `$1`.
        index: usize,
        /// The type the server inferred for the parameter.
        type_name: String,
        /// What is wrong with the value.
        message: String,
    },

    /// The number of parameters does not match the placeholders of the statement.
    #[error("the statement takes {expected} parameter(s) but {given} were given")]
    ParameterCount {
        /// Placeholders in the statement.
        expected: usize,
        /// Values given.
        given: usize,
    },

    /// A limit set by the caller was reached (rows or bytes of a result).
    #[error("{what} limit of {limit} exceeded")]
    LimitExceeded {
        /// What is limited: `rows per result`, `bytes per result`.
        what: &'static str,
        /// The limit.
        limit: u64,
    },

    /// The handle's [`crate::Policy`] does not allow this (a table outside the allow-list, a
    /// statement `execute` may not run).
    #[error("denied: {0}")]
    Denied(String),

    /// The statement text is not acceptable (empty, several statements, ...).
    #[error("invalid statement: {0}")]
    InvalidQuery(String),

    /// The ordering column of an incremental query is not a column of its result.
    #[error("ordering column {column:?} is not in the query result; its columns are: {}", available.join(", "))]
    OrderColumnMissing {
        /// The requested ordering column.
        column: String,
        /// The columns the query returns.
        available: Vec<String>,
    },

    /// The ordering column has a type that cannot serve as a watermark.
    #[error(
        "ordering column {column:?} has type {type_name}, which cannot order an incremental query; use one of {supported}"
    )]
    OrderColumnType {
        /// The ordering column.
        column: String,
        /// Its PostgreSQL type.
        type_name: String,
        /// The types that can ([`crate::incremental::SUPPORTED_ORDER_TYPES`]).
        supported: &'static str,
    },

    /// The ordering column has NULL values, which have no place in the order.
    #[error(
        "ordering column {column:?} has {count} NULL value(s); filter them out (`WHERE {column} IS NOT NULL`) or order by another column"
    )]
    OrderColumnNulls {
        /// The ordering column.
        column: String,
        /// How many rows have NULL there.
        count: u64,
    },

    /// The incremental mode asked for cannot keep this query without losing rows (a cached
    /// sequence feeds the ordering column, the server is a standby, ...). Refused before
    /// anything is stored; the message names the cause and the mode that fits.
    #[error("incremental query ordered by {column:?} refused: {reason}")]
    IncrementalRefused {
        /// The ordering column.
        column: String,
        /// Why, and what to use instead.
        reason: String,
    },

    /// A lookback given in a unit the ordering column does not have (a plain amount for a time
    /// column, a duration for a number, any lookback in xmin mode or for text).
    #[error(
        "lookback {lookback} does not fit ordering column {column:?} of type {type_name}: {expected}"
    )]
    LookbackUnit {
        /// The ordering column.
        column: String,
        /// Its PostgreSQL type.
        type_name: String,
        /// The lookback given.
        lookback: String,
        /// What the column takes instead.
        expected: String,
    },

    /// A value sent by the server cannot be represented in the column's Arrow type.
    #[error("column {column:?}: {message}")]
    Decode {
        /// The column.
        column: String,
        /// What could not be represented.
        message: String,
    },

    /// Reading or writing the cache directory failed.
    #[error("cache I/O error: {action} {}", path.display())]
    CacheIo {
        /// What was being done ("writing", "renaming", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// A cache entry is damaged (truncated part, bad manifest). It is never served; callers
    /// that can refetch rebuild it.
    #[error("cache entry {entry} is corrupt: {reason}")]
    CacheCorrupt {
        /// The entry name.
        entry: String,
        /// What is wrong.
        reason: String,
    },

    /// Another refresh of the same entry held its lock for longer than the lock timeout.
    #[error("cache entry {entry} stayed locked by another refresh for {waited:?}")]
    LockTimeout {
        /// The entry name.
        entry: String,
        /// How long we waited.
        waited: Duration,
    },

    /// Encoding or decoding Parquet failed.
    #[error("parquet error in {}", path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The parquet crate's error.
        #[source]
        source: parquet::errors::ParquetError,
    },

    /// An Arrow operation failed.
    #[error("arrow error while {context}")]
    Arrow {
        /// What was being done.
        context: &'static str,
        /// The arrow crate's error.
        #[source]
        source: arrow::error::ArrowError,
    },
}

impl Error {
    /// The SQLSTATE code when the server reported the error, e.g. `"42P01"`.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Error::Db(db) => Some(&db.code),
            _ => None,
        }
    }

    /// The message for callers that must not learn where the database is (plugins, API
    /// clients): connection failures say only that the database is not available.
    pub fn public_message(&self) -> String {
        match self {
            Error::Connect { .. } | Error::PoolTimeout { .. } | Error::Connection { .. } => {
                "the database is not available".to_owned()
            }
            other => other.to_string(),
        }
    }

    /// The server's error report, when the server reported the error.
    pub fn db_error(&self) -> Option<&DbError> {
        match self {
            Error::Db(db) => Some(db),
            _ => None,
        }
    }

    pub(crate) fn cache_io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::CacheIo {
            action,
            path,
            source,
        }
    }

    pub(crate) fn arrow(context: &'static str) -> impl FnOnce(arrow::error::ArrowError) -> Error {
        move |source| Error::Arrow { context, source }
    }

    pub(crate) fn parquet(
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(parquet::errors::ParquetError) -> Error {
        let path = path.into();
        move |source| Error::Parquet { path, source }
    }

    /// Converts a client error raised while running `query`.
    pub(crate) fn from_pg(
        query: &str,
        err: tokio_postgres::Error,
        statement_timeout: Option<Duration>,
    ) -> Error {
        let query = shorten(query);
        match err.as_db_error() {
            Some(db)
                if db.code() == &tokio_postgres::error::SqlState::QUERY_CANCELED
                    && statement_timeout.is_some()
                    && db.message().contains("statement timeout") =>
            {
                Error::StatementTimeout {
                    query,
                    timeout: statement_timeout.unwrap_or_default(),
                }
            }
            Some(db) => Error::Db(Box::new(DbError {
                query,
                code: db.code().code().to_owned(),
                severity: db.severity().to_owned(),
                message: db.message().to_owned(),
                detail: db.detail().map(str::to_owned),
                hint: db.hint().map(str::to_owned),
                position: match db.position() {
                    Some(tokio_postgres::error::ErrorPosition::Original(p)) => Some(*p),
                    _ => None,
                },
            })),
            None => Error::Connection { query, source: err },
        }
    }
}

/// An error reported by the PostgreSQL server, with the statement it was about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DbError {
    /// The statement, shortened to a readable length.
    pub query: String,
    /// The SQLSTATE code, e.g. `42P01` for an undefined table.
    pub code: String,
    /// `ERROR`, `FATAL`, ...
    pub severity: String,
    /// The primary message.
    pub message: String,
    /// The optional detail message.
    pub detail: Option<String>,
    /// The optional hint.
    pub hint: Option<String>,
    /// One-based character position in the statement where the error was found.
    pub position: Option<u32>,
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} (SQLSTATE {}) in `{}`",
            self.severity, self.message, self.code, self.query
        )?;
        if let Some(detail) = &self.detail {
            write!(f, "; detail: {detail}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; hint: {hint}")?;
        }
        Ok(())
    }
}

/// Shortens a statement for messages: whitespace folded, at most 200 characters.
pub(crate) fn shorten(query: &str) -> String {
    const MAX: usize = 200;
    let folded = query.split_whitespace().collect::<Vec<_>>().join(" ");
    match folded.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &folded[..cut]),
        None => folded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorten_folds_whitespace_and_cuts_long_text() {
        assert_eq!(shorten("SELECT  1\n FROM\tx"), "SELECT 1 FROM x");
        let long = "x".repeat(500);
        let short = shorten(&long);
        assert_eq!(short.len(), 203);
        assert!(short.ends_with("..."));
    }

    #[test]
    fn db_error_is_one_line_with_code_and_detail() {
        let e = DbError {
            query: "SELECT".into(),
            code: "42P01".into(),
            severity: "ERROR".into(),
            message: "relation \"x\" does not exist".into(),
            detail: Some("d".into()),
            hint: None,
            position: Some(15),
        };
        assert_eq!(
            e.to_string(),
            "ERROR: relation \"x\" does not exist (SQLSTATE 42P01) in `SELECT`; detail: d"
        );
    }
}
