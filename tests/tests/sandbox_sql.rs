//! The sandbox at the database edge, the SQL side: statements are classified by PostgreSQL's
//! own grammar, functions with effects outside the transaction are refused, a plugin's
//! connection is cleaned as it goes back to the pool, and the table checks fail closed.
//! Each attempt comes from a real plugin (`tests/guests/hostile-edge`) as a plugin role of
//! its own; each test checks the database afterwards, as the victim would.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::time::{Duration, Instant};

use pgcache::wasm::{Output, RunOptions};
use pgcache::{Db, QueryOptions, Settings};
use pgcache_tests::{Scratch, guests, pgcache_bin, plugin};

/// Runs the attacker with `attempts` as `db`; returns its lines by attempt number.
async fn attack(db: &Db, execute: bool, attempts: &[String]) -> Vec<String> {
    let mut options = RunOptions::default();
    options.stdout = Output::Capture;
    options.stderr = Output::Capture;
    options.capabilities.execute = execute;
    options.args = attempts.to_vec();
    let outcome = plugin(guests::HOSTILE_EDGE)
        .run(db, &options)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&outcome.stdout).into_owned();
    assert_eq!(outcome.exit_code, 0, "{text}");
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), attempts.len(), "one line per attempt: {text}");
    lines
}

/// Asserts that every line says `denied`, naming the attempt when one does not.
fn all_denied(attempts: &[String], lines: &[String]) {
    for (attempt, line) in attempts.iter().zip(lines) {
        let verdict = line.split_whitespace().nth(1).unwrap_or("");
        assert_eq!(verdict, "denied", "{attempt:?} got through: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_are_classified_by_the_servers_own_grammar() {
    let s = Scratch::new("edge_grammar").await;
    s.sql("CREATE TABLE {s}.victim (id int); INSERT INTO {s}.victim VALUES (1), (2), (3);")
        .await;
    let db = s.plugin_db().await;
    let v = s.table("victim");
    let flag = std::env::temp_dir().join(format!("pgcache-edge-{}", std::process::id()));
    let _ = std::fs::remove_file(&flag);
    let f = flag.display();
    let attempts: Vec<String> = [
        // PostgreSQL ends a `--` comment at `\r`: what follows is the statement.
        format!("e:-- x\rCOPY (SELECT 1) TO PROGRAM 'id > {f}'\nWITH (FORMAT csv)"),
        format!("e:-- x\rDROP TABLE {v},\ninsert"),
        format!("e:/* a */ -- b\r\rTRUNCATE {v}"),
        format!("e:-- \r COPY {v} FROM PROGRAM 'id'"),
        "e:SELECT 1".to_owned(),
        format!("e:EXPLAIN ANALYZE DELETE FROM {v}"),
        format!("e:DO $$BEGIN DELETE FROM {v}; END$$"),
        "e:UPDATE pg_settings SET setting = '0' WHERE name = 'statement_timeout'".to_owned(),
        format!("q:-- x\rDROP TABLE {v}"),
        format!("q:SELECT * INTO {}.stolen FROM {v}", s.schema),
        format!("q:WITH d AS (DELETE FROM {v} RETURNING *) SELECT * FROM d"),
        format!("q:EXPLAIN ANALYZE DELETE FROM {v}"),
        format!("q:COPY {v} TO PROGRAM 'id > {f}'"),
        format!("q:DELETE FROM {v} RETURNING *"),
        "q:SET ROLE postgres".to_owned(),
    ]
    .to_vec();
    let lines = attack(&db, true, &attempts).await;
    all_denied(&attempts, &lines);

    // Two statements, or text the grammar rejects, never run at all.
    let lines = attack(
        &db,
        true,
        &[
            format!("q:SELECT 1 AS one; DROP TABLE {v}"),
            format!("e:INSERT INTO {v} VALUES (9);\rDROP TABLE {v}"),
            format!("e:INSERT INTO {v} VALUES (4)"),
        ],
    )
    .await;
    // The server's own error: it refuses to prepare two commands as one.
    assert!(lines[0].contains("database 42601"), "{lines:?}");
    assert!(lines[1].contains("database 42601"), "{lines:?}");
    assert_eq!(lines[2], "2 ok 1", "a plain INSERT still runs: {lines:?}");

    assert_eq!(s.scalar::<i64>("SELECT count(*) FROM {s}.victim").await, 4);
    assert!(!flag.exists(), "a program ran on the database host");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_runs_what_the_server_reads_and_keys_ignore_comments() {
    let s = Scratch::new("edge_cli").await;
    s.sql("CREATE TABLE {s}.t (id int); INSERT INTO {s}.t SELECT generate_series(1, 10);")
        .await;
    let t = s.table("t");
    let out = std::process::Command::new(pgcache_bin())
        .arg("--cache-dir")
        .arg(s.cache.path())
        .args([
            "query",
            &format!("SELECT count(*) AS n FROM {t} -- note\rWHERE id < 3"),
            "--format",
            "csv",
        ])
        .env("DATABASE_URL", pgcache_tests::database_url())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.trim(),
        "n\n2",
        "the WHERE after \\r is part of the query: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let db = s.db().await;
    let first = db
        .query(
            &format!("SELECT id FROM {t} WHERE id > 5"),
            &[],
            &QueryOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(first.origin(), pgcache::Origin::Stored);
    for spelling in [
        format!("select id\n\tfrom {t}   where id>5 -- later\n;"),
        format!("/* c */ SELECT ID FROM {} WHERE id > 5;;", t.to_uppercase()),
    ] {
        let again = db
            .query(&spelling, &[], &QueryOptions::default())
            .await
            .unwrap();
        assert_eq!(again.origin(), pgcache::Origin::Hit, "{spelling}");
    }
    let joined = db
        .query(
            "SELECT 'foo'\n'bar' AS s",
            &[],
            &QueryOptions::default().no_cache(),
        )
        .await
        .unwrap();
    let column = joined.column("s").unwrap();
    let text = arrow::array::AsArray::as_string::<i32>(&column)
        .value(0)
        .to_owned();
    assert_eq!(text, "foobar", "a string continuation is one literal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn side_effects_outside_the_transaction_are_refused() {
    let s = Scratch::new("edge_effects").await;
    s.sql("CREATE TABLE {s}.mine (id int, b bytea); INSERT INTO {s}.mine VALUES (1, 'x');")
        .await;
    let db = s.plugin_db().await;
    let m = s.table("mine");
    let objects = "SELECT count(*) FROM pg_largeobject_metadata";
    let large_objects: i64 = s.scalar(objects).await;
    let attempts: Vec<String> = [
        "q:SELECT lo_from_bytea(0, decode(repeat('ab', 1000), 'hex')) AS o".to_owned(),
        format!("q:SELECT id FROM {m} WHERE lo_create(0) > 0"),
        format!("e:INSERT INTO {m} SELECT lo_import('/etc/passwd')::int, NULL"),
        "q:SELECT pg_logical_emit_message(false, 'p', repeat('x', 4194304)) AS l".to_owned(),
        "q:SELECT 1 AS one WHERE pg_advisory_lock(77) IS NOT NULL".to_owned(),
        format!("q:SELECT id FROM {m} ORDER BY pg_try_advisory_lock(id)"),
        "q:SELECT pg_notify('c', 'x') AS n".to_owned(),
        "q:SELECT (SELECT set_config('statement_timeout', '0', false)) AS s".to_owned(),
        "q:SELECT \"pg_read_file\"('/etc/passwd') AS f".to_owned(),
        "q:SELECT pg_catalog.pg_ls_dir('.') AS d".to_owned(),
        "q:WITH x AS (SELECT query_to_xml('select pg_advisory_lock(1)', true, true, '') AS x) SELECT * FROM x".to_owned(),
        "q:SELECT CASE WHEN true THEN PG_TERMINATE_BACKEND(pg_backend_pid()) END AS k".to_owned(),
        "q:SELECT * FROM dblink('dbname=postgres', 'select 1') AS t(a int)".to_owned(),
        "q:SELECT pg_create_physical_replication_slot('pgcache_edge') AS r".to_owned(),
        format!("e:UPDATE {m} SET b = lo_get(lo_from_bytea(0, 'x'))"),
    ]
    .to_vec();
    let lines = attack(&db, true, &attempts).await;
    all_denied(&attempts, &lines);
    // With standard_conforming_strings off, `'a\'` would end later on the server than in the
    // parser, hiding a call from the checks: pgcache's sessions always run with it on.
    let role = s.plugin_role().await;
    s.sql(&format!(
        "ALTER ROLE {role} SET standard_conforming_strings = off"
    ))
    .await;
    let db = s.plugin_db().await;
    let hidden = ["q:SELECT 'a\\' AS x, ' , lo_from_bytea(0, $$x$$) AS y -- '".to_owned()];
    let lines = attack(&db, true, &hidden).await;
    assert!(lines[0].starts_with("0 ok 1"), "{lines:?}");
    assert_eq!(
        s.scalar::<i64>(objects).await,
        large_objects,
        "a large object was stored"
    );
    let slots: i64 = s
        .scalar("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgcache_edge'")
        .await;
    assert_eq!(slots, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_is_cleaned_as_it_goes_back_to_the_pool() {
    let s = Scratch::new("edge_clean").await;
    // Were a side effect to slip past the function list, the session it left would still
    // be undone before the connection is idle in the pool, not when it is next taken.
    let mut settings = s.plugin_settings().await;
    settings.policy.refuse_side_effects = false;
    let db = Db::connect(settings).await.unwrap();
    let key = 4_100_000 + i64::from(std::process::id() % 100_000);
    db.query(
        &format!("SELECT pg_advisory_lock({key}) IS NULL AS locked"),
        &[],
        &QueryOptions::default().no_cache(),
    )
    .await
    .unwrap();
    let held = format!(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = {key} AND granted"
    );
    let started = Instant::now();
    while s.scalar::<i64>(&held).await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the idle pooled connection still holds the session's advisory lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_checks_fail_closed_and_hold_for_execute() {
    let s = Scratch::new("edge_tables").await;
    let other = format!("{}_other", s.schema);
    s.sql(&format!(
        "CREATE TABLE {{s}}.mine (id int); INSERT INTO {{s}}.mine VALUES (1);
         DROP SCHEMA IF EXISTS {other} CASCADE; CREATE SCHEMA {other};
         CREATE TABLE {other}.secret (id int); INSERT INTO {other}.secret VALUES (42);"
    ))
    .await;
    let role = s.plugin_role().await;
    // The role may read the other table: only pgcache's allow-list stands in the way.
    s.sql(&format!(
        "GRANT USAGE ON SCHEMA {other} TO {role}; GRANT SELECT ON {other}.secret TO {role};"
    ))
    .await;
    let mut settings: Settings = s.plugin_settings().await;
    settings.policy.allow_tables = Some(vec![s.schema.clone()]);
    let db = Db::connect(settings).await.unwrap();
    let nested = |inner: &str, depth: usize| {
        let mut q = inner.to_owned();
        for i in 0..depth {
            q = format!("SELECT * FROM ({q}) AS n{i}");
        }
        q
    };
    let mine = s.table("mine");
    let attempts: Vec<String> = [
        format!("q:{}", nested("SELECT rolname FROM pg_roles", 150)),
        format!(
            "q:{}",
            nested(&format!("SELECT id FROM {other}.secret"), 130)
        ),
        format!("q:{}", nested(&format!("SELECT id FROM {other}.secret"), 3)),
        "q:SELECT rolname FROM pg_roles".to_owned(),
        format!("e:INSERT INTO {mine} SELECT id FROM {other}.secret"),
        format!("e:UPDATE {mine} SET id = (SELECT max(id) FROM {other}.secret)"),
        format!("e:DELETE FROM {mine} WHERE id IN (SELECT id FROM {other}.secret)"),
    ]
    .to_vec();
    let lines = attack(&db, true, &attempts).await;
    for (attempt, line) in attempts.iter().zip(&lines) {
        assert!(
            line.contains(" denied ") || line.contains("more than") || line.contains(" other "),
            "{:.60}... got through: {line}",
            attempt
        );
        assert!(!line.contains(" ok "), "{line}");
    }
    let lines = attack(&db, true, &[format!("e:INSERT INTO {mine} VALUES (2)")]).await;
    assert_eq!(lines[0], "0 ok 1");
    assert_eq!(s.scalar::<i64>("SELECT count(*) FROM {s}.mine").await, 2);

    // An entry stored under wider rights (same role, same cache, no allow-list) is no hit for
    // the narrowed list: the secret is refused, not served from the cache.
    let secret = format!("SELECT id FROM {other}.secret");
    let wide = s.plugin_db().await;
    let stored = wide
        .query(&secret, &[], &QueryOptions::default())
        .await
        .unwrap();
    assert_eq!(stored.num_rows(), 1);
    let err = db
        .query(&secret, &[], &QueryOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, pgcache::Error::Denied(_)), "{err}");
    s.sql(&format!("DROP SCHEMA {other} CASCADE")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_denied_in_pgcache_toml_are_refused_on_top_of_the_built_in_list() {
    let s = Scratch::new("edge_deny_toml").await;
    let role = s.plugin_role().await;
    let toml = format!(
        "[cache]\ndir = {:?}\n[plugins]\nrole = {role:?}\ndeny_functions = [\"abs\", \"my_audit_*\"]\n",
        s.cache.path().display().to_string()
    );
    let settings = Settings::resolve([
        pgcache::config::SettingsLayer::from_url(pgcache_tests::database_url(), "test").unwrap(),
        pgcache::config::SettingsLayer::from_toml_str(&toml, "pgcache.toml").unwrap(),
    ]);
    let db = Db::connect(settings.for_plugins().unwrap()).await.unwrap();
    for (sql, denied) in [
        ("SELECT abs(-1) AS a", true),
        ("SELECT pg_catalog.ABS(-1) AS a", true),
        ("SELECT my_audit_log('x') AS a", true),
        ("SELECT lo_from_bytea(0, 'x') AS a", true),
        ("SELECT 1 AS a", false),
    ] {
        let result = db
            .query(sql, &[], &QueryOptions::default().no_cache())
            .await;
        match result {
            Err(pgcache::Error::Denied(why)) => assert!(denied, "{sql}: {why}"),
            other => assert!(!denied && other.is_ok(), "{sql}: {other:?}"),
        }
    }
}
