//! PostgreSQL: the connection pool, statement execution, and decoding results into Arrow.

pub(crate) mod copy;
pub(crate) mod decode;
pub(crate) mod explain;
pub mod fetch;
pub(crate) mod numeric;
pub(crate) mod params;
pub(crate) mod pool;
pub mod role;
pub(crate) mod time;
pub mod types;
