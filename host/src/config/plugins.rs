//! `[plugins]`: the database login plugins run as when no tenant is named, functions they may
//! not call, and the loudly named way to run them as a privileged role anyway.

use serde::Deserialize;

/// The `[plugins]` table of `pgcache.toml` (and `PGCACHE_PLUGIN_ROLE`).
///
/// ```toml
/// [plugins]
/// role = "pgcache_plugin"            # or: database_url = "postgres://pgcache_plugin@db/app"
/// deny_functions = ["my_audit_*"]    # refused on top of the built-in list
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PluginSettings {
    /// A role to log in as, at the global host, port and database.
    pub role: Option<String>,
    /// The password of `role`, if the server asks for one.
    pub password: Option<String>,
    /// A database URL of the plugins' own, naming their role (exclusive with `role`).
    pub database_url: Option<String>,
    /// Function names refused on top of the built-in list (`name` or `prefix*`); they hold
    /// for tenants too.
    #[serde(default)]
    pub deny_functions: Vec<String>,
    /// Run plugins as the global login even when it is a superuser or holds other privileges
    /// plugins must not have. Everything a plugin does then runs with those privileges.
    #[serde(default)]
    pub unsafe_allow_privileged_role: bool,
}

impl PluginSettings {
    /// Lays `top` over `self`: every field `top` sets wins; function lists add up.
    pub(crate) fn overlay(&mut self, top: PluginSettings) {
        if top.role.is_some() || top.database_url.is_some() {
            self.role = top.role;
            self.password = top.password;
            self.database_url = top.database_url;
        }
        self.deny_functions.extend(top.deny_functions);
        self.unsafe_allow_privileged_role |= top.unsafe_allow_privileged_role;
    }
}
