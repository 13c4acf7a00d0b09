//! The calls to `pgcache serve` over `wasi:http`, and its answers as WIT values and errors.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::{Value as Json, json};
use wstd::http::{Body, Client as Http, Method, Request, StatusCode};

use super::wit;

/// Where the server is and whose token to show, from the environment granted to the run.
pub struct Client {
    base: String,
    token: String,
}

/// A result as the server sent it.
pub struct Fetched {
    /// The Arrow IPC stream.
    pub ipc: Vec<u8>,
    /// The refresh report of an incremental query (`pgcache-refresh`).
    pub refresh: Option<wit::RefreshReport>,
}

fn env(name: &str, example: &str) -> Result<String, wit::Error> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err(wit::Error::Other(format!(
            "{name} is not set: the pgcache adapter needs it in the plugin's environment \
             (wasmtime run -S http --env {name}={example} ...)"
        ))),
    }
}

impl Client {
    /// The server and token from `PGCACHE_URL` and `PGCACHE_TOKEN`.
    pub fn from_env() -> Result<Client, wit::Error> {
        let base = env("PGCACHE_URL", "http://127.0.0.1:8080")?;
        let token = env("PGCACHE_TOKEN", "<a tenant's token>")?;
        Ok(Client {
            base: base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// `POST /v1/query`.
    pub fn query(&self, body: &Json) -> Result<Fetched, wit::Error> {
        let (headers, bytes) = self.send(Method::POST, "/v1/query", Some(body))?;
        let refresh = match headers.get("pgcache-refresh") {
            Some(value) => Some(report(value.as_bytes())?),
            None => None,
        };
        Ok(Fetched {
            ipc: bytes,
            refresh,
        })
    }

    /// `POST /v1/execute`.
    pub fn execute(&self, body: &Json) -> Result<u64, wit::Error> {
        let (_, bytes) = self.send(Method::POST, "/v1/execute", Some(body))?;
        number(&bytes, "rows")
    }

    /// `DELETE /v1/cache?pattern=`.
    pub fn clear(&self, pattern: Option<&str>) -> Result<u32, wit::Error> {
        let path = match pattern {
            Some(p) => format!(
                "/v1/cache?pattern={}",
                utf8_percent_encode(p, NON_ALPHANUMERIC)
            ),
            None => "/v1/cache".to_owned(),
        };
        let (_, bytes) = self.send(Method::DELETE, &path, None)?;
        let n = number(&bytes, "removed")?;
        u32::try_from(n).map_err(|_| wit::Error::Other(format!("{n} entries removed")))
    }

    /// `GET /v1/stats`.
    pub fn stats(&self) -> Result<wit::Stats, wit::Error> {
        let (_, bytes) = self.send(Method::GET, "/v1/stats", None)?;
        let s: Stats = serde_json::from_slice(&bytes).map_err(garbled)?;
        Ok(wit::Stats {
            total_files: s.total_files,
            total_size_mb: s.total_size_mb,
            total_records: s.total_records,
            cache_dir: s.cache_dir,
            entries: s
                .entries
                .into_iter()
                .map(|e| wit::EntryStats {
                    name: e.name,
                    query: e.query,
                    mode: e.mode,
                    order_column: e.order_column,
                    rows: e.rows,
                    bytes: e.bytes,
                    watermark: e.watermark,
                    created: e.created,
                    refreshed: e.refreshed,
                    hits: e.hits,
                })
                .collect(),
        })
    }

    /// One request; a non-2xx answer becomes the WIT error the server names.
    fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Json>,
    ) -> Result<(wstd::http::HeaderMap, Vec<u8>), wit::Error> {
        let url = format!("{}{path}", self.base);
        let request = Request::builder()
            .method(method)
            .uri(&url)
            .header("authorization", format!("Bearer {}", self.token))
            .header("accept", "application/vnd.apache.arrow.stream");
        let request = match body {
            Some(json) => request
                .header("content-type", "application/json")
                .body(Body::from(json.to_string())),
            None => request.body(Body::empty()),
        }
        .map_err(|e| wit::Error::Other(format!("PGCACHE_URL {url:?}: {e}")))?;
        wstd::runtime::block_on(async move {
            let response = Http::new()
                .send(request)
                .await
                .map_err(|e| transport(&self.base, e))?;
            let (parts, mut body) = response.into_parts();
            let bytes = body
                .contents()
                .await
                .map_err(|e| transport(&self.base, e))?
                .to_vec();
            if parts.status.is_success() {
                Ok((parts.headers, bytes))
            } else {
                Err(answer_error(parts.status, &bytes))
            }
        })
    }
}

/// A failure to reach the server or to read its answer.
fn transport(base: &str, e: wstd::http::Error) -> wit::Error {
    use wstd::http::ErrorCode as C;
    let message = format!("pgcache serve at {base} did not answer: {e:#}");
    match e.downcast_ref::<C>() {
        Some(
            C::ConnectionTimeout
            | C::ConnectionReadTimeout
            | C::ConnectionWriteTimeout
            | C::HttpResponseTimeout,
        ) => wit::Error::Timeout(message),
        _ => wit::Error::Other(message),
    }
}

/// The server's answer was not what the API promises.
fn garbled(e: serde_json::Error) -> wit::Error {
    wit::Error::Other(format!(
        "pgcache serve sent an answer that does not parse: {e}"
    ))
}

/// The error body of the API: the WIT case when the server gives one, else by status.
fn answer_error(status: StatusCode, body: &[u8]) -> wit::Error {
    #[derive(Deserialize)]
    struct Answer {
        error: ApiError,
    }
    #[derive(Deserialize)]
    struct ApiError {
        #[serde(default)]
        kind: String,
        #[serde(default)]
        message: String,
        wit: Option<PluginError>,
    }
    let Ok(Answer { error }) = serde_json::from_slice::<Answer>(body) else {
        let text = String::from_utf8_lossy(body);
        return wit::Error::Other(format!("pgcache serve answered {status}: {}", text.trim()));
    };
    if let Some(e) = error.wit {
        return e.into();
    }
    let message = format!("pgcache serve: {}", error.message);
    match (status, error.kind.as_str()) {
        (StatusCode::UNAUTHORIZED, _) => wit::Error::Denied(format!(
            "{message} (PGCACHE_TOKEN is not a token of this server)"
        )),
        (_, "denied") => wit::Error::Denied(message),
        (_, "busy") | (StatusCode::TOO_MANY_REQUESTS, _) => wit::Error::LimitExceeded(message),
        (_, "timeout") | (StatusCode::GATEWAY_TIMEOUT, _) => wit::Error::Timeout(message),
        _ => wit::Error::Other(message),
    }
}

/// The WIT error case as the server writes it (`pgcache::PluginError`).
#[derive(Deserialize)]
#[serde(tag = "case", content = "payload", rename_all = "kebab-case")]
enum PluginError {
    Database(DbError),
    BadParameter(String),
    Denied(String),
    LimitExceeded(String),
    Timeout(String),
    CacheIo(String),
    Other(String),
}

#[derive(Deserialize)]
struct DbError {
    code: String,
    severity: String,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
}

impl From<PluginError> for wit::Error {
    fn from(e: PluginError) -> wit::Error {
        match e {
            PluginError::Database(d) => wit::Error::Database(wit::DatabaseError {
                code: d.code,
                severity: d.severity,
                message: d.message,
                detail: d.detail,
                hint: d.hint,
            }),
            PluginError::BadParameter(m) => wit::Error::BadParameter(m),
            PluginError::Denied(m) => wit::Error::Denied(m),
            PluginError::LimitExceeded(m) => wit::Error::LimitExceeded(m),
            PluginError::Timeout(m) => wit::Error::Timeout(m),
            PluginError::CacheIo(m) => wit::Error::CacheIo(m),
            PluginError::Other(m) => wit::Error::Other(m),
        }
    }
}

/// `{"<key>": n}`.
fn number(body: &[u8], key: &str) -> Result<u64, wit::Error> {
    let json: Json = serde_json::from_slice(body).map_err(garbled)?;
    json.get(key)
        .and_then(Json::as_u64)
        .ok_or_else(|| wit::Error::Other(format!("pgcache serve sent no {key:?}: {json}")))
}

/// The `pgcache-refresh` header.
fn report(header: &[u8]) -> Result<wit::RefreshReport, wit::Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "kebab-case")]
    struct Report {
        rows_from_database: u64,
        rows_from_cache: u64,
        watermark: Option<String>,
        full: bool,
    }
    let r: Report = serde_json::from_slice(header).map_err(garbled)?;
    Ok(wit::RefreshReport {
        rows_from_database: r.rows_from_database,
        rows_from_cache: r.rows_from_cache,
        watermark: r.watermark,
        full: r.full,
    })
}

/// `GET /v1/stats`, as `pgcache stats --json` prints it.
#[derive(Deserialize)]
struct Stats {
    total_files: u32,
    total_size_mb: f64,
    total_records: u64,
    cache_dir: String,
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    name: String,
    query: String,
    mode: String,
    order_column: Option<String>,
    rows: u64,
    bytes: u64,
    watermark: Option<String>,
    created: String,
    refreshed: String,
    hits: u64,
}

/// Parameters as typed JSON values (`{"int64": 5}`), so the server converts them as the host
/// converts WIT values.
pub fn params(values: &[wit::Value]) -> Vec<Json> {
    fn float(f: f64) -> Json {
        if f.is_nan() {
            json!("NaN")
        } else if f.is_infinite() {
            json!(if f > 0.0 { "Infinity" } else { "-Infinity" })
        } else {
            json!(f)
        }
    }
    values
        .iter()
        .map(|v| match v {
            wit::Value::Null => json!({ "null": null }),
            wit::Value::Boolean(b) => json!({ "boolean": b }),
            wit::Value::Int16(n) => json!({ "int16": n }),
            wit::Value::Int32(n) => json!({ "int32": n }),
            wit::Value::Int64(n) => json!({ "int64": n }),
            wit::Value::Float32(f) => json!({ "float32": float(f64::from(*f)) }),
            wit::Value::Float64(f) => json!({ "float64": float(*f) }),
            wit::Value::Numeric(s) => json!({ "numeric": s }),
            wit::Value::Text(s) => json!({ "text": s }),
            wit::Value::Bytea(b) => json!({ "bytea": BASE64.encode(b) }),
            wit::Value::Date(d) => json!({ "date": d }),
            wit::Value::Time(t) => json!({ "time": t }),
            wit::Value::Timestamp(t) => json!({ "timestamp": t }),
            wit::Value::Timestamptz(t) => json!({ "timestamptz": t }),
            wit::Value::Interval(i) => json!({ "interval": {
                "months": i.months, "days": i.days, "microseconds": i.microseconds
            }}),
            wit::Value::Uuid(b) => json!({ "uuid": BASE64.encode(b) }),
            wit::Value::Json(s) => json!({ "json": s }),
            wit::Value::Other(o) => json!({ "other": {
                "type-name": o.type_name, "bytes": BASE64.encode(&o.bytes)
            }}),
        })
        .collect()
}
