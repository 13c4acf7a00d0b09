//! Asking the planner about a query without running it: which relations it reads (for the
//! table allow-list) and how many rows it expects (for splitting a large first load).

use tokio_postgres::Client;

use super::fetch::{Raw, first_row};
use crate::error::{Error, Result};
use crate::value::Value;

/// The plan of `query` with `params`, as `EXPLAIN ({options}, FORMAT JSON)` gives it (e.g.
/// `options` = `"VERBOSE"` to get each scan's schema). Errors name `query`. A plan the server
/// sends in an unexpected shape is `null`.
pub(crate) async fn plan(
    client: &Client,
    query: &str,
    params: &[Value],
    options: &str,
) -> Result<serde_json::Value> {
    let options = if options.is_empty() {
        "FORMAT JSON".to_owned()
    } else {
        format!("{options}, FORMAT JSON")
    };
    let sql = format!("EXPLAIN ({options}) {query}");
    let Some(row) = first_row(client, &sql, params, query).await? else {
        return Ok(serde_json::Value::Null);
    };
    // The plan comes as `json`, whose binary form is its text.
    let Raw(plan) = row.try_get(0).map_err(|e| Error::from_pg(query, e, None))?;
    Ok(serde_json::from_slice(plan.unwrap_or_default()).unwrap_or_default())
}
