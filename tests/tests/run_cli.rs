//! `pgcache run` as a user runs it: guest output passes through, the exit code is the guest's,
//! a trap prints a readable line with a backtrace, limits and grants come from the flags.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::process::{Command, Output};

use pgcache_tests::{bare_plugin_role, database_url, guests, pgcache_bin};

fn pgcache_run(cache: &std::path::Path, flags: &[&str], guest_args: &[&str]) -> Output {
    Command::new(pgcache_bin())
        .args(["--cache-dir", cache.to_str().unwrap(), "run"])
        .args(flags)
        .arg(guests::PROBE)
        .arg("--")
        .args(guest_args)
        .env("DATABASE_URL", database_url())
        .env("PGCACHE_PLUGIN_ROLE", bare_plugin_role())
        .env("SECRET_OF_THE_HOST", "hunter2")
        .output()
        .unwrap()
}

#[test]
fn output_exit_codes_and_traps() {
    let cache = tempfile::tempdir().unwrap();
    let ok = pgcache_run(cache.path(), &[], &["first-call"]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "entries=0\n");

    let failed = pgcache_run(cache.path(), &[], &["exit", "3"]);
    assert_eq!(failed.status.code(), Some(1));

    let trapped = pgcache_run(cache.path(), &[], &["panic"]);
    assert_eq!(trapped.status.code(), Some(134));
    let stderr = String::from_utf8_lossy(&trapped.stderr);
    assert!(
        stderr.contains("probe was asked to panic"),
        "the guest's own message passes through: {stderr}"
    );
    let line = stderr
        .lines()
        .find(|l| l.starts_with("pgcache: plugin probe trapped:"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains("unreachable"), "{line}");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("  at ") && l.contains("probe")),
        "a backtrace line: {stderr}"
    );
}

#[test]
fn flags_grant_directories_environment_and_limits() {
    let cache = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("in.txt"), "hello").unwrap();
    let dir = format!("{}::/in", data.path().display());
    let out = pgcache_run(
        cache.path(),
        &["--dir", &dir, "--env", "MODE=test"],
        &["echo", "/in/in.txt"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("read=hello"), "{stdout}");
    assert!(stdout.contains("env MODE=test"), "{stdout}");
    assert!(
        !stdout.contains("hunter2")
            && !stdout.contains("DATABASE_URL")
            && !stdout.contains("postgres://"),
        "{stdout}"
    );

    for (flags, mode, limit) in [
        (
            vec!["--max-memory", "16"],
            "grow",
            "memory limit of 16 MiB exceeded",
        ),
        (
            vec!["--timeout", "0.5"],
            "sleep",
            "wall-clock time limit of 500ms exceeded",
        ),
        (
            vec!["--cpu-time", "0.3"],
            "spin",
            "CPU time limit of 300ms exceeded",
        ),
    ] {
        let out = pgcache_run(cache.path(), &flags, &[mode]);
        assert_eq!(out.status.code(), Some(134), "{mode}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("pgcache: plugin probe stopped: {limit}")),
            "{mode}: {stderr}"
        );
    }
}
