//! Asking the planner about a query without running it: which relations it reads (for the
//! table allow-list) and how many rows it expects (for splitting a large first load).

use tokio_postgres::Client;

use super::fetch::{Raw, first_row};
use crate::error::{Error, Result};
use crate::value::Value;

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
