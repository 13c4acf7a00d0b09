//! Text ordering columns in databases that are not UTF8: where the server's byte order and
//! pgcache's (UTF-8) agree the refresh works; where they differ, the error says so before
//! anything is stored.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use pgcache::{Db, IncrementalOptions, Settings};
use pgcache_tests::{connect, database_url};

/// A scratch database of `encoding` (C collation), dropped on drop.
struct Database {
    name: String,
}

impl Database {
    async fn create(encoding: &str) -> Database {
        let name = format!(
            "pgcache_enc_{}_{}",
            encoding.to_ascii_lowercase(),
            std::process::id()
        );
        let client = connect().await;
        // One statement each: neither may run inside a transaction block.
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .unwrap();
        client
            .batch_execute(&format!(
                "CREATE DATABASE {name} ENCODING '{encoding}' LC_COLLATE 'C' LC_CTYPE 'C' \
                 TEMPLATE template0"
            ))
            .await
            .unwrap();
        Database { name }
    }

    /// The test server's URL with this database.
    fn url(&self) -> String {
        let url = database_url();
        let (scheme, rest) = url.split_once("://").unwrap();
        let (host, query) = match rest.split_once('/') {
            Some((host, path)) => (host, path.split_once('?').map(|(_, q)| q)),
            None => (rest, None),
        };
        match query {
            Some(q) => format!("{scheme}://{host}/{}?{q}", self.name),
            None => format!("{scheme}://{host}/{}", self.name),
        }
    }

    /// A plain connection to it (client encoding UTF8), for setting up data.
    async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let _ = connect()
                    .await
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
            });
        })
        .join();
    }
}

fn names(result: &pgcache::ResultSet) -> Vec<String> {
    use arrow::array::AsArray;
    result
        .column("name")
        .unwrap()
        .as_string::<i32>()
        .iter()
        .map(|v| v.unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_ordering_in_a_non_utf8_database_names_the_encoding() {
    // WIN1252 puts the euro sign at 0x80, below é (0xE9); UTF-8 puts it above (E2 82 AC > C3 A9).
    let database = Database::create("WIN1252").await;
    database
        .client()
        .await
        .batch_execute("CREATE TABLE t (name text); INSERT INTO t VALUES ('a€'), ('aé'), ('b');")
        .await
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let db = Db::connect(
        Settings::from_url(&database.url())
            .unwrap()
            .with_cache_dir(cache.path()),
    )
    .await
    .unwrap();
    let err = db
        .incremental_query(
            "SELECT name FROM t",
            &[],
            "name",
            &IncrementalOptions::default(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(r#"ordering column "name" is text in a database encoded WIN1252"#),
        "{err}"
    );
    assert_eq!(db.cache_stats().await.unwrap().total_files, 0);
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_ordering_in_a_latin1_database_works() {
    // LATIN1's bytes are the code points, so its byte order is UTF-8's.
    let database = Database::create("LATIN1").await;
    let setup = database.client().await;
    setup
        .batch_execute("CREATE TABLE t (name text); INSERT INTO t VALUES ('é'), ('z'), ('abc');")
        .await
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let db = Db::connect(
        Settings::from_url(&database.url())
            .unwrap()
            .with_cache_dir(cache.path()),
    )
    .await
    .unwrap();
    let sql = "SELECT name FROM t";
    let first = db
        .incremental_query(sql, &[], "name", &IncrementalOptions::default())
        .await
        .unwrap();
    assert_eq!(names(&first), ["abc", "z", "é"]);
    setup
        .batch_execute("INSERT INTO t VALUES ('ÿ'), ('éz');")
        .await
        .unwrap();
    let second = db
        .incremental_query(sql, &[], "name", &IncrementalOptions::default())
        .await
        .unwrap();
    assert_eq!(names(&second), ["abc", "z", "é", "éz", "ÿ"]);
    drop(db);
}
