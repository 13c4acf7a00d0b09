//! Transactions in flight, as the server lists them, and the rule that says when every
//! transaction open at an earlier refresh has ended: the heart of the late-commit protocol.
//!
//! A row whose ordering value was taken (from a sequence, from `now()`) by a transaction that
//! is still open can become visible *after* a refresh has already read larger values. The
//! refresh records the transactions open right after it (a [`Checkpoint`]); its maximum becomes
//! final once all of them have ended. "Ended" must mean committed or aborted:
//!
//! - a running transaction is known by its virtual transaction id (every transaction has one
//!   from its start, before it writes and gets a real xid), and by its top-level xid when it
//!   has one;
//! - `PREPARE TRANSACTION` ends the virtual transaction but not the transaction: its rows
//!   become visible only at `COMMIT PREPARED`, under its xid (`pg_prepared_xacts`). So a
//!   checkpoint also waits for every recorded xid that is now prepared, and for the prepared
//!   ones recorded as such;
//! - a transaction that had no xid yet at the checkpoint can take one later and prepare: its
//!   xid is then at least the next xid of the checkpoint's listing (`xmax`), so while such a
//!   transaction was recorded, any prepared transaction with an xid at or above `xmax` holds
//!   the checkpoint too.
//!
//! The listing reads `pg_locks` once (fast-path virtual xid locks first, then the main lock
//! table with the `transactionid` locks), and `pg_prepared_xacts` only after it, in a second
//! statement: a transaction that prepares while the listing runs is then seen either running
//! with its xid or prepared.

use std::collections::BTreeSet;

use tokio_postgres::Client;

use crate::cache::manifest::Checkpoint;
use crate::error::{Error, Result};

const RUNNING_SQL: &str = "\
WITH l AS MATERIALIZED (
  SELECT locktype, virtualxid, virtualtransaction, transactionid::text::int8 AS xid, pid
  FROM pg_catalog.pg_locks
  WHERE locktype IN ('virtualxid', 'transactionid') AND mode = 'ExclusiveLock' AND granted
), v AS (
  SELECT l.virtualxid AS vxid
  FROM l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
  WHERE l.locktype = 'virtualxid' AND l.pid <> pg_catalog.pg_backend_pid()
    AND a.datid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
    AND a.backend_type NOT IN ('autovacuum worker', 'autovacuum launcher', 'walsender')
)
SELECT pg_catalog.pg_is_in_recovery(),
  pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::text::int8,
  coalesce(array_agg(v.vxid ORDER BY v.vxid), '{}'),
  coalesce(array_agg((SELECT min(x.xid) FROM l x
                      WHERE x.locktype = 'transactionid' AND x.virtualtransaction = v.vxid)
                     ORDER BY v.vxid), '{}')
FROM v";

const PREPARED_SQL: &str = "\
SELECT coalesce(array_agg(transaction::text::int8 ORDER BY transaction::text::int8), '{}')
FROM pg_catalog.pg_prepared_xacts WHERE database = pg_catalog.current_database()";

/// The prefix of prepared transactions' entries in [`Checkpoint::in_flight`].
const PREPARED_PREFIX: &str = "xid:";

/// A running transaction: its virtual transaction id, and its top-level xid if it has one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Running {
    /// `backend/local`, as in `pg_locks.virtualxid`.
    pub vxid: String,
    /// The top-level transaction id (64-bit), when one was assigned.
    pub xid: Option<u64>,
}

/// The transactions of this database in flight at one moment, other than the caller's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct InFlight {
    /// Whether the server is a standby (`pg_is_in_recovery()`), asked in the same statement.
    pub in_recovery: bool,
    /// The next transaction id when the listing began (`pg_snapshot_xmax` of its snapshot):
    /// every xid assigned later is at least this.
    pub xmax: u64,
    /// Running transactions, sorted by virtual transaction id.
    pub running: Vec<Running>,
    /// Xids (64-bit) of prepared transactions, sorted.
    pub prepared: Vec<u64>,
}

impl InFlight {
    /// Lists the transactions in flight (see the module documentation for the order).
    pub async fn list(client: &Client) -> Result<InFlight> {
        let row = client
            .query_one(RUNNING_SQL, &[])
            .await
            .map_err(|e| Error::from_pg(RUNNING_SQL, e, None))?;
        let get = |e| Error::from_pg(RUNNING_SQL, e, None);
        let in_recovery: bool = row.try_get(0).map_err(get)?;
        let xmax: i64 = row.try_get(1).map_err(get)?;
        let vxids: Vec<String> = row.try_get(2).map_err(get)?;
        let xids: Vec<Option<i64>> = row.try_get(3).map_err(get)?;
        let prepared: Vec<i64> = client
            .query_one(PREPARED_SQL, &[])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(|e| Error::from_pg(PREPARED_SQL, e, None))?;
        let xmax = u64::try_from(xmax).unwrap_or(0);
        Ok(InFlight::from_lists(
            in_recovery,
            xmax,
            vxids,
            xids,
            prepared,
        ))
    }

    /// Assembles a listing from the server's columns; 32-bit xids are widened against `xmax`.
    fn from_lists(
        in_recovery: bool,
        xmax: u64,
        vxids: Vec<String>,
        xids: Vec<Option<i64>>,
        prepared: Vec<i64>,
    ) -> InFlight {
        let widen32 = |x: i64| widen(u32::try_from(x).unwrap_or(u32::MAX), xmax);
        let mut running: Vec<Running> = vxids
            .into_iter()
            .enumerate()
            .map(|(i, vxid)| Running {
                vxid,
                xid: xids.get(i).copied().flatten().map(widen32),
            })
            .collect();
        running.sort();
        running.dedup_by(|a, b| a.vxid == b.vxid);
        let mut prepared: Vec<u64> = prepared.into_iter().map(widen32).collect();
        prepared.sort_unstable();
        prepared.dedup();
        InFlight {
            in_recovery,
            xmax,
            running,
            prepared,
        }
    }

    /// Nothing in flight at all.
    pub fn is_empty(&self) -> bool {
        self.running.is_empty() && self.prepared.is_empty()
    }

    /// A checkpoint of a refresh with maximum `max`, waiting for these transactions.
    pub fn checkpoint(&self, max: crate::OrderValue, at: i64) -> Checkpoint {
        let mut in_flight: Vec<String> = self.running.iter().map(|r| r.vxid.clone()).collect();
        in_flight.extend(
            self.prepared
                .iter()
                .map(|x| format!("{PREPARED_PREFIX}{x}")),
        );
        Checkpoint {
            max,
            in_flight,
            xids: self
                .running
                .iter()
                .filter_map(|r| Some((r.vxid.clone(), r.xid?)))
                .collect(),
            xmax: Some(self.xmax),
            at,
        }
    }

    /// Whether every transaction recorded by `checkpoint` has ended (committed or aborted)
    /// by the time of this listing.
    ///
    /// Checkpoints written before xids were recorded (no `xmax`) know only virtual ids: for
    /// them any prepared transaction may be one of theirs, and holds them.
    pub fn settles(&self, checkpoint: &Checkpoint) -> bool {
        let running: BTreeSet<&str> = self.running.iter().map(|r| r.vxid.as_str()).collect();
        let prepared: BTreeSet<u64> = self.prepared.iter().copied().collect();
        let mut xid_unknown = false;
        for entry in &checkpoint.in_flight {
            if let Some(xid) = entry.strip_prefix(PREPARED_PREFIX) {
                match (xid.parse::<u64>(), checkpoint.xmax) {
                    (Ok(xid), Some(_)) if !prepared.contains(&xid) => {}
                    // Unreadable, still prepared, or from an older manifest (32-bit xids).
                    _ if prepared.is_empty() => {}
                    _ => return false,
                }
            } else if running.contains(entry.as_str()) {
                return false;
            } else {
                match checkpoint.xids.get(entry) {
                    Some(xid) if prepared.contains(xid) => return false,
                    Some(_) => {}
                    None => xid_unknown = true,
                }
            }
        }
        if xid_unknown {
            // It may have taken an xid after the checkpoint and prepared.
            let horizon = checkpoint.xmax.unwrap_or(0);
            if prepared.iter().any(|x| *x >= horizon) {
                return false;
            }
        }
        true
    }
}

/// The 64-bit transaction id whose low 32 bits are `xid`, nearest to `reference` (within
/// 2^31 either way, which running and prepared transactions always are).
pub(crate) fn widen(xid: u32, reference: u64) -> u64 {
    let delta = i64::from(xid.wrapping_sub(reference as u32) as i32);
    reference
        .checked_add_signed(delta)
        .unwrap_or(u64::from(xid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OrderValue;
    use std::collections::BTreeMap;

    fn listing(running: &[(&str, Option<u64>)], prepared: &[u64], xmax: u64) -> InFlight {
        InFlight {
            in_recovery: false,
            xmax,
            running: running
                .iter()
                .map(|(v, x)| Running {
                    vxid: (*v).to_owned(),
                    xid: *x,
                })
                .collect(),
            prepared: prepared.to_vec(),
        }
    }

    #[test]
    fn widens_around_the_reference() {
        assert_eq!(widen(10, 12), 10);
        assert_eq!(widen(14, 12), 14);
        let next = (5u64 << 32) + 3;
        assert_eq!(widen(u32::MAX - 1, next), (5u64 << 32) - 2);
        assert_eq!(widen(4, next), next + 1);
    }

    #[test]
    fn a_prepared_transaction_still_holds_its_checkpoint() {
        let at = listing(&[("3/7", Some(11)), ("4/2", None)], &[], 13);
        let c = at.checkpoint(OrderValue::Int(12), 0);
        // 3/7 prepared as xid 11: its virtual id is gone, the transaction is not.
        assert!(!listing(&[("4/2", None)], &[], 20).settles(&c));
        assert!(!listing(&[], &[11], 20).settles(&c));
        // 4/2 had no xid: it may have taken 15 and prepared.
        assert!(!listing(&[], &[15], 20).settles(&c));
        // An older prepared transaction that was not recorded does not hold it.
        assert!(listing(&[], &[9], 20).settles(&c));
        assert!(listing(&[("5/1", Some(16))], &[], 20).settles(&c));
    }

    #[test]
    fn recorded_prepared_transactions_hold_until_they_end() {
        let c = listing(&[], &[8], 13).checkpoint(OrderValue::Int(1), 0);
        assert!(!listing(&[], &[8], 20).settles(&c));
        assert!(listing(&[], &[], 20).settles(&c));
        // Only xids known at the checkpoint matter when none was unknown.
        assert!(listing(&[], &[17], 20).settles(&c));
    }

    #[test]
    fn checkpoints_of_older_manifests_are_held_by_any_prepared_transaction() {
        let old = Checkpoint {
            max: OrderValue::Int(1),
            in_flight: vec!["3/7".into(), "xid:8".into()],
            xids: BTreeMap::new(),
            xmax: None,
            at: 0,
        };
        assert!(!listing(&[], &[1], 20).settles(&old));
        assert!(!listing(&[("3/7", None)], &[], 20).settles(&old));
        assert!(listing(&[("9/9", None)], &[], 20).settles(&old));
    }

    #[test]
    fn assembles_listings() {
        let l = InFlight::from_lists(
            false,
            (1u64 << 32) + 5,
            vec!["4/1".into(), "3/1".into()],
            vec![None, Some(4)],
            vec![7, 2],
        );
        assert_eq!(
            l.running,
            [
                Running {
                    vxid: "3/1".into(),
                    xid: Some((1u64 << 32) + 4)
                },
                Running {
                    vxid: "4/1".into(),
                    xid: None
                }
            ]
        );
        assert_eq!(l.prepared, [(1u64 << 32) + 2, (1u64 << 32) + 7]);
    }
}
