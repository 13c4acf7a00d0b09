//! SQL as PostgreSQL reads it: statements scanned and parsed by the server's own grammar
//! (libpg_query), and the checks pgcache holds them to before anything runs.

mod checks;
pub mod functions;
pub mod placeholders;
mod statement;

pub use statement::{Statement, StatementKind};
