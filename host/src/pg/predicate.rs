//! Conditions on the rows of a wrapped query ([`super::fetch::Wrap`]) as types, rendered to
//! SQL here and nowhere else. Columns are named by position inside the wrap (`_c1, _c2 ...`),
//! so no user-chosen name is ever pasted; values are typed literals of the ordering column
//! ([`OrderValue::sql_literal`]) or integers.

use super::fetch::positional;
use super::order::{OrderValue, needs_c_collation};
use super::types::ColumnKind;

/// The ordering column of a wrapped query, compared the way pgcache orders it (byte-wise for
/// text: `COLLATE "C"`).
#[derive(Debug, Clone)]
pub(crate) struct OrderRef {
    index: usize,
    collate_c: bool,
}

impl OrderRef {
    /// Column `index` (zero-based) of the query, of `kind`.
    pub fn new(index: usize, kind: &ColumnKind) -> OrderRef {
        OrderRef {
            index,
            collate_c: needs_c_collation(kind),
        }
    }

    /// The expression to compare and ORDER BY.
    pub fn expr(&self) -> String {
        let mut expr = positional(self.index);
        if self.collate_c {
            expr.push_str(" COLLATE \"C\"");
        }
        expr
    }

    fn is_null(&self) -> String {
        format!("{} IS NULL", positional(self.index))
    }
}

/// A condition on the rows of a wrapped query.
#[derive(Debug, Clone)]
pub(crate) enum Predicate {
    /// Rows at or past `from` in the ordering column, and rows where it is NULL (which the
    /// writer counts and refuses): what a watermark refresh re-reads.
    AtLeast {
        /// The ordering column.
        column: OrderRef,
        /// The first value read.
        from: OrderValue,
    },
    /// Rows from `low` (inclusive) below `below` (exclusive), either end open when `None`;
    /// with `or_nulls_past`, also rows where the column is NULL or past that value: one of the
    /// ranges a parallel load splits a table into.
    Range {
        /// The ordering column.
        column: OrderRef,
        /// Inclusive lower bound.
        low: Option<OrderValue>,
        /// Exclusive upper bound.
        below: Option<OrderValue>,
        /// The last range also takes NULLs and the values past this one.
        or_nulls_past: Option<OrderValue>,
    },
    /// Row versions whose `xmin` column, widened to a full transaction id against the current
    /// snapshot, is at or past `horizon` (the xmin of an earlier snapshot): the versions an
    /// xmin-mode refresh may not have seen.
    XminAtLeast {
        /// Index of the `xmin` column in the query.
        index: usize,
        /// A full (epoch-qualified) transaction id.
        horizon: u64,
    },
}

impl Predicate {
    /// The condition in SQL, over the wrap's positional column names.
    pub fn sql(&self) -> String {
        match self {
            Predicate::AtLeast { column, from } => format!(
                "({} >= {} OR {})",
                column.expr(),
                from.sql_literal(),
                column.is_null()
            ),
            Predicate::Range {
                column,
                low,
                below,
                or_nulls_past,
            } => {
                let expr = column.expr();
                let bounds: Vec<String> = low
                    .iter()
                    .map(|v| format!("{expr} >= {}", v.sql_literal()))
                    .chain(
                        below
                            .iter()
                            .map(|v| format!("{expr} < {}", v.sql_literal())),
                    )
                    .collect();
                let range = match bounds.len() {
                    0 => "TRUE".to_owned(),
                    _ => format!("({})", bounds.join(" AND ")),
                };
                match or_nulls_past {
                    Some(past) => format!(
                        "({range} OR {} OR {expr} > {})",
                        column.is_null(),
                        past.sql_literal()
                    ),
                    None => range,
                }
            }
            Predicate::XminAtLeast { index, horizon } => {
                let x = positional(*index);
                // Widens the 32-bit xid to xid8 against the current snapshot's xmax.
                let xmax =
                    "pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::text::int8";
                format!(
                    "(({xmax} - (({xmax} - {x}::text::int8) & 4294967295))::text::xid8) >= '{horizon}'::xid8"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates_render_positional_names_and_typed_literals() {
        let id = OrderRef::new(2, &ColumnKind::Int8);
        let at = Predicate::AtLeast {
            column: id.clone(),
            from: OrderValue::Int(5),
        };
        assert_eq!(
            at.sql(),
            format!(
                "(_c3 >= {} OR _c3 IS NULL)",
                OrderValue::Int(5).sql_literal()
            )
        );
        let name = OrderRef::new(0, &ColumnKind::Text);
        assert_eq!(name.expr(), "_c1 COLLATE \"C\"");
        let first = Predicate::Range {
            column: id.clone(),
            low: None,
            below: Some(OrderValue::Int(10)),
            or_nulls_past: None,
        };
        assert_eq!(
            first.sql(),
            format!("(_c3 < {})", OrderValue::Int(10).sql_literal())
        );
        let last = Predicate::Range {
            column: id,
            low: Some(OrderValue::Int(10)),
            below: None,
            or_nulls_past: Some(OrderValue::Int(19)),
        };
        assert!(last.sql().contains("_c3 IS NULL"), "{}", last.sql());
        let x = Predicate::XminAtLeast {
            index: 0,
            horizon: 4_294_967_300,
        };
        assert!(x.sql().ends_with(">= '4294967300'::xid8"), "{}", x.sql());
    }
}
