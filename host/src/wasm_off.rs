//! Builds without the `wasm` feature (no plugin host): the default limits of a plugin run, as
//! plain numbers, for the settings that describe tenants (`crate::config::TenantLimits`).
//! Without the feature no plugin runs, so they only fill in parsed settings. A test of the
//! `wasm` build checks that they equal the plugin host's own defaults.

#![cfg_attr(feature = "wasm", allow(dead_code))]

use std::time::Duration;

/// What a plugin run may consume (the numbers of the plugin host's `Limits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Linear memory, in bytes.
    pub max_memory: usize,
    /// Time spent executing guest code.
    pub cpu_time: Duration,
    /// Time of the whole run.
    pub wall_time: Duration,
    /// Rows and bytes per result, open results.
    pub results: ResultLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_memory: 256 << 20,
            cpu_time: Duration::from_secs(60),
            wall_time: Duration::from_secs(300),
            results: ResultLimits::default(),
        }
    }
}

/// Rows and bytes per result (the numbers of the plugin host's `ResultLimits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResultLimits {
    /// Rows of one result.
    pub max_rows: u64,
    /// Bytes of one result.
    pub max_bytes: u64,
    /// Results open at once.
    pub max_open_results: usize,
    /// Calls to the interface in one run.
    pub max_host_calls: u64,
}

impl Default for ResultLimits {
    fn default() -> Self {
        ResultLimits {
            max_rows: 10_000_000,
            max_bytes: 4 << 30,
            max_open_results: 64,
            max_host_calls: 1_000_000,
        }
    }
}

#[cfg(all(test, feature = "wasm"))]
mod tests {
    #[test]
    fn the_numbers_are_the_plugin_hosts_defaults() {
        let host = crate::wasm::Limits::default();
        let off = super::Limits::default();
        assert_eq!(host.max_memory, off.max_memory);
        assert_eq!(host.cpu_time, off.cpu_time);
        assert_eq!(host.wall_time, off.wall_time);
        assert_eq!(host.results.max_rows, off.results.max_rows);
        assert_eq!(host.results.max_bytes, off.results.max_bytes);
        assert_eq!(host.results.max_open_results, off.results.max_open_results);
        assert_eq!(host.results.max_host_calls, off.results.max_host_calls);
    }
}
