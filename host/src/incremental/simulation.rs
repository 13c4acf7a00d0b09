//! Property tests of the late-commit protocol: a model database runs generated interleavings
//! of transactions that take ids from a sequence, insert them, take xids, prepare, commit and
//! abort, while refreshes step through the same phases as [`super::refresh`] (listing before,
//! snapshot and read, listing after, closing snapshot) using the very functions it uses
//! ([`super::watermark`], [`super::inflight`]). After every refresh the cache must hold exactly
//! the rows its snapshot saw — nothing lost, nothing doubled — and once every transaction has
//! ended, a few refreshes make the safe value catch up with the watermark.
//!
//! The model follows PostgreSQL where the protocol depends on it: a transaction has a virtual
//! id from its start and an xid only once it writes (or asks for one, or prepares); `PREPARE
//! TRANSACTION` releases the virtual id but not the xid; `pg_locks` is read virtual ids first,
//! then xids, and `pg_prepared_xacts` after both; snapshots list the xids in progress, prepared
//! ones included.

#![allow(clippy::unwrap_used, reason = "test code")]

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::inflight::{InFlight, Running};
use super::watermark::{self, Observed, Plan, Watermarks};
use crate::pg::order::{Lookback, OrderValue};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Running,
    Prepared,
    Ended,
}

#[derive(Debug, Clone)]
struct Tx {
    vxid: String,
    xid: Option<u64>,
    status: Status,
    /// Ids taken from the sequence and not inserted yet.
    taken: Vec<i64>,
    /// Rows written, visible once the transaction commits.
    written: Vec<i64>,
}

/// A listing of transactions in flight, taken in three steps like the real one.
#[derive(Debug, Clone, Default)]
struct Listing {
    xmax: u64,
    vxids: Vec<String>,
    xids: Vec<Option<u64>>,
    prepared: Vec<u64>,
    step: u8,
}

impl Listing {
    fn done(&self) -> InFlight {
        let mut running: Vec<Running> = self
            .vxids
            .iter()
            .zip(&self.xids)
            .map(|(v, x)| Running {
                vxid: v.clone(),
                xid: *x,
            })
            .collect();
        running.sort();
        InFlight {
            in_recovery: false,
            xmax: self.xmax,
            running,
            prepared: self.prepared.clone(),
        }
    }
}

/// Where the refresh in progress is.
#[derive(Debug, Clone)]
enum Phase {
    Idle,
    Before(Listing),
    /// Read done; listing what is in flight after it.
    After(Box<Read>),
}

/// A refresh that has read: what it planned and produced, and what its snapshot said.
#[derive(Debug, Clone)]
struct Read {
    plan: Plan,
    before_state: Option<Watermarks>,
    cache: Vec<i64>,
    /// No xid was in progress in the snapshot.
    xip_empty: bool,
    /// The snapshot's xmax.
    xmax: u64,
    listing: Listing,
}

#[derive(Debug)]
struct Model {
    next_id: i64,
    next_xid: u64,
    next_vxid: u64,
    txs: Vec<Tx>,
    committed: BTreeSet<i64>,
    cache: Vec<i64>,
    marks: Option<Watermarks>,
    lookback: Option<Lookback>,
    phase: Phase,
    refreshes: usize,
}

#[derive(Debug, Clone)]
enum Op {
    Begin,
    Take(usize),
    Insert(usize),
    InsertNew(usize),
    AssignXid(usize),
    Prepare(usize),
    Commit(usize),
    Abort(usize),
    /// One phase of the refresh in progress (or the start of one).
    Step,
    /// The refresh in progress to its end, then a whole one.
    Refresh,
}

/// Which transaction an operation picks (modulo those it applies to): few, so that one
/// transaction often takes an id, writes it and prepares across refreshes.
fn tx() -> impl Strategy<Value = usize> {
    0usize..3
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Begin),
        2 => tx().prop_map(Op::Take),
        2 => tx().prop_map(Op::Insert),
        3 => tx().prop_map(Op::InsertNew),
        1 => tx().prop_map(Op::AssignXid),
        2 => tx().prop_map(Op::Prepare),
        3 => tx().prop_map(Op::Commit),
        1 => tx().prop_map(Op::Abort),
        4 => Just(Op::Step),
        3 => Just(Op::Refresh),
    ]
}

impl Model {
    fn new(lookback: Option<i64>) -> Model {
        Model {
            next_id: 1,
            next_xid: 100,
            next_vxid: 1,
            txs: Vec::new(),
            committed: BTreeSet::new(),
            cache: Vec::new(),
            marks: None,
            lookback: lookback.map(Lookback::Amount),
            phase: Phase::Idle,
            refreshes: 0,
        }
    }

    /// The `i`-th (modulo) transaction in `status`, if any.
    fn pick(&mut self, i: usize, status: &[Status]) -> Option<&mut Tx> {
        let live: Vec<usize> = (0..self.txs.len())
            .filter(|t| status.contains(&self.txs[*t].status))
            .collect();
        if live.is_empty() {
            return None;
        }
        let t = live[i % live.len()];
        self.txs.get_mut(t)
    }

    fn assign_xid(next_xid: &mut u64, tx: &mut Tx) {
        if tx.xid.is_none() {
            tx.xid = Some(*next_xid);
            *next_xid += 1;
        }
    }

    fn apply(&mut self, op: &Op) {
        let mut next_xid = self.next_xid;
        match *op {
            Op::Begin => {
                self.txs.push(Tx {
                    vxid: format!("3/{}", self.next_vxid),
                    xid: None,
                    status: Status::Running,
                    taken: Vec::new(),
                    written: Vec::new(),
                });
                self.next_vxid += 1;
            }
            Op::Take(i) => {
                let id = self.next_id;
                if let Some(tx) = self.pick(i, &[Status::Running]) {
                    tx.taken.push(id);
                    self.next_id += 1;
                }
            }
            Op::Insert(i) => {
                if let Some(tx) = self.pick(i, &[Status::Running])
                    && let Some(id) = tx.taken.pop()
                {
                    Self::assign_xid(&mut next_xid, tx);
                    tx.written.push(id);
                }
            }
            Op::InsertNew(i) => {
                let id = self.next_id;
                if let Some(tx) = self.pick(i, &[Status::Running]) {
                    Self::assign_xid(&mut next_xid, tx);
                    tx.written.push(id);
                    self.next_id += 1;
                }
            }
            Op::AssignXid(i) => {
                if let Some(tx) = self.pick(i, &[Status::Running]) {
                    Self::assign_xid(&mut next_xid, tx);
                }
            }
            Op::Prepare(i) => {
                if let Some(tx) = self.pick(i, &[Status::Running]) {
                    Self::assign_xid(&mut next_xid, tx);
                    tx.status = Status::Prepared;
                    tx.taken.clear();
                }
            }
            Op::Commit(i) => {
                if let Some(tx) = self.pick(i, &[Status::Running, Status::Prepared]) {
                    tx.status = Status::Ended;
                    let rows = std::mem::take(&mut tx.written);
                    self.committed.extend(rows);
                }
            }
            Op::Abort(i) => {
                if let Some(tx) = self.pick(i, &[Status::Running, Status::Prepared]) {
                    tx.status = Status::Ended;
                    tx.written.clear();
                }
            }
            Op::Step => self.step(),
            Op::Refresh => self.refresh_fully(),
        }
        self.next_xid = self.next_xid.max(next_xid);
    }

    /// One step of a listing; true when it is complete.
    fn list_step(&self, listing: &mut Listing) -> bool {
        match listing.step {
            0 => {
                // The statement's snapshot, then the fast-path virtual xid locks.
                listing.xmax = self.next_xid;
                listing.vxids = self
                    .txs
                    .iter()
                    .filter(|t| t.status == Status::Running)
                    .map(|t| t.vxid.clone())
                    .collect();
            }
            1 => {
                // The main lock table: xids of transactions still running under those vxids.
                listing.xids = listing
                    .vxids
                    .iter()
                    .map(|v| {
                        self.txs
                            .iter()
                            .find(|t| &t.vxid == v && t.status == Status::Running)
                            .and_then(|t| t.xid)
                    })
                    .collect();
            }
            _ => {
                listing.prepared = self
                    .txs
                    .iter()
                    .filter(|t| t.status == Status::Prepared)
                    .filter_map(|t| t.xid)
                    .collect();
                listing.prepared.sort_unstable();
                return true;
            }
        }
        listing.step += 1;
        false
    }

    fn step(&mut self) {
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Idle => self.phase = Phase::Before(Listing::default()),
            Phase::Before(mut listing) => {
                if !self.list_step(&mut listing) {
                    self.phase = Phase::Before(listing);
                    return;
                }
                // Snapshot and read, at once.
                let before = listing.done();
                let state = self.marks.clone();
                let plan = watermark::plan(state.as_ref(), &before, self.lookback.as_ref());
                let visible: Vec<i64> = self.committed.iter().copied().collect();
                let bound = plan.read_from.as_ref().map(|v| match v {
                    OrderValue::Int(b) => *b,
                    _ => i64::MIN,
                });
                let mut cache: Vec<i64> = match bound {
                    None => visible.clone(),
                    Some(b) => {
                        let mut kept: Vec<i64> =
                            self.cache.iter().copied().filter(|v| *v < b).collect();
                        kept.extend(visible.iter().copied().filter(|v| *v >= b));
                        kept
                    }
                };
                cache.sort_unstable();
                assert_eq!(
                    cache, visible,
                    "refresh {} lost or doubled rows; plan {plan:?}, state {state:?}",
                    self.refreshes
                );
                let xip_empty = !self
                    .txs
                    .iter()
                    .any(|t| t.status != Status::Ended && t.xid.is_some());
                self.phase = Phase::After(Box::new(Read {
                    plan,
                    before_state: state,
                    cache,
                    xip_empty,
                    xmax: self.next_xid,
                    listing: Listing::default(),
                }));
            }
            Phase::After(mut read) => {
                let mut listing = std::mem::take(&mut read.listing);
                if !self.list_step(&mut listing) {
                    read.listing = listing;
                    self.phase = Phase::After(read);
                    return;
                }
                let Read {
                    plan,
                    before_state,
                    cache,
                    xip_empty,
                    xmax,
                    ..
                } = *read;
                let after = listing.done();
                // The closing snapshot, right after the listing.
                let quiet = xip_empty && after.is_empty() && self.next_xid == xmax;
                let seen = Observed {
                    watermark: cache.last().map(|v| OrderValue::Int(*v)),
                    quiet,
                    after: &after,
                    now: 0,
                };
                self.marks = Some(watermark::next(before_state.as_ref(), &plan, &seen));
                self.cache = cache;
                self.refreshes += 1;
            }
        }
    }

    /// Runs refresh steps until the refresh in progress, and then a whole new one, end.
    fn refresh_fully(&mut self) {
        while !matches!(self.phase, Phase::Idle) {
            self.step();
        }
        self.step();
        while !matches!(self.phase, Phase::Idle) {
            self.step();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 3000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_cache_is_what_each_snapshot_saw_and_catches_up_once_all_ended(
        ops in proptest::collection::vec(op(), 0..120),
        lookback in proptest::option::of(0i64..4),
    ) {
        let mut m = Model::new(lookback);
        for op in &ops {
            m.apply(op);
        }
        // End every transaction, then refresh until the safe value is final.
        for i in 0..m.txs.len() {
            if m.txs[i].status != Status::Ended {
                let rows = std::mem::take(&mut m.txs[i].written);
                m.committed.extend(rows);
                m.txs[i].status = Status::Ended;
            }
        }
        for _ in 0..3 {
            m.refresh_fully();
        }
        let committed: Vec<i64> = m.committed.iter().copied().collect();
        prop_assert_eq!(&m.cache, &committed);
        let marks = m.marks.clone().unwrap_or_default();
        prop_assert_eq!(marks.safe, marks.watermark);
        prop_assert!(marks.pending.is_empty());
    }
}

/// The case of issue 11: a transaction holding id 11 prepares between two refreshes.
#[test]
fn a_prepared_transaction_is_waited_for() {
    let mut m = Model::new(None);
    let ops = [
        Op::Begin,
        Op::InsertNew(0), // id 1, committed
        Op::Commit(0),
        Op::Begin,
        Op::InsertNew(0), // id 2 held open
        Op::Begin,
        Op::InsertNew(1), // id 3 committed
        Op::Commit(1),
    ];
    for op in &ops {
        m.apply(op);
    }
    m.refresh_fully();
    m.apply(&Op::Prepare(0));
    m.refresh_fully();
    m.apply(&Op::Commit(0));
    m.refresh_fully();
    assert_eq!(m.cache, [1, 2, 3]);
}

/// A transaction that had no xid at a checkpoint takes one afterwards and prepares.
#[test]
fn a_transaction_without_an_xid_that_prepares_later_is_waited_for() {
    let mut m = Model::new(None);
    m.apply(&Op::Begin);
    m.apply(&Op::InsertNew(0)); // id 1
    m.apply(&Op::Commit(0));
    m.refresh_fully(); // quiet: safe 1
    m.apply(&Op::Begin);
    m.apply(&Op::Take(0)); // id 2, no xid
    m.apply(&Op::Begin);
    m.apply(&Op::InsertNew(1)); // id 3
    m.apply(&Op::Commit(1));
    m.refresh_fully(); // checkpoint at 3, waiting for the first one
    m.apply(&Op::Insert(0)); // id 2, now with an xid
    m.apply(&Op::Prepare(0));
    m.refresh_fully();
    m.apply(&Op::Commit(0));
    m.refresh_fully();
    assert_eq!(m.cache, [1, 2, 3]);
}
