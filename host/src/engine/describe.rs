//! Describing a caller's query before anything is fetched: its columns, the checks that hold
//! for every result (distinct names, the text order of the database's encoding, the table
//! allow-list) and what an incremental query may not be.

use super::Engine;
use crate::error::{Error, Result};
use crate::pg::fetch::{Described, Fetcher};
use crate::pg::types::ColumnKind;
use crate::pg::value::Value;
use crate::sql::Statement;

impl Engine {
    /// Refuses a statement whose result is not a set that only grows (see
    /// [`Statement::check_incremental`]); asks the server whether the functions of its
    /// select lists are aggregates. Fails closed: an error while asking refuses.
    pub async fn check_incremental(&self, statement: &Statement) -> Result<()> {
        let names = statement.check_incremental()?;
        if names.is_empty() {
            return Ok(());
        }
        const SQL: &str = "SELECT coalesce(array_agg(DISTINCT proname::text ORDER BY proname::text), '{}') \
            FROM pg_catalog.pg_proc WHERE proname = ANY($1) AND prokind IN ('a', 'w')";
        let conn = self.pool.get().await?;
        let aggregates: Vec<String> = conn
            .query_one(SQL, &[&names])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(|e| Error::from_pg(SQL, e, None))?;
        if let Some(name) = aggregates.first() {
            return Err(Error::InvalidQuery(format!(
                "an incremental query cannot use an aggregate ({name}): its result is not a set \
                 of rows that only grows, so rows past the watermark would not be the new rows; \
                 cache it as a simple query, or aggregate the result"
            )));
        }
        Ok(())
    }

    /// Describes `query` for a cached result and holds it to the policy's table allow-list.
    /// Every path that runs a caller's query describes it through here or
    /// [`Engine::describe_uncached`], so none can skip the check.
    pub async fn describe(
        &self,
        fetcher: &Fetcher<'_>,
        query: &str,
        params: &[Value],
    ) -> Result<Described> {
        let mut described = fetcher.describe(query).await?;
        // A result to be cached: distinct column names, and the encoding text orders by.
        described.check_unique_names()?;
        if described.columns.iter().any(|c| c.kind == ColumnKind::Text) {
            let encoding = self
                .server_encoding
                .get_or_try_init(|| async {
                    let row = fetcher
                        .client
                        .query_one("SELECT current_setting('server_encoding')", &[])
                        .await
                        .map_err(|e| Error::from_pg("SHOW server_encoding", e, None))?;
                    row.try_get::<_, String>(0)
                        .map_err(|e| Error::from_pg("SHOW server_encoding", e, None))
                })
                .await?;
            described.server_encoding = Some(encoding.clone());
        }
        self.check_tables(fetcher.client, query, params).await?;
        Ok(described)
    }

    /// Refuses `query` when its plan reads a table outside the policy's allow-list.
    pub async fn check_tables(
        &self,
        client: &tokio_postgres::Client,
        query: &str,
        params: &[Value],
    ) -> Result<()> {
        if self.settings.policy.allow_tables.is_none() {
            return Ok(());
        }
        let relations = crate::pg::explain::relations_read(client, query, params).await?;
        self.settings.policy.check_relations(&relations)
    }

    /// [`Engine::describe`] for a result that is not cached: its column names may repeat.
    pub async fn describe_uncached(
        &self,
        fetcher: &Fetcher<'_>,
        query: &str,
        params: &[Value],
    ) -> Result<Described> {
        let described = fetcher.describe(query).await?;
        self.check_tables(fetcher.client, query, params).await?;
        Ok(described)
    }
}
