//! Settings: defaults < `pgcache.toml` < environment < command-line flags.
//!
//! Every layer is a [`SettingsLayer`] whose fields are all optional; [`Settings::resolve`] lays
//! them over the defaults in rising priority. The environment is read through a function so
//! callers (and tests) choose what it is, instead of mutating the process environment.
//!
//! ```
//! use pgcache::config::{Settings, SettingsLayer};
//!
//! let file = SettingsLayer::from_toml_str(
//!     "[database]\nurl = \"postgres://app@db.example:6432/tracking\"\n[pool]\nmax_size = 4\n",
//!     "pgcache.toml",
//! )?;
//! let env = SettingsLayer::from_env(|name| (name == "PGUSER").then(|| "analyst".to_owned()))?;
//! let settings = Settings::resolve([file, env]);
//! assert_eq!(settings.connection.host(), "db.example");
//! assert_eq!(settings.connection.port(), 6432);
//! assert_eq!(settings.connection.user(), "analyst");
//! assert_eq!(settings.pool.max_size, 4);
//! # Ok::<(), pgcache::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

mod plugins;
mod schedule;

pub use plugins::PluginSettings;
pub use schedule::RefreshSchedule;

/// Name of the settings file looked up in the working directory when none is given.
pub const DEFAULT_CONFIG_FILE: &str = "pgcache.toml";

/// The resolved settings of a pgcache instance.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Settings {
    /// Where and as whom to connect.
    pub connection: ConnectionSettings,
    /// Connection pool sizes and timeouts.
    pub pool: PoolSettings,
    /// The cache directory and its tuning.
    pub cache: CacheSettings,
    /// What statements run on others' behalf are held to (plugins, tenants).
    pub policy: crate::Policy,
    /// Tenants by name, from the settings file.
    pub tenants: BTreeMap<String, TenantSettings>,
    /// How plugins run when no tenant is named (`[plugins]`).
    pub plugins: PluginSettings,
    /// Background refreshes of `pgcache serve` (`[[refresh]]`).
    pub refresh: Vec<RefreshSchedule>,
    /// The settings file these came from, for messages.
    pub source: Option<String>,
}

/// Where and as whom to connect. Unset fields take libpq's defaults.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ConnectionSettings {
    /// Host name, IP address, or a Unix socket directory (starting with `/`).
    pub host: Option<String>,
    /// TCP port.
    pub port: Option<u16>,
    /// Role to connect as.
    pub user: Option<String>,
    /// Password, if the server asks for one.
    pub password: Option<Password>,
    /// Database name.
    pub dbname: Option<String>,
}

impl ConnectionSettings {
    /// The host to connect to (`localhost` when unset).
    pub fn host(&self) -> &str {
        self.host.as_deref().unwrap_or("localhost")
    }

    /// The port to connect to (5432 when unset).
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(5432)
    }

    /// The role to connect as (the operating-system user, or `postgres`, when unset).
    pub fn user(&self) -> String {
        self.user
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "postgres".to_owned())
    }

    /// The database name (the user name when unset, as libpq does).
    pub fn dbname(&self) -> String {
        self.dbname.clone().unwrap_or_else(|| self.user())
    }

    /// Applies the fields of a `postgres://` URL or a libpq key=value string.
    fn apply_url(&mut self, url: &str, origin: &str) -> Result<()> {
        let parsed = tokio_postgres::Config::from_str(url).map_err(|e| Error::Config {
            origin: Some(origin.to_owned()),
            // The URL may hold a password: report the parser's reason only.
            message: format!("invalid database URL: {e}"),
        })?;
        if let Some(host) = parsed.get_hosts().first() {
            self.host = Some(match host {
                tokio_postgres::config::Host::Tcp(h) => h.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
            });
        }
        // The parser fills in 5432 for a URL host without a port; only an explicit port
        // should override a lower layer (PGPORT, the settings file).
        if let Some(port) = parsed.get_ports().first().filter(|_| states_port(url)) {
            self.port = Some(*port);
        }
        if let Some(user) = parsed.get_user() {
            self.user = Some(user.to_owned());
        }
        if let Some(password) = parsed.get_password() {
            self.password = Some(Password(String::from_utf8_lossy(password).into_owned()));
        }
        if let Some(dbname) = parsed.get_dbname() {
            self.dbname = Some(dbname.to_owned());
        }
        Ok(())
    }
}

/// The fields of a login of its own, as `[tenants.NAME]` and `[plugins]` give them.
struct OwnLogin<'a> {
    database_url: Option<&'a str>,
    role: Option<&'a str>,
    password: Option<&'a str>,
    /// The settings key, for messages (`tenants.acme`, `plugins`).
    key: &'a str,
    /// Whose role, for messages (`the tenant's`).
    whose: &'a str,
}

/// Whether a connection string names a port: `host:port` in a URL, `port=` in key=value form.
fn states_port(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return url
            .split_whitespace()
            .any(|kv| kv.trim_start().starts_with("port="));
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let first = hosts.split(',').next().unwrap_or("");
    let after_bracket = first.rsplit_once(']').map_or(first, |(_, tail)| tail);
    after_bracket.contains(':') || url.contains("port=")
}

/// A password: kept out of `Debug` output, logs and errors.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Connection pool sizes and timeouts.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PoolSettings {
    /// Connections opened at start and kept (default 1).
    pub min_size: usize,
    /// Most connections open at once (default 8).
    pub max_size: usize,
    /// How long opening one connection may take (default 10 s).
    pub connect_timeout: Duration,
    /// How long a caller waits for a free connection (default 30 s).
    pub wait_timeout: Duration,
    /// `statement_timeout` set on every connection; `None` keeps the server's (default none).
    pub statement_timeout: Option<Duration>,
    /// Reset each connection's session state (`RESET ALL`, `SET SESSION AUTHORIZATION
    /// DEFAULT` ...) before reusing it, so nothing one caller set reaches the next (tenants).
    pub reset_sessions: bool,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            min_size: 1,
            max_size: 8,
            connect_timeout: Duration::from_secs(10),
            wait_timeout: Duration::from_secs(30),
            statement_timeout: None,
            reset_sessions: false,
        }
    }
}

/// The cache directory and its tuning.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CacheSettings {
    /// The cache directory (default `.cache`, as the origin's).
    pub dir: PathBuf,
    /// How long a refresh waits for another process's refresh of the same entry (default 120 s).
    pub lock_timeout: Duration,
    /// Small parts of an incremental entry that trigger a compaction (default 16).
    pub compact_after_parts: usize,
    /// Rows per Arrow record batch read from the database (default 65 536).
    pub batch_rows: usize,
    /// Rows per Parquet part written by a full load (default 1 048 576).
    pub part_rows: usize,
    /// Connections a large first load of an incremental entry is split over, by ranges of the
    /// ordering column, all reading one exported snapshot (default 1: one stream).
    pub parallel_fetch: usize,
    /// Estimated rows from which a first load is split (default 1 000 000).
    pub parallel_min_rows: u64,
    /// Bytes of decoded columns of cached results kept in memory between reads (default 0:
    /// none; `pgcache serve` gives each tenant its `hot_mib`).
    pub hot_bytes: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            dir: PathBuf::from(".cache"),
            lock_timeout: Duration::from_secs(120),
            compact_after_parts: 16,
            batch_rows: 65_536,
            part_rows: 1 << 20,
            parallel_fetch: 1,
            parallel_min_rows: 1_000_000,
            hot_bytes: 0,
        }
    }
}

/// A tenant: its own database login, cache namespace, rights and limits. Declared in the
/// settings file as `[tenants.NAME]`; `pgcache run --tenant NAME` applies it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TenantSettings {
    /// The tenant's own database URL, naming its own role (exclusive with `role`).
    #[serde(default)]
    pub database_url: Option<String>,
    /// A role to log in as, at the global host, port and database (exclusive with
    /// `database_url`). pgcache logs in as it: no `SET ROLE` a query could undo.
    #[serde(default)]
    pub role: Option<String>,
    /// The password of `role`, if the server asks for one.
    #[serde(default)]
    pub password: Option<String>,
    /// The tenant's cache directory (default `<cache.dir>/tenants/<name>`).
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// Operations its plugins may call (default: query, incremental-query, cache-stats).
    #[serde(default = "default_operations")]
    pub operations: Vec<Operation>,
    /// Tables (`schema.table`) and schemas (`schema`) its queries may read; all when unset.
    #[serde(default)]
    pub allow_tables: Option<Vec<String>>,
    /// Its limits.
    #[serde(default)]
    pub limits: TenantLimits,
    /// SHA-256 (hex) of the API tokens that act as this tenant on `pgcache serve`
    /// (`pgcache token` makes a token and its hash); never the tokens themselves.
    #[serde(default)]
    pub tokens_sha256: Vec<String>,
}

/// An operation of the `pgcache:db/database` interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Operation {
    /// `query`.
    Query,
    /// `incremental-query`.
    IncrementalQuery,
    /// `execute` (INSERT, UPDATE, DELETE, MERGE).
    Execute,
    /// `cache-clear`.
    CacheClear,
    /// `cache-stats`.
    CacheStats,
}

fn default_operations() -> Vec<Operation> {
    vec![
        Operation::Query,
        Operation::IncrementalQuery,
        Operation::CacheStats,
    ]
}

/// A tenant's limits, in the units people write them in.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct TenantLimits {
    /// Linear memory of a plugin, MiB (default 256).
    pub memory_mib: u64,
    /// Time in plugin code, seconds (default 60).
    pub cpu_seconds: f64,
    /// Wall-clock time of a run, seconds (default 300).
    pub wall_seconds: f64,
    /// Statement timeout of every statement, seconds (default 30).
    pub statement_timeout_seconds: f64,
    /// Rows per result (default 10 000 000).
    pub max_rows: u64,
    /// Bytes per result (default 4 GiB).
    pub max_bytes: u64,
    /// Results open at once (default 64).
    pub max_open_results: usize,
    /// Calls to the database interface per run (default 1 000 000).
    pub max_host_calls: u64,
    /// Size of the tenant's cache, MiB (default 1024).
    pub cache_quota_mib: u64,
    /// Runs and queries of this tenant `pgcache serve` works on at once (default 4).
    pub max_concurrent: usize,
    /// Requests that may wait for one of those slots; past it, 429 (default 16).
    pub max_queued: usize,
    /// Decoded columns of its cached results `pgcache serve` keeps in memory, MiB (default 256).
    pub hot_mib: u64,
}

impl Default for TenantLimits {
    /// The limits of any plugin run ([`crate::wasm::Limits`], [`crate::Policy::for_plugins`]),
    /// and a 1 GiB cache.
    fn default() -> Self {
        let run = crate::wasm::Limits::default();
        let policy = crate::Policy::for_plugins();
        TenantLimits {
            memory_mib: (run.max_memory >> 20) as u64,
            cpu_seconds: run.cpu_time.as_secs_f64(),
            wall_seconds: run.wall_time.as_secs_f64(),
            statement_timeout_seconds: policy.statement_timeout.map_or(0.0, |t| t.as_secs_f64()),
            max_rows: run.results.max_rows,
            max_bytes: run.results.max_bytes,
            max_open_results: run.results.max_open_results,
            max_host_calls: run.results.max_host_calls,
            cache_quota_mib: 1024,
            max_concurrent: 4,
            max_queued: 16,
            hot_mib: 256,
        }
    }
}

/// One layer of settings: every field optional, laid over lower layers by [`Settings::resolve`].
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct SettingsLayer {
    /// Connection fields set by this layer (a URL's fields included).
    pub connection: ConnectionSettings,
    /// `pool.min_size`.
    pub pool_min_size: Option<usize>,
    /// `pool.max_size`.
    pub pool_max_size: Option<usize>,
    /// `pool.connect_timeout`.
    pub connect_timeout: Option<Duration>,
    /// `pool.wait_timeout`.
    pub wait_timeout: Option<Duration>,
    /// `pool.statement_timeout`; `Some(None)` turns it off.
    pub statement_timeout: Option<Option<Duration>>,
    /// `cache.dir`.
    pub cache_dir: Option<PathBuf>,
    /// `cache.lock_timeout`.
    pub lock_timeout: Option<Duration>,
    /// `cache.compact_after_parts`.
    pub compact_after_parts: Option<usize>,
    /// `cache.batch_rows`.
    pub batch_rows: Option<usize>,
    /// `cache.part_rows`.
    pub part_rows: Option<usize>,
    /// `cache.parallel_fetch`.
    pub parallel_fetch: Option<usize>,
    /// `cache.parallel_min_rows`.
    pub parallel_min_rows: Option<u64>,
    /// Tenants declared by this layer.
    pub tenants: BTreeMap<String, TenantSettings>,
    /// `[plugins]` fields set by this layer.
    pub plugins: PluginSettings,
    /// `[[refresh]]` schedules of this layer.
    pub refresh: Vec<RefreshSchedule>,
    /// The file this layer was read from.
    pub source: Option<String>,
}

/// The shape of `pgcache.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    #[serde(default)]
    database: FileDatabase,
    #[serde(default)]
    pool: FilePool,
    #[serde(default)]
    cache: FileCache,
    #[serde(default)]
    tenants: BTreeMap<String, TenantSettings>,
    #[serde(default)]
    plugins: PluginSettings,
    #[serde(default)]
    refresh: Vec<RefreshSchedule>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDatabase {
    url: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    password: Option<String>,
    dbname: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePool {
    min_size: Option<usize>,
    max_size: Option<usize>,
    /// Seconds.
    connect_timeout: Option<f64>,
    /// Seconds.
    wait_timeout: Option<f64>,
    /// Seconds; 0 turns the timeout off.
    statement_timeout: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCache {
    dir: Option<PathBuf>,
    /// Seconds.
    lock_timeout: Option<f64>,
    compact_after_parts: Option<usize>,
    batch_rows: Option<usize>,
    part_rows: Option<usize>,
    parallel_fetch: Option<usize>,
    parallel_min_rows: Option<u64>,
}

impl SettingsLayer {
    /// Reads a settings file. A missing file is an error; see [`SettingsLayer::from_default_file`].
    pub fn from_file(path: &Path) -> Result<SettingsLayer> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            origin: Some(path.display().to_string()),
            message: format!("cannot read the file: {e}"),
        })?;
        SettingsLayer::from_toml_str(&text, &path.display().to_string())
    }

    /// Reads `pgcache.toml` from the working directory when it exists.
    pub fn from_default_file() -> Result<SettingsLayer> {
        let path = Path::new(DEFAULT_CONFIG_FILE);
        if path.exists() {
            SettingsLayer::from_file(path)
        } else {
            Ok(SettingsLayer::default())
        }
    }

    /// Parses settings in TOML; `origin` names the source in errors, which also give the line
    /// and the key.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<SettingsLayer> {
        let file: FileSettings = toml::from_str(text).map_err(|e| {
            let location = e
                .span()
                .map(|span| {
                    let line = text[..span.start].matches('\n').count() + 1;
                    format!("{origin}, line {line}")
                })
                .unwrap_or_else(|| origin.to_owned());
            Error::Config {
                origin: Some(location),
                message: e.message().to_owned(),
            }
        })?;
        let mut layer = SettingsLayer::default();
        if let Some(url) = &file.database.url {
            layer
                .connection
                .apply_url(url, &format!("{origin}: database.url"))?;
        }
        let db = file.database;
        layer.connection.host = db.host.or(layer.connection.host);
        layer.connection.port = db.port.or(layer.connection.port);
        layer.connection.user = db.user.or(layer.connection.user);
        layer.connection.password = db.password.map(Password).or(layer.connection.password);
        layer.connection.dbname = db.dbname.or(layer.connection.dbname);
        let seconds = |v: Option<f64>, key: &str| -> Result<Option<Duration>> {
            v.map(|s| {
                Duration::try_from_secs_f64(s).map_err(|_| Error::Config {
                    origin: Some(origin.to_owned()),
                    message: format!("{key} must be a non-negative number of seconds, not {s}"),
                })
            })
            .transpose()
        };
        layer.pool_min_size = file.pool.min_size;
        layer.pool_max_size = file.pool.max_size;
        layer.connect_timeout = seconds(file.pool.connect_timeout, "pool.connect_timeout")?;
        layer.wait_timeout = seconds(file.pool.wait_timeout, "pool.wait_timeout")?;
        layer.statement_timeout = seconds(file.pool.statement_timeout, "pool.statement_timeout")?
            .map(|d| (!d.is_zero()).then_some(d));
        layer.cache_dir = file.cache.dir;
        layer.lock_timeout = seconds(file.cache.lock_timeout, "cache.lock_timeout")?;
        layer.compact_after_parts = file.cache.compact_after_parts;
        layer.batch_rows = file.cache.batch_rows;
        layer.part_rows = file.cache.part_rows;
        layer.parallel_fetch = file.cache.parallel_fetch;
        layer.parallel_min_rows = file.cache.parallel_min_rows;
        layer.tenants = file.tenants;
        layer.plugins = file.plugins;
        layer.refresh = file.refresh;
        layer.source = Some(origin.to_owned());
        Ok(layer)
    }

    /// Reads `DATABASE_URL`, the libpq variables `PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE`,
    /// and `PGCACHE_DIR` through `var`. `DATABASE_URL` wins over the `PG*` variables for the
    /// fields it sets.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<SettingsLayer> {
        let mut layer = SettingsLayer::default();
        let c = &mut layer.connection;
        c.host = var("PGHOST");
        c.port = var("PGPORT")
            .map(|p| {
                p.parse().map_err(|_| Error::Config {
                    origin: Some("environment variable PGPORT".into()),
                    message: format!("{p:?} is not a port number"),
                })
            })
            .transpose()?;
        c.user = var("PGUSER");
        c.password = var("PGPASSWORD").map(Password);
        c.dbname = var("PGDATABASE");
        if let Some(url) = var("DATABASE_URL").filter(|u| !u.is_empty()) {
            c.apply_url(&url, "environment variable DATABASE_URL")?;
        }
        layer.cache_dir = var("PGCACHE_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from);
        layer.plugins.role = var("PGCACHE_PLUGIN_ROLE").filter(|r| !r.is_empty());
        Ok(layer)
    }

    /// A layer that only sets the database URL (the `--database-url` flag).
    pub fn from_url(url: &str, origin: &str) -> Result<SettingsLayer> {
        let mut layer = SettingsLayer::default();
        layer.connection.apply_url(url, origin)?;
        Ok(layer)
    }

    /// Lays `self` over `base`: every field `self` sets wins.
    fn over(self, base: &mut Settings) {
        let c = self.connection;
        let b = &mut base.connection;
        b.host = c.host.or(b.host.take());
        b.port = c.port.or(b.port);
        b.user = c.user.or(b.user.take());
        b.password = c.password.or(b.password.take());
        b.dbname = c.dbname.or(b.dbname.take());
        let p = &mut base.pool;
        p.min_size = self.pool_min_size.unwrap_or(p.min_size);
        p.max_size = self.pool_max_size.unwrap_or(p.max_size);
        p.connect_timeout = self.connect_timeout.unwrap_or(p.connect_timeout);
        p.wait_timeout = self.wait_timeout.unwrap_or(p.wait_timeout);
        p.statement_timeout = self.statement_timeout.unwrap_or(p.statement_timeout);
        let k = &mut base.cache;
        k.dir = self.cache_dir.unwrap_or(std::mem::take(&mut k.dir));
        k.lock_timeout = self.lock_timeout.unwrap_or(k.lock_timeout);
        k.compact_after_parts = self.compact_after_parts.unwrap_or(k.compact_after_parts);
        k.batch_rows = self.batch_rows.unwrap_or(k.batch_rows);
        k.part_rows = self.part_rows.unwrap_or(k.part_rows);
        k.parallel_fetch = self.parallel_fetch.unwrap_or(k.parallel_fetch).max(1);
        k.parallel_min_rows = self.parallel_min_rows.unwrap_or(k.parallel_min_rows);
        base.tenants.extend(self.tenants);
        base.plugins.overlay(self.plugins);
        base.refresh.extend(self.refresh);
        base.source = self.source.or(base.source.take());
    }
}

impl Settings {
    /// Lays the layers over the defaults, lowest priority first.
    pub fn resolve(layers: impl IntoIterator<Item = SettingsLayer>) -> Settings {
        let mut settings = Settings::default();
        for layer in layers {
            layer.over(&mut settings);
        }
        settings.pool.max_size = settings.pool.max_size.max(1);
        settings.pool.min_size = settings.pool.min_size.min(settings.pool.max_size);
        settings.cache.batch_rows = settings.cache.batch_rows.max(1);
        settings.cache.part_rows = settings.cache.part_rows.max(settings.cache.batch_rows);
        settings.cache.compact_after_parts = settings.cache.compact_after_parts.max(2);
        settings
    }

    /// The usual resolution: defaults < `config` (or `./pgcache.toml` when it exists) < the
    /// process environment.
    pub fn load(config: Option<&Path>) -> Result<Settings> {
        let file = match config {
            Some(path) => SettingsLayer::from_file(path)?,
            None => SettingsLayer::from_default_file()?,
        };
        let env = SettingsLayer::from_env(|k| std::env::var(k).ok())?;
        Ok(Settings::resolve([file, env]))
    }

    /// Settings for the database at `url`, everything else default.
    pub fn from_url(url: &str) -> Result<Settings> {
        Ok(Settings::resolve([SettingsLayer::from_url(
            url,
            "database URL",
        )?]))
    }

    /// The settings a tenant's plugins run with: the tenant's own login, its cache directory,
    /// and the policy its limits make (read-only queries, statement timeout, allowed tables,
    /// data changes only through `execute`, cache quota).
    pub fn for_tenant(&self, name: &str) -> Result<Settings> {
        let origin = self.source.clone();
        let Some(t) = self.tenants.get(name) else {
            let known: Vec<&str> = self.tenants.keys().map(String::as_str).collect();
            let message = if known.is_empty() {
                format!("no tenant {name:?}: no tenants are declared")
            } else {
                format!("no tenant {name:?}; the tenants are: {}", known.join(", "))
            };
            return Err(Error::Config { origin, message });
        };
        let bad = |m: &str| Error::Config {
            origin: origin.clone(),
            message: format!("tenants.{name}: {m}"),
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(bad("a tenant name is letters, digits, '_' and '-' only"));
        }
        let mut settings = self.clone();
        settings.tenants = BTreeMap::new();
        let login = OwnLogin {
            database_url: t.database_url.as_deref(),
            role: t.role.as_deref(),
            password: t.password.as_deref(),
            key: &format!("tenants.{name}"),
            whose: "the tenant's",
        };
        match self.own_login(&login, &bad)? {
            Some(c) => settings.connection = c,
            None => {
                return Err(bad(
                    "needs database_url or role: a tenant never uses the global login",
                ));
            }
        }
        settings.cache.dir = self.tenant_dir(name, t);
        for (other, o) in &self.tenants {
            let theirs = self.tenant_dir(other, o);
            if other != name
                && (theirs.starts_with(&settings.cache.dir)
                    || settings.cache.dir.starts_with(&theirs))
            {
                return Err(bad(&format!(
                    "its cache directory overlaps tenant {other}'s"
                )));
            }
        }
        let l = &t.limits;
        let seconds = |v: f64, key: &str| {
            Duration::try_from_secs_f64(v).map_err(|_| {
                bad(&format!(
                    "limits.{key} must be a non-negative number of seconds"
                ))
            })
        };
        settings.pool.reset_sessions = true;
        settings.cache.hot_bytes = l.hot_mib << 20;
        settings.policy = crate::Policy {
            statement_timeout: Some(seconds(
                l.statement_timeout_seconds,
                "statement_timeout_seconds",
            )?),
            allow_tables: t.allow_tables.clone(),
            cache_quota: Some(l.cache_quota_mib << 20),
            deny_functions: self.plugins.deny_functions.clone(),
            ..crate::Policy::for_plugins()
        };
        seconds(l.cpu_seconds, "cpu_seconds")?;
        seconds(l.wall_seconds, "wall_seconds")?;
        Ok(settings)
    }

    /// The settings plugins run with when no tenant is named: the plugins' own login
    /// (`[plugins]`), read-only queries, a statement timeout, data changes only through a
    /// granted `execute`, refused side effects, connections cleaned between uses. Without a
    /// plugin login this is an error saying how to make one, unless
    /// `unsafe_allow_privileged_role` is set.
    pub fn for_plugins(&self) -> Result<Settings> {
        let p = &self.plugins;
        let bad = |m: &str| Error::Config {
            origin: self.source.clone(),
            message: format!("plugins: {m}"),
        };
        let mut settings = self.clone();
        settings.tenants = BTreeMap::new();
        let login = OwnLogin {
            database_url: p.database_url.as_deref(),
            role: p.role.as_deref(),
            password: p.password.as_deref(),
            key: "plugins",
            whose: "the plugins'",
        };
        match self.own_login(&login, &bad)? {
            Some(c) => settings.connection = c,
            None if p.unsafe_allow_privileged_role => {}
            None => {
                return Err(bad(
                    "plugins need a database role of their own, never the global login: \
                     CREATE ROLE pgcache_plugin LOGIN; GRANT SELECT ON <tables> TO pgcache_plugin; \
                     then set [plugins] role = \"pgcache_plugin\" in pgcache.toml or \
                     PGCACHE_PLUGIN_ROLE=pgcache_plugin (or run with --tenant)",
                ));
            }
        }
        settings.pool.reset_sessions = true;
        settings.policy = crate::Policy {
            deny_functions: p.deny_functions.clone(),
            unsafe_allow_privileged_role: p.unsafe_allow_privileged_role,
            ..crate::Policy::for_plugins()
        };
        Ok(settings)
    }

    /// The connection of a login of its own (a tenant's, the plugins'): a `database_url`
    /// naming its role (host, port and database default to the global ones), or a `role` at
    /// the global host, port and database. `None` when neither is set.
    fn own_login(
        &self,
        login: &OwnLogin<'_>,
        bad: &dyn Fn(&str) -> Error,
    ) -> Result<Option<ConnectionSettings>> {
        match (login.database_url, login.role) {
            (Some(url), None) => {
                let mut c = ConnectionSettings::default();
                c.apply_url(url, &format!("{}.database_url", login.key))?;
                if c.user.is_none() {
                    return Err(bad(&format!(
                        "database_url must name {} own role",
                        login.whose
                    )));
                }
                c.host = c.host.or_else(|| self.connection.host.clone());
                c.port = c.port.or(self.connection.port);
                c.dbname = c.dbname.or_else(|| self.connection.dbname.clone());
                Ok(Some(c))
            }
            (None, Some(role)) => {
                let mut c = self.connection.clone();
                c.user = Some(role.to_owned());
                c.password = login.password.map(|p| Password(p.to_owned()));
                Ok(Some(c))
            }
            (Some(_), Some(_)) => Err(bad("set database_url or role, not both")),
            (None, None) => Ok(None),
        }
    }

    fn tenant_dir(&self, name: &str, t: &TenantSettings) -> PathBuf {
        t.cache_dir
            .clone()
            .unwrap_or_else(|| self.cache.dir.join("tenants").join(name))
    }

    /// Returns these settings with the cache in `dir`.
    pub fn with_cache_dir(mut self, dir: impl Into<PathBuf>) -> Settings {
        self.cache.dir = dir.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn layers_rise_in_priority() {
        let file = SettingsLayer::from_toml_str(
            "[database]\nhost = \"filehost\"\nport = 1111\nuser = \"fileuser\"\n[cache]\ndir = \"/f\"\n[pool]\nstatement_timeout = 2.5\n",
            "f.toml",
        )
        .unwrap();
        let e = SettingsLayer::from_env(env(&[("PGPORT", "2222"), ("PGCACHE_DIR", "/e")])).unwrap();
        let flags =
            SettingsLayer::from_url("postgres://flaguser@flaghost", "--database-url").unwrap();
        let s = Settings::resolve([file, e, flags]);
        assert_eq!(s.connection.host(), "flaghost");
        assert_eq!(s.connection.port(), 2222);
        assert_eq!(s.connection.user(), "flaguser");
        assert_eq!(s.cache.dir, PathBuf::from("/e"));
        assert_eq!(s.pool.statement_timeout, Some(Duration::from_millis(2500)));
    }

    #[test]
    fn database_url_beats_pg_variables() {
        let e = SettingsLayer::from_env(env(&[
            ("PGHOST", "pghost"),
            ("PGUSER", "pguser"),
            ("DATABASE_URL", "postgres://urluser:secret@urlhost:7777/db"),
        ]))
        .unwrap();
        let s = Settings::resolve([e]);
        assert_eq!(s.connection.host(), "urlhost");
        assert_eq!(s.connection.user(), "urluser");
        assert_eq!(s.connection.dbname(), "db");
        assert_eq!(s.connection.password, Some(Password("secret".into())));
        assert!(!format!("{s:?}").contains("secret"));
    }

    #[test]
    fn bad_file_names_the_line_and_key() {
        let err =
            SettingsLayer::from_toml_str("[pool]\nmax_size = 3\nmax_sise = 4\n", "pgcache.toml")
                .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("pgcache.toml, line 3"), "{text}");
        assert!(text.contains("max_sise"), "{text}");
    }

    #[test]
    fn tenants_get_their_own_login_directory_and_policy() {
        let file = SettingsLayer::from_toml_str(
            "[database]\nurl = \"postgres://admin:adminpw@db:5432/app\"\n\
             [tenants.acme]\nrole = \"acme\"\noperations = [\"query\"]\nallow_tables = [\"public.eventos\"]\n\
             [tenants.acme.limits]\ncache_quota_mib = 5\n\
             [tenants.beta]\ndatabase_url = \"postgres://beta@otherdb/app\"\n",
            "pgcache.toml",
        )
        .unwrap();
        let s = Settings::resolve([file]);
        let acme = s.for_tenant("acme").unwrap();
        assert_eq!(
            (acme.connection.user(), acme.connection.host()),
            ("acme".to_owned(), "db")
        );
        assert_eq!(acme.connection.password, None, "never the global password");
        assert_eq!(acme.cache.dir, PathBuf::from(".cache/tenants/acme"));
        assert_eq!(acme.policy.cache_quota, Some(5 << 20));
        assert!(acme.policy.read_only_queries && acme.pool.reset_sessions);
        let beta = s.for_tenant("beta").unwrap();
        assert_eq!(
            (beta.connection.user(), beta.connection.host()),
            ("beta".to_owned(), "otherdb")
        );
        let err = s.for_tenant("gamma").unwrap_err().to_string();
        assert!(
            err.contains("pgcache.toml") && err.contains("the tenants are: acme, beta"),
            "{err}"
        );
    }

    #[test]
    fn tenant_mistakes_name_the_file_line_and_key() {
        let err = SettingsLayer::from_toml_str(
            "[tenants.acme]\nrole = \"a\"\n[tenants.acme.limits]\nmemory_mb = 3\n",
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("t.toml, line 4") && err.contains("memory_mb"),
            "{err}"
        );
        let err = SettingsLayer::from_toml_str(
            "[tenants.acme]\nrole = \"a\"\noperations = [\"drop\"]\n",
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 3") && err.contains("drop"), "{err}");
        let s = Settings::resolve([SettingsLayer::from_toml_str(
            "[tenants.x]\ncache_dir = \"/c\"\n",
            "t.toml",
        )
        .unwrap()]);
        assert!(
            s.for_tenant("x")
                .unwrap_err()
                .to_string()
                .contains("needs database_url or role")
        );
    }

    #[test]
    fn bad_port_is_named() {
        let err = SettingsLayer::from_env(env(&[("PGPORT", "x")])).unwrap_err();
        assert!(err.to_string().contains("PGPORT"));
    }

    #[test]
    fn bad_url_does_not_echo_the_password() {
        let err = SettingsLayer::from_url("postgres://u:hunter2@h:notaport/db", "--database-url")
            .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
