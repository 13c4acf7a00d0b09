//! An attacker at the database edge, driven by its arguments: each argument is one attempt,
//! `<op>:<sql>`, run in order, and prints one line `<n> ok <rows>` or `<n> <error variant>
//! <message>`. Results are kept open until the end, so results held in memory add up.
//!
//! - `q:<sql>` query without the cache (held in host memory), `c:<sql>` query with the cache;
//! - `e:<sql>` execute; `i:<column>:<sql>` incremental query;
//! - `b0:<sql>` query, then `next-batch(0)`: prints the rows the batch had;
//! - `flood:` writes to stdout forever.

mod bindings {
    wit_bindgen::generate!({ world: "database-client", path: "../../../wit" });
}
use std::io::Write;

use bindings::pgcache::db::database::{self as db, Error, IncrementalOptions, QueryOptions};

fn describe(e: &Error) -> String {
    match e {
        Error::Database(d) => format!("database {} {}", d.code, d.message),
        Error::BadParameter(m) => format!("bad-parameter {m}"),
        Error::Denied(m) => format!("denied {m}"),
        Error::LimitExceeded(m) => format!("limit-exceeded {m}"),
        Error::Timeout(m) => format!("timeout {m}"),
        Error::CacheIo(m) => format!("cache-io {m}"),
        Error::Other(m) => format!("other {m}"),
    }
}

fn query(sql: &str, use_cache: bool) -> Result<db::Rows, Error> {
    db::query(
        sql,
        &[],
        QueryOptions {
            use_cache,
            max_age_seconds: None,
        },
    )
}

fn main() {
    let mut held = Vec::new();
    for (n, attempt) in std::env::args().skip(1).enumerate() {
        let (op, sql) = attempt.split_once(':').unwrap_or((attempt.as_str(), ""));
        let outcome = match op {
            "q" | "c" => query(sql, op == "c").map(|rows| {
                let count = rows.num_rows();
                held.push(rows);
                count
            }),
            "e" => db::execute(sql, &[]),
            "i" => {
                let (column, sql) = sql.split_once(':').unwrap_or(("id", sql));
                let options = IncrementalOptions {
                    use_cache: true,
                    lookback: None,
                };
                db::incremental_query(sql, &[], column, options).map(|r| {
                    let count = r.rows.num_rows();
                    held.push(r.rows);
                    count
                })
            }
            "b0" => query(sql, false)
                .and_then(|rows| rows.next_batch(0))
                .map(|batch| batch.map_or(0, |b| u64::from(b.num_rows))),
            "flood" => {
                let line = [b'x'; 1023];
                let mut out = std::io::stdout();
                loop {
                    let _ = out.write_all(&line);
                    let _ = out.write_all(b"\n");
                }
            }
            other => {
                println!("{n} unknown op {other}");
                continue;
            }
        };
        match outcome {
            Ok(rows) => println!("{n} ok {rows}"),
            Err(e) => println!("{n} {}", describe(&e)),
        }
    }
}
