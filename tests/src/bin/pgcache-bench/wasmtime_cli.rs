//! A plugin under the stock `wasmtime` CLI through the adapter, next to `pgcache run`: the
//! probe sums one float8 column of 1M cached rows (DESIGN.md, wave 2: within 3x). Each side
//! is timed as a whole process, and the probe reports how long its `column` call took; a run
//! that only calls `cache-stats` gives each side's start-up, so the table says where the time
//! goes: start-up (compiling or loading the component), the query (for the adapter: HTTP and
//! the Arrow IPC bytes), and the column (for the adapter: converted from its own copy).

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pgcache_tests::{database_url, guests, pgcache_bin, wasmtime_bin};

use super::{Sample, Table};

const ROLE: &str = "pgcache_bench_tenant";
const TABLE: &str = "pgcache_bench.wasmtime_floats";
const ROWS: u64 = 1_000_000;

/// Adds the wasmtime CLI rows to `table`.
pub async fn measure(table: &mut Table, client: &tokio_postgres::Client, runs: usize) {
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {TABLE};
             CREATE TABLE {TABLE} AS SELECT g::bigint AS id, random() AS v FROM generate_series(1, {ROWS}) g;
             DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
               CREATE ROLE {ROLE} LOGIN; END IF; END $$;
             GRANT USAGE ON SCHEMA pgcache_bench TO {ROLE};
             GRANT SELECT ON {TABLE} TO {ROLE};"
        ))
        .await
        .expect("the wasmtime bench table and role");
    let dir = tempfile::tempdir().expect("a directory");
    let (token, hash) = pgcache::serve::auth::new_token().expect("a token");
    let config = dir.path().join("pgcache.toml");
    std::fs::write(
        &config,
        format!(
            "[cache]\ndir = {:?}\n[tenants.bench]\nrole = {ROLE:?}\ntokens_sha256 = [{hash:?}]\n",
            dir.path().join("cache").display().to_string()
        ),
    )
    .expect("write pgcache.toml");
    let composed = dir.path().join("probe-composed.wasm");
    let status = Command::new(pgcache_bin())
        .args(["compose", guests::PROBE, "-o"])
        .arg(&composed)
        .args(["--adapter", guests::ADAPTER])
        .stdout(Stdio::null())
        .status()
        .expect("pgcache compose");
    assert!(status.success(), "pgcache compose");
    let mut server = Command::new(pgcache_bin())
        .arg("--config")
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0", "--drain", "1"])
        .env("DATABASE_URL", database_url())
        .stdout(Stdio::piped())
        .spawn()
        .expect("pgcache serve");
    let mut line = String::new();
    let stdout = server.stdout.take().expect("stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
        .expect("the listening line");
    let base = line
        .trim()
        .trim_start_matches("pgcache serve: listening on ")
        .to_owned();

    let sum = ["sum", TABLE, "id", "v"];
    let local = |args: &[&str]| {
        Command::new(pgcache_bin())
            .arg("--config")
            .arg(&config)
            .args(["run", "--tenant", "bench", guests::PROBE, "--"])
            .args(args)
            .env("DATABASE_URL", database_url())
            .output()
            .expect("pgcache run")
    };
    let remote = |args: &[&str]| {
        Command::new(wasmtime_bin())
            .args(["run", "-S", "http", "--env"])
            .arg(format!("PGCACHE_URL={base}"))
            .arg("--env")
            .arg(format!("PGCACHE_TOKEN={token}"))
            .arg(&composed)
            .args(args)
            .output()
            .expect("wasmtime run")
    };
    // Fills the cache, compiles (pgcache's compile cache; wasmtime's own if configured).
    ok(&local(&sum));
    ok(&remote(&sum));
    let mut sides = Vec::new();
    for (name, run) in [
        ("pgcache run", &local as &dyn Fn(&[&str]) -> Output),
        ("wasmtime run -S http, adapter", &remote),
    ] {
        let (mut whole, mut column, mut start) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs.max(1) {
            let started = Instant::now();
            let out = ok(&run(&sum));
            whole.push(started.elapsed());
            column.push(Duration::from_micros(field(&out, "fetch_us")));
            let started = Instant::now();
            ok(&run(&["first-call"]));
            start.push(started.elapsed());
        }
        sides.push((name, Sample(whole), Sample(column), Sample(start)));
    }
    let base_time = sides[0].1.median().as_secs_f64();
    for (name, whole, column, start) in &sides {
        table.timed(
            &format!("{name}: sum one float8 column of 1M cached rows (whole process)"),
            whole,
            format!(
                "{:.2}x pgcache run; of it start-up + one call {}, the column call {}",
                whole.median().as_secs_f64() / base_time,
                super_ms(start.median()),
                super_ms(column.median())
            ),
        );
    }
    let _ = server.kill();
    let _ = server.wait();
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `key=N` of the probe's line.
fn field(out: &str, key: &str) -> u64 {
    out.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {out}"))
}

fn super_ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}
