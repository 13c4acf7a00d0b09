//! The WIT operations over HTTP, for clients that are not plugins, with the same
//! capabilities, limits and errors as a tenant's plugins: `POST /v1/query` (Arrow IPC stream,
//! CSV or NDJSON by `Accept`; an incremental query's refresh report in the `pgcache-refresh`
//! header), `POST /v1/execute`, `GET /v1/stats`, `DELETE /v1/cache`.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::metrics::tenant as tenant_label;
use super::params::{lookback, params, refresh_header};
use super::state::{AppState, Tenant};
use crate::config::Operation;
use crate::output::TextFormat;
use crate::{FetchLimits, IncrementalOptions, PluginError, QueryOptions, ResultSet, denied_call};

type Shared = State<Arc<AppState>>;

/// The media type of an Arrow IPC stream.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// The body of `POST /v1/query`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QueryRequest {
    /// One SELECT; `$1, $2 ...` take `params`.
    sql: String,
    /// Parameter values: JSON scalars, read by the server's input function of each
    /// placeholder's type (`"2024-01-05 10:00 Europe/Lisbon"` for a timestamptz), or typed
    /// values (`{"int64": 5}`, see [`super::params`]).
    #[serde(default)]
    params: Vec<serde_json::Value>,
    /// Refresh incrementally by this column.
    #[serde(default)]
    incremental: Option<String>,
    /// With `incremental`: re-read this window (`"2h"`, `1000`, `{"microseconds": n}`).
    #[serde(default)]
    lookback: Option<serde_json::Value>,
    /// Use the cache (default true).
    #[serde(default = "yes")]
    use_cache: bool,
    /// Refetch a cached result older than this many seconds.
    #[serde(default)]
    max_age_seconds: Option<u64>,
}

fn yes() -> bool {
    true
}

fn allowed(tenant: &Tenant, op: Operation, name: &str) -> Result<(), ApiError> {
    if tenant.settings.operations.contains(&op) {
        Ok(())
    } else {
        Err(ApiError::plugin(PluginError::Denied(denied_call(name))))
    }
}

fn limits(tenant: &Tenant) -> FetchLimits {
    FetchLimits {
        max_rows: Some(tenant.settings.limits.max_rows),
        max_bytes: Some(tenant.settings.limits.max_bytes),
    }
}

/// `POST /v1/query`.
pub(crate) async fn query(
    State(state): Shared,
    Extension(tenant): Extension<Arc<Tenant>>,
    headers: HeaderMap,
    Json(request): Json<QueryRequest>,
) -> Result<Response, ApiError> {
    // In the wasm host's order: capability, plugin role, parameters.
    match &request.incremental {
        Some(_) => allowed(&tenant, Operation::IncrementalQuery, "incremental-query")?,
        None => allowed(&tenant, Operation::Query, "query")?,
    }
    let _slot = enter(&state, &tenant).await?;
    tenant.db.check_plugin_role().await?;
    let values = params(request.params)?;
    let result = match &request.incremental {
        Some(column) => {
            let mut options = IncrementalOptions::default().limits(limits(&tenant));
            if !request.use_cache {
                options = options.no_cache();
            }
            if let Some(window) = &request.lookback {
                options = options.lookback(lookback(window)?);
            }
            tenant
                .db
                .incremental_query(&request.sql, &values, column, &options)
                .await?
        }
        None => {
            let mut options = QueryOptions::default().limits(limits(&tenant));
            if !request.use_cache {
                options = options.no_cache();
            }
            if let Some(secs) = request.max_age_seconds {
                options = options.max_age(std::time::Duration::from_secs(secs));
            }
            tenant.db.query(&request.sql, &values, &options).await?
        }
    };
    respond(&headers, result).await
}

/// Takes a slot of the tenant's gate, counting refusals.
async fn enter(state: &AppState, tenant: &Tenant) -> Result<super::gate::Slot, ApiError> {
    tenant.gate.enter().await.inspect_err(|_| {
        state
            .metrics
            .rejected
            .get_or_create(&tenant_label(&tenant.name))
            .inc();
    })
}

/// The result in the format `Accept` asks for: Arrow IPC stream (default), CSV, NDJSON.
async fn respond(headers: &HeaderMap, result: ResultSet) -> Result<Response, ApiError> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(ARROW_STREAM);
    let (content_type, format) = if accept.contains("text/csv") {
        ("text/csv", Some(TextFormat::Csv))
    } else if accept.contains("ndjson") || accept.contains("jsonl") {
        ("application/x-ndjson", Some(TextFormat::JsonLines))
    } else if accept.contains(ARROW_STREAM) || accept.contains("*/*") || accept.is_empty() {
        (ARROW_STREAM, None)
    } else {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_ACCEPTABLE,
            "not-acceptable",
            format!("results come as {ARROW_STREAM}, text/csv or application/x-ndjson"),
        ));
    };
    let rows = result.num_rows();
    let origin = format!("{:?}", result.origin()).to_lowercase();
    let refresh = result.refresh_report().map(|r| refresh_header(Some(r)));
    // Encoded while it goes out: memory stays bounded, whatever the result's size.
    let body = super::body::blocking_body(move |out| match format {
        Some(f) => crate::output::write(&result, f, out).map_err(|e| e.to_string()),
        None => result.write_ipc(out).map_err(|e| e.to_string()),
    });
    let mut response = (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::HeaderName::from_static("pgcache-rows"),
                rows.to_string(),
            ),
            (header::HeaderName::from_static("pgcache-origin"), origin),
        ],
        body,
    )
        .into_response();
    if let Some(value) = refresh.and_then(|r| header::HeaderValue::from_str(&r).ok()) {
        response
            .headers_mut()
            .insert(header::HeaderName::from_static("pgcache-refresh"), value);
    }
    Ok(response)
}

/// The body of `POST /v1/execute`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExecuteRequest {
    sql: String,
    #[serde(default)]
    params: Vec<serde_json::Value>,
}

/// `POST /v1/execute`: `{"rows": n}`.
pub(crate) async fn execute(
    State(state): Shared,
    Extension(tenant): Extension<Arc<Tenant>>,
    Json(request): Json<ExecuteRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    allowed(&tenant, Operation::Execute, "execute")?;
    let _slot = enter(&state, &tenant).await?;
    tenant.db.check_plugin_role().await?;
    let values = params(request.params)?;
    let rows = tenant.db.execute(&request.sql, &values).await?;
    Ok(Json(json!({ "rows": rows })))
}

/// `GET /v1/stats`: the tenant's cache, as `pgcache stats --json` prints it.
pub(crate) async fn stats(
    State(state): Shared,
    Extension(tenant): Extension<Arc<Tenant>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    allowed(&tenant, Operation::CacheStats, "cache-stats")?;
    let stats = tenant.db.cache_stats().await?;
    let mut value = serde_json::to_value(&stats).map_err(ApiError::internal)?;
    // The tenant's name stands for the directory: no host path leaves the server.
    value["cache_dir"] = json!(tenant.name);
    value["schedules"] = super::schedule::report(&state, &tenant.name);
    Ok(Json(value))
}

/// The query string of `DELETE /v1/cache`.
#[derive(Debug, Deserialize)]
pub(crate) struct ClearRequest {
    pattern: Option<String>,
}

/// `DELETE /v1/cache?pattern=`: `{"removed": n}`.
pub(crate) async fn clear(
    Extension(tenant): Extension<Arc<Tenant>>,
    Query(request): Query<ClearRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    allowed(&tenant, Operation::CacheClear, "cache-clear")?;
    let removed = tenant.db.clear_cache(request.pattern.as_deref()).await?;
    Ok(Json(json!({ "removed": removed })))
}
