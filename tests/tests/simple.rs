//! The simple cache: hits answer without the database, misses store, no-cache bypasses,
//! max-age expires, keys separate parameters, collisions are never served, and concurrent
//! misses share one fetch.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::time::Duration;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use pgcache::{Db, Origin, QueryOptions, ResultSet, Settings, Value};
use pgcache_tests::Scratch;

fn ints(result: &ResultSet, column: &str) -> Vec<i64> {
    let array = result.column(column).unwrap();
    array.as_primitive::<Int64Type>().values().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hit_needs_no_database_at_all() {
    let s = Scratch::new("hit_offline").await;
    s.sql("CREATE TABLE {s}.t (id bigint); INSERT INTO {s}.t SELECT generate_series(1, 100);")
        .await;
    let sql = format!("SELECT id FROM {} WHERE id <= $1 ORDER BY id", s.table("t"));
    // The database is reached through a proxy that is then shut: the same server, database
    // and role (so the same keys), but any round trip would fail.
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = proxy.local_addr().unwrap().port();
    let forward = tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = proxy.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (host, server_port) = pgcache_tests::server_address();
                let mut outbound = tokio::net::TcpStream::connect((host.as_str(), server_port))
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    let url = pgcache_tests::url_with_port(port);
    let settings = || {
        Settings::from_url(&url)
            .unwrap()
            .with_cache_dir(s.cache.path())
    };
    let stored = Db::connect(settings())
        .await
        .unwrap()
        .query(&sql, &[Value::Int8(50)], &QueryOptions::default())
        .await
        .unwrap();
    assert_eq!(stored.origin(), Origin::Stored);
    assert_eq!(stored.num_rows(), 50);
    forward.abort();
    let _ = forward.await;

    let db = Db::connect_lazy(settings()).unwrap();
    let hit = db
        .query(&sql, &[Value::Int8(50)], &QueryOptions::default())
        .await
        .unwrap();
    assert_eq!(hit.origin(), Origin::Hit);
    assert_eq!(ints(&hit, "id"), (1..=50).collect::<Vec<_>>());
    // A different parameter is a different entry: a miss, which needs the (absent) server.
    let err = db
        .query(&sql, &[Value::Int8(51)], &QueryOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&format!(":{port}")), "{err}");
    assert_eq!(db.cache_stats().await.unwrap().entries[0].hits, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cache_bypasses_and_leaves_the_cache_alone() {
    let s = Scratch::new("no_cache").await;
    s.sql("CREATE TABLE {s}.t (id bigint); INSERT INTO {s}.t VALUES (1);")
        .await;
    let db = s.db().await;
    let sql = format!("SELECT count(*) AS n FROM {}", s.table("t"));
    assert_eq!(
        ints(
            &db.query(&sql, &[], &QueryOptions::default()).await.unwrap(),
            "n"
        ),
        [1]
    );
    let before = db.cache_stats().await.unwrap();

    s.sql("INSERT INTO {s}.t VALUES (2);").await;
    let fresh = db
        .query(&sql, &[], &QueryOptions::default().no_cache())
        .await
        .unwrap();
    assert_eq!(fresh.origin(), Origin::Uncached);
    assert_eq!(ints(&fresh, "n"), [2]);
    assert_eq!(
        db.cache_stats().await.unwrap(),
        before,
        "bypassing must not touch the cache"
    );
    // The cached answer is still the old one.
    assert_eq!(
        ints(
            &db.query(&sql, &[], &QueryOptions::default()).await.unwrap(),
            "n"
        ),
        [1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_age_makes_old_entries_misses() {
    let s = Scratch::new("max_age").await;
    s.sql("CREATE TABLE {s}.t (id bigint); INSERT INTO {s}.t VALUES (1);")
        .await;
    let db = s.db().await;
    let sql = format!("SELECT count(*) AS n FROM {}", s.table("t"));
    db.query(&sql, &[], &QueryOptions::default()).await.unwrap();
    s.sql("INSERT INTO {s}.t VALUES (2);").await;
    let young = db
        .query(
            &sql,
            &[],
            &QueryOptions::default().max_age(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    assert_eq!((young.origin(), ints(&young, "n")), (Origin::Hit, vec![1]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let old = db
        .query(
            &sql,
            &[],
            &QueryOptions::default().max_age(Duration::from_millis(200)),
        )
        .await
        .unwrap();
    assert_eq!((old.origin(), ints(&old, "n")), (Origin::Stored, vec![2]));
    assert_eq!(
        db.cache_stats().await.unwrap().total_files,
        1,
        "the refetch replaces the entry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equivalent_spellings_share_an_entry_and_parameters_do_not() {
    let s = Scratch::new("keys").await;
    let db = s.db().await;
    db.query(
        "SELECT $1::int8 AS v",
        &[Value::Int8(1)],
        &QueryOptions::default(),
    )
    .await
    .unwrap();
    let same = db
        .query(
            "SELECT   $1::int8 AS v -- same\n;",
            &[Value::Int8(1)],
            &QueryOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(same.origin(), Origin::Hit);
    let other = db
        .query(
            "SELECT $1::int8 AS v",
            &[Value::Int8(2)],
            &QueryOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        (other.origin(), ints(&other, "v")),
        (Origin::Stored, vec![2])
    );
    // The text "1" is another parameter than the integer 1, though the server reads both as 1.
    let text = db
        .query(
            "SELECT $1::int8 AS v",
            &[Value::Text("1".into())],
            &QueryOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!((text.origin(), ints(&text, "v")), (Origin::Stored, vec![1]));
    assert_eq!(db.cache_stats().await.unwrap().total_files, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_collision_is_detected_and_never_served() {
    let s = Scratch::new("collision").await;
    let db = s.db().await;
    let first = db
        .query("SELECT 1::int8 AS v", &[], &QueryOptions::default())
        .await
        .unwrap();
    let name = first.entry_name().unwrap().to_owned();
    // Make the entry belong to another key with the same 12-hex prefix, as a real collision would.
    let manifest_path = s.cache.path().join(&name).join("_manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let key = manifest["key"].as_str().unwrap().to_owned();
    let forged = format!("{}{}", &key[..12], "0".repeat(52));
    assert_ne!(forged, key);
    manifest["key"] = forged.clone().into();
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();

    let again = db
        .query("SELECT 1::int8 AS v", &[], &QueryOptions::default())
        .await
        .unwrap();
    assert_eq!(
        again.origin(),
        Origin::Stored,
        "another key's entry must not be served"
    );
    let longer = again.entry_name().unwrap();
    assert!(
        longer.starts_with(&name) && longer.len() > name.len(),
        "{longer}"
    );
    assert_eq!(ints(&again, "v"), [1]);
    // Both entries are there, and the next call is a hit on the longer name.
    let stats = db.cache_stats().await.unwrap();
    assert_eq!(stats.total_files, 2);
    let hit = db
        .query("SELECT 1::int8 AS v", &[], &QueryOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (hit.origin(), hit.entry_name()),
        (Origin::Hit, Some(longer))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_misses_share_one_fetch() {
    let s = Scratch::new("single_flight").await;
    s.sql("CREATE SEQUENCE {s}.calls;").await;
    let db = s.db().await;
    // Each execution of this query advances the sequence: it counts fetches.
    let sql = format!(
        "SELECT nextval('{}') AS n, pg_sleep(0.2) IS NULL AS slept",
        s.table("calls")
    );
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (db, sql) = (db.clone(), sql.clone());
            tokio::spawn(
                async move { db.query(&sql, &[], &QueryOptions::default()).await.unwrap() },
            )
        })
        .collect();
    let mut values = Vec::new();
    for t in tasks {
        values.push(ints(&t.await.unwrap(), "n")[0]);
    }
    assert!(
        values.iter().all(|v| *v == 1),
        "every caller got the one fetch: {values:?}"
    );
    let fetches: i64 = s.scalar("SELECT last_value FROM {s}.calls").await;
    assert_eq!(fetches, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_columns_are_kept_between_reads_and_never_stale() {
    let s = Scratch::new("hot_columns").await;
    s.sql("CREATE TABLE {s}.t (id bigint); INSERT INTO {s}.t SELECT generate_series(1, 1000);")
        .await;
    let mut settings = s.settings();
    settings.cache.hot_bytes = 16 << 20;
    let db = Db::connect(settings).await.unwrap();
    let sql = format!("SELECT id FROM {}", s.table("t"));
    let first = db.query(&sql, &[], &QueryOptions::default()).await.unwrap();
    assert_eq!(db.hot_bytes(), 0);
    assert_eq!(ints(&first, "id").len(), 1000);
    let kept = db.hot_bytes();
    assert!(kept > 0, "the decoded column is kept");
    let again = db.query(&sql, &[], &QueryOptions::default()).await.unwrap();
    assert_eq!(again.origin(), Origin::Hit);
    assert_eq!(ints(&again, "id").len(), 1000);
    assert_eq!(
        db.hot_bytes(),
        kept,
        "the second read was served from memory"
    );

    // A refresh publishes new parts: their column is another key, never the stale one.
    let inc = pgcache::IncrementalOptions::default();
    assert_eq!(
        ints(
            &db.incremental_query(&sql, &[], "id", &inc).await.unwrap(),
            "id"
        )
        .len(),
        1000
    );
    s.sql("INSERT INTO {s}.t VALUES (1001)").await;
    let refreshed = db.incremental_query(&sql, &[], "id", &inc).await.unwrap();
    let ids = ints(&refreshed, "id");
    assert_eq!(ids.len(), 1001);
    assert_eq!(ids.last(), Some(&1001));
}
