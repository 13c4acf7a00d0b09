//! A real `pgcache serve` process for the tests: two tenants with roles of their own and
//! tokens, listening on a free loopback port, killed when dropped.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{Scratch, database_url, pgcache_bin};

/// A running server.
pub struct Server {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT` (`https://` when serving TLS).
    pub base: String,
    /// Tokens of tenants `a` and `b`.
    pub tokens: [String; 2],
    /// The settings file and cache live here.
    pub dir: tempfile::TempDir,
}

/// How to start a server.
pub struct ServerSetup<'a> {
    /// The scratch whose schema the tenants read.
    pub scratch: &'a Scratch,
    /// Extra TOML for tenant `a` (limits, operations).
    pub a: &'a str,
    /// Extra TOML for tenant `b`.
    pub b: &'a str,
    /// Extra top-level TOML (`[[refresh]]`).
    pub extra: &'a str,
    /// `--drain` seconds.
    pub drain: f64,
    /// More arguments of `pgcache serve` (`--tls-cert` ...).
    pub args: &'a [&'a str],
}

impl Server {
    /// Creates roles `<schema>_p` (tenant a) and `<schema>_q` (tenant b) that may read and
    /// write the scratch schema, writes `pgcache.toml`, starts `pgcache serve`.
    pub async fn start(setup: ServerSetup<'_>) -> Server {
        let dir = tempfile::tempdir().expect("a server directory");
        Server::start_in(setup, dir).await
    }

    /// As [`Server::start`], in `dir` (a restart over the same cache).
    pub async fn start_in(setup: ServerSetup<'_>, dir: tempfile::TempDir) -> Server {
        let s = setup.scratch;
        let a_role = s.plugin_role().await;
        let b_role = format!("{}_q", s.schema);
        s.sql(&format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{b_role}') THEN
               CREATE ROLE {b_role} LOGIN; END IF; END $$;
             GRANT USAGE ON SCHEMA {0} TO {b_role};
             GRANT SELECT ON ALL TABLES IN SCHEMA {0} TO {b_role};
             ALTER DEFAULT PRIVILEGES IN SCHEMA {0} GRANT SELECT ON TABLES TO {b_role};",
            s.schema
        ))
        .await;
        let (ta, ha) = pgcache::serve::auth::new_token().expect("a token");
        let (tb, hb) = pgcache::serve::auth::new_token().expect("a token");
        let toml = format!(
            "[cache]\ndir = {cache:?}\n{extra}\n\
             [tenants.a]\nrole = {a_role:?}\ntokens_sha256 = [{ha:?}]\n{a}\n\
             [tenants.b]\nrole = {b_role:?}\ntokens_sha256 = [{hb:?}]\n{b}\n",
            cache = dir.path().join("cache").display().to_string(),
            extra = setup.extra,
            a = setup.a,
            b = setup.b,
        );
        let file = dir.path().join("pgcache.toml");
        std::fs::write(&file, toml).expect("write pgcache.toml");
        let mut child = Command::new(pgcache_bin())
            .arg("--config")
            .arg(&file)
            .args(["serve", "--listen", "127.0.0.1:0", "--drain"])
            .arg(setup.drain.to_string())
            .args(setup.args)
            .env("DATABASE_URL", database_url())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pgcache serve");
        let stdout = child.stdout.take().expect("the server's stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let base = line
            .trim()
            .strip_prefix("pgcache serve: listening on ")
            .unwrap_or_else(|| {
                let _ = child.kill();
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                panic!("the server did not start: {line:?} {err}")
            })
            .to_owned();
        Server {
            child,
            base,
            tokens: [ta, tb],
            dir,
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `name` of the tenant with `token` and returns its NDJSON events.
pub async fn run_plugin(
    client: &reqwest::Client,
    server: &Server,
    token: &str,
    name: &str,
    args: &[&str],
) -> (u16, Vec<serde_json::Value>) {
    let response = client
        .post(server.url(&format!("/v1/plugins/{name}/runs")))
        .bearer_auth(token)
        .json(&serde_json::json!({ "args": args }))
        .send()
        .await
        .expect("the run request");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let events = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (status, events)
}
