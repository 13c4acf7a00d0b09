//! Per-tenant admission: a tenant works on at most `max_concurrent` runs and queries at once,
//! with at most `max_queued` more waiting; past that a request is answered 429 at once. One
//! tenant's flood fills its own queue, never another's.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;

/// The admission gate of one tenant.
#[derive(Debug)]
pub(crate) struct Gate {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_queued: usize,
}

/// A slot held while a request works.
#[derive(Debug)]
pub(crate) struct Slot {
    _permit: OwnedSemaphorePermit,
}

/// One place in the queue, given back when dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gate {
    /// A gate of `max_concurrent` slots (at least 1) and `max_queued` waiting places.
    pub fn new(max_concurrent: usize, max_queued: usize) -> Gate {
        Gate {
            slots: Arc::new(Semaphore::new(max_concurrent.max(1))),
            waiting: AtomicUsize::new(0),
            max_queued,
        }
    }

    /// Takes a slot, waiting in the queue if there is room in it; 429 otherwise.
    pub async fn enter(&self) -> Result<Slot, ApiError> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(Slot { _permit: permit });
        }
        let before = self.waiting.fetch_add(1, Ordering::AcqRel);
        // Counted down however the wait ends, a client that leaves included.
        let _waiting = Waiting(&self.waiting);
        if before >= self.max_queued {
            return Err(ApiError::busy(
                "this tenant has as many requests running and waiting as it may; retry later",
                1,
            ));
        }
        let permit = self.slots.clone().acquire_owned().await;
        let permit = permit.map_err(ApiError::internal)?;
        Ok(Slot { _permit: permit })
    }

    /// Requests working now.
    pub fn running(&self, max_concurrent: usize) -> usize {
        max_concurrent.max(1) - self.slots.available_permits()
    }

    /// Requests waiting now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }
}
