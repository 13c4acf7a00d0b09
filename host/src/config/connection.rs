//! Where and as whom to connect: the connection fields, a password kept out of output, and
//! the login of its own a tenant or the plugins get.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

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
    pub(super) fn apply_url(&mut self, url: &str, origin: &str) -> Result<()> {
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
pub(super) struct OwnLogin<'a> {
    pub database_url: Option<&'a str>,
    pub role: Option<&'a str>,
    pub password: Option<&'a str>,
    /// The settings key, for messages (`tenants.acme`, `plugins`).
    pub key: &'a str,
    /// Whose role, for messages (`the tenant's`).
    pub whose: &'a str,
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
