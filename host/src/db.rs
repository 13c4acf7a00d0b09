//! [`Db`]: the handle users hold. It owns the connection pool and the cache directory and
//! offers the origin module's capabilities: [`Db::query`], [`Db::incremental_query`],
//! [`Db::execute`], [`Db::clear_cache`] and [`Db::cache_stats`].

use std::sync::Arc;
use std::time::Duration;

use crate::cache::entry::{self, Slot};
use crate::cache::generation::NewGeneration;
use crate::cache::key::{CacheKey, KeyMode};
use crate::cache::lock::Locks;
use crate::cache::manifest::{ColumnMeta, Identity, Manifest, Mode};
use crate::cache::part::PartFormat;
use crate::cache::stats::{self, CacheStats};
use crate::cache::store::Store;
use crate::cache::writer::{self, Quota, WritePlan, Written};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::incremental::order::Lookback;
use crate::pg::fetch::{Described, FetchLimits, Fetcher, Wrap, wrapped_sql};
use crate::pg::pool::PgPool;
use crate::pg::types::ColumnKind;
use crate::progress::Progress;
use crate::result::{Origin, ResultSet};
use crate::sql::Statement;
use crate::value::{Value, encode_params};

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
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub settings: Settings,
    pub pool: PgPool,
    pub store: Store,
    pub locks: Locks,
    /// Where results come from (server, port, database, role, search_path): part of every
    /// cache key.
    pub scope: crate::scope::Scope,
    /// Set once the login role was found free of privileges plugins must not have.
    pub role_checked: tokio::sync::OnceCell<()>,
    /// The database's `server_encoding`, asked once (see [`Described::check_text_order`]).
    pub server_encoding: tokio::sync::OnceCell<String>,
    /// Hits, misses and rows fetched.
    pub counters: crate::counters::Counters,
    /// Decoded columns kept between reads (`cache.hot_bytes`).
    pub hot: Option<crate::cache::HotColumns>,
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

/// Options of [`Db::incremental_query`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IncrementalOptions {
    /// Use the cache (default). When false, fetch everything, ordered, and store nothing.
    pub use_cache: bool,
    /// Re-read this window below the stored maximum on every refresh, for rows that arrive
    /// late by design (devices uploading buffered positions).
    pub lookback: Option<Lookback>,
    /// Counters to update while rows arrive.
    pub progress: Option<Arc<Progress>>,
    /// Most rows (of the whole result) and bytes (of the rows fetched) allowed.
    pub limits: FetchLimits,
    /// xmin mode: the ordering column is the table's key, and refreshes read the rows inserted
    /// *or updated* since the last one, by transaction id. The query must be over one table
    /// and select its `xmin` column (`SELECT xmin, * FROM t`); `xmin` is not in the result.
    pub xmin: bool,
}

impl Default for IncrementalOptions {
    fn default() -> Self {
        IncrementalOptions {
            use_cache: true,
            lookback: None,
            progress: None,
            limits: FetchLimits::default(),
            xmin: false,
        }
    }
}

impl IncrementalOptions {
    /// Bypass the cache.
    pub fn no_cache(mut self) -> Self {
        self.use_cache = false;
        self
    }

    /// Caps the rows of the result and the bytes fetched.
    pub fn limits(mut self, limits: FetchLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Switch to xmin mode (see [`IncrementalOptions::xmin`]).
    pub fn xmin(mut self) -> Self {
        self.xmin = true;
        self
    }

    /// Re-read a window below the maximum on every refresh.
    pub fn lookback(mut self, lookback: Lookback) -> Self {
        self.lookback = Some(lookback);
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
        let pool = PgPool::new(&settings)?;
        let store = Store::open(&settings.cache.dir)?;
        let c = &settings.connection;
        let configured = format!(
            "host={:?} port={} dbname={:?} user={:?}",
            c.host(),
            c.port(),
            c.dbname(),
            c.user()
        );
        let scope = crate::scope::Scope::new(configured, &settings.cache.dir);
        let settings_hot = settings.cache.hot_bytes;
        Ok(Db {
            inner: Arc::new(Inner {
                settings,
                pool,
                store,
                locks: Locks::default(),
                scope,
                role_checked: tokio::sync::OnceCell::new(),
                server_encoding: tokio::sync::OnceCell::new(),
                counters: Default::default(),
                hot: (settings_hot > 0).then(|| crate::cache::HotColumns::new(settings_hot)),
            }),
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
                    None,
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
        inner
            .settings
            .policy
            .check_tables(tx.client(), sql, params)
            .await?;
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

impl Inner {
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

    /// Refuses a statement whose result is not a set that only grows (see
    /// [`Statement::check_incremental`]); asks the server whether the functions of its
    /// select lists are aggregates. Fails closed: an error while asking refuses.
    pub async fn check_incremental(&self, statement: &Statement) -> Result<()> {
        let names = statement.check_incremental()?;
        if names.is_empty() {
            return Ok(());
        }
        const SQL: &str = "SELECT coalesce(array_agg(DISTINCT proname::text ORDER BY proname::text), '{}') \
            FROM pg_catalog.pg_proc WHERE proname = ANY($1) AND prokind IN ('a', 'w')";
        let conn = self.pool.get().await?;
        let aggregates: Vec<String> = conn
            .query_one(SQL, &[&names])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(|e| Error::from_pg(SQL, e, None))?;
        if let Some(name) = aggregates.first() {
            return Err(Error::InvalidQuery(format!(
                "an incremental query cannot use an aggregate ({name}): its result is not a set \
                 of rows that only grows, so rows past the watermark would not be the new rows; \
                 cache it as a simple query, or aggregate the result"
            )));
        }
        Ok(())
    }

    /// Fails when the cache holds, or would hold with `adding` more bytes, more than the
    /// policy's quota.
    pub fn check_quota(&self, adding: u64) -> Result<()> {
        let Some(quota) = self.settings.policy.cache_quota else {
            return Ok(());
        };
        let used = self.cache_bytes()?;
        if used + adding > quota || (adding == 0 && used >= quota) {
            return Err(Self::over_quota(quota));
        }
        Ok(())
    }

    /// The room a new generation's writer has under the policy's quota, counting the bytes
    /// `replacing` (the generation it replaces) would give back; fails when the cache is full.
    /// [`Inner::publish`] checks the exact figure again; this lets a result that cannot fit
    /// stop while it streams.
    pub fn write_quota(&self, replacing: Option<(&str, u64)>) -> Result<Option<Quota>> {
        let Some(limit) = self.settings.policy.cache_quota else {
            return Ok(None);
        };
        let used = self.cache_bytes()?;
        if used >= limit {
            return Err(Self::over_quota(limit));
        }
        let freed = replacing
            .and_then(|(name, g)| Manifest::read(&self.store.gen_dir(name, g), name).ok())
            .map_or(0, |m| m.bytes());
        Ok(Some(Quota {
            room: limit - used + freed,
            limit,
        }))
    }

    fn cache_bytes(&self) -> Result<u64> {
        Ok(stats::collect(&self.store)?
            .entries
            .iter()
            .map(|e| e.bytes)
            .sum())
    }

    fn over_quota(limit: u64) -> Error {
        Error::LimitExceeded {
            what: "cache quota (bytes)",
            limit,
        }
    }

    /// Describes `query` for a cached result and holds it to the policy's table allow-list.
    /// Every path that runs a caller's query describes it through here or
    /// [`Inner::describe_uncached`], so none can skip the check.
    pub async fn describe(
        &self,
        fetcher: &Fetcher<'_>,
        query: &str,
        params: &[Value],
    ) -> Result<Described> {
        let mut described = fetcher.describe(query).await?;
        // A result to be cached: distinct column names, and the encoding text orders by.
        described.check_unique_names()?;
        if described.columns.iter().any(|c| c.kind == ColumnKind::Text) {
            let encoding = self
                .server_encoding
                .get_or_try_init(|| async {
                    let row = fetcher
                        .client
                        .query_one("SELECT current_setting('server_encoding')", &[])
                        .await
                        .map_err(|e| Error::from_pg("SHOW server_encoding", e, None))?;
                    row.try_get::<_, String>(0)
                        .map_err(|e| Error::from_pg("SHOW server_encoding", e, None))
                })
                .await?;
            described.server_encoding = Some(encoding.clone());
        }
        self.settings
            .policy
            .check_tables(fetcher.client, query, params)
            .await?;
        Ok(described)
    }

    /// [`Inner::describe`] for a result that is not cached: its column names may repeat.
    pub async fn describe_uncached(
        &self,
        fetcher: &Fetcher<'_>,
        query: &str,
        params: &[Value],
    ) -> Result<Described> {
        let described = fetcher.describe(query).await?;
        self.settings
            .policy
            .check_tables(fetcher.client, query, params)
            .await?;
        Ok(described)
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

    /// Serves `key` from the cache if a sound, fresh entry exists.
    pub fn try_hit(
        &self,
        key: &CacheKey,
        max_age: Option<Duration>,
        limits: FetchLimits,
    ) -> Result<Option<ResultSet>> {
        let Slot::Found {
            name,
            dir,
            manifest,
            ..
        } = entry::find(&self.store, key)?
        else {
            return Ok(None);
        };
        if let Some(max_age) = max_age {
            let age_micros = now_micros().saturating_sub(manifest.refreshed);
            if age_micros > i64::try_from(max_age.as_micros()).unwrap_or(i64::MAX) {
                return Ok(None);
            }
        }
        let parts = match entry::open_parts(&dir, &manifest) {
            Ok(parts) => parts,
            Err(Error::CacheCorrupt { reason, .. }) => {
                tracing::warn!(entry = %name, %reason, "damaged cache entry; refetching");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        if let Some(limit) = limits.max_rows.filter(|l| manifest.rows() > *l) {
            return Err(Error::LimitExceeded {
                what: "rows per result",
                limit,
            });
        }
        entry::record_hit(&self.store, &name);
        let schema = parts
            .first()
            .map(|p| p.schema())
            .unwrap_or_else(|| empty_schema(&manifest));
        Ok(Some(ResultSet::from_parts(
            schema,
            parts,
            Origin::Hit,
            &name,
        )))
    }

    /// Fetches into memory, bypassing the cache; ordered by `order` (a column index) if given.
    pub async fn fetch_to_memory(
        &self,
        query: &str,
        params: &[Value],
        order: Option<&str>,
        progress: Option<&Progress>,
        limits: FetchLimits,
    ) -> Result<ResultSet> {
        let mut conn = self.pool.get().await?;
        let tx = self
            .begin(&mut conn, false, self.settings.policy.read_only_queries)
            .await?;
        let fetcher = self.fetcher(tx.client(), progress, limits);
        let described = self.describe_uncached(&fetcher, query, params).await?;
        let wrap = match order {
            Some(column) => {
                let spec = crate::incremental::refresh::order_spec(&described, column)?;
                Wrap {
                    filter: None,
                    order_by: Some(crate::incremental::refresh::order_by(&described, &spec)),
                    omit: None,
                }
            }
            None => Wrap::default(),
        };
        let sql = wrapped_sql(query, &described.columns, &wrap);
        let mut batches = Vec::new();
        fetcher
            .fetch(&sql, params, &described, &mut batches)
            .await?;
        tx.commit()
            .await
            .map_err(|e| Error::from_pg("COMMIT", e, None))?;
        Ok(ResultSet::from_memory(
            described.schema.clone(),
            batches,
            Origin::Uncached,
        ))
    }

    /// Fetches `query` and stores it as a new generation of the simple entry in `slot`.
    async fn store_simple(
        &self,
        query: &str,
        params: &[Value],
        key: &CacheKey,
        slot: Slot,
        progress: Option<&Progress>,
        limits: FetchLimits,
    ) -> Result<ResultSet> {
        let quota = self.write_quota(slot.generation().map(|g| (slot.name(), g)))?;
        let mut conn = self.pool.get().await?;
        let tx = self
            .begin(&mut conn, false, self.settings.policy.read_only_queries)
            .await?;
        let fetcher = self.fetcher(tx.client(), progress, limits);
        let described = self.describe(&fetcher, query, params).await?;
        let sql = wrapped_sql(query, &described.columns, &Wrap::default());
        let name = slot.name().to_owned();
        let previous = slot.generation();
        let created = match &slot {
            Slot::Found { manifest, .. } => Some(manifest.created),
            _ => None,
        };
        let generation = NewGeneration::create(&self.store, &name, previous.map_or(1, |g| g + 1))?;
        let plan = WritePlan {
            dir: generation.dir.clone(),
            first_seq: 1,
            format: PartFormat::new(&described.schema, key.hex(), query, None),
            order: None,
            cuts: Vec::new(),
            separate_last_run: false,
            part_rows: self.settings.cache.part_rows as u64,
            ensure_part: true,
            quota,
        };
        let written = fetch_into(&fetcher, &sql, params, &described, plan).await?;
        tx.commit()
            .await
            .map_err(|e| Error::from_pg("COMMIT", e, None))?;
        drop(conn);
        let id = Identity {
            key: key.hex(),
            name: &name,
            query,
            params,
            mode: Mode::Simple,
        };
        let columns = ColumnMeta::of(&described.schema);
        let manifest = Manifest::new(
            id,
            columns,
            written.parts,
            generation.generation,
            written.next_seq,
            created,
        );
        self.publish(
            generation,
            &manifest,
            previous,
            described.schema.clone(),
            Origin::Stored,
        )
    }

    /// Writes the manifest, commits the generation and opens the result from it.
    pub fn publish(
        &self,
        generation: NewGeneration,
        manifest: &Manifest,
        previous: Option<u64>,
        schema: arrow::datatypes::SchemaRef,
        origin: Origin,
    ) -> Result<ResultSet> {
        let replaced = previous
            .and_then(|g| {
                Manifest::read(&self.store.gen_dir(&manifest.name, g), &manifest.name).ok()
            })
            .map_or(0, |m| m.bytes());
        self.check_quota(manifest.bytes().saturating_sub(replaced))?;
        manifest.write(&generation.dir)?;
        // Open the parts before publishing: the handles keep them readable whatever happens next.
        let parts = entry::open_parts(&generation.dir, manifest)?;
        generation.commit(previous)?;
        Ok(ResultSet::from_parts(schema, parts, origin, &manifest.name))
    }
}

/// Streams a fetch into a writer thread; the writer's error wins, since it explains why the
/// fetch could not hand rows over.
pub(crate) async fn fetch_into(
    fetcher: &Fetcher<'_>,
    sql: &str,
    params: &[Value],
    described: &Described,
    plan: WritePlan,
) -> Result<Written> {
    let (mut sink, handle) = writer::spawn(plan)?;
    let fetched = fetcher.fetch(sql, params, described, &mut sink).await;
    drop(sink);
    let written = handle.finish().await;
    match (fetched, written) {
        (Ok(_), Ok(w)) => Ok(w),
        (Err(e), Ok(_)) => Err(e),
        (_, Err(e)) => Err(e),
    }
}

/// The schema of an entry without parts (never written by pgcache, which keeps one part).
fn empty_schema(_: &Manifest) -> arrow::datatypes::SchemaRef {
    Arc::new(arrow::datatypes::Schema::empty())
}

/// Now, in Unix microseconds.
pub(crate) fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
