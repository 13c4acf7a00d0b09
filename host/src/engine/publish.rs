//! Publishing: a generation's parts written from a fetch, its manifest, the quota's exact
//! check, and the commit that makes it the entry's current one.

use std::sync::Arc;

use super::Engine;
use crate::cache::entry::{self};
use crate::cache::generation::NewGeneration;
use crate::cache::manifest::Manifest;
use crate::cache::writer::{self, WritePlan, Written};
use crate::error::Result;
use crate::pg::fetch::{Described, Fetcher};
use crate::pg::value::Value;
use crate::result::{Origin, ResultSet};

impl Engine {
    /// Writes the manifest, commits the generation and opens the result from it.
    pub fn publish(
        &self,
        generation: NewGeneration,
        manifest: &Manifest,
        previous: Option<u64>,
        schema: arrow::datatypes::SchemaRef,
        origin: Origin,
    ) -> Result<ResultSet> {
        let replaced = previous
            .and_then(|g| {
                Manifest::read(&self.store.gen_dir(&manifest.name, g), &manifest.name).ok()
            })
            .map_or(0, |m| m.bytes());
        self.check_quota(manifest.bytes().saturating_sub(replaced))?;
        manifest.write(&generation.dir)?;
        // Open the parts before publishing: the handles keep them readable whatever happens next.
        let parts = entry::open_parts(&generation.dir, manifest)?;
        generation.commit(previous)?;
        Ok(ResultSet::from_parts(schema, parts, origin, &manifest.name))
    }
}

/// Streams a fetch into a writer thread; the writer's error wins, since it explains why the
/// fetch could not hand rows over.
pub(crate) async fn fetch_into(
    fetcher: &Fetcher<'_>,
    sql: &str,
    params: &[Value],
    described: &Described,
    plan: WritePlan,
) -> Result<Written> {
    let (mut sink, handle) = writer::spawn(plan)?;
    let fetched = fetcher.fetch(sql, params, described, &mut sink).await;
    drop(sink);
    let written = handle.finish().await;
    match (fetched, written) {
        (Ok(_), Ok(w)) => Ok(w),
        (Err(e), Ok(_)) => Err(e),
        (_, Err(e)) => Err(e),
    }
}

/// The schema of an entry without parts (never written by pgcache, which keeps one part).
pub(super) fn empty_schema(_: &Manifest) -> arrow::datatypes::SchemaRef {
    Arc::new(arrow::datatypes::Schema::empty())
}
