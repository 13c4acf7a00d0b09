//! A real standby: a copy of the local cluster (a base backup taken with `pg_backup_start` /
//! `pg_backup_stop`) started in hot-standby mode on a free port. The default mode is refused
//! there (its transactions list would not show the primary's), with an error that names the
//! modes that work; a lookback and xmin mode run.
//!
//! It needs what a base backup by file copy needs: to run as root next to the local cluster's
//! data directory, with the PostgreSQL server binaries installed. Elsewhere it says why it
//! cannot run and passes.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use pgcache::{Error, IncrementalOptions, Lookback, Settings};
use pgcache_tests::{Scratch, connect};

/// The running standby; stopped and removed on drop.
struct Standby {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl Drop for Standby {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

impl Standby {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The local cluster's data directory and server binaries, when this test can copy it (it
/// runs as root).
async fn local_cluster(client: &tokio_postgres::Client) -> Option<(PathBuf, PathBuf)> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return None;
    }
    let row = client
        .query_one(
            "SELECT current_setting('data_directory'), current_setting('server_version_num')::int / 10000",
            &[],
        )
        .await
        .ok()?;
    let data = PathBuf::from(row.get::<_, String>(0));
    let bin = PathBuf::from(format!("/usr/lib/postgresql/{}/bin", row.get::<_, i32>(1)));
    (data.is_dir() && bin.join("pg_ctl").is_file()).then_some((data, bin))
}

async fn start_standby(primary: &tokio_postgres::Client, data: &Path, bin: &Path) -> Standby {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("data");
    primary
        .batch_execute("SELECT pg_backup_start('pgcache standby test', true)")
        .await
        .unwrap();
    run(Command::new("cp").arg("-a").arg(data).arg(&copy)).unwrap();
    let label: String = primary
        .query_one("SELECT labelfile FROM pg_backup_stop(false)", &[])
        .await
        .unwrap()
        .get(0);
    // The WAL up to the end of the backup, written after the copy began.
    run(Command::new("cp")
        .arg("-a")
        .arg(data.join("pg_wal/."))
        .arg(copy.join("pg_wal")))
    .unwrap();
    for stale in ["postmaster.pid", "postmaster.opts"] {
        let _ = std::fs::remove_file(copy.join(stale));
    }
    std::fs::write(copy.join("backup_label"), label).unwrap();
    std::fs::write(copy.join("standby.signal"), "").unwrap();
    std::fs::write(copy.join("postgresql.conf"), "").unwrap();
    std::fs::write(
        copy.join("pg_hba.conf"),
        "local all all trust\nhost all all 127.0.0.1/32 trust\n",
    )
    .unwrap();
    // The primary's limits: a standby refuses to start with smaller ones.
    let limits = primary
        .query(
            "SELECT name, setting FROM pg_settings WHERE name IN ('max_connections',
               'max_worker_processes', 'max_wal_senders', 'max_locks_per_transaction',
               'max_prepared_transactions')",
            &[],
        )
        .await
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c hba_file={} -c hot_standby=on",
        dir.path().display(),
        copy.join("pg_hba.conf").display()
    );
    for row in &limits {
        options.push_str(&format!(
            " -c {}={}",
            row.get::<_, String>(0),
            row.get::<_, String>(1)
        ));
    }
    run(Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(dir.path()))
    .unwrap();
    let standby = Standby {
        dir,
        bin: bin.to_owned(),
        port,
    };
    run(Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin.join("pg_ctl"))
        .arg("-D")
        .arg(standby.data())
        .arg("-l")
        .arg(standby.dir.path().join("log"))
        .args(["-w", "-t", "60", "-o", &options, "start"]))
    .unwrap();
    standby
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_mode_is_refused_on_a_standby_and_the_others_run() {
    let s = Scratch::new("standby").await;
    s.sql(
        "CREATE TABLE {s}.ev (id bigserial PRIMARY KEY, who text);
         INSERT INTO {s}.ev (who) SELECT 'x' FROM generate_series(1, 10);",
    )
    .await;
    let primary = connect().await;
    let Some((data, bin)) = local_cluster(&primary).await else {
        eprintln!("no standby can be made here (needs root and the local cluster); skipped");
        return;
    };
    let standby = start_standby(&primary, &data, &bin).await;
    let settings = Settings::from_url(&standby.url())
        .unwrap()
        .with_cache_dir(s.cache.path());
    let mut db = None;
    for _ in 0..60 {
        if let Ok(d) = pgcache::Db::connect(settings.clone()).await {
            db = Some(d);
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let db = db.expect("the standby accepts connections");
    let sql = format!("SELECT id, who FROM {}", s.table("ev"));

    let err = db
        .incremental_query(&sql, &[], "id", &IncrementalOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::IncrementalRefused { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("standby")
            && message.contains("xmin mode")
            && message.contains("lookback"),
        "{message}"
    );
    assert_eq!(db.cache_stats().await.unwrap().total_files, 0);

    let lookback = IncrementalOptions::default().lookback(Lookback::Amount(100));
    let r = db
        .incremental_query(&sql, &[], "id", &lookback)
        .await
        .unwrap();
    assert_eq!(r.num_rows(), 10);
    let xmin_sql = format!("SELECT xmin, id, who FROM {}", s.table("ev"));
    let r = db
        .incremental_query(&xmin_sql, &[], "id", &IncrementalOptions::default().xmin())
        .await
        .unwrap();
    assert_eq!(r.num_rows(), 10);
    drop(standby);
}
