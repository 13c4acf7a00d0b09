//! Running a query and streaming its result as Arrow record batches.
//!
//! Two wire paths, one decoder: without bound parameters the result comes through
//! `COPY (query) TO STDOUT (FORMAT binary)`, the server's fastest way out; with parameters it
//! comes as binary `DataRow` messages of the extended protocol. Both feed the same
//! [`BatchBuilder`], so a batch is never larger than the configured row count.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use futures_util::{StreamExt, TryStreamExt, pin_mut};
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{Client, Statement};

use super::copy::CopyParser;
use super::decode::BatchBuilder;
use super::types::ColumnSpec;
use crate::error::{Error, Result};
use crate::pg::value::{Value, encode_params};
use crate::progress::Progress;

/// Where fetched batches go: a channel to the Parquet writer, or memory.
pub(crate) trait BatchSink: Send {
    /// Accepts one non-empty batch.
    fn push(&mut self, batch: RecordBatch) -> impl Future<Output = Result<()>> + Send;
}

impl BatchSink for Vec<RecordBatch> {
    async fn push(&mut self, batch: RecordBatch) -> Result<()> {
        Vec::push(self, batch);
        Ok(())
    }
}

/// What a statement returns, learned by preparing it.
#[derive(Debug, Clone)]
pub(crate) struct Described {
    /// The text that was prepared.
    pub sql: String,
    pub statement: Statement,
    pub columns: Vec<ColumnSpec>,
    pub schema: SchemaRef,
    /// The database's encoding, when known (see [`Described::check_text_order`]).
    pub server_encoding: Option<String>,
}

impl Described {
    /// The same statement with column `index` left out of the result (see [`Wrap::omit`]).
    pub fn without(&self, index: usize) -> Described {
        let columns: Vec<ColumnSpec> = self
            .columns
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != index)
            .map(|(_, c)| c.clone())
            .collect();
        let schema = Arc::new(Schema::new(
            columns.iter().map(ColumnSpec::field).collect::<Vec<_>>(),
        ));
        Described {
            sql: String::new(),
            statement: self.statement.clone(),
            columns,
            schema,
            server_encoding: self.server_encoding.clone(),
        }
    }

    /// Fails when two result columns share a name: a cached result is a Parquet dataset, and
    /// its readers (`pyarrow.dataset`, polars) refuse repeated field names. Checked before
    /// anything is fetched or stored; uncached results may repeat names.
    pub fn check_unique_names(&self) -> Result<()> {
        let mut repeated: Vec<String> = Vec::new();
        for (i, column) in self.columns.iter().enumerate() {
            let same: Vec<usize> = (0..self.columns.len())
                .filter(|&j| self.columns[j].name == column.name)
                .collect();
            if same.len() > 1 && same[0] == i {
                let positions: Vec<String> = same.iter().map(|j| (j + 1).to_string()).collect();
                repeated.push(format!(
                    "{:?} (columns {})",
                    column.name,
                    positions.join(", ")
                ));
            }
        }
        if repeated.is_empty() {
            return Ok(());
        }
        Err(Error::InvalidQuery(format!(
            "the result repeats column names: {}; a cached result is a Parquet dataset, whose \
             readers need distinct names: rename the columns with AS, or bypass the cache",
            repeated.join(", ")
        )))
    }

    /// Fails when column `index`, ordering an incremental query, is text in a database whose
    /// encoding orders bytes differently from UTF-8: the server compares such text by the
    /// bytes of its own encoding (`COLLATE "C"`), pgcache by UTF-8 bytes, and the two orders
    /// disagree on non-ASCII text. UTF8, SQL_ASCII (bytes passed through) and LATIN1 (byte =
    /// code point) order alike.
    pub fn check_text_order(&self, index: usize) -> Result<()> {
        let column = &self.columns[index];
        let Some(encoding) = &self.server_encoding else {
            return Ok(());
        };
        if column.kind != super::types::ColumnKind::Text
            || ["UTF8", "SQL_ASCII", "LATIN1"].contains(&encoding.as_str())
        {
            return Ok(());
        }
        Err(Error::InvalidQuery(format!(
            "ordering column {:?} is text in a database encoded {encoding}: the server orders \
             it by {encoding} bytes and pgcache by UTF-8 bytes, which disagree on non-ASCII \
             text; order by a column of another type, or use a UTF8 database",
            column.name
        )))
    }

    /// Names of the result columns, for messages.
    pub fn column_names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }

    /// The types the server inferred for `$1, $2 ...`.
    pub fn param_types(&self) -> &[Type] {
        self.statement.params()
    }
}

/// A connection plus how to fetch over it.
pub(crate) struct Fetcher<'a> {
    pub client: &'a Client,
    /// Rows per record batch.
    pub batch_rows: usize,
    /// The connection's statement timeout, to recognise its cancellations.
    pub timeout: Option<Duration>,
    /// Counters for a progress display.
    pub progress: Option<&'a Progress>,
    /// Most rows and wire bytes a fetch may bring; past them it stops with
    /// [`Error::LimitExceeded`].
    pub limits: FetchLimits,
}

/// Caps on what one fetch may bring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchLimits {
    /// Rows.
    pub max_rows: Option<u64>,
    /// Bytes as received from the server.
    pub max_bytes: Option<u64>,
}

impl FetchLimits {
    fn check(&self, rows: u64, bytes: u64) -> Result<()> {
        match (self.max_rows, self.max_bytes) {
            (Some(limit), _) if rows > limit => Err(Error::LimitExceeded {
                what: "rows per result",
                limit,
            }),
            (_, Some(limit)) if bytes > limit => Err(Error::LimitExceeded {
                what: "bytes per result",
                limit,
            }),
            _ => Ok(()),
        }
    }
}

impl Fetcher<'_> {
    /// Prepares `sql` to learn its result columns and parameter types.
    pub async fn describe(&self, sql: &str) -> Result<Described> {
        let statement = self
            .client
            .prepare(sql)
            .await
            .map_err(|e| Error::from_pg(sql, e, self.timeout))?;
        if statement.columns().is_empty() {
            return Err(Error::InvalidQuery(format!(
                "`{}` returns no rows; run it with execute instead",
                crate::error::shorten(sql)
            )));
        }
        let columns: Vec<ColumnSpec> = statement
            .columns()
            .iter()
            .map(|c| ColumnSpec::new(c.name(), c.type_(), c.type_modifier()))
            .collect();
        let schema = Arc::new(Schema::new(
            columns.iter().map(ColumnSpec::field).collect::<Vec<_>>(),
        ));
        Ok(Described {
            sql: sql.to_owned(),
            statement,
            columns,
            schema,
            server_encoding: None,
        })
    }

    /// Runs `sql` (already wrapped) and pushes its rows to `sink` as batches of at most
    /// `batch_rows` rows. Returns the number of rows.
    pub async fn fetch(
        &self,
        sql: &str,
        params: &[Value],
        described: &Described,
        sink: &mut impl BatchSink,
    ) -> Result<u64> {
        let (client, progress) = (self.client, self.progress);
        let pg_err = |e| Error::from_pg(sql, e, self.timeout);
        let mut rows = BatchBuilder::new(
            described.schema.clone(),
            described.columns.clone(),
            self.batch_rows,
        );
        let mut total = 0u64;
        if params.is_empty() && described.param_types().is_empty() {
            let copy = client
                .copy_out(&format!("COPY (\n{sql}\n) TO STDOUT (FORMAT binary)"))
                .await
                .map_err(pg_err)?;
            pin_mut!(copy);
            let mut parser = CopyParser::default();
            let mut ready = Vec::new();
            let mut bytes = 0u64;
            while let Some(chunk) = copy.next().await {
                let chunk = chunk.map_err(pg_err)?;
                bytes += chunk.len() as u64;
                let before = rows.rows();
                parser.feed(&chunk, &mut rows, &mut ready)?;
                if let Some(p) = progress {
                    let done: usize = ready.iter().map(RecordBatch::num_rows).sum();
                    p.add(
                        (rows.rows() + done).saturating_sub(before) as u64,
                        chunk.len() as u64,
                    );
                }
                for batch in ready.drain(..) {
                    total += batch.num_rows() as u64;
                    sink.push(batch).await?;
                }
                self.limits.check(total + rows.rows() as u64, bytes)?;
            }
            parser.finish()?;
        } else {
            let statement = if sql == described.sql {
                described.statement.clone()
            } else {
                client.prepare(sql).await.map_err(pg_err)?
            };
            let encoded = encode_params(statement.params(), params)?;
            let stream = client
                .query_raw(&statement, encoded.iter())
                .await
                .map_err(pg_err)?;
            pin_mut!(stream);
            let columns = rows.columns();
            let mut bytes = 0u64;
            while let Some(row) = stream.try_next().await.map_err(pg_err)? {
                bytes += row.raw_size_bytes() as u64;
                self.limits.check(total + rows.rows() as u64 + 1, bytes)?;
                for index in 0..columns {
                    let Raw(value) = row.try_get(index).map_err(pg_err)?;
                    rows.append(index, value)?;
                }
                if let Some(p) = progress {
                    p.add(1, row.raw_size_bytes() as u64);
                }
                if rows.end_row() {
                    let batch = rows.finish()?;
                    total += batch.num_rows() as u64;
                    sink.push(batch).await?;
                }
            }
        }
        if rows.rows() > 0 {
            let batch = rows.finish()?;
            total += batch.num_rows() as u64;
            sink.push(batch).await?;
        }
        Ok(total)
    }
}

/// A `SELECT` over the user's query: columns the server must send as text are cast, an
/// optional filter and order are applied. Columns are renamed by position (`_c1, _c2 ...`) in
/// the alias list, so duplicate or odd column names cannot make a reference ambiguous.
#[derive(Debug, Default)]
pub(crate) struct Wrap {
    /// Which rows: a condition over the positional names.
    pub filter: Option<super::predicate::Predicate>,
    /// ORDER BY expression over the positional names.
    pub order_by: Option<String>,
    /// A column of the query left out of the result (by index), e.g. `xmin` in xmin mode.
    pub omit: Option<usize>,
}

/// Positional name of column `index` (zero-based) inside a wrapped query.
pub(crate) fn positional(index: usize) -> String {
    format!("_c{}", index + 1)
}

/// The SQL to run for `query` with result `columns`: the query itself when nothing needs
/// wrapping, else the wrapped form.
pub(crate) fn wrapped_sql(query: &str, columns: &[ColumnSpec], wrap: &Wrap) -> String {
    let needs_text = columns.iter().any(|c| c.as_text);
    if !needs_text && wrap.filter.is_none() && wrap.order_by.is_none() && wrap.omit.is_none() {
        return query.to_owned();
    }
    let select: Vec<String> = columns
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != wrap.omit)
        .map(|(i, c)| {
            if c.as_text {
                format!("{}::text", positional(i))
            } else {
                positional(i)
            }
        })
        .collect();
    let aliases: Vec<String> = (0..columns.len()).map(positional).collect();
    let mut sql = format!(
        "SELECT {} FROM (\n{query}\n) AS _pgcache_q({})",
        select.join(", "),
        aliases.join(", ")
    );
    if let Some(filter) = &wrap.filter {
        sql.push_str(" WHERE ");
        sql.push_str(&filter.sql());
    }
    if let Some(order) = &wrap.order_by {
        sql.push_str(" ORDER BY ");
        sql.push_str(order);
    }
    sql
}

/// The first row of `sql` run with `params` (typed as the server infers them), for statements
/// that answer with one row. Errors name `what`.
pub(crate) async fn first_row(
    client: &Client,
    sql: &str,
    params: &[Value],
    what: &str,
) -> Result<Option<tokio_postgres::Row>> {
    let pg = |e| Error::from_pg(what, e, None);
    let statement = client.prepare(sql).await.map_err(pg)?;
    let encoded = encode_params(statement.params(), params)?;
    let rows = client
        .query_raw(&statement, encoded.iter())
        .await
        .map_err(pg)?;
    pin_mut!(rows);
    rows.try_next().await.map_err(pg)
}

/// A field's raw wire bytes, for any type.
pub(crate) struct Raw<'a>(pub Option<&'a [u8]>);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Some(raw)))
    }

    fn from_sql_null(
        _: &Type,
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_postgres::types::Type;

    #[test]
    fn wrapping_casts_unknown_types_and_renames_by_position() {
        let cols = vec![
            ColumnSpec::new("id", &Type::INT8, -1),
            ColumnSpec::new("id", &Type::POINT, -1),
        ];
        let sql = wrapped_sql(
            "SELECT a.id, b.id FROM a, b -- trailing comment",
            &cols,
            &Wrap::default(),
        );
        assert_eq!(
            sql,
            "SELECT _c1, _c2::text FROM (\nSELECT a.id, b.id FROM a, b -- trailing comment\n) AS _pgcache_q(_c1, _c2)"
        );
        let plain = vec![ColumnSpec::new("id", &Type::INT8, -1)];
        assert_eq!(
            wrapped_sql("SELECT 1 AS id", &plain, &Wrap::default()),
            "SELECT 1 AS id"
        );
    }
}
