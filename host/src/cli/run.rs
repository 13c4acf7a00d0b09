//! `pgcache run`: a plugin component with the flags a `wasmtime run` user knows.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use pgcache::config::Operation;
use pgcache::wasm::{DirGrant, PluginHost, RunError, RunOptions};
use pgcache::{Db, Settings};

/// Exit code of a run that a trap or a limit ended (as a process killed by SIGABRT).
const STOPPED: i32 = 134;

/// Arguments of `pgcache run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The plugin: a WebAssembly component exporting `wasi:cli/run`.
    component: PathBuf,
    /// Run as this tenant of the settings file: its login, cache, rights and limits.
    #[arg(long, value_name = "NAME")]
    tenant: Option<String>,
    /// Grant a host directory: HOST::GUEST, or DIR for the same path in both.
    #[arg(long = "dir", value_name = "HOST::GUEST")]
    dirs: Vec<String>,
    /// Pass an environment variable: K=V, or K to pass the host's value.
    #[arg(long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// Let the plugin call `execute` (INSERT, UPDATE, DELETE, MERGE).
    #[arg(long)]
    allow_execute: bool,
    /// Wall-clock limit of the whole run, in seconds (default 300, or the tenant's).
    #[arg(long, value_name = "SECS")]
    timeout: Option<f64>,
    /// Linear memory limit, in MiB (default 256, or the tenant's).
    #[arg(long, value_name = "MIB")]
    max_memory: Option<u64>,
    /// Limit on time spent in plugin code, in seconds (default 60, or the tenant's).
    #[arg(long, value_name = "SECS")]
    cpu_time: Option<f64>,
    /// Arguments for the plugin (after `--`).
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<String>,
}

impl RunArgs {
    /// The options of this run; with a tenant, flags can only tighten its limits.
    fn options(
        &self,
        tenant: Option<(&str, &pgcache::config::TenantSettings)>,
    ) -> Result<RunOptions> {
        let mut options = match tenant {
            Some((name, t)) => {
                if self.allow_execute && !t.operations.contains(&Operation::Execute) {
                    bail!("tenant {name} is not granted execute; --allow-execute cannot add it");
                }
                RunOptions::for_tenant(name, t)
            }
            None => {
                let mut options = RunOptions::default();
                options.capabilities.execute = self.allow_execute;
                options
            }
        };
        options.args = self.args.clone();
        options.dirs = self.dirs.iter().map(|d| DirGrant::parse(d)).collect();
        for spec in &self.env {
            let (k, v) = match spec.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (spec.clone(), std::env::var(spec).unwrap_or_default()),
            };
            options.env.push((k, v));
        }
        let limits = &mut options.limits;
        if let Some(secs) = self.timeout {
            limits.wall_time = limits
                .wall_time
                .min(Duration::try_from_secs_f64(secs).context("--timeout takes seconds")?);
        }
        if let Some(secs) = self.cpu_time {
            limits.cpu_time = limits
                .cpu_time
                .min(Duration::try_from_secs_f64(secs).context("--cpu-time takes seconds")?);
        }
        if let Some(mib) = self.max_memory {
            let bytes = usize::try_from(
                mib.checked_mul(1 << 20)
                    .context("--max-memory is too large")?,
            )?;
            limits.max_memory = limits.max_memory.min(bytes);
        }
        Ok(options)
    }
}

/// Runs the plugin; returns its exit code.
pub async fn run(settings: Settings, args: RunArgs) -> Result<i32> {
    let compile_cache = settings.cache.dir.join(".pgcache").join("compiled");
    // No grant may reach into any cache: the global one, or any tenant's.
    let mut caches = vec![settings.cache.dir.clone()];
    for name in settings.tenants.keys() {
        if let Ok(t) = settings.for_tenant(name) {
            caches.push(t.cache.dir);
        }
    }
    let grants: Vec<DirGrant> = args.dirs.iter().map(|d| DirGrant::parse(d)).collect();
    pgcache::wasm::check_dir_grants(&grants, &caches)?;
    let (settings, options) = match &args.tenant {
        Some(name) => {
            let tenant_settings = settings.for_tenant(name)?;
            let options = args.options(Some((name, &settings.tenants[name])))?;
            (tenant_settings, options)
        }
        None => (settings.for_plugins()?, args.options(None)?),
    };
    let db = Db::connect_lazy(settings)?;
    let host = PluginHost::new(Some(&compile_cache))?;
    let plugin = host.load(&args.component)?;
    match plugin.run(&db, &options).await {
        Ok(outcome) => Ok(outcome.exit_code),
        Err(RunError::Trap {
            plugin,
            message,
            backtrace,
        }) => {
            eprintln!("pgcache: plugin {plugin} trapped: {message}");
            if let Some(bt) = backtrace {
                eprintln!("  at {bt}");
            }
            Ok(STOPPED)
        }
        Err(e @ RunError::Limit { .. }) => {
            eprintln!("pgcache: {e}");
            Ok(STOPPED)
        }
        Err(e) => Err(e.into()),
    }
}
