//! `pgcache run`: a plugin component with the flags a `wasmtime run` user knows.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use pgcache::wasm::{Capabilities, DirGrant, Limits, PluginHost, RunError, RunOptions};
use pgcache::{Db, Settings};

/// Exit code of a run that a trap or a limit ended (as a process killed by SIGABRT).
const STOPPED: i32 = 134;

/// Arguments of `pgcache run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The plugin: a WebAssembly component exporting `wasi:cli/run`.
    component: PathBuf,
    /// Grant a host directory: HOST::GUEST, or DIR for the same path in both.
    #[arg(long = "dir", value_name = "HOST::GUEST")]
    dirs: Vec<String>,
    /// Pass an environment variable: K=V, or K to pass the host's value.
    #[arg(long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// Let the plugin call `execute` (INSERT, UPDATE, DELETE ...).
    #[arg(long)]
    allow_execute: bool,
    /// Wall-clock limit of the whole run, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300.0)]
    timeout: f64,
    /// Linear memory limit, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    max_memory: usize,
    /// Limit on time spent in plugin code (not in host calls), in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    cpu_time: f64,
    /// Arguments for the plugin (after `--`).
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<String>,
}

impl RunArgs {
    fn options(&self) -> Result<RunOptions> {
        let mut options = RunOptions::default();
        options.args = self.args.clone();
        options.dirs = self.dirs.iter().map(|d| DirGrant::parse(d)).collect();
        for spec in &self.env {
            let (k, v) = match spec.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (spec.clone(), std::env::var(spec).unwrap_or_default()),
            };
            options.env.push((k, v));
        }
        let mut limits = Limits::default();
        limits.wall_time =
            Duration::try_from_secs_f64(self.timeout).context("--timeout takes seconds")?;
        limits.cpu_time =
            Duration::try_from_secs_f64(self.cpu_time).context("--cpu-time takes seconds")?;
        limits.max_memory = self
            .max_memory
            .checked_mul(1 << 20)
            .context("--max-memory is too large")?;
        options.limits = limits;
        let mut capabilities = Capabilities::default();
        capabilities.execute = self.allow_execute;
        options.capabilities = capabilities;
        Ok(options)
    }
}

/// Runs the plugin; returns its exit code.
pub async fn run(settings: Settings, args: RunArgs) -> Result<i32> {
    let options = args.options()?;
    let compile_cache = settings.cache.dir.join(".pgcache").join("compiled");
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
