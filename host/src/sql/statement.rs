//! One SQL statement as PostgreSQL's own scanner and parser (libpg_query, through the
//! `pg_query` crate) read it: the text that runs, the normalised text the cache key is made
//! of, and the parse tree the checks look at.
//!
//! Nothing here decides what a statement means by looking at its characters: comments,
//! string literals, dollar quotes and string continuations are whatever the server's lexer
//! says they are (`--` comments end at `\r` as well as `\n`, `'a'\n'b'` is one literal).

use pg_query::protobuf::{KeywordKind, ScanToken, Token};

use crate::error::{Error, Result, shorten};

/// What a statement is, by its parse tree's top node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    /// `SELECT`, `VALUES`, `TABLE t`, set operations of those, with or without `WITH`.
    Select,
    /// `INSERT`.
    Insert,
    /// `UPDATE`.
    Update,
    /// `DELETE`.
    Delete,
    /// `MERGE`.
    Merge,
    /// Anything else (`COPY`, `DROP`, `SET`, `EXPLAIN`, ...), by the parser's node name.
    Other(&'static str),
}

impl StatementKind {
    /// The statement's keyword, for messages (`SELECT`, `COPY`, `DROP` ...).
    pub fn keyword(self) -> &'static str {
        match self {
            StatementKind::Select => "SELECT",
            StatementKind::Insert => "INSERT",
            StatementKind::Update => "UPDATE",
            StatementKind::Delete => "DELETE",
            StatementKind::Merge => "MERGE",
            StatementKind::Other(name) => name,
        }
    }

    /// INSERT, UPDATE, DELETE or MERGE.
    pub fn changes_data(self) -> bool {
        matches!(
            self,
            StatementKind::Insert
                | StatementKind::Update
                | StatementKind::Delete
                | StatementKind::Merge
        )
    }
}

/// One parsed statement.
#[derive(Debug, Clone)]
pub struct Statement {
    text: String,
    normalised: String,
    tokens: Vec<String>,
    kind: StatementKind,
    tree: serde_json::Value,
}

impl Statement {
    /// Scans and parses `sql`, which must hold exactly one statement (trailing semicolons and
    /// comments around it are fine). Anything the parser rejects is an error naming the
    /// statement: nothing that does not parse ever runs.
    pub fn parse(sql: &str) -> Result<Statement> {
        let invalid = |why: String| Error::InvalidQuery(format!("{why} in `{}`", shorten(sql)));
        let tokens = pg_query::scan_tokens(sql).map_err(|e| invalid(parser_message(e)))?;
        let meaningful: Vec<&ScanToken> = tokens.iter().filter(|t| !is_comment(t)).collect();
        let is_semicolon = |t: &ScanToken| t.token == Token::Ascii59 as i32;
        let first = meaningful.iter().position(|t| !is_semicolon(t));
        let last = meaningful.iter().rposition(|t| !is_semicolon(t));
        let (Some(first), Some(last)) = (first, last) else {
            return Err(Error::InvalidQuery("the statement is empty".into()));
        };
        let body = &meaningful[first..=last];
        if body.iter().any(|t| is_semicolon(t)) {
            return Err(invalid(
                "more than one statement; run them one at a time".into(),
            ));
        }
        let span = |t: &ScanToken| -> Result<&str> {
            usize::try_from(t.start)
                .ok()
                .zip(usize::try_from(t.end).ok())
                .and_then(|(a, b)| sql.get(a..b))
                .ok_or_else(|| invalid("the scanner returned a position outside the text".into()))
        };
        let start = usize::try_from(body[0].start).unwrap_or(usize::MAX);
        let end = usize::try_from(body[body.len() - 1].end).unwrap_or(usize::MAX);
        let text = sql
            .get(start..end)
            .ok_or_else(|| invalid("the scanner returned a position outside the text".into()))?
            .to_owned();
        let mut key_tokens = Vec::with_capacity(body.len());
        for t in body {
            key_tokens.push(fold_case(t, span(t)?));
        }

        let parsed = pg_query::parse(&text, 0).map_err(|e| invalid(parser_message(e)))?;
        let stmts = &parsed.protobuf.stmts;
        if stmts.len() != 1 {
            return Err(invalid(format!(
                "{} statements; exactly one is run at a time",
                stmts.len()
            )));
        }
        // The tree as JSON: every node under its parser name, so checks can look at every
        // place a node may appear without a hand-written list of fields.
        let tree = serde_json::to_value(&stmts[0])
            .map_err(|e| invalid(format!("cannot read the parse tree: {e}")))?;
        let kind = kind_of(&tree);
        Ok(Statement {
            text,
            normalised: key_tokens.join(" "),
            tokens: key_tokens,
            kind,
            tree,
        })
    }

    /// The statement as it runs: the caller's text from its first to its last token, so
    /// comments around it and trailing semicolons are gone and it can be wrapped in a subquery.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The tokens joined by single spaces, comments dropped, keywords and unquoted identifiers
    /// in lower case (as the server folds them): equal for statements that differ only in
    /// whitespace, comments and the case the server ignores. What cache keys are made of.
    pub fn normalised(&self) -> &str {
        &self.normalised
    }

    /// The tokens of [`Statement::normalised`], one by one (hashed length-prefixed).
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// What the statement is.
    pub fn kind(&self) -> StatementKind {
        self.kind
    }

    /// The parse tree of the statement (the `RawStmt`), as JSON: each node is an object with
    /// one key, the parser's node name (`SelectStmt`, `FuncCall` ...).
    pub fn tree(&self) -> &serde_json::Value {
        &self.tree
    }
}

fn is_comment(t: &ScanToken) -> bool {
    t.token == Token::SqlComment as i32 || t.token == Token::CComment as i32
}

/// A token's text as the server reads it: keywords and unquoted identifiers are
/// case-insensitive (ASCII letters fold to lower case), everything else is kept as written.
fn fold_case(t: &ScanToken, text: &str) -> String {
    let keyword = t.keyword_kind != KeywordKind::NoKeyword as i32;
    let unquoted_ident = t.token == Token::Ident as i32
        && !text.starts_with('"')
        && !text.starts_with("U&")
        && !text.starts_with("u&");
    if keyword || unquoted_ident {
        text.to_ascii_lowercase()
    } else {
        text.to_owned()
    }
}

/// The parser's message, without the crate's prefix.
fn parser_message(e: pg_query::Error) -> String {
    match e {
        pg_query::Error::Parse(m) | pg_query::Error::Scan(m) => m,
        pg_query::Error::Conversion(_) => "the statement contains a NUL byte".into(),
        other => other.to_string(),
    }
}

/// The kind of a `RawStmt` tree.
fn kind_of(raw: &serde_json::Value) -> StatementKind {
    let name = raw
        .get("stmt")
        .and_then(|s| s.get("node"))
        .and_then(|n| n.as_object())
        .and_then(|o| o.keys().next())
        .map(String::as_str)
        .unwrap_or("");
    match name {
        "SelectStmt" => StatementKind::Select,
        "InsertStmt" => StatementKind::Insert,
        "UpdateStmt" => StatementKind::Update,
        "DeleteStmt" => StatementKind::Delete,
        "MergeStmt" => StatementKind::Merge,
        other => StatementKind::Other(other_keyword(other)),
    }
}

/// A readable keyword for the statements people try where they are not allowed.
fn other_keyword(node: &str) -> &'static str {
    match node {
        "CopyStmt" => "COPY",
        "DropStmt" => "DROP",
        "TruncateStmt" => "TRUNCATE",
        "VariableSetStmt" => "SET",
        "VariableShowStmt" => "SHOW",
        "ExplainStmt" => "EXPLAIN",
        "CreateStmt" | "CreateTableAsStmt" => "CREATE TABLE",
        "AlterTableStmt" => "ALTER TABLE",
        "AlterRoleStmt" | "AlterRoleSetStmt" => "ALTER ROLE",
        "CreateRoleStmt" => "CREATE ROLE",
        "GrantStmt" | "GrantRoleStmt" => "GRANT",
        "TransactionStmt" => "a transaction command",
        "DoStmt" => "DO",
        "CallStmt" => "CALL",
        "LockStmt" => "LOCK",
        "NotifyStmt" => "NOTIFY",
        "ListenStmt" => "LISTEN",
        "VacuumStmt" => "VACUUM",
        "PrepareStmt" => "PREPARE",
        "ExecuteStmt" => "EXECUTE",
        "DeclareCursorStmt" => "DECLARE",
        "CreateFunctionStmt" => "CREATE FUNCTION",
        "LoadStmt" => "LOAD",
        "DiscardStmt" => "DISCARD",
        "CheckPointStmt" => "CHECKPOINT",
        "ClusterStmt" => "CLUSTER",
        "ReindexStmt" => "REINDEX",
        "RuleStmt" => "CREATE RULE",
        "ViewStmt" => "CREATE VIEW",
        _ => "a statement of another kind",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(sql: &str) -> String {
        Statement::parse(sql).unwrap().normalised().to_owned()
    }

    #[test]
    fn whitespace_comments_and_case_do_not_change_the_key_text() {
        assert_eq!(
            n("SELECT\n\t*  FROM eventos"),
            n("select * from EVENTOS -- x")
        );
        assert_eq!(n("SELECT a,b FROM t"), n("SELECT a , b /* c */ FROM t;;"));
        assert_ne!(n("SELECT 'a  b'"), n("SELECT 'a b'"));
        assert_ne!(n("SELECT \"A\" FROM t"), n("SELECT a FROM t"));
        assert_eq!(n("SELECT $$ a  -- b $$"), "select $$ a  -- b $$");
    }

    #[test]
    fn comments_end_where_the_server_ends_them() {
        // PostgreSQL ends a `--` comment at `\r` too: the WHERE is part of the statement.
        let s = Statement::parse("SELECT count(*) FROM t -- note\rWHERE id < 3").unwrap();
        assert!(
            s.normalised().ends_with("where id < 3"),
            "{}",
            s.normalised()
        );
        assert!(s.text().contains("WHERE id < 3"));
        let s =
            Statement::parse("-- x\rCOPY (SELECT 1) TO PROGRAM 'id'\nWITH (FORMAT csv)").unwrap();
        assert_eq!(s.kind(), StatementKind::Other("COPY"));
        let s = Statement::parse("-- x\rDROP TABLE t,\ninsert").unwrap();
        assert_eq!(s.kind(), StatementKind::Other("DROP"));
    }

    #[test]
    fn string_continuation_is_one_literal() {
        let s = Statement::parse("SELECT 'foo'\n'bar'").unwrap();
        assert_eq!(s.text(), "SELECT 'foo'\n'bar'");
        assert_eq!(s.kind(), StatementKind::Select);
    }

    #[test]
    fn text_drops_surrounding_comments_and_semicolons() {
        let s = Statement::parse(" /* a */ SELECT 1 -- trailing\n ; ; ").unwrap();
        assert_eq!(s.text(), "SELECT 1");
        assert!(Statement::parse("  ; -- x").is_err());
        assert!(Statement::parse("SELECT 1; SELECT 2").is_err());
        assert!(Statement::parse("SELECT 'abc").is_err());
        assert!(Statement::parse("SELECT 1\0").is_err());
    }

    #[test]
    fn kinds() {
        let k = |s| Statement::parse(s).unwrap().kind();
        assert_eq!(
            k("WITH x AS (SELECT 1) SELECT * FROM x"),
            StatementKind::Select
        );
        assert_eq!(k("VALUES (1)"), StatementKind::Select);
        assert_eq!(k("TABLE t"), StatementKind::Select);
        assert_eq!(
            k("WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x"),
            StatementKind::Insert
        );
        assert_eq!(k("update t set a = 1"), StatementKind::Update);
        assert_eq!(k("SET ROLE postgres"), StatementKind::Other("SET"));
        assert_eq!(
            k("EXPLAIN ANALYZE DELETE FROM t"),
            StatementKind::Other("EXPLAIN")
        );
    }
}
