//! The generated bindings of `wit/pgcache.wit`, in one place.
#![allow(
    missing_docs,
    reason = "generated code; the WIT file carries the documentation"
)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "wasi": wasmtime_wasi::p2::bindings,
        "pgcache:db/database.rows": super::rows::RowsHandle,
    },
    trappable_error_type: {
        "pgcache:db/database.error" => super::error::HostError,
    },
});
