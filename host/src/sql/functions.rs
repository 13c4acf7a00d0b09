//! Functions whose effects outlive the transaction that calls them, or that reach past the
//! database: refused in statements run on others' behalf (plugins, tenants), whatever the
//! transaction's READ ONLY flag says. A settings file can add names
//! (`[plugins] deny_functions`, a tenant's `deny_functions`).
//!
//! A name matches when the called function's name (its last component, schema dropped) equals
//! an entry, or starts with an entry that ends in `*`.

/// The built-in list, each with why it is here.
pub const DENIED_FUNCTIONS: &[(&str, &str)] = &[
    ("lo_*", "large objects outlive the transaction"),
    ("loread", "large objects"),
    ("lowrite", "large objects"),
    ("pg_logical_emit_message", "writes to the WAL"),
    (
        "pg_advisory_lock*",
        "session-level advisory locks outlive the call",
    ),
    (
        "pg_try_advisory_lock*",
        "session-level advisory locks outlive the call",
    ),
    ("pg_advisory_unlock*", "session-level advisory locks"),
    ("pg_notify", "notifications reach other sessions"),
    ("set_config", "changes session settings"),
    ("dblink*", "opens other connections"),
    ("pg_cancel_backend", "signals other sessions"),
    ("pg_terminate_backend", "signals other sessions"),
    ("pg_reload_conf", "signals the server"),
    ("pg_rotate_logfile*", "signals the server"),
    ("pg_promote", "changes the server's role"),
    ("pg_log_backend_memory_contexts", "signals other sessions"),
    ("pg_read_file", "reads server files"),
    ("pg_read_binary_file", "reads server files"),
    ("pg_stat_file", "reads server files"),
    ("pg_ls_*", "lists server directories"),
    ("pg_file_*", "writes server files"),
    ("pg_logdir_ls", "lists server directories"),
    (
        "pg_create_physical_replication_slot",
        "replication slots outlive the call",
    ),
    (
        "pg_create_logical_replication_slot",
        "replication slots outlive the call",
    ),
    (
        "pg_copy_*_replication_slot",
        "replication slots outlive the call",
    ),
    ("pg_drop_replication_slot", "replication slots"),
    ("pg_replication_slot_advance", "replication slots"),
    ("pg_logical_slot_*", "consumes replication slots"),
    (
        "pg_replication_origin_*",
        "replication origins outlive the call",
    ),
    ("pg_start_backup", "backups"),
    ("pg_stop_backup", "backups"),
    ("pg_backup_*", "backups"),
    ("pg_switch_wal", "writes to the WAL"),
    ("pg_create_restore_point", "writes to the WAL"),
    ("pg_wal_replay_*", "controls recovery"),
    ("pg_stat_reset*", "resets server statistics"),
    ("pg_import_system_collations", "changes the catalogs"),
    ("query_to_xml*", "runs SQL text the checks cannot see"),
    ("cursor_to_xml*", "runs SQL text the checks cannot see"),
    (
        "table_to_xml*",
        "reads tables by name, unseen by the checks",
    ),
    (
        "schema_to_xml*",
        "reads tables by name, unseen by the checks",
    ),
    (
        "database_to_xml*",
        "reads tables by name, unseen by the checks",
    ),
    ("ts_stat", "runs SQL text the checks cannot see"),
    ("ts_rewrite", "runs SQL text the checks cannot see"),
    (
        "crosstab*",
        "runs SQL text the checks cannot see (tablefunc)",
    ),
    (
        "connectby*",
        "runs SQL text the checks cannot see (tablefunc)",
    ),
];

/// Whether `name` (a function's last name component) matches `pattern`.
pub(crate) fn matches(pattern: &str, name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let pattern = pattern.to_ascii_lowercase();
    match pattern.split_once('*') {
        None => name == pattern,
        Some((head, tail)) => {
            name.len() >= head.len() + tail.len() && name.starts_with(head) && name.ends_with(tail)
        }
    }
}

/// The reason `name` is denied, from the built-in list or `extra` names.
pub(crate) fn denied(name: &str, extra: &[String]) -> Option<&'static str> {
    DENIED_FUNCTIONS
        .iter()
        .find(|(p, _)| matches(p, name))
        .map(|(_, why)| *why)
        .or_else(|| {
            extra
                .iter()
                .any(|p| matches(p, name))
                .then_some("denied by the settings")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(matches("lo_*", "lo_from_bytea"));
        assert!(matches("lo_*", "LO_IMPORT"));
        assert!(!matches("lo_*", "log"));
        assert!(matches(
            "pg_copy_*_replication_slot",
            "pg_copy_logical_replication_slot"
        ));
        assert!(!matches("pg_notify", "pg_notify2"));
        assert_eq!(denied("pg_sleep", &[]), None);
        assert!(denied("my_fn", &["my_*".into()]).is_some());
    }
}
