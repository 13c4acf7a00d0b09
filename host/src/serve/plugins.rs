//! `/v1/plugins/{name}`: upload (checked, compiled once, stored by content), describe,
//! delete; and `/v1/plugins/{name}/runs`: run under the tenant's limits, the response
//! streaming stdout and stderr as NDJSON events as they come, ending with the exit code or
//! the limit that stopped the run.

use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::error::ApiError;
use super::metrics::{LimitLabel, RunLabel, tenant as tenant_label};
use super::state::{AppState, Tenant};
use crate::wasm::{Output, RunError, RunOptions};

type Shared = State<Arc<AppState>>;

/// A plugin name: letters, digits, `-`, `_`, `.`, at most 64.
fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "a plugin name is 1 to 64 letters, digits, '-', '_' or '.'",
        ))
    }
}

/// `PUT /v1/plugins/{name}`: the body is the component.
pub(crate) async fn put(
    State(state): Shared,
    Extension(tenant): Extension<Arc<Tenant>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_name(&name)?;
    // Compiling is the heaviest thing a tenant can ask for: it takes one of the tenant's slots.
    let _slot = tenant.gate.enter().await?;
    let compiling = state.clone();
    let (plugin_name, bytes) = (name.clone(), body.clone());
    let stored = tokio::task::spawn_blocking(move || compiling.compile(&plugin_name, &bytes))
        .await
        .map_err(ApiError::internal)??;
    let description = describe(&name, &stored);
    state
        .save(&tenant, &name, &body, stored)
        .await
        .map_err(ApiError::internal)?;
    Ok((StatusCode::CREATED, Json(description)).into_response())
}

fn describe(name: &str, p: &super::state::StoredPlugin) -> serde_json::Value {
    json!({ "name": name, "sha256": p.sha256, "bytes": p.bytes, "imports": p.imports })
}

/// `GET /v1/plugins/{name}`.
pub(crate) async fn get(
    Extension(tenant): Extension<Arc<Tenant>>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let plugins = tenant.plugins.read().await;
    let stored = plugins
        .get(&name)
        .ok_or_else(|| ApiError::not_found(format!("no plugin {name:?}")))?;
    Ok(Json(describe(&name, stored)))
}

/// `GET /v1/plugins`.
pub(crate) async fn list(
    Extension(tenant): Extension<Arc<Tenant>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let plugins = tenant.plugins.read().await;
    let all: Vec<_> = plugins.iter().map(|(n, p)| describe(n, p)).collect();
    Ok(Json(json!({ "plugins": all })))
}

/// `DELETE /v1/plugins/{name}`.
pub(crate) async fn delete(
    State(state): Shared,
    Extension(tenant): Extension<Arc<Tenant>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state
        .remove(&tenant, &name)
        .await
        .map_err(ApiError::internal)?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no plugin {name:?}")))
    }
}

/// The body of a run request.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RunRequest {
    /// Arguments after the program name.
    args: Vec<String>,
    /// Environment variables the plugin sees (nothing else is passed).
    env: std::collections::BTreeMap<String, String>,
    /// Standard input, as text.
    stdin: Option<String>,
}

/// `POST /v1/plugins/{name}/runs`.
pub(crate) async fn run(
    State(state): Shared,
    Extension(tenant): Extension<Arc<Tenant>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: RunRequest = if body.is_empty() {
        RunRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("the run request: {e}")))?
    };
    let plugin = tenant
        .plugins
        .read()
        .await
        .get(&name)
        .map(|p| p.plugin.clone())
        .ok_or_else(|| ApiError::not_found(format!("no plugin {name:?}")))?;
    let slot = match tenant.gate.enter().await {
        Ok(slot) => slot,
        Err(e) => {
            state
                .metrics
                .rejected
                .get_or_create(&tenant_label(&tenant.name))
                .inc();
            return Err(e);
        }
    };

    let mut options = RunOptions::for_tenant(&tenant.name, &tenant.settings);
    options.args = request.args;
    options.env = request.env.into_iter().collect();
    options.stdin = request.stdin.map(String::into_bytes);
    let (stdout, mut out_reader) = Output::stream();
    let (stderr, mut err_reader) = Output::stream();
    options.stdout = stdout;
    options.stderr = stderr;

    let (events, receiver) = mpsc::channel::<Bytes>(64);
    let mut stop = state.stop_runs.clone();
    let run_state = state.clone();
    tokio::spawn(async move {
        let _slot = slot;
        let started = Instant::now();
        let db = tenant.db.clone();
        let run = async { plugin.run(&db, &options).await };
        let forward = async {
            let (mut out_done, mut err_done) = (false, false);
            let (mut out_buf, mut err_buf) = (vec![0u8; 16 << 10], vec![0u8; 16 << 10]);
            let (mut out_rest, mut err_rest) = (Vec::new(), Vec::new());
            while !(out_done && err_done) {
                tokio::select! {
                    n = out_reader.read(&mut out_buf), if !out_done => match n {
                        Ok(0) | Err(_) => out_done = true,
                        Ok(n) => send_text(&events, "stdout", &mut out_rest, &out_buf[..n]).await,
                    },
                    n = err_reader.read(&mut err_buf), if !err_done => match n {
                        Ok(0) | Err(_) => err_done = true,
                        Ok(n) => send_text(&events, "stderr", &mut err_rest, &err_buf[..n]).await,
                    },
                }
            }
        };
        let stopped = async {
            while !*stop.borrow() {
                if stop.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        // A client that leaves (or stops reading) ends the run: nobody would see its output.
        let left = events.closed();
        let outcome = tokio::select! {
            (outcome, ()) = async { tokio::join!(run, forward) } => Some(outcome),
            () = stopped => None,
            () = left => {
                tracing::info!(tenant = %tenant.name, "the client left; run stopped");
                return;
            }
        };
        let (event, label) = final_event(outcome);
        let tenant_name = tenant.name.clone();
        let m = &run_state.metrics;
        m.runs
            .get_or_create(&RunLabel {
                tenant: tenant_name.clone(),
                outcome: label.clone(),
            })
            .inc();
        m.run_seconds
            .get_or_create(&tenant_label(&tenant_name))
            .observe(started.elapsed().as_secs_f64());
        if let Some(limit) = event.get("limit").and_then(|l| l.as_str()) {
            m.limits_hit
                .get_or_create(&LimitLabel {
                    tenant: tenant_name,
                    limit: limit.to_owned(),
                })
                .inc();
        }
        let _ = events.send(line(&event)).await;
    });

    let stream = futures_util::stream::unfold(receiver, |mut r| async move {
        r.recv()
            .await
            .map(|bytes| (Ok::<_, std::convert::Infallible>(bytes), r))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// The last event of a run, and its outcome label for the metrics.
fn final_event(
    outcome: Option<Result<crate::wasm::RunOutcome, RunError>>,
) -> (serde_json::Value, String) {
    match outcome {
        None => (
            json!({ "stopped": "the server shut down before the run finished", "exit_code": 134 }),
            "stopped".into(),
        ),
        Some(Ok(o)) => (
            json!({ "exit_code": o.exit_code }),
            if o.exit_code == 0 { "ok" } else { "failed" }.into(),
        ),
        Some(Err(RunError::Limit { limit, value, .. })) => (
            json!({ "stopped": format!("{limit} limit of {value} exceeded"), "limit": limit, "exit_code": 134 }),
            "limit".into(),
        ),
        Some(Err(e @ RunError::Trap { .. })) => (
            json!({ "stopped": e.to_string(), "exit_code": 134 }),
            "trap".into(),
        ),
        Some(Err(e)) => (ApiError::bad_request(e.to_string()).body(), "error".into()),
    }
}

/// One NDJSON line.
fn line(event: &serde_json::Value) -> Bytes {
    let mut text = event.to_string();
    text.push('\n');
    Bytes::from(text)
}

/// Sends `chunk` (after what was left of the last one) as text events; a UTF-8 sequence cut
/// at the chunk's end waits for the next chunk, invalid bytes go as base64.
async fn send_text(events: &mpsc::Sender<Bytes>, stream: &str, rest: &mut Vec<u8>, chunk: &[u8]) {
    rest.extend_from_slice(chunk);
    let (text, keep) = match std::str::from_utf8(rest) {
        Ok(t) => (Some(t.to_owned()), 0),
        Err(e) if e.error_len().is_none() => (
            Some(String::from_utf8_lossy(&rest[..e.valid_up_to()]).into_owned()),
            rest.len() - e.valid_up_to(),
        ),
        Err(_) => (None, 0),
    };
    let event = match text {
        Some(t) if !t.is_empty() => json!({ stream: t }),
        Some(_) => return,
        None => json!({ format!("{stream}_base64"): base64(rest) }),
    };
    let tail = rest.split_off(rest.len() - keep);
    *rest = tail;
    let _ = events.send(line(&event)).await;
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
