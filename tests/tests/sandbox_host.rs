//! The sandbox at the database edge, the host side: no privileged role behind a plugin,
//! directory grants that cannot reach a cache and caches that do not follow planted links,
//! host memory bounded for results held outside the cache, the wall-clock limit with a
//! stalled stdout, and `next-batch(0)`.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pgcache::wasm::{DirGrant, Output, PluginHost, RunError, RunOptions, check_dir_grants};
use pgcache::{Db, QueryOptions};
use pgcache_tests::{Scratch, bare_plugin_role, database_url, guests, pgcache_bin, plugin};

fn captured(args: &[String]) -> RunOptions {
    let mut options = RunOptions::default();
    options.stdout = Output::Capture;
    options.stderr = Output::Capture;
    options.args = args.to_vec();
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_never_get_a_privileged_role() {
    let s = Scratch::new("edge_roles").await;
    let base = format!("{}_r", s.schema);
    let roles = [
        ("super", "SUPERUSER", "SUPERUSER"),
        ("bypass", "BYPASSRLS", "BYPASSRLS"),
        ("repl", "REPLICATION", "REPLICATION"),
        ("creator", "CREATEROLE", "CREATEROLE"),
        ("files", "", "pg_read_server_files"),
        ("writer", "", "pg_write_server_files"),
        ("program", "", "pg_execute_server_program"),
        ("signal", "", "pg_signal_backend"),
        ("alldata", "", "pg_read_all_data"),
        ("heir", "", "SUPERUSER"),
    ];
    let mut setup = String::new();
    for (name, attribute, _) in roles {
        let role = format!("{base}_{name}");
        setup.push_str(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN {attribute};"
        ));
    }
    for (name, granted) in [
        ("files", "pg_read_server_files"),
        ("writer", "pg_write_server_files"),
        ("program", "pg_execute_server_program"),
        ("signal", "pg_signal_backend"),
        ("alldata", "pg_read_all_data"),
        ("heir", &format!("{base}_super")),
    ] {
        setup.push_str(&format!("GRANT {granted} TO {base}_{name};"));
    }
    s.sql(&setup).await;

    let args = vec!["q:SELECT 1 AS one".to_owned()];
    for (name, _, named) in roles {
        let role = format!("{base}_{name}");
        let mut settings = s.settings();
        settings.plugins.role = Some(role.clone());
        let db = Db::connect_lazy(settings.for_plugins().unwrap()).unwrap();
        match plugin(guests::HOSTILE_EDGE)
            .run(&db, &captured(&args))
            .await
        {
            Err(RunError::Role(message)) => {
                assert!(message.contains(named), "{role}: {message}");
                assert!(message.contains("CREATE ROLE"), "says how: {message}");
            }
            other => panic!("{role} was handed to a plugin: {other:?}"),
        }
    }
    // A role without those privileges runs; the loudly named opt-out runs as a superuser.
    let db = s.plugin_db().await;
    let outcome = plugin(guests::HOSTILE_EDGE)
        .run(&db, &captured(&args))
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&outcome.stdout), "0 ok 1\n");
    let mut settings = s.settings();
    settings.plugins.unsafe_allow_privileged_role = true;
    let db = Db::connect_lazy(settings.for_plugins().unwrap()).unwrap();
    let outcome = plugin(guests::HOSTILE_EDGE)
        .run(&db, &captured(&args))
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&outcome.stdout), "0 ok 1\n");

    // `pgcache run` without a plugin role refuses in one line that says how to make one.
    let out = Command::new(pgcache_bin())
        .arg("--cache-dir")
        .arg(s.cache.path())
        .args(["run", guests::HOSTILE_EDGE, "--", "q:SELECT 1"])
        .env("DATABASE_URL", database_url())
        .env_remove("PGCACHE_PLUGIN_ROLE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("CREATE ROLE pgcache_plugin"), "{stderr}");
    // ... and as a superuser named as the plugin role, refuses too.
    let out = Command::new(pgcache_bin())
        .arg("--cache-dir")
        .arg(s.cache.path())
        .args(["run", guests::HOSTILE_EDGE, "--", "q:SELECT 1"])
        .env("DATABASE_URL", database_url())
        .env("PGCACHE_PLUGIN_ROLE", format!("{base}_super"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("SUPERUSER"), "{stderr}");

    let mut cleanup = String::new();
    for (name, _, _) in roles.iter().rev() {
        cleanup.push_str(&format!("DROP ROLE IF EXISTS {base}_{name};"));
    }
    s.sql(&cleanup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_grants_never_reach_a_cache() {
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("cache");
    std::fs::create_dir_all(cache.join(".pgcache/gen")).unwrap();
    let elsewhere = root.path().join("data");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let link = root.path().join("innocent");
    std::os::unix::fs::symlink(&cache, &link).unwrap();
    let grants = [
        cache.clone(),
        root.path().to_path_buf(),
        cache.join(".pgcache/gen"),
        link.clone(),
        elsewhere.join("../cache"),
    ];
    for host in &grants {
        let grant = DirGrant::parse(&format!("{}::/g", host.display()));
        let err = check_dir_grants(&[grant], std::slice::from_ref(&cache)).unwrap_err();
        assert!(
            err.to_string().contains("overlaps the cache"),
            "{}: {err}",
            host.display()
        );
    }
    check_dir_grants(
        &[DirGrant::parse(&format!("{}::/g", elsewhere.display()))],
        std::slice::from_ref(&cache),
    )
    .unwrap();

    // The same through `pgcache run`, for the global cache and a tenant's.
    let toml = root.path().join("pgcache.toml");
    std::fs::write(
        &toml,
        format!(
            "[tenants.t]\nrole = \"{}\"\ncache_dir = {:?}\n",
            bare_plugin_role(),
            root.path().join("tenant-cache").display().to_string()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(root.path().join("tenant-cache")).unwrap();
    for target in [cache.clone(), root.path().join("tenant-cache"), link] {
        let out = Command::new(pgcache_bin())
            .arg("--config")
            .arg(&toml)
            .arg("--cache-dir")
            .arg(&cache)
            .args(["run", "--dir", &format!("{}::/c", target.display())])
            .args([guests::HOSTILE_EDGE, "--", "q:SELECT 1"])
            .env("DATABASE_URL", database_url())
            .env("PGCACHE_PLUGIN_ROLE", bare_plugin_role())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {stderr}", target.display());
        assert!(stderr.contains("overlaps the cache directory"), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_does_not_follow_links_planted_in_it() {
    let s = Scratch::new("edge_links").await;
    s.sql("CREATE TABLE {s}.t (id int); INSERT INTO {s}.t VALUES (1);")
        .await;
    let victim_dir = tempfile::tempdir().unwrap();
    let victim = Db::connect(s.settings().with_cache_dir(victim_dir.path()))
        .await
        .unwrap();
    let sql = format!("SELECT id FROM {}", s.table("t"));
    victim
        .query(&sql, &[], &QueryOptions::default())
        .await
        .unwrap();
    let entry = victim.cache_stats().await.unwrap().entries[0].name.clone();
    s.sql("UPDATE {s}.t SET id = 2").await;

    // The attacker's cache: `.pgcache/gen` replaced by a link to the victim's, and an entry
    // link of the exact form pgcache writes.
    let attacker_dir = tempfile::tempdir().unwrap();
    let attacker = Db::connect(s.settings().with_cache_dir(attacker_dir.path()))
        .await
        .unwrap();
    let gen_dir = attacker_dir.path().join(".pgcache/gen");
    std::fs::remove_dir_all(&gen_dir).unwrap();
    std::os::unix::fs::symlink(victim_dir.path().join(".pgcache/gen"), &gen_dir).unwrap();
    std::os::unix::fs::symlink(
        format!(".pgcache/gen/{entry}.g00000001"),
        attacker_dir.path().join(&entry),
    )
    .unwrap();
    match attacker.query(&sql, &[], &QueryOptions::default()).await {
        Ok(r) => {
            assert_ne!(
                r.origin(),
                pgcache::Origin::Hit,
                "served the victim's entry"
            );
            let id = r.column("id").unwrap();
            assert_eq!(
                arrow::array::AsArray::as_primitive::<arrow::datatypes::Int32Type>(&id).values(),
                &[2]
            );
        }
        Err(e) => assert!(
            e.to_string().contains("not a directory pgcache made"),
            "{e}"
        ),
    }
    let _ = attacker.clear_cache(None).await;
    assert!(
        victim_dir
            .path()
            .join(format!(".pgcache/gen/{entry}.g00000001"))
            .is_dir(),
        "the attacker's clear removed the victim's generation"
    );
    let again = victim
        .query(&sql, &[], &QueryOptions::default())
        .await
        .unwrap();
    assert_eq!(again.origin(), pgcache::Origin::Hit);

    // A part replaced by a link is not followed either.
    let generation = victim_dir
        .path()
        .join(format!(".pgcache/gen/{entry}.g00000001"));
    let part = std::fs::read_dir(&generation)
        .unwrap()
        .flatten()
        .find(|d| d.file_name().to_string_lossy().ends_with(".parquet"))
        .unwrap()
        .path();
    let elsewhere = victim_dir.path().join("elsewhere.parquet");
    std::fs::rename(&part, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &part).unwrap();
    let refetched = victim
        .query(&sql, &[], &QueryOptions::default())
        .await
        .unwrap();
    assert_ne!(
        refetched.origin(),
        pgcache::Origin::Hit,
        "a linked part was served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_held_in_memory_are_bounded_per_run_and_per_host() {
    let s = Scratch::new("edge_memory").await;
    s.sql("CREATE TABLE {s}.big AS SELECT repeat('x', 1000) AS pad FROM generate_series(1, 6000);")
        .await;
    let db = s.plugin_db().await;
    let big = format!("q:SELECT pad FROM {}", s.table("big"));
    // What one such result holds in host memory, Arrow buffers and all.
    let one = db
        .query(&big[2..], &[], &QueryOptions::default().no_cache())
        .await
        .unwrap()
        .memory_size();
    assert!(one > 5_000_000, "{one}");
    let budget = one * 3 / 2;
    let host = PluginHost::new(None).unwrap().with_memory_budget(budget);
    let edge = host
        .load(std::path::Path::new(guests::HOSTILE_EDGE))
        .unwrap();

    // Per run: room for one such result, so the second one is refused.
    let mut options = captured(&[big.clone(), big.clone(), "q:SELECT 1 AS small".into()]);
    options.limits.results.max_memory_bytes = budget;
    let outcome = edge.run(&db, &options).await.unwrap();
    let text = String::from_utf8_lossy(&outcome.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "0 ok 6000", "{text}");
    assert!(lines[1].starts_with("1 limit-exceeded"), "{text}");
    assert!(lines[1].contains("held in memory by this run"), "{text}");
    assert_eq!(lines[2], "2 ok 1", "{text}");

    // Per host: the same room for all runs; a run allowed 10 times more still stops there.
    let mut options = captured(&[big.clone(), big.clone(), big]);
    options.limits.results.max_memory_bytes = budget * 10;
    let outcome = edge.run(&db, &options).await.unwrap();
    let text = String::from_utf8_lossy(&outcome.stdout).into_owned();
    assert!(text.contains("held in memory by the host"), "{text}");
    assert_eq!(text.matches(" ok ").count(), 1, "{text}");
    assert_eq!(
        host.memory_budget().used(),
        0,
        "results are released with their run"
    );

    // The defaults bound a run too: 256 MiB per run.
    assert_eq!(
        RunOptions::default().limits.results.max_memory_bytes,
        256 << 20
    );
}

#[test]
fn the_wall_clock_limit_holds_while_stdout_is_stalled() {
    let cache = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut child = Command::new(pgcache_bin())
        .arg("--cache-dir")
        .arg(cache.path())
        .args([
            "run",
            "--timeout",
            "2",
            guests::HOSTILE_EDGE,
            "--",
            "flood:",
        ])
        .env("DATABASE_URL", database_url())
        .env("PGCACHE_PLUGIN_ROLE", bare_plugin_role())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Nobody reads stdout: the pipe fills and the plugin's writes stall.
    let _stalled = child.stdout.take();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("the run outlived its 2 s wall-clock limit by 28 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(134), "{stderr}");
    assert!(stderr.contains("wall-clock time limit"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_batch_of_zero_rows_is_a_bad_parameter() {
    let s = Scratch::new("edge_batch").await;
    let db = s.plugin_db().await;
    let args = vec![
        "b0:SELECT 1 AS one".to_owned(),
        "b0:SELECT generate_series(1, 10) AS n".to_owned(),
    ];
    let outcome = plugin(guests::HOSTILE_EDGE)
        .run(&db, &captured(&args))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&outcome.stdout);
    for line in text.lines() {
        assert!(line.contains("bad-parameter"), "{text}");
    }
    assert_eq!(text.lines().count(), 2);
}
