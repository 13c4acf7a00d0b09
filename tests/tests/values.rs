//! Values as PostgreSQL means them, in and out: `-p` text read by the server's own input
//! functions in the session's time zone and keyed as the server reads it; JSON output with the
//! stored JSON text, the column order and every column; floats in their shortest form; values
//! Arrow cannot hold exactly refused by name instead of changed.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::process::{Command, Output};

use pgcache::{Db, Origin, QueryOptions, Settings, Value};
use pgcache_tests::{Scratch, database_url, pgcache_bin};

/// The test database URL, logged in as `role` (the test server trusts local logins).
fn url_as(role: &str) -> String {
    let url = database_url();
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = match rest.split_once('@') {
        Some((_, host)) if !rest[..rest.find('@').unwrap()].contains('/') => host,
        _ => rest,
    };
    format!("{scheme}://{role}@{host}")
}

/// A login role whose sessions run in a time zone of its own, dropped on drop (also when the
/// test fails).
struct ZoneRole {
    name: String,
}

impl ZoneRole {
    async fn create(s: &Scratch, zone: &str) -> ZoneRole {
        let name = format!("{}_tz", s.schema);
        s.sql(&format!(
            "DROP ROLE IF EXISTS {name}; CREATE ROLE {name} LOGIN;
             ALTER ROLE {name} SET TimeZone = '{zone}';"
        ))
        .await;
        ZoneRole { name }
    }
}

impl Drop for ZoneRole {
    fn drop(&mut self) {
        let name = self.name.clone();
        // From a thread of its own: Drop cannot await. Sessions of the role may take a moment
        // to end.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let client = pgcache_tests::connect().await;
                for _ in 0..50 {
                    let drop = format!("DROP ROLE IF EXISTS {name}");
                    if client.batch_execute(&drop).await.is_ok() {
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            });
        })
        .join();
    }
}

/// `pgcache --database-url URL --cache-dir DIR query ARGS...`.
fn pgcache_query(url: &str, cache: &std::path::Path, args: &[&str]) -> Output {
    Command::new(pgcache_bin())
        .args(["--database-url", url, "--cache-dir"])
        .arg(cache)
        .arg("query")
        .args(args)
        .output()
        .unwrap()
}

fn stdout_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "pgcache failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p_values_are_read_by_the_servers_input_functions_in_the_session_time_zone() {
    let s = Scratch::new("p_read").await;
    let zone = ZoneRole::create(&s, "America/New_York").await;
    let role = zone.name.clone();
    let cache = tempfile::tempdir().unwrap();
    let out = pgcache_query(
        &url_as(&role),
        cache.path(),
        &[
            "SELECT $1::timestamptz AS local_zone, $2::timestamp AS offset_ignored, \
             ($3::time)::text AS end_of_day, $4::date AS words, $5::timestamptz AS zone_name, \
             $6::interval AS span",
            "-p",
            "2024-01-05 10:00",
            "-p",
            "2024-01-05 10:00+02",
            "-p",
            "24:00:00",
            "-p",
            "Jan 5 2024",
            "-p",
            "2024-07-05 10:00 Europe/Lisbon",
            "-p",
            "1 day 2 hours ago",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        stdout_of(&out),
        concat!(
            r#"{"local_zone":"2024-01-05T15:00:00.000000Z","offset_ignored":"2024-01-05T10:00:00.000000","#,
            r#""end_of_day":"24:00:00","words":"2024-01-05","zone_name":"2024-07-05T09:00:00.000000Z","#,
            r#""span":"-1 days -02:00:00.000000"}"#,
            "\n"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_follows_the_value_the_server_reads_not_the_text() {
    let s = Scratch::new("p_key").await;
    let zone = ZoneRole::create(&s, "America/New_York").await;
    let role = zone.name.clone();
    let cache = tempfile::tempdir().unwrap();
    let at = |url: &str| {
        Db::connect_lazy(
            Settings::from_url(url)
                .unwrap()
                .with_cache_dir(cache.path()),
        )
        .unwrap()
    };
    let sql = "SELECT $1::timestamptz AS t";
    let ask = |db: Db, text: &'static str| async move {
        let r = db
            .query(sql, &[Value::Text(text.into())], &QueryOptions::default())
            .await
            .unwrap();
        let t = pgcache::text::rfc3339(
            r.column("t")
                .unwrap()
                .as_any()
                .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
                .unwrap()
                .value(0),
            true,
        );
        (r.origin(), t)
    };
    let new_york = at(&url_as(&role));
    assert_eq!(
        ask(new_york.clone(), "2024-01-05 10:00").await,
        (Origin::Stored, "2024-01-05T15:00:00.000000Z".to_owned())
    );
    // Another spelling of the same instant: the same entry.
    assert_eq!(
        ask(new_york.clone(), "2024-01-05T15:00:00Z").await,
        (Origin::Hit, "2024-01-05T15:00:00.000000Z".to_owned())
    );
    drop(new_york);
    // The same login and the same text, now read in another time zone: another instant,
    // another entry, never the stored one.
    s.sql(&format!("ALTER ROLE {role} SET TimeZone = 'Asia/Tokyo'"))
        .await;
    let tokyo = at(&url_as(&role));
    assert_eq!(
        ask(tokyo.clone(), "2024-01-05 10:00").await,
        (Origin::Stored, "2024-01-05T01:00:00.000000Z".to_owned())
    );
    assert_eq!(tokyo.cache_stats().await.unwrap().total_files, 2);
    drop(tokyo);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_text_value_names_placeholder_type_and_the_servers_message() {
    let s = Scratch::new("p_bad").await;
    let db = s.db().await;
    let err = db
        .query(
            "SELECT $1::int4 + 1 AS n, $2::date AS d",
            &[Value::Text("7".into()), Value::Text("soon".into())],
            &QueryOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"parameter $2 (date): invalid input syntax for type date: "soon""#
    );
    let err = db
        .execute("SELECT $1::int4", &[Value::Text("x".into())])
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"parameter $1 (int4): invalid input syntax for type integer: "x""#
    );
    assert_eq!(db.cache_stats().await.unwrap().total_files, 0);

    let cache = tempfile::tempdir().unwrap();
    let out = pgcache_query(
        database_url(),
        cache.path(),
        &["SELECT $1::int2 AS n", "-p", "70000"],
    );
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "pgcache: parameter $1 (int2): value \"70000\" is out of range for type smallint\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_embeds_stored_json_in_column_order_with_every_column() {
    let s = Scratch::new("json_out").await;
    let _ = &s;
    let cache = tempfile::tempdir().unwrap();
    let doc = r#"'{"n": 12345678901234567890123, "b": 1, "b": 2}'"#;
    // Cached: read back from Parquet.
    let cached = pgcache_query(
        database_url(),
        cache.path(),
        &[
            &format!(
                "SELECT 2 AS z, {doc}::json AS doc, {doc}::jsonb AS jb, \
                 '[1.50, 1e400]'::json AS arr, 1 AS a"
            ),
            "--format",
            "json",
        ],
    );
    assert_eq!(
        stdout_of(&cached),
        concat!(
            r#"{"z":2,"doc":{"n": 12345678901234567890123, "b": 1, "b": 2},"#,
            r#""jb":{"b": 2, "n": 12345678901234567890123},"arr":[1.50, 1e400],"a":1}"#,
            "\n"
        )
    );
    // Uncached, a repeated name keeps both columns.
    let repeated = pgcache_query(
        database_url(),
        cache.path(),
        &[
            "SELECT 1 AS a, 2 AS a, 3 AS b, 4 AS a",
            "--no-cache",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        stdout_of(&repeated),
        "{\"a\":1,\"a_2\":2,\"b\":3,\"a_3\":4}\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floats_print_in_their_shortest_exact_form() {
    let cache = tempfile::tempdir().unwrap();
    let sql = "SELECT 0.1::float4 AS f4, 1e6::float4 AS big4, 0.1::float8 AS f8, \
               1e20::float8 AS big8, 'NaN'::float4 AS nan";
    let csv = pgcache_query(database_url(), cache.path(), &[sql, "--format", "csv"]);
    assert_eq!(
        stdout_of(&csv),
        "f4,big4,f8,big8,nan\n0.1,1e+06,0.1,1e+20,NaN\n"
    );
    let json = pgcache_query(database_url(), cache.path(), &[sql, "--format", "json"]);
    assert_eq!(
        stdout_of(&json),
        "{\"f4\":0.1,\"big4\":1e+06,\"f8\":0.1,\"big8\":1e+20,\"nan\":\"NaN\"}\n"
    );
}
