//! What an incremental refresh refuses before it stores anything, because the mode asked for
//! would lose rows or silently ignore an option:
//!
//! - a lookback in a unit the ordering column does not have ([`lookback_unit`]);
//! - the default mode (no lookback) on a standby, where the primary's transactions cannot be
//!   listed ([`standby`]);
//! - the default mode (no lookback) when the ordering column's default is a sequence with a
//!   per-session cache, which hands ids out of order ([`cached_sequence`]).

use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::pg::fetch::Described;
use crate::pg::order::Lookback;
use crate::pg::types::ColumnKind;

/// How a lookback reads in messages.
fn describe_lookback(lookback: &Lookback) -> String {
    match lookback {
        Lookback::Micros(m) => format!("{m} microseconds (a duration)"),
        Lookback::Amount(n) => format!("{n} (a plain amount)"),
    }
}

/// Fails unless `lookback` is in the unit of an ordering column of `kind`: a duration
/// (`2h`, `Lookback::Micros`) for `date`, `timestamp` and `timestamptz`, an amount of the
/// column's unit (`1000`, `Lookback::Amount`) for integers and `numeric`. Text columns and
/// xmin mode take no lookback.
pub(crate) fn lookback_unit(
    column: &str,
    kind: &ColumnKind,
    type_name: &str,
    lookback: Option<&Lookback>,
    xmin: bool,
) -> Result<()> {
    let Some(lookback) = lookback else {
        return Ok(());
    };
    let time = matches!(
        kind,
        ColumnKind::Timestamp | ColumnKind::TimestampTz | ColumnKind::Date
    );
    let number = matches!(
        kind,
        ColumnKind::Int2
            | ColumnKind::Int4
            | ColumnKind::Int8
            | ColumnKind::Decimal { .. }
            | ColumnKind::NumericText
    );
    let expected = match lookback {
        _ if xmin => "xmin mode re-reads by transaction id, so it takes no lookback; leave it out",
        Lookback::Micros(_) if time => return Ok(()),
        Lookback::Amount(_) if number => return Ok(()),
        Lookback::Amount(_) if time => {
            "give a duration with a unit, such as 90s, 30m, 2h or 1d (Lookback::Micros)"
        }
        Lookback::Micros(_) if number => {
            "give a plain amount in the column's own unit, such as 1000 (Lookback::Amount)"
        }
        _ => "text columns take no lookback",
    };
    Err(Error::LookbackUnit {
        column: column.to_owned(),
        type_name: type_name.to_owned(),
        lookback: describe_lookback(lookback),
        expected: expected.to_owned(),
    })
}

/// Fails when the default mode (no lookback) would run on a standby: `pg_locks` there lists the
/// standby's own transactions, not the primary's, so refreshes would look quiet while the
/// primary's transactions are open, and their late rows would be lost. `in_recovery` is what
/// the server answered (`pg_is_in_recovery()`, asked with the listing of transactions in
/// flight: when asking fails, the refresh fails with it, so an unknown answer refuses too).
pub(crate) fn standby(column: &str, in_recovery: bool, lookback: Option<&Lookback>) -> Result<()> {
    match (in_recovery, lookback) {
        (false, _) | (true, Some(_)) => Ok(()),
        (true, None) => Err(Error::IncrementalRefused {
            column: column.to_owned(),
            reason: "the server is a standby (pg_is_in_recovery()), where the primary's open \
                     transactions cannot be listed; use xmin mode (exact, also for updates) or \
                     a --lookback wide enough for the latest commit, or run against the primary"
                .to_owned(),
        }),
    }
}

/// Sequences with a cache above 1 that feed the table column behind result column `index`:
/// through its default expression (`serial`, `DEFAULT nextval(...)`) or as its identity.
const CACHED_SEQUENCE_SQL: &str = "\
SELECT s.seqrelid::pg_catalog.regclass::text, s.seqcache
FROM pg_catalog.pg_sequence s
WHERE s.seqcache > 1 AND s.seqrelid IN (
  SELECT d.refobjid FROM pg_catalog.pg_attrdef ad
  JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass
   AND d.objid = ad.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
  WHERE ad.adrelid = $1 AND ad.adnum = $2
  UNION ALL
  SELECT d.objid FROM pg_catalog.pg_depend d
  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
    AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
    AND d.refobjid = $1 AND d.refobjsubid = $2 AND d.deptype = 'i')
ORDER BY 1";

/// Fails when the ordering column (result column `index`) is a table column whose default or
/// identity is a sequence with `CACHE` above 1. Each session then takes ids from its own
/// block, so a transaction that starts after a refresh can still insert an id below what
/// that refresh read, and the default mode would lose it. A lookback (wider than the ids
/// that can be cached at once) or xmin mode keeps such tables.
pub(crate) async fn cached_sequence(
    client: &Client,
    described: &Described,
    index: usize,
    column: &str,
) -> Result<()> {
    let Some(source) = described.statement.columns().get(index) else {
        return Ok(());
    };
    let (Some(table), Some(attnum)) = (source.table_oid(), source.column_id()) else {
        return Ok(());
    };
    if table == 0 || attnum <= 0 {
        return Ok(());
    }
    let rows = client
        .query(CACHED_SEQUENCE_SQL, &[&table, &attnum])
        .await
        .map_err(|e| Error::from_pg(CACHED_SEQUENCE_SQL, e, None))?;
    let Some(row) = rows.first() else {
        return Ok(());
    };
    let get = |e| Error::from_pg(CACHED_SEQUENCE_SQL, e, None);
    let sequence: String = row.try_get(0).map_err(get)?;
    let cache: i64 = row.try_get(1).map_err(get)?;
    Err(Error::IncrementalRefused {
        column: column.to_owned(),
        reason: format!(
            "its values come from sequence {sequence} with CACHE {cache}, which hands ids out \
             of order across sessions, so a row inserted after a refresh can fall below what \
             that refresh read; use --lookback (at least the ids all sessions can hold cached, \
             e.g. {cache} x the number of sessions) or xmin mode, or ALTER SEQUENCE {sequence} \
             CACHE 1"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookback_units_must_fit_the_column() {
        let ok = |kind: ColumnKind, l: Lookback| lookback_unit("c", &kind, "t", Some(&l), false);
        assert!(ok(ColumnKind::TimestampTz, Lookback::Micros(1)).is_ok());
        assert!(ok(ColumnKind::Date, Lookback::Micros(1)).is_ok());
        assert!(ok(ColumnKind::Int8, Lookback::Amount(1)).is_ok());
        assert!(ok(ColumnKind::NumericText, Lookback::Amount(1)).is_ok());
        let err = ok(ColumnKind::TimestampTz, Lookback::Amount(3600)).unwrap_err();
        assert!(err.to_string().contains("2h"), "{err}");
        let err = ok(ColumnKind::Int4, Lookback::Micros(7_200_000_000)).unwrap_err();
        assert!(err.to_string().contains("plain amount"), "{err}");
        assert!(ok(ColumnKind::Text, Lookback::Amount(1)).is_err());
        assert!(
            lookback_unit(
                "c",
                &ColumnKind::Int8,
                "int8",
                Some(&Lookback::Amount(1)),
                true
            )
            .is_err()
        );
        assert!(lookback_unit("c", &ColumnKind::Text, "text", None, true).is_ok());
    }

    #[test]
    fn a_standby_refuses_the_default_mode() {
        assert!(standby("c", false, None).is_ok());
        assert!(standby("c", true, Some(&Lookback::Amount(10))).is_ok());
        let err = standby("c", true, None).unwrap_err();
        assert!(err.to_string().contains("xmin mode"), "{err}");
    }
}
