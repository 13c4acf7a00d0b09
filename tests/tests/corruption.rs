//! Damaged entries (a truncated part, a part of garbage, a missing manifest, a part that
//! cannot be read) are detected, logged and rebuilt, never served; a full disk fails the
//! refresh cleanly and leaves the previous state readable.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use pgcache::{Db, Error, IncrementalOptions, Origin, QueryOptions};
use pgcache_tests::{Scratch, ids};

/// Everything pgcache logs in this test binary.
fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        struct Sink;
        impl Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                logs().lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        tracing_subscriber::fmt()
            .with_writer(|| Sink)
            .with_ansi(false)
            .init();
        Mutex::new(Vec::new())
    })
}

fn logged(text: &str) -> bool {
    String::from_utf8_lossy(&logs().lock().unwrap()).contains(text)
}

/// The first part file of entry `name`.
fn part(cache: &Path, name: &str) -> PathBuf {
    let mut parts: Vec<PathBuf> = std::fs::read_dir(cache.join(name))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    parts.sort();
    parts.remove(0)
}

#[derive(Clone, Copy, Debug)]
enum Damage {
    Truncate,
    Garbage,
    NoManifest,
    Unreadable,
}

fn damage(cache: &Path, name: &str, how: Damage) {
    let file = part(cache, name);
    match how {
        Damage::Truncate => {
            let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
            let len = f.metadata().unwrap().len();
            f.set_len(len / 2).unwrap();
        }
        Damage::Garbage => {
            let len = std::fs::metadata(&file).unwrap().len() as usize;
            let garbage: Vec<u8> = (0..len).map(|i| (i * 7919 % 251) as u8).collect();
            // Replace, not overwrite: the parts are hard links shared with older generations.
            std::fs::remove_file(&file).unwrap();
            std::fs::write(&file, garbage).unwrap();
        }
        Damage::NoManifest => {
            std::fs::remove_file(cache.join(name).join("_manifest.json")).unwrap()
        }
        Damage::Unreadable => {
            std::fs::remove_file(&file).unwrap();
            std::fs::create_dir(&file).unwrap();
        }
    }
}

async fn setup(name: &str) -> (Scratch, Db, String) {
    logs();
    let s = Scratch::new(name).await;
    s.sql("CREATE TABLE {s}.ev (id bigint PRIMARY KEY, v text); INSERT INTO {s}.ev SELECT g, 'v' || g FROM generate_series(1, 3000) g;")
        .await;
    let db = s.db().await;
    let sql = format!("SELECT * FROM {} ORDER BY id", s.table("ev"));
    (s, db, sql)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_simple_entries_are_refetched_never_served() {
    for (i, how) in [
        Damage::Truncate,
        Damage::Garbage,
        Damage::NoManifest,
        Damage::Unreadable,
    ]
    .into_iter()
    .enumerate()
    {
        let (s, db, sql) = setup(&format!("damaged_simple_{i}")).await;
        let stored = db.query(&sql, &[], &QueryOptions::default()).await.unwrap();
        let name = stored.entry_name().unwrap().to_owned();
        damage(s.cache.path(), &name, how);
        let again = db.query(&sql, &[], &QueryOptions::default()).await.unwrap();
        assert_eq!(
            again.origin(),
            Origin::Stored,
            "{how:?}: a damaged entry is refetched, not served"
        );
        assert_eq!(ids(&again), (1..=3000).collect::<Vec<_>>(), "{how:?}");
        assert!(logged(&name), "{how:?}: the damage of {name} was logged");
        assert_eq!(
            db.query(&sql, &[], &QueryOptions::default())
                .await
                .unwrap()
                .origin(),
            Origin::Hit
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_incremental_entries_are_rebuilt_never_served() {
    for (i, how) in [
        Damage::Truncate,
        Damage::Garbage,
        Damage::NoManifest,
        Damage::Unreadable,
    ]
    .into_iter()
    .enumerate()
    {
        let (s, db, _) = setup(&format!("damaged_inc_{i}")).await;
        let sql = format!("SELECT * FROM {}", s.table("ev"));
        let first = db
            .incremental_query(&sql, &[], "id", &IncrementalOptions::default())
            .await
            .unwrap();
        let name = first.entry_name().unwrap().to_owned();
        damage(s.cache.path(), &name, how);
        s.sql("INSERT INTO {s}.ev VALUES (3001, 'new');").await;
        let again = db
            .incremental_query(&sql, &[], "id", &IncrementalOptions::default())
            .await
            .unwrap();
        assert!(
            again.refresh_report().unwrap().full,
            "{how:?}: rebuilt from the database"
        );
        assert_eq!(ids(&again), (1..=3001).collect::<Vec<_>>(), "{how:?}");
        assert!(logged(&name), "{how:?}: the damage of {name} was logged");
    }
}

/// A small tmpfs, unmounted on drop.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount(bytes: usize) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "this test mounts a small tmpfs and needs root for it"
        );
        SmallDisk(dir)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_refresh_and_keeps_the_previous_state() {
    let s = Scratch::new("full_disk").await;
    s.sql("CREATE TABLE {s}.ev (id bigint PRIMARY KEY, pad text); INSERT INTO {s}.ev SELECT g, 'x' FROM generate_series(1, 100) g;")
        .await;
    let disk = SmallDisk::mount(1 << 20);
    let db = Db::connect(
        pgcache::Settings::from_url(pgcache_tests::database_url())
            .unwrap()
            .with_cache_dir(disk.0.path()),
    )
    .await
    .unwrap();
    let sql = format!("SELECT * FROM {}", s.table("ev"));
    let first = db
        .incremental_query(&sql, &[], "id", &IncrementalOptions::default())
        .await
        .unwrap();
    assert_eq!(first.num_rows(), 100);

    // Far more than a megabyte of incompressible rows.
    s.sql("INSERT INTO {s}.ev SELECT g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text) FROM generate_series(101, 60000) g;")
        .await;
    let err = db
        .incremental_query(&sql, &[], "id", &IncrementalOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::CacheIo { .. } | Error::Parquet { .. }),
        "{err:?}"
    );
    let chain = format!(
        "{err}: {}",
        std::error::Error::source(&err)
            .map(|e| e.to_string())
            .unwrap_or_default()
    );
    assert!(chain.contains("No space left on device"), "{chain}");

    // The previous state is still there and readable, as pgcache and as a dataset.
    let stats = db.cache_stats().await.unwrap();
    assert_eq!(stats.total_records, 100);
    let entry = disk.0.path().join(first.entry_name().unwrap());
    let mut rows = 0;
    for file in std::fs::read_dir(&entry)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
    {
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(file).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        rows += reader.map(|b| b.unwrap().num_rows()).sum::<usize>();
    }
    assert_eq!(rows, 100);
    assert_eq!(
        std::fs::read_dir(disk.0.path().join(".pgcache/gen"))
            .unwrap()
            .count(),
        1,
        "the failed generation was removed"
    );

    // With the new rows gone again, refreshing works.
    s.sql("DELETE FROM {s}.ev WHERE id > 100;").await;
    let r = db
        .incremental_query(&sql, &[], "id", &IncrementalOptions::default())
        .await
        .unwrap();
    assert_eq!(r.num_rows(), 100);
}
