//! The xmin mode of incremental queries: for a query over one table that selects the table's
//! `xmin` system column and names a key column, each refresh reads exactly the row versions
//! that became visible since the previous refresh's snapshot — inserted *or updated* rows,
//! late commits included — and replaces the stored rows with the same key.
//!
//! A row version may be new when its `xmin` (the transaction that wrote it) is at or above the
//! previous snapshot's `xmin`, the oldest transaction still in progress then: every
//! transaction below it had ended, so its rows were already read. A visibility test against
//! the previous snapshot (`pg_visible_in_snapshot`) is not enough: a row written inside a
//! `SAVEPOINT` or a PL/pgSQL `EXCEPTION` block has a subtransaction's id as its `xmin`, and
//! snapshots list only top-level ids, so a subtransaction of a transaction that was still open
//! looked visible and its rows were never read. A subtransaction's id is always above its
//! parent's, so the `xmin` horizon covers it. Re-reading a few rows that were already read
//! (transactions that had committed between the horizon and the snapshot) is harmless: rows
//! replace the stored ones by key. No watermark is involved, so nothing can be lost to a
//! transaction that commits out of order.
//!
//! `xmin` is 32 bits; it is widened to the 64-bit `xid8` relative to the current snapshot,
//! which is exact for every row version younger than 2^31 transactions (older ones are frozen
//! and at worst re-read, which the key-based replacement makes harmless). Deleted rows are not
//! seen: DELETE leaves nothing to read.

use std::cmp::Ordering;

use arrow::record_batch::RecordBatch;

use super::IncrementalOptions;
use super::driver;
use super::snapshot::Snapshot;
use crate::cache::entry::{self, Slot};
use crate::cache::generation::{NewGeneration, link_part};
use crate::cache::key::CacheKey;
use crate::cache::manifest::{ColumnMeta, Mode, Part};
use crate::cache::part::PartFormat;
use crate::cache::writer::{self, OrderSpec, WritePlan};
use crate::engine::{Engine, fetch_into};
use crate::error::{Error, Result};
use crate::pg::fetch::{Wrap, wrapped_sql};
use crate::pg::order::{OrderColumn, OrderValue};
use crate::pg::predicate::Predicate;
use crate::pg::value::Value;
use crate::result::{READ_BATCH_ROWS, RefreshReport, ResultSet};

/// The name the query must give the `xmin` column.
const XMIN: &str = "xmin";

/// The rows an xmin-mode refresh reads after the snapshot `previous` (`pg_current_snapshot()`
/// text): the versions whose `xmin` (column `index`) is at or past its horizon; `None` when
/// `previous` does not parse (the entry is then rebuilt).
fn changed_since(previous: &str, index: usize) -> Option<Predicate> {
    let horizon = Snapshot::parse(previous)?.xmin;
    Some(Predicate::XminAtLeast { index, horizon })
}

pub(crate) async fn refresh(
    inner: &Engine,
    query: &str,
    params: &[Value],
    key_column: &str,
    options: &IncrementalOptions,
    key: &CacheKey,
    slot: Slot,
) -> Result<ResultSet> {
    let timeout = inner.timeout();
    let pg = |sql: &'static str| move |e| Error::from_pg(sql, e, timeout);
    let mut conn = inner.pool.get().await?;
    let driver::Begun {
        tx,
        snapshot,
        described,
        quota,
        name,
        previous_generation,
    } = driver::begin(inner, &mut conn, query, params, options, &slot).await?;
    let fetcher = inner.fetcher(tx.client(), options.progress.as_deref(), options.limits);
    let xmin_index = described.columns.iter().position(|c| c.name == XMIN && c.pg_type == "xid").ok_or_else(|| {
        Error::InvalidQuery(format!(
            "xmin mode needs the query to select its table's xmin column, as in `SELECT xmin, * FROM t`; `{}` does not",
            crate::error::shorten(query)
        ))
    })?;
    let result_columns = described.without(xmin_index);
    let order = super::refresh::order_spec(&result_columns, key_column)?;
    let spec = &result_columns.columns[order.index];
    super::checks::lookback_unit(
        key_column,
        &spec.kind,
        &spec.pg_type,
        options.lookback.as_ref(),
        true,
    )?;
    // The key's index in the full query, for the SQL; `order.index` counts without xmin.
    let key_in_query = if order.index >= xmin_index {
        order.index + 1
    } else {
        order.index
    };

    let columns = ColumnMeta::of(&result_columns.schema);
    let previous = super::refresh::reusable(slot, &columns, |m| {
        m.snapshot
            .as_deref()
            .and_then(|s| changed_since(s, xmin_index))
            .is_some()
    });
    let filter = previous
        .as_ref()
        .and_then(|(_, m)| changed_since(m.snapshot.as_deref()?, xmin_index));
    let wrap = Wrap {
        filter,
        order_by: Some(
            super::refresh::order_ref(
                &described,
                &OrderSpec {
                    index: key_in_query,
                    ..order.clone()
                },
            )
            .expr(),
        ),
        omit: Some(xmin_index),
    };
    let sql = wrapped_sql(query, &described.columns, &wrap);
    let generation = NewGeneration::create(
        &inner.store,
        &name,
        previous_generation.map_or(1, |g| g + 1),
    )?;
    let format = PartFormat::new(&result_columns.schema, key.hex(), query, Some(order.index));
    let part_rows = inner.settings.cache.part_rows as u64;
    let first_seq = previous.as_ref().map_or(1, |(_, m)| m.next_part);

    let (parts, next_seq, fetched) = match &previous {
        None => {
            let plan = WritePlan {
                order: Some(order.clone()),
                ensure_part: true,
                quota,
                ..WritePlan::new(generation.dir.clone(), first_seq, format.clone(), part_rows)
            };
            let written = fetch_into(&fetcher, &sql, params, &result_columns, plan).await?;
            tx.commit().await.map_err(pg("COMMIT"))?;
            if written.nulls > 0 {
                return Err(Error::OrderColumnNulls {
                    column: key_column.to_owned(),
                    count: written.nulls,
                });
            }
            (written.parts, written.next_seq, written.rows)
        }
        Some((dir, manifest)) => {
            let mut changed: Vec<RecordBatch> = Vec::new();
            fetcher
                .fetch(&sql, params, &result_columns, &mut changed)
                .await?;
            tx.commit().await.map_err(pg("COMMIT"))?;
            let fetched = changed.iter().map(|b| b.num_rows() as u64).sum();
            let merge = Merge {
                old_dir: dir.clone(),
                new_dir: generation.dir.clone(),
                entry: name.clone(),
                format: format.clone(),
                order: order.clone(),
                part_rows,
            };
            let parts = manifest.parts.clone();
            let (parts, next_seq) =
                tokio::task::spawn_blocking(move || merge.run(parts, changed, first_seq))
                    .await
                    .map_err(super::refresh::join_error("merging changed rows in"))??;
            (parts, next_seq, fetched)
        }
    };
    drop(conn);

    let rows: u64 = parts.iter().map(|p| p.rows).sum();
    let watermark = parts
        .iter()
        .rev()
        .find(|p| p.rows > 0)
        .and_then(|p| p.max.clone());
    let report = RefreshReport {
        rows_from_database: fetched,
        rows_from_cache: rows.saturating_sub(fetched),
        watermark: watermark.clone(),
        read_from: None,
        safe: None,
        full: previous.is_none(),
    };
    let target = driver::Target {
        key,
        name: &name,
        query,
        params,
        mode: Mode::Incremental {
            column: key_column.to_owned(),
            lookback: None,
            xmin: true,
        },
        previous: previous.as_ref().map(|(_, m)| m),
        previous_generation,
    };
    let refreshed = driver::Refreshed {
        columns,
        parts,
        next_seq,
        watermark,
        safe: None,
        pending: Vec::new(),
        snapshot: Some(snapshot.to_string()),
        report,
    };
    driver::finish(
        inner,
        generation,
        target,
        result_columns.schema.clone(),
        refreshed,
    )
}

/// Folding changed rows (sorted by key) into the stored parts (sorted, disjoint key ranges):
/// each changed row goes to the part whose range holds its key, and only those parts are
/// rewritten — without the old versions of the changed keys, with the new ones, in key order.
struct Merge {
    old_dir: std::path::PathBuf,
    new_dir: std::path::PathBuf,
    entry: String,
    format: PartFormat,
    order: OrderSpec,
    part_rows: u64,
}

impl Merge {
    fn run(
        &self,
        parts: Vec<Part>,
        changed: Vec<RecordBatch>,
        mut seq: u64,
    ) -> Result<(Vec<Part>, u64)> {
        let changed = match changed.first() {
            Some(first) => arrow::compute::concat_batches(&first.schema(), &changed)
                .map_err(Error::arrow("gathering changed rows"))?,
            None => {
                for p in &parts {
                    link_part(&self.old_dir, &self.new_dir, p)?;
                }
                return Ok((parts, seq));
            }
        };
        let keys = OrderColumn::new(
            changed.column(self.order.index).as_ref(),
            self.order.numeric_text,
        );
        let changed_keys: Vec<OrderValue> =
            (0..changed.num_rows()).map(|i| keys.value(i)).collect();
        let parts: Vec<Part> = parts.into_iter().filter(|p| p.rows > 0).collect();
        let mut out = Vec::with_capacity(parts.len() + 1);
        let mut start = 0;
        for (i, part) in parts.iter().enumerate() {
            // This part takes the changed keys below the next part's smallest key.
            let end = match parts.get(i + 1).and_then(|p| p.min.as_ref()) {
                Some(next) => {
                    start
                        + changed_keys[start..]
                            .partition_point(|k| k.compare(next) == Ordering::Less)
                }
                None => changed_keys.len(),
            };
            if start == end {
                link_part(&self.old_dir, &self.new_dir, part)?;
                out.push(part.clone());
                continue;
            }
            let written = self.rewrite(
                Some(part),
                &changed.slice(start, end - start),
                &changed_keys[start..end],
                seq,
            )?;
            seq = written.0;
            out.extend(written.1);
            start = end;
        }
        if parts.is_empty() {
            let written = self.rewrite(None, &changed, &changed_keys, seq)?;
            seq = written.0;
            out.extend(written.1);
        }
        Ok((out, seq))
    }

    /// `part` without the rows whose keys are in `keys`, plus `rows`, sorted by key.
    fn rewrite(
        &self,
        part: Option<&Part>,
        rows: &RecordBatch,
        keys: &[OrderValue],
        seq: u64,
    ) -> Result<(u64, Vec<Part>)> {
        let mut batches = vec![rows.clone()];
        if let Some(part) = part {
            let open = entry::OpenPart::open(&self.old_dir.join(&part.file), &self.entry)?;
            for batch in open.reader(None, READ_BATCH_ROWS)? {
                let batch = batch?;
                let col = OrderColumn::new(
                    batch.column(self.order.index).as_ref(),
                    self.order.numeric_text,
                );
                let keep: arrow::array::BooleanArray = (0..batch.num_rows())
                    .map(|i| Some(keys.binary_search_by(|k| k.compare(&col.value(i))).is_err()))
                    .collect();
                batches.push(
                    arrow::compute::filter_record_batch(&batch, &keep)
                        .map_err(Error::arrow("dropping old versions"))?,
                );
            }
        }
        let all = arrow::compute::concat_batches(&rows.schema(), &batches)
            .map_err(Error::arrow("merging rows"))?;
        let col = OrderColumn::new(
            all.column(self.order.index).as_ref(),
            self.order.numeric_text,
        );
        let mut indices: Vec<u32> = (0..all.num_rows() as u32).collect();
        indices.sort_by(|a, b| col.compare_rows(*a as usize, *b as usize));
        let sorted =
            arrow::compute::take_record_batch(&all, &arrow::array::UInt32Array::from(indices))
                .map_err(Error::arrow("sorting merged rows"))?;
        let plan = WritePlan {
            order: Some(self.order.clone()),
            ..WritePlan::new(
                self.new_dir.clone(),
                seq,
                self.format.clone(),
                self.part_rows,
            )
        };
        let written = writer::write_all(plan, std::iter::once(Ok(sorted)))?;
        Ok((written.next_seq, written.parts))
    }
}
