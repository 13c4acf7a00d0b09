//! One layer of settings (a file, the environment, flags) with every field optional, and how
//! layers are laid over each other.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{
    ConnectionSettings, DEFAULT_CONFIG_FILE, Password, PluginSettings, RefreshSchedule,
    ServeSettings, Settings, TenantSettings,
};
use crate::error::{Error, Result};

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
    /// `[serve]` fields set by this layer.
    pub serve: ServeSettings,
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
    serve: ServeSettings,
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
        layer.serve = file.serve;
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
    pub(super) fn over(self, base: &mut Settings) {
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
        base.serve.overlay(self.serve);
        base.refresh.extend(self.refresh);
        base.source = self.source.or(base.source.take());
    }
}
