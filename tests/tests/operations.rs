//! Connection errors, execute, clear and stats.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::time::Duration;

use pgcache::config::SettingsLayer;
use pgcache::{Db, Error, IncrementalOptions, QueryOptions, Settings, Value};
use pgcache_tests::{Scratch, database_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_errors_name_host_port_user_and_the_reason_but_never_the_password() {
    let unknown_role =
        Settings::from_url("postgres://no_such_role_pgcache:s3cret-pw@127.0.0.1:5432/postgres")
            .unwrap();
    let err = Db::connect(unknown_role).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(
        text.contains("127.0.0.1:5432") && text.contains("no_such_role_pgcache"),
        "{text}"
    );
    assert!(
        text.contains("does not exist"),
        "the server's message: {text}"
    );
    assert!(
        !text.contains("s3cret-pw") && !format!("{err:?}").contains("s3cret-pw"),
        "{text}"
    );

    let unreachable = Settings::from_url("postgres://someone:s3cret-pw@127.0.0.1:1/db").unwrap();
    let text = Db::connect(unreachable).await.unwrap_err().to_string();
    assert!(
        text.contains("127.0.0.1:1") && text.contains("someone") && text.contains("refused"),
        "{text}"
    );
    assert!(!text.contains("s3cret-pw"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_times_out_clearly_and_recovers() {
    let s = Scratch::new("pool").await;
    let mut layer = SettingsLayer::from_url(database_url(), "test").unwrap();
    layer.pool_max_size = Some(1);
    layer.wait_timeout = Some(Duration::from_millis(200));
    let db = Db::connect(Settings::resolve([layer]).with_cache_dir(s.cache.path()))
        .await
        .unwrap();
    let busy = {
        let db = db.clone();
        tokio::spawn(async move { db.execute("SELECT pg_sleep(1)", &[]).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = db.execute("SELECT 1", &[]).await.unwrap_err();
    assert!(
        matches!(err, Error::PoolTimeout { max_size: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("pool max size 1"), "{err}");
    busy.await.unwrap().unwrap();
    assert_eq!(
        db.execute("SELECT 1", &[]).await.unwrap(),
        1,
        "the pool is usable again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_binds_parameters_counts_rows_and_caches_nothing() {
    let s = Scratch::new("execute").await;
    s.sql("CREATE TABLE {s}.t (id int, note text, at timestamptz);")
        .await;
    let db = s.db().await;
    let insert = format!("INSERT INTO {} VALUES ($1, $2, $3)", s.table("t"));
    let n = db
        .execute(
            &insert,
            &[
                Value::Int4(1),
                Value::Text("it's; DROP TABLE x".into()),
                Value::Text("2024-01-01 00:00:00+00".into()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        db.execute(&format!("UPDATE {} SET id = id + 1", s.table("t")), &[])
            .await
            .unwrap(),
        1
    );
    let note: String = s.scalar("SELECT note FROM {s}.t").await;
    assert_eq!(note, "it's; DROP TABLE x");
    assert_eq!(db.cache_stats().await.unwrap().total_files, 0);

    // Two statements: refused by the server before anything runs.
    let err = db
        .execute(
            &format!("DELETE FROM {0}; DELETE FROM {0}", s.table("t")),
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(err.sqlstate(), Some("42601"), "{err}");
    let rows: i64 = s.scalar("SELECT count(*) FROM {s}.t").await;
    assert_eq!(rows, 1);
    // Wrong parameters are named.
    let err = db
        .execute(
            &insert,
            &[Value::Text("one".into()), Value::Null, Value::Null],
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"parameter $1 (int4): invalid input syntax for type integer: "one""#
    );
    let err = db.execute(&insert, &[Value::Int4(1)]).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::ParameterCount {
                expected: 3,
                given: 1
            }
        ),
        "{err:?}"
    );
    // Server errors keep their SQLSTATE and message.
    let err = db
        .execute("INSERT INTO no_such_table_pgcache VALUES (1)", &[])
        .await
        .unwrap_err();
    let db_err = err.db_error().unwrap();
    assert_eq!(
        (db_err.code.as_str(), db_err.severity.as_str()),
        ("42P01", "ERROR")
    );
    assert!(db_err.message.contains("no_such_table_pgcache"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_and_clear_see_only_what_pgcache_made() {
    let s = Scratch::new("stats_clear").await;
    s.sql("CREATE TABLE {s}.ev (id bigint, v text); INSERT INTO {s}.ev SELECT g, 'x' FROM generate_series(1, 30) g;").await;
    let db = s.db().await;
    let ev = format!("SELECT * FROM {}", s.table("ev"));
    db.query(&ev, &[], &QueryOptions::default()).await.unwrap();
    db.query(&ev, &[], &QueryOptions::default()).await.unwrap();
    db.incremental_query(&ev, &[], "id", &IncrementalOptions::default())
        .await
        .unwrap();
    db.query("SELECT 42 AS answer", &[], &QueryOptions::default())
        .await
        .unwrap();
    std::fs::write(s.cache.path().join("cache_notmine.parquet"), b"user data").unwrap();

    let stats = db.cache_stats().await.unwrap();
    assert_eq!(stats.total_files, 3);
    assert_eq!(stats.total_records, 30 + 30 + 1);
    assert!(stats.total_size_mb > 0.0);
    assert_eq!(stats.cache_dir, s.cache.path().display().to_string());
    let inc = stats
        .entries
        .iter()
        .find(|e| e.mode == "incremental")
        .unwrap();
    assert_eq!(
        (
            inc.order_column.as_deref(),
            inc.rows,
            inc.watermark.as_deref()
        ),
        (Some("id"), 30, Some("30"))
    );
    assert!(inc.bytes > 0 && inc.name.starts_with("cache_") && inc.name.len() == 18);
    let simple = stats
        .entries
        .iter()
        .find(|e| e.query == ev && e.mode == "simple")
        .unwrap();
    assert_eq!(simple.hits, 1);
    assert!(simple.created <= simple.refreshed);

    assert_eq!(
        db.clear_cache(Some("answer")).await.unwrap(),
        1,
        "by query text"
    );
    assert_eq!(
        db.clear_cache(Some(&inc.name)).await.unwrap(),
        1,
        "by entry name"
    );
    assert_eq!(
        db.clear_cache(Some("nothing matches this")).await.unwrap(),
        0
    );
    assert_eq!(db.clear_cache(None).await.unwrap(), 1);
    assert_eq!(db.cache_stats().await.unwrap().total_files, 0);
    assert!(
        s.cache.path().join("cache_notmine.parquet").exists(),
        "never remove files pgcache did not create"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_is_named_and_the_cache_is_untouched() {
    let s = Scratch::new("statement_timeout").await;
    let mut layer = SettingsLayer::from_url(database_url(), "test").unwrap();
    layer.statement_timeout = Some(Some(Duration::from_millis(200)));
    let db = Db::connect(Settings::resolve([layer]).with_cache_dir(s.cache.path()))
        .await
        .unwrap();
    let err = db
        .query(
            "SELECT pg_sleep(2) IS NULL AS slept",
            &[],
            &QueryOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::StatementTimeout { .. }), "{err:?}");
    assert!(err.to_string().contains("200ms"), "{err}");
    assert_eq!(db.cache_stats().await.unwrap().total_files, 0);
    assert_eq!(
        db.execute("SELECT 1", &[]).await.unwrap(),
        1,
        "the next call works"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_bounded_whatever_the_result_size() {
    let s = Scratch::new("batches").await;
    let mut layer = SettingsLayer::from_url(database_url(), "test").unwrap();
    layer.batch_rows = Some(1000);
    let db = Db::connect(Settings::resolve([layer]).with_cache_dir(s.cache.path()))
        .await
        .unwrap();
    let sql = "SELECT g AS id, repeat('x', 50) AS pad FROM generate_series(1, 25000) g";
    for params in [vec![], vec![Value::Int4(1)]] {
        let sql = if params.is_empty() {
            sql.to_owned()
        } else {
            format!("{sql} WHERE $1 = 1")
        };
        let result = db
            .query(&sql, &params, &QueryOptions::default().no_cache())
            .await
            .unwrap();
        let sizes: Vec<usize> = result.batches().map(|b| b.unwrap().num_rows()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 25_000);
        assert!(sizes.iter().all(|n| *n <= 1000), "{sizes:?}");
    }
}
