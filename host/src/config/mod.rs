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
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

mod connection;
mod layer;
mod limits;
mod plugins;
mod schedule;
mod serve;
mod tenant;

use connection::OwnLogin;
pub use connection::{ConnectionSettings, Password};
pub use layer::SettingsLayer;
pub use limits::{Capabilities, Limits, ResultLimits};
pub use plugins::PluginSettings;
pub use schedule::RefreshSchedule;
pub use serve::ServeSettings;
pub use tenant::{Operation, TenantLimits, TenantSettings};

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
    /// `pgcache serve`'s own settings (`[serve]`).
    pub serve: ServeSettings,
    /// The settings file these came from, for messages.
    pub source: Option<String>,
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
        // Checked here, so a tenant with limits that do not read never runs.
        l.run_limits().map_err(|m| bad(&m))?;
        settings.pool.reset_sessions = true;
        settings.cache.hot_bytes = l.hot_mib << 20;
        settings.policy = crate::Policy {
            statement_timeout: Some(l.statement_timeout().map_err(|m| bad(&m))?),
            allow_tables: t.allow_tables.clone(),
            cache_quota: Some(l.cache_quota_mib << 20),
            deny_functions: self.plugins.deny_functions.clone(),
            ..crate::Policy::for_plugins()
        };
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
