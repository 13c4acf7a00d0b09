//! PostgreSQL: the connection pool, statement execution, and decoding results into Arrow.

pub(crate) mod civil;
pub(crate) mod copy;
pub(crate) mod decode;
pub(crate) mod explain;
pub mod fetch;
pub(crate) mod numeric;
pub mod order;
pub(crate) mod params;
pub(crate) mod pool;
pub(crate) mod predicate;
pub mod role;
pub(crate) mod time;
pub mod types;
pub(crate) mod value;
