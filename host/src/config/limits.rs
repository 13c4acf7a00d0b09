//! What a plugin run may consume and call: the numbers and the operations, in one place for
//! the plugin host ([`crate::wasm`]), tenants' settings and builds without the plugin host.

use std::time::Duration;

/// Limits of one plugin run. Exceeding one ends the run with an error naming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Linear memory, in bytes (default 256 MiB).
    pub max_memory: usize,
    /// Time spent executing guest code, metered in 10 ms epoch ticks (default 60 s).
    pub cpu_time: Duration,
    /// Time of the whole run, host calls included (default 300 s).
    pub wall_time: Duration,
    /// Bytes a guest may pass to the host in one call (wasmtime's hostcall fuel, default 16 MiB).
    pub hostcall_bytes: usize,
    /// Handles (results, streams, files) open at once in the resource table (default 1024).
    pub max_handles: usize,
    /// Rows and bytes per result, open results.
    pub results: ResultLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_memory: 256 << 20,
            cpu_time: Duration::from_secs(60),
            wall_time: Duration::from_secs(300),
            hostcall_bytes: 16 << 20,
            max_handles: 1024,
            results: ResultLimits::default(),
        }
    }
}

/// Caps on what a guest takes from the database through this interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResultLimits {
    /// Rows of one result (default 10 million).
    pub max_rows: u64,
    /// Bytes of one result: fetched from the server, and handed to the guest (default 4 GiB).
    pub max_bytes: u64,
    /// Results open at once (default 64).
    pub max_open_results: usize,
    /// Calls to the interface in one run (default 1 000 000); past it the guest is stopped.
    pub max_host_calls: u64,
    /// Bytes of results held in host memory at once by one run (results without the cache;
    /// default 256 MiB).
    pub max_memory_bytes: u64,
}

impl Default for ResultLimits {
    fn default() -> Self {
        ResultLimits {
            max_rows: 10_000_000,
            max_bytes: 4 << 30,
            max_open_results: 64,
            max_host_calls: 1_000_000,
            max_memory_bytes: 256 << 20,
        }
    }
}

/// The operations of the `database` interface a guest may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// `query`.
    pub query: bool,
    /// `incremental-query`.
    pub incremental_query: bool,
    /// `execute`: off unless granted.
    pub execute: bool,
    /// `cache-clear`.
    pub cache_clear: bool,
    /// `cache-stats`.
    pub cache_stats: bool,
}

impl Default for Capabilities {
    /// Everything but `execute`.
    fn default() -> Self {
        Capabilities {
            query: true,
            incremental_query: true,
            execute: false,
            cache_clear: true,
            cache_stats: true,
        }
    }
}

impl Capabilities {
    /// Exactly the operations in `operations` (a tenant's `operations`).
    pub fn of(operations: &[super::Operation]) -> Capabilities {
        use super::Operation as Op;
        let has = |op: Op| operations.contains(&op);
        Capabilities {
            query: has(Op::Query),
            incremental_query: has(Op::IncrementalQuery),
            execute: has(Op::Execute),
            cache_clear: has(Op::CacheClear),
            cache_stats: has(Op::CacheStats),
        }
    }
}
