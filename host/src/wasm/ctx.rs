//! What a guest may do and through which database: the configuration of the `database`
//! interface for one store, and the view host calls work through.

use wasmtime::component::{HasData, Linker, ResourceTable};

use super::bindings;
use crate::Db;
use crate::config::{Capabilities, ResultLimits};

/// The `database` interface's state in a store: the database handle, what the guest may do,
/// and its limits. Build one per store (per plugin run).
///
/// ```no_run
/// # async fn example(db: pgcache::Db) {
/// use pgcache::wasm::{Capabilities, PgcacheCtx};
///
/// let mut capabilities = Capabilities::default();
/// capabilities.execute = true;
/// let ctx = PgcacheCtx::new(db).capabilities(capabilities).cache_name("tenant-a");
/// # let _ = ctx; }
/// ```
#[derive(Debug)]
pub struct PgcacheCtx {
    pub(crate) db: Db,
    pub(crate) capabilities: Capabilities,
    pub(crate) limits: ResultLimits,
    pub(crate) cache_name: String,
    pub(crate) open_results: usize,
    /// When the guest first called the interface (start-up measurements).
    pub(crate) first_call: Option<std::time::Instant>,
    /// Calls so far.
    pub(crate) host_calls: u64,
    /// Set when the host-call limit stopped the guest.
    pub(crate) host_calls_exceeded: bool,
    /// Bytes of in-memory results this store holds (`max_memory_bytes`).
    pub(crate) run_memory: std::sync::Arc<super::MemoryBudget>,
    /// Bytes of in-memory results the whole host holds, shared by every store.
    pub(crate) host_memory: std::sync::Arc<super::MemoryBudget>,
}

/// Bytes of in-memory results a host holds across all runs, by default (1 GiB).
pub const DEFAULT_HOST_MEMORY: u64 = 1 << 30;

impl PgcacheCtx {
    /// A context over `db` with the default capabilities (all but `execute`) and limits.
    pub fn new(db: Db) -> PgcacheCtx {
        let cache_name = db.settings().cache.dir.display().to_string();
        PgcacheCtx {
            db,
            capabilities: Capabilities::default(),
            limits: ResultLimits::default(),
            cache_name,
            open_results: 0,
            first_call: None,
            host_calls: 0,
            host_calls_exceeded: false,
            run_memory: super::MemoryBudget::new(
                ResultLimits::default().max_memory_bytes,
                "result bytes held in memory by this run",
            ),
            host_memory: super::MemoryBudget::new(
                DEFAULT_HOST_MEMORY,
                "result bytes held in memory by the host",
            ),
        }
    }

    /// Shares `budget` as the host-wide budget of in-memory result bytes (one per host, for
    /// all its stores).
    pub fn host_memory(mut self, budget: std::sync::Arc<super::MemoryBudget>) -> PgcacheCtx {
        self.host_memory = budget;
        self
    }

    /// Sets what the guest may call.
    pub fn capabilities(mut self, capabilities: Capabilities) -> PgcacheCtx {
        self.capabilities = capabilities;
        self
    }

    /// Sets the result limits.
    pub fn limits(mut self, limits: ResultLimits) -> PgcacheCtx {
        self.limits = limits;
        self.run_memory = super::MemoryBudget::new(
            limits.max_memory_bytes,
            "result bytes held in memory by this run",
        );
        self
    }

    /// The name `cache-stats` gives the cache (default: the cache directory's path).
    pub fn cache_name(mut self, name: impl Into<String>) -> PgcacheCtx {
        self.cache_name = name.into();
        self
    }
}

/// What host calls of the `database` interface work through: the context and the store's
/// resource table (shared with WASI).
pub struct PgcacheView<'a> {
    /// The interface's state.
    pub ctx: &'a mut PgcacheCtx,
    /// The store's resource table, where results live.
    pub table: &'a mut ResourceTable,
}

/// Marker type naming [`PgcacheView`] as the data of the `database` host functions.
struct HasPgcache;

impl HasData for HasPgcache {
    type Data<'a> = PgcacheView<'a>;
}

/// Adds the `pgcache:db/database` interface to `linker`, next to whatever else the embedder
/// offers (typically `wasmtime_wasi::p2::add_to_linker_async`). The linker's store must be
/// async: database calls await the network.
///
/// ```
/// use pgcache::wasm::{PgcacheCtx, PgcacheView};
/// use wasmtime::component::{Linker, ResourceTable};
/// use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
///
/// struct MyState {
///     wasi: WasiCtx,
///     table: ResourceTable,
///     pgcache: PgcacheCtx,
/// }
///
/// impl WasiView for MyState {
///     fn ctx(&mut self) -> WasiCtxView<'_> {
///         WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
///     }
/// }
///
/// let engine = wasmtime::Engine::default();
/// let mut linker: Linker<MyState> = Linker::new(&engine);
/// wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
/// pgcache::wasm::add_to_linker(&mut linker, |s: &mut MyState| PgcacheView {
///     ctx: &mut s.pgcache,
///     table: &mut s.table,
/// })?;
/// # Ok::<(), wasmtime::Error>(())
/// ```
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> PgcacheView<'_>,
) -> wasmtime::Result<()> {
    bindings::pgcache::db::database::add_to_linker::<T, HasPgcache>(linker, get)
}
