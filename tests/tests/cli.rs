//! The `pgcache` binary against the real database: formats, parameters, incremental runs,
//! stats, clear, and errors as one line with a non-zero exit code.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::path::Path;
use std::process::{Command, Output};

use pgcache_tests::database_url;

fn pgcache(cache: &Path, args: &[&str]) -> Output {
    Command::new(pgcache_tests::pgcache_bin())
        .args(args)
        .env("DATABASE_URL", database_url())
        .env("PGCACHE_DIR", cache)
        .env_remove("PGCACHE_LOG")
        .env_remove("PGCACHE_CONFIG")
        .current_dir(cache)
        .output()
        .expect("run pgcache")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn psql(sql: &str) {
    let status = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            database_url(),
            "-c",
            sql,
        ])
        .env("PGOPTIONS", "-c client_min_messages=warning")
        .status()
        .expect("psql runs");
    assert!(status.success(), "{sql}");
}

/// A schema of this test's own: created fresh, dropped when the test ends.
struct Schema(String);

impl std::ops::Deref for Schema {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        psql(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0));
    }
}

fn setup(name: &str, sql: &str) -> Schema {
    let schema = format!("cli_{name}_{}", std::process::id());
    psql(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; {}",
        sql.replace("{s}", &schema)
    ));
    Schema(schema)
}

#[test]
fn query_prints_every_format_and_converts_parameters() {
    let cache = tempfile::tempdir().unwrap();
    let s = setup(
        "formats",
        "CREATE TABLE {s}.ev (id bigint, at timestamptz, price numeric(8,2), note text, raw bytea, doc jsonb);
         INSERT INTO {s}.ev VALUES (1, '2024-01-01 10:00:00+00', 9.50, 'a, \"quoted\"', '\\x00ff', '{\"k\": [1]}'),
                                   (2, '2024-01-02 10:00:00+00', NULL, NULL, NULL, NULL);",
    );
    let sql = format!(
        "SELECT * FROM {}.ev WHERE at >= $1 AND id <= $2 ORDER BY id",
        &*s
    );
    let params = ["-p", "2024-01-01", "-p", "5"];

    let table = ok(&pgcache(
        cache.path(),
        &[&["query", &sql], &params[..]].concat(),
    ));
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].contains("id") && lines[0].contains("price"),
        "{table}"
    );
    assert!(
        lines[2].contains("9.50") && lines[2].contains("2024-01-01T10:00:00.000000Z"),
        "{table}"
    );
    assert_eq!(lines.last(), Some(&"(2 rows)"));

    let csv = ok(&pgcache(
        cache.path(),
        &[&["query", &sql, "--format", "csv"], &params[..]].concat(),
    ));
    assert_eq!(
        csv,
        "id,at,price,note,raw,doc\n1,2024-01-01T10:00:00.000000Z,9.50,\"a, \"\"quoted\"\"\",\\x00ff,\"{\"\"k\"\": [1]}\"\n2,2024-01-02T10:00:00.000000Z,,,,\n"
    );

    let json = ok(&pgcache(
        cache.path(),
        &[&["query", &sql, "--format", "json"], &params[..]].concat(),
    ));
    let rows: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["price"], "9.50", "numeric as a string");
    assert_eq!(rows[0]["at"], "2024-01-01T10:00:00.000000Z");
    assert_eq!(rows[0]["raw"], "\\x00ff");
    assert_eq!(rows[0]["doc"], serde_json::json!({"k": [1]}));
    assert_eq!(rows[1]["price"], serde_json::Value::Null);

    let file = cache.path().join("out.parquet");
    let quiet = pgcache(
        cache.path(),
        &[
            &[
                "query",
                &sql,
                "--format",
                "parquet",
                "-o",
                file.to_str().unwrap(),
            ],
            &params[..],
        ]
        .concat(),
    );
    ok(&quiet);
    assert!(
        quiet.stderr.is_empty(),
        "no progress line when stderr is not a terminal"
    );
    let reader =
        parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&file).unwrap())
            .unwrap();
    use parquet::file::reader::FileReader;
    assert_eq!(reader.metadata().file_metadata().num_rows(), 2);

    let needs_file = pgcache(cache.path(), &["query", "SELECT 1", "--format", "parquet"]);
    assert!(!needs_file.status.success());
}

#[test]
fn incremental_runs_stats_and_clear() {
    let cache = tempfile::tempdir().unwrap();
    let s = setup(
        "incremental",
        "CREATE TABLE {s}.ev (id bigint); INSERT INTO {s}.ev SELECT generate_series(1, 5);",
    );
    let sql = format!("SELECT id FROM {}.ev", &*s);
    let first = ok(&pgcache(
        cache.path(),
        &["query", &sql, "--incremental", "id", "--format", "csv"],
    ));
    assert_eq!(first, "id\n1\n2\n3\n4\n5\n");
    setup_more(&s);
    let second = ok(&pgcache(
        cache.path(),
        &["query", &sql, "--incremental", "id", "--format", "csv"],
    ));
    assert_eq!(second, "id\n1\n2\n3\n4\n5\n6\n7\n");

    let stats: serde_json::Value =
        serde_json::from_str(&ok(&pgcache(cache.path(), &["stats", "--json"]))).unwrap();
    for key in [
        "total_files",
        "total_size_mb",
        "total_records",
        "cache_dir",
        "entries",
    ] {
        assert!(
            stats.get(key).is_some(),
            "stats --json lacks {key}: {stats}"
        );
    }
    let entry = &stats["entries"][0];
    for key in [
        "name",
        "query",
        "mode",
        "order_column",
        "rows",
        "bytes",
        "watermark",
        "created",
        "refreshed",
        "hits",
    ] {
        assert!(entry.get(key).is_some(), "an entry lacks {key}: {entry}");
    }
    assert_eq!(
        (entry["rows"].as_u64(), entry["watermark"].as_str()),
        (Some(7), Some("7"))
    );
    assert!(ok(&pgcache(cache.path(), &["stats"])).contains("1 entries, 7 rows"));

    assert_eq!(
        ok(&pgcache(cache.path(), &["clear", "no-match"])),
        "removed 0 entries\n"
    );
    assert_eq!(
        ok(&pgcache(cache.path(), &["clear", &*s])),
        "removed 1 entry\n"
    );
}

fn setup_more(schema: &str) {
    psql(&format!("INSERT INTO {schema}.ev VALUES (6), (7)"));
}

#[test]
fn execute_prints_rows_affected() {
    let cache = tempfile::tempdir().unwrap();
    let s = setup("execute", "CREATE TABLE {s}.t (id int);");
    let insert = format!("INSERT INTO {}.t SELECT generate_series(1, $1)", &*s);
    let out = ok(&pgcache(cache.path(), &["execute", &insert, "-p", "3"]));
    assert_eq!(out, "3\n");
}

#[test]
fn failures_exit_non_zero_with_one_line_on_stderr() {
    let cache = tempfile::tempdir().unwrap();
    for (args, expect) in [
        (vec!["query", "SELEC 1"], "syntax error"),
        (
            vec!["query", "SELECT $1::int AS v", "-p", "x"],
            "parameter $1 (int4)",
        ),
        (
            vec!["query", "SELECT 1 AS a", "--incremental", "b"],
            "ordering column \"b\" is not in the query result; its columns are: a",
        ),
        (
            vec![
                "--database-url",
                "postgres://who:pw@127.0.0.1:1/db",
                "query",
                "SELECT 1",
            ],
            "127.0.0.1:1 as user \"who\"",
        ),
    ] {
        let out = pgcache(cache.path(), &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.starts_with("pgcache: ") && stderr.contains(expect),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains(":pw@"), "{stderr}");
    }
}
