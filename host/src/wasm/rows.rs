//! The host side of the `rows` resource: a result and how far the guest has streamed it.

use crate::{BatchCursor, ResultSet};

/// A result handed to a guest, kept in the store's resource table.
#[derive(Debug)]
pub struct RowsHandle {
    pub(crate) result: ResultSet,
    /// Where `next-batch` continues.
    pub(crate) cursor: Option<BatchCursor>,
    /// Bytes handed to the guest from this result so far.
    pub(crate) sent: u64,
    /// The result's bytes held against the run's and the host's memory budgets.
    pub(crate) _memory: Vec<super::budget::Reservation>,
}

impl RowsHandle {
    pub(crate) fn new(result: ResultSet, memory: Vec<super::budget::Reservation>) -> RowsHandle {
        RowsHandle {
            result,
            cursor: None,
            sent: 0,
            _memory: memory,
        }
    }
}
