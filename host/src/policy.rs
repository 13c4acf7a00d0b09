//! What every statement a [`crate::Db`] runs on someone else's behalf is held to: queries in
//! READ ONLY transactions, a statement timeout, an allow-list of the tables queries may read,
//! `execute` limited to data changes, and a cache quota. pgcache applies it to the plugins it
//! runs; a tenant's settings choose the values.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::sql::Statement;

/// Rules for the statements of a [`crate::Db`]. The default restricts nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Policy {
    /// Run queries (and refreshes) in READ ONLY transactions.
    pub read_only_queries: bool,
    /// `SET LOCAL statement_timeout` in every transaction, whatever the session says.
    pub statement_timeout: Option<Duration>,
    /// Tables (`schema.table`) and schemas (`schema`) queries may read; `None` allows all.
    /// Checked on the query's plan, so views count by the tables they read; functions that
    /// read tables by themselves are not seen (the database role is the real boundary).
    pub allow_tables: Option<Vec<String>>,
    /// `execute` runs only INSERT, UPDATE, DELETE, MERGE (and WITH ... of those).
    pub dml_only: bool,
    /// Most bytes the cache directory may hold; a refresh that would pass it fails.
    pub cache_quota: Option<u64>,
    /// Refuse calls of functions whose effects outlive the transaction or reach past the
    /// database ([`crate::sql::functions::DENIED_FUNCTIONS`], plus `deny_functions`).
    pub refuse_side_effects: bool,
    /// More function names to refuse (`name`, or `prefix*`).
    pub deny_functions: Vec<String>,
    /// Let plugins run as a privileged role (superuser, BYPASSRLS, REPLICATION, CREATEROLE,
    /// members of `pg_read_server_files` and the like). Off: such a role is refused before a
    /// plugin reaches the database ([`crate::pg::role::PRIVILEGED_ROLES`]).
    pub unsafe_allow_privileged_role: bool,
}

impl Policy {
    /// The policy pgcache holds plugins to by default: read-only queries, a 30 s statement
    /// timeout, data changes only through `execute` (when granted at all).
    pub fn for_plugins() -> Policy {
        Policy {
            read_only_queries: true,
            statement_timeout: Some(Duration::from_secs(30)),
            allow_tables: None,
            dml_only: true,
            cache_quota: None,
            refuse_side_effects: true,
            deny_functions: Vec::new(),
            unsafe_allow_privileged_role: false,
        }
    }

    /// The statements that open every transaction under this policy.
    pub(crate) fn transaction_settings(&self) -> Option<String> {
        self.statement_timeout
            .map(|t| format!("SET LOCAL statement_timeout = '{}ms'", t.as_millis().max(1)))
    }

    /// Refuses a statement `query` may not run under this policy: anything but one read-only
    /// SELECT (for everyone), and refused functions (for plugins and tenants).
    pub(crate) fn check_query(&self, statement: &Statement) -> Result<()> {
        statement.check_query()?;
        if self.refuse_side_effects {
            statement.check_functions(&self.deny_functions)?;
        }
        Ok(())
    }

    /// Refuses a statement `execute` may not run under this policy.
    pub(crate) fn check_execute(&self, statement: &Statement) -> Result<()> {
        statement.check_execute(self.dml_only)?;
        if self.refuse_side_effects {
            statement.check_functions(&self.deny_functions)?;
        }
        Ok(())
    }

    /// Refuses reading any of `relations` (schema, table) outside the allow-list.
    pub(crate) fn check_relations(&self, relations: &[(String, String)]) -> Result<()> {
        let Some(allowed) = &self.allow_tables else {
            return Ok(());
        };
        for (schema, table) in relations {
            let qualified = format!("{schema}.{table}");
            if !allowed.iter().any(|a| a == schema || *a == qualified) {
                return Err(Error::Denied(format!(
                    "this query reads {qualified}, which is not in the allowed tables"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowed_schemas_and_tables_pass() {
        let policy = Policy {
            allow_tables: Some(vec!["fleet".into(), "public.eventos".into()]),
            ..Policy::default()
        };
        let rel = |s: &str, t: &str| vec![(s.to_owned(), t.to_owned())];
        policy.check_relations(&rel("public", "eventos")).unwrap();
        policy.check_relations(&rel("fleet", "devices")).unwrap();
        assert!(policy.check_relations(&rel("public", "secret")).is_err());
        Policy::default()
            .check_relations(&rel("public", "secret"))
            .unwrap();
    }
}
