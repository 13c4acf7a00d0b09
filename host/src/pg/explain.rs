//! Asking the planner about a query without running it: which relations it reads (for the
//! table allow-list) and how many rows it expects (for splitting a large first load).

use tokio_postgres::Client;

use super::fetch::{Raw, first_row};
use crate::error::{Error, Result};
use crate::pg::value::Value;

/// The plan of `query` with `params`, as `EXPLAIN ({options}, FORMAT JSON)` gives it (e.g.
/// `options` = `"VERBOSE"` to get each scan's schema). Errors name `query`. A plan the server
/// sends in an unexpected shape is `null`: use this for estimates only, and
/// [`plan_json_text`] where a plan that cannot be read must deny.
pub(crate) async fn plan(
    client: &Client,
    query: &str,
    params: &[Value],
    options: &str,
) -> Result<serde_json::Value> {
    let text = plan_json_text(client, query, params, options).await?;
    Ok(serde_json::from_slice(&text).unwrap_or_default())
}

/// The plan's JSON text, exactly as the server sent it (empty when it sent no row).
pub(crate) async fn plan_json_text(
    client: &Client,
    query: &str,
    params: &[Value],
    options: &str,
) -> Result<Vec<u8>> {
    let options = if options.is_empty() {
        "FORMAT JSON".to_owned()
    } else {
        format!("{options}, FORMAT JSON")
    };
    let sql = format!("EXPLAIN ({options}) {query}");
    let Some(row) = first_row(client, &sql, params, query).await? else {
        return Ok(Vec::new());
    };
    // The plan comes as `json`, whose binary form is its text.
    let Raw(plan) = row.try_get(0).map_err(|e| Error::from_pg(query, e, None))?;
    Ok(plan.unwrap_or_default().to_vec())
}

/// Every (schema, relation) the plan of `query` reads or changes, asked of the server with
/// `EXPLAIN (VERBOSE, FORMAT JSON)`, so views count by the tables they read. Fails closed: a
/// plan that cannot be had or read is [`Error::Denied`] (database errors and timeouts stay
/// what they are).
pub(crate) async fn relations_read(
    client: &Client,
    query: &str,
    params: &[Value],
) -> Result<Vec<(String, String)>> {
    let denied = |why: String| {
        Error::Denied(format!(
            "cannot check the tables this statement reads: {why}"
        ))
    };
    let plan = match plan_json_text(client, query, params, "VERBOSE").await {
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
    Ok(relations)
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
