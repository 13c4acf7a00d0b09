//! What the server says about transactions in flight: the pieces of the late-commit protocol.
//!
//! A row whose ordering value was taken (from a sequence, from `now()`) by a transaction that
//! is still open can become visible *after* a refresh has already read larger values. Such a
//! row is never lost if the stored rows at or above a *safe* value are re-read until every
//! transaction that was open during the refresh that read them has ended:
//!
//! - [`in_flight`] lists the open transactions of this database by virtual transaction id
//!   (every transaction has one from its start, even before it writes and gets a real xid),
//!   plus prepared transactions;
//! - [`Snapshot`] is the refresh's own snapshot: with no transaction in progress in it, none
//!   open right after it, and no transaction id handed out in between, nothing can commit late
//!   and the refresh's maximum is final at once.

use tokio_postgres::Client;

use crate::error::{Error, Result};

const IN_FLIGHT_SQL: &str = "\
SELECT coalesce(array_agg(v ORDER BY v), '{}') FROM (
  SELECT l.virtualxid AS v
  FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
  WHERE l.locktype = 'virtualxid' AND l.mode = 'ExclusiveLock' AND l.granted
    AND l.pid <> pg_catalog.pg_backend_pid()
    AND a.datid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
    AND a.backend_type NOT IN ('autovacuum worker', 'autovacuum launcher', 'walsender')
  UNION ALL
  SELECT 'xid:' || transaction::text FROM pg_catalog.pg_prepared_xacts
  WHERE database = pg_catalog.current_database()
) t";

/// Open transactions of the current database other than the caller's, sorted.
pub(crate) async fn in_flight(client: &Client) -> Result<Vec<String>> {
    let row = client
        .query_one(IN_FLIGHT_SQL, &[])
        .await
        .map_err(|e| Error::from_pg(IN_FLIGHT_SQL, e, None))?;
    row.try_get(0)
        .map_err(|e| Error::from_pg(IN_FLIGHT_SQL, e, None))
}

/// A transaction snapshot as `pg_current_snapshot()` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub xmin: u64,
    pub xmax: u64,
    /// Transaction ids in progress at the snapshot.
    pub xip: Vec<u64>,
}

const SNAPSHOT_SQL: &str = "SELECT pg_catalog.pg_current_snapshot()::text";

impl Snapshot {
    /// The snapshot of the caller's transaction (in REPEATABLE READ, the one its statements
    /// see; called first, it is what fixes that snapshot).
    pub async fn current(client: &Client) -> Result<Snapshot> {
        let row = client
            .query_one(SNAPSHOT_SQL, &[])
            .await
            .map_err(|e| Error::from_pg(SNAPSHOT_SQL, e, None))?;
        let text: String = row
            .try_get(0)
            .map_err(|e| Error::from_pg(SNAPSHOT_SQL, e, None))?;
        Snapshot::parse(&text).ok_or_else(|| Error::Decode {
            column: "pg_current_snapshot".into(),
            message: format!("unexpected {text:?}"),
        })
    }

    /// Parses `xmin:xmax:xip,xip,...`.
    fn parse(text: &str) -> Option<Snapshot> {
        let mut it = text.split(':');
        let xmin = it.next()?.parse().ok()?;
        let xmax = it.next()?.parse().ok()?;
        let xip = match it.next()? {
            "" => Vec::new(),
            list => list
                .split(',')
                .map(|x| x.parse().ok())
                .collect::<Option<Vec<u64>>>()?,
        };
        Some(Snapshot { xmin, xmax, xip })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_snapshots() {
        assert_eq!(
            Snapshot::parse("10:12:"),
            Some(Snapshot {
                xmin: 10,
                xmax: 12,
                xip: vec![]
            })
        );
        assert_eq!(
            Snapshot::parse("10:14:10,12"),
            Some(Snapshot {
                xmin: 10,
                xmax: 14,
                xip: vec![10, 12]
            })
        );
        assert_eq!(Snapshot::parse("garbage"), None);
    }
}
