//! Cache keys: sha256 over the normalised query, the typed parameters and the mode.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::value::Value;

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
    pub fn new(query: &str, params: &[Value], mode: &KeyMode<'_>) -> CacheKey {
        let mut h = Sha256::new();
        h.update(b"pgcache-key-v1\0");
        h.update((query.len() as u64).to_le_bytes());
        h.update(query.as_bytes());
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

/// Normalises a statement: comments dropped, runs of whitespace folded to one space, trailing
/// semicolons removed; string literals, quoted identifiers and dollar-quoted bodies untouched.
/// The result is both what is hashed and what is sent to the server, so equivalent spellings
/// share an entry and wrapping the statement in a subquery is always safe.
///
/// ```
/// # use pgcache::normalise_query;
/// assert_eq!(normalise_query("SELECT  a -- note\n FROM t ;").unwrap(), "SELECT a FROM t");
/// assert_eq!(normalise_query("SELECT 'a  b'").unwrap(), "SELECT 'a  b'");
/// assert!(normalise_query("  ; ").is_err());
/// ```
pub fn normalise_query(sql: &str) -> Result<String> {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    let mut space = false;
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80;
    let unterminated = |what: &str| {
        Error::InvalidQuery(format!(
            "unterminated {what} in `{}`",
            crate::error::shorten(sql)
        ))
    };
    while i < b.len() {
        let c = b[i];
        let prev = out.as_bytes().last().copied();
        let emit = |out: &mut String, s: &str, space: &mut bool| {
            if *space && !out.is_empty() {
                out.push(' ');
            }
            *space = false;
            out.push_str(s);
        };
        if c.is_ascii_whitespace() {
            space = true;
            i += 1;
        } else if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            space = true;
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            loop {
                if i + 1 >= b.len() {
                    return Err(unterminated("comment"));
                }
                if b[i] == b'/' && b[i + 1] == b'*' {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b[i + 1] == b'/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            space = true;
        } else if c == b'\'' {
            // E'...' strings take backslash escapes.
            let escapes = matches!(prev, Some(b'E' | b'e'))
                && !space
                && !out.is_empty()
                && !out.as_bytes()[..out.len() - 1]
                    .last()
                    .is_some_and(|p| ident(*p));
            let start = i;
            i += 1;
            loop {
                match b.get(i) {
                    None => return Err(unterminated("string literal")),
                    Some(b'\\') if escapes => i += 2,
                    Some(b'\'') if b.get(i + 1) == Some(&b'\'') => i += 2,
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(_) => i += 1,
                }
            }
            emit(&mut out, &sql[start..i], &mut space);
        } else if c == b'"' {
            let start = i;
            i += 1;
            loop {
                match b.get(i) {
                    None => return Err(unterminated("quoted identifier")),
                    Some(b'"') if b.get(i + 1) == Some(&b'"') => i += 2,
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(_) => i += 1,
                }
            }
            emit(&mut out, &sql[start..i], &mut space);
        } else if c == b'$' && (space || !prev.is_some_and(ident)) && dollar_tag(&b[i..]).is_some()
        {
            let tag_len = dollar_tag(&b[i..]).unwrap_or(0);
            let tag = &sql[i..i + tag_len];
            let start = i;
            let body = i + tag_len;
            let end = sql[body..]
                .find(tag)
                .ok_or_else(|| unterminated("dollar-quoted string"))?;
            i = body + end + tag_len;
            emit(&mut out, &sql[start..i], &mut space);
        } else {
            let start = i;
            i += 1;
            while i < b.len()
                && !b[i].is_ascii_whitespace()
                && !matches!(b[i], b'\'' | b'"' | b'$' | b'-' | b'/')
            {
                i += 1;
            }
            emit(&mut out, &sql[start..i], &mut space);
        }
    }
    while out.ends_with(';') || out.ends_with(' ') {
        out.pop();
    }
    if out.is_empty() {
        return Err(Error::InvalidQuery("the statement is empty".into()));
    }
    Ok(out)
}

/// Length of a dollar-quote tag (`$$`, `$body$`) at the start of `b`, if one is there.
fn dollar_tag(b: &[u8]) -> Option<usize> {
    let mut i = 1;
    if b.get(1).is_some_and(u8::is_ascii_digit) {
        return None; // `$1` is a parameter.
    }
    while let Some(&c) = b.get(i) {
        if c == b'$' {
            return Some(i + 1);
        }
        if !(c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80) {
            return None;
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_and_comments_fold_outside_literals() {
        let n = |s| normalise_query(s).unwrap();
        assert_eq!(n("SELECT\n\t*  FROM eventos"), "SELECT * FROM eventos");
        assert_eq!(n("SELECT 1 /* a /* nested */ b */ + 2"), "SELECT 1 + 2");
        assert_eq!(n("SELECT '  x  ' , \"a  b\""), "SELECT '  x  ' , \"a  b\"");
        assert_eq!(n("SELECT E'it\\'s  --x'"), "SELECT E'it\\'s  --x'");
        assert_eq!(n("SELECT 'it''s  a'"), "SELECT 'it''s  a'");
        assert_eq!(
            n("SELECT $$ a  -- b $$, $t$ x $t$"),
            "SELECT $$ a  -- b $$, $t$ x $t$"
        );
        assert_eq!(n("SELECT $1 ,  $2;;"), "SELECT $1 , $2");
        assert_eq!(n("SELECT a-b, 4/2 FROM t"), "SELECT a-b, 4/2 FROM t");
        assert_eq!(n("SELECT 1 -- trailing"), "SELECT 1");
    }

    #[test]
    fn unterminated_literals_are_errors() {
        assert!(normalise_query("SELECT 'abc").is_err());
        assert!(normalise_query("SELECT $$abc").is_err());
        assert!(normalise_query("SELECT /* abc").is_err());
    }

    #[test]
    fn keys_depend_on_query_params_and_mode() {
        let q = "SELECT * FROM t WHERE a = $1";
        let a = CacheKey::new(q, &[Value::Int8(1)], &KeyMode::Simple);
        assert_eq!(a, CacheKey::new(q, &[Value::Int8(1)], &KeyMode::Simple));
        assert_ne!(a, CacheKey::new(q, &[Value::Int8(2)], &KeyMode::Simple));
        assert_ne!(
            a,
            CacheKey::new(
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
