//! `pgcache-bench`: the measurements of DESIGN.md section 6, every row in one run, each the
//! median of several runs with min and max, printed as a table and written to a file.
//!
//! ```text
//! cargo run --release -p pgcache-tests --bin pgcache-bench -- [--rows N] [--refresh-at A,B,C]
//!     [--runs R] [--parallel K] [--out FILE] [--serve-only] [--wasmtime-only]
//! (`--serve-only`: the statement checks, `pgcache serve` and wasmtime CLI rows alone, on 10k
//! rows of eventos; the wasmtime CLI rows sum 1M rows of a table of their own)
//! ```
//!
//! It builds the `eventos` tracking table (the benchmark generator's schema and distribution)
//! in the schema `pgcache_bench` of `DATABASE_URL`, so it never touches a user's `eventos`.

#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a benchmark reports or fails loudly"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use arrow::datatypes::Float64Type;
use futures_util::StreamExt;
use pgcache::wasm::{Output, PluginHost, RunOptions};
use pgcache::{Db, IncrementalOptions, Progress, QueryOptions, Settings};
use pgcache_tests::{database_url, guests};

mod checks;
mod serve;
mod wasmtime_cli;

const SCHEMA: &str = "pgcache_bench";
const QUERY: &str = "SELECT * FROM pgcache_bench.eventos";

struct Args {
    rows: u64,
    refresh_at: Vec<u64>,
    runs: usize,
    out: PathBuf,
    parallel: usize,
    /// Only the `pgcache serve` rows.
    serve_only: bool,
    /// Only the wasmtime CLI rows.
    wasmtime_only: bool,
}

fn args() -> Args {
    let mut a = Args {
        rows: 1_000_000,
        refresh_at: vec![100_000, 1_000_000, 5_000_000],
        runs: 5,
        out: PathBuf::from("target/pgcache-bench.md"),
        parallel: 3,
        serve_only: false,
        wasmtime_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--rows" => a.rows = value().parse().expect("--rows N"),
            "--refresh-at" => {
                a.refresh_at = value()
                    .split(',')
                    .map(|n| n.trim().parse().expect("sizes"))
                    .collect()
            }
            "--runs" => a.runs = value().parse().expect("--runs R"),
            "--out" => a.out = PathBuf::from(value()),
            "--parallel" => a.parallel = value().parse().expect("--parallel K"),
            "--serve-only" => a.serve_only = true,
            "--wasmtime-only" => a.wasmtime_only = true,
            "--child-full-load" => {
                let dir = value();
                let ways = it.next().and_then(|w| w.parse().ok()).unwrap_or(1);
                child_full_load(&dir, ways);
                std::process::exit(0);
            }
            other => panic!("unknown flag {other}; see the file's documentation"),
        }
    }
    a.refresh_at.sort_unstable();
    a
}

/// Several timings of one thing.
struct Sample(Vec<Duration>);

impl Sample {
    fn median(&self) -> Duration {
        let mut v = self.0.clone();
        v.sort();
        v[v.len() / 2]
    }
    fn min(&self) -> Duration {
        *self.0.iter().min().unwrap()
    }
    fn max(&self) -> Duration {
        *self.0.iter().max().unwrap()
    }
}

struct Table {
    rows: Vec<(String, String, String)>,
}

impl Table {
    fn timed(&mut self, what: &str, sample: &Sample, note: String) {
        let cell = format!(
            "{} (min {}, max {})",
            fmt(sample.median()),
            fmt(sample.min()),
            fmt(sample.max())
        );
        println!("| {what} | {cell} | {note} |");
        self.rows.push((what.to_owned(), cell, note));
    }
    fn value(&mut self, what: &str, value: String, note: String) {
        println!("| {what} | {value} | {note} |");
        self.rows.push((what.to_owned(), value, note));
    }
}

fn fmt(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    } else if d < Duration::from_secs(1) {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.3} s", d.as_secs_f64())
    }
}

async fn sql(client: &tokio_postgres::Client, text: &str) {
    client
        .batch_execute(text)
        .await
        .unwrap_or_else(|e| panic!("{e:?}\n{text}"));
}

/// Drops and refills the table with `n` rows, or appends rows up to `n`.
async fn grow_to(client: &tokio_postgres::Client, n: u64) {
    let have: i64 = client
        .query_one(
            &format!("SELECT coalesce(max(id), 0) FROM {SCHEMA}.eventos"),
            &[],
        )
        .await
        .map(|r| r.get(0))
        .unwrap_or(-1);
    if have < 0 || have as u64 > n {
        sql(
            client,
            &format!("CREATE SCHEMA IF NOT EXISTS {SCHEMA}; SET search_path TO {SCHEMA};"),
        )
        .await;
        sql(
            client,
            include_str!("../../../../scripts/eventos/schema.sql"),
        )
        .await;
        append(client, 1, n).await;
    } else if (have as u64) < n {
        append(client, have as u64 + 1, n - have as u64).await;
    }
}

async fn append(client: &tokio_postgres::Client, start: u64, n: u64) {
    let generator = include_str!("../../../../scripts/eventos/gen_rows.sql")
        .replace("\\gset", ";")
        .replace(":start", &start.to_string())
        .replace(":n - 1", &format!("{n} - 1"));
    sql(client, &format!("SET search_path TO {SCHEMA}; {generator}")).await;
    sql(client, &format!("VACUUM ANALYZE {SCHEMA}.eventos")).await;
}

fn settings(cache: &Path) -> Settings {
    Settings::from_url(database_url())
        .unwrap()
        .with_cache_dir(cache)
}

/// `runs` full loads, each in a child process (so each peak RSS is its own), over `ways`
/// connections. Returns the times and the peak RSS values in KiB, sorted.
fn full_loads(work: &tempfile::TempDir, runs: usize, ways: usize) -> (Sample, Vec<u64>) {
    let exe = std::env::current_exe().unwrap();
    let mut loads = Vec::new();
    let mut rss = Vec::new();
    for i in 0..runs {
        let cache = work.path().join(format!("load{ways}-{i}"));
        let out = std::process::Command::new(&exe)
            .arg("--child-full-load")
            .arg(&cache)
            .arg(ways.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let f: Vec<f64> = text
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        loads.push(Duration::from_secs_f64(f[0]));
        rss.push(f[3] as u64);
        std::fs::remove_dir_all(&cache).unwrap();
    }
    rss.sort();
    (Sample(loads), rss)
}

/// The full load in a process of its own, so its peak memory is its own: prints seconds,
/// rows, wire bytes and peak RSS in KiB.
fn child_full_load(cache: &str, ways: usize) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut layer = pgcache::config::SettingsLayer::from_url(database_url(), "bench").unwrap();
        layer.parallel_fetch = Some(ways);
        layer.parallel_min_rows = Some(1);
        let db = Db::connect(Settings::resolve([layer]).with_cache_dir(cache))
            .await
            .unwrap();
        let progress = Arc::new(Progress::default());
        let started = Instant::now();
        let r = db
            .incremental_query(
                QUERY,
                &[],
                "id",
                &IncrementalOptions::default().progress(progress.clone()),
            )
            .await
            .unwrap();
        let secs = started.elapsed().as_secs_f64();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let hwm = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("0");
        println!("{secs} {} {} {hwm}", r.num_rows(), progress.bytes());
    });
}

fn main() {
    // Parsed before any runtime exists: `--child-full-load` runs one of its own.
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench(args));
}

async fn bench(args: Args) {
    let (client, conn) = tokio_postgres::connect(database_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let work = tempfile::tempdir().unwrap();
    let mut table = Table { rows: Vec::new() };
    println!(
        "pgcache-bench: {} rows, {} runs each, database {}",
        args.rows,
        args.runs,
        database_url()
    );
    println!("| what | median (min, max) | notes |\n| --- | --- | --- |");
    if args.wasmtime_only {
        sql(&client, &format!("CREATE SCHEMA IF NOT EXISTS {SCHEMA}")).await;
        wasmtime_cli::measure(&mut table, &client, args.runs).await;
        return;
    }
    if args.serve_only {
        // The sandbox's checks and the server, on a small eventos.
        grow_to(&client, 10_000).await;
        checks::measure(&mut table, settings(&work.path().join("checks")), args.runs).await;
        serve::measure(&mut table, &client).await;
        // Hot columns at --rows (1M by default), the size the target is stated for.
        grow_to(&client, args.rows).await;
        serve::hot_column(&mut table, &work.path().join("hot"), args.runs).await;
        wasmtime_cli::measure(&mut table, &client, args.runs).await;
        return;
    }

    // 1. The limit and the full load, at --rows.
    grow_to(&client, args.rows).await;
    let mut copy_times = Vec::new();
    let mut wire = 0;
    for _ in 0..args.runs {
        let started = Instant::now();
        let stream = client
            .copy_out(&format!("COPY ({QUERY}) TO STDOUT (FORMAT binary)"))
            .await
            .unwrap();
        futures_util::pin_mut!(stream);
        wire = 0;
        while let Some(chunk) = stream.next().await {
            wire += chunk.unwrap().len();
        }
        copy_times.push(started.elapsed());
    }
    let copy = Sample(copy_times);
    table.timed(
        "limit: COPY (SELECT * FROM eventos) TO STDOUT (FORMAT binary), drained",
        &copy,
        format!(
            "{} rows, {:.1} MB on the wire",
            args.rows,
            wire as f64 / 1e6
        ),
    );

    let (load, rss) = full_loads(&work, args.runs, 1);
    let secs = load.median().as_secs_f64();
    table.timed(
        "full load into the cache (incremental by id)",
        &load,
        format!(
            "{:.2}x the limit; {:.0} rows/s, {:.1} MB/s",
            secs / copy.median().as_secs_f64(),
            args.rows as f64 / secs,
            wire as f64 / 1e6 / secs
        ),
    );
    table.value(
        "peak RSS of the full load",
        format!("{:.0} MB", rss[rss.len() / 2] as f64 / 1024.0),
        format!(
            "min {:.0} MB, max {:.0} MB",
            rss[0] as f64 / 1024.0,
            rss[rss.len() - 1] as f64 / 1024.0
        ),
    );
    if let Some(cx) = connectorx_load(args.runs, &work.path().join("cx.parquet")) {
        table.timed(
            "ConnectorX read_sql(return_type=\"arrow\") + pyarrow write_table(zstd)",
            &cx,
            format!(
                "pgcache full load / ConnectorX = {:.2}",
                secs / cx.median().as_secs_f64()
            ),
        );
    }
    for ways in 2..=args.parallel.max(1) {
        let (parallel, rss) = full_loads(&work, args.runs, ways);
        table.timed(
            &format!("full load split over {ways} connections (one exported snapshot)"),
            &parallel,
            format!(
                "{:.2}x the single stream, {:.2}x the limit; peak RSS {:.0} MB",
                parallel.median().as_secs_f64() / secs,
                parallel.median().as_secs_f64() / copy.median().as_secs_f64(),
                rss[rss.len() / 2] as f64 / 1024.0
            ),
        );
    }

    // 2. Reads of the cache at --rows: a hit read into Arrow, a projection, pyarrow.
    let cache = work.path().join("main");
    // The bench measures the host, not the sandbox: its plugins may run as the bench's own
    // (privileged) login, so they read the very entry the host reads.
    let mut bench_settings = settings(&cache);
    bench_settings.policy.unsafe_allow_privileged_role = true;
    let db = Db::connect(bench_settings).await.unwrap();
    let inc = db
        .incremental_query(QUERY, &[], "id", &IncrementalOptions::default())
        .await
        .unwrap();
    db.query(QUERY, &[], &QueryOptions::default())
        .await
        .unwrap();
    let mut hits = Vec::new();
    let mut projections = Vec::new();
    for _ in 0..args.runs {
        let started = Instant::now();
        let r = db
            .query(QUERY, &[], &QueryOptions::default())
            .await
            .unwrap();
        let batches = tokio::task::spawn_blocking(move || r.to_batches().unwrap())
            .await
            .unwrap();
        hits.push(started.elapsed());
        assert_eq!(
            batches.iter().map(|b| b.num_rows() as u64).sum::<u64>(),
            args.rows
        );
        let started = Instant::now();
        let r = db
            .query(QUERY, &[], &QueryOptions::default())
            .await
            .unwrap();
        tokio::task::spawn_blocking(move || {
            r.project(&["lat", "lon"])
                .unwrap()
                .map(|b| b.unwrap().num_rows())
                .sum::<usize>()
        })
        .await
        .unwrap();
        projections.push(started.elapsed());
    }
    let hit = Sample(hits);
    table.timed(
        "cache hit, full read into Arrow",
        &hit,
        format!("{} rows, all 11 columns", args.rows),
    );
    table.timed(
        "cache hit, projection of lat and lon",
        &Sample(projections),
        String::new(),
    );
    let entry = cache.join(
        db.query(QUERY, &[], &QueryOptions::default())
            .await
            .unwrap()
            .entry_name()
            .unwrap(),
    );
    if let Some(py) = pyarrow_read(&entry, args.runs) {
        table.timed(
            "pyarrow reading the same files (pyarrow.dataset ... to_table())",
            &py,
            format!(
                "pgcache / pyarrow = {:.2}",
                hit.median().as_secs_f64() / py.median().as_secs_f64()
            ),
        );
    }

    // 3. A plugin summing one f64 column, next to the host doing the same.
    let compile_cache = work.path().join("compiled");
    let host = PluginHost::new(Some(&compile_cache)).unwrap();
    let probe = host.load(Path::new(guests::PROBE)).unwrap();
    let mut guest = Vec::new();
    for _ in 0..args.runs {
        let mut options = RunOptions::default();
        options.stdout = Output::Capture;
        options.args = ["sum", "pgcache_bench.eventos", "id", "lat"]
            .map(String::from)
            .to_vec();
        let outcome = probe.run(&db, &options).await.unwrap();
        let text = String::from_utf8(outcome.stdout).unwrap();
        let micros: u64 = text
            .split_whitespace()
            .find_map(|w| w.strip_prefix("total_us="))
            .unwrap()
            .parse()
            .unwrap();
        guest.push(Duration::from_micros(micros));
    }
    let guest = Sample(guest);
    let mut host_sum = Vec::new();
    for _ in 0..args.runs {
        let r = inc.clone();
        let started = Instant::now();
        let total = tokio::task::spawn_blocking(move || {
            let lat = r.column("lat").unwrap();
            lat.as_primitive::<Float64Type>()
                .values()
                .iter()
                .sum::<f64>()
        })
        .await
        .unwrap();
        host_sum.push(started.elapsed());
        assert!(total.is_finite());
    }
    let host_sum = Sample(host_sum);
    table.timed(
        "host: read the lat column of the cached entry and sum it",
        &host_sum,
        format!("{} f64 values", args.rows),
    );
    table.timed(
        "plugin: take the lat column through the WIT interface and sum it",
        &guest,
        format!(
            "{:.2}x the host",
            guest.median().as_secs_f64() / host_sum.median().as_secs_f64()
        ),
    );

    // 4. Plugin start: cold (compiling) and warm (compile cache on disk), to the first host call;
    //    and the cost of one host call.
    for (label, dir) in [
        ("cold, compiling", work.path().join("cold")),
        ("warm, compile cache on disk", compile_cache.clone()),
    ] {
        let mut starts = Vec::new();
        for i in 0..args.runs {
            let dir = if label.starts_with("cold") {
                dir.join(i.to_string())
            } else {
                dir.clone()
            };
            let started = Instant::now();
            let host = PluginHost::new(Some(&dir)).unwrap();
            let plugin = host.load(Path::new(guests::PROBE)).unwrap();
            let mut options = RunOptions::default();
            options.stdout = Output::Capture;
            options.args = vec!["first-call".into()];
            let outcome = plugin.run(&db, &options).await.unwrap();
            starts.push(outcome.first_host_call.unwrap() - started);
        }
        table.timed(
            &format!("plugin start to first host call, {label}"),
            &Sample(starts),
            "new engine, load, instantiate".into(),
        );
    }
    let mut per_call = Vec::new();
    for _ in 0..args.runs {
        let mut options = RunOptions::default();
        options.stdout = Output::Capture;
        options.args = vec!["stats-loop".into(), "2000".into()];
        let outcome = probe.run(&db, &options).await.unwrap();
        let text = String::from_utf8(outcome.stdout).unwrap();
        let micros: f64 = text
            .split_whitespace()
            .find_map(|w| w.strip_prefix("total_us="))
            .unwrap()
            .parse()
            .unwrap();
        per_call.push(Duration::from_secs_f64(micros / 2000.0 / 1e6));
    }
    let mut direct = Vec::new();
    for _ in 0..args.runs {
        let started = Instant::now();
        for _ in 0..2000 {
            db.cache_stats().await.unwrap();
        }
        direct.push(started.elapsed() / 2000);
    }
    table.timed(
        "one cache-stats call from a plugin",
        &Sample(per_call),
        "2000 calls in a loop, per call".into(),
    );
    table.timed(
        "one cache_stats call from Rust (the same work, no plugin)",
        &Sample(direct),
        String::new(),
    );

    // The sandbox's checks per query call.
    checks::measure(&mut table, settings(&work.path().join("checks")), args.runs).await;

    // 5. Refresh after appending 10k rows, at each cached size.
    let refresh_cache = work.path().join("refresh");
    let rdb = Db::connect(settings(&refresh_cache)).await.unwrap();
    let mut at = Vec::new();
    for &size in &args.refresh_at {
        grow_to(&client, size).await;
        rdb.incremental_query(QUERY, &[], "id", &IncrementalOptions::default())
            .await
            .unwrap();
        let mut times = Vec::new();
        for _ in 0..args.runs {
            let have: i64 = client
                .query_one(&format!("SELECT max(id) FROM {SCHEMA}.eventos"), &[])
                .await
                .unwrap()
                .get(0);
            append(&client, have as u64 + 1, 10_000).await;
            let started = Instant::now();
            let r = rdb
                .incremental_query(QUERY, &[], "id", &IncrementalOptions::default())
                .await
                .unwrap();
            times.push(started.elapsed());
            assert!(r.refresh_report().unwrap().rows_from_database <= 10_001 + 10_000);
        }
        // Put the table back to its size for the next step's arithmetic.
        sql(
            &client,
            &format!("DELETE FROM {SCHEMA}.eventos WHERE id > {size}"),
        )
        .await;
        rdb.clear_cache(None).await.unwrap();
        let sample = Sample(times);
        at.push((size, sample.median()));
        table.timed(
            &format!("refresh after appending 10k rows, {size} rows cached"),
            &sample,
            String::new(),
        );
    }
    if let (Some(first), Some(last)) = (at.first(), at.last()) {
        table.value(
            "refresh time, largest over smallest cache",
            format!("{:.2}x", last.1.as_secs_f64() / first.1.as_secs_f64()),
            format!("{} vs {} rows", last.0, first.0),
        );
    }

    // 6. pgcache serve against a process per run; hot columns.
    serve::measure(&mut table, &client).await;
    serve::hot_column(&mut table, &work.path().join("hot"), args.runs).await;
    wasmtime_cli::measure(&mut table, &client, args.runs).await;

    let mut file = String::from("| what | median (min, max) | notes |\n| --- | --- | --- |\n");
    for (what, value, note) in &table.rows {
        file.push_str(&format!("| {what} | {value} | {note} |\n"));
    }
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir).ok();
    }
    std::fs::write(&args.out, file).unwrap();
    println!("written to {}", args.out.display());
}

/// The bench's Python (with pyarrow; ConnectorX when `scripts/bench.sh` installed it).
fn python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/pyenv/bin/python")
}

/// ConnectorX loading the table into Arrow and pyarrow writing it as ZSTD Parquet, timed
/// inside Python; `None` when ConnectorX is not installed.
fn connectorx_load(runs: usize, out: &Path) -> Option<Sample> {
    let url = database_url().replacen("postgres://", "postgresql://", 1);
    let script = format!(
        "import time, connectorx as cx, pyarrow.parquet as pq\nfor _ in range({runs}):\n    t = time.perf_counter()\n    table = cx.read_sql({url:?}, {QUERY:?}, return_type='arrow')\n    pq.write_table(table, {:?}, compression='zstd')\n    print(time.perf_counter() - t)",
        out.display().to_string()
    );
    python_times(
        &script,
        "ConnectorX comparison skipped (scripts/bench.sh installs it)",
    )
}

/// pyarrow reading an entry directory as a dataset, timed inside Python.
fn pyarrow_read(entry: &Path, runs: usize) -> Option<Sample> {
    let script = format!(
        "import time, pyarrow.dataset as ds\nfor _ in range({runs}):\n    t = time.perf_counter()\n    ds.dataset({:?}, format='parquet').to_table()\n    print(time.perf_counter() - t)",
        entry.display().to_string()
    );
    python_times(&script, "pyarrow comparison skipped")
}

/// Runs a Python `script` that prints one time in seconds per line; on failure says
/// `skipped` with the last line of Python's error and gives `None`.
fn python_times(script: &str, skipped: &str) -> Option<Sample> {
    let output = std::process::Command::new(python())
        .arg("-c")
        .arg(script)
        .output()
        .ok()?;
    if !output.status.success() {
        eprintln!(
            "{skipped}: {}",
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return None;
    }
    let times = String::from_utf8(output.stdout)
        .ok()?
        .lines()
        .filter_map(|l| l.parse::<f64>().ok())
        .map(Duration::from_secs_f64)
        .collect();
    Some(Sample(times))
}
