//! Cache entries, as they sit on disk, read by pyarrow, polars and DuckDB with exactly the
//! rows and logical types pgcache returns (`tests/python/check_entries.py` does the reading).
//!
//! Needs the Python packages of `tests/python/requirements.txt`: `scripts/setup.sh` installs
//! them into `target/pyenv`, which this test uses (or `PGCACHE_PYTHON`).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::path::PathBuf;
use std::process::Command;

use arrow::array::{Array, AsArray};
use arrow::datatypes::*;
use pgcache::config::SettingsLayer;
use pgcache::{Db, IncrementalOptions, QueryOptions, ResultSet, Settings};
use pgcache_tests::{Scratch, database_url};
use serde_json::{Value as Json, json};

/// The type as pyarrow prints it.
fn pyarrow_type(t: &DataType) -> String {
    match t {
        DataType::Boolean => "bool".into(),
        DataType::Int16 => "int16".into(),
        DataType::Int32 => "int32".into(),
        DataType::Int64 => "int64".into(),
        DataType::UInt32 => "uint32".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Decimal128(p, s) => format!("decimal128({p}, {s})"),
        DataType::Utf8 => "string".into(),
        DataType::Binary => "binary".into(),
        DataType::FixedSizeBinary(n) => format!("fixed_size_binary[{n}]"),
        DataType::Date32 => "date32[day]".into(),
        DataType::Time64(_) => "time64[us]".into(),
        DataType::Timestamp(_, Some(tz)) => format!("timestamp[us, tz={tz}]"),
        DataType::Timestamp(_, None) => "timestamp[us]".into(),
        // Stored losslessly as a struct: Parquet has no month-day-nanosecond interval.
        DataType::Interval(_) => {
            "struct<months: int32 not null, days: int32 not null, microseconds: int64 not null>"
                .into()
        }
        DataType::List(f) => format!("list<item: {}>", pyarrow_type(f.data_type())),
        other => panic!("no pyarrow name for {other}"),
    }
}

/// A value as `check_entries.py` canonicalises what it reads.
fn canonical(a: &dyn Array, i: usize) -> Json {
    if a.is_null(i) {
        return Json::Null;
    }
    match a.data_type() {
        DataType::Boolean => json!(a.as_boolean().value(i)),
        DataType::Int16 => json!(a.as_primitive::<Int16Type>().value(i)),
        DataType::Int32 => json!(a.as_primitive::<Int32Type>().value(i)),
        DataType::Int64 => json!(a.as_primitive::<Int64Type>().value(i)),
        DataType::UInt32 => json!(a.as_primitive::<UInt32Type>().value(i)),
        DataType::Float32 => float(f64::from(a.as_primitive::<Float32Type>().value(i))),
        DataType::Float64 => float(a.as_primitive::<Float64Type>().value(i)),
        DataType::Decimal128(_, s) => json!(pgcache::text::format_scaled(
            a.as_primitive::<Decimal128Type>().value(i),
            *s
        )),
        DataType::Utf8 => json!(a.as_string::<i32>().value(i)),
        DataType::Binary => json!(hex(a.as_binary::<i32>().value(i))),
        DataType::FixedSizeBinary(_) => json!(hex(a.as_fixed_size_binary().value(i))),
        DataType::Date32 => json!(a.as_primitive::<Date32Type>().value(i)),
        DataType::Time64(_) => json!(a.as_primitive::<Time64MicrosecondType>().value(i)),
        DataType::Timestamp(..) => json!(a.as_primitive::<TimestampMicrosecondType>().value(i)),
        DataType::Interval(_) => {
            let v = a.as_primitive::<IntervalMonthDayNanoType>().value(i);
            json!([v.months, v.days, v.nanoseconds / 1000])
        }
        DataType::List(_) => {
            let inner = a.as_list::<i32>().value(i);
            Json::Array(
                (0..inner.len())
                    .map(|j| canonical(inner.as_ref(), j))
                    .collect(),
            )
        }
        other => panic!("no canonical form for {other}"),
    }
}

fn float(v: f64) -> Json {
    if v.is_nan() { json!("NaN") } else { json!(v) }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What the readers must find in the entry behind `result`, sorted by `sort`.
fn expected(cache: &std::path::Path, result: &ResultSet, sort: &str) -> Json {
    let batches = result.to_batches().expect("read the result");
    let all = arrow::compute::concat_batches(&result.schema(), &batches).expect("concatenate");
    let key = all.column_by_name(sort).expect("the sort column exists");
    let order = arrow::compute::sort_to_indices(key, None, None).expect("sort");
    let sorted = arrow::compute::take_record_batch(&all, &order).expect("reorder");
    let columns: Vec<Json> = result
        .schema()
        .fields()
        .iter()
        .enumerate()
        .map(|(c, f)| {
            let a = sorted.column(c).as_ref();
            json!({
                "name": f.name(),
                "type": pyarrow_type(f.data_type()),
                "values": (0..a.len()).map(|i| canonical(a, i)).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "path": cache.join(result.entry_name().expect("a cached result")).display().to_string(),
        "rows": result.num_rows(),
        "sort": sort,
        "columns": columns,
    })
}

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("PGCACHE_PYTHON") {
        return p.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/pyenv/bin/python");
    if venv.exists() {
        venv
    } else {
        "python3".into()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_read_identically_in_pyarrow_polars_and_duckdb() {
    let s = Scratch::new("interop").await;
    s.sql(
        r#"CREATE TABLE {s}.ev (
             id bigserial PRIMARY KEY, device int, at timestamptz, local timestamp, day date, tod time,
             odometer numeric(12,3), big numeric, speed real, lat float8, ok bool, status text,
             raw bytea, doc jsonb, tags text[], nums int4[], span interval, u uuid, o oid);
           INSERT INTO {s}.ev (device, at, local, day, tod, odometer, big, speed, lat, ok, status, raw, doc, tags, nums, span, u, o)
           SELECT g % 5, '2024-01-01 00:00:00+00'::timestamptz + g * interval '1.000001 second',
                  '2024-01-01'::timestamp + g * interval '1 minute', '2024-01-01'::date + g, '00:00:01'::time + g * interval '1 ms',
                  (g * 1.125)::numeric(12,3), (g::numeric ^ 3) / 7, g * 0.5, -23.5 + g * 1e-6, g % 3 = 0,
                  (ARRAY['moving','stopped',''])[1 + g % 3], decode(lpad(to_hex(g), 4, '0'), 'hex'),
                  jsonb_build_object('g', g), ARRAY['a' || g, NULL], ARRAY[g, NULL, -g],
                  make_interval(months => g % 13, days => g % 7, secs => g * 0.000001),
                  md5(g::text)::uuid, g
           FROM generate_series(1, 3000) g;
           INSERT INTO {s}.ev (device) VALUES (NULL);
           -- The edges of Arrow's time and timestamp ranges, stored exactly.
           INSERT INTO {s}.ev (device, at, local, tod) VALUES (NULL,
             '294247-01-10 04:00:54.775806+00', '294247-01-10 04:00:54.775806', '23:59:59.999999');"#,
    )
    .await;
    // Small parts, so the incremental entry has several.
    let mut layer = SettingsLayer::from_url(database_url(), "test").unwrap();
    layer.part_rows = Some(700);
    layer.batch_rows = Some(256);
    let db = Db::connect(Settings::resolve([layer]).with_cache_dir(s.cache.path()))
        .await
        .unwrap();
    let sql = format!("SELECT * FROM {}", s.table("ev"));
    let simple = db.query(&sql, &[], &QueryOptions::default()).await.unwrap();
    db.incremental_query(&sql, &[], "id", &IncrementalOptions::default())
        .await
        .unwrap();
    s.sql(
        "INSERT INTO {s}.ev (device, at, odometer, status) SELECT g % 5, now(), g, 'late' FROM generate_series(1, 500) g;",
    )
    .await;
    let incremental = db
        .incremental_query(&sql, &[], "id", &IncrementalOptions::default())
        .await
        .unwrap();
    assert!(
        db.cache_stats()
            .await
            .unwrap()
            .entries
            .iter()
            .any(|e| e.parts > 3),
        "several parts on disk"
    );

    let entries = json!([
        expected(s.cache.path(), &simple, "id"),
        expected(s.cache.path(), &incremental, "id")
    ]);
    let file = s.cache.path().join("expected.json");
    std::fs::write(&file, serde_json::to_vec(&entries).unwrap()).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/check_entries.py");
    let out = Command::new(python())
        .arg(&script)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; run scripts/setup.sh to install the Python readers",
                python().display()
            )
        });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{stderr}{}",
        if stderr.contains("ModuleNotFoundError") {
            "\nrun scripts/setup.sh to install the Python readers"
        } else {
            ""
        }
    );
    println!("{}", String::from_utf8_lossy(&out.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_column_names_are_refused_before_anything_is_stored() {
    let s = Scratch::new("interop_names").await;
    s.sql("CREATE TABLE {s}.t (id bigint, a int); INSERT INTO {s}.t VALUES (1, 10), (2, 20);")
        .await;
    let db = s.db().await;
    let t = s.table("t");
    // A Parquet dataset with two fields named `a` is unreadable by pyarrow.dataset.
    let simple = format!("SELECT id, a, a * 2 AS a, 0 AS b, 1 AS b FROM {t}");
    let err = db
        .query(&simple, &[], &QueryOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(r#""a" (columns 2, 3), "b" (columns 4, 5)"#),
        "{err}"
    );
    let incremental = format!("SELECT id, a, a AS a FROM {t}");
    let err = db
        .incremental_query(&incremental, &[], "id", &IncrementalOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(r#""a" (columns 2, 3)"#), "{err}");
    // Nothing was written: no entry, no generation directory.
    assert_eq!(db.cache_stats().await.unwrap().total_files, 0);
    let generations = s.cache.path().join(".pgcache/gen");
    assert!(
        !generations.exists() || std::fs::read_dir(&generations).unwrap().next().is_none(),
        "a generation was created"
    );
    // Uncached results are not Parquet datasets: they may repeat names.
    let uncached = db
        .query(&simple, &[], &QueryOptions::default().no_cache())
        .await
        .unwrap();
    let names: Vec<String> = uncached
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["id", "a", "a", "b", "b"]);
    let ordered = db
        .incremental_query(
            &incremental,
            &[],
            "id",
            &IncrementalOptions::default().no_cache(),
        )
        .await
        .unwrap();
    assert_eq!(ordered.num_rows(), 2);
}
