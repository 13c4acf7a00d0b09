//! The error a plugin gets: the cases of the WIT `error` variant of `pgcache:db/database`,
//! without wasmtime. The one mapping from [`Error`] to those cases lives here, shared by the
//! wasm host (`pgcache run`, `pgcache serve` runs) and the HTTP API, whose error JSON carries
//! the case so that the adapter component (`adapter/`) hands a plugin under the stock
//! `wasmtime` CLI the very error the host would.

use serde::{Deserialize, Serialize};

use crate::Error;

/// One case of the WIT `error` variant, with its payload. As JSON (adjacently tagged, the
/// WIT names): `{"case": "bad-parameter", "payload": "..."}`, `{"case": "database",
/// "payload": {"code", "severity", "message", "detail", "hint"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "case", content = "payload", rename_all = "kebab-case")]
pub enum PluginError {
    /// PostgreSQL reported an error.
    Database(PluginDbError),
    /// A parameter does not fit its placeholder, or there are too few or too many.
    BadParameter(String),
    /// The caller is not allowed to do this.
    Denied(String),
    /// A limit was reached (the message names it and its value).
    LimitExceeded(String),
    /// The statement (or a wait for the pool or a lock) ran longer than allowed.
    Timeout(String),
    /// The cache could not be read or written.
    CacheIo(String),
    /// Anything else.
    Other(String),
}

/// The WIT `database-error` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginDbError {
    /// SQLSTATE, e.g. `42P01`.
    pub code: String,
    /// `ERROR`, `FATAL`, ...
    pub severity: String,
    /// The server's primary message.
    pub message: String,
    /// The server's detail message.
    pub detail: Option<String>,
    /// The server's hint.
    pub hint: Option<String>,
}

/// The message of a call the caller's capabilities do not include, e.g. `execute`: the same
/// words from the wasm host and from the HTTP API.
pub fn denied_call(operation: &str) -> String {
    format!("this plugin may not call {operation}")
}

impl From<&Error> for PluginError {
    fn from(e: &Error) -> PluginError {
        use crate::Error as E;
        let text = one_line(e);
        match e {
            E::Db(db) => PluginError::Database(PluginDbError {
                code: db.code.clone(),
                severity: db.severity.clone(),
                message: db.message.clone(),
                detail: db.detail.clone(),
                hint: db.hint.clone(),
            }),
            E::BadParameter { .. } | E::ParameterCount { .. } => PluginError::BadParameter(text),
            E::LimitExceeded { .. } => PluginError::LimitExceeded(text),
            E::Denied(what) => PluginError::Denied(what.clone()),
            E::StatementTimeout { .. } | E::PoolTimeout { .. } | E::LockTimeout { .. } => {
                PluginError::Timeout(text)
            }
            E::CacheIo { .. } | E::CacheCorrupt { .. } | E::Parquet { .. } => {
                PluginError::CacheIo(text)
            }
            // Which server, port and role the host uses is not the caller's business.
            E::Connect { .. } | E::Connection { .. } | E::Config { .. } => {
                tracing::warn!(error = %text, "a call failed for want of the database");
                PluginError::Other("the database is not available".into())
            }
            _ => PluginError::Other(text),
        }
    }
}

/// An error and its causes on one line.
fn one_line(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_names_the_wit_case() {
        let e = PluginError::BadParameter("$1: no".into());
        let json = serde_json::to_value(&e).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"case": "bad-parameter", "payload": "$1: no"})
        );
        let back: PluginError = serde_json::from_value(json).expect("back");
        assert_eq!(back, e);
        let denied = PluginError::from(&Error::Denied(denied_call("execute")));
        assert_eq!(
            denied,
            PluginError::Denied("this plugin may not call execute".into())
        );
    }
}
