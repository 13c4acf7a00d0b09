//! What an incremental query refuses before it stores anything, because the mode asked for
//! would lose rows or silently ignore an option: ids from a sequence with a per-session cache
//! in the default mode, a lookback in the wrong unit, the default mode on a standby.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use pgcache::{Error, IncrementalOptions, Lookback};
use pgcache_tests::{Scratch, connect, ids, pgcache_bin};

async fn entries(db: &pgcache::Db) -> usize {
    db.cache_stats().await.unwrap().total_files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_with_a_cache_is_refused_in_the_default_mode() {
    let s = Scratch::new("seq_cache").await;
    s.sql(
        "CREATE TABLE {s}.serial_ev (id bigserial PRIMARY KEY, who text);
         ALTER SEQUENCE {s}.serial_ev_id_seq CACHE 20;
         CREATE TABLE {s}.identity_ev (id bigint GENERATED ALWAYS AS IDENTITY (CACHE 20), who text);
         CREATE SEQUENCE {s}.shared CACHE 5;
         CREATE TABLE {s}.default_ev (id bigint DEFAULT nextval('{s}.shared'), who text);
         CREATE TABLE {s}.plain_ev (id bigserial PRIMARY KEY, who text);
         INSERT INTO {s}.serial_ev (who) VALUES ('x');
         INSERT INTO {s}.identity_ev (who) VALUES ('x');
         INSERT INTO {s}.default_ev (who) VALUES ('x');
         INSERT INTO {s}.plain_ev (who) VALUES ('x');",
    )
    .await;
    let db = s.db().await;
    for (table, sequence) in [
        ("serial_ev", "serial_ev_id_seq"),
        ("identity_ev", "identity_ev_id_seq"),
        ("default_ev", "shared"),
    ] {
        let stored = entries(&db).await;
        // Also through a renamed column of a subquery: the server says where it comes from.
        for (sql, column) in [
            (format!("SELECT id, who FROM {}", s.table(table)), "id"),
            (
                format!(
                    "SELECT * FROM (SELECT id AS n, who FROM {}) q",
                    s.table(table)
                ),
                "n",
            ),
        ] {
            let err = db
                .incremental_query(&sql, &[], column, &IncrementalOptions::default())
                .await
                .unwrap_err();
            assert!(
                matches!(err, Error::IncrementalRefused { .. }),
                "{table}: {err}"
            );
            let message = err.to_string();
            for needle in [sequence, "--lookback", "xmin mode", "CACHE"] {
                assert!(message.contains(needle), "{table}: {needle} in {message}");
            }
        }
        assert_eq!(entries(&db).await, stored, "{table}: nothing stored");
        // A lookback or xmin mode keeps such a table.
        let sql = format!("SELECT id, who FROM {}", s.table(table));
        let with_lookback = IncrementalOptions::default().lookback(Lookback::Amount(1000));
        assert_eq!(
            db.incremental_query(&sql, &[], "id", &with_lookback)
                .await
                .unwrap()
                .num_rows(),
            1
        );
        let xmin_sql = format!("SELECT xmin, id, who FROM {}", s.table(table));
        let xmin = IncrementalOptions::default().xmin();
        db.incremental_query(&xmin_sql, &[], "id", &xmin)
            .await
            .unwrap();
    }
    // A sequence without a cache is what the default mode protects.
    let plain = format!("SELECT id, who FROM {}", s.table("plain_ev"));
    db.incremental_query(&plain, &[], "id", &IncrementalOptions::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookback_keeps_the_rows_a_cached_sequence_hands_out_late() {
    // Issue 11: with CACHE 20, session A inserts id 1, B inserts id 21, a refresh runs with
    // nothing in flight, then A inserts id 2 — below what the refresh read.
    let s = Scratch::new("seq_cache_lookback").await;
    s.sql(
        "CREATE TABLE {s}.ev (id bigserial PRIMARY KEY, who text);
         ALTER SEQUENCE {s}.ev_id_seq CACHE 20;",
    )
    .await;
    let db = s.db().await;
    let sql = format!("SELECT id, who FROM {}", s.table("ev"));
    let (a, b) = (connect().await, connect().await);
    let insert =
        |who: &'static str| format!("INSERT INTO {} (who) VALUES ('{who}')", s.table("ev"));
    a.batch_execute(&insert("A")).await.unwrap();
    b.batch_execute(&insert("B")).await.unwrap();
    let options = IncrementalOptions::default().lookback(Lookback::Amount(100));
    let first = pgcache_tests::settle(&db, &sql, &[], "id", &options).await;
    assert_eq!(ids(&first), [1, 21]);
    a.batch_execute(&insert("A")).await.unwrap();
    let next = db
        .incremental_query(&sql, &[], "id", &options)
        .await
        .unwrap();
    assert_eq!(ids(&next), [1, 2, 21]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookback_in_the_wrong_unit_is_an_error_before_anything_is_stored() {
    let s = Scratch::new("lookback_unit").await;
    s.sql(
        "CREATE TABLE {s}.ev (id integer, n numeric(12,2), ts timestamptz, d date, label text);
         INSERT INTO {s}.ev VALUES (1, 1.5, now(), current_date, 'a');",
    )
    .await;
    let db = s.db().await;
    let sql = format!("SELECT * FROM {}", s.table("ev"));
    let seconds = Lookback::Amount(3600);
    let two_hours = Lookback::Micros(2 * 3600 * 1_000_000);
    for (column, lookback, type_name, expected) in [
        ("ts", seconds, "timestamptz", "2h"),
        ("d", seconds, "date", "2h"),
        ("id", two_hours, "int4", "plain amount"),
        ("n", two_hours, "numeric", "plain amount"),
        ("label", seconds, "text", "no lookback"),
    ] {
        let options = IncrementalOptions::default().lookback(lookback);
        let err = db
            .incremental_query(&sql, &[], column, &options)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::LookbackUnit { .. }), "{column}: {err}");
        let message = err.to_string();
        assert!(
            message.contains(type_name) && message.contains(expected),
            "{column}: {message}"
        );
    }
    // xmin mode re-reads by transaction id: a lookback there would do nothing.
    let xmin = IncrementalOptions::default()
        .xmin()
        .lookback(Lookback::Amount(10));
    let xmin_sql = format!("SELECT xmin, * FROM {}", s.table("ev"));
    let err = db
        .incremental_query(&xmin_sql, &[], "id", &xmin)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LookbackUnit { .. }), "{err}");
    assert_eq!(entries(&db).await, 0, "nothing stored");

    // The right units work.
    for (column, lookback) in [("ts", two_hours), ("d", two_hours), ("id", seconds)] {
        let options = IncrementalOptions::default().lookback(lookback);
        db.incremental_query(&sql, &[], column, &options)
            .await
            .unwrap();
    }

    // And the command line says the same, exiting non-zero.
    let out = std::process::Command::new(pgcache_bin())
        .args(["--cache-dir"])
        .arg(s.cache.path().join("cli"))
        .args(["--database-url", pgcache_tests::database_url()])
        .args(["query", &sql, "--incremental", "ts", "--lookback", "3600"])
        .args(["--format", "none"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("timestamptz") && stderr.contains("2h"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_mode_runs_on_a_primary() {
    // The refusal on a standby is proven by `standby.rs` (and the decision by a unit test in
    // `incremental::checks`); this proves the check lets a primary through.
    let s = Scratch::new("primary").await;
    s.sql("CREATE TABLE {s}.ev (id bigserial PRIMARY KEY); INSERT INTO {s}.ev DEFAULT VALUES;")
        .await;
    let in_recovery: bool = s.scalar("SELECT pg_is_in_recovery()").await;
    assert!(!in_recovery);
    let db = s.db().await;
    let sql = format!("SELECT id FROM {}", s.table("ev"));
    db.incremental_query(&sql, &[], "id", &IncrementalOptions::default())
        .await
        .unwrap();
}
