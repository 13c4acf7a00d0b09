//! The server restarted between refreshes: the call that meets the restart fails with a
//! clear error or succeeds on a fresh connection, the cache is untouched, and later calls
//! work without restarting the process. Alone in its test binary: it restarts the local
//! cluster (`pg_ctlcluster`), which every other connection feels.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::time::{Duration, Instant};

use pgcache::{Error, IncrementalOptions};
use pgcache_tests::Scratch;

fn restart_cluster() {
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("this test restarts the local cluster: /etc/postgresql must exist")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .max()
        .unwrap();
    let status = std::process::Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", "restart"])
        .status()
        .unwrap();
    assert!(status.success(), "pg_ctlcluster restart failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_between_refreshes_is_survived() {
    let s = Scratch::new("restart").await;
    s.sql("CREATE TABLE {s}.ev (id bigint PRIMARY KEY); INSERT INTO {s}.ev SELECT generate_series(1, 500);").await;
    let sql = format!("SELECT id FROM {}", s.table("ev"));
    let db = s.db().await;
    db.incremental_query(&sql, &[], "id", &IncrementalOptions::default())
        .await
        .unwrap();
    let schema = s.schema.clone();

    restart_cluster();

    // The pool's connections died with the server; the first call may say so, clearly.
    let started = Instant::now();
    let mut failures = Vec::new();
    let result = loop {
        match db
            .incremental_query(&sql, &[], "id", &IncrementalOptions::default())
            .await
        {
            Ok(r) => break r,
            Err(e @ (Error::Connect { .. } | Error::Connection { .. })) => {
                failures.push(e.to_string())
            }
            Err(e) if e.sqlstate().is_some_and(|c| c.starts_with("57")) => {
                failures.push(e.to_string())
            }
            Err(e) => panic!("an unclear error after the restart: {e:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never recovered: {failures:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        result.num_rows(),
        500,
        "the cache is intact after the restart ({failures:?})"
    );
    let client = pgcache_tests::connect().await;
    client
        .batch_execute(&format!("INSERT INTO {schema}.ev VALUES (501)"))
        .await
        .unwrap();
    let after = db
        .incremental_query(&sql, &[], "id", &IncrementalOptions::default())
        .await
        .unwrap();
    assert_eq!(after.num_rows(), 501);
    println!("calls that met the restart: {failures:?}");
}
