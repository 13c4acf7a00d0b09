//! `pgcache serve` against a process per run: a plugin that runs one cached query and prints
//! a number, at 1, 8 and 32 concurrent clients through the server (runs/s, p50, p99), next to
//! `pgcache run` started once per run.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pgcache_tests::{database_url, guests, pgcache_bin};

use super::{Sample, Table};

const ROLE: &str = "pgcache_bench_tenant";
const TABLE: &str = "pgcache_bench.serve_points";

/// Runs per concurrency level through the server.
const RUNS: usize = 400;

/// Runs of the process-per-run side.
const PROCESSES: usize = 40;

fn args() -> Vec<String> {
    ["sum", TABLE, "id", "v"].map(String::from).to_vec()
}

/// Adds the serve rows to `table`.
pub async fn measure(table: &mut Table, client: &tokio_postgres::Client) {
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {TABLE};
             CREATE TABLE {TABLE} AS SELECT g::bigint AS id, random() AS v FROM generate_series(1, 1000) g;
             DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
               CREATE ROLE {ROLE} LOGIN; END IF; END $$;
             GRANT USAGE ON SCHEMA pgcache_bench TO {ROLE};
             GRANT SELECT ON {TABLE} TO {ROLE};"
        ))
        .await
        .expect("the serve bench table and role");
    let dir = tempfile::tempdir().expect("a directory");
    let (token, hash) = pgcache::serve::auth::new_token().expect("a token");
    let config = dir.path().join("pgcache.toml");
    std::fs::write(
        &config,
        format!(
            "[cache]\ndir = {:?}\n[plugins]\nrole = {ROLE:?}\n\
             [tenants.bench]\nrole = {ROLE:?}\ntokens_sha256 = [{hash:?}]\n\
             [tenants.bench.limits]\nmax_concurrent = 32\nmax_queued = 1024\n",
            dir.path().join("cache").display().to_string()
        ),
    )
    .expect("write pgcache.toml");

    // Process per run: a new process, pool, engine and compile-cache look-up each time.
    let mut per_process = Vec::new();
    for _ in 0..PROCESSES {
        let started = Instant::now();
        let status = Command::new(pgcache_bin())
            .arg("--config")
            .arg(&config)
            .args(["run", guests::PROBE, "--"])
            .args(args())
            .env("DATABASE_URL", database_url())
            .stdout(Stdio::null())
            .status()
            .expect("pgcache run");
        assert!(status.success());
        per_process.push(started.elapsed());
    }
    let process = Sample(per_process);
    let process_rate = 1.0 / process.median().as_secs_f64();
    table.timed(
        "plugin run, a process per run (pgcache run), one at a time",
        &process,
        format!("{process_rate:.1} runs/s; p99 {}", ms(p99(&process.0))),
    );

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
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the listening line");
    let base = line
        .trim()
        .trim_start_matches("pgcache serve: listening on ")
        .to_owned();
    let http = reqwest::Client::new();
    let upload = http
        .put(format!("{base}/v1/plugins/probe"))
        .bearer_auth(&token)
        .body(std::fs::read(guests::PROBE).expect("the probe"))
        .send()
        .await
        .expect("upload");
    assert_eq!(upload.status(), 201);
    let token = token.clone();
    let runs_url = format!("{base}/v1/plugins/probe/runs");
    let run = move |http: reqwest::Client| {
        let (url, token) = (runs_url.clone(), token.clone());
        async move {
            let started = Instant::now();
            let text = http
                .post(url)
                .bearer_auth(token)
                .json(&serde_json::json!({ "args": args() }))
                .send()
                .await
                .expect("run")
                .text()
                .await
                .expect("events");
            assert!(text.contains("\"exit_code\":0"), "{text}");
            started.elapsed()
        }
    };
    for _ in 0..20 {
        run(http.clone()).await; // warm: pools, page cache
    }
    for clients in [1usize, 8, 32] {
        // Steady state, as a long-running server sees it: one untimed round at this many
        // clients first opens the tenant's pooled connections and instance slots.
        let warm: Vec<_> = (0..clients)
            .map(|_| tokio::spawn(run(http.clone())))
            .collect();
        for w in warm {
            w.await.expect("a warm-up client");
        }
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..clients {
            let http = http.clone();
            let run = run.clone();
            let share = RUNS / clients + usize::from(c < RUNS % clients);
            tasks.push(tokio::spawn(async move {
                let mut times = Vec::with_capacity(share);
                for _ in 0..share {
                    times.push(run(http.clone()).await);
                }
                times
            }));
        }
        let mut times = Vec::new();
        for t in tasks {
            times.extend(t.await.expect("a client"));
        }
        let rate = times.len() as f64 / started.elapsed().as_secs_f64();
        let sample = Sample(times);
        table.timed(
            &format!("plugin run through pgcache serve, {clients} concurrent clients"),
            &sample,
            format!(
                "{rate:.0} runs/s ({:.1}x a process per run); p50 {}, p99 {}",
                rate / process_rate,
                ms(sample.median()),
                ms(p99(&sample.0))
            ),
        );
    }
    let _ = server.kill();
    let _ = server.wait();
}

fn p99(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// The hot columns of a long-running host: the first read of a cached column decodes
/// Parquet, the next one is served from memory.
pub async fn hot_column(table: &mut Table, cache: &std::path::Path, runs: usize) {
    let query = "SELECT * FROM pgcache_bench.eventos";
    let mut firsts = Vec::new();
    let mut seconds = Vec::new();
    let mut rows = 0;
    for _ in 0..runs.max(1) {
        let mut settings = pgcache::Settings::from_url(database_url())
            .expect("the database URL")
            .with_cache_dir(cache);
        settings.cache.hot_bytes = 1 << 30;
        let db = pgcache::Db::connect(settings).await.expect("connect");
        let result = db
            .query(query, &[], &pgcache::QueryOptions::default())
            .await
            .expect("the cached query");
        rows = result.num_rows();
        let started = Instant::now();
        result.column("lat").expect("lat");
        firsts.push(started.elapsed());
        let again = db
            .query(query, &[], &pgcache::QueryOptions::default())
            .await
            .expect("the cached query");
        let started = Instant::now();
        again.column("lat").expect("lat");
        seconds.push(started.elapsed());
    }
    let (first, second) = (Sample(firsts), Sample(seconds));
    table.timed(
        "serve: first read of a cached column (decoding Parquet)",
        &first,
        format!("lat of {rows} rows"),
    );
    table.timed(
        "serve: repeated read of the same column (hot columns)",
        &second,
        format!(
            "{:.0}x faster than the first",
            first.median().as_secs_f64() / second.median().as_secs_f64().max(1e-9)
        ),
    );
}
