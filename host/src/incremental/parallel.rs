//! Parallel full loads: the rows of a large first load are split into ranges of the ordering
//! column and fetched over several connections at once, each with its own Parquet writer.
//! All connections read one snapshot — the first connection exports it
//! (`pg_export_snapshot()`) and the others adopt it (`SET TRANSACTION SNAPSHOT`) — so the
//! result is exactly what one connection would have read. The ranges are disjoint and
//! ascending, so their parts simply follow each other.

use futures_util::future::try_join_all;
use tokio_postgres::Client;

use crate::cache::writer::{OrderSpec, WritePlan, Written};
use crate::engine::{Engine, fetch_into};
use crate::error::{Error, Result};
use crate::pg::fetch::{Described, Fetcher, Wrap, first_row, positional, wrapped_sql};
use crate::pg::order::OrderValue;
use crate::pg::predicate::Predicate;
use crate::pg::types::ColumnKind;
use crate::pg::value::Value;

/// Part numbers reserved for each range, so parts of different ranges never share a name.
const SEQ_STRIDE: u64 = 1 << 32;

/// How the ordering column's values are counted, for splitting them into ranges.
#[derive(Clone, Copy)]
enum Scale {
    Int,
    Micros { utc: bool },
    Days,
}

impl Scale {
    fn of(kind: &ColumnKind) -> Option<Scale> {
        Some(match kind {
            ColumnKind::Int2 | ColumnKind::Int4 | ColumnKind::Int8 => Scale::Int,
            ColumnKind::Timestamp => Scale::Micros { utc: false },
            ColumnKind::TimestampTz => Scale::Micros { utc: true },
            ColumnKind::Date => Scale::Days,
            _ => return None,
        })
    }

    /// SQL giving the column as an integer, NULL for infinities.
    fn as_int(self, col: &str) -> String {
        match self {
            Scale::Int => format!("{col}::int8"),
            Scale::Micros { .. } => {
                format!(
                    "CASE WHEN isfinite({col}) THEN (extract(epoch FROM {col}) * 1000000)::int8 END"
                )
            }
            Scale::Days => {
                format!("CASE WHEN isfinite({col}) THEN ({col} - DATE '1970-01-01')::int8 END")
            }
        }
    }

    fn value(self, v: i64) -> OrderValue {
        match self {
            Scale::Int => OrderValue::Int(v),
            Scale::Micros { utc: true } => OrderValue::TimestampTz(v),
            Scale::Micros { utc: false } => OrderValue::Timestamp(v),
            Scale::Days => OrderValue::Date(i32::try_from(v).unwrap_or(i32::MAX)),
        }
    }
}

/// What a parallel load needs from the refresh that asks for it.
pub(crate) struct ParallelLoad<'a> {
    pub inner: &'a Engine,
    /// The refresh's own transaction client (REPEATABLE READ, its snapshot taken).
    pub client: &'a Client,
    pub fetcher: &'a Fetcher<'a>,
    pub query: &'a str,
    pub params: &'a [Value],
    pub described: &'a Described,
    pub order: &'a OrderSpec,
    /// The plan a single-stream load would use; each range gets a copy.
    pub plan: WritePlan,
    pub ways: usize,
    pub min_rows: u64,
}

impl ParallelLoad<'_> {
    /// Loads in parallel, or returns `None` when a single stream is the better choice (a small
    /// result, an ordering type that cannot be split, one distinct value).
    pub async fn run(self) -> Result<Option<Written>> {
        let Some(scale) = Scale::of(&self.described.columns[self.order.index].kind) else {
            return Ok(None);
        };
        if self.ways < 2 || self.estimated_rows().await? < self.min_rows {
            return Ok(None);
        }
        let col = positional(self.order.index);
        let bounds_sql = wrapped_sql(self.query, &self.described.columns, &Wrap::default());
        let bounds_sql = format!(
            "SELECT min({v}), max({v}) FROM ({bounds_sql}) AS _pgcache_b({aliases})",
            v = scale.as_int(&col),
            aliases = (0..self.described.columns.len())
                .map(positional)
                .collect::<Vec<_>>()
                .join(", "),
        );
        let row = first_row(self.client, &bounds_sql, self.params, &bounds_sql)
            .await?
            .ok_or_else(|| {
                Error::InvalidQuery(format!(
                    "`{}` returned no row",
                    crate::error::shorten(&bounds_sql)
                ))
            })?;
        let (lo, hi): (Option<i64>, Option<i64>) = (row.get(0), row.get(1));
        let (Some(lo), Some(hi)) = (lo, hi) else {
            return Ok(None);
        };
        let span = i128::from(hi) - i128::from(lo) + 1;
        if span < self.ways as i128 {
            return Ok(None);
        }
        let edges: Vec<i64> = (0..=self.ways)
            .map(|i| (i128::from(lo) + span * i as i128 / self.ways as i128) as i64)
            .collect();
        let export = "SELECT pg_catalog.pg_export_snapshot()";
        let snapshot: String = self
            .client
            .query_one(export, &[])
            .await
            .map_err(|e| Error::from_pg(export, e, None))?
            .get(0);
        let column = super::refresh::order_ref(self.described, self.order);
        let order_by = column.expr();

        let ranges = (0..self.ways).map(|i| {
            let last = i + 1 == self.ways;
            // The first range also takes what lies below the bounds (-infinity); the last
            // takes NULLs (counted, then refused) and what lies past them (infinity).
            let filter = Predicate::Range {
                column: column.clone(),
                low: (i > 0).then(|| scale.value(edges[i])),
                below: (!last).then(|| scale.value(edges[i + 1])),
                or_nulls_past: last.then(|| scale.value(edges[i + 1] - 1)),
            };
            let sql = wrapped_sql(
                self.query,
                &self.described.columns,
                &Wrap {
                    filter: Some(filter),
                    order_by: Some(order_by.clone()),
                    omit: None,
                },
            );
            let mut plan = WritePlan {
                first_seq: self.plan.first_seq + i as u64 * SEQ_STRIDE,
                ..self.plan.clone()
            };
            plan.separate_last_run = last && self.plan.separate_last_run;
            (i, sql, plan)
        });
        let loads = ranges.map(|(i, sql, plan)| {
            let snapshot = snapshot.clone();
            async move {
                if i == 0 {
                    return fetch_into(self.fetcher, &sql, self.params, self.described, plan).await;
                }
                let mut conn = self.inner.pool.get().await?;
                let tx = self.inner.begin(&mut conn, true, true).await?;
                let adopt = format!("SET TRANSACTION SNAPSHOT '{snapshot}'");
                tx.batch_execute(&adopt)
                    .await
                    .map_err(|e| Error::from_pg(&adopt, e, None))?;
                let fetcher = Fetcher {
                    client: tx.client(),
                    ..*self.fetcher
                };
                let written = fetch_into(&fetcher, &sql, self.params, self.described, plan).await?;
                tx.commit()
                    .await
                    .map_err(|e| Error::from_pg("COMMIT", e, None))?;
                Ok(written)
            }
        });
        let parts = try_join_all(loads).await?;
        let mut all = Written::default();
        for w in parts {
            all.parts.extend(w.parts);
            all.rows += w.rows;
            all.nulls += w.nulls;
            all.next_seq = all.next_seq.max(w.next_seq);
            if w.last.is_some() {
                all.last = w.last;
            }
        }
        tracing::debug!(ways = self.ways, rows = all.rows, "parallel full load");
        Ok(Some(all))
    }

    /// The planner's estimate of the result's rows.
    async fn estimated_rows(&self) -> Result<u64> {
        let plan = crate::pg::explain::plan(self.client, self.query, self.params, "").await?;
        Ok(plan[0]["Plan"]["Plan Rows"].as_f64().unwrap_or(0.0) as u64)
    }
}
