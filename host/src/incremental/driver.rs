//! The refresh driver: what every refresh mode does before and after its own part. A refresh
//! starts a REPEATABLE READ, READ ONLY transaction whose snapshot it records, describes the
//! query under the policy, takes the quota's room and opens the next generation
//! ([`begin`]); the mode decides what to read and how stored parts combine with it (the
//! watermark mode in [`super::refresh`], the xmin mode in [`super::xmin`]); the driver then
//! writes the manifest and publishes the generation ([`finish`]).

use deadpool_postgres::{Object, Transaction};

use super::IncrementalOptions;
use super::snapshot::Snapshot;
use crate::cache::entry::{self, Slot};
use crate::cache::generation::NewGeneration;
use crate::cache::key::CacheKey;
use crate::cache::manifest::{Checkpoint, ColumnMeta, Identity, Manifest, Mode, Part};
use crate::cache::writer::Quota;
use crate::engine::Engine;
use crate::error::Result;
use crate::pg::fetch::Described;
use crate::pg::order::OrderValue;
use crate::pg::value::Value;
use crate::result::{Origin, RefreshReport, ResultSet};

/// A refresh under way: its transaction and snapshot, the described query, the entry's name
/// and the generation it replaces.
pub(crate) struct Begun<'c> {
    pub tx: Transaction<'c>,
    pub snapshot: Snapshot,
    pub described: Described,
    pub quota: Option<Quota>,
    pub name: String,
    pub previous_generation: Option<u64>,
}

/// Starts a refresh of the entry in `slot` on `conn`.
pub(crate) async fn begin<'c>(
    inner: &Engine,
    conn: &'c mut Object,
    query: &str,
    params: &[Value],
    options: &IncrementalOptions,
    slot: &Slot,
) -> Result<Begun<'c>> {
    let tx = inner.begin(conn, true, true).await?;
    // First: it fixes the transaction's snapshot, the one every statement after it sees.
    let snapshot = Snapshot::current(tx.client()).await?;
    let fetcher = inner.fetcher(tx.client(), options.progress.as_deref(), options.limits);
    let described = inner.describe(&fetcher, query, params).await?;
    let quota = inner.write_quota(slot.generation().map(|g| (slot.name(), g)))?;
    Ok(Begun {
        tx,
        snapshot,
        described,
        quota,
        name: slot.name().to_owned(),
        previous_generation: slot.generation(),
    })
}

/// What a mode made of a refresh: the new generation's parts and the state the next refresh
/// starts from.
pub(crate) struct Refreshed {
    pub columns: Vec<ColumnMeta>,
    pub parts: Vec<Part>,
    pub next_seq: u64,
    pub watermark: Option<OrderValue>,
    pub safe: Option<OrderValue>,
    pub pending: Vec<Checkpoint>,
    /// xmin mode: the snapshot the next refresh reads past.
    pub snapshot: Option<String>,
    pub report: RefreshReport,
}

/// The entry a refresh writes.
pub(crate) struct Target<'a> {
    pub key: &'a CacheKey,
    pub name: &'a str,
    pub query: &'a str,
    pub params: &'a [Value],
    pub mode: Mode,
    /// The generation the refresh built on, if it kept one.
    pub previous: Option<&'a Manifest>,
    pub previous_generation: Option<u64>,
}

/// Writes the manifest of `refreshed` into `generation` and publishes it; a refresh that
/// kept stored rows counts as a hit of the entry.
pub(crate) fn finish(
    inner: &Engine,
    generation: NewGeneration,
    target: Target<'_>,
    schema: arrow::datatypes::SchemaRef,
    refreshed: Refreshed,
) -> Result<ResultSet> {
    let id = Identity {
        key: target.key.hex(),
        name: target.name,
        query: target.query,
        params: target.params,
        mode: target.mode,
    };
    let manifest = Manifest {
        watermark: refreshed.watermark,
        safe: refreshed.safe,
        pending: refreshed.pending,
        snapshot: refreshed.snapshot,
        ..Manifest::new(
            id,
            refreshed.columns,
            refreshed.parts,
            generation.generation,
            refreshed.next_seq,
            target.previous.map(|m| m.created),
        )
    };
    let origin = if target.previous.is_some() {
        Origin::Refreshed
    } else {
        Origin::Stored
    };
    tracing::debug!(
        entry = %target.name,
        from_db = refreshed.report.rows_from_database,
        from_cache = refreshed.report.rows_from_cache,
        "refreshed"
    );
    let result = inner.publish(
        generation,
        &manifest,
        target.previous_generation,
        schema,
        origin,
    )?;
    if refreshed.report.rows_from_cache > 0 {
        // The cache answered for rows: that counts as a hit of the entry.
        entry::record_hit(&inner.store, target.name);
    }
    Ok(result.with_refresh(refreshed.report))
}
