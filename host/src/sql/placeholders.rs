//! psycopg2's `%s` placeholders, read as PostgreSQL's scanner reads the statement and
//! rewritten to the server's `$1, $2 ...`.
//!
//! Code written for psycopg2 (and the Python module pgcache grew out of) passes statements
//! such as `SELECT * FROM t WHERE a = %s` with a tuple of values. The statement is scanned by
//! libpg_query (the server's own scanner, no hand-written lexer): a placeholder is a `%`
//! operator character directly followed by a token that starts with `s`, outside string
//! literals, quoted identifiers and comments, so a `%s` inside `'...'` or a comment stays as
//! written. As psycopg2 does, `%%` stands for one `%` everywhere (`LIKE 'a%%'` is `LIKE 'a%'`,
//! `10 %% 3` is `10 % 3`); any other `%` outside literals (`%(name)s`, `%d`, `% 3`) is an
//! error, as psycopg2 refuses it.
//!
//! ```
//! use pgcache::sql::placeholders::numbered;
//!
//! let sql = numbered("SELECT * FROM t WHERE a = %s AND b LIKE 'x%%' AND c = '%s'").unwrap();
//! assert_eq!(sql, "SELECT * FROM t WHERE a = $1 AND b LIKE 'x%' AND c = '%s'");
//! // A statement written with `$1` is left as it is.
//! assert_eq!(numbered("SELECT $1::int % 2").unwrap(), "SELECT $1::int % 2");
//! ```

use std::borrow::Cow;

use pg_query::protobuf::{ScanToken, Token};

use crate::error::{Error, Result, shorten};

/// `sql` with psycopg2's placeholders (`%s`, and `%%` for `%`) rewritten to `$1 ... $n` in
/// order of appearance. A statement that already uses `$n` placeholders is returned unchanged;
/// one that mixes both styles is an error, as is a `%` that is neither `%s` nor `%%` outside
/// literals and comments.
///
/// Call it only when the caller gives parameters: without them psycopg2 leaves the statement
/// alone, and so should the caller.
pub fn numbered(sql: &str) -> Result<Cow<'_, str>> {
    let invalid = |why: String| Error::InvalidQuery(format!("{why} in `{}`", shorten(sql)));
    let tokens = pg_query::scan_tokens(sql).map_err(|e| invalid(e.to_string()))?;
    let text = |t: &ScanToken| -> Result<&str> {
        usize::try_from(t.start)
            .ok()
            .zip(usize::try_from(t.end).ok())
            .and_then(|(a, b)| sql.get(a..b))
            .ok_or_else(|| invalid("the scanner returned a position outside the text".into()))
    };
    let is_operator =
        |t: &ScanToken| t.token == Token::Ascii37 as i32 || t.token == Token::Op as i32;
    let dollar = tokens.iter().any(|t| t.token == Token::Param as i32);
    let percent = tokens
        .iter()
        .any(|t| text(t).is_ok_and(|s| s.contains('%')));
    if dollar || !percent {
        if dollar
            && tokens
                .iter()
                .any(|t| is_operator(t) && ends_in_placeholder(t, &tokens, sql))
        {
            return Err(invalid(
                "the statement mixes $n and %s placeholders; use one style".into(),
            ));
        }
        return Ok(Cow::Borrowed(sql));
    }

    let mut out = String::with_capacity(sql.len() + 8);
    let mut copied = 0usize; // bytes of `sql` accounted for
    let mut count = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        let start = usize::try_from(t.start).unwrap_or(usize::MAX);
        out.push_str(sql.get(copied..start).unwrap_or_default()); // whitespace between tokens
        let s = text(t)?;
        copied = start + s.len();
        i += 1;
        if !is_operator(t) {
            // Literals, identifiers, comments, keywords, numbers: only `%%` means anything.
            out.push_str(&s.replace("%%", "%"));
            continue;
        }
        let mut chars = s.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            if chars.next_if(|&(_, c)| c == '%').is_some() {
                out.push('%');
                continue;
            }
            let last = at + 1 == s.len();
            let next = tokens
                .get(i)
                .filter(|n| last && n.start == t.end)
                .map(&text)
                .transpose()?;
            let Some(rest) = next.and_then(|n| n.strip_prefix('s')) else {
                let after = s[at + 1..]
                    .chars()
                    .next()
                    .or_else(|| next.and_then(|n| n.chars().next()))
                    .unwrap_or(' ');
                return Err(invalid(format!(
                    "unsupported placeholder \"%{after}\": with parameters, write %s for a \
                     value and %% for a literal %"
                )));
            };
            count += 1;
            if out.ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$') {
                out.push(' ');
            }
            out.push('$');
            out.push_str(&count.to_string());
            if !rest.is_empty() {
                out.push(' ');
                out.push_str(rest);
            }
            copied = usize::try_from(tokens[i].end).unwrap_or(usize::MAX);
            i += 1;
        }
    }
    out.push_str(sql.get(copied..).unwrap_or_default());
    Ok(Cow::Owned(out))
}

/// Whether operator token `t` ends in an odd run of `%` directly followed by a token starting
/// with `s`: a psycopg2 placeholder.
fn ends_in_placeholder(t: &ScanToken, tokens: &[ScanToken], sql: &str) -> bool {
    let Some(s) = usize::try_from(t.start)
        .ok()
        .zip(usize::try_from(t.end).ok())
        .and_then(|(a, b)| sql.get(a..b))
    else {
        return false;
    };
    let run = s.len() - s.trim_end_matches('%').len();
    run % 2 == 1
        && tokens.iter().any(|n| {
            n.start == t.end
                && usize::try_from(n.start)
                    .ok()
                    .and_then(|a| sql.get(a..))
                    .is_some_and(|rest| rest.starts_with('s'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(sql: &str) -> String {
        match numbered(sql) {
            Ok(s) => s.into_owned(),
            Err(e) => panic!("{sql}: {e}"),
        }
    }

    #[test]
    fn placeholders_become_numbered_in_order() {
        assert_eq!(
            ok("INSERT INTO usuarios (nome, idade) VALUES (%s, %s)"),
            "INSERT INTO usuarios (nome, idade) VALUES ($1, $2)"
        );
        assert_eq!(ok("SELECT %s%s"), "SELECT $1 $2");
        assert_eq!(
            ok("SELECT * FROM t WHERE b<%s"),
            "SELECT * FROM t WHERE b<$1"
        );
        assert_eq!(ok("SELECT x%s"), "SELECT x $1");
        assert_eq!(ok("SELECT %sabc"), "SELECT $1 abc");
    }

    #[test]
    fn literals_and_comments_keep_their_percent_s() {
        assert_eq!(
            ok("SELECT '%s', E'%s', $q$%s$q$, \"%s\" FROM t -- %s\nWHERE a = %s /* %s */"),
            "SELECT '%s', E'%s', $q$%s$q$, \"%s\" FROM t -- %s\nWHERE a = $1 /* %s */"
        );
    }

    #[test]
    fn double_percent_is_one_everywhere() {
        assert_eq!(
            ok("SELECT 10 %% 3, 'a%%' WHERE b LIKE 'x%%' AND c = %s"),
            "SELECT 10 % 3, 'a%' WHERE b LIKE 'x%' AND c = $1"
        );
        assert_eq!(ok("SELECT x %%%s"), "SELECT x %$1");
        assert_eq!(ok("SELECT '%%s'"), "SELECT '%s'");
    }

    #[test]
    fn numbered_statements_and_plain_ones_stay() {
        let sql = "SELECT $1::int % 2, '%s'";
        assert!(matches!(numbered(sql), Ok(Cow::Borrowed(s)) if s == sql));
        assert!(matches!(
            numbered("SELECT 1"),
            Ok(Cow::Borrowed("SELECT 1"))
        ));
    }

    #[test]
    fn other_percent_forms_and_mixing_are_refused() {
        for sql in [
            "SELECT %(name)s",
            "SELECT 10 % 3, %s",
            "SELECT %d",
            "SELECT 1 %",
            "SELECT $1, %s",
        ] {
            assert!(
                matches!(numbered(sql), Err(Error::InvalidQuery(_))),
                "{sql}"
            );
        }
    }

    #[test]
    fn the_result_scans_to_the_same_number_of_parameters() {
        let sql = ok("SELECT a FROM t WHERE a = %s AND b IN (%s, %s) AND c LIKE '%%s'");
        let tokens = pg_query::scan_tokens(&sql).unwrap_or_default();
        let params = tokens
            .iter()
            .filter(|t| t.token == Token::Param as i32)
            .count();
        assert_eq!(params, 3, "{sql}");
        assert!(crate::Statement::parse(&sql).is_ok());
    }
}
