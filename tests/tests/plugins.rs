//! Real components run by wasmtime against the real database: the example plugin's report
//! equals the same aggregates in SQL, refreshes fetch only new rows, every error variant
//! reaches the guest as itself, limits stop the guest while the host goes on, and WASI gives
//! the guest only what it was granted.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::path::Path;
use std::time::Duration;

use pgcache::Db;
use pgcache::wasm::{
    Capabilities, DirGrant, Limits, Output, PluginHost, RunError, RunOptions, RunOutcome,
};
use pgcache_tests::{Scratch, guests, plugin};
use serde_json::Value as Json;

fn captured() -> RunOptions {
    let mut options = RunOptions::default();
    options.stdout = Output::Capture;
    options.stderr = Output::Capture;
    options
}

async fn run(
    db: &Db,
    guest: &str,
    args: &[&str],
    mut options: RunOptions,
) -> Result<RunOutcome, RunError> {
    options.args = args.iter().map(|a| a.to_string()).collect();
    plugin(guest).run(db, &options).await
}

fn stdout(outcome: &RunOutcome) -> String {
    assert_eq!(
        outcome.exit_code,
        0,
        "stderr: {}",
        String::from_utf8_lossy(&outcome.stderr)
    );
    String::from_utf8(outcome.stdout.clone()).unwrap()
}

/// The example plugin's aggregates, computed by PostgreSQL.
async fn sql_report(s: &Scratch) -> Vec<(i32, i64, f64, f64, f64)> {
    let sql = format!(
        "WITH f AS (
           SELECT device_id, speed, lat, lon,
                  lag(lat) OVER w AS plat, lag(lon) OVER w AS plon
           FROM {}.eventos WINDOW w AS (PARTITION BY device_id ORDER BY id))
         SELECT device_id, count(*),
                coalesce(sum(2 * 6371.0088 * asin(sqrt(sin(radians(lat - plat) / 2) ^ 2
                    + cos(radians(plat)) * cos(radians(lat)) * sin(radians(lon - plon) / 2) ^ 2))), 0),
                avg(speed), max(speed)::float8
         FROM f GROUP BY device_id ORDER BY device_id",
        s.schema
    );
    let rows = s.client.query(&sql, &[]).await.unwrap();
    rows.iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
}

async fn sql_status_times(s: &Scratch) -> Vec<(String, i64)> {
    let sql = format!(
        "SELECT status, sum(micros)::int8 FROM (
           SELECT lag(status) OVER w AS status,
                  (extract(epoch FROM ts - lag(ts) OVER w) * 1000000)::int8 AS micros
           FROM {}.eventos WINDOW w AS (PARTITION BY device_id ORDER BY id)) t
         WHERE status IS NOT NULL GROUP BY status ORDER BY status",
        s.schema
    );
    let rows = s.client.query(&sql, &[]).await.unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn check_report(report: &Json, expected: &[(i32, i64, f64, f64, f64)], statuses: &[(String, i64)]) {
    let devices = report["devices"].as_array().unwrap();
    assert_eq!(devices.len(), expected.len());
    for (d, (id, fixes, km, avg, max)) in devices.iter().zip(expected) {
        assert_eq!(d["device_id"].as_i64(), Some(i64::from(*id)));
        assert_eq!(d["fixes"].as_i64(), Some(*fixes), "device {id}");
        assert!(
            close(d["distance_km"].as_f64().unwrap(), *km),
            "device {id}: {} km vs {km} in SQL",
            d["distance_km"]
        );
        assert!(
            close(d["avg_speed"].as_f64().unwrap(), *avg),
            "device {id}: avg {} vs {avg}",
            d["avg_speed"]
        );
        assert!(
            close(d["max_speed"].as_f64().unwrap(), *max),
            "device {id}: max {} vs {max}",
            d["max_speed"]
        );
    }
    for (status, micros) in statuses {
        let total: i64 = devices
            .iter()
            .filter_map(|d| d["status_micros"][status].as_i64())
            .sum();
        assert_eq!(total, *micros, "time in status {status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_plugin_reports_what_sql_computes_and_refreshes_incrementally() {
    let s = Scratch::new("plugin_report").await;
    s.eventos(20_000).await;
    let db = s.plugin_db().await;
    let table = format!("{}.eventos", s.schema);
    let args = ["--table", table.as_str(), "--json"];

    let first: Json = serde_json::from_str(&stdout(
        &run(&db, guests::EVENTOS_REPORT, &args, captured())
            .await
            .unwrap(),
    ))
    .unwrap();
    assert_eq!(
        (first["fixes"].as_u64(), first["full"].as_bool()),
        (Some(20_000), Some(true))
    );
    check_report(&first, &sql_report(&s).await, &sql_status_times(&s).await);

    // Let the cache settle (no transaction of another test still open), then add rows.
    pgcache_tests::settle(
        &db,
        &format!("SELECT id, device_id, ts, lat, lon, speed, status FROM {table}"),
        &[],
        "id",
        &pgcache::IncrementalOptions::default(),
    )
    .await;
    s.append_eventos(20_001, 500).await;
    let second: Json = serde_json::from_str(&stdout(
        &run(&db, guests::EVENTOS_REPORT, &args, captured())
            .await
            .unwrap(),
    ))
    .unwrap();
    assert_eq!(second["fixes"].as_u64(), Some(20_500));
    assert_eq!(second["full"].as_bool(), Some(false));
    assert_eq!(
        second["rows_from_database"].as_u64(),
        Some(501),
        "the 500 new rows and the tie at the old watermark"
    );
    assert_eq!(second["rows_from_cache"].as_u64(), Some(19_999));
    assert_eq!(second["watermark"].as_str(), Some("20500"));
    check_report(&second, &sql_report(&s).await, &sql_status_times(&s).await);

    // The human report names what the refresh did.
    let text = stdout(
        &run(
            &db,
            guests::EVENTOS_REPORT,
            &["--table", &table],
            captured(),
        )
        .await
        .unwrap(),
    );
    assert!(
        text.contains("20500 fixes of") && text.contains("from the cache"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guest_reads_schema_columns_batches_and_ipc() {
    let s = Scratch::new("plugin_api").await;
    s.sql(
        "CREATE TABLE {s}.api (id bigint, price numeric(8,2), name text, tags int4[], at timestamptz, ok bool);
         INSERT INTO {s}.api VALUES (1, 1.50, 'a', '{1,2}', '2024-01-01 00:00:00+00', true),
                                    (2, NULL, NULL, NULL, NULL, NULL),
                                    (3, -2.25, 'ccc', '{}', '1970-01-01 00:00:00.000001+00', false);",
    )
    .await;
    let db = s.plugin_db().await;
    let out = stdout(
        &run(&db, guests::PROBE, &["api", &s.table("api")], captured())
            .await
            .unwrap(),
    );
    for expected in [
        "num_rows=3",
        "column price scalar=ScalarType::Decimal128 list=false precision=8 scale=2 pg=numeric(8,2)",
        "column tags scalar=ScalarType::Int32 list=true precision=0 scale=0 pg=int4[]",
        "values id len=3 nulls=0 int64 [1, 2, 3]",
        "values price len=3 nulls=1 decimal128 [150, 0, -225]",
        "values name len=3 nulls=1 utf8 [\"a\", \"\", \"ccc\"]",
        "values tags len=3 nulls=1 list offsets=[0, 2, 2, 2] elements=int32 [1, 2]",
        "values at len=3 nulls=1 timestamptz [1704067200000000, 0, 1]",
        "values ok len=3 nulls=1 bool [true, false, false]",
        "batches=2,1",
        "ipc_magic=true",
        "incremental rows=3 from_db=3 from_cache=0 full=true watermark=3",
        "typed int64 [42] | timestamptz [1000000]",
        "stats files=2 records=6",
        "cleared=2",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(expected)),
            "missing {expected:?} in:\n{out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_error_reaches_the_guest_as_its_own_variant() {
    let s = Scratch::new("plugin_errors").await;
    s.sql("CREATE TABLE {s}.t (id bigint); INSERT INTO {s}.t SELECT generate_series(1, 100);")
        .await;
    let mut settings = s.plugin_settings().await;
    settings.policy.statement_timeout = Some(Duration::from_millis(300));
    let db = Db::connect(settings).await.unwrap();
    let t = s.table("t");
    let case = |args: Vec<String>, options: RunOptions| {
        let db = db.clone();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            stdout(&run(&db, guests::PROBE, &args, options).await.unwrap())
        }
    };
    let s_ = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();

    let out = case(
        s_(&["error", "query", "SELECT * FROM no_such_table"]),
        captured(),
    )
    .await;
    assert!(out.starts_with("error=database code=42P01 severity=ERROR message=relation \"no_such_table\" does not exist"), "{out}");
    let out = case(s_(&["error", "param"]), captured()).await;
    assert!(
        out.starts_with("error=bad-parameter")
            && out.contains("invalid input syntax for type integer"),
        "{out}"
    );
    let out = case(
        s_(&["error", "execute", &format!("DELETE FROM {t}")]),
        captured(),
    )
    .await;
    assert!(
        out.starts_with("error=denied this plugin may not call execute"),
        "{out}"
    );
    let rows: i64 = s.scalar("SELECT count(*) FROM {s}.t").await;
    assert_eq!(rows, 100, "a denied execute ran nothing");
    let mut few = captured();
    few.limits.results.max_rows = 10;
    let out = case(s_(&["error", "query", &format!("SELECT * FROM {t}")]), few).await;
    assert!(
        out.starts_with("error=limit-exceeded rows per result limit of 10 exceeded"),
        "{out}"
    );
    let out = case(
        s_(&["error", "query", "SELECT pg_sleep(5) IS NULL AS slept"]),
        captured(),
    )
    .await;
    assert!(
        out.starts_with("error=timeout statement timed out"),
        "{out}"
    );
    let out = case(
        s_(&[
            "error",
            "incremental",
            &format!("SELECT * FROM {t}"),
            "nope",
        ]),
        captured(),
    )
    .await;
    assert!(
        out.starts_with("error=other ordering column \"nope\" is not in the query result"),
        "{out}"
    );
    let mut granted = captured();
    granted.capabilities.execute = true;
    let out = case(
        s_(&[
            "error",
            "execute",
            &format!("DELETE FROM {t} WHERE id > 90"),
        ]),
        granted,
    )
    .await;
    assert_eq!(out.trim(), "ok");

    // The cache directory replaced by a file: the cache cannot be read or written.
    let cache = s.cache.path().to_path_buf();
    std::fs::remove_dir_all(&cache).unwrap();
    std::fs::write(&cache, b"not a directory").unwrap();
    let out = case(s_(&["error", "stats"]), captured()).await;
    assert!(out.starts_with("error=cache-io"), "{out}");
    std::fs::remove_file(&cache).unwrap();
    std::fs::create_dir(&cache).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_stop_the_guest_and_the_host_goes_on() {
    let s = Scratch::new("plugin_limits").await;
    let db = s.plugin_db().await;
    let limited = |f: &dyn Fn(&mut Limits)| {
        let mut options = captured();
        f(&mut options.limits);
        options
    };
    let cases: [(&str, RunOptions, &str); 3] = [
        (
            "spin",
            limited(&|l| l.cpu_time = Duration::from_millis(300)),
            "CPU time",
        ),
        ("grow", limited(&|l| l.max_memory = 32 << 20), "memory"),
        (
            "sleep",
            limited(&|l| l.wall_time = Duration::from_millis(500)),
            "wall-clock time",
        ),
    ];
    for (mode, options, limit) in cases {
        let started = std::time::Instant::now();
        match run(&db, guests::PROBE, &[mode], options).await {
            Err(RunError::Limit { limit: l, .. }) => assert_eq!(l, limit, "{mode}"),
            other => panic!("{mode}: expected the {limit} limit, got {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{mode} was stopped promptly"
        );
        // The host is fine: the next plugin runs normally.
        let ok = run(&db, guests::PROBE, &["exit", "0"], captured())
            .await
            .unwrap();
        assert_eq!(ok.exit_code, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_pass_through_and_traps_carry_a_backtrace() {
    let s = Scratch::new("plugin_exit").await;
    let db = s.plugin_db().await;
    assert_eq!(
        run(&db, guests::PROBE, &["exit", "0"], captured())
            .await
            .unwrap()
            .exit_code,
        0
    );
    // WASI 0.2's `exit` carries success or failure only: any other code arrives as 1.
    assert_eq!(
        run(&db, guests::PROBE, &["exit", "7"], captured())
            .await
            .unwrap()
            .exit_code,
        1
    );
    match run(&db, guests::PROBE, &["panic"], captured()).await {
        Err(RunError::Trap {
            message, backtrace, ..
        }) => {
            assert!(message.contains("unreachable"), "{message}");
            assert!(
                backtrace.unwrap_or_default().contains("probe"),
                "the backtrace names the guest's functions"
            );
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guest_gets_only_the_files_and_environment_it_was_granted() {
    let s = Scratch::new("plugin_wasi").await;
    let db = s.plugin_db().await;
    let granted = tempfile::tempdir().unwrap();
    std::fs::write(granted.path().join("note.txt"), "granted").unwrap();
    let secret = tempfile::tempdir().unwrap();
    std::fs::write(secret.path().join("secret.txt"), "secret").unwrap();
    // SAFETY-free: the variable is read, not set, by this process; it is the host's own.
    let mut options = captured();
    options.env = vec![("GIVEN".into(), "yes".into())];
    options.dirs = vec![DirGrant::parse(&format!(
        "{}::/data",
        granted.path().display()
    ))];

    let out = stdout(
        &run(
            &db,
            guests::PROBE,
            &["echo", "/data/note.txt"],
            options.clone(),
        )
        .await
        .unwrap(),
    );
    assert!(out.contains("read=granted"), "{out}");
    let envs: Vec<&str> = out.lines().filter(|l| l.starts_with("env ")).collect();
    assert_eq!(
        envs,
        ["env GIVEN=yes"],
        "only the granted variable: no DATABASE_URL, no PG*"
    );
    let outside = secret.path().join("secret.txt");
    let out = stdout(
        &run(
            &db,
            guests::PROBE,
            &["echo", outside.to_str().unwrap()],
            options,
        )
        .await
        .unwrap(),
    );
    assert!(out.contains("read-error"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_components_are_cached_on_disk() {
    let cache = tempfile::tempdir().unwrap();
    let first = PluginHost::new(Some(cache.path())).unwrap();
    first.load(Path::new(guests::PROBE)).unwrap();
    // Only compiled artifacts: wasmtime's cache worker writes `.stats` files and cleanup
    // markers in the background, at times of its choosing.
    let files = |dir: &Path| {
        walk(dir)
            .into_iter()
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                !name.starts_with('.') && !name.ends_with(".stats")
            })
            .count()
    };
    let after_first = files(cache.path());
    assert!(after_first > 0, "the compiled component is on disk");
    // A second host (a second `pgcache run`) finds it and compiles nothing new.
    let second = PluginHost::new(Some(cache.path())).unwrap();
    let s = Scratch::new("plugin_cache").await;
    let outcome = second
        .load(Path::new(guests::PROBE))
        .unwrap()
        .run(&s.plugin_db().await, &captured())
        .await;
    assert_eq!(files(cache.path()), after_first);
    assert_eq!(outcome.unwrap().exit_code, 1, "probe without a mode fails");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedder_offers_the_interface_next_to_wasi() {
    use pgcache::wasm::{PgcacheCtx, PgcacheView};
    use wasmtime::component::{Component, Linker, ResourceTable};
    use wasmtime_wasi::p2::bindings::Command;
    use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
    use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

    struct MyState {
        wasi: WasiCtx,
        table: ResourceTable,
        pgcache: PgcacheCtx,
    }
    impl WasiView for MyState {
        fn ctx(&mut self) -> WasiCtxView<'_> {
            WasiCtxView {
                ctx: &mut self.wasi,
                table: &mut self.table,
            }
        }
    }

    let s = Scratch::new("plugin_embed").await;
    s.sql("CREATE TABLE {s}.api (id bigint); INSERT INTO {s}.api VALUES (1), (2);")
        .await;
    let engine = wasmtime::Engine::default();
    let mut linker: Linker<MyState> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    pgcache::wasm::add_to_linker(&mut linker, |s: &mut MyState| PgcacheView {
        ctx: &mut s.pgcache,
        table: &mut s.table,
    })
    .unwrap();
    let out = MemoryOutputPipe::new(1 << 20);
    let wasi = wasmtime_wasi::WasiCtxBuilder::new()
        .args(&["probe", "api", &s.table("api")])
        .stdout(out.clone())
        .build();
    let state = MyState {
        wasi,
        table: ResourceTable::new(),
        pgcache: PgcacheCtx::new(s.plugin_db().await),
    };
    let mut store = wasmtime::Store::new(&engine, state);
    let component = Component::from_file(&engine, guests::PROBE).unwrap();
    let command = Command::instantiate_async(&mut store, &component, &linker)
        .await
        .unwrap();
    command
        .wasi_cli_run()
        .call_run(&mut store)
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(out.contents().to_vec()).unwrap();
    assert!(text.contains("num_rows=2"), "{text}");
    let _ = Capabilities::default();
}
