//! [`Engine`]: one [`pgcache::Db`] (pool, cache directory, settings) as a Python object. The
//! Python class `pgcache.Db` wraps it with keyword arguments, DataFrames and progress bars.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use pgcache::config::{Password, Settings, SettingsLayer};
use pgcache::{Db, IncrementalOptions, Lookback, Progress, QueryOptions, Value};
use pyo3::prelude::*;

use crate::errors::to_py;
use crate::params::to_values;
use crate::result::QueryResult;
use crate::runtime::{Report, run};

/// A connection pool and a cache directory. Safe to share between threads: calls run with the
/// GIL released and share the pool and the cache.
#[pyclass(frozen, module = "pgcache._pgcache")]
pub struct Engine {
    /// `None` once closed.
    db: RwLock<Option<Db>>,
    /// The cache directory, for messages after closing.
    cache_dir: PathBuf,
}

impl Engine {
    /// The handle, or `pgcache.errors.InterfaceError` when closed.
    fn db(&self, py: Python<'_>) -> PyResult<Db> {
        let db = self
            .db
            .read()
            .map_err(|_| interface(py, "the Db lock is poisoned"))?;
        db.clone()
            .ok_or_else(|| interface(py, "the Db is closed; make a new one"))
    }
}

/// A `pgcache.errors.InterfaceError` with `message`.
fn interface(py: Python<'_>, message: &str) -> PyErr {
    match py
        .import("pgcache.errors")
        .and_then(|m| m.getattr("InterfaceError"))
        .and_then(|c| c.call1((message,)))
    {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}

/// `sql` and its values: with parameters, psycopg2's `%s` become `$n` (see
/// `pgcache::sql::placeholders`); without, the statement stays as written, as in psycopg2.
fn prepare(
    py: Python<'_>,
    sql: &str,
    params: Option<&Bound<'_, PyAny>>,
) -> PyResult<(String, Vec<Value>)> {
    match params.filter(|p| !p.is_none()) {
        None => Ok((sql.to_owned(), Vec::new())),
        Some(params) => {
            let values = to_values(py, params)?;
            let sql = pgcache::sql::placeholders::numbered(sql).map_err(|e| to_py(py, e))?;
            Ok((sql.into_owned(), values))
        }
    }
}

/// Progress reporting to `callback`, when given.
fn report(callback: Option<Py<PyAny>>) -> Option<Report> {
    callback.map(|callback| Report {
        progress: Arc::new(Progress::default()),
        callback,
    })
}

#[pymethods]
impl Engine {
    /// Settings rise in priority: defaults < `config` (or `./pgcache.toml`) < the environment
    /// (`DATABASE_URL`, `PG*`, `PGCACHE_DIR`) < `url` < the keyword arguments. Opens
    /// `min_conn` connections unless `connect` is false.
    #[new]
    #[pyo3(signature = (url=None, *, host=None, port=None, dbname=None, user=None, password=None,
        min_conn=None, max_conn=None, cache_dir=None, config=None, statement_timeout=None,
        connect=true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        url: Option<String>,
        host: Option<String>,
        port: Option<u16>,
        dbname: Option<String>,
        user: Option<String>,
        password: Option<String>,
        min_conn: Option<usize>,
        max_conn: Option<usize>,
        cache_dir: Option<PathBuf>,
        config: Option<PathBuf>,
        statement_timeout: Option<f64>,
        connect: bool,
    ) -> PyResult<Engine> {
        let layers = (|| -> pgcache::Result<Vec<SettingsLayer>> {
            let mut layers = vec![match &config {
                Some(path) => SettingsLayer::from_file(path)?,
                None => SettingsLayer::from_default_file()?,
            }];
            layers.push(SettingsLayer::from_env(|name| std::env::var(name).ok())?);
            if let Some(url) = &url {
                layers.push(SettingsLayer::from_url(url, "the url argument")?);
            }
            Ok(layers)
        })()
        .map_err(|e| to_py(py, e))?;
        let mut args = SettingsLayer::default();
        args.connection.host = host;
        args.connection.port = port;
        args.connection.dbname = dbname;
        args.connection.user = user;
        args.connection.password = password.map(Password);
        args.pool_min_size = min_conn;
        args.pool_max_size = max_conn;
        args.cache_dir = cache_dir;
        if let Some(secs) = statement_timeout {
            let timeout = Duration::try_from_secs_f64(secs)
                .map_err(|_| interface(py, "statement_timeout must be seconds, 0 or more"))?;
            args.statement_timeout = Some((!timeout.is_zero()).then_some(timeout));
        }
        let settings = Settings::resolve(layers.into_iter().chain([args]));
        let cache_dir = settings.cache.dir.clone();
        let db = if connect {
            run(py, None, Db::connect(settings))?
        } else {
            Db::connect_lazy(settings).map_err(|e| to_py(py, e))?
        };
        Ok(Engine {
            db: RwLock::new(Some(db)),
            cache_dir,
        })
    }

    /// A query through the simple cache (see `pgcache.Db.query`).
    #[pyo3(signature = (sql, params=None, *, use_cache=true, max_age=None, progress=None))]
    fn query(
        &self,
        py: Python<'_>,
        sql: &str,
        params: Option<&Bound<'_, PyAny>>,
        use_cache: bool,
        max_age: Option<f64>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<QueryResult> {
        let db = self.db(py)?;
        let (sql, values) = prepare(py, sql, params)?;
        let mut options = QueryOptions::default();
        if !use_cache {
            options = options.no_cache();
        }
        if let Some(secs) = max_age {
            let age = Duration::try_from_secs_f64(secs)
                .map_err(|_| interface(py, "max_age must be seconds, 0 or more"))?;
            options = options.max_age(age);
        }
        let report = report(progress);
        if let Some(r) = &report {
            options = options.progress(r.progress.clone());
        }
        let result = run(py, report.as_ref(), async move {
            db.query(&sql, &values, &options).await
        })?;
        Ok(QueryResult::new(result))
    }

    /// An incremental query ordered by `order_column` (see `pgcache.Db.incremental_query`).
    #[pyo3(signature = (sql, order_column, params=None, *, use_cache=true, lookback=None,
        xmin=false, progress=None))]
    #[allow(clippy::too_many_arguments)]
    fn incremental_query(
        &self,
        py: Python<'_>,
        sql: &str,
        order_column: String,
        params: Option<&Bound<'_, PyAny>>,
        use_cache: bool,
        lookback: Option<&Bound<'_, PyAny>>,
        xmin: bool,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<QueryResult> {
        let db = self.db(py)?;
        let (sql, values) = prepare(py, sql, params)?;
        let mut options = IncrementalOptions::default();
        if !use_cache {
            options = options.no_cache();
        }
        if xmin {
            options = options.xmin();
        }
        if let Some(window) = lookback.filter(|l| !l.is_none()) {
            options = options.lookback(lookback_of(py, window)?);
        }
        let report = report(progress);
        if let Some(r) = &report {
            options = options.progress(r.progress.clone());
        }
        let result = run(py, report.as_ref(), async move {
            db.incremental_query(&sql, &values, &order_column, &options)
                .await
        })?;
        Ok(QueryResult::new(result))
    }

    /// Runs one INSERT, UPDATE, DELETE or MERGE and returns the rows it affected.
    #[pyo3(signature = (sql, params=None))]
    fn execute(
        &self,
        py: Python<'_>,
        sql: &str,
        params: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let db = self.db(py)?;
        let (sql, values) = prepare(py, sql, params)?;
        run(py, None, async move { db.execute(&sql, &values).await })
    }

    /// Removes the entries whose name or query contains `pattern` (all when `None`); returns
    /// how many.
    #[pyo3(signature = (pattern=None))]
    fn clear_cache(&self, py: Python<'_>, pattern: Option<String>) -> PyResult<usize> {
        let db = self.db(py)?;
        run(
            py,
            None,
            async move { db.clear_cache(pattern.as_deref()).await },
        )
    }

    /// The cache statistics as JSON: `total_files`, `total_size_mb`, `total_records`,
    /// `cache_dir` and `entries`.
    fn cache_stats_json(&self, py: Python<'_>) -> PyResult<String> {
        let db = self.db(py)?;
        let stats = run(py, None, async move { db.cache_stats().await })?;
        serde_json::to_string(&stats)
            .map_err(|e| interface(py, &format!("cannot serialise the statistics: {e}")))
    }

    /// Closes the pool: connections close once calls still running finish. Idempotent.
    fn close(&self) {
        if let Ok(mut db) = self.db.write() {
            db.take();
        }
    }

    /// Whether [`Engine::close`] was called.
    #[getter]
    fn closed(&self) -> bool {
        self.db.read().map_or(true, |db| db.is_none())
    }

    /// The cache directory.
    #[getter]
    fn cache_dir(&self) -> PathBuf {
        self.cache_dir.clone()
    }
}

/// A lookback: a `timedelta` for time columns, an `int` for numbers.
fn lookback_of(py: Python<'_>, window: &Bound<'_, PyAny>) -> PyResult<Lookback> {
    if let Ok(n) = window.extract::<i64>() {
        return Ok(Lookback::Amount(n));
    }
    let timedelta = py.import("datetime")?.getattr("timedelta")?;
    if window.is_instance(&timedelta)? {
        let days: i64 = window.getattr("days")?.extract()?;
        let seconds: i64 = window.getattr("seconds")?.extract()?;
        let micros: i64 = window.getattr("microseconds")?.extract()?;
        return Ok(Lookback::Micros(
            days * 86_400_000_000 + seconds * 1_000_000 + micros,
        ));
    }
    Err(interface(
        py,
        "lookback must be a datetime.timedelta (time columns) or an int (numbers)",
    ))
}
