//! Tenants: each its own login, cache namespace, operations and limits (`[tenants.NAME]`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{Limits, ResultLimits};

/// A tenant: its own database login, cache namespace, rights and limits. Declared in the
/// settings file as `[tenants.NAME]`; `pgcache run --tenant NAME` applies it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TenantSettings {
    /// The tenant's own database URL, naming its own role (exclusive with `role`).
    #[serde(default)]
    pub database_url: Option<String>,
    /// A role to log in as, at the global host, port and database (exclusive with
    /// `database_url`). pgcache logs in as it: no `SET ROLE` a query could undo.
    #[serde(default)]
    pub role: Option<String>,
    /// The password of `role`, if the server asks for one.
    #[serde(default)]
    pub password: Option<String>,
    /// The tenant's cache directory (default `<cache.dir>/tenants/<name>`).
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// Operations its plugins may call (default: query, incremental-query, cache-stats).
    #[serde(default = "default_operations")]
    pub operations: Vec<Operation>,
    /// Tables (`schema.table`) and schemas (`schema`) its queries may read; all when unset.
    #[serde(default)]
    pub allow_tables: Option<Vec<String>>,
    /// Its limits.
    #[serde(default)]
    pub limits: TenantLimits,
    /// SHA-256 (hex) of the API tokens that act as this tenant on `pgcache serve`
    /// (`pgcache token` makes a token and its hash); never the tokens themselves.
    #[serde(default)]
    pub tokens_sha256: Vec<String>,
}

/// An operation of the `pgcache:db/database` interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Operation {
    /// `query`.
    Query,
    /// `incremental-query`.
    IncrementalQuery,
    /// `execute` (INSERT, UPDATE, DELETE, MERGE).
    Execute,
    /// `cache-clear`.
    CacheClear,
    /// `cache-stats`.
    CacheStats,
}

fn default_operations() -> Vec<Operation> {
    vec![
        Operation::Query,
        Operation::IncrementalQuery,
        Operation::CacheStats,
    ]
}

/// A tenant's limits, in the units people write them in.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct TenantLimits {
    /// Linear memory of a plugin, MiB (default 256).
    pub memory_mib: u64,
    /// Time in plugin code, seconds (default 60).
    pub cpu_seconds: f64,
    /// Wall-clock time of a run, seconds (default 300).
    pub wall_seconds: f64,
    /// Statement timeout of every statement, seconds (default 30).
    pub statement_timeout_seconds: f64,
    /// Rows per result (default 10 000 000).
    pub max_rows: u64,
    /// Bytes per result (default 4 GiB).
    pub max_bytes: u64,
    /// Results open at once (default 64).
    pub max_open_results: usize,
    /// Calls to the database interface per run (default 1 000 000).
    pub max_host_calls: u64,
    /// Size of the tenant's cache, MiB (default 1024).
    pub cache_quota_mib: u64,
    /// Runs and queries of this tenant `pgcache serve` works on at once (default 4).
    pub max_concurrent: usize,
    /// Requests that may wait for one of those slots; past it, 429 (default 16).
    pub max_queued: usize,
    /// Decoded columns of its cached results `pgcache serve` keeps in memory, MiB (default 256).
    pub hot_mib: u64,
}

impl Default for TenantLimits {
    /// The limits of any plugin run ([`Limits`], [`crate::Policy::for_plugins`]),
    /// and a 1 GiB cache.
    fn default() -> Self {
        let run = Limits::default();
        let policy = crate::Policy::for_plugins();
        TenantLimits {
            memory_mib: (run.max_memory >> 20) as u64,
            cpu_seconds: run.cpu_time.as_secs_f64(),
            wall_seconds: run.wall_time.as_secs_f64(),
            statement_timeout_seconds: policy.statement_timeout.map_or(0.0, |t| t.as_secs_f64()),
            max_rows: run.results.max_rows,
            max_bytes: run.results.max_bytes,
            max_open_results: run.results.max_open_results,
            max_host_calls: run.results.max_host_calls,
            cache_quota_mib: 1024,
            max_concurrent: 4,
            max_queued: 16,
            hot_mib: 256,
        }
    }
}

impl TenantLimits {
    /// The limits of one of the tenant's plugin runs; a number of seconds that is negative or
    /// not finite is an error naming its key.
    pub fn run_limits(&self) -> Result<Limits, String> {
        let seconds = |v: f64, key: &str| {
            Duration::try_from_secs_f64(v)
                .map_err(|_| format!("limits.{key} must be a non-negative number of seconds"))
        };
        let defaults = Limits::default();
        Ok(Limits {
            max_memory: usize::try_from(self.memory_mib << 20).unwrap_or(usize::MAX),
            cpu_time: seconds(self.cpu_seconds, "cpu_seconds")?,
            wall_time: seconds(self.wall_seconds, "wall_seconds")?,
            results: ResultLimits {
                max_rows: self.max_rows,
                max_bytes: self.max_bytes,
                max_open_results: self.max_open_results,
                max_host_calls: self.max_host_calls,
                ..defaults.results
            },
            ..defaults
        })
    }

    /// The statement timeout of every statement the tenant runs.
    pub fn statement_timeout(&self) -> Result<Duration, String> {
        Duration::try_from_secs_f64(self.statement_timeout_seconds).map_err(|_| {
            "limits.statement_timeout_seconds must be a non-negative number of seconds".into()
        })
    }
}
