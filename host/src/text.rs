//! Text forms of values as pgcache prints them: exact, and readable back by PostgreSQL.
//!
//! ```
//! use pgcache::text;
//! assert_eq!(text::format_scaled(-1_234_567, 3), "-1234.567");
//! assert_eq!(text::rfc3339(1_706_702_400_000_123, true), "2024-01-31T12:00:00.000123Z");
//! assert_eq!(text::format_timestamp(i64::MAX, true), "infinity");
//! ```

pub use crate::pg::numeric::format_scaled;
pub use crate::pg::time::{format_date, format_time, format_timestamp, rfc3339};
