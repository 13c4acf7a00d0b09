//! Rows whose ordering value was taken by a transaction that commits after a refresh already
//! saw larger values: with default settings they are not lost, and never doubled. Also the
//! xmin mode, which picks up updated rows by key. Transactions that prepare (two-phase
//! commit) between refreshes, and rows written in subtransactions, are late commits too.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use arrow::array::AsArray;
use arrow::datatypes::TimestampMicrosecondType;
use pgcache::{IncrementalOptions, ResultSet};
use pgcache_tests::{Scratch, connect, database_url, ids};

/// These tests hold transactions open on purpose, and what a refresh re-reads depends on the
/// oldest transaction open anywhere in the cluster (xmin mode reads every row version past it):
/// they run one at a time, so one test's open transaction never changes another's counts.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn refresh(db: &pgcache::Db, sql: &str, column: &str) -> ResultSet {
    db.incremental_query(sql, &[], column, &IncrementalOptions::default())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_from_a_transaction_that_commits_late_is_not_lost() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let s = Scratch::new("late_id").await;
    s.sql("CREATE TABLE {s}.ev (id bigserial PRIMARY KEY, who text); INSERT INTO {s}.ev (who) SELECT 'seed' FROM generate_series(1, 10);")
        .await;
    let db = s.db().await;
    let sql = format!("SELECT id, who FROM {}", s.table("ev"));
    assert_eq!(refresh(&db, &sql, "id").await.num_rows(), 10);

    // Session A takes id 11 and holds its transaction open; B takes 12 and commits.
    let a = connect().await;
    a.batch_execute(&format!(
        "BEGIN; INSERT INTO {} (who) VALUES ('A')",
        s.table("ev")
    ))
    .await
    .unwrap();
    s.sql("INSERT INTO {s}.ev (who) VALUES ('B');").await;
    let seen = refresh(&db, &sql, "id").await;
    assert_eq!(
        ids(&seen),
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12],
        "A's row is not visible yet"
    );

    a.batch_execute("COMMIT").await.unwrap();
    let after = refresh(&db, &sql, "id").await;
    assert_eq!(
        ids(&after),
        (1..=12).collect::<Vec<_>>(),
        "A's row arrived, once, in order"
    );
    // And stays exactly once through later refreshes.
    s.sql("INSERT INTO {s}.ev (who) VALUES ('C');").await;
    let later = refresh(&db, &sql, "id").await;
    assert_eq!(ids(&later), (1..=13).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_taken_before_the_insert_is_not_lost_either() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    // A takes its id with nextval() and inserts only later: until then it has no transaction
    // id at all, only a virtual one.
    let s = Scratch::new("late_nextval").await;
    s.sql("CREATE TABLE {s}.ev (id bigint PRIMARY KEY, who text); CREATE SEQUENCE {s}.ids; INSERT INTO {s}.ev SELECT nextval('{s}.ids'), 'seed' FROM generate_series(1, 5);")
        .await;
    let db = s.db().await;
    let sql = format!("SELECT id, who FROM {}", s.table("ev"));
    refresh(&db, &sql, "id").await;

    let a = connect().await;
    a.batch_execute(&format!("BEGIN; SELECT nextval('{}')", s.table("ids")))
        .await
        .unwrap();
    s.sql("INSERT INTO {s}.ev VALUES (nextval('{s}.ids'), 'B');")
        .await;
    assert_eq!(ids(&refresh(&db, &sql, "id").await), [1, 2, 3, 4, 5, 7]);
    a.batch_execute(&format!(
        "INSERT INTO {} VALUES (6, 'A'); COMMIT",
        s.table("ev")
    ))
    .await
    .unwrap();
    assert_eq!(ids(&refresh(&db, &sql, "id").await), [1, 2, 3, 4, 5, 6, 7]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timestamp_from_a_transaction_that_commits_late_is_not_lost() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let s = Scratch::new("late_ts").await;
    s.sql("CREATE TABLE {s}.ev (id bigserial, ts timestamptz NOT NULL DEFAULT now(), who text); INSERT INTO {s}.ev (who) VALUES ('seed');")
        .await;
    let db = s.db().await;
    let sql = format!("SELECT id, ts, who FROM {}", s.table("ev"));
    refresh(&db, &sql, "ts").await;

    // A's now() is its transaction's start; B starts later, commits first.
    let a = connect().await;
    a.batch_execute(&format!(
        "BEGIN; SELECT now(); INSERT INTO {} (who) VALUES ('A')",
        s.table("ev")
    ))
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    s.sql("INSERT INTO {s}.ev (who) VALUES ('B');").await;
    assert_eq!(refresh(&db, &sql, "ts").await.num_rows(), 2);
    a.batch_execute("COMMIT").await.unwrap();
    let after = refresh(&db, &sql, "ts").await;
    let who = after.column("who").unwrap();
    let who: Vec<&str> = who.as_string::<i32>().iter().map(|w| w.unwrap()).collect();
    assert_eq!(
        who,
        ["seed", "A", "B"],
        "A's row is in, once, in time order"
    );
    let ts = after.column("ts").unwrap();
    let ts = ts
        .as_primitive::<TimestampMicrosecondType>()
        .values()
        .to_vec();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refresh_report_shows_the_safe_value_held_back_while_a_transaction_is_open() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let s = Scratch::new("late_report").await;
    s.sql("CREATE TABLE {s}.ev (id bigserial PRIMARY KEY); INSERT INTO {s}.ev SELECT generate_series(1, 3);").await;
    let db = s.db().await;
    let sql = format!("SELECT id FROM {}", s.table("ev"));
    pgcache_tests::settle(&db, &sql, &[], "id", &IncrementalOptions::default()).await;
    let open = connect().await;
    open.batch_execute("BEGIN; SELECT txid_current()")
        .await
        .unwrap();
    s.sql("INSERT INTO {s}.ev VALUES (4), (5);").await;
    let r = refresh(&db, &sql, "id").await;
    let again = refresh(&db, &sql, "id").await;
    let (first, second) = (r.refresh_report().unwrap(), again.refresh_report().unwrap());
    assert_eq!(
        first.safe, second.safe,
        "an open transaction holds the safe value back"
    );
    assert!(
        second.rows_from_database >= 3,
        "so the rows above it are read again: {second:?}"
    );
    open.batch_execute("COMMIT").await.unwrap();
    let moved = pgcache_tests::settle(&db, &sql, &[], "id", &IncrementalOptions::default()).await;
    assert_eq!(
        moved.refresh_report().unwrap().safe,
        Some(pgcache::OrderValue::Int(5))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xmin_mode_picks_up_inserts_updates_and_late_commits_by_key() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let s = Scratch::new("xmin").await;
    s.sql(
        "CREATE TABLE {s}.dev (id bigint PRIMARY KEY, name text, km float8);
         INSERT INTO {s}.dev SELECT g, 'd' || g, 0 FROM generate_series(1, 1000) g;",
    )
    .await;
    let db = s.db().await;
    let sql = format!("SELECT xmin, * FROM {}", s.table("dev"));
    let xmin = IncrementalOptions::default().xmin();
    let first = db.incremental_query(&sql, &[], "id", &xmin).await.unwrap();
    assert_eq!(first.num_rows(), 1000);
    assert!(
        first.schema().field_with_name("xmin").is_err(),
        "xmin is not part of the result"
    );
    assert!(first.refresh_report().unwrap().full);

    // Updates of old rows, an insert, and a late commit that started before the refresh.
    let late = connect().await;
    late.batch_execute(&format!(
        "BEGIN; UPDATE {} SET km = 99 WHERE id = 500",
        s.table("dev")
    ))
    .await
    .unwrap();
    s.sql("UPDATE {s}.dev SET km = 1.5 WHERE id IN (3, 700); INSERT INTO {s}.dev VALUES (1001, 'new', 0);").await;
    let second = db.incremental_query(&sql, &[], "id", &xmin).await.unwrap();
    let report = second.refresh_report().unwrap();
    assert_eq!(
        report.rows_from_database, 3,
        "two updated rows and one new row, nothing else"
    );
    assert_eq!(second.num_rows(), 1001);
    late.batch_execute("COMMIT").await.unwrap();
    let third = db.incremental_query(&sql, &[], "id", &xmin).await.unwrap();
    let reread = third.refresh_report().unwrap().rows_from_database;
    assert!(
        (1..=10).contains(&reread),
        "the late update, and at most the few rows written since it began: {reread}"
    );

    let table = s
        .client
        .query(
            &format!("SELECT id, km FROM {} ORDER BY id", s.table("dev")),
            &[],
        )
        .await
        .unwrap();
    let cached_ids = ids(&third);
    let km = third.column("km").unwrap();
    let km = km.as_primitive::<arrow::datatypes::Float64Type>();
    assert_eq!(cached_ids.len(), table.len());
    for (i, row) in table.iter().enumerate() {
        assert_eq!(
            (cached_ids[i], km.value(i)),
            (row.get::<_, i64>(0), row.get::<_, f64>(1)),
            "row {i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xmin_mode_needs_the_xmin_column() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let s = Scratch::new("xmin_missing").await;
    s.sql("CREATE TABLE {s}.dev (id bigint PRIMARY KEY);").await;
    let db = s.db().await;
    let err = db
        .incremental_query(
            &format!("SELECT * FROM {}", s.table("dev")),
            &[],
            "id",
            &IncrementalOptions::default().xmin(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("SELECT xmin, * FROM t"), "{err}");
}

/// A prepared transaction (`PREPARE TRANSACTION`) that the test commits; if the test fails
/// before, it is rolled back so that it holds no locks and no other test waits for it.
struct Prepared {
    gid: String,
    done: bool,
}

impl Prepared {
    /// Prepares the transaction open on `client` under a name unique to this test.
    async fn prepare(client: &tokio_postgres::Client, name: &str) -> Prepared {
        let gid = format!("pgcache_test_{name}_{}", std::process::id());
        client
            .batch_execute(&format!("PREPARE TRANSACTION '{gid}'"))
            .await
            .unwrap();
        Prepared { gid, done: false }
    }

    async fn commit(mut self) {
        connect()
            .await
            .batch_execute(&format!("COMMIT PREPARED '{}'", self.gid))
            .await
            .unwrap();
        self.done = true;
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let gid = self.gid.clone();
        // From a thread of its own: Drop cannot await.
        let _ = std::thread::spawn(move || {
            if let Some(mut c) = BlockingClient::connect() {
                let _ = c.batch_execute(&format!("ROLLBACK PREPARED '{gid}'"));
            }
        })
        .join();
    }
}

/// The smallest blocking client: a runtime of its own around a tokio-postgres client.
struct BlockingClient {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl BlockingClient {
    fn connect() -> Option<BlockingClient> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        let client = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(database_url(), tokio_postgres::NoTls)
                .await
                .ok()?;
            tokio::spawn(conn);
            Some(client)
        })?;
        Some(BlockingClient { rt, client })
    }

    fn batch_execute(&mut self, sql: &str) -> Result<(), tokio_postgres::Error> {
        self.rt.block_on(self.client.batch_execute(sql))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_of_a_transaction_that_prepares_between_refreshes_is_not_lost() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    // Issue 11: A takes id 11, then runs PREPARE TRANSACTION between two refreshes. Its
    // virtual transaction id vanishes at PREPARE, but it has not committed: only COMMIT
    // PREPARED makes id 11 visible, and the refreshes must wait for that.
    let s = Scratch::new("late_prepared").await;
    s.sql("CREATE TABLE {s}.ev (id bigserial PRIMARY KEY, who text); INSERT INTO {s}.ev (who) SELECT 'seed' FROM generate_series(1, 10);")
        .await;
    let db = s.db().await;
    let sql = format!("SELECT id, who FROM {}", s.table("ev"));
    pgcache_tests::settle(&db, &sql, &[], "id", &IncrementalOptions::default()).await;

    let a = connect().await;
    a.batch_execute(&format!(
        "BEGIN; INSERT INTO {} (who) VALUES ('A')",
        s.table("ev")
    ))
    .await
    .unwrap();
    s.sql("INSERT INTO {s}.ev (who) VALUES ('B');").await;
    assert_eq!(
        ids(&refresh(&db, &sql, "id").await),
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12]
    );
    let prepared = Prepared::prepare(&a, "late_prepared").await;
    let between = refresh(&db, &sql, "id").await;
    assert_eq!(ids(&between), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12]);
    assert_ne!(
        between.refresh_report().unwrap().safe,
        Some(pgcache::OrderValue::Int(12)),
        "the prepared transaction still holds the safe value back"
    );
    prepared.commit().await;
    let after = refresh(&db, &sql, "id").await;
    assert_eq!(
        ids(&after),
        (1..=12).collect::<Vec<_>>(),
        "id 11 arrived, once"
    );
    let settled = pgcache_tests::settle(&db, &sql, &[], "id", &IncrementalOptions::default()).await;
    assert_eq!(ids(&settled), (1..=12).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_without_an_xid_at_a_refresh_that_later_prepares_is_waited_for() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    // A's now() is fixed at its start, before B's row; A writes nothing until after the
    // refresh, so at the refresh it has no xid yet. It then inserts and prepares: its row,
    // committed later, must still come in.
    let s = Scratch::new("late_prepared_noxid").await;
    s.sql("CREATE TABLE {s}.ev (id bigserial, ts timestamptz NOT NULL DEFAULT now(), who text); INSERT INTO {s}.ev (who) VALUES ('seed');")
        .await;
    let db = s.db().await;
    let sql = format!("SELECT id, ts, who FROM {}", s.table("ev"));
    pgcache_tests::settle(&db, &sql, &[], "ts", &IncrementalOptions::default()).await;

    let a = connect().await;
    a.batch_execute("BEGIN; SELECT now()").await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    s.sql("INSERT INTO {s}.ev (who) VALUES ('B');").await;
    assert_eq!(refresh(&db, &sql, "ts").await.num_rows(), 2);
    a.batch_execute(&format!("INSERT INTO {} (who) VALUES ('A')", s.table("ev")))
        .await
        .unwrap();
    let prepared = Prepared::prepare(&a, "late_prepared_noxid").await;
    assert_eq!(refresh(&db, &sql, "ts").await.num_rows(), 2);
    prepared.commit().await;
    let after = refresh(&db, &sql, "ts").await;
    let who = after.column("who").unwrap();
    let who: Vec<&str> = who.as_string::<i32>().iter().map(|w| w.unwrap()).collect();
    assert_eq!(
        who,
        ["seed", "A", "B"],
        "A's row is in, once, in time order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xmin_mode_reads_rows_written_in_subtransactions_of_a_late_transaction() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    // Rows written inside a SAVEPOINT or a PL/pgSQL EXCEPTION block carry a subtransaction's
    // id as xmin, which snapshots do not list.
    let s = Scratch::new("xmin_subxact").await;
    s.sql(
        "CREATE TABLE {s}.dev (id bigint PRIMARY KEY, note text);
         INSERT INTO {s}.dev SELECT g, 'seed' FROM generate_series(1, 100) g;",
    )
    .await;
    let db = s.db().await;
    let sql = format!("SELECT xmin, * FROM {}", s.table("dev"));
    let xmin = IncrementalOptions::default().xmin();
    db.incremental_query(&sql, &[], "id", &xmin).await.unwrap();

    let late = connect().await;
    late.batch_execute(&format!(
        "BEGIN;
         UPDATE {t} SET note = 'top' WHERE id = 1;
         SAVEPOINT s1;
         INSERT INTO {t} VALUES (101, 'savepoint');
         UPDATE {t} SET note = 'savepoint' WHERE id = 2;
         RELEASE SAVEPOINT s1;
         DO $$ BEGIN
           BEGIN
             INSERT INTO {t} VALUES (102, 'exception block');
           EXCEPTION WHEN unique_violation THEN NULL;
           END;
         END $$;",
        t = s.table("dev")
    ))
    .await
    .unwrap();
    s.sql("INSERT INTO {s}.dev VALUES (103, 'other');").await;
    let during = db.incremental_query(&sql, &[], "id", &xmin).await.unwrap();
    assert_eq!(
        during.num_rows(),
        101,
        "only the other session's row is visible"
    );
    late.batch_execute("COMMIT").await.unwrap();
    let after = db.incremental_query(&sql, &[], "id", &xmin).await.unwrap();

    let table = s
        .client
        .query(
            &format!("SELECT id, note FROM {} ORDER BY id", s.table("dev")),
            &[],
        )
        .await
        .unwrap();
    let cached_ids = ids(&after);
    let notes = after.column("note").unwrap();
    let notes = notes.as_string::<i32>();
    let cached: Vec<(i64, String)> = cached_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, notes.value(i).to_owned()))
        .collect();
    let expected: Vec<(i64, String)> = table.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(cached, expected, "every row of the late transaction, once");
    assert_eq!(expected.len(), 103);
}
