//! Checks on a parsed [`Statement`]: what `query` and `execute` accept, the functions that are
//! refused on others' behalf, and the clauses an incremental query cannot have. Every check
//! reads the parse tree of PostgreSQL's own parser; anything it cannot read is refused.

use serde_json::Value as Json;

use super::functions;
use super::statement::{Statement, StatementKind};
use crate::error::{Error, Result};

/// Node names of statements that change data.
const DATA_CHANGES: &[&str] = &["InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"];

impl Statement {
    /// Refuses anything but one read-only query: a SELECT (VALUES, TABLE, set operations),
    /// without `INTO` and without data-changing `WITH` parts.
    pub fn check_query(&self) -> Result<()> {
        if self.kind() != StatementKind::Select {
            return Err(Error::Denied(format!(
                "query runs one SELECT statement, not {} (data changes go through execute)",
                self.kind().keyword()
            )));
        }
        if nodes_named(self.tree(), "into_clause", &[])
            .iter()
            .any(|into| !into.is_null())
        {
            return Err(Error::Denied(
                "query does not run SELECT ... INTO, which creates a table".into(),
            ));
        }
        if let Some(node) = DATA_CHANGES
            .iter()
            .find(|n| find_node(self.tree(), n, &[]).is_some())
        {
            return Err(Error::Denied(format!(
                "query runs read-only statements only; this one contains {}",
                node.trim_end_matches("Stmt").to_ascii_uppercase()
            )));
        }
        Ok(())
    }

    /// With `dml_only`, refuses anything but INSERT, UPDATE, DELETE and MERGE, and changes to
    /// the system catalogs (`UPDATE pg_settings` is a `set_config` in disguise).
    pub fn check_execute(&self, dml_only: bool) -> Result<()> {
        if !dml_only {
            return Ok(());
        }
        if !self.kind().changes_data() {
            return Err(Error::Denied(format!(
                "execute runs INSERT, UPDATE, DELETE and MERGE only, not {}",
                self.kind().keyword()
            )));
        }
        let stmt = self
            .tree()
            .get("stmt")
            .and_then(|s| s.get("node"))
            .and_then(Json::as_object)
            .and_then(|o| o.values().next())
            .ok_or_else(|| Error::Denied("cannot read the statement's target".into()))?;
        let target = stmt
            .get("relation")
            .ok_or_else(|| Error::Denied("cannot read the statement's target".into()))?;
        let schema = target
            .get("schemaname")
            .and_then(Json::as_str)
            .unwrap_or("");
        let name = target.get("relname").and_then(Json::as_str).unwrap_or("");
        if schema == "pg_catalog"
            || schema == "information_schema"
            || (schema.is_empty() && name.starts_with("pg_"))
        {
            return Err(Error::Denied(format!(
                "execute does not change the system catalogs ({name})"
            )));
        }
        Ok(())
    }

    /// Refuses calls of functions with effects outside the transaction (see
    /// [`functions::DENIED_FUNCTIONS`]) and of the names in `extra`.
    pub fn check_functions(&self, extra: &[String]) -> Result<()> {
        for name in called_functions(self.tree(), &[]) {
            if let Some(why) = functions::denied(&name, extra) {
                return Err(Error::Denied(format!(
                    "function {name} is not allowed here: {why}"
                )));
            }
        }
        Ok(())
    }

    /// For incremental mode: refuses the clauses whose result is not a set that only grows
    /// (LIMIT, OFFSET, DISTINCT, GROUP BY, HAVING, window functions, INTERSECT, EXCEPT, and
    /// calls marked as aggregates), in the query, its FROM subqueries and its WITH parts.
    /// Returns the names of the other functions called in select lists, so the caller can
    /// ask the server whether any of them is an aggregate.
    pub fn check_incremental(&self) -> Result<Vec<String>> {
        let select = self
            .tree()
            .get("stmt")
            .and_then(|s| s.get("node"))
            .and_then(|n| n.get("SelectStmt"))
            .ok_or_else(|| Error::InvalidQuery("an incremental query must be a SELECT".into()))?;
        let mut names = Vec::new();
        let mut stack = vec![select];
        while let Some(s) = stack.pop() {
            check_select(s, &mut names, &mut stack)?;
        }
        names.sort();
        names.dedup();
        Ok(names)
    }
}

/// Refuses the clauses of one `SelectStmt`; pushes its set-operation arms, FROM subqueries
/// and WITH parts on `stack`, and the functions of its select list on `names`.
fn check_select<'a>(s: &'a Json, names: &mut Vec<String>, stack: &mut Vec<&'a Json>) -> Result<()> {
    let refuse = |clause: &str| {
        Err(Error::InvalidQuery(format!(
            "an incremental query cannot use {clause}: its result is not a set of rows that only \
             grows, so rows past the watermark would not be the new rows; cache it as a simple \
             query, or move {clause} into what you do with the result"
        )))
    };
    let present = |key: &str| match s.get(key) {
        None | Some(Json::Null) => false,
        Some(Json::Array(a)) => !a.is_empty(),
        Some(_) => true,
    };
    // `op` is the parser's SetOperation: 1 none, 2 UNION, 3 INTERSECT, 4 EXCEPT.
    match s.get("op").and_then(Json::as_i64) {
        Some(0..=2) => {}
        Some(3) => return refuse("INTERSECT"),
        Some(4) => return refuse("EXCEPT"),
        _ => return refuse("a set operation this version does not know"),
    }
    if present("limit_count") {
        return refuse("LIMIT");
    }
    if present("limit_offset") {
        return refuse("OFFSET");
    }
    if present("distinct_clause") {
        return refuse("DISTINCT");
    }
    if present("group_clause") {
        return refuse("GROUP BY");
    }
    if present("having_clause") {
        return refuse("HAVING");
    }
    if present("window_clause") {
        return refuse("WINDOW");
    }
    if let Some(targets) = s.get("target_list") {
        for call in nodes_named(targets, "FuncCall", &["SubLink"]) {
            if call.get("over").is_some_and(|o| !o.is_null()) {
                return refuse("a window function (OVER)");
            }
            let flag = |k: &str| call.get(k).and_then(Json::as_bool).unwrap_or(false);
            let has = |k: &str| match call.get(k) {
                None | Some(Json::Null) => false,
                Some(Json::Array(a)) => !a.is_empty(),
                Some(_) => true,
            };
            if flag("agg_star") || flag("agg_distinct") || flag("agg_within_group") {
                return refuse("an aggregate");
            }
            if has("agg_order") || has("agg_filter") {
                return refuse("an aggregate");
            }
            if let Some(name) = function_name(call) {
                names.push(name);
            }
        }
    }
    for arm in ["larg", "rarg"] {
        if let Some(a) = s.get(arm).filter(|a| !a.is_null()) {
            stack.push(a);
        }
    }
    if let Some(from) = s.get("from_clause") {
        for sub in nodes_named(from, "RangeSubselect", &["SubLink"]) {
            if let Some(q) = sub
                .get("subquery")
                .and_then(|q| q.get("node"))
                .and_then(|n| n.get("SelectStmt"))
            {
                stack.push(q);
            }
        }
    }
    if let Some(w) = s.get("with_clause") {
        for cte in nodes_named(w, "CommonTableExpr", &["SubLink"]) {
            if let Some(q) = cte
                .get("ctequery")
                .and_then(|q| q.get("node"))
                .and_then(|n| n.get("SelectStmt"))
            {
                stack.push(q);
            }
        }
    }
    Ok(())
}

/// The last name component of a `FuncCall`, as the parser folded it.
fn function_name(call: &Json) -> Option<String> {
    call.get("funcname")?
        .as_array()?
        .last()?
        .get("node")?
        .get("String")?
        .get("sval")?
        .as_str()
        .map(str::to_owned)
}

/// Every function called anywhere in `tree` (not below nodes named in `skip`).
fn called_functions(tree: &Json, skip: &[&str]) -> Vec<String> {
    nodes_named(tree, "FuncCall", skip)
        .into_iter()
        .map(|call| function_name(call).unwrap_or_else(|| "<unreadable name>".into()))
        .collect()
}

/// The first node named `name` in `tree`, if any.
fn find_node<'a>(tree: &'a Json, name: &str, skip: &[&str]) -> Option<&'a Json> {
    nodes_named(tree, name, skip).into_iter().next()
}

/// Every node named `name` in `tree` (depth-first, with an explicit stack: no recursion),
/// without looking below nodes named in `skip`.
fn nodes_named<'a>(tree: &'a Json, name: &str, skip: &[&str]) -> Vec<&'a Json> {
    let mut found = Vec::new();
    let mut stack = vec![tree];
    while let Some(v) = stack.pop() {
        match v {
            Json::Object(map) => {
                for (k, child) in map {
                    if k == name {
                        found.push(child);
                    }
                    if skip.contains(&k.as_str()) {
                        continue;
                    }
                    stack.push(child);
                }
            }
            Json::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sql: &str) -> Statement {
        Statement::parse(sql).unwrap()
    }

    #[test]
    fn query_takes_one_read_only_select() {
        for ok in [
            "SELECT 1",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "VALUES (1), (2)",
            "SELECT 1 UNION ALL SELECT 2",
        ] {
            parse(ok).check_query().unwrap();
        }
        for bad in [
            "SELECT 1 INTO newtable",
            "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
            "DELETE FROM t RETURNING *",
            "COPY t TO PROGRAM 'id'",
            "EXPLAIN ANALYZE DELETE FROM t",
            "SET ROLE postgres",
        ] {
            assert!(
                matches!(parse(bad).check_query(), Err(Error::Denied(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn execute_takes_data_changes_only() {
        for ok in [
            "INSERT INTO t VALUES (1)",
            "  update t set a = 1",
            "/* c */ DELETE FROM t",
            "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x",
            "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE",
        ] {
            parse(ok).check_execute(true).unwrap();
        }
        for bad in [
            "DROP TABLE t",
            "SET ROLE postgres",
            "COPY t TO PROGRAM 'x'",
            "SELECT 1",
            "-- x\rTRUNCATE t",
            "-- x\rCOPY (SELECT 1) TO PROGRAM 'id > /tmp/f'\nWITH (FORMAT csv)",
            "ALTER ROLE x SUPERUSER",
            "UPDATE pg_settings SET setting = 'x' WHERE name = 'search_path'",
            "UPDATE pg_catalog.pg_authid SET rolsuper = true",
        ] {
            assert!(
                matches!(parse(bad).check_execute(true), Err(Error::Denied(_))),
                "{bad}"
            );
        }
        parse("DROP TABLE t").check_execute(false).unwrap();
    }

    #[test]
    fn denied_functions_are_found_anywhere() {
        for bad in [
            "SELECT lo_from_bytea(0, 'x')",
            "SELECT pg_catalog.pg_logical_emit_message(false, 'p', repeat('x', 10))",
            "SELECT 1 WHERE pg_advisory_lock(1) IS NOT NULL",
            "SELECT * FROM t ORDER BY pg_notify('c', 'x')",
            "SELECT (SELECT set_config('role', 'x', false))",
            "SELECT * FROM dblink('', 'select 1') AS t(a int)",
            "SELECT \"pg_read_file\"('/etc/passwd')",
            "WITH x AS (SELECT query_to_xml('select 1', true, true, '')) SELECT * FROM x",
            "SELECT CASE WHEN true THEN PG_TERMINATE_BACKEND(1) END",
            "INSERT INTO t SELECT lo_import('/etc/passwd')",
            "SELECT count(*) FILTER (WHERE pg_cancel_backend(1)) FROM t",
        ] {
            let err = parse(bad).check_functions(&[]).unwrap_err();
            assert!(matches!(err, Error::Denied(_)), "{bad}: {err}");
        }
        parse("SELECT pg_sleep(0), now(), count(*) FROM t")
            .check_functions(&[])
            .unwrap();
        assert!(
            parse("SELECT my_fn()")
                .check_functions(&["my_fn".into()])
                .is_err()
        );
    }

    #[test]
    fn incremental_refuses_clauses_that_do_not_grow() {
        for (bad, clause) in [
            ("SELECT * FROM t ORDER BY id DESC LIMIT 10", "LIMIT"),
            ("SELECT * FROM t OFFSET 3", "OFFSET"),
            ("SELECT * FROM t FETCH FIRST 3 ROWS ONLY", "LIMIT"),
            ("SELECT DISTINCT dev, id FROM t", "DISTINCT"),
            ("SELECT dev, max(id) AS id FROM t GROUP BY dev", "GROUP BY"),
            ("SELECT count(*) AS id FROM t", "aggregate"),
            ("SELECT id, row_number() OVER () FROM t", "window"),
            ("SELECT * FROM (SELECT * FROM t LIMIT 5) s", "LIMIT"),
            (
                "WITH s AS (SELECT DISTINCT id FROM t) SELECT * FROM s",
                "DISTINCT",
            ),
            ("SELECT id FROM t EXCEPT SELECT id FROM u", "EXCEPT"),
            ("SELECT id FROM t UNION SELECT id FROM u LIMIT 1", "LIMIT"),
            ("SELECT id FROM t HAVING true", "HAVING"),
            ("SELECT id FROM t INTERSECT SELECT id FROM u", "INTERSECT"),
            ("SELECT id FROM t WINDOW w AS (ORDER BY id)", "WINDOW"),
        ] {
            let err = parse(bad).check_incremental().unwrap_err().to_string();
            assert!(err.contains(clause), "{bad}: {err}");
        }
        let names =
            parse("SELECT id, lower(name), max(x) FROM t WHERE id > (SELECT max(id) FROM u)")
                .check_incremental()
                .unwrap();
        assert_eq!(names, ["lower", "max"]);
        parse("SELECT id FROM t UNION ALL SELECT id FROM u ORDER BY id")
            .check_incremental()
            .unwrap();
    }
}
