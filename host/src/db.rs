//! [`Db`]: the handle users hold. It owns the connection pool and the cache directory and
//! offers the origin module's capabilities: [`Db::query`], [`Db::incremental_query`],
//! [`Db::execute`], [`Db::clear_cache`] and [`Db::cache_stats`].

use std::sync::Arc;
use std::time::Duration;

use crate::cache::entry::{self};
use crate::cache::key::{CacheKey, KeyMode};
use crate::cache::manifest::Manifest;
use crate::cache::stats::{self, CacheStats};
use crate::config::Settings;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::incremental::IncrementalOptions;
use crate::pg::fetch::{FetchLimits, Wrap};
use crate::pg::value::{Value, encode_params};
use crate::progress::Progress;
use crate::result::{Origin, ResultSet};

/// A handle on one database and one cache directory. Cheap to clone, `Send + Sync`: share it
/// between tasks and threads; they share the pool and the cache.
///
/// ```no_run
/// use pgcache::{Db, QueryOptions, IncrementalOptions, Settings, Value};
///
/// # async fn example() -> pgcache::Result<()> {
/// let db = Db::connect(Settings::load(None)?).await?;
///
/// // Simple cache: the second call is answered from Parquet without the database.
/// let one = db.query("SELECT * FROM eventos WHERE device_id = $1", &[Value::Int4(7)], &QueryOptions::default()).await?;
/// println!("{} rows", one.num_rows());
///
/// // Incremental: later calls fetch only rows past the stored watermark of `id`.
/// let all = db.incremental_query("SELECT * FROM eventos", &[], "id", &IncrementalOptions::default()).await?;
/// let speeds = all.column("speed")?;
/// # let _ = speeds;
///
/// db.execute("DELETE FROM eventos WHERE ts < now() - interval '1 year'", &[]).await?;
/// println!("{:?}", db.cache_stats().await?);
/// db.clear_cache(Some("eventos")).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Db {
    inner: Arc<Engine>,
}

/// Options of [`Db::query`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct QueryOptions {
    /// Use the cache (default). When false, always ask the database and leave the cache alone.
    pub use_cache: bool,
    /// Treat an entry older than this as missing.
    pub max_age: Option<Duration>,
    /// Counters to update while rows arrive.
    pub progress: Option<Arc<Progress>>,
    /// Most rows and bytes the result may have; a larger one is [`Error::LimitExceeded`].
    pub limits: FetchLimits,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            use_cache: true,
            max_age: None,
            progress: None,
            limits: FetchLimits::default(),
        }
    }
}

impl QueryOptions {
    /// Bypass the cache.
    pub fn no_cache(mut self) -> Self {
        self.use_cache = false;
        self
    }

    /// Caps the rows and bytes of the result.
    pub fn limits(mut self, limits: FetchLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Refetch entries older than `age`.
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }

    /// Report rows and bytes to `progress` while fetching.
    pub fn progress(mut self, progress: Arc<Progress>) -> Self {
        self.progress = Some(progress);
        self
    }
}

impl Db {
    /// Builds the pool, opens `settings.pool.min_size` connections (so wrong credentials fail
    /// here, naming host, port and user) and opens the cache directory.
    pub async fn connect(settings: Settings) -> Result<Db> {
        let db = Db::connect_lazy(settings)?;
        db.inner.pool.warm(db.inner.settings.pool.min_size).await?;
        Ok(db)
    }

    /// Like [`Db::connect`] but opens no connection until one is needed: cache hits then
    /// work with the database down.
    pub fn connect_lazy(settings: Settings) -> Result<Db> {
        Ok(Db {
            inner: Arc::new(Engine::new(settings)?),
        })
    }

    /// The settings this handle was made with.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Hits, misses and rows fetched from the database by this handle and its clones.
    pub fn counters(&self) -> crate::CounterValues {
        self.inner.counters.values()
    }

    /// Bytes of decoded columns kept between reads (`cache.hot_bytes`), 0 when off.
    pub fn hot_bytes(&self) -> u64 {
        self.inner
            .hot
            .as_ref()
            .map_or(0, crate::cache::HotColumns::bytes)
    }

    /// The connection pool's state: connections in use and idle, callers waiting.
    pub fn pool_status(&self) -> crate::PoolStatus {
        self.inner.pool.status()
    }

    /// Runs `sql` with `params` through the simple cache: a stored result is returned without
    /// any database round trip; a missing one is fetched, stored and returned.
    pub async fn query(
        &self,
        sql: &str,
        params: &[Value],
        options: &QueryOptions,
    ) -> Result<ResultSet> {
        let mut result = self.query_uncounted(sql, params, options).await?;
        if let Some(hot) = &self.inner.hot {
            result = result.with_hot(hot);
        }
        let hit = result.origin() == Origin::Hit;
        self.inner.counters.count(hit, result.num_rows());
        Ok(result)
    }

    async fn query_uncounted(
        &self,
        sql: &str,
        params: &[Value],
        options: &QueryOptions,
    ) -> Result<ResultSet> {
        let inner = &self.inner;
        let statement = inner.parse(sql).await?;
        inner.settings.policy.check_query(&statement)?;
        let query = statement.text();
        // Text parameters are keyed and bound as the server reads them.
        let read =
            crate::pg::params::read_with_pool(&inner.pool, query, params, inner.timeout()).await?;
        let params: &[Value] = &read;
        if !options.use_cache {
            return inner
                .fetch_to_memory(
                    query,
                    params,
                    |_| Ok(Wrap::default()),
                    options.progress.as_deref(),
                    options.limits,
                )
                .await;
        }
        let scope = inner.scope.key_scope(&inner.pool).await;
        let key = CacheKey::new(&scope, &statement, params, &KeyMode::Simple);
        if let Some(hit) = inner.try_hit(&key, options.max_age, options.limits)? {
            return Ok(hit);
        }
        let mut lock = inner.locks.lock(&key.primary_name()).await;
        lock.lock_files(
            &inner.store.lock_path(&key.primary_name()),
            inner.settings.cache.lock_timeout,
        )
        .await?;
        // Another task or process may have stored it while this one waited.
        if let Some(hit) = inner.try_hit(&key, options.max_age, options.limits)? {
            return Ok(hit);
        }
        let slot = entry::find(&inner.store, &key)?;
        let result = inner
            .store_simple(
                query,
                params,
                &key,
                slot,
                options.progress.as_deref(),
                options.limits,
            )
            .await?;
        lock.completed();
        Ok(result)
    }

    /// Runs `sql` as an incremental query ordered by `order_column`: the first run fetches
    /// everything; later runs fetch only what is new, and return all rows, ascending in the
    /// ordering column. See the crate documentation for what is guaranteed.
    pub async fn incremental_query(
        &self,
        sql: &str,
        params: &[Value],
        order_column: &str,
        options: &IncrementalOptions,
    ) -> Result<ResultSet> {
        let inner = &self.inner;
        // Text parameters are keyed and bound as the server reads them.
        let read =
            crate::pg::params::read_with_pool(&inner.pool, sql, params, inner.timeout()).await?;
        let result = crate::incremental::refresh::incremental_query(
            &self.inner,
            sql,
            &read,
            order_column,
            options,
        )
        .await?;
        let result = match &self.inner.hot {
            Some(hot) => result.with_hot(hot),
            None => result,
        };
        match result.refresh_report() {
            Some(report) => self.inner.counters.count(
                report.rows_from_database == 0 && result.origin() == Origin::Hit,
                report.rows_from_database,
            ),
            None => self
                .inner
                .counters
                .count(result.origin() == Origin::Hit, result.num_rows()),
        }
        Ok(result)
    }

    /// Runs one statement with bound parameters and returns the number of rows it affected.
    /// Never cached.
    pub async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64> {
        let inner = &self.inner;
        let parsed = inner.parse(sql).await?;
        inner.settings.policy.check_execute(&parsed)?;
        let sql = parsed.text();
        let timeout = inner.timeout();
        let mut conn = inner.pool.get().await?;
        // Read before the transaction: a value the server refuses must not abort it.
        let read = crate::pg::params::read_for_statement(&conn, sql, params, timeout).await?;
        let params: &[Value] = &read;
        let tx = inner.begin(&mut conn, false, false).await?;
        // An INSERT ... SELECT reads tables too: the allow-list holds here as for queries.
        inner.check_tables(tx.client(), sql, params).await?;
        let statement = tx
            .prepare(sql)
            .await
            .map_err(|e| Error::from_pg(sql, e, timeout))?;
        let encoded = encode_params(statement.params(), params)?;
        let n = tx
            .execute_raw(&statement, encoded.iter())
            .await
            .map_err(|e| Error::from_pg(sql, e, timeout))?;
        tx.commit()
            .await
            .map_err(|e| Error::from_pg(sql, e, timeout))?;
        Ok(n)
    }

    /// Fails unless this handle's login role may be given to plugins: not a superuser, no
    /// BYPASSRLS, REPLICATION or CREATEROLE, no member of the predefined roles that read or
    /// write server files, run programs, signal backends or read all data (see
    /// [`crate::pg::role`]), unless the policy says `unsafe_allow_privileged_role`. Asks the
    /// server once per handle; an error while asking fails (closed).
    pub async fn check_plugin_role(&self) -> Result<()> {
        let inner = &self.inner;
        if inner.settings.policy.unsafe_allow_privileged_role {
            return Ok(());
        }
        inner
            .role_checked
            .get_or_try_init(|| async {
                let conn = inner.pool.get().await?;
                crate::pg::role::check_unprivileged(&conn).await
            })
            .await
            .map(|_| ())
    }

    /// Removes the entries whose name or query contains `pattern` (all when `None`) and
    /// returns how many. Only entries pgcache created are touched.
    pub async fn clear_cache(&self, pattern: Option<&str>) -> Result<usize> {
        let inner = &self.inner;
        let mut removed = 0;
        for name in inner.store.entries()? {
            let matches = match pattern {
                None => true,
                Some(p) if name.contains(p) => true,
                Some(p) => inner
                    .store
                    .current(&name)
                    .ok()
                    .flatten()
                    .and_then(|(_, dir)| Manifest::read(&dir, &name).ok())
                    .is_some_and(|m| m.query.contains(p)),
            };
            if !matches {
                continue;
            }
            // Wait for a refresh in progress, so it cannot resurrect the entry.
            let primary = &name[..name.len().min(6 + crate::cache::key::NAME_HEX)];
            let mut lock = inner.locks.lock(primary).await;
            lock.lock_files(
                &inner.store.lock_path(primary),
                inner.settings.cache.lock_timeout,
            )
            .await?;
            inner.store.remove(&name)?;
            removed += 1;
        }
        Ok(removed)
    }

    /// The origin's four figures (`total_files`, `total_size_mb`, `total_records`,
    /// `cache_dir`) and per-entry details.
    pub async fn cache_stats(&self) -> Result<CacheStats> {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || stats::collect(&store))
            .await
            .map_err(|e| Error::CacheIo {
                action: "reading",
                path: "stats".into(),
                source: std::io::Error::other(e),
            })?
    }
}
