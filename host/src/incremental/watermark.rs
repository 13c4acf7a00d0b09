//! The watermark arithmetic of the default incremental mode, as pure functions: where a
//! refresh reads from, and what it leaves as the safe value and the checkpoints still waiting.
//! The refresh ([`super::refresh`]) asks the server and moves files; every decision about
//! values is made here, where property tests replay interleavings of transactions against it.
//!
//! - The *safe* value: every row below it that will ever commit is stored. A refresh reads the
//!   rows at or above it (lowered by the lookback) and replaces the stored ones there.
//! - A *checkpoint* per refresh that ran while transactions were in flight: its maximum becomes
//!   safe once all of them have ended ([`InFlight::settles`]), as proven by a listing taken
//!   before a later refresh's snapshot. A refresh with nothing in flight around it (*quiet*)
//!   makes its own maximum safe at once.

use std::cmp::Ordering;

use super::inflight::InFlight;
use crate::cache::manifest::Checkpoint;
use crate::pg::order::{Lookback, OrderValue};

/// Most checkpoints kept waiting for their transactions; older ones are dropped, which is
/// harmless: a later checkpoint settles only once the older ones would have.
pub(crate) const MAX_PENDING: usize = 32;

/// The incremental state of an entry, as stored in its manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Watermarks {
    /// Largest ordering value stored.
    pub watermark: Option<OrderValue>,
    /// Rows below this value are final; `None` means nothing is final yet.
    pub safe: Option<OrderValue>,
    /// Checkpoints waiting for their transactions, oldest first.
    pub pending: Vec<Checkpoint>,
}

/// What a refresh does, decided before it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// How many of the oldest pending checkpoints have settled.
    pub settled: usize,
    /// The largest maximum among them: the safe value may move up to it.
    pub advance: Option<OrderValue>,
    /// Read the rows at or above this value; `None` reads everything (first run).
    pub read_from: Option<OrderValue>,
    /// Values the new parts are cut at, so later refreshes keep whole parts (sorted).
    pub cuts: Vec<OrderValue>,
}

/// The larger of two optional values.
pub(crate) fn max_of(a: Option<OrderValue>, b: Option<OrderValue>) -> Option<OrderValue> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.compare(&a) == Ordering::Greater {
            b
        } else {
            a
        }),
        (a, b) => a.or(b),
    }
}

/// Plans a refresh of `state` (`None`: nothing stored) given the transactions in flight
/// listed before its snapshot.
pub(crate) fn plan(
    state: Option<&Watermarks>,
    before: &InFlight,
    lookback: Option<&Lookback>,
) -> Plan {
    let Some(state) = state else {
        return Plan {
            settled: 0,
            advance: None,
            read_from: None,
            cuts: Vec::new(),
        };
    };
    // A checkpoint settles once its transactions ended; an older one then has too.
    let settled = state
        .pending
        .iter()
        .rposition(|c| before.settles(c))
        .map_or(0, |i| i + 1);
    let advance = state.pending[..settled]
        .iter()
        .map(|c| c.max.clone())
        .fold(None, |acc, v| max_of(acc, Some(v)));
    let read_from = state
        .safe
        .clone()
        .map(|safe| match (lookback, &state.watermark) {
            (Some(lookback), Some(w)) => {
                let back = w.minus(lookback);
                if back.compare(&safe) == Ordering::Less {
                    back
                } else {
                    safe
                }
            }
            _ => safe,
        });
    let mut cuts: Vec<OrderValue> = state.pending[settled..]
        .iter()
        .map(|c| c.max.clone())
        .collect();
    cuts.extend(advance.clone());
    cuts.sort_by(OrderValue::compare);
    cuts.dedup();
    Plan {
        settled,
        advance,
        read_from,
        cuts,
    }
}

/// What the refresh observed once it had read.
#[derive(Debug, Clone)]
pub(crate) struct Observed<'a> {
    /// The largest ordering value stored after the refresh.
    pub watermark: Option<OrderValue>,
    /// Nothing was in progress in the refresh's snapshot, nothing was in flight right after
    /// it, and no xid was handed out in between.
    pub quiet: bool,
    /// The transactions in flight right after the refresh.
    pub after: &'a InFlight,
    /// Unix microseconds, for the checkpoint.
    pub now: i64,
}

/// The state after a refresh that followed `plan`.
pub(crate) fn next(state: Option<&Watermarks>, plan: &Plan, seen: &Observed<'_>) -> Watermarks {
    let mut safe = max_of(state.and_then(|s| s.safe.clone()), plan.advance.clone());
    let mut pending: Vec<Checkpoint> = state
        .map(|s| s.pending[plan.settled..].to_vec())
        .unwrap_or_default();
    if seen.quiet {
        safe = max_of(safe, seen.watermark.clone());
        pending.clear();
    } else if let Some(w) = &seen.watermark {
        pending.push(seen.after.checkpoint(w.clone(), seen.now));
    }
    if let Some(s) = &safe {
        pending.retain(|c| c.max.compare(s) == Ordering::Greater);
    }
    if pending.len() > MAX_PENDING {
        pending.drain(..pending.len() - MAX_PENDING);
    }
    Watermarks {
        watermark: seen.watermark.clone(),
        safe,
        pending,
    }
}
