//! What a cache key must tell apart, and which incremental queries make sense: one cache
//! directory serves several databases and roles without mixing their rows, and queries whose
//! result is not a set that only grows are refused in incremental mode, naming the clause.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use pgcache::{Db, IncrementalOptions, Origin, QueryOptions, ResultSet};
use pgcache_tests::{Scratch, connect, database_url, ids};

fn first_text(r: &ResultSet, column: &str) -> String {
    let c = r.column(column).unwrap();
    arrow::array::AsArray::as_string::<i32>(&c)
        .value(0)
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cache_dir_two_databases_and_two_roles_never_mix() {
    let s = Scratch::new("keys_dbs").await;
    let other_db = format!("pgcache_keys_{}", std::process::id());
    let admin = connect().await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {other_db} WITH (FORCE)"))
        .await
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {other_db}"))
        .await
        .unwrap();
    let mut url = database_url().to_owned();
    let slash = url.rfind('/').unwrap();
    url.truncate(slash + 1);
    url.push_str(&other_db);
    let (b_client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let setup = |value: &str| {
        format!(
            "CREATE SCHEMA IF NOT EXISTS {0}; CREATE TABLE {0}.t (id bigint, x text);
             INSERT INTO {0}.t SELECT g, '{value}' FROM generate_series(1, 5) g;",
            s.schema
        )
    };
    s.sql(&setup("from a")).await;
    b_client.batch_execute(&setup("from b")).await.unwrap();

    let a = s.db().await;
    let b = Db::connect(
        pgcache::Settings::from_url(&url)
            .unwrap()
            .with_cache_dir(s.cache.path()),
    )
    .await
    .unwrap();
    let sql = format!("SELECT id, x FROM {}.t", s.schema);
    let ra = a.query(&sql, &[], &QueryOptions::default()).await.unwrap();
    let rb = b.query(&sql, &[], &QueryOptions::default()).await.unwrap();
    assert_eq!(first_text(&ra, "x"), "from a");
    assert_eq!(
        rb.origin(),
        Origin::Stored,
        "database b's query is not a's hit"
    );
    assert_eq!(first_text(&rb, "x"), "from b");

    // Incremental entries: refreshed against both, each keeps only its own rows.
    let inc = IncrementalOptions::default();
    a.incremental_query(&sql, &[], "id", &inc).await.unwrap();
    b.incremental_query(&sql, &[], "id", &inc).await.unwrap();
    b_client
        .batch_execute(&format!("INSERT INTO {}.t VALUES (6, 'from b')", s.schema))
        .await
        .unwrap();
    let ra = a.incremental_query(&sql, &[], "id", &inc).await.unwrap();
    let rb = b.incremental_query(&sql, &[], "id", &inc).await.unwrap();
    assert_eq!(ids(&ra), [1, 2, 3, 4, 5]);
    assert_eq!(ids(&rb), [1, 2, 3, 4, 5, 6]);

    // Another role over the same database and directory gets its own entries.
    let role_db = s.plugin_db().await;
    let r = role_db.query(&sql, &[], &QueryOptions::default()).await;
    match r {
        Ok(r) => assert_ne!(r.origin(), Origin::Hit, "another role's entry was served"),
        Err(e) => panic!("{e}"),
    }

    drop(b);
    drop(b_client);
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {other_db} WITH (FORCE)"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_mode_refuses_results_that_do_not_only_grow() {
    let s = Scratch::new("keys_grow").await;
    s.sql(
        "CREATE TABLE {s}.t (id bigint, dev int);
         INSERT INTO {s}.t SELECT g, g % 3 FROM generate_series(1, 20) g;",
    )
    .await;
    let db = s.db().await;
    let t = s.table("t");
    for (sql, clause) in [
        (
            format!("SELECT * FROM {t} ORDER BY id DESC LIMIT 10"),
            "LIMIT",
        ),
        (format!("SELECT * FROM {t} OFFSET 5"), "OFFSET"),
        (
            format!("SELECT dev, max(id) AS id FROM {t} GROUP BY dev"),
            "GROUP BY",
        ),
        (format!("SELECT max(id) AS id FROM {t}"), "aggregate (max)"),
        (
            format!("SELECT DISTINCT ON (dev) id, dev FROM {t}"),
            "DISTINCT",
        ),
        (
            format!("SELECT id, rank() OVER (ORDER BY dev) FROM {t}"),
            "window",
        ),
        (
            format!("SELECT * FROM (SELECT * FROM {t} LIMIT 3) s"),
            "LIMIT",
        ),
        (
            format!("SELECT id FROM {t} EXCEPT SELECT id FROM {t} WHERE dev = 1"),
            "EXCEPT",
        ),
    ] {
        let err = db
            .incremental_query(&sql, &[], "id", &IncrementalOptions::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(clause), "{sql}: {err}");
    }
    assert!(
        s.cache
            .path()
            .read_dir()
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().starts_with("cache_")),
        "nothing was stored"
    );
    // Growing sets still work, ORDER BY and UNION ALL included.
    let ok = db
        .incremental_query(
            &format!("SELECT id FROM {t} WHERE dev = 1 UNION ALL SELECT id FROM {t} WHERE dev = 2 ORDER BY 1 DESC"),
            &[],
            "id",
            &IncrementalOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(ok.num_rows(), 14);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_path_changed_on_the_server_means_other_entries() {
    let s = Scratch::new("keys_path").await;
    let other = format!("{}_b", s.schema);
    s.sql(&format!(
        "CREATE TABLE {{s}}.t (x text); INSERT INTO {{s}}.t VALUES ('first schema');
         DROP SCHEMA IF EXISTS {other} CASCADE; CREATE SCHEMA {other};
         CREATE TABLE {other}.t (x text); INSERT INTO {other}.t VALUES ('second schema');"
    ))
    .await;
    let role = s.plugin_role().await;
    s.sql(&format!(
        "GRANT USAGE ON SCHEMA {other} TO {role}; GRANT SELECT ON {other}.t TO {role};
         ALTER ROLE {role} SET search_path = {0}",
        s.schema
    ))
    .await;
    let settings = || {
        let mut settings = s.settings();
        settings.connection.user = Some(role.clone());
        settings
    };
    let first = Db::connect(settings()).await.unwrap();
    let r = first
        .query("SELECT x FROM t", &[], &QueryOptions::default())
        .await
        .unwrap();
    assert_eq!(first_text(&r, "x"), "first schema");

    s.sql(&format!("ALTER ROLE {role} SET search_path = {other}"))
        .await;
    let second = Db::connect(settings()).await.unwrap();
    let r = second
        .query("SELECT x FROM t", &[], &QueryOptions::default())
        .await
        .unwrap();
    assert_ne!(
        r.origin(),
        Origin::Hit,
        "the other schema's entry was served"
    );
    assert_eq!(first_text(&r, "x"), "second schema");
    s.sql(&format!("DROP SCHEMA {other} CASCADE")).await;
}
