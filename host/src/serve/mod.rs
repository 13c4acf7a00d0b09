//! `pgcache serve`: one long-running host for many tenants' plugins and queries.
//!
//! One process holds one wasmtime engine (compiled components kept in memory), one pool per
//! tenant, the cache, and the metrics. Tenants are those of `pgcache.toml`; a bearer token
//! selects one ([`auth`]); each works through an admission gate of its own ([`gate`]), so one
//! tenant's flood is answered 429 without slowing another. Routes: [`plugins`] (upload, run
//! with streamed output), [`data`] (query, execute, stats, clear), `/metrics`, `/healthz`,
//! `/readyz`. SIGTERM or SIGINT: stop accepting, let runs finish for `drain`, then stop them
//! with a clear cause; the cache only ever publishes whole generations.

pub mod auth;
mod body;
mod data;
mod error;
mod gate;
mod imports;
mod listen;
mod metrics;
mod params;
mod plugins;
mod schedule;
mod state;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use tokio::sync::watch;

use crate::config::Settings;
use crate::{Error, Result};
use state::AppState;

pub use data::ARROW_STREAM;
pub use tls::TlsFiles;

/// Largest component `PUT /v1/plugins/{name}` takes.
pub const MAX_COMPONENT_BYTES: usize = 256 << 20;

/// How `pgcache serve` listens and stops.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeOptions {
    /// Address to listen on (default `127.0.0.1:8080`; port 0 picks a free one).
    pub listen: SocketAddr,
    /// How long runs in flight may go on after a shutdown signal before they are stopped.
    pub drain: Duration,
    /// Serve HTTPS with this certificate and key instead of plain HTTP.
    pub tls: Option<TlsFiles>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            drain: Duration::from_secs(30),
            tls: None,
        }
    }
}

impl ServeOptions {
    /// Options listening on `listen`.
    pub fn listen(mut self, listen: SocketAddr) -> Self {
        self.listen = listen;
        self
    }

    /// Options draining for `drain`.
    pub fn drain(mut self, drain: Duration) -> Self {
        self.drain = drain;
        self
    }

    /// Options serving HTTPS with `files`.
    pub fn tls(mut self, files: TlsFiles) -> Self {
        self.tls = Some(files);
        self
    }
}

/// The API's routes over `state`. Every `/v1` route checks the bearer token in a layer, before
/// any body is read: a request without a valid token costs the server nothing.
fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/v1/plugins", get(plugins::list))
        .route(
            "/v1/plugins/{name}",
            put(plugins::put)
                .get(plugins::get)
                .delete(plugins::delete)
                .layer(DefaultBodyLimit::max(MAX_COMPONENT_BYTES)),
        )
        .route("/v1/plugins/{name}/runs", post(plugins::run))
        .route("/v1/query", post(data::query))
        .route("/v1/execute", post(data::execute))
        .route("/v1/stats", get(data::stats))
        .route("/v1/cache", axum::routing::delete(data::clear))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .merge(api)
        .with_state(state)
}

/// Finds the caller's tenant by its token (401 otherwise, 503 while draining) and hands it to
/// the handler as an extension.
async fn authenticate(
    State(state): State<Arc<AppState>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match state.tenant(request.headers()) {
        Ok(tenant) => {
            request.extensions_mut().insert(tenant);
            next.run(request).await
        }
        Err(e) => e.into_response(),
    }
}

async fn ready(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    if state.draining.load(Ordering::Acquire) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    } else {
        (StatusCode::OK, "ready\n")
    }
}

/// `GET /metrics`: Prometheus text; with `[serve] metrics_tokens_sha256`, only for a bearer
/// of one of those tokens (404 for anyone else, as if there were no such route).
async fn metrics(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> axum::response::Response {
    if !state.metrics_tokens.is_empty() && state.metrics_tokens.tenant(&headers).is_none() {
        return error::ApiError::not_found("no such route").into_response();
    }
    let m = &state.metrics;
    for tenant in state.tenants.values() {
        let label = metrics::tenant(&tenant.name);
        let counts = tenant.db.counters();
        let pool = tenant.db.pool_status();
        let set = |g: &prometheus_client::metrics::gauge::Gauge, v: u64| {
            g.set(i64::try_from(v).unwrap_or(i64::MAX));
        };
        set(&m.cache_hits.get_or_create(&label), counts.hits);
        set(&m.cache_misses.get_or_create(&label), counts.misses);
        set(&m.rows_fetched.get_or_create(&label), counts.rows_fetched);
        set(&m.pool_in_use.get_or_create(&label), pool.in_use as u64);
        set(&m.pool_waiting.get_or_create(&label), pool.waiting as u64);
        let concurrent = tenant.settings.limits.max_concurrent;
        set(
            &m.running.get_or_create(&label),
            tenant.gate.running(concurrent) as u64,
        );
        set(
            &m.queued.get_or_create(&label),
            tenant.gate.waiting() as u64,
        );
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
        .into_response()
}

/// Serves until SIGTERM or SIGINT, then drains. Bad settings (tenants, TLS files) fail before
/// the socket opens. Prints `pgcache serve: listening on http://ADDR` (or `https://`) on
/// stdout once it accepts.
pub async fn serve(settings: Settings, options: ServeOptions) -> Result<()> {
    let tls = options
        .tls
        .as_ref()
        .map(TlsFiles::server_config)
        .transpose()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let state = Arc::new(AppState::new(&settings, stop_rx.clone()).await?);
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|e| Error::Config {
            origin: Some("--listen".into()),
            message: format!("cannot listen on {}: {e}", options.listen),
        })?;
    let address = listener.local_addr().map_err(|e| Error::Config {
        origin: Some("--listen".into()),
        message: e.to_string(),
    })?;
    schedule::start(&state, &settings.refresh, stop_rx.clone())?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("pgcache serve: listening on {scheme}://{address}");
    tracing::info!(%address, scheme, tenants = state.tenants.len(), "serving");

    let (signalled_tx, signalled) = watch::channel(false);
    let draining = state.clone();
    let drain = options.drain;
    let stopper = stop_tx.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!(
            ?drain,
            "shutting down: no new requests; runs in flight may finish"
        );
        draining.draining.store(true, Ordering::Release);
        let _ = signalled_tx.send(true);
        tokio::time::sleep(drain).await;
        tracing::warn!("drain deadline passed: stopping the runs still going");
        let _ = stopper.send(true);
    });
    let router = router(state.clone());
    match tls {
        Some(config) => {
            let listener = tls::TlsListener::new(listener, config).map_err(|e| Error::Config {
                origin: Some("--listen".into()),
                message: e.to_string(),
            })?;
            run(listener, router, signalled, stop_rx).await?;
        }
        None => {
            // Streamed run output goes out as written: no Nagle delay on small writes.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "cannot set TCP_NODELAY");
                }
            });
            run(listener, router, signalled, stop_rx).await?;
        }
    }
    let _ = stop_tx.send(true);
    tracing::info!("stopped");
    Ok(())
}

/// Serves `router` on `listener` until `signalled`, then waits for open connections; once
/// runs are stopped (`stopped`), at most 10 s more.
async fn run<L>(
    listener: L,
    router: Router,
    mut signalled: watch::Receiver<bool>,
    mut stopped: watch::Receiver<bool>,
) -> Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let graceful = async move {
        while !*signalled.borrow() {
            if signalled.changed().await.is_err() {
                return;
            }
        }
    };
    let server = listen::serve(listener, router, graceful);
    // Streams of stopped runs end at once; past drain + 10 s nothing is waited for.
    let hard_stop = async move {
        while !*stopped.borrow() {
            if stopped.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    };
    tokio::select! {
        () = server => {}
        () = hard_stop => tracing::warn!("connections still open after the drain: closing"),
    }
    Ok(())
}

/// SIGTERM (`docker stop`, systemd) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
