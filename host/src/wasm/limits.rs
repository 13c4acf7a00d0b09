//! What a plugin run may consume, and the machinery that enforces it: a memory limiter that
//! remembers when it said no, and the epoch ticker that meters CPU time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::ctx::ResultLimits;

/// One epoch tick: the granularity of CPU metering and of interrupting a busy guest.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// Limits of one plugin run. Exceeding one ends the run with an error naming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Linear memory, in bytes (default 256 MiB).
    pub max_memory: usize,
    /// Time spent executing guest code, metered in 10 ms epoch ticks (default 60 s).
    pub cpu_time: Duration,
    /// Time of the whole run, host calls included (default 300 s).
    pub wall_time: Duration,
    /// Bytes a guest may pass to the host in one call (wasmtime's hostcall fuel, default 16 MiB).
    pub hostcall_bytes: usize,
    /// Handles (results, streams, files) open at once in the resource table (default 1024).
    pub max_handles: usize,
    /// Rows and bytes per result, open results.
    pub results: ResultLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_memory: 256 << 20,
            cpu_time: Duration::from_secs(60),
            wall_time: Duration::from_secs(300),
            hostcall_bytes: 16 << 20,
            max_handles: 1024,
            results: ResultLimits::default(),
        }
    }
}

/// Which limit ended a run, if one did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exceeded {
    Memory,
    Cpu,
}

/// The store's resource limiter: linear memory and tables, remembering a refusal so the run
/// can report the limit instead of the allocation failure the guest turns it into.
#[derive(Debug)]
pub(crate) struct Limiter {
    pub max_memory: usize,
    pub exceeded: Option<Exceeded>,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            self.exceeded = Some(Exceeded::Memory);
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// Advances an engine's epoch every [`TICK`] while it lives.
#[derive(Debug)]
pub(crate) struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    pub fn start(engine: &wasmtime::Engine) -> std::io::Result<Ticker> {
        let stop = Arc::new(AtomicBool::new(false));
        let (engine, flag) = (engine.weak(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("pgcache-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    match engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })?;
        Ok(Ticker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
