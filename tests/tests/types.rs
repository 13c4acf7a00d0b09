//! Every mapped type round-trips a normal value, NULL and edge values, through both wire paths
//! (binary COPY without parameters, binary rows with them) and through the cache (a hit read
//! back from Parquet), with identical results.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::*;
use pgcache::pg::types::PG_TYPE_KEY;
use pgcache::{Origin, QueryOptions, ResultSet, Value};
use pgcache_tests::Scratch;

/// The type table, shared with the wasmtime CLI tests.
use pgcache_tests::TYPE_TABLE as SETUP;

fn col<'a>(batch: &'a RecordBatch, name: &str) -> &'a dyn Array {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_ref()
}

fn pg_type(result: &ResultSet, name: &str) -> String {
    result.schema().field_with_name(name).unwrap().metadata()[PG_TYPE_KEY].clone()
}

fn one_batch(result: &ResultSet) -> RecordBatch {
    let batches = result.to_batches().unwrap();
    arrow::compute::concat_batches(&result.schema(), &batches).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_roundtrips_through_both_wire_paths_and_the_cache() {
    let s = Scratch::new("types").await;
    s.sql(SETUP).await;
    let db = s.db().await;
    let sql = format!("SELECT * FROM {} ORDER BY k", s.table("types"));
    let with_param = format!("SELECT * FROM {} WHERE k > $1 ORDER BY k", s.table("types"));

    let copy = db
        .query(&sql, &[], &QueryOptions::default().no_cache())
        .await
        .unwrap();
    let rows = db
        .query(
            &with_param,
            &[Value::Int4(0)],
            &QueryOptions::default().no_cache(),
        )
        .await
        .unwrap();
    let stored = db.query(&sql, &[], &QueryOptions::default()).await.unwrap();
    assert_eq!(stored.origin(), Origin::Stored);
    let hit = db.query(&sql, &[], &QueryOptions::default()).await.unwrap();
    assert_eq!(hit.origin(), Origin::Hit);

    let expected = one_batch(&copy);
    for (path, result) in [("rows", &rows), ("stored", &stored), ("hit", &hit)] {
        assert_eq!(result.schema(), copy.schema(), "{path}: schema");
        assert_eq!(one_batch(result), expected, "{path}: values");
    }
    let b = &expected;
    assert_eq!(b.num_rows(), 4);

    // Types and PostgreSQL type metadata.
    let schema = copy.schema();
    let t = |name: &str| schema.field_with_name(name).unwrap().data_type().clone();
    assert_eq!(t("n"), DataType::Decimal128(38, 10));
    assert_eq!(t("n12"), DataType::Decimal128(12, 3));
    assert_eq!(t("nu"), DataType::Utf8);
    assert_eq!(
        t("tz"),
        DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")))
    );
    assert_eq!(t("ts"), DataType::Timestamp(TimeUnit::Microsecond, None));
    assert_eq!(t("iv"), DataType::Interval(IntervalUnit::MonthDayNano));
    assert_eq!(t("u"), DataType::FixedSizeBinary(16));
    assert_eq!(t("o"), DataType::UInt32);
    assert_eq!(t("dom"), DataType::Int32);
    assert!(matches!(t("ai"), DataType::List(f) if f.data_type() == &DataType::Int32));
    assert_eq!(pg_type(&copy, "n12"), "numeric(12,3)");
    assert_eq!(pg_type(&copy, "ai"), "int4[]");
    assert_eq!(pg_type(&copy, "pt"), "point");

    // Row 1: normal values.
    assert!(col(b, "b").as_boolean().value(0));
    assert_eq!(col(b, "i8").as_primitive::<Int64Type>().value(0), 3);
    assert_eq!(col(b, "f8").as_primitive::<Float64Type>().value(0), 2.25);
    assert_eq!(
        col(b, "n").as_primitive::<Decimal128Type>().value(0),
        123_456_789_012_345
    );
    assert_eq!(col(b, "nu").as_string::<i32>().value(0), "3.14159");
    assert_eq!(
        col(b, "n12").as_primitive::<Decimal128Type>().value(0),
        1500
    );
    assert_eq!(col(b, "bp").as_string::<i32>().value(0), "ab ");
    assert_eq!(col(b, "by").as_binary::<i32>().value(0), &[1, 2]);
    assert_eq!(col(b, "d").as_primitive::<Date32Type>().value(0), 19_782);
    assert_eq!(
        col(b, "tm")
            .as_primitive::<Time64MicrosecondType>()
            .value(0),
        45_296_789_012
    );
    assert_eq!(
        col(b, "ts")
            .as_primitive::<TimestampMicrosecondType>()
            .value(0),
        1_706_702_400_000_123
    );
    assert_eq!(
        col(b, "tz")
            .as_primitive::<TimestampMicrosecondType>()
            .value(0),
        1_706_702_400_000_123
    );
    assert_eq!(
        col(b, "iv")
            .as_primitive::<IntervalMonthDayNanoType>()
            .value(0),
        IntervalMonthDayNano::new(1, 2, 3_000_004_000)
    );
    assert_eq!(
        col(b, "u").as_fixed_size_binary().value(0)[0..2],
        [0x12, 0x3e]
    );
    assert_eq!(col(b, "js").as_string::<i32>().value(0), r#"{"a": 1}"#);
    assert_eq!(col(b, "jb").as_string::<i32>().value(0), r#"{"b": [1, 2]}"#);
    assert_eq!(col(b, "e").as_string::<i32>().value(0), "happy");
    let ai = col(b, "ai").as_list::<i32>().value(0);
    assert_eq!(
        ai.as_primitive::<Int32Type>().iter().collect::<Vec<_>>(),
        vec![Some(1), None, Some(3)]
    );
    let at = col(b, "at").as_list::<i32>().value(0);
    assert_eq!(
        at.as_string::<i32>().iter().collect::<Vec<_>>(),
        vec![Some("x"), None, Some("")]
    );
    assert_eq!(col(b, "ip").as_string::<i32>().value(0), "10.0.0.1");
    assert_eq!(col(b, "ci").as_string::<i32>().value(0), "10.0.0.0/8");
    assert_eq!(
        col(b, "mac").as_string::<i32>().value(0),
        "08:00:2b:01:02:03"
    );
    assert_eq!(col(b, "o").as_primitive::<UInt32Type>().value(0), 42);
    assert_eq!(col(b, "pt").as_string::<i32>().value(0), "(1,2)");
    assert_eq!(col(b, "dom").as_primitive::<Int32Type>().value(0), 5);

    // Row 2: NULL in every column.
    for field in schema.fields().iter().skip(1) {
        assert!(
            col(b, field.name()).is_null(1),
            "{} should be NULL",
            field.name()
        );
    }

    // Row 3: edges. Empty string and empty bytea are values, not NULL.
    assert_eq!(col(b, "i2").as_primitive::<Int16Type>().value(2), i16::MIN);
    assert_eq!(col(b, "i4").as_primitive::<Int32Type>().value(2), i32::MIN);
    assert_eq!(col(b, "i8").as_primitive::<Int64Type>().value(2), i64::MAX);
    assert!(col(b, "f4").as_primitive::<Float32Type>().value(2).is_nan());
    assert_eq!(
        col(b, "f8").as_primitive::<Float64Type>().value(2),
        f64::NEG_INFINITY
    );
    assert_eq!(
        col(b, "n").as_primitive::<Decimal128Type>().value(2),
        99_999_999_999_999_999_999_999_999_999_999_999_999
    );
    assert_eq!(
        col(b, "nu").as_string::<i32>().value(2),
        "0.00000000000000000001"
    );
    assert_eq!(
        col(b, "n12").as_primitive::<Decimal128Type>().value(2),
        -999_999_999_999
    );
    for name in ["t", "vc", "nm"] {
        assert!(
            !col(b, name).is_null(2) && col(b, name).as_string::<i32>().value(2).is_empty(),
            "{name}"
        );
    }
    assert_eq!(col(b, "bp").as_string::<i32>().value(2), "   ");
    assert!(!col(b, "by").is_null(2) && col(b, "by").as_binary::<i32>().value(2).is_empty());
    // 'infinity' and '-infinity' keep PostgreSQL's sentinels: the largest and smallest values.
    assert_eq!(col(b, "d").as_primitive::<Date32Type>().value(2), i32::MAX);
    assert_eq!(
        col(b, "tm")
            .as_primitive::<Time64MicrosecondType>()
            .value(2),
        86_399_999_999
    );
    assert_eq!(
        col(b, "ts")
            .as_primitive::<TimestampMicrosecondType>()
            .value(2),
        i64::MIN
    );
    assert_eq!(
        col(b, "tz")
            .as_primitive::<TimestampMicrosecondType>()
            .value(2),
        i64::MAX
    );
    assert_eq!(
        col(b, "iv")
            .as_primitive::<IntervalMonthDayNanoType>()
            .value(2),
        IntervalMonthDayNano::new(-12, -2, -1_000)
    );
    assert_eq!(col(b, "jb").as_string::<i32>().value(2), "null");
    assert_eq!(col(b, "ai").as_list::<i32>().value(2).len(), 0);
    assert!(!col(b, "ai").is_null(2));
    assert_eq!(col(b, "ip").as_string::<i32>().value(2), "::1");
    assert_eq!(col(b, "ci").as_string::<i32>().value(2), "2001:db8::/32");
    assert_eq!(col(b, "o").as_primitive::<UInt32Type>().value(2), u32::MAX);
    assert_eq!(col(b, "pt").as_string::<i32>().value(2), "(-1.5,0)");

    // Row 4: the negative numeric(38,10) extreme, wide numerics, microseconds around epochs.
    assert_eq!(
        col(b, "n").as_primitive::<Decimal128Type>().value(3),
        -99_999_999_999_999_999_999_999_999_999_999_999_999
    );
    assert_eq!(
        col(b, "nu").as_string::<i32>().value(3),
        "123456789012345678901234567890.123456789"
    );
    assert_eq!(col(b, "n12").as_primitive::<Decimal128Type>().value(3), 0);
    assert_eq!(col(b, "t").as_string::<i32>().value(3), "ünïcödé ✓");
    assert_eq!(col(b, "d").as_primitive::<Date32Type>().value(3), -735_160);
    assert_eq!(
        col(b, "ts")
            .as_primitive::<TimestampMicrosecondType>()
            .value(3),
        946_684_799_999_999
    );
    assert_eq!(
        col(b, "tz")
            .as_primitive::<TimestampMicrosecondType>()
            .value(3),
        -1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_results_keep_their_schema_in_memory_and_on_disk() {
    let s = Scratch::new("empty").await;
    s.sql("CREATE TABLE {s}.e (id bigint, amount numeric(10,2), at timestamptz, tags text[], iv interval)").await;
    let db = s.db().await;
    let sql = format!("SELECT * FROM {}", s.table("e"));
    let stored = db.query(&sql, &[], &QueryOptions::default()).await.unwrap();
    let hit = db.query(&sql, &[], &QueryOptions::default()).await.unwrap();
    assert_eq!(hit.origin(), Origin::Hit);
    for result in [&stored, &hit] {
        assert_eq!(result.num_rows(), 0);
        let schema = result.schema();
        assert_eq!(schema.fields().len(), 5);
        assert_eq!(schema.field(1).data_type(), &DataType::Decimal128(10, 2));
        assert_eq!(
            schema.field(4).data_type(),
            &DataType::Interval(IntervalUnit::MonthDayNano)
        );
        assert_eq!(result.column("amount").unwrap().len(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrepresentable_values_are_clear_errors() {
    let s = Scratch::new("unrepresentable").await;
    let db = s.db().await;
    let err = db
        .query(
            "SELECT 'NaN'::numeric(10,2) AS price",
            &[],
            &QueryOptions::default(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"price\"") && err.contains("NaN"), "{err}");
    let err = db
        .query(
            "SELECT '{{1,2},{3,4}}'::int[] AS grid",
            &[],
            &QueryOptions::default(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"grid\"") && err.contains("2-dimensional"),
        "{err}"
    );
    // Values Arrow's types cannot hold exactly are refused by column, never changed:
    // PostgreSQL's 24:00:00 (Arrow's Time64 ends before it), its last timestamps (past
    // 294247-01-10 04:00:54.775806, where Unix microseconds end), an interval whose time part
    // passes 2^63 nanoseconds.
    for (sql, column, says) in [
        ("SELECT '24:00:00'::time AS tm", "tm", "24:00:00"),
        (
            "SELECT '294270-06-01 00:00:00'::timestamp AS far",
            "far",
            "294270-06-01 00:00:00.000000",
        ),
        (
            "SELECT '294276-12-31 23:59:59.999999+00'::timestamptz AS last",
            "last",
            "294276-12-31 23:59:59.999999",
        ),
        (
            "SELECT make_interval(hours => 3000000) AS span",
            "span",
            "justify_hours",
        ),
    ] {
        for path in [sql.to_owned(), format!("{sql} WHERE $1")] {
            let params = if path.contains("$1") {
                vec![Value::Bool(true)]
            } else {
                vec![]
            };
            let err = db
                .query(&path, &params, &QueryOptions::default())
                .await
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("column \"{column}\"")) && err.contains(says),
                "{path}: {err}"
            );
        }
    }
    // Nothing half-written was left behind.
    assert_eq!(db.cache_stats().await.unwrap().total_files, 0);

    // The edges themselves are exact: the last storable time of day and instant, and the
    // longest interval time part once justified into days.
    let edges = db
        .query(
            "SELECT '23:59:59.999999'::time AS tm, \
                    '294247-01-10 04:00:54.775806'::timestamp AS ts, \
                    '294247-01-10 04:00:54.775806+00'::timestamptz AS tz, \
                    justify_hours(make_interval(hours => 3000000)) AS span",
            &[],
            &QueryOptions::default(),
        )
        .await
        .unwrap();
    let b = one_batch(&edges);
    assert_eq!(
        col(&b, "tm")
            .as_primitive::<Time64MicrosecondType>()
            .value(0),
        86_399_999_999
    );
    for name in ["ts", "tz"] {
        assert_eq!(
            col(&b, name)
                .as_primitive::<TimestampMicrosecondType>()
                .value(0),
            i64::MAX - 1,
            "{name}"
        );
    }
    assert_eq!(
        col(&b, "span")
            .as_primitive::<IntervalMonthDayNanoType>()
            .value(0),
        IntervalMonthDayNano::new(0, 125_000, 0)
    );
}
