//! Watermarks at the edges of PostgreSQL's ranges: dates to 5874897 AD and timestamps to the
//! last instant pgcache holds (294247 AD) are written back into SQL exactly, so a refresh
//! re-reads what it dropped and never loses a stored row.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Date32Type, TimestampMicrosecondType};
use pgcache::{IncrementalOptions, OrderValue, QueryOptions, ResultSet};
use pgcache_tests::Scratch;

/// The last Unix microsecond pgcache holds as a finite timestamp.
const LAST_MICROS: i64 = i64::MAX - 1;
/// PostgreSQL's last date, 5874897-12-31, in Unix days.
const LAST_DAY: i32 = 2_145_042_905;
/// PostgreSQL's first date and timestamp, 4714-11-24 BC.
const FIRST_DAY: i32 = -2_440_588;

fn values(r: &ResultSet, column: &str) -> Vec<i64> {
    let a = r.column(column).unwrap();
    match a.data_type() {
        arrow::datatypes::DataType::Date32 => a
            .as_primitive::<Date32Type>()
            .values()
            .iter()
            .map(|d| i64::from(*d))
            .collect(),
        _ => a
            .as_primitive::<TimestampMicrosecondType>()
            .values()
            .to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn literals_read_back_as_the_same_dates_and_timestamps_over_the_whole_range() {
    let s = Scratch::new("wm_literals").await;
    let db = s.db().await;
    // Edges, and a spread of values in between (a fixed pseudo-random walk).
    let mut days = vec![
        FIRST_DAY,
        -719_528,
        -1,
        0,
        95_026_237,
        LAST_DAY - 1,
        LAST_DAY,
    ];
    let mut micros = vec![
        i64::from(FIRST_DAY) * 86_400_000_000,
        -1,
        0,
        8_210_266_876_799_999_999, // 262142-12-31 23:59:59.999999, chrono's last
        8_210_266_876_800_000_000,
        LAST_MICROS,
    ];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let span = i64::from(LAST_DAY) - i64::from(FIRST_DAY);
        days.push(FIRST_DAY + i32::try_from((x % span as u64) as i64).unwrap());
        let first = i64::from(FIRST_DAY) * 86_400_000_000;
        let span = LAST_MICROS as i128 - first as i128;
        micros.push((first as i128 + (x as i128 % span)) as i64);
    }
    for (kind, literals, expected) in [
        (
            "date",
            days.iter()
                .map(|d| OrderValue::Date(*d).sql_literal())
                .collect::<Vec<_>>(),
            days.iter().map(|d| i64::from(*d)).collect::<Vec<_>>(),
        ),
        (
            "timestamp",
            micros
                .iter()
                .map(|m| OrderValue::Timestamp(*m).sql_literal())
                .collect(),
            micros.clone(),
        ),
        (
            "timestamptz",
            micros
                .iter()
                .map(|m| OrderValue::TimestampTz(*m).sql_literal())
                .collect(),
            micros.clone(),
        ),
    ] {
        let sql = format!(
            "SELECT v FROM unnest(ARRAY[{}]) WITH ORDINALITY AS t(v, i) ORDER BY i",
            literals.join(", ")
        );
        let r = db
            .query(&sql, &[], &QueryOptions::default().no_cache())
            .await
            .unwrap();
        assert_eq!(values(&r, "v"), expected, "{kind}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn far_dates_and_timestamps_as_watermarks_lose_no_row() {
    let s = Scratch::new("wm_far").await;
    s.sql(
        "CREATE TABLE {s}.ev (id bigint, d date, ts timestamp, tz timestamptz);
         INSERT INTO {s}.ev VALUES
           (1, '2024-01-01', '2024-01-01 00:00:00', '2024-01-01 00:00:00+00'),
           (2, '262143-06-01', '262143-06-01 12:00:00', '262143-06-01 12:00:00+00'),
           (3, '1000000-01-01', '270000-01-01 00:00:00.000001', '270000-01-01 00:00:00.000001+00'),
           (4, '5874897-12-31', '294247-01-10 04:00:54.775806', '294247-01-10 04:00:54.775806+00');",
    )
    .await;
    let db = s.db().await;
    let sql = format!("SELECT * FROM {}", s.table("ev"));
    let table = |column: &'static str| {
        let db = db.clone();
        let sql = format!("{sql} ORDER BY {column}");
        async move {
            let r = db
                .query(&sql, &[], &QueryOptions::default().no_cache())
                .await
                .unwrap();
            values(&r, column)
        }
    };
    for column in ["d", "ts", "tz"] {
        let options = IncrementalOptions::default();
        let first = pgcache_tests::settle(&db, &sql, &[], column, &options).await;
        assert_eq!(values(&first, column), table(column).await, "{column}");
        assert_ne!(
            first
                .refresh_report()
                .unwrap()
                .safe
                .as_ref()
                .map(ToString::to_string),
            Some("infinity".to_owned()),
            "{column}: a finite watermark reads as itself"
        );
        // The next refresh re-reads from the (far) safe value: the rows there stay.
        let again = db
            .incremental_query(&sql, &[], column, &options)
            .await
            .unwrap();
        assert_eq!(values(&again, column), table(column).await, "{column}");
        assert!(again.refresh_report().unwrap().rows_from_database >= 1);
    }
    s.sql(
        "INSERT INTO {s}.ev VALUES
           (5, '5874897-12-31', '294247-01-10 04:00:54.775806', '294247-01-10 04:00:54.775806+00'),
           (6, 'infinity', 'infinity', 'infinity');",
    )
    .await;
    for column in ["d", "ts", "tz"] {
        let after = db
            .incremental_query(&sql, &[], column, &IncrementalOptions::default())
            .await
            .unwrap();
        assert_eq!(values(&after, column), table(column).await, "{column}");
        assert_eq!(after.num_rows(), 6, "{column}");
    }
}
