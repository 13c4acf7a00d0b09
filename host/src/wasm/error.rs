//! Errors of host calls: what the guest gets as a WIT `error`, and what ends it as a trap.

use super::bindings::pgcache::db::database as wit;

/// The error of a host call. [`HostError::Guest`] reaches the guest as the WIT `error`
/// variant; [`HostError::Trap`] ends the guest (a host bug, or a guest misusing a handle).
#[derive(Debug)]
pub enum HostError {
    /// Returned to the guest.
    Guest(wit::Error),
    /// Ends the guest with this error.
    Trap(wasmtime::Error),
}

impl HostError {
    /// An operation the plugin's capabilities do not include.
    pub fn denied(what: impl Into<String>) -> HostError {
        HostError::Guest(wit::Error::Denied(what.into()))
    }

    /// A limit of the host reached.
    pub fn limit(what: impl Into<String>) -> HostError {
        HostError::Guest(wit::Error::LimitExceeded(what.into()))
    }
}

impl From<wasmtime::component::ResourceTableError> for HostError {
    fn from(e: wasmtime::component::ResourceTableError) -> HostError {
        match e {
            wasmtime::component::ResourceTableError::Full => {
                HostError::limit("resource table full: too many open results")
            }
            other => HostError::Trap(other.into()),
        }
    }
}

impl From<crate::Error> for HostError {
    fn from(e: crate::Error) -> HostError {
        use crate::Error as E;
        let text = one_line(&e);
        HostError::Guest(match e {
            E::Db(db) => wit::Error::Database(wit::DatabaseError {
                code: db.code.clone(),
                severity: db.severity.clone(),
                message: db.message.clone(),
                detail: db.detail.clone(),
                hint: db.hint.clone(),
            }),
            E::BadParameter { .. } | E::ParameterCount { .. } => wit::Error::BadParameter(text),
            E::LimitExceeded { .. } => wit::Error::LimitExceeded(text),
            E::Denied(what) => wit::Error::Denied(what),
            E::StatementTimeout { .. } | E::PoolTimeout { .. } | E::LockTimeout { .. } => {
                wit::Error::Timeout(text)
            }
            E::CacheIo { .. } | E::CacheCorrupt { .. } | E::Parquet { .. } => {
                wit::Error::CacheIo(text)
            }
            // Which server, port and role the host uses is not the guest's business.
            E::Connect { .. } | E::Connection { .. } | E::Config { .. } => {
                tracing::warn!(error = %text, "a plugin's call failed for want of the database");
                wit::Error::Other("the database is not available".into())
            }
            _ => wit::Error::Other(text),
        })
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
