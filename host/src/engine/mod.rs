//! The engine under every query mode and every caller ([`crate::Db`], the refresh modes of
//! [`crate::incremental`], the plugin host): a pool and a cache directory under a policy, and
//! the steps every read of the database into the cache takes: begin a transaction under the
//! policy, describe and check the query, fetch into Parquet parts, hold to the quota, publish
//! a generation, under the entry's locks.
//!
//! - [`describe`]: a query's columns and the checks that hold for every result;
//! - [`quota`]: the cache quota, before, during and after a fetch;
//! - [`publish`]: parts written from a fetch, made an entry's current generation;
//! - [`simple`]: the simple cache's hit, miss and uncached paths;
//! - [`scope`]: where results come from, part of every key.

mod describe;
mod publish;
mod quota;
pub(crate) mod scope;
mod simple;

use std::time::Duration;

pub(crate) use publish::fetch_into;
use scope::Scope;

use crate::cache::lock::Locks;
use crate::cache::store::Store;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::pg::fetch::{FetchLimits, Fetcher};
use crate::pg::pool::PgPool;
use crate::progress::Progress;
use crate::sql::Statement;

/// One database and one cache directory under one policy: what a [`crate::Db`] and its clones
/// share.
#[derive(Debug)]
pub(crate) struct Engine {
    pub settings: Settings,
    pub pool: PgPool,
    pub store: Store,
    pub locks: Locks,
    /// Where results come from (server, port, database, role, search_path): part of every
    /// cache key.
    pub scope: Scope,
    /// Set once the login role was found free of privileges plugins must not have.
    pub role_checked: tokio::sync::OnceCell<()>,
    /// The database's `server_encoding`, asked once (see [`Described::check_text_order`]).
    pub server_encoding: tokio::sync::OnceCell<String>,
    /// Hits, misses and rows fetched.
    pub counters: crate::counters::Counters,
    /// Decoded columns kept between reads (`cache.hot_bytes`).
    pub hot: Option<crate::cache::HotColumns>,
}

impl Engine {
    /// The engine of `settings`: the pool (no connection opened yet), the cache directory,
    /// and the scope its keys are made in.
    pub fn new(settings: Settings) -> Result<Engine> {
        let pool = PgPool::new(&settings)?;
        let store = Store::open(&settings.cache.dir)?;
        let c = &settings.connection;
        let mut configured = format!(
            "host={:?} port={} dbname={:?} user={:?}",
            c.host(),
            c.port(),
            c.dbname(),
            c.user()
        );
        // Hits are not checked against the table allow-list again (only fetches are): entries
        // stored under another list (a tenant's narrowed rights) must be other keys.
        if let Some(tables) = &settings.policy.allow_tables {
            let mut tables = tables.clone();
            tables.sort();
            tables.dedup();
            configured.push_str(&format!(" allow_tables={tables:?}"));
        }
        let scope = Scope::new(configured, &settings.cache.dir);
        let hot_bytes = settings.cache.hot_bytes;
        Ok(Engine {
            settings,
            pool,
            store,
            locks: Locks::default(),
            scope,
            role_checked: tokio::sync::OnceCell::new(),
            server_encoding: tokio::sync::OnceCell::new(),
            counters: Default::default(),
            hot: (hot_bytes > 0).then(|| crate::cache::HotColumns::new(hot_bytes)),
        })
    }

    /// Parses `sql` with PostgreSQL's grammar. When the grammar rejects it, the server is
    /// asked to parse it too (a protocol-level Parse, which never executes anything), so the
    /// caller gets the server's own error: SQLSTATE, message and position. Either way the
    /// statement is refused.
    pub async fn parse(&self, sql: &str) -> Result<Statement> {
        let refused = match Statement::parse(sql) {
            Ok(statement) => return Ok(statement),
            Err(e) if sql.trim().is_empty() => return Err(e),
            Err(e) => e,
        };
        let Ok(conn) = self.pool.get().await else {
            return Err(refused);
        };
        match conn.prepare(sql).await {
            Err(e) if e.as_db_error().is_some() => Err(Error::from_pg(sql, e, None)),
            _ => Err(refused),
        }
    }

    /// The statement timeout in force: the policy's, else the connection's.
    pub fn timeout(&self) -> Option<Duration> {
        self.settings
            .policy
            .statement_timeout
            .or(self.settings.pool.statement_timeout)
    }

    /// Starts a transaction under the policy: READ ONLY when `read_only` or when the policy
    /// wants queries read-only, REPEATABLE READ when `repeatable`, opened with the policy's
    /// settings (statement timeout). `execute` passes `read_only = false` and is not a query.
    pub async fn begin<'c>(
        &self,
        conn: &'c mut deadpool_postgres::Object,
        repeatable: bool,
        read_only: bool,
    ) -> Result<deadpool_postgres::Transaction<'c>> {
        let policy = &self.settings.policy;
        let mut builder = conn.build_transaction();
        if repeatable {
            builder = builder.isolation_level(tokio_postgres::IsolationLevel::RepeatableRead);
        }
        let tx = builder
            .read_only(read_only)
            .start()
            .await
            .map_err(|e| Error::from_pg("BEGIN", e, None))?;
        if let Some(settings) = policy.transaction_settings() {
            tx.batch_execute(&settings)
                .await
                .map_err(|e| Error::from_pg(&settings, e, None))?;
        }
        Ok(tx)
    }

    /// A fetcher over `client` with this handle's settings.
    pub fn fetcher<'a>(
        &self,
        client: &'a tokio_postgres::Client,
        progress: Option<&'a Progress>,
        limits: FetchLimits,
    ) -> Fetcher<'a> {
        Fetcher {
            client,
            batch_rows: self.settings.cache.batch_rows,
            timeout: self.timeout(),
            progress,
            limits,
        }
    }
}
