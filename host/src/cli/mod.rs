//! The `pgcache` command line: `query`, `execute`, `stats`, `clear`.

mod format;
mod progress;
mod run;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use pgcache::config::{Settings, SettingsLayer};
use pgcache::{Db, IncrementalOptions, Lookback, Origin, Progress, QueryOptions, ResultSet, Value};

use format::Format;

/// Cache PostgreSQL query results as Parquet, refresh them incrementally, and run sandboxed
/// WebAssembly plugins over them.
#[derive(Debug, Parser)]
#[command(name = "pgcache", version, about)]
pub struct Cli {
    /// Database URL, e.g. postgres://user@host:5432/db (default: DATABASE_URL, PG* variables).
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// Cache directory (default: PGCACHE_DIR, then `.cache`).
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Settings file (default: ./pgcache.toml when present).
    #[arg(long, global = true, value_name = "FILE", env = "PGCACHE_CONFIG")]
    config: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug); PGCACHE_LOG takes a filter too.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a query through the cache and print its rows.
    Query {
        /// The SQL query; `$1, $2 ...` take the -p values.
        sql: String,
        /// A parameter value, as text, converted to the type the server infers for its `$n`.
        #[arg(short = 'p', long = "param", value_name = "VALUE")]
        params: Vec<String>,
        /// Refresh incrementally, fetching only rows past the stored maximum of COLUMN.
        #[arg(long, value_name = "COLUMN")]
        incremental: Option<String>,
        /// With --incremental: re-read this window below the maximum on each refresh
        /// (a number for integer and numeric columns, a duration like 2h or 30min for times).
        #[arg(long, value_name = "WINDOW", requires = "incremental")]
        lookback: Option<String>,
        /// Ask the database and leave the cache alone.
        #[arg(long)]
        no_cache: bool,
        /// Refetch a cached result older than this many seconds.
        #[arg(long, value_name = "SECS", conflicts_with = "incremental")]
        max_age: Option<f64>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Write the output to FILE instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Run one statement (INSERT, UPDATE, DELETE ...) and print the rows affected. Never cached.
    Execute {
        /// The SQL statement.
        sql: String,
        /// A parameter value, as text.
        #[arg(short = 'p', long = "param", value_name = "VALUE")]
        params: Vec<String>,
    },
    /// Show what the cache holds.
    Stats {
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove entries whose name or query contains PATTERN (all entries without one).
    Clear {
        /// Part of an entry name or query text.
        pattern: Option<String>,
    },
    /// Run a WebAssembly plugin component with access to the database through the cache.
    Run(run::RunArgs),
    /// Serve tenants' plugins and queries over HTTP until SIGTERM or SIGINT.
    Serve {
        /// Address to listen on (port 0 picks a free one).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Seconds runs in flight may go on after a shutdown signal.
        #[arg(long, value_name = "SECS", default_value_t = 30.0)]
        drain: f64,
        /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
        #[arg(long, value_name = "PEM", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, value_name = "PEM", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Make an API token for a tenant: prints the token (give it to the tenant) and the
    /// SHA-256 to put in its `tokens_sha256`.
    Token,
    /// Plug the adapter component into a plugin, for the stock `wasmtime` CLI: the output
    /// imports only WASI and reaches `pgcache serve` over HTTP (`wasmtime run -S http --env
    /// PGCACHE_URL=... --env PGCACHE_TOKEN=... OUT.wasm`).
    Compose {
        /// The plugin component.
        plugin: PathBuf,
        /// Where to write the composed component.
        #[arg(short = 'o', long = "output", value_name = "OUT.wasm")]
        output: PathBuf,
        /// The adapter component (default: `pgcache-adapter.wasm` next to `pgcache`).
        #[arg(long, value_name = "FILE")]
        adapter: Option<PathBuf>,
    },
}

impl Cli {
    fn settings(&self) -> Result<Settings> {
        let file = match &self.config {
            Some(path) => SettingsLayer::from_file(path)?,
            None => SettingsLayer::from_default_file()?,
        };
        let env = SettingsLayer::from_env(|k| std::env::var(k).ok())?;
        let mut flags = match &self.database_url {
            Some(url) => SettingsLayer::from_url(url, "--database-url")?,
            None => SettingsLayer::default(),
        };
        flags.cache_dir = self.cache_dir.clone();
        Ok(Settings::resolve([file, env, flags]))
    }
}

/// Parses the arguments and runs the command; the caller prints errors. Returns the process
/// exit code.
pub async fn run(cli: Cli) -> Result<i32> {
    if let Command::Compose {
        plugin,
        output,
        adapter,
    } = &cli.command
    {
        return compose(plugin, output, adapter.as_deref());
    }
    let settings = cli.settings()?;
    match cli.command {
        Command::Run(args) => run::run(settings, args).await,
        Command::Serve {
            listen,
            drain,
            tls_cert,
            tls_key,
        } => {
            let drain = Duration::try_from_secs_f64(drain).context("--drain takes seconds")?;
            let mut options = pgcache::serve::ServeOptions::default()
                .listen(listen)
                .drain(drain);
            if let (Some(cert), Some(key)) = (tls_cert, tls_key) {
                options = options.tls(pgcache::serve::TlsFiles { cert, key });
            }
            pgcache::serve::serve(settings, options).await?;
            Ok(0)
        }
        Command::Token => {
            let (token, hash) = pgcache::serve::auth::new_token()?;
            println!("token:        {token}");
            println!("tokens_sha256 = [\"{hash}\"]");
            Ok(0)
        }
        command => run_data_command(settings, command).await.map(|()| 0),
    }
}

async fn run_data_command(settings: Settings, command: Command) -> Result<()> {
    match command {
        Command::Query {
            sql,
            params,
            incremental,
            lookback,
            no_cache,
            max_age,
            format,
            output,
        } => {
            if format == Format::Parquet && output.is_none() {
                bail!("--format parquet needs -o FILE");
            }
            let db = Db::connect_lazy(settings)?;
            let params: Vec<Value> = params.into_iter().map(Value::Text).collect();
            let progress = Arc::new(Progress::default());
            let started = Instant::now();
            let result = {
                let _line = progress::ProgressLine::start(progress.clone());
                match incremental {
                    Some(column) => {
                        let mut options = IncrementalOptions::default().progress(progress.clone());
                        if no_cache {
                            options = options.no_cache();
                        }
                        if let Some(window) = lookback {
                            options = options.lookback(parse_lookback(&window)?);
                        }
                        db.incremental_query(&sql, &params, &column, &options)
                            .await?
                    }
                    None => {
                        let mut options = QueryOptions::default().progress(progress.clone());
                        if no_cache {
                            options = options.no_cache();
                        }
                        if let Some(secs) = max_age {
                            options = options.max_age(
                                Duration::try_from_secs_f64(secs)
                                    .context("--max-age takes a number of seconds")?,
                            );
                        }
                        db.query(&sql, &params, &options).await?
                    }
                }
            };
            report(&result, started.elapsed());
            emit(&result, format, output.as_deref())
        }
        Command::Execute { sql, params } => {
            let db = Db::connect_lazy(settings)?;
            let params: Vec<Value> = params.into_iter().map(Value::Text).collect();
            let n = db.execute(&sql, &params).await?;
            println!("{n}");
            Ok(())
        }
        Command::Stats { json } => {
            let db = Db::connect_lazy(settings)?;
            let stats = db.cache_stats().await?;
            if json {
                println!("{}", serde_json::to_string(&stats)?);
            } else {
                println!(
                    "{} entries, {} rows, {:.3} MB in {}",
                    stats.total_files, stats.total_records, stats.total_size_mb, stats.cache_dir
                );
                for e in &stats.entries {
                    let order = e
                        .order_column
                        .as_deref()
                        .map(|c| format!(" by {c}"))
                        .unwrap_or_default();
                    let watermark = e
                        .watermark
                        .as_deref()
                        .map(|w| format!(", watermark {w}"))
                        .unwrap_or_default();
                    println!(
                        "{}  {}{order}  {} rows, {} bytes, {} hits{watermark}, refreshed {}\n    {}",
                        e.name, e.mode, e.rows, e.bytes, e.hits, e.refreshed, e.query
                    );
                }
            }
            Ok(())
        }
        Command::Clear { pattern } => {
            let db = Db::connect_lazy(settings)?;
            let n = db.clear_cache(pattern.as_deref()).await?;
            println!("removed {n} entr{}", if n == 1 { "y" } else { "ies" });
            Ok(())
        }
        Command::Run(_) | Command::Serve { .. } | Command::Token | Command::Compose { .. } => {
            unreachable!("handled by run")
        }
    }
}

/// `pgcache compose`: writes the composition and says what it imports.
fn compose(plugin: &Path, output: &Path, adapter: Option<&Path>) -> Result<i32> {
    let adapter = pgcache::compose::find_adapter(adapter)?;
    let composed = pgcache::compose::compose_files(plugin, &adapter)?;
    std::fs::write(output, &composed.bytes)
        .with_context(|| format!("writing {}", output.display()))?;
    println!(
        "{}: {} bytes, imports {}",
        output.display(),
        composed.bytes.len(),
        composed.imports.join(", ")
    );
    Ok(0)
}

/// `--lookback`: see [`Lookback::parse`].
fn parse_lookback(text: &str) -> Result<Lookback> {
    Lookback::parse(text).map_err(|e| anyhow::anyhow!("--{e}"))
}

/// One line on stderr about where the rows came from, when it is a terminal or -v is on.
fn report(result: &ResultSet, elapsed: Duration) {
    let what = match (result.origin(), result.refresh_report()) {
        (Origin::Hit, _) => "from the cache".to_owned(),
        (Origin::Shared, _) => "from a refresh that ran concurrently".to_owned(),
        (Origin::Uncached, _) => "from the database (cache bypassed)".to_owned(),
        (_, Some(r)) if r.full => format!("{} rows fetched (full load)", r.rows_from_database),
        (_, Some(r)) => format!(
            "{} new rows fetched, {} from the cache",
            r.rows_from_database, r.rows_from_cache
        ),
        _ => "fetched and cached".to_owned(),
    };
    let watermark = result
        .refresh_report()
        .and_then(|r| r.watermark.as_ref())
        .map(|w| format!(", watermark {w}"))
        .unwrap_or_default();
    tracing::info!(
        "{} rows: {what}{watermark}, in {:.3}s",
        result.num_rows(),
        elapsed.as_secs_f64()
    );
}

fn emit(result: &ResultSet, format: Format, output: Option<&Path>) -> Result<()> {
    match (format, output) {
        (Format::None, _) => {}
        (Format::Parquet, Some(path)) => {
            result
                .write_parquet(path)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        (Format::Parquet, None) => bail!("the parquet format needs an output file: add -o FILE"),
        (text, Some(path)) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut out = std::io::BufWriter::new(file);
            write_text(result, text, &mut out)?;
            out.flush()?;
        }
        (text, None) => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            match write_text(result, text, &mut out).and_then(|()| Ok(out.flush()?)) {
                Err(e) if is_broken_pipe(&e) => {}
                other => other?,
            }
        }
    }
    Ok(())
}

fn write_text(result: &ResultSet, format: Format, out: &mut dyn Write) -> Result<()> {
    if let Some(text) = format.text() {
        pgcache::output::write(result, text, out)?;
    }
    Ok(())
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The error and its causes on one line, each cause once.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text.replace('\n', " "));
    }
    line
}

/// Sets up logging on stderr: warnings by default, more with -v or PGCACHE_LOG.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PGCACHE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a terminal: logs piped to a file stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

impl Cli {
    /// The verbosity asked for.
    pub fn verbosity(&self) -> u8 {
        self.verbose
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookback_windows_parse() {
        assert_eq!(parse_lookback("1000").unwrap(), Lookback::Amount(1000));
        assert_eq!(
            parse_lookback("2h").unwrap(),
            Lookback::Micros(7_200_000_000)
        );
        assert_eq!(
            parse_lookback("30min").unwrap(),
            Lookback::Micros(1_800_000_000)
        );
        assert!(parse_lookback("soon").is_err());
    }

    #[test]
    fn one_line_skips_repeated_causes() {
        let e = anyhow::anyhow!("inner: detail").context("outer");
        assert_eq!(one_line(&e), "outer: inner: detail");
    }

    #[test]
    fn arguments_follow_the_spec() {
        let cli = Cli::try_parse_from([
            "pgcache",
            "--cache-dir",
            "/tmp/c",
            "query",
            "SELECT $1",
            "-p",
            "5",
            "--incremental",
            "id",
            "--format",
            "json",
        ])
        .unwrap();
        assert!(
            matches!(cli.command, Command::Query { ref incremental, .. } if incremental.as_deref() == Some("id"))
        );
        assert!(Cli::try_parse_from(["pgcache", "query", "SELECT 1", "--format", "xml"]).is_err());
    }
}
