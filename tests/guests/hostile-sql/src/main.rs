//! Tries statements a plugin must not get through `query` (and `execute`): DDL, COPY TO
//! PROGRAM, role and timeout changes, a second statement after `;`, writes through RETURNING.
//! Prints one line per attempt: `<n> ok` or `<n> <error variant> <message>`.

mod bindings {
    wit_bindgen::generate!({ world: "database-client", path: "../../../wit" });
}
use bindings::pgcache::db::database::{self as db, Error, QueryOptions};

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

fn main() {
    let victim = std::env::args().nth(1).expect("a table to attack");
    let opts = || QueryOptions {
        use_cache: false,
        max_age_seconds: None,
    };
    let attempts = [
        format!("DROP TABLE {victim}"),
        "COPY (SELECT 1) TO PROGRAM 'touch /tmp/pgcache-pwned'".to_owned(),
        "SET ROLE postgres".to_owned(),
        "SET statement_timeout = 0".to_owned(),
        format!("SELECT 1 AS one; DROP TABLE {victim}"),
        format!("DELETE FROM {victim} RETURNING *"),
        "SELECT set_config('role', 'postgres', false) AS r".to_owned(),
        "SELECT pg_sleep(60) IS NULL AS slept".to_owned(),
    ];
    for (i, sql) in attempts.iter().enumerate() {
        match db::query(sql, &[], opts()) {
            Ok(rows) => println!("query {i} ok {}", rows.num_rows()),
            Err(e) => println!("query {i} {}", describe(&e)),
        }
    }
    for (i, sql) in [
        format!("DROP TABLE {victim}"),
        "SET ROLE postgres".to_owned(),
        format!("TRUNCATE {victim}"),
    ]
    .iter()
    .enumerate()
    {
        match db::execute(sql, &[]) {
            Ok(n) => println!("execute {i} ok {n}"),
            Err(e) => println!("execute {i} {}", describe(&e)),
        }
    }
}
