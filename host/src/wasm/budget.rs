//! Bytes of results held in host memory (results a guest asked for without the cache, which
//! no Parquet file backs): counted per run and for the whole host, so no plugin, and no crowd
//! of plugins, makes the host hold more than its budget.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A budget of bytes, shared by everything that reserves from it.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    used: AtomicU64,
    what: &'static str,
}

impl MemoryBudget {
    /// A budget of `limit` bytes; `what` names it in errors.
    pub fn new(limit: u64, what: &'static str) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            limit,
            used: AtomicU64::new(0),
            what,
        })
    }

    /// Bytes not reserved yet.
    pub fn available(&self) -> u64 {
        self.limit.saturating_sub(self.used.load(Ordering::Acquire))
    }

    /// The budget's size in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// What the budget is, for messages.
    pub fn name(&self) -> &'static str {
        self.what
    }

    /// Bytes reserved now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// Reserves `bytes`, or says which budget they do not fit in.
    pub(crate) fn reserve(self: &Arc<Self>, bytes: u64) -> crate::Result<Reservation> {
        let mut used = self.used.load(Ordering::Acquire);
        loop {
            let next = used.saturating_add(bytes);
            if next > self.limit {
                return Err(crate::Error::LimitExceeded {
                    what: self.what,
                    limit: self.limit,
                });
            }
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    return Ok(Reservation {
                        budget: self.clone(),
                        bytes,
                    });
                }
                Err(now) => used = now,
            }
        }
    }
}

/// Bytes held against a budget until dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_bounded_and_returned() {
        let b = MemoryBudget::new(100, "test budget");
        let a = b.reserve(60).unwrap();
        assert!(b.reserve(50).is_err());
        assert_eq!(b.available(), 40);
        drop(a);
        assert_eq!(b.used(), 0);
        let _c = b.reserve(100).unwrap();
    }
}
