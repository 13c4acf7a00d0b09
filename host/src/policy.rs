//! What every statement a [`crate::Db`] runs on someone else's behalf is held to: queries in
//! READ ONLY transactions, a statement timeout, an allow-list of the tables queries may read,
//! `execute` limited to data changes, and a cache quota. pgcache applies it to the plugins it
//! runs; a tenant's settings choose the values.

use std::time::Duration;

use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::sql::Statement;
use crate::value::Value;

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

    /// Refuses a query whose plan reads a table outside the allow-list.
    pub(crate) async fn check_tables(
        &self,
        client: &Client,
        query: &str,
        params: &[Value],
    ) -> Result<()> {
        let Some(allowed) = &self.allow_tables else {
            return Ok(());
        };
        // Fail closed: a plan that cannot be had or read allows nothing.
        let denied = |why: String| {
            Error::Denied(format!(
                "cannot check the tables this statement reads: {why}"
            ))
        };
        let plan = match crate::pg::explain::plan_json_text(client, query, params, "VERBOSE").await
        {
            Ok(plan) => plan,
            Err(e @ (Error::Db(_) | Error::StatementTimeout { .. } | Error::Connection { .. })) => {
                return Err(e);
            }
            Err(e) => return Err(denied(e.to_string())),
        };
        let plan: serde_json::Value = serde_json::from_slice(&plan)
            .map_err(|e| denied(format!("the plan could not be read ({e})")))?;
        if plan.pointer("/0/Plan").is_none() {
            return Err(denied("the server sent no plan".into()));
        }
        let mut relations = Vec::new();
        collect_relations(&plan, &mut relations);
        for (schema, table) in relations {
            let qualified = format!("{schema}.{table}");
            if !allowed.iter().any(|a| *a == schema || *a == qualified) {
                return Err(Error::Denied(format!(
                    "this query reads {qualified}, which is not in the allowed tables"
                )));
            }
        }
        Ok(())
    }
}

/// Every (schema, relation) an EXPLAIN (VERBOSE, FORMAT JSON) plan scans or changes.
fn collect_relations(v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::Object(map) => {
                let rel = map.get("Relation Name").and_then(|v| v.as_str());
                let schema = map.get("Schema").and_then(|v| v.as_str());
                if let (Some(rel), Some(schema)) = (rel, schema) {
                    out.push((schema.to_owned(), rel.to_owned()));
                }
                stack.extend(map.values().rev());
            }
            serde_json::Value::Array(items) => stack.extend(items.iter().rev()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_name_their_relations() {
        let plan: serde_json::Value = serde_json::json!([{"Plan": {"Node Type": "Hash Join", "Plans": [
            {"Node Type": "Seq Scan", "Relation Name": "eventos", "Schema": "public"},
            {"Node Type": "Index Scan", "Relation Name": "devices", "Schema": "fleet"}]}}]);
        let mut out = Vec::new();
        collect_relations(&plan, &mut out);
        assert_eq!(
            out,
            [
                ("public".into(), "eventos".into()),
                ("fleet".into(), "devices".into())
            ]
        );
    }
}
