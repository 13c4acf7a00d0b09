//! Asks for a billion rows; the host must refuse long before they exist.

mod bindings {
    wit_bindgen::generate!({ world: "database-client", path: "../../../wit" });
}
use bindings::pgcache::db::database::{self as db, Error, QueryOptions};

fn main() {
    // In the select list the series streams; in FROM it would be built whole first.
    let sql = "SELECT generate_series(1, 1000000000) AS g, repeat('x', 100) AS pad";
    match db::query(
        sql,
        &[],
        QueryOptions {
            use_cache: true,
            max_age_seconds: None,
        },
    ) {
        Ok(rows) => println!("got {} rows", rows.num_rows()),
        Err(Error::LimitExceeded(m)) => {
            println!("limit-exceeded {m}");
            std::process::exit(1);
        }
        Err(e) => panic!("unexpected {e:?}"),
    }
}
