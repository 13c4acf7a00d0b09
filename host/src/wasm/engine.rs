//! The wasmtime engine's configuration: the component model, epoch interruption, the compile
//! cache, and for long-running hosts the pooling instance allocator, used only where the
//! address space allows it (probed as the wasmtime CLI's `serve` does).

use std::path::Path;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How instances of plugins are allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// Memories, tables and stacks are made for each run and freed after it (a process per
    /// run: nothing to reuse).
    OnDemand,
    /// Reserved once and reused by every run: instantiation without `mmap`/`munmap` per run,
    /// for a host that runs plugins all day. Falls back to on-demand where the address space
    /// is too small to reserve the pool.
    Pooling,
}

/// Bits of address space the pool needs: 1000 slots of a 4 GiB memory reservation plus guard
/// regions come to about 2^42 bytes.
const POOL_ADDRESS_BITS: u32 = 42;

/// Whether this process can reserve 2^[`POOL_ADDRESS_BITS`] bytes of address space (not
/// the case under a tight `ulimit -v`, under some emulators and on 32-bit hosts): a 64-bit
/// memory of that size is created and dropped.
pub fn pooling_fits() -> bool {
    let mut config = Config::new();
    config
        .wasm_memory64(true)
        .memory_reservation(1 << POOL_ADDRESS_BITS);
    let Ok(engine) = Engine::new(&config) else {
        return false;
    };
    let mut store = wasmtime::Store::new(&engine, ());
    let ty = wasmtime::MemoryType::new64(0, Some(1 << (POOL_ADDRESS_BITS - 16)));
    wasmtime::Memory::new(&mut store, ty).is_ok()
}

/// The pool's shape. The defaults hold 1000 instances of 4 GiB memories; the limits here are
/// raised for components that are bigger than a Rust guest (Python and JavaScript plugins
/// carry an interpreter: several memories and tables, large instance records and tables).
fn pool() -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::default();
    pool.max_component_instance_size(8 << 20)
        .max_core_instance_size(8 << 20)
        .max_memories_per_module(2)
        .max_tables_per_module(4)
        .table_elements(200_000);
    pool
}

/// The engine configuration of a plugin host: `compile_cache` keeps compiled code between
/// processes; `allocation` is what [`effective`] decided.
pub(crate) fn config(
    compile_cache: Option<&Path>,
    allocation: Allocation,
) -> Result<Config, String> {
    let mut config = Config::new();
    config.wasm_component_model(true).epoch_interruption(true);
    if let Some(dir) = compile_cache {
        let dir = std::path::absolute(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut cache = wasmtime::CacheConfig::new();
        cache.with_directory(dir);
        config.cache(Some(
            wasmtime::Cache::new(cache).map_err(|e| format!("{e:#}"))?,
        ));
    }
    if allocation == Allocation::Pooling {
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool()));
    }
    Ok(config)
}

/// `wanted`, or on-demand allocation when the pool would not fit.
pub(crate) fn effective(wanted: Allocation) -> Allocation {
    match wanted {
        Allocation::Pooling if !pooling_fits() => {
            tracing::info!("the address space is too small for the pooling allocator: on-demand");
            Allocation::OnDemand
        }
        other => other,
    }
}
