//! The simple cache: a hit answered from the stored generation, a miss fetched and stored as
//! a new one, and results that bypass the cache.

use std::time::Duration;

use super::Engine;
use crate::cache::entry::{self, Slot};
use crate::cache::generation::NewGeneration;
use crate::cache::key::CacheKey;
use crate::cache::manifest::{ColumnMeta, Identity, Manifest, Mode};
use crate::cache::part::PartFormat;
use crate::cache::writer::WritePlan;
use crate::error::{Error, Result};
use crate::pg::fetch::{Described, FetchLimits, Wrap, wrapped_sql};
use crate::pg::value::Value;
use crate::progress::Progress;
use crate::result::{Origin, ResultSet};

impl Engine {
    /// Serves `key` from the cache if a sound, fresh entry exists.
    pub fn try_hit(
        &self,
        key: &CacheKey,
        max_age: Option<Duration>,
        limits: FetchLimits,
    ) -> Result<Option<ResultSet>> {
        let Slot::Found {
            name,
            dir,
            manifest,
            ..
        } = entry::find(&self.store, key)?
        else {
            return Ok(None);
        };
        if let Some(max_age) = max_age {
            let age_micros = crate::pg::time::now_micros().saturating_sub(manifest.refreshed);
            if age_micros > i64::try_from(max_age.as_micros()).unwrap_or(i64::MAX) {
                return Ok(None);
            }
        }
        let parts = match entry::open_parts(&dir, &manifest) {
            Ok(parts) => parts,
            Err(Error::CacheCorrupt { reason, .. }) => {
                tracing::warn!(entry = %name, %reason, "damaged cache entry; refetching");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        if let Some(limit) = limits.max_rows.filter(|l| manifest.rows() > *l) {
            return Err(Error::LimitExceeded {
                what: "rows per result",
                limit,
            });
        }
        entry::record_hit(&self.store, &name);
        let schema = parts
            .first()
            .map(|p| p.schema())
            .unwrap_or_else(|| super::publish::empty_schema(&manifest));
        Ok(Some(ResultSet::from_parts(
            schema,
            parts,
            Origin::Hit,
            &name,
        )))
    }

    /// Fetches into memory, bypassing the cache; `wrap` says how to filter and order the
    /// described query (an incremental query's ordering, or nothing).
    pub async fn fetch_to_memory(
        &self,
        query: &str,
        params: &[Value],
        wrap: impl FnOnce(&Described) -> Result<Wrap>,
        progress: Option<&Progress>,
        limits: FetchLimits,
    ) -> Result<ResultSet> {
        let mut conn = self.pool.get().await?;
        let tx = self
            .begin(&mut conn, false, self.settings.policy.read_only_queries)
            .await?;
        let fetcher = self.fetcher(tx.client(), progress, limits);
        let described = self.describe_uncached(&fetcher, query, params).await?;
        let wrap = wrap(&described)?;
        let sql = wrapped_sql(query, &described.columns, &wrap);
        let mut batches = Vec::new();
        fetcher
            .fetch(&sql, params, &described, &mut batches)
            .await?;
        tx.commit()
            .await
            .map_err(|e| Error::from_pg("COMMIT", e, None))?;
        Ok(ResultSet::from_memory(
            described.schema.clone(),
            batches,
            Origin::Uncached,
        ))
    }

    /// Fetches `query` and stores it as a new generation of the simple entry in `slot`.
    pub async fn store_simple(
        &self,
        query: &str,
        params: &[Value],
        key: &CacheKey,
        slot: Slot,
        progress: Option<&Progress>,
        limits: FetchLimits,
    ) -> Result<ResultSet> {
        let quota = self.write_quota(slot.generation().map(|g| (slot.name(), g)))?;
        let mut conn = self.pool.get().await?;
        let tx = self
            .begin(&mut conn, false, self.settings.policy.read_only_queries)
            .await?;
        let fetcher = self.fetcher(tx.client(), progress, limits);
        let described = self.describe(&fetcher, query, params).await?;
        let sql = wrapped_sql(query, &described.columns, &Wrap::default());
        let name = slot.name().to_owned();
        let previous = slot.generation();
        let created = match &slot {
            Slot::Found { manifest, .. } => Some(manifest.created),
            _ => None,
        };
        let generation = NewGeneration::create(&self.store, &name, previous.map_or(1, |g| g + 1))?;
        let plan = WritePlan {
            ensure_part: true,
            quota,
            ..WritePlan::new(
                generation.dir.clone(),
                1,
                PartFormat::new(&described.schema, key.hex(), query, None),
                self.settings.cache.part_rows as u64,
            )
        };
        let written = super::fetch_into(&fetcher, &sql, params, &described, plan).await?;
        tx.commit()
            .await
            .map_err(|e| Error::from_pg("COMMIT", e, None))?;
        drop(conn);
        let id = Identity {
            key: key.hex(),
            name: &name,
            query,
            params,
            mode: Mode::Simple,
        };
        let columns = ColumnMeta::of(&described.schema);
        let manifest = Manifest::new(
            id,
            columns,
            written.parts,
            generation.generation,
            written.next_seq,
            created,
        );
        self.publish(
            generation,
            &manifest,
            previous,
            described.schema.clone(),
            Origin::Stored,
        )
    }
}
