//! Tenants and hostile plugins. Four tenants, each with its own login role, schema, cache
//! directory, rights and limits, declared in a real `pgcache.toml`; hostile plugins stopped by
//! the limit they reach while a well-behaved plugin runs beside them; eight plugins of four
//! tenants at once, each seeing only what is its own.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::path::Path;
use std::time::{Duration, Instant};

use pgcache::config::SettingsLayer;
use pgcache::wasm::{Output, RunError, RunOptions, RunOutcome};
use pgcache::{Db, Settings};
use pgcache_tests::{connect, database_url, guests, plugin};
use serde_json::Value as Json;

/// Four tenants of their own: roles `pgcache_<pid>_<t>`, schemas `tn_<pid>_<t>` with an
/// `eventos` table only their role may read, cache directories under one temporary root.
struct Tenants {
    pid: u32,
    root: tempfile::TempDir,
    settings: Settings,
}

const NAMES: [&str; 4] = ["a", "b", "c", "d"];

impl Tenants {
    async fn new(tag: &str) -> Tenants {
        let pid = std::process::id();
        let admin = connect().await;
        let root = tempfile::tempdir().unwrap();
        let mut toml = format!(
            "[cache]\ndir = {:?}\n",
            root.path().join("global").display().to_string()
        );
        for (i, t) in NAMES.iter().enumerate() {
            let (role, schema) = (
                format!("pgcache_{pid}_{tag}_{t}"),
                format!("tn_{pid}_{tag}_{t}"),
            );
            admin
                .batch_execute(&format!(
                    "DROP SCHEMA IF EXISTS {schema} CASCADE;
                     DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                       EXECUTE 'DROP OWNED BY {role}'; EXECUTE 'DROP ROLE {role}'; END IF; END $$;
                     CREATE ROLE {role} LOGIN;
                     CREATE SCHEMA {schema};
                     SET search_path TO {schema};
                     {}
                     GRANT USAGE ON SCHEMA {schema} TO {role};
                     GRANT SELECT, INSERT, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role};
                     GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {role};",
                    include_str!("../../scripts/eventos/schema.sql"),
                ))
                .await
                .unwrap();
            let generator = include_str!("../../scripts/eventos/gen_rows.sql")
                .replace("\\gset", ";")
                .replace(":start", "1")
                .replace(":n - 1", &format!("{} - 1", 500 * (i + 1)));
            admin
                .batch_execute(&format!("SET search_path TO {schema}; {generator}"))
                .await
                .unwrap();
            let operations = if *t == "a" {
                r#"["query", "incremental-query", "execute", "cache-clear", "cache-stats"]"#
            } else {
                r#"["query", "incremental-query", "cache-clear", "cache-stats"]"#
            };
            // Tenant c fills its quota with a large result: no clock may race that.
            let timeout = if *t == "c" { 600 } else { 5 };
            let url = database_url();
            toml.push_str(&format!(
                "[tenants.{t}]\nrole = {role:?}\noperations = {operations}\nallow_tables = [{schema:?}]\n\
                 [tenants.{t}.limits]\nmemory_mib = 64\ncpu_seconds = 2\nwall_seconds = 20\n\
                 statement_timeout_seconds = {timeout}\nmax_rows = 100000\nmax_open_results = 16\n\
                 max_host_calls = 20000\ncache_quota_mib = 4\n"
            ));
            let _ = url;
        }
        let file = root.path().join("pgcache.toml");
        std::fs::write(&file, &toml).unwrap();
        let layers = [
            SettingsLayer::from_url(database_url(), "test").unwrap(),
            SettingsLayer::from_file(&file).unwrap(),
        ];
        Tenants {
            pid,
            root,
            settings: Settings::resolve(layers),
        }
    }

    fn schema(&self, tag: &str, t: &str) -> String {
        format!("tn_{}_{tag}_{t}", self.pid)
    }

    fn db(&self, t: &str) -> Db {
        Db::connect_lazy(self.settings.for_tenant(t).unwrap()).unwrap()
    }

    fn options(&self, t: &str, args: &[&str]) -> RunOptions {
        let mut options = RunOptions::for_tenant(t, &self.settings.tenants[t]);
        options.args = args.iter().map(|a| a.to_string()).collect();
        options.stdout = Output::Capture;
        options.stderr = Output::Capture;
        options
    }
}

async fn run(db: &Db, guest: &str, options: &RunOptions) -> Result<RunOutcome, RunError> {
    plugin(guest).run(db, options).await
}

fn out(o: &RunOutcome) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs the example plugin for tenant `t` over its own table; checks the report's row count.
async fn well_behaved(tenants: &Tenants, tag: &str, t: &str) {
    let table = format!("{}.eventos", tenants.schema(tag, t));
    let options = tenants.options(t, &["--table", &table, "--json"]);
    let outcome = run(&tenants.db(t), guests::EVENTOS_REPORT, &options)
        .await
        .unwrap();
    assert_eq!(
        outcome.exit_code,
        0,
        "{}",
        String::from_utf8_lossy(&outcome.stderr)
    );
    let report: Json = serde_json::from_str(&out(&outcome)).unwrap();
    let n = 500 * (NAMES.iter().position(|x| *x == t).unwrap() as u64 + 1);
    assert_eq!(
        report["fixes"].as_u64(),
        Some(n),
        "tenant {t} saw its own table"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_plugins_are_stopped_by_the_limit_they_reach_while_others_go_on() {
    let tag = "hostile";
    let tenants = Tenants::new(tag).await;
    let db = tenants.db("a");
    let victim = format!("{}.eventos", tenants.schema(tag, "a"));
    let cpu = Duration::from_secs(2);

    struct Case {
        guest: &'static str,
        args: Vec<String>,
        expect: &'static str,
    }
    let cases = [
        Case {
            guest: guests::HOSTILE_LOOP,
            args: vec![],
            expect: "CPU time",
        },
        Case {
            guest: guests::HOSTILE_MEMORY,
            args: vec![],
            expect: "memory",
        },
        Case {
            guest: guests::HOSTILE_HOSTCALLS,
            args: vec![],
            expect: "host calls",
        },
        Case {
            guest: guests::HOSTILE_ROWS,
            args: vec![],
            expect: "limit-exceeded rows per result limit of 100000",
        },
        Case {
            guest: guests::HOSTILE_HANDLES,
            args: vec![],
            expect: "limit-exceeded after 16 handles",
        },
    ];
    for case in cases {
        let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        let mut options = tenants.options("a", &args);
        if case.guest == guests::HOSTILE_HOSTCALLS {
            // Tightened as a flag would: the call limit, not the machine's speed, decides
            // which limit comes first.
            options.limits.results.max_host_calls = 2_000;
        }
        plugin(case.guest);
        plugin(guests::EVENTOS_REPORT);
        let hostile_run = async {
            let started = Instant::now();
            let result = run(&db, case.guest, &options).await;
            (result, started.elapsed())
        };
        let ((hostile, took), ()) = tokio::join!(hostile_run, well_behaved(&tenants, tag, "b"));
        match hostile {
            Err(RunError::Limit { limit, value, .. }) => {
                assert_eq!(limit, case.expect, "{}", case.guest);
                let overshoot = if limit == "CPU time" {
                    took.saturating_sub(cpu)
                } else {
                    took
                };
                println!(
                    "{}: stopped by the {limit} limit ({value}); {took:?} in all, {overshoot:?} past the limit",
                    case.guest
                );
            }
            Ok(o) if o.exit_code == 1 => {
                assert!(
                    out(&o).starts_with(case.expect),
                    "{}: {}",
                    case.guest,
                    out(&o)
                );
                println!("{}: {} ({took:?})", case.guest, out(&o).trim());
            }
            Ok(o) => panic!(
                "{}: exit {}: {} {}",
                case.guest,
                o.exit_code,
                out(&o),
                String::from_utf8_lossy(&o.stderr)
            ),
            other => panic!("{}: {other:?}", case.guest),
        }
        assert!(
            took < Duration::from_secs(15),
            "{} was stopped promptly",
            case.guest
        );
    }

    // SQL that must not get through. Tenant a may execute, but only data changes.
    let outcome = run(&db, guests::HOSTILE_SQL, &tenants.options("a", &[&victim]))
        .await
        .unwrap();
    let text = out(&outcome);
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix}: {text}"))
            .to_owned()
    };
    // Refused before they reach the server: PostgreSQL's grammar says what each one is.
    for (i, why) in [
        (0, "not DROP"),
        (1, "not COPY"),
        (2, "not SET"),
        (3, "not SET"),
        (4, "42601"),
        (5, "not DELETE"),
        (6, "function set_config is not allowed"),
    ] {
        assert!(line(&format!("query {i} ")).contains(why), "{why}: {text}");
    }
    assert!(
        line("query 7 ").starts_with("query 7 timeout"),
        "the statement timeout holds: {text}"
    );
    for i in 0..3 {
        assert!(
            line(&format!("execute {i} "))
                .contains("denied execute runs INSERT, UPDATE, DELETE and MERGE only"),
            "{text}"
        );
    }
    let admin = connect().await;
    let rows: i64 = admin
        .query_one(&format!("SELECT count(*) FROM {victim}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 500, "the victim table is intact");
    assert!(
        !Path::new("/tmp/pgcache-pwned").exists(),
        "COPY TO PROGRAM did not run"
    );

    // Files, environment, network: nothing that was not granted.
    let global_cache = tenants.root.path().join("global");
    let outcome = run(
        &db,
        guests::HOSTILE_SNOOP,
        &tenants.options("a", &[global_cache.to_str().unwrap()]),
    )
    .await
    .unwrap();
    let text = out(&outcome);
    assert!(
        !text.contains("read "),
        "read something it was not granted: {text}"
    );
    assert!(text.contains("env []"), "no environment: {text}");
    assert!(text.contains("network denied"), "no network: {text}");
    cleanup(tag).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_plugins_of_four_tenants_at_once_each_see_only_their_own() {
    let tag = "many";
    let tenants = Tenants::new(tag).await;
    // Two plugins per tenant, all at once, over one database.
    let mut runs = Vec::new();
    for t in NAMES.iter().chain(NAMES.iter()) {
        runs.push(well_behaved(&tenants, tag, t));
    }
    futures_util::future::join_all(runs).await;

    for t in NAMES {
        // Each tenant's cache holds only its own entry, under its own name.
        let stats = tenants.db(t).cache_stats().await.unwrap();
        assert_eq!(stats.total_files, 1, "tenant {t}");
        assert!(stats.entries[0].query.contains(&tenants.schema(tag, t)));
        let dir = tenants.root.path().join("global").join("tenants").join(t);
        assert_eq!(Path::new(&stats.cache_dir), dir);
    }

    // Tenant a's plugin reaching for tenant b's table, which b's role lets a read: the
    // allow-list refuses it. Without the allow-list the database decides (a has the grant, c
    // has not).
    let theirs = format!("{}.eventos", tenants.schema(tag, "b"));
    let admin = connect().await;
    admin
        .batch_execute(&format!(
            "GRANT USAGE ON SCHEMA {0} TO pgcache_{1}_{tag}_a; GRANT SELECT ON {theirs} TO pgcache_{1}_{tag}_a;",
            tenants.schema(tag, "b"),
            tenants.pid
        ))
        .await
        .unwrap();
    let probe = |args: Vec<String>| {
        let tenants = &tenants;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            out(&run(
                &tenants.db("a"),
                guests::PROBE,
                &tenants.options("a", &args),
            )
            .await
            .unwrap())
        }
    };
    let text = probe(vec![
        "error".into(),
        "query".into(),
        format!("SELECT * FROM {theirs}"),
    ])
    .await;
    assert!(
        text.starts_with("error=denied") && text.contains(&theirs),
        "{text}"
    );
    let text = probe(vec![
        "error".into(),
        "query".into(),
        "SELECT count(*) AS n FROM pg_catalog.pg_class".into(),
    ])
    .await;
    assert!(
        text.starts_with("error=denied") && text.contains("pg_catalog.pg_class"),
        "{text}"
    );
    let mut open = tenants.settings.clone();
    for t in ["a", "c"] {
        open.tenants.get_mut(t).unwrap().allow_tables = None;
    }
    let query = format!("SELECT count(*) AS n FROM {theirs}");
    let options = tenants.options("a", &["error", "query", &query]);
    let text = out(&run(
        &Db::connect_lazy(open.for_tenant("a").unwrap()).unwrap(),
        guests::PROBE,
        &options,
    )
    .await
    .unwrap());
    assert_eq!(
        text.trim(),
        "ok",
        "with the grant and no allow-list a may read it"
    );
    let options = tenants.options("c", &["error", "query", &query]);
    let text = out(&run(
        &Db::connect_lazy(open.for_tenant("c").unwrap()).unwrap(),
        guests::PROBE,
        &options,
    )
    .await
    .unwrap());
    assert!(
        text.starts_with("error=database code=42501"),
        "b's role keeps c out: {text}"
    );

    // Clearing with patterns that look like paths or prefixes removes only a's own entries.
    for pattern in ["..", "/", "cache_", "../b", ""] {
        let text = probe(vec!["error".into(), "stats".into()]).await;
        assert_eq!(text.trim(), "ok");
        tenants.db("a").clear_cache(Some(pattern)).await.unwrap();
    }
    assert_eq!(
        tenants.db("a").cache_stats().await.unwrap().total_files,
        0,
        "a cleared all of its own"
    );
    for t in ["b", "c", "d"] {
        assert_eq!(
            tenants.db(t).cache_stats().await.unwrap().total_files,
            1,
            "tenant {t} kept its entry"
        );
    }
    cleanup(tag).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_quota_is_checked_before_writing() {
    let tag = "quota";
    let tenants = Tenants::new(tag).await;
    let db = tenants.db("c");
    let table = format!("{}.eventos", tenants.schema(tag, "c"));
    // The quota is 4 MiB; a result of several MiB of incompressible text passes it, and is
    // refused while it streams (tenant c has no statement timeout that could fire first).
    let big = format!(
        "SELECT e.*, md5(g::text) || md5((g * 3)::text) || md5(e.id::text || g) || md5(random()::text) AS pad FROM {table} e, generate_series(1, 300) g"
    );
    let err = db
        .query(&big, &[], &pgcache::QueryOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cache quota"), "{err}");
    assert_eq!(
        db.cache_stats().await.unwrap().total_files,
        0,
        "nothing was kept"
    );
    // Small results still fit.
    db.query(
        &format!("SELECT count(*) AS n FROM {table}"),
        &[],
        &pgcache::QueryOptions::default(),
    )
    .await
    .unwrap();
    cleanup(tag).await;
}

#[test]
fn an_unknown_tenant_or_a_bad_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pgcache.toml");
    std::fs::write(
        &file,
        "[tenants.acme]\nrole = \"acme\"\n[tenants.acme.limits]\nmemroy_mib = 5\n",
    )
    .unwrap();
    let bin = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("pgcache");
    let run = |file: &Path, tenant: &str| {
        std::process::Command::new(&bin)
            .args([
                "--config",
                file.to_str().unwrap(),
                "run",
                guests::PROBE,
                "--tenant",
                tenant,
            ])
            .env("DATABASE_URL", database_url())
            .output()
            .unwrap()
    };
    let bad = run(&file, "acme");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_ne!(bad.status.code(), Some(0));
    assert!(
        stderr.contains("pgcache.toml, line 4") && stderr.contains("memroy_mib"),
        "{stderr}"
    );
    std::fs::write(&file, "[tenants.acme]\nrole = \"acme\"\n").unwrap();
    let unknown = run(&file, "acne");
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("pgcache.toml")
            && stderr.contains("no tenant \"acne\"; the tenants are: acme"),
        "{stderr}"
    );
}

/// Drops the roles and schemas of a test.
async fn cleanup(tag: &str) {
    let pid = std::process::id();
    let admin = connect().await;
    for t in NAMES {
        let (role, schema) = (
            format!("pgcache_{pid}_{tag}_{t}"),
            format!("tn_{pid}_{tag}_{t}"),
        );
        let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE; DROP OWNED BY {role}; DROP ROLE IF EXISTS {role};")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_whose_role_is_privileged_is_refused_on_every_path() {
    // `postgres` is the cluster's superuser: named as a tenant's role, it must never serve.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pgcache.toml");
    let cache = dir.path().join("cache");
    std::fs::write(
        &file,
        format!(
            "[cache]\ndir = {:?}\n[tenants.boss]\nrole = \"postgres\"\noperations = [\"query\", \"execute\"]\n",
            cache.display().to_string()
        ),
    )
    .unwrap();
    let settings = Settings::resolve([
        SettingsLayer::from_url(database_url(), "test").unwrap(),
        SettingsLayer::from_file(&file).unwrap(),
    ]);
    // The library path every tenant's query, execute and schedule goes through.
    let db = Db::connect_lazy(settings.for_tenant("boss").unwrap()).unwrap();
    let err = db.check_plugin_role().await.unwrap_err();
    assert!(matches!(err, pgcache::Error::Denied(_)), "{err}");
    assert!(err.to_string().contains("SUPERUSER"), "{err}");
    // A plugin run of the tenant: refused before the plugin reaches the database.
    let out = std::process::Command::new(pgcache_tests::pgcache_bin())
        .args(["--config", file.to_str().unwrap(), "run", guests::PROBE])
        .args(["--tenant", "boss", "--", "query", "SELECT 1"])
        .env("DATABASE_URL", database_url())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("is privileged"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ok"));
}
