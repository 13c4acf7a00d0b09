//! Where results come from, for cache keys: the configured server, port, database and role
//! (known without asking anyone), plus what the server says gives names their meaning there
//! (the session's `search_path`, the database's oid). The second part is asked once per
//! [`crate::Db`] and remembered in the cache directory, so a hit while the server is down is
//! still answered under the last identity the server gave; once the server answers, a changed
//! identity means other keys, so entries made under the old one are never served.

use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::pg::pool::PgPool;

/// How long learning the identity may wait for a connection before the remembered one is used.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

const IDENTITY_SQL: &str = "SELECT 'search_path=' || pg_catalog.current_setting('search_path') \
    || ' database_oid=' || (SELECT oid FROM pg_catalog.pg_database \
    WHERE datname = pg_catalog.current_database())::text";

/// The scope of one [`crate::Db`]'s keys.
#[derive(Debug)]
pub(crate) struct Scope {
    configured: String,
    learned: OnceCell<String>,
    file: PathBuf,
}

impl Scope {
    /// The scope of the configured `host`, `port`, `dbname`, `user`, remembered under
    /// `cache_dir`.
    pub fn new(configured: String, cache_dir: &std::path::Path) -> Scope {
        let name = hex::encode(&Sha256::digest(configured.as_bytes())[..8]);
        Scope {
            configured,
            learned: OnceCell::new(),
            file: cache_dir.join(".pgcache").join(format!("scope-{name}")),
        }
    }

    /// The scope string keys are made with: asked of the server once, remembered in the cache
    /// directory; while the server cannot be reached, the remembered one (or the configured
    /// part alone, if none was ever learned).
    pub async fn key_scope(&self, pool: &PgPool) -> String {
        if let Some(learned) = self.learned.get() {
            return learned.clone();
        }
        match ask(pool).await {
            Some(identity) => {
                let full = format!("{} {identity}", self.configured);
                if std::fs::read_to_string(&self.file).ok().as_deref() != Some(full.as_str()) {
                    let tmp = self
                        .file
                        .with_extension(format!("tmp.{}", std::process::id()));
                    if std::fs::write(&tmp, &full).is_ok() {
                        let _ = std::fs::rename(&tmp, &self.file);
                    }
                }
                let _ = self.learned.set(full.clone());
                full
            }
            None => std::fs::read_to_string(&self.file)
                .ok()
                .filter(|s| s.starts_with(&self.configured))
                .unwrap_or_else(|| self.configured.clone()),
        }
    }
}

/// The server's identity for this session, if it answers in time.
async fn ask(pool: &PgPool) -> Option<String> {
    let conn = tokio::time::timeout(ASK_TIMEOUT, pool.get())
        .await
        .ok()?
        .ok()?;
    let row = tokio::time::timeout(ASK_TIMEOUT, conn.query_one(IDENTITY_SQL, &[]))
        .await
        .ok()?
        .ok()?;
    row.try_get(0).ok()
}
