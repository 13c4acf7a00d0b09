//! Calls the host in a tight loop, forever.

mod bindings {
    wit_bindgen::generate!({ world: "database-client", path: "../../../wit" });
}
use bindings::pgcache::db::database as db;

fn main() {
    loop {
        let _ = std::hint::black_box(db::cache_stats());
    }
}
