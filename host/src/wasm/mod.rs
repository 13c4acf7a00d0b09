//! The WebAssembly host: runs plugin components that import `pgcache:db/database`.
//!
//! The interface is in `wit/pgcache.wit`. [`add_to_linker`] offers it to any wasmtime
//! embedder; [`PluginHost`] is pgcache's own runner (compile once with an on-disk cache,
//! instantiate per run, limits on memory, CPU, wall-clock time and results).

pub(crate) mod bindings;
mod budget;
mod columns;
pub(crate) mod convert;
mod ctx;
mod engine;
mod error;
mod host;
mod limits;
mod output;
mod rows;
mod runner;

pub use crate::config::{Capabilities, Limits, ResultLimits};
use crate::pg::types::PG_TYPE_KEY;
use bindings::pgcache::db::database as wit;

pub use budget::MemoryBudget;
pub use ctx::{PgcacheCtx, PgcacheView, add_to_linker};
pub use engine::{Allocation, pooling_fits};
pub use error::HostError;
pub use output::{Output, StreamOutput};
pub use rows::RowsHandle;
pub use runner::{
    DirGrant, Plugin, PluginHost, RunError, RunOptions, RunOutcome, check_dir_grants,
};
