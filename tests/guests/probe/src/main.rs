//! `probe MODE ARGS...`: exercises one part of the `pgcache:db/database` interface per mode
//! and prints what it saw, one `key=value` line per fact, for the end-to-end tests to check.

use std::time::Instant;

use bindings::pgcache::db::database::{
    self as db, ColumnData, IncrementalOptions, QueryOptions, ScalarData, Value,
};

mod bindings {
    wit_bindgen::generate!({ world: "database-client", path: "../../../wit" });
}

fn opts() -> QueryOptions {
    QueryOptions {
        use_cache: true,
        max_age_seconds: None,
    }
}

/// The variant name of an error, as the tests expect it.
fn kind(e: &db::Error) -> String {
    match e {
        db::Error::Database(d) => format!(
            "database code={} severity={} message={}",
            d.code, d.severity, d.message
        ),
        db::Error::BadParameter(m) => format!("bad-parameter {m}"),
        db::Error::Denied(m) => format!("denied {m}"),
        db::Error::LimitExceeded(m) => format!("limit-exceeded {m}"),
        db::Error::Timeout(m) => format!("timeout {m}"),
        db::Error::CacheIo(m) => format!("cache-io {m}"),
        db::Error::Other(m) => format!("other {m}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    match arg(0).as_str() {
        // Every call, its result printed: schema, rows, columns, batches, IPC, stats, clear.
        "api" => api(&arg(1)),
        // One call expected to fail; prints the error variant.
        "error" => {
            let outcome = match arg(1).as_str() {
                "query" => db::query(&arg(2), &[], opts()).map(|_| ()),
                "param" => db::query(
                    "SELECT $1::int AS v",
                    &[Value::Text("not a number".into())],
                    opts(),
                )
                .map(|_| ()),
                "execute" => db::execute(&arg(2), &[]).map(|_| ()),
                "incremental" => db::incremental_query(
                    &arg(2),
                    &[],
                    &arg(3),
                    IncrementalOptions {
                        use_cache: true,
                        lookback: None,
                    },
                )
                .map(|_| ()),
                "stats" => db::cache_stats().map(|_| ()),
                other => panic!("unknown error case {other}"),
            };
            match outcome {
                Ok(()) => println!("ok"),
                Err(e) => println!("error={}", kind(&e)),
            }
        }
        // Sums a float8 column of a table, reading it as one typed array.
        "sum" => {
            let rows = db::incremental_query(
                &format!("SELECT * FROM {}", arg(1)),
                &[],
                &arg(2),
                IncrementalOptions {
                    use_cache: true,
                    lookback: None,
                },
            )
            .unwrap_or_else(|e| panic!("{}", kind(&e)))
            .rows;
            let index = rows
                .schema()
                .iter()
                .position(|c| c.name == arg(3))
                .expect("column") as u32;
            let started = Instant::now();
            let column = rows
                .column(index)
                .unwrap_or_else(|e| panic!("{}", kind(&e)));
            let fetched = started.elapsed();
            let ColumnData::Scalar(ScalarData::Float64(values)) = column.data else {
                panic!("not float8")
            };
            let sum: f64 = values.iter().sum();
            let total = started.elapsed();
            println!(
                "rows={} sum={sum:e} fetch_us={} total_us={}",
                values.len(),
                fetched.as_micros(),
                total.as_micros()
            );
        }
        // Times N calls of cache-stats.
        "stats-loop" => {
            let n: u32 = arg(1).parse().unwrap_or(1000);
            let started = Instant::now();
            for _ in 0..n {
                db::cache_stats().expect("stats");
            }
            println!("calls={n} total_us={}", started.elapsed().as_micros());
        }
        "first-call" => {
            // For plugin start-up time: the host measures until this call arrives.
            let stats = db::cache_stats().expect("stats");
            println!("entries={}", stats.total_files);
        }
        "spin" => loop {
            std::hint::black_box(0u64);
        },
        "grow" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
            }
        }
        "sleep" => std::thread::sleep(std::time::Duration::from_secs(3600)),
        "panic" => panic!("probe was asked to panic"),
        "exit" => std::process::exit(arg(1).parse().unwrap_or(3)),
        "echo" => {
            println!("args={}", args[1..].join(","));
            for (k, v) in std::env::vars() {
                println!("env {k}={v}");
            }
            match std::fs::read_to_string(arg(1)) {
                Ok(text) => println!("read={}", text.trim()),
                Err(e) => println!("read-error={e}"),
            }
        }
        other => {
            eprintln!("probe: unknown mode {other:?}");
            std::process::exit(2);
        }
    }
}

fn api(table: &str) {
    let q = format!("SELECT * FROM {table} ORDER BY id");
    let rows = db::query(&q, &[], opts()).unwrap_or_else(|e| panic!("{}", kind(&e)));
    println!("num_rows={}", rows.num_rows());
    for c in rows.schema() {
        println!(
            "column {} scalar={:?} list={} precision={} scale={} pg={}",
            c.name, c.scalar, c.is_list, c.precision, c.scale, c.pg_type
        );
    }
    for (i, c) in rows.schema().iter().enumerate() {
        let v = rows
            .column(i as u32)
            .unwrap_or_else(|e| panic!("{}", kind(&e)));
        let nulls = v.validity.as_ref().map_or(0, |bits| {
            (0..v.len as usize)
                .filter(|i| bits[i / 8] & (1 << (i % 8)) == 0)
                .count()
        });
        println!(
            "values {} len={} nulls={} {} validity={:?}",
            c.name,
            v.len,
            nulls,
            show(&v.data),
            v.validity
        );
    }
    let mut batches = Vec::new();
    while let Some(b) = rows
        .next_batch(2)
        .unwrap_or_else(|e| panic!("{}", kind(&e)))
    {
        batches.push(b.num_rows.to_string());
        for (i, c) in b.columns.iter().enumerate() {
            println!(
                "batch column {i} len={} {} validity={:?}",
                c.len,
                show(&c.data),
                c.validity
            );
        }
    }
    println!("batches={}", batches.join(","));
    let ipc = rows.arrow_ipc().unwrap_or_else(|e| panic!("{}", kind(&e)));
    // FNV-1a of the bytes: two hosts' streams compare without printing them.
    let fnv = ipc.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    });
    println!(
        "ipc_magic={} ipc_len={} ipc_fnv={fnv:016x}",
        ipc.len() > 8 && ipc[..4] == [0xff, 0xff, 0xff, 0xff],
        ipc.len()
    );
    let inc = db::incremental_query(
        &format!("SELECT * FROM {table}"),
        &[],
        "id",
        IncrementalOptions {
            use_cache: true,
            lookback: None,
        },
    )
    .unwrap_or_else(|e| panic!("{}", kind(&e)));
    println!(
        "incremental rows={} from_db={} from_cache={} full={} watermark={}",
        inc.rows.num_rows(),
        inc.report.rows_from_database,
        inc.report.rows_from_cache,
        inc.report.full,
        inc.report.watermark.unwrap_or_default()
    );
    // Two columns of one name: each index gives its own column. Uncached: a cached result is
    // a Parquet dataset, whose readers need distinct names, so pgcache refuses to cache it.
    let typed = db::query(
        "SELECT $1::int8 + 1 AS n, $2::timestamptz AS n",
        &[Value::Int64(41), Value::Timestamptz(1_000_000)],
        QueryOptions {
            use_cache: false,
            ..opts()
        },
    )
    .unwrap_or_else(|e| panic!("{}", kind(&e)));
    println!(
        "typed {} | {}",
        show(&typed.column(0).expect("first n").data),
        show(&typed.column(1).expect("second n").data)
    );
    let stats = db::cache_stats().unwrap_or_else(|e| panic!("{}", kind(&e)));
    println!(
        "stats files={} records={} dir={}",
        stats.total_files, stats.total_records, stats.cache_dir
    );
    println!(
        "cleared={}",
        db::cache_clear(Some(table.split('.').next_back().unwrap_or(table)))
            .unwrap_or_else(|e| panic!("{}", kind(&e)))
    );
}

fn show(d: &ColumnData) -> String {
    match d {
        ColumnData::Scalar(s) => scalar(s),
        ColumnData::List(l) => format!(
            "list offsets={:?} elements={} element_validity={:?}",
            l.offsets,
            scalar(&l.elements),
            l.element_validity
        ),
    }
}

fn scalar(s: &ScalarData) -> String {
    match s {
        ScalarData::Boolean(v) => format!("bool {v:?}"),
        ScalarData::Int16(v) => format!("int16 {v:?}"),
        ScalarData::Int32(v) => format!("int32 {v:?}"),
        ScalarData::Int64(v) => format!("int64 {v:?}"),
        ScalarData::Uint32(v) => format!("uint32 {v:?}"),
        ScalarData::Float32(v) => format!("float32 {v:?}"),
        ScalarData::Float64(v) => format!("float64 {v:?}"),
        ScalarData::Decimal128(v) => {
            let values: Vec<i128> = v
                .chunks(16)
                .map(|c| i128::from_le_bytes(c.try_into().expect("16 bytes")))
                .collect();
            format!("decimal128 {values:?}")
        }
        ScalarData::Utf8(v) => {
            let values: Vec<&str> = v
                .offsets
                .windows(2)
                .map(|w| std::str::from_utf8(&v.data[w[0] as usize..w[1] as usize]).expect("utf8"))
                .collect();
            format!("utf8 {values:?}")
        }
        ScalarData::Binary(v) => format!("binary offsets={:?} data={:?}", v.offsets, v.data),
        ScalarData::FixedSizeBinary(v) => format!("fixed width={} bytes={}", v.width, v.data.len()),
        ScalarData::Date32(v) => format!("date32 {v:?}"),
        ScalarData::Time64(v) => format!("time64 {v:?}"),
        ScalarData::Timestamp(v) => format!("timestamp {v:?}"),
        ScalarData::Timestamptz(v) => format!("timestamptz {v:?}"),
        ScalarData::Interval(v) => format!(
            "interval {:?}",
            v.iter()
                .map(|i| (i.months, i.days, i.microseconds))
                .collect::<Vec<_>>()
        ),
    }
}
