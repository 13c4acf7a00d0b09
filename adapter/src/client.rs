//! The calls to `pgcache serve` over `wasi:http`, and its answers as WIT values and errors.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::{Value as Json, json};
use wasip2::http::outgoing_handler::{ErrorCode, handle};
use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme};
use wasip2::io::streams::StreamError;

/// How long connecting to the server may take, in nanoseconds.
const CONNECT_TIMEOUT_NS: u64 = 10_000_000_000;

use super::wit;

/// Where the server is and whose token to show, from the environment granted to the run.
pub struct Client {
    base: String,
    token: String,
}

/// The headers of an answer, copied out of `wasi:http`.
type Headers = Vec<(String, Vec<u8>)>;

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
        let (headers, bytes) = self.send(Method::Post, "/v1/query", Some(body))?;
        let refresh = match header(&headers, "pgcache-refresh") {
            Some(value) => Some(report(&value)?),
            None => None,
        };
        Ok(Fetched {
            ipc: bytes,
            refresh,
        })
    }

    /// `POST /v1/execute`.
    pub fn execute(&self, body: &Json) -> Result<u64, wit::Error> {
        let (_, bytes) = self.send(Method::Post, "/v1/execute", Some(body))?;
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
        let (_, bytes) = self.send(Method::Delete, &path, None)?;
        let n = number(&bytes, "removed")?;
        u32::try_from(n).map_err(|_| wit::Error::Other(format!("{n} entries removed")))
    }

    /// `GET /v1/stats`.
    pub fn stats(&self) -> Result<wit::Stats, wit::Error> {
        let (_, bytes) = self.send(Method::Get, "/v1/stats", None)?;
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
    ) -> Result<(Headers, Vec<u8>), wit::Error> {
        let (authority, https) = authority(&self.base)?;
        let mut headers = vec![
            ("authorization", format!("Bearer {}", self.token)),
            ("accept", "application/vnd.apache.arrow.stream".to_owned()),
        ];
        let body = body.map(|json| json.to_string().into_bytes());
        if body.is_some() {
            headers.push(("content-type", "application/json".to_owned()));
        }
        let entries: Vec<(String, Vec<u8>)> = headers
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.into_bytes()))
            .collect();
        let fields = Fields::from_list(&entries).map_err(|e| {
            wit::Error::Other(format!("PGCACHE_TOKEN is not a header value: {e:?}"))
        })?;
        let request = OutgoingRequest::new(fields);
        let bad_url =
            |()| wit::Error::Other(format!("PGCACHE_URL {:?} is not an http(s) URL", self.base));
        request.set_method(&method).map_err(bad_url)?;
        let scheme = if https { Scheme::Https } else { Scheme::Http };
        request.set_scheme(Some(&scheme)).map_err(bad_url)?;
        request.set_authority(Some(authority)).map_err(bad_url)?;
        request
            .set_path_with_query(Some(&format!("{}{path}", self.path_prefix())))
            .map_err(bad_url)?;
        let outgoing = request
            .body()
            .map_err(|()| self.broken("gave no request body"))?;
        let options = RequestOptions::new();
        // Queries may take long: only connecting is bounded.
        let _ = options.set_connect_timeout(Some(CONNECT_TIMEOUT_NS));
        let pending = match body {
            // A request without a body is complete before it goes: nothing to race.
            None => {
                OutgoingBody::finish(outgoing, None)
                    .map_err(|e| self.transport("refused the request", e))?;
                handle(request, Some(options)).map_err(|e| self.transport("did not answer", e))?
            }
            Some(bytes) => {
                let pending = handle(request, Some(options))
                    .map_err(|e| self.transport("did not answer", e))?;
                // The body goes while the answer is awaited; a server that answers early (a
                // bad token) may stop reading, which is no error of ours: its answer says why.
                if let Ok(stream) = outgoing.write() {
                    let _ = bytes
                        .chunks(4096)
                        .try_for_each(|chunk| stream.blocking_write_and_flush(chunk));
                }
                let _ = OutgoingBody::finish(outgoing, None);
                pending
            }
        };
        pending.subscribe().block();
        let response = match pending.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(e))) => return Err(self.transport("did not answer", e)),
            _ => return Err(self.broken("lost the answer")),
        };
        let status = response.status();
        // Copied: the fields are a child of the response, which goes before they would.
        let headers = response.headers().entries();
        let incoming = response
            .consume()
            .map_err(|()| self.broken("gave no answer body"))?;
        let stream = incoming
            .stream()
            .map_err(|()| self.broken("gave no answer stream"))?;
        let mut bytes = Vec::new();
        loop {
            match stream.blocking_read(1 << 20) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(wit::Error::Other(format!(
                        "pgcache serve at {} broke off its answer: {}",
                        self.base,
                        e.to_debug_string()
                    )));
                }
            }
        }
        drop(stream);
        drop(incoming);
        if (200..300).contains(&status) {
            Ok((headers, bytes))
        } else {
            Err(answer_error(status, &bytes))
        }
    }

    /// The path part of `PGCACHE_URL` (a server behind a prefix), without a trailing `/`.
    fn path_prefix(&self) -> &str {
        let rest = self.base.split_once("://").map_or("", |(_, r)| r);
        rest.find('/').map_or("", |i| &rest[i..])
    }

    /// A failure to reach the server or to read its answer.
    fn transport(&self, what: &str, e: ErrorCode) -> wit::Error {
        let message = format!("pgcache serve at {} {what}: {e:?}", self.base);
        match e {
            ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::ConnectionWriteTimeout
            | ErrorCode::HttpResponseTimeout => wit::Error::Timeout(message),
            _ => wit::Error::Other(message),
        }
    }

    /// The `wasi:http` implementation did something the interface does not foresee.
    fn broken(&self, what: &str) -> wit::Error {
        wit::Error::Other(format!("wasi:http {what} (pgcache serve at {})", self.base))
    }
}

/// `host[:port]` of an `http://` or `https://` URL, and whether it is https.
fn authority(url: &str) -> Result<(&str, bool), wit::Error> {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let https = match scheme {
        "http" => false,
        "https" => true,
        _ => {
            return Err(wit::Error::Other(format!(
                "PGCACHE_URL {url:?} is not an http:// or https:// URL"
            )));
        }
    };
    Ok((rest.split('/').next().unwrap_or(rest), https))
}

/// One header of an answer, if it is there.
fn header(headers: &Headers, name: &str) -> Option<Vec<u8>> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

/// The server's answer was not what the API promises.
fn garbled(e: serde_json::Error) -> wit::Error {
    wit::Error::Other(format!(
        "pgcache serve sent an answer that does not parse: {e}"
    ))
}

/// The error body of the API: the WIT case when the server gives one, else by status.
fn answer_error(status: u16, body: &[u8]) -> wit::Error {
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
        (401, _) => wit::Error::Denied(format!(
            "{message} (PGCACHE_TOKEN is not a token of this server)"
        )),
        (_, "denied") => wit::Error::Denied(message),
        (_, "busy") | (429, _) => wit::Error::LimitExceeded(message),
        (_, "timeout") | (504, _) => wit::Error::Timeout(message),
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
