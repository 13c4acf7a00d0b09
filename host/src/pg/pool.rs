//! The connection pool: deadpool-postgres over tokio-postgres, built from [`Settings`].

use std::time::Duration;

use deadpool_postgres::TimeoutType;
use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};

use crate::config::Settings;
use crate::error::{Error, Result};

/// The pool plus what its errors need to name.
#[derive(Debug, Clone)]
pub(crate) struct PgPool {
    pool: Pool,
    host: String,
    port: u16,
    user: String,
    connect_timeout: Duration,
    wait_timeout: Duration,
    max_size: usize,
    clean_on_return: bool,
}

/// A reading of a pool's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStatus {
    /// Connections handed out.
    pub in_use: usize,
    /// Connections open and idle.
    pub idle: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
    /// The pool's maximum size.
    pub max_size: usize,
}

/// What a session may have left behind, undone when a plugin's connection goes back to the
/// pool (the same list deadpool's `Clean` runs when a connection is taken again).
const CLEAN_SQL: &str = "ROLLBACK; CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; \
    UNLISTEN *; SELECT pg_catalog.pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES";

/// A pooled connection. For pools that serve plugins, dropping it cleans the session before
/// the connection goes back to the pool (locks, settings, listeners released at once, not
/// when the connection is next taken); a connection that cannot be cleaned is closed.
pub(crate) struct Conn {
    object: Option<Object>,
    clean_on_return: bool,
}

impl std::ops::Deref for Conn {
    type Target = Object;
    fn deref(&self) -> &Object {
        self.object
            .as_ref()
            .expect("a Conn holds its connection until dropped")
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Object {
        self.object
            .as_mut()
            .expect("a Conn holds its connection until dropped")
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let Some(object) = self.object.take() else {
            return;
        };
        if !self.clean_on_return {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(e) = object.batch_execute(CLEAN_SQL).await {
                        tracing::debug!(error = %e, "closing a connection that could not be cleaned");
                        drop(Object::take(object));
                    }
                });
            }
            // No runtime to clean it on: close it rather than hand the session on.
            Err(_) => drop(Object::take(object)),
        }
    }
}

impl PgPool {
    /// Builds the pool; no connection is opened yet.
    pub fn new(settings: &Settings) -> Result<PgPool> {
        let c = &settings.connection;
        let mut pg = tokio_postgres::Config::new();
        pg.host(c.host())
            .port(c.port())
            .user(c.user())
            .dbname(c.dbname())
            .application_name("pgcache")
            .connect_timeout(settings.pool.connect_timeout);
        if let Some(password) = &c.password {
            pg.password(password.0.as_bytes());
        }
        // Statements are checked by libpg_query, which reads string literals as the server
        // does with standard_conforming_strings on: every session runs with it on, whatever
        // the database or role default says, so the two can never read a literal differently.
        let mut options = String::from("-c standard_conforming_strings=on");
        if let Some(timeout) = settings.pool.statement_timeout {
            options.push_str(&format!(" -c statement_timeout={}", timeout.as_millis()));
        }
        pg.options(options);
        // `Verified` checks a pooled connection with a round trip before handing it out: a
        // backend terminated while the connection sat idle (or that died under a failed
        // statement) is replaced instead of failing the next call.
        // `Clean` also resets everything a session may have set (RESET ALL, SET SESSION
        // AUTHORIZATION DEFAULT, ...), for pools whose statements come from plugins.
        let recycling_method = if settings.pool.reset_sessions {
            RecyclingMethod::Clean
        } else {
            RecyclingMethod::Verified
        };
        let manager = Manager::from_config(
            pg,
            tokio_postgres::NoTls,
            ManagerConfig { recycling_method },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.pool.max_size)
            .wait_timeout(Some(settings.pool.wait_timeout))
            .create_timeout(Some(settings.pool.connect_timeout))
            .recycle_timeout(Some(settings.pool.connect_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| Error::Config {
                origin: None,
                message: format!("cannot build the connection pool: {e}"),
            })?;
        Ok(PgPool {
            pool,
            host: c.host().to_owned(),
            port: c.port(),
            user: c.user(),
            connect_timeout: settings.pool.connect_timeout,
            wait_timeout: settings.pool.wait_timeout,
            max_size: settings.pool.max_size,
            clean_on_return: settings.pool.reset_sessions,
        })
    }

    /// Takes a connection, opening one if none is idle.
    pub async fn get(&self) -> Result<Conn> {
        let object = self.pool.get().await.map_err(|e| self.connect_error(e))?;
        Ok(Conn {
            object: Some(object),
            clean_on_return: self.clean_on_return,
        })
    }

    /// Connections in use, idle, and callers waiting for one.
    pub fn status(&self) -> PoolStatus {
        let s = self.pool.status();
        PoolStatus {
            in_use: s.size.saturating_sub(s.available),
            idle: s.available,
            waiting: s.waiting,
            max_size: s.max_size,
        }
    }

    /// Opens `n` connections now, so that bad settings fail at start and the first queries do
    /// not pay for connecting.
    pub async fn warm(&self, n: usize) -> Result<()> {
        let mut held = Vec::with_capacity(n);
        for _ in 0..n.max(1) {
            held.push(self.get().await?);
        }
        Ok(())
    }

    fn connect_error(&self, e: PoolError) -> Error {
        let reason = match e {
            PoolError::Timeout(TimeoutType::Wait) => {
                return Error::PoolTimeout {
                    waited: self.wait_timeout,
                    max_size: self.max_size,
                };
            }
            PoolError::Timeout(_) => format!("no answer within {:?}", self.connect_timeout),
            PoolError::Backend(e) => describe_pg_error(&e),
            PoolError::Closed => "the pool is closed".to_owned(),
            PoolError::NoRuntimeSpecified => "no async runtime".to_owned(),
            PoolError::PostCreateHook(e) => e.to_string(),
        };
        Error::Connect {
            host: self.host.clone(),
            port: self.port,
            user: self.user.clone(),
            reason,
        }
    }
}

/// The server's message, or the client error with its causes, on one line.
fn describe_pg_error(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
