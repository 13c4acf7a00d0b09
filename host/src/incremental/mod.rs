//! Incremental queries: ordering values and watermarks, the late-commit protocol, and the
//! refresh itself.

pub(crate) mod checks;
mod compaction;
mod driver;
pub(crate) mod inflight;
mod options;
pub(crate) mod parallel;
pub(crate) mod refresh;
#[cfg(test)]
mod simulation;
pub(crate) mod snapshot;
pub(crate) mod watermark;
pub(crate) mod xmin;

pub use crate::pg::order::SUPPORTED_ORDER_TYPES;
pub use options::IncrementalOptions;
