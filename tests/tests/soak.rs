//! Soak: rows inserted continuously by several sessions (some holding their transactions open
//! for a while, so ids and timestamps commit out of order) while the entry is refreshed every
//! few hundred milliseconds; at the end the entry equals the table, row for row, column by
//! column. `PGCACHE_SOAK_SECS` sets the duration (default 8 s; README shows a longer run).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int32Type, Int64Type, TimestampMicrosecondType};
use pgcache::IncrementalOptions;
use pgcache_tests::{Scratch, connect, settle};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refreshing_under_continuous_inserts_ends_equal_to_the_table() {
    let secs: u64 = std::env::var("PGCACHE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let s = Scratch::new("soak").await;
    s.sql(
        "CREATE TABLE {s}.ev (id bigserial PRIMARY KEY, device int NOT NULL, ts timestamptz NOT NULL DEFAULT now(), note text);
         INSERT INTO {s}.ev (device, note) SELECT g % 10, 'seed' FROM generate_series(1, 2000) g;",
    )
    .await;
    let table = s.table("ev");
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for (w, hold_ms) in [(0u64, 0u64), (1, 15), (2, 120)] {
        let (stop, table) = (stop.clone(), table.clone());
        writers.push(tokio::spawn(async move {
            let c = connect().await;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let rows = 1 + n % 4;
                c.batch_execute(&format!(
                    "BEGIN; INSERT INTO {table} (device, note) SELECT {w}, CASE WHEN g % 3 = 0 THEN NULL ELSE 'w{w}' END FROM generate_series(1, {rows}) g"
                ))
                .await
                .unwrap();
                tokio::time::sleep(Duration::from_millis(hold_ms)).await;
                c.batch_execute("COMMIT").await.unwrap();
                n += rows;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            n
        }));
    }
    let db = s.db().await;
    let sql = format!("SELECT id, device, ts, note FROM {table}");
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    let mut refreshes = 0;
    while std::time::Instant::now() < deadline {
        let r = db
            .incremental_query(&sql, &[], "id", &IncrementalOptions::default())
            .await
            .unwrap();
        let ids = r.column("id").unwrap();
        assert!(
            ids.as_primitive::<Int64Type>()
                .values()
                .windows(2)
                .all(|w| w[0] < w[1]),
            "no row twice, in order"
        );
        refreshes += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut written = 0;
    for w in writers {
        written += w.await.unwrap();
    }

    let cached = settle(&db, &sql, &[], "id", &IncrementalOptions::default()).await;
    let rows = s
        .client
        .query(
            &format!("SELECT id, device, ts, note FROM {table} ORDER BY id"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        cached.num_rows() as usize,
        rows.len(),
        "{written} rows written"
    );
    let (id, device, ts, note) = (
        cached.column("id").unwrap(),
        cached.column("device").unwrap(),
        cached.column("ts").unwrap(),
        cached.column("note").unwrap(),
    );
    let (id, device) = (
        id.as_primitive::<Int64Type>(),
        device.as_primitive::<Int32Type>(),
    );
    let (ts, note) = (
        ts.as_primitive::<TimestampMicrosecondType>(),
        note.as_string::<i32>(),
    );
    let epoch = std::time::SystemTime::UNIX_EPOCH;
    for (i, row) in rows.iter().enumerate() {
        let when: std::time::SystemTime = row.get(2);
        let micros = when.duration_since(epoch).unwrap().as_micros() as i64;
        let expected_note: Option<String> = row.get(3);
        assert_eq!(id.value(i), row.get::<_, i64>(0), "row {i}");
        assert_eq!(device.value(i), row.get::<_, i32>(1), "row {i}");
        assert_eq!(ts.value(i), micros, "row {i}");
        assert_eq!(
            (!note.is_null(i)).then(|| note.value(i).to_owned()),
            expected_note,
            "row {i}"
        );
    }
    println!(
        "{secs} s: {written} rows written by 3 sessions, {refreshes} refreshes, {} rows compared",
        rows.len()
    );
}
