//! Who a plugin would be in the database: the role of a connection, and whether it holds a
//! privilege that no READ ONLY transaction or statement check can hold back.
//!
//! A superuser reads server files and password hashes; BYPASSRLS ignores row-level security;
//! REPLICATION and CREATEROLE (which, before PostgreSQL 16, grants itself any non-superuser
//! role) reach past the database; members of the predefined roles below read or write server
//! files, run programs, signal other sessions or read every table. The checks ask the server,
//! through `pg_has_role`, so membership through other roles counts.

use tokio_postgres::Client;

use crate::error::{Error, Result};

/// Predefined roles a plugin's role must not be a member of (those this server does not have
/// are skipped).
pub const PRIVILEGED_ROLES: &[&str] = &[
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_execute_server_program",
    "pg_signal_backend",
    "pg_signal_autovacuum_worker",
    "pg_read_all_data",
    "pg_write_all_data",
    "pg_read_all_settings",
    "pg_read_all_stats",
    "pg_stat_scan_tables",
    "pg_monitor",
    "pg_checkpoint",
    "pg_maintain",
    "pg_create_subscription",
    "pg_use_reserved_connections",
];

const ROLE_SQL: &str = "\
SELECT current_user::text,
  coalesce((SELECT array_agg(r.rolname::text || ' (' || concat_ws(', ',
      CASE WHEN r.rolsuper THEN 'SUPERUSER' END,
      CASE WHEN r.rolbypassrls THEN 'BYPASSRLS' END,
      CASE WHEN r.rolreplication THEN 'REPLICATION' END,
      CASE WHEN r.rolcreaterole THEN 'CREATEROLE' END) || ')' ORDER BY r.rolname)
    FROM pg_catalog.pg_roles r
    WHERE pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER')
      AND (r.rolsuper OR r.rolbypassrls OR r.rolreplication OR r.rolcreaterole)), '{}'),
  coalesce((SELECT array_agg(g ORDER BY g) FROM pg_catalog.unnest($1::text[]) AS g
    WHERE pg_catalog.to_regrole(g) IS NOT NULL
      AND pg_catalog.pg_has_role(current_user, g, 'MEMBER')), '{}')";

/// Fails unless the role of `client` is free of every privilege above. An error while asking
/// fails too (closed), with the server's message.
pub(crate) async fn check_unprivileged(client: &Client) -> Result<()> {
    let roles: Vec<String> = PRIVILEGED_ROLES.iter().map(|r| (*r).to_owned()).collect();
    let unchecked = |e: tokio_postgres::Error| {
        let why = e
            .as_db_error()
            .map_or_else(|| e.to_string(), |d| d.message().to_owned());
        denied_because(&format!("its role could not be checked ({why})"))
    };
    let row = client
        .query_one(ROLE_SQL, &[&roles])
        .await
        .map_err(unchecked)?;
    let get = |i| -> Result<Vec<String>> { row.try_get(i).map_err(unchecked) };
    let user: String = row.try_get(0).map_err(unchecked)?;
    let mut held = get(1)?;
    held.extend(get(2)?.into_iter().map(|r| format!("member of {r}")));
    if held.is_empty() {
        return Ok(());
    }
    Err(denied_because(&format!(
        "role {user:?} is privileged: {}",
        held.join("; ")
    )))
}

fn denied_because(why: &str) -> Error {
    Error::Denied(format!(
        "plugins do not run as this database role: {why}. Give plugins a role of their own: \
         CREATE ROLE pgcache_plugin LOGIN; GRANT SELECT ON <tables> TO pgcache_plugin; then set \
         [plugins] role = \"pgcache_plugin\" in pgcache.toml (or PGCACHE_PLUGIN_ROLE)"
    ))
}
