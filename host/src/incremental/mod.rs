//! Incremental queries: ordering values and watermarks, the late-commit protocol, and the
//! refresh itself.

pub mod order;
pub(crate) mod parallel;
pub(crate) mod refresh;
pub(crate) mod snapshot;
pub(crate) mod xmin;

pub use order::SUPPORTED_ORDER_TYPES;
