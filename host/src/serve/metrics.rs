//! `GET /metrics` in Prometheus text: runs by tenant and outcome, run time, cache hits and
//! misses, rows fetched, limits hit, pool connections in use and waiting, scheduled refreshes.
//! One struct, one registry; gauges read from the pools when scraped.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A tenant label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TenantLabel {
    pub tenant: String,
}

/// A tenant and how a run ended (`ok`, `failed`, `limit`, `trap`, `stopped`, `error`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RunLabel {
    pub tenant: String,
    pub outcome: String,
}

/// A tenant and a limit's name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct LimitLabel {
    pub tenant: String,
    pub limit: String,
}

fn run_seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Every metric of the server.
pub(crate) struct Metrics {
    registry: Registry,
    /// Plugin runs by tenant and outcome.
    pub runs: Family<RunLabel, Counter>,
    /// Wall-clock time of plugin runs, seconds.
    pub run_seconds: Family<TenantLabel, Histogram, fn() -> Histogram>,
    /// Results answered from the cache.
    pub cache_hits: Family<TenantLabel, Gauge>,
    /// Results that needed the database.
    pub cache_misses: Family<TenantLabel, Gauge>,
    /// Rows read from the database.
    pub rows_fetched: Family<TenantLabel, Gauge>,
    /// Limits that stopped a run or refused a call.
    pub limits_hit: Family<LimitLabel, Counter>,
    /// Pool connections in use.
    pub pool_in_use: Family<TenantLabel, Gauge>,
    /// Callers waiting for a pool connection.
    pub pool_waiting: Family<TenantLabel, Gauge>,
    /// Requests refused with 429.
    pub rejected: Family<TenantLabel, Counter>,
    /// Runs and queries working now.
    pub running: Family<TenantLabel, Gauge>,
    /// Runs and queries waiting for a slot.
    pub queued: Family<TenantLabel, Gauge>,
    /// Scheduled refreshes by tenant and outcome (`ok`, `error`).
    pub refreshes: Family<RunLabel, Counter>,
    /// 1 when plugin instances come from the pooling allocator, 0 when made per run.
    pub pooling: Gauge,
}

impl Metrics {
    /// All metrics, registered under the `pgcache` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("pgcache");
        let m = Metrics {
            runs: Family::default(),
            run_seconds: Family::new_with_constructor(run_seconds),
            cache_hits: Family::default(),
            cache_misses: Family::default(),
            rows_fetched: Family::default(),
            limits_hit: Family::default(),
            pool_in_use: Family::default(),
            pool_waiting: Family::default(),
            rejected: Family::default(),
            running: Family::default(),
            queued: Family::default(),
            refreshes: Family::default(),
            pooling: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "plugin_runs",
            "Plugin runs by tenant and outcome",
            m.runs.clone(),
        );
        registry.register(
            "plugin_run_seconds",
            "Wall-clock time of plugin runs",
            m.run_seconds.clone(),
        );
        registry.register(
            "cache_hits",
            "Results answered from the cache",
            m.cache_hits.clone(),
        );
        registry.register(
            "cache_misses",
            "Results that needed the database",
            m.cache_misses.clone(),
        );
        registry.register(
            "rows_fetched",
            "Rows read from the database",
            m.rows_fetched.clone(),
        );
        registry.register(
            "limits_hit",
            "Limits that stopped a run or refused a call",
            m.limits_hit.clone(),
        );
        registry.register(
            "pool_connections_in_use",
            "Database connections in use",
            m.pool_in_use.clone(),
        );
        registry.register(
            "pool_waiting",
            "Callers waiting for a database connection",
            m.pool_waiting.clone(),
        );
        registry.register(
            "requests_rejected",
            "Requests refused with 429 (tenant busy)",
            m.rejected.clone(),
        );
        registry.register(
            "requests_running",
            "Runs and queries working now",
            m.running.clone(),
        );
        registry.register(
            "requests_queued",
            "Runs and queries waiting for a slot",
            m.queued.clone(),
        );
        registry.register(
            "scheduled_refreshes",
            "Scheduled refreshes by tenant and outcome",
            m.refreshes.clone(),
        );
        registry.register(
            "instance_pooling",
            "1 when plugin instances come from the pooling allocator",
            m.pooling.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The registry in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        text
    }
}

/// A tenant label for `name`.
pub(crate) fn tenant(name: &str) -> TenantLabel {
    TenantLabel {
        tenant: name.to_owned(),
    }
}
