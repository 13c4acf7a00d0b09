//! What every statement a [`crate::Db`] runs on someone else's behalf is held to: queries in
//! READ ONLY transactions, a statement timeout, an allow-list of the tables queries may read,
//! `execute` limited to data changes, and a cache quota. pgcache applies it to the plugins it
//! runs; a tenant's settings choose the values.

use std::time::Duration;

use tokio_postgres::Client;

use crate::error::{Error, Result};
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
        }
    }

    /// The statements that open every transaction under this policy.
    pub(crate) fn transaction_settings(&self) -> Option<String> {
        self.statement_timeout
            .map(|t| format!("SET LOCAL statement_timeout = '{}ms'", t.as_millis().max(1)))
    }

    /// Refuses a statement `execute` may not run under this policy.
    pub(crate) fn check_execute(&self, sql: &str) -> Result<()> {
        if !self.dml_only {
            return Ok(());
        }
        let normalised = crate::cache::normalise_query(sql)?;
        let first = normalised
            .split(|c: char| !c.is_ascii_alphabetic())
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match first.as_str() {
            "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "WITH" => Ok(()),
            _ => Err(Error::Denied(format!(
                "execute runs INSERT, UPDATE, DELETE and MERGE only, not {}",
                if first.is_empty() {
                    "this statement".to_owned()
                } else {
                    first
                }
            ))),
        }
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
        let plan = crate::pg::explain::plan(client, query, params, "VERBOSE").await?;
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

/// Every (schema, relation) an EXPLAIN (VERBOSE, FORMAT JSON) plan scans.
fn collect_relations(v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(map) => {
            let rel = map.get("Relation Name").and_then(|v| v.as_str());
            let schema = map.get("Schema").and_then(|v| v.as_str());
            if let (Some(rel), Some(schema)) = (rel, schema) {
                out.push((schema.to_owned(), rel.to_owned()));
            }
            for child in map.values() {
                collect_relations(child, out);
            }
        }
        serde_json::Value::Array(items) => {
            for child in items {
                collect_relations(child, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execute_takes_data_changes_only() {
        let p = Policy::for_plugins();
        for ok in [
            "INSERT INTO t VALUES (1)",
            "  update t set a = 1",
            "/* c */ DELETE FROM t",
            "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x",
        ] {
            assert!(p.check_execute(ok).is_ok(), "{ok}");
        }
        for bad in [
            "DROP TABLE t",
            "SET ROLE postgres",
            "COPY t TO PROGRAM 'x'",
            "SELECT 1",
            "-- x\nTRUNCATE t",
            "ALTER ROLE x SUPERUSER",
        ] {
            let err = p.check_execute(bad).unwrap_err().to_string();
            assert!(
                err.contains("INSERT, UPDATE, DELETE and MERGE only"),
                "{bad}: {err}"
            );
        }
        assert!(Policy::default().check_execute("DROP TABLE t").is_ok());
    }

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
