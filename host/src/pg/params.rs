//! Text parameters read by the server: what `-p '2024-01-05 10:00 Europe/Lisbon'` means is
//! decided by PostgreSQL's own input function for the placeholder's type, under the session's
//! `TimeZone`, `DateStyle` and `IntervalStyle`, never by a re-implementation in pgcache.
//!
//! [`read_text_params`] sends every [`Value::Text`] in the text format, typed as the server
//! inferred its placeholder, in one `SELECT $1, $2 ...`, and takes back the binary value the
//! server made of it. That value is then both what the statement is bound with and what the
//! cache key is computed from, so the key follows the value as the server reads it: the same
//! text read under another `TimeZone`, on another day (`today`, `now`), or after a change of
//! the time zone rules is another key, while two spellings of one value (`2024-01-05 10:00+00`,
//! `2024-01-05T10:00:00Z`) are one. Keying on the raw text plus the settings that affect
//! parsing instead would need the same round trip to learn the settings, and would still reuse
//! `today` forever.

use std::borrow::Cow;
use std::time::Duration;

use futures_util::{TryStreamExt, pin_mut};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

use super::fetch::Raw;
use crate::error::{Error, Result};
use crate::pg::value::{Encoded, Value, bad_parameter, check_count, check_size};

/// Whether any of `params` is text the server must read before it can be keyed or bound.
pub(crate) fn has_text(params: &[Value]) -> bool {
    params.iter().any(|p| matches!(p, Value::Text(_)))
}

/// Prepares `sql` to learn its placeholders' types, then reads its text parameters
/// (see [`read_text_params`]). Without text parameters nothing is sent.
pub(crate) async fn read_for_statement<'a>(
    client: &Client,
    sql: &str,
    params: &'a [Value],
    timeout: Option<Duration>,
) -> Result<Cow<'a, [Value]>> {
    if !has_text(params) {
        return Ok(Cow::Borrowed(params));
    }
    let statement = client
        .prepare(sql)
        .await
        .map_err(|e| Error::from_pg(sql, e, timeout))?;
    read_text_params(client, statement.params(), params, timeout).await
}

/// Replaces every [`Value::Text`] of `params` by the binary value the server's input function
/// makes of it for the placeholder's type in `types` (a [`Value::Other`] of that type). A value
/// the server refuses is [`Error::BadParameter`] naming the placeholder, the type and the
/// server's message. A type without a binary output function keeps its text, which the server
/// then reads when the statement is bound. Runs outside a transaction block: a refused value
/// would abort the transaction it ran in.
pub(crate) async fn read_text_params<'a>(
    client: &Client,
    types: &[Type],
    params: &'a [Value],
    timeout: Option<Duration>,
) -> Result<Cow<'a, [Value]>> {
    check_count(types, params)?;
    let texts: Vec<(usize, &str)> = params
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p {
            Value::Text(s) => Some((i, s.as_str())),
            _ => None,
        })
        .collect();
    if texts.is_empty() {
        return Ok(Cow::Borrowed(params));
    }
    for &(i, text) in &texts {
        check_size(text.len()).map_err(|m| bad_parameter(i, &types[i], m))?;
    }
    let mut read = params.to_vec();
    match select(client, &texts, types).await {
        Ok(values) => {
            for (&(i, _), value) in texts.iter().zip(values) {
                read[i] = reading(&types[i], value);
            }
        }
        // Find the value the server refused, one at a time; keep the text of types the
        // server cannot send in binary.
        Err(e) if e.as_db_error().is_some() => {
            for &(i, text) in &texts {
                match select(client, &[(i, text)], types).await {
                    Ok(mut values) => read[i] = reading(&types[i], values.pop().flatten()),
                    Err(e) if e.code() == Some(&SqlState::UNDEFINED_FUNCTION) => {}
                    Err(e) => {
                        return Err(match e.as_db_error() {
                            Some(db) => bad_parameter(i, &types[i], db.message().to_owned()),
                            None => Error::from_pg("reading a parameter", e, timeout),
                        });
                    }
                }
            }
        }
        Err(e) => return Err(Error::from_pg("reading parameters", e, timeout)),
    }
    Ok(Cow::Owned(read))
}

/// `SELECT $1, $2 ...` over `texts` (placeholder index, text), each typed as its placeholder
/// and sent in the text format; the values come back in binary.
async fn select(
    client: &Client,
    texts: &[(usize, &str)],
    types: &[Type],
) -> std::result::Result<Vec<Option<Vec<u8>>>, tokio_postgres::Error> {
    let columns: Vec<String> = (1..=texts.len()).map(|n| format!("${n}")).collect();
    let sql = format!("SELECT {}", columns.join(", "));
    let bound: Vec<(Encoded, Type)> = texts
        .iter()
        .map(|&(i, text)| (Encoded::text(text), types[i].clone()))
        .collect();
    let rows = client
        .query_typed_raw(&sql, bound.iter().map(|(e, t)| (e, t.clone())))
        .await?;
    pin_mut!(rows);
    let mut values = Vec::with_capacity(texts.len());
    if let Some(row) = rows.try_next().await? {
        for index in 0..texts.len() {
            let Raw(value) = row.try_get(index)?;
            values.push(value.map(<[u8]>::to_vec));
        }
    }
    // Drain the stream so the statement completes.
    while rows.try_next().await?.is_some() {}
    Ok(values)
}

/// The server's reading of a text value for a placeholder of type `ty`.
fn reading(ty: &Type, value: Option<Vec<u8>>) -> Value {
    match value {
        Some(bytes) => Value::Other {
            type_name: ty.name().to_owned(),
            bytes,
        },
        None => Value::Null,
    }
}

/// [`read_for_statement`] on a connection from `pool`, taken only when there is text to read:
/// typed parameters need no round trip, so their cache hits need no database at all.
pub(crate) async fn read_with_pool<'a>(
    pool: &super::pool::PgPool,
    sql: &str,
    params: &'a [Value],
    timeout: Option<Duration>,
) -> Result<Cow<'a, [Value]>> {
    if !has_text(params) {
        return Ok(Cow::Borrowed(params));
    }
    let conn = pool.get().await?;
    read_for_statement(&conn, sql, params, timeout).await
}
