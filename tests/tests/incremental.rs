//! Incremental queries: full first load, deltas that read only new rows (proven by the
//! server's own table counters), ties, order, schema changes, exact watermarks, clear errors.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use pgcache::config::SettingsLayer;
use pgcache::{Db, IncrementalOptions, Lookback, OrderValue, Origin, ResultSet, Settings, Value};
use pgcache_tests::{Scratch, database_url, settle};

fn ints(result: &ResultSet, column: &str) -> Vec<i64> {
    result
        .column(column)
        .unwrap()
        .as_primitive::<Int64Type>()
        .values()
        .to_vec()
}

async fn refresh(db: &Db, sql: &str, column: &str) -> ResultSet {
    db.incremental_query(sql, &[], column, &IncrementalOptions::default())
        .await
        .unwrap()
}

/// The server's scan counters of a table, once every backend that touched it has reported.
async fn scans(s: &Scratch, table: &str) -> (i64, i64, i64) {
    let sql = format!(
        "SELECT coalesce(seq_scan, 0), coalesce(seq_tup_read, 0), coalesce(idx_tup_fetch, 0) \
         FROM pg_stat_user_tables WHERE schemaname = '{}' AND relname = '{table}'",
        s.schema
    );
    s.client
        .batch_execute("SELECT pg_stat_clear_snapshot()")
        .await
        .unwrap();
    let row = s.client.query_one(&sql, &[]).await.unwrap();
    (row.get(0), row.get(1), row.get(2))
}

/// Waits until the counters move away from `before` (a backend reports when it exits).
async fn scans_after(s: &Scratch, table: &str, before: (i64, i64, i64)) -> (i64, i64, i64) {
    for _ in 0..100 {
        let now = scans(s, table).await;
        if now != before {
            tokio::time::sleep(Duration::from_millis(200)).await;
            return scans(s, table).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the table's counters never moved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_runs_read_only_the_new_rows() {
    let s = Scratch::new("delta").await;
    s.sql(
        "CREATE TABLE {s}.ev (id bigserial PRIMARY KEY, device int, speed float8);
         INSERT INTO {s}.ev (device, speed) SELECT g % 7, g * 0.5 FROM generate_series(1, 20000) g;
         ANALYZE {s}.ev;",
    )
    .await;
    let sql = format!("SELECT * FROM {}", s.table("ev"));
    // Each run in a fresh handle: its connections close when dropped, and a closing backend
    // reports its table counters at once.
    let first = refresh(&s.db().await, &sql, "id").await;
    assert_eq!(first.origin(), Origin::Stored);
    let report = first.refresh_report().unwrap().clone();
    assert!(report.full);
    assert_eq!(
        (report.rows_from_database, first.num_rows()),
        (20_000, 20_000)
    );
    let second = settle(
        &s.db().await,
        &sql,
        &[],
        "id",
        &IncrementalOptions::default(),
    )
    .await;
    assert_eq!(second.num_rows(), 20_000);

    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = scans(&s, "ev").await;
    s.sql("INSERT INTO {s}.ev (device, speed) SELECT g % 7, 1.0 FROM generate_series(1, 10) g;")
        .await;
    let third = refresh(&s.db().await, &sql, "id").await;
    let after = scans_after(&s, "ev", before).await;

    let report = third.refresh_report().unwrap();
    assert!(!report.full);
    assert_eq!(third.num_rows(), 20_010);
    assert_eq!(
        ints(&third, "id"),
        (1..=20_010).collect::<Vec<_>>(),
        "every row once, in order"
    );
    // The new rows plus the row at the old watermark (re-read for ties), nothing else.
    assert_eq!(report.rows_from_database, 11);
    assert_eq!(report.rows_from_cache, 19_999);
    assert_eq!(report.watermark, Some(OrderValue::Int(20_010)));
    // What counts is what was read: no row by a sequential scan, only the new ones by index.
    assert_eq!(
        after.1 - before.1,
        0,
        "no rows read by sequential scans: {before:?} -> {after:?}"
    );
    // 11 rows, plus the one index tuple the planner fetches to learn the column's actual
    // maximum when the bound lies past its histogram (a plain EXPLAIN counts it too).
    assert!(
        after.2 - before.2 <= 12,
        "rows fetched by index: {before:?} -> {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_tying_with_the_watermark_are_neither_lost_nor_doubled() {
    let s = Scratch::new("ties").await;
    s.sql(
        "CREATE TABLE {s}.ev (id int PRIMARY KEY, ts timestamptz NOT NULL);
         INSERT INTO {s}.ev VALUES (1, '2024-01-01 00:00:01+00'), (2, '2024-01-01 00:00:02+00'),
                                   (3, '2024-01-01 00:00:02+00');",
    )
    .await;
    let db = s.db().await;
    let sql = format!("SELECT id, ts FROM {}", s.table("ev"));
    assert_eq!(refresh(&db, &sql, "ts").await.num_rows(), 3);
    // Two more rows with the very watermark value, one later row.
    s.sql(
        "INSERT INTO {s}.ev VALUES (4, '2024-01-01 00:00:02+00'), (5, '2024-01-01 00:00:02+00'),
                                   (6, '2024-01-01 00:00:03+00');",
    )
    .await;
    let result = refresh(&db, &sql, "ts").await;
    let mut ids = ints_i32(&result, "id");
    ids.sort();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6]);
    // And again with nothing new: still each row once.
    let again = refresh(&db, &sql, "ts").await;
    assert_eq!(again.num_rows(), 6);
}

fn ints_i32(result: &ResultSet, column: &str) -> Vec<i32> {
    result
        .column(column)
        .unwrap()
        .as_primitive::<arrow::datatypes::Int32Type>()
        .values()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_come_in_ascending_order_whatever_the_query_says() {
    let s = Scratch::new("order").await;
    s.sql("CREATE TABLE {s}.ev (id bigint); INSERT INTO {s}.ev SELECT g FROM generate_series(1, 500) g ORDER BY random();")
        .await;
    let db = s.db().await;
    let sql = format!("SELECT id FROM {} ORDER BY id DESC", s.table("ev"));
    assert_eq!(
        ints(&refresh(&db, &sql, "id").await, "id"),
        (1..=500).collect::<Vec<_>>()
    );
    s.sql("INSERT INTO {s}.ev SELECT g FROM generate_series(501, 600) g ORDER BY random();")
        .await;
    assert_eq!(
        ints(&refresh(&db, &sql, "id").await, "id"),
        (1..=600).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_result_schema_rebuilds_the_entry() {
    let s = Scratch::new("schema_change").await;
    s.sql("CREATE TABLE {s}.ev (id bigint); INSERT INTO {s}.ev SELECT generate_series(1, 10);")
        .await;
    let db = s.db().await;
    let sql = format!("SELECT * FROM {}", s.table("ev"));
    refresh(&db, &sql, "id").await;
    s.sql(
        "ALTER TABLE {s}.ev ADD COLUMN note text DEFAULT 'x'; INSERT INTO {s}.ev VALUES (11, 'y');",
    )
    .await;
    let result = refresh(&db, &sql, "id").await;
    let report = result.refresh_report().unwrap();
    assert!(report.full, "a new column forces a full rebuild");
    assert_eq!(report.rows_from_database, 11);
    assert_eq!(result.schema().fields().len(), 2);
    let notes = result.column("note").unwrap();
    assert_eq!(notes.as_string::<i32>().value(10), "y");
    assert_eq!(
        notes.null_count(),
        0,
        "old rows carry the new column too: no mixed files"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watermarks_are_stored_exactly_as_typed() {
    let s = Scratch::new("exact").await;
    s.sql(
        "CREATE TABLE {s}.ev (ts timestamptz, n numeric(30,12), d date, label text);
         INSERT INTO {s}.ev VALUES
           ('2024-05-01 10:00:00.000001+00', 123456789012345678.000000000001, '2024-05-01', 'it''s'),
           ('2024-05-01 10:00:00.000002+00', 123456789012345678.000000000002, '2024-05-02', 'o''clock \\ $$');",
    )
    .await;
    let db = s.db().await;
    let sql = format!("SELECT * FROM {}", s.table("ev"));
    let defaults = IncrementalOptions::default();
    let settled = |column| settle(&db, &sql, &[], column, &defaults);
    let by_ts = settled("ts").await;
    assert_eq!(
        by_ts.refresh_report().unwrap().watermark,
        Some(OrderValue::TimestampTz(1_714_557_600_000_002))
    );
    let by_n = settled("n").await;
    assert_eq!(
        by_n.refresh_report().unwrap().watermark,
        Some(OrderValue::Numeric(
            "123456789012345678.000000000002".into()
        ))
    );
    let by_label = settled("label").await;
    assert_eq!(
        by_label.refresh_report().unwrap().watermark,
        Some(OrderValue::Text("o'clock \\ $$".into()))
    );
    // One microsecond, one unit in the twelfth decimal place, a quote: each refresh sees the
    // next value as new.
    s.sql(
        "INSERT INTO {s}.ev VALUES ('2024-05-01 10:00:00.000003+00', 123456789012345678.000000000003, '2024-05-03', 'p');",
    )
    .await;
    for (column, rows) in [("ts", 2), ("n", 2), ("label", 2)] {
        let r = refresh(&db, &sql, column).await;
        assert_eq!(r.num_rows(), 3, "{column}");
        assert_eq!(
            r.refresh_report().unwrap().rows_from_database,
            rows,
            "{column}: the tie and the new row"
        );
    }
    let ts = refresh(&db, &sql, "ts").await.column("ts").unwrap();
    assert_eq!(
        ts.as_primitive::<TimestampMicrosecondType>().value(2),
        1_714_557_600_000_003
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ordering_columns_are_clear_errors_and_cache_nothing() {
    let s = Scratch::new("order_errors").await;
    s.sql(
        "CREATE TABLE {s}.ev (id bigint, ts timestamptz, speed float8, payload jsonb);
         INSERT INTO {s}.ev VALUES (1, now(), 1.0, '{}'), (2, NULL, 2.0, '{}'), (3, NULL, 3.0, '{}');",
    )
    .await;
    let db = s.db().await;
    let sql = format!("SELECT * FROM {}", s.table("ev"));
    let options = IncrementalOptions::default();
    let missing = db
        .incremental_query(&sql, &[], "idd", &options)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("\"idd\"") && missing.contains("id, ts, speed, payload"),
        "{missing}"
    );
    let nulls = db
        .incremental_query(&sql, &[], "ts", &options)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        nulls.contains("\"ts\"") && nulls.contains("2 NULL"),
        "{nulls}"
    );
    for column in ["speed", "payload"] {
        let err = db
            .incremental_query(&sql, &[], column, &options)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(column) && err.contains("cannot order"),
            "{err}"
        );
    }
    assert_eq!(db.cache_stats().await.unwrap().total_files, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deltas_work_with_parameters_and_deleted_rows_leave_the_tail() {
    let s = Scratch::new("params").await;
    s.sql("CREATE TABLE {s}.ev (id bigint, device int); INSERT INTO {s}.ev SELECT g, g % 2 FROM generate_series(1, 100) g;")
        .await;
    let db = s.db().await;
    let sql = format!("SELECT id, device FROM {} WHERE device = $1", s.table("ev"));
    let options = IncrementalOptions::default();
    let first = db
        .incremental_query(&sql, &[Value::Int4(1)], "id", &options)
        .await
        .unwrap();
    assert_eq!(first.num_rows(), 50);
    s.sql("INSERT INTO {s}.ev SELECT g, g % 2 FROM generate_series(101, 110) g; DELETE FROM {s}.ev WHERE id = 99;").await;
    let second = db
        .incremental_query(&sql, &[Value::Int4(1)], "id", &options)
        .await
        .unwrap();
    let ids = ints(&second, "id");
    assert_eq!(ids.len(), 54, "50 + 5 new - the deleted tie row");
    assert!(
        !ids.contains(&99),
        "a row deleted at the re-read tail is gone from the cache too"
    );
    assert_eq!(*ids.last().unwrap(), 109);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_refreshes_keep_the_entry_equal_to_the_table_with_few_parts() {
    let s = Scratch::new("compaction").await;
    s.sql("CREATE TABLE {s}.ev (id bigserial PRIMARY KEY, v int); INSERT INTO {s}.ev (v) SELECT g FROM generate_series(1, 1000) g;")
        .await;
    let mut tuning = SettingsLayer::from_url(database_url(), "test").unwrap();
    tuning.part_rows = Some(10_000);
    tuning.compact_after_parts = Some(4);
    tuning.batch_rows = Some(64);
    let settings = Settings::resolve([tuning]).with_cache_dir(s.cache.path());
    let db = Db::connect(settings).await.unwrap();
    let sql = format!("SELECT * FROM {}", s.table("ev"));
    let mut most_parts = 0;
    for round in 1..=30 {
        s.sql(&format!(
            "INSERT INTO {{s}}.ev (v) SELECT g FROM generate_series(1, {}) g;",
            round * 3
        ))
        .await;
        let result = refresh(&db, &sql, "id").await;
        let expected: i64 = s.scalar("SELECT count(*) FROM {s}.ev").await;
        assert_eq!(
            ints(&result, "id"),
            (1..=expected).collect::<Vec<_>>(),
            "round {round}"
        );
        most_parts = most_parts.max(db.cache_stats().await.unwrap().entries[0].parts);
    }
    // Transactions of tests running alongside keep some parts from becoming final for a
    // while, so the bound during the run has slack; once settled the count is small.
    assert!(
        most_parts <= 24,
        "compaction keeps the part count bounded, saw {most_parts}"
    );
    settle(&db, &sql, &[], "id", &IncrementalOptions::default()).await;
    for _ in 0..3 {
        s.sql("INSERT INTO {s}.ev (v) VALUES (0);").await;
        settle(&db, &sql, &[], "id", &IncrementalOptions::default()).await;
    }
    // Every part is small next to part_rows here, so once settled they merge down to at
    // most the threshold plus the tail.
    let parts = db.cache_stats().await.unwrap().entries[0].parts;
    assert!(parts <= 4 + 2, "settled, the entry has few parts: {parts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookback_rereads_a_window_below_the_maximum() {
    let s = Scratch::new("lookback").await;
    s.sql("CREATE TABLE {s}.ev (id bigint, v text); INSERT INTO {s}.ev SELECT g, 'a' FROM generate_series(1, 100) g;").await;
    let db = s.db().await;
    let sql = format!("SELECT * FROM {}", s.table("ev"));
    let options = IncrementalOptions::default().lookback(Lookback::Amount(10));
    settle(&db, &sql, &[], "id", &options).await;
    // A row below the maximum that arrives late by design, within the window.
    s.sql("INSERT INTO {s}.ev VALUES (95, 'late'), (101, 'b');")
        .await;
    let result = db
        .incremental_query(&sql, &[], "id", &options)
        .await
        .unwrap();
    assert_eq!(result.num_rows(), 102);
    let report = result.refresh_report().unwrap();
    assert_eq!(report.read_from, Some(OrderValue::Int(90)));
    assert_eq!(report.rows_from_database, 13);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cache_fetches_everything_in_order() {
    let s = Scratch::new("inc_no_cache").await;
    s.sql("CREATE TABLE {s}.ev (id bigint); INSERT INTO {s}.ev SELECT g FROM generate_series(1, 50) g ORDER BY random();").await;
    let db = s.db().await;
    let sql = format!("SELECT id FROM {}", s.table("ev"));
    let r = db
        .incremental_query(&sql, &[], "id", &IncrementalOptions::default().no_cache())
        .await
        .unwrap();
    assert_eq!(r.origin(), Origin::Uncached);
    assert_eq!(ints(&r, "id"), (1..=50).collect::<Vec<_>>());
    assert_eq!(db.cache_stats().await.unwrap().total_files, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_first_load_equals_a_single_stream() {
    let s = Scratch::new("parallel").await;
    s.sql(
        "CREATE TABLE {s}.ev (id bigint, ts timestamptz, v text);
         INSERT INTO {s}.ev SELECT g, '2024-01-01 00:00:00+00'::timestamptz + g * interval '1.5 s', 'v' || g
         FROM generate_series(1, 50000) g;
         INSERT INTO {s}.ev VALUES (50001, 'infinity', 'far'), (0, '-infinity', 'early');",
    )
    .await;
    let sql = format!("SELECT * FROM {}", s.table("ev"));
    let single = s.db().await;
    let mut layer = SettingsLayer::from_url(database_url(), "test").unwrap();
    layer.parallel_fetch = Some(3);
    layer.parallel_min_rows = Some(1);
    let other_cache = tempfile::tempdir().unwrap();
    let parallel = Db::connect(Settings::resolve([layer]).with_cache_dir(other_cache.path()))
        .await
        .unwrap();
    for column in ["id", "ts"] {
        let a = single
            .incremental_query(&sql, &[], column, &IncrementalOptions::default())
            .await
            .unwrap();
        let b = parallel
            .incremental_query(&sql, &[], column, &IncrementalOptions::default())
            .await
            .unwrap();
        let table_rows: i64 = s.scalar("SELECT count(*) FROM {s}.ev").await;
        assert_eq!(
            (a.num_rows() as i64, b.num_rows() as i64),
            (table_rows, table_rows),
            "{column}"
        );
        let concat = |r: &ResultSet| {
            arrow::compute::concat_batches(&r.schema(), &r.to_batches().unwrap()).unwrap()
        };
        assert_eq!(
            concat(&a),
            concat(&b),
            "{column}: the same rows in the same order"
        );
        let parts = parallel
            .cache_stats()
            .await
            .unwrap()
            .entries
            .iter()
            .map(|e| e.parts)
            .max()
            .unwrap();
        assert!(
            parts >= 3,
            "{column}: one part per range at least, got {parts}"
        );
        // And refreshes continue from it as from any load.
        if column == "ts" {
            // The 'infinity' row is the watermark now: nothing can come after it.
            continue;
        }
        s.sql("INSERT INTO {s}.ev VALUES (60000, now(), 'new')")
            .await;
        let next = parallel
            .incremental_query(&sql, &[], column, &IncrementalOptions::default())
            .await
            .unwrap();
        assert!(
            !next.refresh_report().unwrap().full,
            "{column}: the parallel load is refreshed, not rebuilt"
        );
        let table_rows: i64 = s.scalar("SELECT count(*) FROM {s}.ev").await;
        assert_eq!(next.num_rows() as i64, table_rows);
    }
}
