//! Opens result handles and never drops them.

mod bindings {
    wit_bindgen::generate!({ world: "database-client", path: "../../../wit" });
}
use bindings::pgcache::db::database::{self as db, Error, QueryOptions};

fn main() {
    let mut kept = Vec::new();
    for i in 0..100_000 {
        match db::query(
            "SELECT 1 AS one",
            &[],
            QueryOptions {
                use_cache: true,
                max_age_seconds: None,
            },
        ) {
            Ok(rows) => kept.push(rows),
            Err(Error::LimitExceeded(m)) => {
                println!("limit-exceeded after {i} handles: {m}");
                std::process::exit(1);
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    println!("kept {} handles", kept.len());
}
