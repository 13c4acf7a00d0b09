//! Database faults: a connection killed in the middle of a fetch, and bad input of every kind.
//! Each gives a clear error, leaves the cache as it was, and the next call works.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::time::Duration;

use pgcache::{Error, IncrementalOptions, QueryOptions, Value};
use pgcache_tests::{Scratch, connect, database_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_killed_mid_fetch_is_a_clear_error_and_the_cache_is_untouched() {
    let s = Scratch::new("killed").await;
    s.sql(
        "CREATE TABLE {s}.ev (id bigint PRIMARY KEY, v int); INSERT INTO {s}.ev SELECT g, g FROM generate_series(1, 1000) g;
         CREATE TABLE {s}.knob (slow bool); INSERT INTO {s}.knob VALUES (true);",
    )
    .await;
    // Rows past 1000 come slowly while the knob is on: the fetch is still running when killed.
    let sql = format!(
        "SELECT ev.* FROM {0}.ev AS ev WHERE pg_sleep(CASE WHEN ev.id > 1000 AND (SELECT slow FROM {0}.knob) THEN 0.001 ELSE 0 END) IS NOT NULL",
        s.schema
    );
    let db = s.db().await;
    db.incremental_query(&sql, &[], "id", &IncrementalOptions::default())
        .await
        .unwrap();
    let before = db.cache_stats().await.unwrap();
    s.sql("INSERT INTO {s}.ev SELECT g, g FROM generate_series(1001, 20000) g;")
        .await;

    let refresh = {
        let (db, sql) = (db.clone(), sql.clone());
        tokio::spawn(async move {
            db.incremental_query(&sql, &[], "id", &IncrementalOptions::default())
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killer = connect().await;
    let killed: i64 = killer
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = 'pgcache' AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(killed, 1, "the fetching backend was found and terminated");
    let err = refresh.await.unwrap().unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, Error::Connection { .. }) || err.sqlstate() == Some("57P01"),
        "a clear connection error: {err:?}"
    );
    assert!(text.contains("pg_sleep"), "names the statement: {text}");
    assert_eq!(
        db.cache_stats().await.unwrap().entries[0].rows,
        before.entries[0].rows,
        "the cache is untouched"
    );

    s.sql("UPDATE {s}.knob SET slow = false;").await;
    let r = db
        .incremental_query(&sql, &[], "id", &IncrementalOptions::default())
        .await
        .unwrap();
    assert_eq!(
        r.num_rows(),
        20_000,
        "the next call recovers without a restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_clear_error_and_runs_nothing_it_should_not() {
    let s = Scratch::new("bad_input").await;
    s.sql("CREATE TABLE {s}.t (id bigint, v text); INSERT INTO {s}.t VALUES (1, 'a'), (2, 'b');")
        .await;
    let db = s.db().await;
    let t = s.table("t");
    let count = || async { s.scalar::<i64>("SELECT count(*) FROM {s}.t").await };
    let opts = QueryOptions::default();
    let inc = IncrementalOptions::default();

    let err = db
        .query("SELEC * FROM nowhere", &[], &opts)
        .await
        .unwrap_err();
    assert_eq!(err.sqlstate(), Some("42601"), "{err}");
    assert!(
        err.db_error().unwrap().position.is_some(),
        "the server's position is kept"
    );

    for sql in [
        format!("SELECT * FROM {t}; DELETE FROM {t}"),
        format!("SELECT 1 AS x; DROP TABLE {t}"),
    ] {
        let err = db.query(&sql, &[], &opts).await.unwrap_err();
        assert_eq!(
            err.sqlstate(),
            Some("42601"),
            "several statements are refused: {err}"
        );
        let err = db
            .incremental_query(&sql, &[], "id", &inc)
            .await
            .unwrap_err();
        assert_eq!(err.sqlstate(), Some("42601"), "{err}");
    }
    assert_eq!(count().await, 2, "nothing was deleted or dropped");

    let sql = format!("SELECT * FROM {t}");
    for column in ["id\"; DROP TABLE x; --", "id) OR 1=1 --", "v' OR '1'='1"] {
        let err = db
            .incremental_query(&sql, &[], column, &inc)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::OrderColumnMissing { .. }),
            "{column}: {err:?}"
        );
        assert!(err.to_string().contains("its columns are: id, v"), "{err}");
    }
    assert_eq!(count().await, 2);

    let by_id = format!("SELECT * FROM {t} WHERE id = $1");
    let err = db
        .query(&by_id, &[Value::Text("x".into())], &opts)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"parameter $1 (int8): invalid input syntax for type bigint: "x""#
    );
    let err = db.query(&by_id, &[], &opts).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::ParameterCount {
                expected: 1,
                given: 0
            }
        ),
        "{err:?}"
    );
    let err = db
        .query(&by_id, &[Value::Int8(1), Value::Int8(2)], &opts)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ParameterCount {
                expected: 1,
                given: 2
            }
        ),
        "{err:?}"
    );
    let huge = Value::Text("x".repeat(65 << 20));
    let err = db
        .query(&format!("SELECT * FROM {t} WHERE v = $1"), &[huge], &opts)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("larger than the limit"), "{err}");
    assert_eq!(
        db.cache_stats().await.unwrap().total_files,
        0,
        "no failed call left an entry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_that_are_not_utf8_are_a_clear_error() {
    // A SQL_ASCII database stores text as raw bytes, valid UTF-8 or not. pgcache asks for
    // UTF-8; the server refuses to convert such bytes and says so, naming the byte.
    let name = format!("pgcache_sqlascii_{}", std::process::id());
    let admin = connect().await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .await
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {name} ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"))
        .await
        .unwrap();
    let url = url_with_database(database_url(), &name);
    let cache = tempfile::tempdir().unwrap();
    let db = pgcache::Db::connect(
        pgcache::Settings::from_url(&url)
            .unwrap()
            .with_cache_dir(cache.path()),
    )
    .await
    .unwrap();
    let err = db
        .query(
            "SELECT convert_from('\\xff61'::bytea, 'SQL_ASCII') AS raw",
            &[],
            &QueryOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.sqlstate(), Some("22021"), "{err}");
    assert!(
        err.to_string()
            .contains("invalid byte sequence for encoding \"UTF8\": 0xff"),
        "{err}"
    );
    assert_eq!(db.cache_stats().await.unwrap().total_files, 0);
    drop(db);
    tokio::time::sleep(Duration::from_millis(200)).await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .unwrap();
}

/// `url` with its database name replaced.
fn url_with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let base = match base.rfind('/') {
        Some(i) if i > base.find("//").map_or(0, |j| j + 1) => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}
