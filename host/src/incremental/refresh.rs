//! One incremental refresh, start to end.
//!
//! 1. Lock the entry (in-process, then across processes). A caller that waited while another
//!    task of this process refreshed the same entry shares that refresh.
//! 2. List the transactions in flight, *before* taking the snapshot (and refuse a standby).
//! 3. Open a REPEATABLE READ, READ ONLY transaction and take its snapshot; describe the query
//!    and refuse what this mode cannot keep (a lookback in the wrong unit, a cached sequence).
//! 4. Read the rows at or above the read bound (the safe value, lowered by the lookback) —
//!    or everything on the first run — ordered by the ordering column, through the Parquet
//!    writer into a new generation.
//! 5. Keep the stored parts below the bound (hard links), split the one that straddles it,
//!    add the new parts, compact small final parts.
//! 6. Move the safe value up to the maximum of an earlier refresh once every transaction in
//!    flight at that refresh has ended (step 2 of this refresh proves it), or to this refresh's
//!    own maximum at once when nothing was in flight at all ([`super::watermark`]).
//! 7. Write the manifest and publish the generation atomically.

use std::cmp::Ordering;

use super::IncrementalOptions;
use super::checks;
use super::driver;
use super::inflight::InFlight;
use super::snapshot::Snapshot;
use super::watermark::{self, Observed, Watermarks};
use crate::cache::entry::{self, Slot};
use crate::cache::generation::{NewGeneration, rewrite};
use crate::cache::key::{CacheKey, KeyMode};
use crate::cache::manifest::{Checkpoint, ColumnMeta, Manifest, Mode, Part};
use crate::cache::part::PartFormat;
use crate::cache::writer::{OrderSpec, WritePlan};
use crate::engine::{Engine, fetch_into};
use crate::error::{Error, Result};
use crate::pg::fetch::{Described, Wrap, wrapped_sql};
use crate::pg::order::{OrderValue, orderable};
use crate::pg::predicate::{OrderRef, Predicate};
use crate::pg::time::now_micros;
use crate::pg::types::ColumnKind;
use crate::pg::value::Value;
use crate::result::{Origin, RefreshReport, ResultSet};

/// How long a checkpoint may wait for its transactions before a refresh warns about it.
const HELD_BACK_WARNING_MICROS: i64 = 5 * 60 * 1_000_000;

/// The ordering column of a described query, checked: present once, of an orderable type.
pub(crate) fn order_spec(described: &Described, column: &str) -> Result<OrderSpec> {
    let matches: Vec<usize> = described
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.name == column)
        .map(|(i, _)| i)
        .collect();
    let index = match matches.as_slice() {
        [] => {
            return Err(Error::OrderColumnMissing {
                column: column.to_owned(),
                available: described.column_names(),
            });
        }
        [one] => *one,
        _ => {
            return Err(Error::InvalidQuery(format!(
                "the ordering column {column:?} appears {} times in the result; give the copies distinct names",
                matches.len()
            )));
        }
    };
    let spec = &described.columns[index];
    if spec.as_text || !orderable(&spec.kind, &spec.pg_type) {
        return Err(Error::OrderColumnType {
            column: column.to_owned(),
            type_name: spec.pg_type.clone(),
            supported: super::SUPPORTED_ORDER_TYPES,
        });
    }
    described.check_text_order(index)?;
    Ok(OrderSpec {
        index,
        name: column.to_owned(),
        numeric_text: spec.kind == ColumnKind::NumericText,
    })
}

/// The ordering column of a wrapped query, as predicates and ORDER BY name it.
pub(crate) fn order_ref(described: &Described, spec: &OrderSpec) -> OrderRef {
    OrderRef::new(spec.index, &described.columns[spec.index].kind)
}

/// See [`crate::Db::incremental_query`].
pub(crate) async fn incremental_query(
    inner: &Engine,
    sql: &str,
    params: &[Value],
    column: &str,
    options: &IncrementalOptions,
) -> Result<ResultSet> {
    let statement = inner.parse(sql).await?;
    inner.settings.policy.check_query(&statement)?;
    inner.check_incremental(&statement).await?;
    let query = statement.text().to_owned();
    if !options.use_cache {
        return inner
            .fetch_to_memory(
                &query,
                params,
                |described| {
                    let spec = order_spec(described, column)?;
                    Ok(Wrap {
                        filter: None,
                        order_by: Some(order_ref(described, &spec).expr()),
                        omit: None,
                    })
                },
                options.progress.as_deref(),
                options.limits,
            )
            .await;
    }
    let scope = inner.scope.key_scope(&inner.pool).await;
    let key = CacheKey::new(
        &scope,
        &statement,
        params,
        &KeyMode::Incremental {
            column,
            xmin: options.xmin,
        },
    );
    let primary = key.primary_name();
    let mut lock = inner.locks.lock(&primary).await;
    if lock.refreshed_while_waiting
        && let Some(shared) = serve_shared(inner, &key)?
    {
        return Ok(shared);
    }
    lock.lock_files(
        &inner.store.lock_path(&primary),
        inner.settings.cache.lock_timeout,
    )
    .await?;
    let slot = entry::find(&inner.store, &key)?;
    let result = if options.xmin {
        super::xmin::refresh(inner, &query, params, column, options, &key, slot).await?
    } else {
        refresh(inner, &query, params, column, options, &key, slot).await?
    };
    lock.completed();
    if let Some(limit) = options.limits.max_rows.filter(|l| result.num_rows() > *l) {
        return Err(Error::LimitExceeded {
            what: "rows per result",
            limit,
        });
    }
    Ok(result)
}

/// The stored state a refresh builds on: the entry in `slot` when its columns are still the
/// query's, `usable` accepts it, and its parts are sound. Otherwise nothing, and the refresh
/// rebuilds the entry (logged).
pub(crate) fn reusable(
    slot: Slot,
    columns: &[ColumnMeta],
    usable: impl Fn(&Manifest) -> bool,
) -> Option<(std::path::PathBuf, Manifest)> {
    let Slot::Found {
        name,
        dir,
        manifest,
        ..
    } = slot
    else {
        return None;
    };
    if manifest.columns != columns || !usable(&manifest) {
        tracing::info!(entry = %name, "the query's result columns or mode changed; rebuilding the entry");
        return None;
    }
    match entry::open_parts(&dir, &manifest) {
        Ok(_) => Some((dir, *manifest)),
        Err(e) => {
            tracing::warn!(entry = %name, error = %e, "damaged cache entry; rebuilding it from the database");
            None
        }
    }
}

/// The entry as another task of this process just left it.
fn serve_shared(inner: &Engine, key: &CacheKey) -> Result<Option<ResultSet>> {
    let Slot::Found {
        name,
        dir,
        manifest,
        ..
    } = entry::find(&inner.store, key)?
    else {
        return Ok(None);
    };
    let Ok(parts) = entry::open_parts(&dir, &manifest) else {
        return Ok(None);
    };
    entry::record_hit(&inner.store, &name);
    let schema = match parts.first() {
        Some(p) => p.schema(),
        None => return Ok(None),
    };
    let report = RefreshReport {
        rows_from_database: 0,
        rows_from_cache: manifest.rows(),
        watermark: manifest.watermark.clone(),
        read_from: None,
        safe: manifest.safe.clone(),
        full: false,
    };
    Ok(Some(
        ResultSet::from_parts(schema, parts, Origin::Shared, &name).with_refresh(report),
    ))
}

async fn refresh(
    inner: &Engine,
    query: &str,
    params: &[Value],
    column: &str,
    options: &IncrementalOptions,
    key: &CacheKey,
    slot: Slot,
) -> Result<ResultSet> {
    let timeout = inner.timeout();
    let mut conn = inner.pool.get().await?;
    // The listing asks pg_is_in_recovery() too; when it fails, the refresh fails with it.
    let before = InFlight::list(&conn).await?;
    checks::standby(column, before.in_recovery, options.lookback.as_ref())?;
    let driver::Begun {
        tx,
        snapshot,
        described,
        quota,
        name,
        previous_generation,
    } = driver::begin(inner, &mut conn, query, params, options, &slot).await?;
    let order = order_spec(&described, column)?;
    let spec = &described.columns[order.index];
    checks::lookback_unit(
        column,
        &spec.kind,
        &spec.pg_type,
        options.lookback.as_ref(),
        false,
    )?;
    if options.lookback.is_none() {
        checks::cached_sequence(tx.client(), &described, order.index, column).await?;
    }

    let columns = ColumnMeta::of(&described.schema);
    let previous = reusable(slot, &columns, |_| true);
    let state = previous.as_ref().map(|(_, m)| m);
    let marks = state.map(|m| Watermarks {
        watermark: m.watermark.clone(),
        safe: m.safe.clone(),
        pending: m.pending.clone(),
    });
    let decided = watermark::plan(marks.as_ref(), &before, options.lookback.as_ref());
    let read_from = decided.read_from.clone();

    let order_col = order_ref(&described, &order);
    let wrap = Wrap {
        filter: read_from.as_ref().map(|from| Predicate::AtLeast {
            column: order_col.clone(),
            from: from.clone(),
        }),
        order_by: Some(order_col.expr()),
        omit: None,
    };
    let sql = wrapped_sql(query, &described.columns, &wrap);

    let generation = NewGeneration::create(
        &inner.store,
        &name,
        previous_generation.map_or(1, |g| g + 1),
    )?;
    let format = PartFormat::new(&described.schema, key.hex(), query, Some(order.index));
    let part_rows = inner.settings.cache.part_rows as u64;
    let plan = WritePlan {
        order: Some(order.clone()),
        cuts: decided.cuts.clone(),
        separate_last_run: true,
        quota,
        ..WritePlan::new(
            generation.dir.clone(),
            state.map_or(1, |m| m.next_part),
            format.clone(),
            part_rows,
        )
    };
    let fetcher = inner.fetcher(tx.client(), options.progress.as_deref(), options.limits);
    let ways = inner.settings.cache.parallel_fetch;
    let parallel = match read_from {
        None if ways > 1 => {
            super::parallel::ParallelLoad {
                inner,
                client: tx.client(),
                fetcher: &fetcher,
                query,
                params,
                described: &described,
                order: &order,
                plan: plan.clone(),
                ways,
                min_rows: inner.settings.cache.parallel_min_rows,
            }
            .run()
            .await?
        }
        _ => None,
    };
    let written = match parallel {
        Some(written) => written,
        None => fetch_into(&fetcher, &sql, params, &described, plan).await?,
    };
    tx.commit()
        .await
        .map_err(|e| Error::from_pg("COMMIT", e, timeout))?;
    if written.nulls > 0 {
        return Err(Error::OrderColumnNulls {
            column: column.to_owned(),
            count: written.nulls,
        });
    }
    let after = InFlight::list(&conn).await?;
    let now = Snapshot::current(&conn).await?;
    drop(conn);
    let quiet = snapshot.xip.is_empty() && after.is_empty() && now.xmax == snapshot.xmax;

    // Stored parts below the read bound stay; the one straddling it is cut.
    let kept = match (&previous, &read_from) {
        (Some((dir, m)), Some(bound)) => {
            let keep = Keep {
                generation: &generation,
                dir,
                entry: &name,
                format: &format,
                order: &order,
                part_rows,
            };
            keep.below(&m.parts, bound, written.next_seq).await?
        }
        _ => (Vec::new(), written.next_seq),
    };
    let (mut parts, next_seq) = kept;
    let rows_from_cache: u64 = parts.iter().map(|p| p.rows).sum();
    parts.extend(written.parts);

    // The safe value and the checkpoints still waiting.
    let watermark = parts
        .iter()
        .rev()
        .find(|p| p.rows > 0)
        .and_then(|p| p.max.clone());
    let Watermarks { safe, pending, .. } = watermark::next(
        marks.as_ref(),
        &decided,
        &Observed {
            watermark: watermark.clone(),
            quiet,
            after: &after,
            now: now_micros(),
        },
    );
    warn_if_held_back(&name, &pending, safe.as_ref());

    let (parts, next_seq) = {
        let compaction = super::compaction::Compaction {
            dir: generation.dir.clone(),
            format: format.clone(),
            order: order.clone(),
            entry: name.clone(),
            part_rows,
            threshold: inner.settings.cache.compact_after_parts,
        };
        let safe = safe.clone();
        tokio::task::spawn_blocking(move || compaction.run(parts, next_seq, safe.as_ref()))
            .await
            .map_err(join_error("rewriting parts in"))??
    };

    let report = RefreshReport {
        rows_from_database: written.rows,
        rows_from_cache,
        watermark: watermark.clone(),
        read_from: read_from.clone(),
        safe: safe.clone(),
        full: previous.is_none(),
    };
    let target = driver::Target {
        key,
        name: &name,
        query,
        params,
        mode: Mode::Incremental {
            column: column.to_owned(),
            lookback: options.lookback,
            xmin: false,
        },
        previous: state,
        previous_generation,
    };
    let refreshed = driver::Refreshed {
        columns,
        parts,
        next_seq,
        watermark,
        safe,
        pending,
        snapshot: None,
        report,
    };
    driver::finish(
        inner,
        generation,
        target,
        described.schema.clone(),
        refreshed,
    )
}

/// Warns when transactions open since an earlier refresh hold the safe value back for long:
/// every refresh then re-reads from there.
fn warn_if_held_back(name: &str, pending: &[Checkpoint], safe: Option<&OrderValue>) {
    if let Some(oldest) = pending
        .first()
        .filter(|c| now_micros() - c.at > HELD_BACK_WARNING_MICROS)
    {
        tracing::warn!(
            entry = %name,
            since = %crate::pg::time::rfc3339(oldest.at, true),
            transactions = ?oldest.in_flight,
            "transactions open since an earlier refresh keep rows from {} on being re-read on every refresh; \
             end them (see pg_stat_activity) or expect refreshes to cost more",
            safe.map_or_else(|| "the start".to_owned(), ToString::to_string),
        );
    }
}

/// The stored parts a watermark refresh keeps: those wholly below the bound it read from are
/// linked into the new generation; the one straddling the bound is cut there.
struct Keep<'a> {
    generation: &'a NewGeneration,
    dir: &'a std::path::Path,
    entry: &'a str,
    format: &'a PartFormat,
    order: &'a OrderSpec,
    part_rows: u64,
}

impl Keep<'_> {
    /// The kept parts of `stored`, and the next part number (from `next_seq` on).
    async fn below(
        &self,
        stored: &[Part],
        bound: &OrderValue,
        mut next_seq: u64,
    ) -> Result<(Vec<Part>, u64)> {
        let mut parts = Vec::new();
        for part in stored.iter().filter(|p| p.rows > 0) {
            let (Some(min), Some(max)) = (&part.min, &part.max) else {
                continue;
            };
            if max.compare(bound) == Ordering::Less {
                self.generation.link(self.dir, part)?;
                parts.push(part.clone());
            } else if min.compare(bound) == Ordering::Less {
                let (gen_dir, format, order, bound, part_rows) = (
                    self.generation.dir.clone(),
                    self.format.clone(),
                    self.order.clone(),
                    bound.clone(),
                    self.part_rows,
                );
                let source = vec![(self.dir.join(&part.file), self.entry.to_owned())];
                let cut = tokio::task::spawn_blocking(move || {
                    rewrite(
                        &gen_dir,
                        next_seq,
                        &format,
                        &order,
                        &source,
                        Some(&bound),
                        part_rows,
                    )
                })
                .await
                .map_err(join_error("rewriting parts in"))??;
                next_seq = cut.next_seq;
                parts.extend(cut.parts);
            }
        }
        Ok((parts, next_seq))
    }
}

/// A worker thread that failed while `action` (e.g. "rewriting parts in"), as an error.
pub(crate) fn join_error(action: &'static str) -> impl FnOnce(tokio::task::JoinError) -> Error {
    move |e| Error::CacheIo {
        action,
        path: "a worker thread".into(),
        source: std::io::Error::other(e),
    }
}
