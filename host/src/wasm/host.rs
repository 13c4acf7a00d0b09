//! The host side of `pgcache:db/database`: each call checks the guest's capabilities and
//! limits, then goes through the [`crate::Db`] API.

use wasmtime::component::Resource;

use super::bindings::pgcache::db::database as wit;
use super::convert;
use super::ctx::PgcacheView;
use super::error::HostError;
use super::rows::RowsHandle;
use crate::{FetchLimits, IncrementalOptions, QueryOptions, ResultSet, Value};

type HostResult<T> = Result<T, HostError>;

impl PgcacheView<'_> {
    fn params(params: Vec<wit::Value>) -> HostResult<Vec<Value>> {
        params
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                convert::value(v).map_err(|m| {
                    HostError::Guest(wit::Error::BadParameter(format!("${}: {m}", i + 1)))
                })
            })
            .collect()
    }

    /// The caps of one fetch; a fetch into memory (`use_cache` false) is also capped by what
    /// the run's and the host's memory budgets have left.
    fn fetch_limits(&self, in_memory: bool) -> FetchLimits {
        let mut max_bytes = self.ctx.limits.max_bytes;
        if in_memory {
            max_bytes = max_bytes
                .min(self.ctx.run_memory.available())
                .min(self.ctx.host_memory.available());
        }
        FetchLimits {
            max_rows: Some(self.ctx.limits.max_rows),
            max_bytes: Some(max_bytes),
        }
    }

    /// Keeps a result for the guest, within the open-results limit and, for results held in
    /// memory, the run's and the host's memory budgets.
    fn keep(&mut self, result: ResultSet) -> HostResult<Resource<RowsHandle>> {
        let limit = self.ctx.limits.max_open_results;
        if self.ctx.open_results >= limit {
            return Err(HostError::limit(format!(
                "open results limit of {limit} exceeded: drop results before asking for more"
            )));
        }
        let bytes = result.memory_size();
        let memory = if bytes > 0 {
            vec![
                self.ctx.run_memory.reserve(bytes)?,
                self.ctx.host_memory.reserve(bytes)?,
            ]
        } else {
            Vec::new()
        };
        let handle = self.table.push(RowsHandle::new(result, memory))?;
        self.ctx.open_results += 1;
        Ok(handle)
    }

    /// Counts a call against the host-call limit; past it the guest is stopped.
    fn count(&mut self) -> wasmtime::Result<()> {
        self.ctx
            .first_call
            .get_or_insert_with(std::time::Instant::now);
        self.ctx.host_calls += 1;
        if self.ctx.host_calls > self.ctx.limits.max_host_calls {
            self.ctx.host_calls_exceeded = true;
            return Err(wasmtime::Error::msg("host call limit exceeded"));
        }
        Ok(())
    }

    fn check(&mut self, allowed: bool, operation: &str) -> HostResult<()> {
        self.count().map_err(HostError::Trap)?;
        if allowed {
            Ok(())
        } else {
            Err(HostError::denied(crate::denied_call(operation)))
        }
    }
}

impl wit::Host for PgcacheView<'_> {
    async fn query(
        &mut self,
        sql: String,
        params: Vec<wit::Value>,
        options: wit::QueryOptions,
    ) -> HostResult<Resource<RowsHandle>> {
        self.check(self.ctx.capabilities.query, "query")?;
        self.ctx.db.check_plugin_role().await?;
        let params = Self::params(params)?;
        let mut opts = QueryOptions::default().limits(self.fetch_limits(!options.use_cache));
        if !options.use_cache {
            opts = opts.no_cache();
        }
        if let Some(secs) = options.max_age_seconds {
            opts = opts.max_age(std::time::Duration::from_secs(secs));
        }
        let result = self.ctx.db.query(&sql, &params, &opts).await;
        let result = self.name_memory_budget(result, !options.use_cache)?;
        self.keep(result)
    }

    async fn incremental_query(
        &mut self,
        sql: String,
        params: Vec<wit::Value>,
        order_column: String,
        options: wit::IncrementalOptions,
    ) -> HostResult<wit::IncrementalResult> {
        self.check(self.ctx.capabilities.incremental_query, "incremental-query")?;
        self.ctx.db.check_plugin_role().await?;
        let params = Self::params(params)?;
        let mut opts = IncrementalOptions::default().limits(self.fetch_limits(!options.use_cache));
        if !options.use_cache {
            opts = opts.no_cache();
        }
        if let Some(lookback) = options.lookback {
            opts = opts.lookback(convert::lookback(lookback));
        }
        let result = self
            .ctx
            .db
            .incremental_query(&sql, &params, &order_column, &opts)
            .await;
        let result = self.name_memory_budget(result, !options.use_cache)?;
        let report = convert::report(result.refresh_report());
        Ok(wit::IncrementalResult {
            rows: self.keep(result)?,
            report,
        })
    }

    async fn execute(&mut self, sql: String, params: Vec<wit::Value>) -> HostResult<u64> {
        self.check(self.ctx.capabilities.execute, "execute")?;
        self.ctx.db.check_plugin_role().await?;
        let params = Self::params(params)?;
        Ok(self.ctx.db.execute(&sql, &params).await?)
    }

    async fn cache_clear(&mut self, pattern: Option<String>) -> HostResult<u32> {
        self.check(self.ctx.capabilities.cache_clear, "cache-clear")?;
        Ok(self.ctx.db.clear_cache(pattern.as_deref()).await? as u32)
    }

    async fn cache_stats(&mut self) -> HostResult<wit::Stats> {
        self.check(self.ctx.capabilities.cache_stats, "cache-stats")?;
        let stats = self.ctx.db.cache_stats().await?;
        Ok(convert::stats(stats, &self.ctx.cache_name))
    }

    fn convert_error(&mut self, err: HostError) -> wasmtime::Result<wit::Error> {
        match err {
            HostError::Guest(e) => Ok(e),
            HostError::Trap(e) => Err(e),
        }
    }
}

impl wit::HostRows for PgcacheView<'_> {
    async fn schema(&mut self, rows: Resource<RowsHandle>) -> wasmtime::Result<Vec<wit::Column>> {
        self.count()?;
        Ok(convert::schema(&self.table.get(&rows)?.result.schema()))
    }

    async fn num_rows(&mut self, rows: Resource<RowsHandle>) -> wasmtime::Result<u64> {
        self.count()?;
        Ok(self.table.get(&rows)?.result.num_rows())
    }

    async fn column(
        &mut self,
        rows: Resource<RowsHandle>,
        index: u32,
    ) -> HostResult<wit::ColumnValues> {
        self.count().map_err(HostError::Trap)?;
        let result = self.table.get(&rows)?.result.clone();
        let columns = result.schema().fields().len();
        if index as usize >= columns {
            return Err(HostError::Guest(super::columns::no_column(index, columns)));
        }
        let values = blocking(move || {
            let array = result.column_at(index as usize)?;
            Ok(convert::column(&array))
        })
        .await?;
        self.charge(&rows, convert::transfer_size(&values))?;
        Ok(values)
    }

    async fn next_batch(
        &mut self,
        rows: Resource<RowsHandle>,
        max_rows: u32,
    ) -> HostResult<Option<wit::Batch>> {
        self.count().map_err(HostError::Trap)?;
        if max_rows == 0 {
            return Err(HostError::Guest(super::columns::zero_max_rows()));
        }
        let handle = self.table.get_mut(&rows)?;
        let mut cursor = handle
            .cursor
            .take()
            .unwrap_or_else(|| handle.result.cursor());
        let (cursor, batch) = blocking(move || {
            let batch = cursor.next_rows(max_rows as usize)?;
            let batch = batch.map(|b| wit::Batch {
                num_rows: b.num_rows() as u32,
                columns: b.columns().iter().map(convert::column).collect(),
            });
            Ok((cursor, batch))
        })
        .await?;
        self.table.get_mut(&rows)?.cursor = Some(cursor);
        if let Some(b) = &batch {
            self.charge(&rows, b.columns.iter().map(convert::transfer_size).sum())?;
        }
        Ok(batch)
    }

    async fn arrow_ipc(&mut self, rows: Resource<RowsHandle>) -> HostResult<Vec<u8>> {
        self.count().map_err(HostError::Trap)?;
        let result = self.table.get(&rows)?.result.clone();
        let bytes = blocking(move || {
            let mut out = Vec::new();
            result.write_ipc(&mut out)?;
            Ok(out)
        })
        .await?;
        self.charge(&rows, bytes.len() as u64)?;
        Ok(bytes)
    }

    async fn drop(&mut self, rows: Resource<RowsHandle>) -> wasmtime::Result<()> {
        self.table.delete(rows)?;
        self.ctx.open_results = self.ctx.open_results.saturating_sub(1);
        Ok(())
    }
}

impl PgcacheView<'_> {
    /// A fetch into memory stopped by its byte cap, when the cap was a memory budget's and
    /// not the per-result limit, is reported as that budget.
    fn name_memory_budget(
        &self,
        result: crate::Result<ResultSet>,
        in_memory: bool,
    ) -> HostResult<ResultSet> {
        match result {
            Err(crate::Error::LimitExceeded {
                what: "bytes per result",
                limit,
            }) if in_memory && limit < self.ctx.limits.max_bytes => {
                let run = &self.ctx.run_memory;
                let budget = if run.available() <= self.ctx.host_memory.available() {
                    run
                } else {
                    &self.ctx.host_memory
                };
                Err(HostError::limit(format!(
                    "{} limit of {} exceeded",
                    budget.name(),
                    budget.limit()
                )))
            }
            other => Ok(other?),
        }
    }

    /// Counts `bytes` handed to the guest from one result against the byte limit.
    fn charge(&mut self, rows: &Resource<RowsHandle>, bytes: u64) -> HostResult<()> {
        let limit = self.ctx.limits.max_bytes;
        let handle = self.table.get_mut(rows)?;
        handle.sent += bytes;
        if handle.sent > limit {
            return Err(HostError::limit(format!(
                "bytes per result limit of {limit} exceeded"
            )));
        }
        Ok(())
    }
}

/// Runs blocking work (Parquet reads, conversions) off the async executor.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> crate::Result<T> + Send + 'static,
) -> HostResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| HostError::Trap(wasmtime::Error::msg(format!("a host worker failed: {e}"))))?
        .map_err(HostError::from)
}
