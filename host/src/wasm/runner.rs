//! pgcache's own plugin runner: one engine (compiled code cached on disk, epochs ticking),
//! one linker with WASI and `pgcache:db/database`, components compiled once and
//! pre-instantiated, and a fresh store per run under [`Limits`].

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::{Plugin as PluginBindings, PluginPre};
use super::ctx::{PgcacheCtx, PgcacheView};
use super::engine::Allocation;
use super::limits::{Exceeded, Limiter, TICK, Ticker};
use super::output::{self, Output, Stdio};
use crate::Db;
use crate::config::Capabilities;
use crate::config::Limits;

/// Why a plugin could not run, or how it was stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The engine could not be set up.
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
    /// The file is not a component this host can run (or cannot be read).
    #[error("cannot load plugin {path}: {message}")]
    Load {
        /// The component file.
        path: PathBuf,
        /// Why, with wasmtime's causes.
        message: String,
    },
    /// A directory to grant cannot be opened.
    #[error("cannot grant directory {host} to the plugin: {message}")]
    Dir {
        /// The host directory.
        host: PathBuf,
        /// Why.
        message: String,
    },
    /// The database login the plugin would get is refused (a privileged role), or could not
    /// be checked.
    #[error("{0}")]
    Role(String),
    /// A limit ended the run.
    #[error("plugin {plugin} stopped: {limit} limit of {value} exceeded")]
    Limit {
        /// The plugin's name.
        plugin: String,
        /// `memory`, `CPU time`, `wall-clock time`.
        limit: &'static str,
        /// The limit's value, for people.
        value: String,
    },
    /// The guest trapped (a panic, an out-of-bounds access, `unreachable`...).
    #[error("plugin {plugin} trapped: {message}")]
    Trap {
        /// The plugin's name.
        plugin: String,
        /// The trap and its causes.
        message: String,
        /// The guest's stack, innermost frame first, when wasmtime captured it.
        backtrace: Option<String>,
    },
}

/// A host directory a guest may open, as `wasmtime run --dir HOST::GUEST` grants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    /// The directory on the host.
    pub host: PathBuf,
    /// Its path inside the guest.
    pub guest: String,
    /// Whether the guest may create and change files there.
    pub writable: bool,
}

impl DirGrant {
    /// Parses `HOST::GUEST`, or `DIR` (the same path on both sides); read-write, as
    /// `wasmtime run --dir` does.
    pub fn parse(spec: &str) -> DirGrant {
        let (host, guest) = spec.split_once("::").unwrap_or((spec, spec));
        DirGrant {
            host: PathBuf::from(host),
            guest: guest.to_owned(),
            writable: true,
        }
    }
}

/// Refuses directory grants that overlap a cache directory (`protected`): a plugin that could
/// write inside a cache could plant links that lead another cache's lookups, or its clears,
/// anywhere. Paths are compared after resolving links (`..` and symlinks cannot hide an
/// overlap); a path that cannot be resolved is refused too.
pub fn check_dir_grants(dirs: &[DirGrant], protected: &[PathBuf]) -> Result<(), RunError> {
    let resolve = |p: &Path| -> Result<PathBuf, String> {
        // A cache directory that does not exist yet is compared as written, made absolute.
        match std::fs::canonicalize(p) {
            Ok(real) => Ok(real),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::path::absolute(p).map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        }
    };
    for grant in dirs {
        let host = resolve(&grant.host).map_err(|message| RunError::Dir {
            host: grant.host.clone(),
            message,
        })?;
        for cache in protected {
            let cache = resolve(cache).map_err(|message| RunError::Dir {
                host: cache.clone(),
                message,
            })?;
            if host.starts_with(&cache) || cache.starts_with(&host) {
                return Err(RunError::Dir {
                    host: grant.host.clone(),
                    message: format!(
                        "it overlaps the cache directory {}; plugins reach the cache only \
                         through the database interface",
                        cache.display()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// How to run a plugin once.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RunOptions {
    /// Arguments after the program name.
    pub args: Vec<String>,
    /// Environment variables the guest sees (nothing else is passed).
    pub env: Vec<(String, String)>,
    /// Directories the guest may open (nothing else is reachable).
    pub dirs: Vec<DirGrant>,
    /// Resource limits.
    pub limits: Limits,
    /// The `database` operations the guest may call.
    pub capabilities: Capabilities,
    /// Where the guest's stdout goes.
    pub stdout: Output,
    /// Where the guest's stderr goes.
    pub stderr: Output,
    /// The name `cache-stats` shows for the cache.
    pub cache_name: Option<String>,
    /// What the guest reads on stdin (nothing when `None`).
    pub stdin: Option<Vec<u8>>,
}

impl RunOptions {
    /// The options a tenant's settings give: its operations, its limits, its cache's name.
    /// Limits that do not read are refused by [`crate::Settings::for_tenant`], which every
    /// path to a tenant's plugin goes through first; here they leave the defaults.
    pub fn for_tenant(name: &str, tenant: &crate::config::TenantSettings) -> RunOptions {
        RunOptions {
            capabilities: Capabilities::of(&tenant.operations),
            limits: tenant.limits.run_limits().unwrap_or_default(),
            cache_name: Some(name.to_owned()),
            ..RunOptions::default()
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunOutcome {
    /// The guest's exit code: 0 when `run` returned ok, 1 when it returned an error, or what
    /// it passed to `exit`.
    pub exit_code: i32,
    /// Captured stdout ([`Output::Capture`]).
    pub stdout: Vec<u8>,
    /// Captured stderr ([`Output::Capture`]).
    pub stderr: Vec<u8>,
    /// Time from instantiation to the end of the run.
    pub elapsed: Duration,
    /// Time spent in guest code, in ticks of 10 ms (rounded down).
    pub cpu_ticks: u64,
    /// When the guest first called the `database` interface, if it did.
    pub first_host_call: Option<Instant>,
}

/// The state of one run's store.
struct RunState {
    wasi: WasiCtx,
    table: ResourceTable,
    pgcache: PgcacheCtx,
    limiter: Limiter,
    cpu_ticks: u64,
    cpu_budget: u64,
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Compiles and runs plugins. Create one per process and share it: it owns the engine, its
/// epoch ticker and the linker.
pub struct PluginHost {
    engine: Engine,
    allocation: Allocation,
    memory: std::sync::Arc<super::MemoryBudget>,
    linker: Linker<RunState>,
    _ticker: Ticker,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost").finish_non_exhaustive()
    }
}

impl PluginHost {
    /// A host whose compiled components are cached in `compile_cache` (so a second load of the
    /// same component skips compilation), or not cached at all when `None`. Instances are
    /// allocated on demand: right for a process that runs one plugin.
    pub fn new(compile_cache: Option<&Path>) -> Result<PluginHost, RunError> {
        PluginHost::with_allocation(compile_cache, Allocation::OnDemand)
    }

    /// A host as [`PluginHost::new`] makes, allocating instances as `allocation` asks (the
    /// pooling allocator only where the address space allows it; see [`PluginHost::allocation`]).
    pub fn with_allocation(
        compile_cache: Option<&Path>,
        allocation: Allocation,
    ) -> Result<PluginHost, RunError> {
        let engine_error = |e: wasmtime::Error| RunError::Engine(format!("{e:#}"));
        let allocation = super::engine::effective(allocation);
        let config = super::engine::config(compile_cache, allocation).map_err(RunError::Engine)?;
        let engine = Engine::new(&config).map_err(engine_error)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_error)?;
        super::add_to_linker(&mut linker, |s: &mut RunState| PgcacheView {
            ctx: &mut s.pgcache,
            table: &mut s.table,
        })
        .map_err(engine_error)?;
        let ticker = Ticker::start(&engine).map_err(|e| RunError::Engine(e.to_string()))?;
        Ok(PluginHost {
            engine,
            allocation,
            memory: super::MemoryBudget::new(
                super::ctx::DEFAULT_HOST_MEMORY,
                "result bytes held in memory by the host",
            ),
            linker,
            _ticker: ticker,
        })
    }

    /// Sets the bytes of in-memory results (results without the cache) all runs of this
    /// host's plugins may hold at once (default 1 GiB); past it a query answers
    /// `limit-exceeded`. Plugins loaded before keep the budget they were loaded with.
    pub fn with_memory_budget(mut self, bytes: u64) -> PluginHost {
        self.memory = super::MemoryBudget::new(bytes, "result bytes held in memory by the host");
        self
    }

    /// How this host allocates instances (pooling only when it was asked for and fits).
    pub fn allocation(&self) -> Allocation {
        self.allocation
    }

    /// The host-wide budget of in-memory result bytes, to watch how much is held.
    pub fn memory_budget(&self) -> &std::sync::Arc<super::MemoryBudget> {
        &self.memory
    }

    /// Loads a component from a file: compiled (or fetched from the compile cache) and
    /// pre-instantiated against this host's imports, ready to run many times.
    pub fn load(&self, path: &Path) -> Result<Plugin, RunError> {
        let load_error = |e: wasmtime::Error| RunError::Load {
            path: path.to_path_buf(),
            message: format!("{e:#}"),
        };
        let component = Component::from_file(&self.engine, path).map_err(load_error)?;
        let name = path
            .file_stem()
            .map_or_else(|| "plugin".to_owned(), |s| s.to_string_lossy().into_owned());
        self.link(component, name).map_err(load_error)
    }

    /// Loads a component from its bytes (compiled, or fetched from the compile cache), as
    /// [`PluginHost::load`] does from a file; `name` names it in messages.
    pub fn load_bytes(&self, name: &str, bytes: &[u8]) -> Result<Plugin, RunError> {
        let load_error = |e: wasmtime::Error| RunError::Load {
            path: PathBuf::from(name),
            message: format!("{e:#}"),
        };
        let component = Component::new(&self.engine, bytes).map_err(load_error)?;
        self.link(component, name.to_owned()).map_err(load_error)
    }

    /// Pre-instantiates `component` against this host's imports.
    fn link(&self, component: Component, name: String) -> wasmtime::Result<Plugin> {
        let pre = self.linker.instantiate_pre(&component)?;
        let pre = PluginPre::new(pre)?;
        Ok(Plugin {
            engine: self.engine.clone(),
            memory: self.memory.clone(),
            pre,
            name,
        })
    }
}

/// A loaded plugin: compiled, linked, ready to instantiate. Runs share nothing.
pub struct Plugin {
    engine: Engine,
    memory: std::sync::Arc<super::MemoryBudget>,
    pre: PluginPre<RunState>,
    name: String,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// The plugin's name (its file name without extension).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the plugin's `wasi:cli/run` once, in a fresh store, against `db`.
    pub async fn run(&self, db: &Db, options: &RunOptions) -> Result<RunOutcome, RunError> {
        let limits = options.limits;
        check_dir_grants(&options.dirs, &[db.settings().cache.dir.clone()])?;
        // Never hand a plugin a privileged role: refused before the guest starts.
        db.check_plugin_role()
            .await
            .map_err(|e| RunError::Role(e.public_message()))?;
        let mut wasi = WasiCtxBuilder::new();
        let mut argv = vec![self.name.clone()];
        argv.extend(options.args.iter().cloned());
        wasi.args(&argv)
            .envs(&options.env)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for dir in &options.dirs {
            let perms = if dir.writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            wasi.preopened_dir(&dir.host, &dir.guest, perms)
                .map_err(|e| RunError::Dir {
                    host: dir.host.clone(),
                    message: format!("{e:#}"),
                })?;
        }
        if let Some(input) = &options.stdin {
            wasi.stdin(wasmtime_wasi::p2::pipe::MemoryInputPipe::new(input.clone()));
        }
        let stdout = output::connect(&mut wasi, Stdio::Out, &options.stdout);
        let stderr = output::connect(&mut wasi, Stdio::Err, &options.stderr);

        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.max_handles);
        let mut pgcache = PgcacheCtx::new(db.clone())
            .capabilities(options.capabilities)
            .limits(limits.results)
            .host_memory(self.memory.clone());
        if let Some(name) = &options.cache_name {
            pgcache = pgcache.cache_name(name.clone());
        }
        let state = RunState {
            wasi: wasi.build(),
            table,
            pgcache,
            limiter: Limiter {
                max_memory: limits.max_memory,
                exceeded: None,
            },
            cpu_ticks: 0,
            cpu_budget: (limits.cpu_time.as_millis() / TICK.as_millis()).max(1) as u64,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_hostcall_fuel(limits.hostcall_bytes);
        store.set_epoch_deadline(1);
        // Each tick that finds the guest running wasm counts as 10 ms of its CPU time; the
        // guest yields to the executor, so other plugins and host tasks go on.
        store.epoch_deadline_callback(|mut ctx| {
            let state = ctx.data_mut();
            state.cpu_ticks += 1;
            if state.cpu_ticks > state.cpu_budget {
                state.limiter.exceeded = Some(Exceeded::Cpu);
                return Err(wasmtime::Error::msg("CPU time limit exceeded"));
            }
            Ok(UpdateDeadline::Yield(1))
        });

        let started = Instant::now();
        let run = async {
            let instance: PluginBindings = self.pre.instantiate_async(&mut store).await?;
            instance.wasi_cli_run().call_run(&mut store).await
        };
        let outcome = tokio::time::timeout(limits.wall_time, run).await;
        let elapsed = started.elapsed();
        let plugin = self.name.clone();
        let exit_code = match outcome {
            Err(_) => {
                return Err(RunError::Limit {
                    plugin,
                    limit: "wall-clock time",
                    value: format!("{:?}", limits.wall_time),
                });
            }
            Ok(Ok(Ok(()))) => 0,
            Ok(Ok(Err(()))) => 1,
            Ok(Err(e)) => {
                if let Some(exit) = e.downcast_ref::<I32Exit>() {
                    exit.0
                } else {
                    return Err(match store.data().limiter.exceeded {
                        Some(Exceeded::Memory) => RunError::Limit {
                            plugin,
                            limit: "memory",
                            value: format!("{} MiB", limits.max_memory >> 20),
                        },
                        Some(Exceeded::Cpu) => RunError::Limit {
                            plugin,
                            limit: "CPU time",
                            value: format!("{:?}", limits.cpu_time),
                        },
                        None if store.data().pgcache.host_calls_exceeded => RunError::Limit {
                            plugin,
                            limit: "host calls",
                            value: limits.results.max_host_calls.to_string(),
                        },
                        None => trap(plugin, &e),
                    });
                }
            }
        };
        Ok(RunOutcome {
            exit_code,
            stdout: stdout.map(|p| p.contents().to_vec()).unwrap_or_default(),
            stderr: stderr.map(|p| p.contents().to_vec()).unwrap_or_default(),
            elapsed,
            cpu_ticks: store.data().cpu_ticks,
            first_host_call: store.data().pgcache.first_call,
        })
    }
}

/// A trap as an error with its message chain and the guest's backtrace.
fn trap(plugin: String, e: &wasmtime::Error) -> RunError {
    let backtrace = e.downcast_ref::<wasmtime::WasmBacktrace>().map(|bt| {
        bt.frames()
            .iter()
            .map(|f| {
                let name = f
                    .func_name()
                    .map_or_else(|| format!("<func {}>", f.func_index()), |n| n.to_owned());
                format!("{}!{name}", f.module().name().unwrap_or("<module>"))
            })
            .collect::<Vec<_>>()
            .join(" <- ")
    });
    let message = e
        .chain()
        .map(ToString::to_string)
        .filter(|m| !m.starts_with("error while executing at wasm backtrace"))
        .collect::<Vec<_>>()
        .join(": ");
    RunError::Trap {
        plugin,
        message,
        backtrace,
    }
}
