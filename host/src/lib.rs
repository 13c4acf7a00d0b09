//! pgcache: PostgreSQL query results cached as Parquet, refreshed incrementally, served to
//! Rust callers and to sandboxed WebAssembly plugins.
//!
//! The entry point is [`Db`]: [`Db::query`] caches a result and serves it again without the
//! database; [`Db::incremental_query`] fetches only rows past the stored watermark of an
//! ordering column; [`Db::execute`] runs a statement; [`Db::clear_cache`] and
//! [`Db::cache_stats`] manage the cache directory. Results are [`ResultSet`]s: Arrow schemas
//! plus rows read lazily from the cache's Parquet parts.

#![deny(missing_docs)]

pub mod cache;
#[cfg(feature = "wasm")]
pub mod compose;
pub mod config;
mod counters;
mod db;
mod engine;
mod error;
pub mod incremental;
pub mod output;
pub mod pg;
mod plugin_error;
mod policy;
mod progress;
mod result;
#[cfg(feature = "wasm")]
pub mod serve;
pub mod sql;
pub mod text;
#[cfg(feature = "wasm")]
pub mod wasm;

/// README.md's Rust examples, compiled and run as doctests so they cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExamples;

pub use cache::{CacheStats, EntryStats};
pub use config::Settings;
pub use counters::CounterValues;
pub use db::{Db, QueryOptions};
pub use error::{DbError, Error, Result};
pub use incremental::IncrementalOptions;
pub use pg::fetch::FetchLimits;
pub use pg::order::{Lookback, OrderValue};
pub use pg::pool::PoolStatus;
pub use pg::value::Value;
pub use plugin_error::{PluginDbError, PluginError, denied_call};
pub use policy::Policy;
pub use progress::Progress;
pub use result::{BatchCursor, Batches, Origin, READ_BATCH_ROWS, RefreshReport, ResultSet};
pub use sql::{Statement, StatementKind};
