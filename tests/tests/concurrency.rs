//! Several processes and many tasks refreshing one entry while rows (some committed out of
//! order) keep arriving: at the end the entry equals the table, no row lost or doubled.
//! Concurrent callers in one process share one fetch; a lock held too long is a clear error.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pgcache::config::SettingsLayer;
use pgcache::{Db, Error, IncrementalOptions, Origin, Settings};
use pgcache_tests::{Scratch, connect, database_url, ids, incremental_refresh_command, settle};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn processes_and_tasks_refreshing_while_rows_arrive_lose_and_double_nothing() {
    let s = Scratch::new("concurrent").await;
    s.sql("CREATE TABLE {s}.ev (id bigserial PRIMARY KEY, v int); INSERT INTO {s}.ev (v) SELECT 0 FROM generate_series(1, 5000);")
        .await;
    let table = s.table("ev");
    let sql = format!("SELECT id, v FROM {table}");
    let stop = Arc::new(AtomicBool::new(false));
    let run_for = Duration::from_secs(4);

    // Writers: one commits at once, one holds each transaction open a while after taking its
    // ids, so ids commit out of order all the time.
    let mut writers = Vec::new();
    for hold in [0u64, 30] {
        let (stop, table) = (stop.clone(), table.clone());
        writers.push(tokio::spawn(async move {
            let c = connect().await;
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                c.batch_execute(&format!(
                    "BEGIN; INSERT INTO {table} (v) SELECT {hold} FROM generate_series(1, 3)"
                ))
                .await
                .unwrap();
                tokio::time::sleep(Duration::from_millis(hold)).await;
                c.batch_execute("COMMIT").await.unwrap();
                n += 3;
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            n
        }));
    }

    // Three other processes refreshing the same entry in a loop.
    let mut processes = Vec::new();
    for _ in 0..3 {
        let (stop, sql, cache) = (stop.clone(), sql.clone(), s.cache.path().to_path_buf());
        processes.push(tokio::task::spawn_blocking(move || {
            let mut runs = 0;
            while !stop.load(Ordering::Relaxed) {
                let status = incremental_refresh_command(&cache, &sql).status().unwrap();
                assert!(status.success(), "a refreshing process failed");
                runs += 1;
            }
            runs
        }));
    }

    // Six tasks of this process, each checking every result it gets.
    let db = s.db().await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (stop, sql, db) = (stop.clone(), sql.clone(), db.clone());
        tasks.push(tokio::spawn(async move {
            let mut runs = 0;
            while !stop.load(Ordering::Relaxed) {
                let r = db
                    .incremental_query(&sql, &[], "id", &IncrementalOptions::default())
                    .await
                    .unwrap();
                let ids = ids(&r);
                assert!(
                    ids.windows(2).all(|w| w[0] < w[1]),
                    "ascending, no row twice"
                );
                runs += 1;
            }
            runs
        }));
    }

    tokio::time::sleep(run_for).await;
    stop.store(true, Ordering::Relaxed);
    let mut written = 0;
    for w in writers {
        written += w.await.unwrap();
    }
    let (mut process_runs, mut task_runs) = (0, 0);
    for p in processes {
        process_runs += p.await.unwrap();
    }
    for t in tasks {
        task_runs += t.await.unwrap();
    }
    assert!(
        process_runs >= 3 && task_runs >= 6,
        "everyone refreshed: {process_runs} process runs, {task_runs} task runs"
    );

    let last = settle(&db, &sql, &[], "id", &IncrementalOptions::default()).await;
    let expected: Vec<i64> = s
        .client
        .query(&format!("SELECT id FROM {table} ORDER BY id"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(expected.len(), 5000 + written);
    assert_eq!(ids(&last), expected, "the entry equals the table");
    println!(
        "{written} rows written during {process_runs} process refreshes and {task_runs} task refreshes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_callers_in_one_process_share_one_fetch() {
    let s = Scratch::new("share").await;
    s.sql("CREATE TABLE {s}.ev (id bigint, v int); INSERT INTO {s}.ev SELECT g, g FROM generate_series(1, 1000) g;").await;
    // The join with pg_sleep makes every fetch last long enough for all callers to arrive.
    let sql = format!(
        "SELECT ev.* FROM {} AS ev CROSS JOIN pg_sleep(0.3)",
        s.table("ev")
    );
    let db = s.db().await;
    db.incremental_query(&sql, &[], "id", &IncrementalOptions::default())
        .await
        .unwrap();
    s.sql("INSERT INTO {s}.ev SELECT g, g FROM generate_series(1001, 1100) g;")
        .await;
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let (db, sql) = (db.clone(), sql.clone());
            tokio::spawn(async move {
                db.incremental_query(&sql, &[], "id", &IncrementalOptions::default())
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut origins = Vec::new();
    for c in callers {
        let r = c.await.unwrap();
        assert_eq!(r.num_rows(), 1100);
        origins.push(r.origin());
    }
    let fetched = origins.iter().filter(|o| **o == Origin::Refreshed).count();
    let shared = origins.iter().filter(|o| **o == Origin::Shared).count();
    assert_eq!(
        (fetched, shared),
        (1, 7),
        "one caller fetched, seven shared its result: {origins:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_lock_held_elsewhere_times_out_with_a_clear_error() {
    let s = Scratch::new("lock_timeout").await;
    s.sql("CREATE TABLE {s}.ev (id bigint); INSERT INTO {s}.ev VALUES (1);")
        .await;
    let sql = format!("SELECT id FROM {}", s.table("ev"));
    let mut layer = SettingsLayer::from_url(database_url(), "test").unwrap();
    layer.lock_timeout = Some(Duration::from_millis(300));
    let db = Db::connect(Settings::resolve([layer]).with_cache_dir(s.cache.path()))
        .await
        .unwrap();
    let first = db
        .incremental_query(&sql, &[], "id", &IncrementalOptions::default())
        .await
        .unwrap();
    let name = first.entry_name().unwrap().to_owned();
    // Another process (here: this test) holds the entry's lock.
    let lock = std::fs::File::open(
        s.cache
            .path()
            .join(".pgcache/lock")
            .join(format!("{name}.lock")),
    )
    .unwrap();
    lock.lock().unwrap();
    let started = std::time::Instant::now();
    let err = db
        .incremental_query(&sql, &[], "id", &IncrementalOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::LockTimeout { ref entry, .. } if *entry == name),
        "{err:?}"
    );
    assert!(err.to_string().contains(&name), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    lock.unlock().unwrap();
    assert_eq!(
        db.incremental_query(&sql, &[], "id", &IncrementalOptions::default())
            .await
            .unwrap()
            .num_rows(),
        1
    );
}
