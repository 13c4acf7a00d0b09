//! A refreshing process killed with SIGKILL at random moments, many times over: after each
//! kill the entry, read from disk as any Parquet dataset reader reads it, holds the old state
//! or the new one, never a mix; a later refresh completes and removes the leftovers.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use pgcache::IncrementalOptions;
use pgcache_tests::{Scratch, incremental_refresh_command};

/// The ids an external reader finds in the entry: every `*.parquet` file of the directory the
/// entry's link points to. `None` when the entry does not exist.
fn ids_on_disk(entry: &Path) -> Option<Vec<i64>> {
    let dir = std::fs::read_link(entry).ok()?;
    let dir = entry.parent().unwrap().join(dir);
    let mut ids = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    for file in files {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap())
            .unwrap_or_else(|e| panic!("a reader found a damaged part {}: {e}", file.display()))
            .build()
            .unwrap();
        for batch in reader {
            ids.extend(
                batch
                    .unwrap()
                    .column(0)
                    .as_primitive::<Int64Type>()
                    .values()
                    .iter()
                    .copied(),
            );
        }
    }
    ids.sort_unstable();
    Some(ids)
}

fn find_entry(cache: &Path) -> Option<PathBuf> {
    std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("cache_")
        })
}

fn generations(cache: &Path) -> usize {
    std::fs::read_dir(cache.join(".pgcache/gen"))
        .unwrap()
        .count()
}

fn leftover_links(cache: &Path) -> Vec<String> {
    std::fs::read_dir(cache)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter(|n| n.starts_with('.') && n.contains(".link."))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_refresh_leaves_the_old_or_the_new_state_and_the_next_one_cleans_up() {
    let s = Scratch::new("crash").await;
    s.sql(
        "CREATE TABLE {s}.ev (id bigserial PRIMARY KEY, note text);
         INSERT INTO {s}.ev (note) SELECT repeat('x', 100) FROM generate_series(1, 20000);",
    )
    .await;
    let cache = s.cache.path().to_path_buf();
    let sql = format!("SELECT id, note FROM {}", s.table("ev"));
    let mut entry: Option<PathBuf> = None;
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let (mut kills, mut completed) = (0, 0);
    // How long an uninterrupted run takes: kills are drawn uniformly within that time, so they
    // land in every phase of a refresh.
    let mut typical = Duration::from_millis(200);
    for round in 0..60 {
        if round % 10 == 5 {
            // Now and then from scratch, so kills also hit a first, full load.
            let _ = std::fs::remove_file(entry.as_deref().unwrap_or(Path::new("/nonexistent")));
            entry = None;
        }
        s.sql("INSERT INTO {s}.ev (note) SELECT repeat('y', 100) FROM generate_series(1, 3000);")
            .await;
        if entry.is_none() {
            entry = find_entry(&cache);
        }
        let table_rows: i64 = s.scalar("SELECT count(*) FROM {s}.ev").await;
        let old = entry
            .as_deref()
            .and_then(ids_on_disk)
            .map_or(0, |ids| ids.len() as i64);

        let mut child = incremental_refresh_command(&cache, &sql)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        if round % 5 == 0 {
            // Every fifth run completes, and says how long a run takes now.
            let started = std::time::Instant::now();
            assert!(
                child.wait().unwrap().success(),
                "round {round}: the refresh failed on its own"
            );
            typical = started.elapsed();
            completed += 1;
        } else {
            tokio::time::sleep(typical.mul_f64((seed >> 11) as f64 / (1u64 << 53) as f64)).await;
            match child.try_wait().unwrap() {
                Some(status) => {
                    assert!(
                        status.success(),
                        "round {round}: the refresh failed on its own"
                    );
                    completed += 1;
                }
                None => {
                    child.kill().unwrap();
                    child.wait().unwrap();
                    kills += 1;
                }
            }
        }

        if entry.is_none() {
            entry = find_entry(&cache);
        }
        if let Some(ids) = entry.as_deref().and_then(ids_on_disk) {
            let n = ids.len() as i64;
            assert!(
                n == old || n == table_rows,
                "round {round}: {n} rows on disk, expected {old} (old) or {table_rows} (new)"
            );
            assert_eq!(
                ids,
                (1..=n).collect::<Vec<_>>(),
                "round {round}: no row lost or doubled"
            );
            assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), ids.len());
        }
        assert!(
            generations(&cache) <= 3,
            "round {round}: at most current, previous and one leftover"
        );
    }
    assert!(
        kills >= 10,
        "the test killed refreshes mid-way ({kills} kills, {completed} completed)"
    );

    // The next refresh completes and leaves no leftovers.
    let db = s.db().await;
    let r = db
        .incremental_query(&sql, &[], "id", &IncrementalOptions::default())
        .await
        .unwrap();
    let table_rows: i64 = s.scalar("SELECT count(*) FROM {s}.ev").await;
    assert_eq!(r.num_rows() as i64, table_rows);
    let entry = find_entry(&cache).unwrap();
    assert_eq!(
        ids_on_disk(&entry).unwrap(),
        (1..=table_rows).collect::<Vec<_>>()
    );
    assert!(
        generations(&cache) <= 2,
        "only the current and the previous generation remain"
    );
    assert!(
        leftover_links(&cache).is_empty(),
        "{:?}",
        leftover_links(&cache)
    );
    println!("{kills} refreshes killed mid-way, {completed} completed");
}
