//! Bindings of the `pgcache:db/database` interface (the `database-client` world); the Rust
//! toolchain supplies `wasi:cli`, so `main` is the plugin's entry point.

wit_bindgen::generate!({
    world: "database-client",
    path: "../wit",
});
