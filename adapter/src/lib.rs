//! `pgcache:db/database` for plugins under the stock `wasmtime` CLI.
//!
//! This component exports the interface a plugin imports and forwards every call to
//! `pgcache serve` over `wasi:http`: `query` and `incremental-query` fetch the result as an
//! Arrow IPC stream, and the `rows` calls are answered from it here, by the host's own
//! conversion (`host/src/wasm/columns.rs`, included below), so a plugin sees the same schema,
//! columns, batches, IPC bytes and errors as under `pgcache run`.
//!
//! Where the server is and whose it is comes from the environment the user grants, never from
//! the binary: `PGCACHE_URL` (e.g. `http://127.0.0.1:8080`) and `PGCACHE_TOKEN` (a tenant's
//! bearer token from `pgcache token`). `pgcache compose plugin.wasm -o out.wasm` plugs it in;
//! then `wasmtime run -S http --env PGCACHE_URL=... --env PGCACHE_TOKEN=... out.wasm`.

mod client;
mod rows;

#[allow(
    missing_docs,
    reason = "generated; the WIT file carries the documentation"
)]
mod bindings {
    wit_bindgen::generate!({
        world: "adapter",
        path: "../wit",
    });
}

use bindings::exports::pgcache::db::database as wit;

/// The field metadata key of PostgreSQL types, as the host writes it.
const PG_TYPE_KEY: &str = "pgcache.pg_type";

/// The host's Arrow -> WIT conversion, word for word.
#[path = "../../host/src/wasm/columns.rs"]
#[allow(dead_code, reason = "shared with the host, which uses all of it")]
mod columns;

use client::Client;
use rows::Rows;

struct Adapter;

impl wit::Guest for Adapter {
    type Rows = Rows;

    fn query(
        sql: String,
        params: Vec<wit::Value>,
        options: wit::QueryOptions,
    ) -> Result<wit::Rows, wit::Error> {
        let mut body = serde_json::json!({
            "sql": sql,
            "params": client::params(&params),
            "use_cache": options.use_cache,
        });
        if let Some(secs) = options.max_age_seconds {
            body["max_age_seconds"] = secs.into();
        }
        let fetched = Client::from_env()?.query(&body)?;
        Ok(wit::Rows::new(Rows::new(fetched.ipc)?))
    }

    fn incremental_query(
        sql: String,
        params: Vec<wit::Value>,
        order_column: String,
        options: wit::IncrementalOptions,
    ) -> Result<wit::IncrementalResult, wit::Error> {
        let mut body = serde_json::json!({
            "sql": sql,
            "params": client::params(&params),
            "incremental": order_column,
            "use_cache": options.use_cache,
        });
        if let Some(lookback) = options.lookback {
            body["lookback"] = match lookback {
                wit::Lookback::Microseconds(n) => serde_json::json!({ "microseconds": n }),
                wit::Lookback::Amount(n) => serde_json::json!({ "amount": n }),
            };
        }
        let fetched = Client::from_env()?.query(&body)?;
        let report = fetched.refresh.ok_or_else(|| {
            wit::Error::Other("pgcache serve sent no refresh report (pgcache-refresh)".into())
        })?;
        Ok(wit::IncrementalResult {
            rows: wit::Rows::new(Rows::new(fetched.ipc)?),
            report,
        })
    }

    fn execute(sql: String, params: Vec<wit::Value>) -> Result<u64, wit::Error> {
        let body = serde_json::json!({ "sql": sql, "params": client::params(&params) });
        Client::from_env()?.execute(&body)
    }

    fn cache_clear(pattern: Option<String>) -> Result<u32, wit::Error> {
        Client::from_env()?.clear(pattern.as_deref())
    }

    fn cache_stats() -> Result<wit::Stats, wit::Error> {
        Client::from_env()?.stats()
    }
}

bindings::export!(Adapter with_types_in bindings);
