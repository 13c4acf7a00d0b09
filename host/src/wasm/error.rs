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
        HostError::Guest(crate::PluginError::from(&e).into())
    }
}

impl From<crate::PluginError> for wit::Error {
    fn from(e: crate::PluginError) -> wit::Error {
        use crate::PluginError as P;
        match e {
            P::Database(db) => wit::Error::Database(wit::DatabaseError {
                code: db.code,
                severity: db.severity,
                message: db.message,
                detail: db.detail,
                hint: db.hint,
            }),
            P::BadParameter(m) => wit::Error::BadParameter(m),
            P::Denied(m) => wit::Error::Denied(m),
            P::LimitExceeded(m) => wit::Error::LimitExceeded(m),
            P::Timeout(m) => wit::Error::Timeout(m),
            P::CacheIo(m) => wit::Error::CacheIo(m),
            P::Other(m) => wit::Error::Other(m),
        }
    }
}
