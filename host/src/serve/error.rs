//! Errors of the HTTP API as JSON: `{"error": {"kind", "message", "sqlstate", "detail",
//! "hint", "wit"}}` with the status a client can act on. Client errors keep their message;
//! server errors say "internal error" and the cause goes to the log. `wit`, when present, is
//! the WIT `error` case a plugin of the tenant would get for the same call
//! (`{"case": "database", "payload": {...}}`, see [`PluginError`]): what the adapter component
//! hands its plugin.

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::{Error, PluginError};

/// An error answered to an API client.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    db: Option<Box<crate::DbError>>,
    retry_after: Option<u64>,
    plugin: Option<Box<PluginError>>,
}

impl ApiError {
    /// An error with a status, a kind (`not-found`, `bad-request` ...) and a message.
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.into(),
            db: None,
            retry_after: None,
            plugin: None,
        }
    }

    /// The error a plugin would get, with the status and kind that fit it.
    pub fn plugin(error: PluginError) -> ApiError {
        use StatusCode as S;
        let (status, kind, message) = match &error {
            PluginError::Database(db) => (S::UNPROCESSABLE_ENTITY, "database", db.message.clone()),
            PluginError::BadParameter(m) => (S::BAD_REQUEST, "bad-request", m.clone()),
            PluginError::Denied(m) => (S::FORBIDDEN, "denied", m.clone()),
            PluginError::LimitExceeded(m) => (S::UNPROCESSABLE_ENTITY, "limit-exceeded", m.clone()),
            PluginError::Timeout(m) => (S::GATEWAY_TIMEOUT, "timeout", m.clone()),
            PluginError::CacheIo(m) => (S::INTERNAL_SERVER_ERROR, "cache-io", m.clone()),
            PluginError::Other(m) => (S::BAD_REQUEST, "bad-request", m.clone()),
        };
        let mut e = ApiError::new(status, kind, message);
        e.plugin = Some(Box::new(error));
        e
    }

    /// The WIT error case of this error, when it has one.
    #[cfg(test)]
    pub fn plugin_error(&self) -> Option<&PluginError> {
        self.plugin.as_deref()
    }

    /// 401: no token, or one that is nobody's.
    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
        )
    }

    /// 404 for `what`: also what another tenant's plugin or entry looks like.
    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", what)
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad-request", message)
    }

    /// 429 with `Retry-After`.
    pub fn busy(message: impl Into<String>, retry_after: u64) -> ApiError {
        let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "busy", message);
        e.retry_after = Some(retry_after);
        e
    }

    /// 503 while the server drains.
    pub fn shutting_down() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting-down",
            "the server is shutting down",
        )
    }

    /// 500: the cause is logged, the client learns nothing about the host.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(%cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    /// The JSON body of this error (also the last event of a streamed run).
    pub fn body(&self) -> serde_json::Value {
        let mut error = json!({ "kind": self.kind, "message": self.message });
        if let Some(db) = &self.db {
            error["sqlstate"] = json!(db.code);
            error["severity"] = json!(db.severity);
            error["detail"] = json!(db.detail);
            error["hint"] = json!(db.hint);
        }
        if let Some(plugin) = &self.plugin {
            error["wit"] = json!(plugin);
        }
        json!({ "error": error })
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let mut api = ApiError::classify(&e);
        // Also for server errors: a plugin of the tenant gets this case and text from the host.
        api.plugin = Some(Box::new(PluginError::from(&e)));
        api
    }
}

impl ApiError {
    /// The status, kind and message an API client gets for `e`.
    fn classify(e: &Error) -> ApiError {
        use StatusCode as S;
        let (status, kind) = match e {
            Error::Db(_) => (S::UNPROCESSABLE_ENTITY, "database"),
            Error::Denied(_) => (S::FORBIDDEN, "denied"),
            Error::LimitExceeded { .. } => (S::UNPROCESSABLE_ENTITY, "limit-exceeded"),
            Error::StatementTimeout { .. } => (S::GATEWAY_TIMEOUT, "timeout"),
            Error::InvalidQuery(_)
            | Error::BadParameter { .. }
            | Error::ParameterCount { .. }
            | Error::OrderColumnMissing { .. }
            | Error::OrderColumnType { .. }
            | Error::OrderColumnNulls { .. }
            | Error::IncrementalRefused { .. }
            | Error::LookbackUnit { .. } => (S::BAD_REQUEST, "bad-request"),
            Error::LockTimeout { .. } => (S::SERVICE_UNAVAILABLE, "busy"),
            Error::Connect { .. } | Error::PoolTimeout { .. } | Error::Connection { .. } => {
                // Never the host, port or user: "the database is not available", as plugins see it.
                tracing::warn!(error = %e, "database unavailable");
                return ApiError::new(
                    S::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database is not available",
                );
            }
            _ => return ApiError::internal(e),
        };
        let mut api = ApiError::new(status, kind, e.to_string());
        api.db = e.db_error().cloned().map(Box::new);
        api
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
        }
        response
    }
}
