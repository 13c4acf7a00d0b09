//! Cache keys: sha256 over where the query runs (server, database, role), the statement's
//! tokens as PostgreSQL's scanner reads them, the typed parameters and the mode.

use sha2::{Digest, Sha256};

use crate::pg::value::Value;
use crate::sql::Statement;

/// Hex characters of the key in an entry name, as in the origin (`cache_<12 hex>`).
pub const NAME_HEX: usize = 12;

/// What kind of entry a key is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyMode<'a> {
    Simple,
    Incremental { column: &'a str, xmin: bool },
}

/// The full sha256 key of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CacheKey(String);

impl CacheKey {
    /// The key of `statement` with `params` in `mode`, run at `scope` (the server, database
    /// and role the results come from: the same text means other rows elsewhere).
    pub fn new(
        scope: &str,
        statement: &Statement,
        params: &[Value],
        mode: &KeyMode<'_>,
    ) -> CacheKey {
        let mut h = Sha256::new();
        h.update(b"pgcache-key-v2\0");
        h.update((scope.len() as u64).to_le_bytes());
        h.update(scope.as_bytes());
        h.update((statement.tokens().len() as u64).to_le_bytes());
        for token in statement.tokens() {
            h.update((token.len() as u64).to_le_bytes());
            h.update(token.as_bytes());
        }
        h.update((params.len() as u64).to_le_bytes());
        for p in params {
            p.hash_into(&mut h);
        }
        match mode {
            KeyMode::Simple => h.update(b"simple"),
            KeyMode::Incremental { column, xmin } => {
                h.update(if *xmin {
                    b"incremental-xmin\0".as_slice()
                } else {
                    b"incremental\0".as_slice()
                });
                h.update(column.as_bytes());
            }
        }
        CacheKey(hex::encode(h.finalize()))
    }

    /// The 64 hex characters.
    pub fn hex(&self) -> &str {
        &self.0
    }

    /// Entry names to try in order: `cache_` + 12 hex, then longer prefixes should a
    /// different key already hold the shorter name.
    pub fn names(&self) -> impl Iterator<Item = String> + '_ {
        (NAME_HEX..=64)
            .step_by(4)
            .map(|n| format!("cache_{}", &self.0[..n]))
    }

    /// The first (usual) entry name; also the name its lock is taken under.
    pub fn primary_name(&self) -> String {
        format!("cache_{}", &self.0[..NAME_HEX])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_query_params_and_mode() {
        let q = Statement::parse("SELECT * FROM t WHERE a = $1").unwrap();
        let q = &q;
        let s = "db1";
        let a = CacheKey::new(s, q, &[Value::Int8(1)], &KeyMode::Simple);
        assert_eq!(a, CacheKey::new(s, q, &[Value::Int8(1)], &KeyMode::Simple));
        assert_ne!(a, CacheKey::new(s, q, &[Value::Int8(2)], &KeyMode::Simple));
        assert_ne!(
            a,
            CacheKey::new("db2", q, &[Value::Int8(1)], &KeyMode::Simple)
        );
        let spaced = Statement::parse("select *\n from T where A=$1 -- x").unwrap();
        assert_eq!(
            a,
            CacheKey::new(s, &spaced, &[Value::Int8(1)], &KeyMode::Simple)
        );
        assert_ne!(
            a,
            CacheKey::new(
                s,
                q,
                &[Value::Int8(1)],
                &KeyMode::Incremental {
                    column: "a",
                    xmin: false
                }
            )
        );
        assert!(a.primary_name().starts_with("cache_"));
        assert_eq!(a.primary_name().len(), 6 + NAME_HEX);
        assert_eq!(a.names().last().map(|n| n.len()), Some(6 + 64));
    }
}
