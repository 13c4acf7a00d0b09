//! Values of the ordering column: the watermark, part bounds and cut points, kept exactly as
//! typed, compared on the host the same way the server orders them, and written back into SQL
//! as typed literals.
//!
//! Text is ordered byte-wise on both sides (`COLLATE "C"` in the SQL pgcache sends), so the
//! host's comparison agrees with the server's whatever the database's locale. Dates and
//! timestamps are written exactly over PostgreSQL's whole range ([`super::civil`]).

use std::cmp::Ordering;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Int16Type, Int32Type, Int64Type, TimestampMicrosecondType,
};
use serde::{Deserialize, Serialize};

use super::civil;
use crate::pg::numeric;
use crate::pg::types::ColumnKind;

/// A value of an ordering column. Timestamps are Unix microseconds, dates Unix days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum OrderValue {
    /// `smallint`, `integer`, `bigint`.
    Int(i64),
    /// `numeric`, as exact decimal text.
    Numeric(String),
    /// `timestamp` without time zone.
    Timestamp(i64),
    /// `timestamptz`.
    TimestampTz(i64),
    /// `date`.
    Date(i32),
    /// `text`, `varchar`.
    Text(String),
}

impl std::fmt::Display for OrderValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OrderValue::Int(v) => write!(f, "{v}"),
            OrderValue::Numeric(v) | OrderValue::Text(v) => f.write_str(v),
            // The sentinel reads as what it stands for; only SQL needs the finite bound.
            OrderValue::Timestamp(i64::MAX) | OrderValue::TimestampTz(i64::MAX) => {
                f.write_str("infinity")
            }
            OrderValue::Timestamp(v) => f.write_str(&civil::format_timestamp(*v, false)),
            OrderValue::TimestampTz(v) => f.write_str(&civil::format_timestamp(*v, true)),
            OrderValue::Date(v) => f.write_str(&civil::format_date(*v)),
        }
    }
}

impl OrderValue {
    /// Total order matching the server's for values of one column.
    pub fn compare(&self, other: &OrderValue) -> Ordering {
        use OrderValue::*;
        match (self, other) {
            (Int(a), Int(b)) | (Timestamp(a), Timestamp(b)) | (TimestampTz(a), TimestampTz(b)) => {
                a.cmp(b)
            }
            (Date(a), Date(b)) => a.cmp(b),
            (Numeric(a), Numeric(b)) => numeric::cmp_text(a, b),
            (Text(a), Text(b)) => a.as_bytes().cmp(b.as_bytes()),
            // Values of one column always share a variant; order variants for totality.
            _ => self.rank().cmp(&other.rank()),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            OrderValue::Int(_) => 0,
            OrderValue::Numeric(_) => 1,
            OrderValue::Timestamp(_) => 2,
            OrderValue::TimestampTz(_) => 3,
            OrderValue::Date(_) => 4,
            OrderValue::Text(_) => 5,
        }
    }

    /// A typed SQL literal for this value: built from the typed value, never from user text
    /// (text values are escaped as `E'...'` literals). Dates and timestamps are exact for
    /// every value PostgreSQL can hold; `Timestamp(i64::MAX)`, the value decoding saturates
    /// to above Unix microsecond range as well as `infinity`, is the finite instant it counts,
    /// so `col >= literal` re-reads every row stored with it.
    pub fn sql_literal(&self) -> String {
        match self {
            OrderValue::Int(v) => format!("'{v}'::int8"),
            OrderValue::Numeric(v) => format!("'{v}'::numeric"),
            OrderValue::Timestamp(v) => {
                format!("'{}'::timestamp", civil::format_timestamp(*v, false))
            }
            OrderValue::TimestampTz(v) => {
                format!("'{}'::timestamptz", civil::format_timestamp(*v, true))
            }
            OrderValue::Date(v) => format!("'{}'::date", civil::format_date(*v)),
            OrderValue::Text(v) => {
                let mut lit = String::with_capacity(v.len() + 4);
                lit.push_str("E'");
                for c in v.chars() {
                    match c {
                        '\'' => lit.push_str("''"),
                        '\\' => lit.push_str("\\\\"),
                        c => lit.push(c),
                    }
                }
                lit.push_str("'::text");
                lit
            }
        }
    }

    /// This value moved down by `lookback` (saturating), for re-reading a window of late data.
    pub fn minus(&self, lookback: &Lookback) -> OrderValue {
        match (self, lookback) {
            (OrderValue::Int(v), Lookback::Amount(n)) => OrderValue::Int(v.saturating_sub(*n)),
            (OrderValue::Numeric(v), Lookback::Amount(n)) => {
                let scale = v.split_once('.').map_or(0, |(_, f)| f.len()).min(38) as i8;
                match numeric_scaled(v, scale) {
                    Some(x) => OrderValue::Numeric(numeric::format_scaled(
                        x.saturating_sub(i128::from(*n).saturating_mul(10i128.pow(scale as u32))),
                        scale,
                    )),
                    None => self.clone(),
                }
            }
            (OrderValue::Timestamp(v), Lookback::Micros(m)) if *v != i64::MAX => {
                OrderValue::Timestamp(v.saturating_sub(*m))
            }
            (OrderValue::TimestampTz(v), Lookback::Micros(m)) if *v != i64::MAX => {
                OrderValue::TimestampTz(v.saturating_sub(*m))
            }
            (OrderValue::Date(v), Lookback::Micros(m)) if *v != i32::MAX => {
                let days = (m + 86_399_999_999) / 86_400_000_000;
                OrderValue::Date(v.saturating_sub(i32::try_from(days).unwrap_or(i32::MAX)))
            }
            _ => self.clone(),
        }
    }
}

/// How far below the stored maximum a refresh re-reads, for rows that arrive late by design.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lookback {
    /// For time columns: a duration in microseconds.
    Micros(i64),
    /// For integer and numeric columns: an amount of the column's unit.
    Amount(i64),
}

impl Lookback {
    /// Reads a window as people write it: `2h`, `30min`, `90s`, `1d`, `500ms` for time
    /// columns; a plain integer for integer and numeric columns.
    pub fn parse(text: &str) -> Result<Lookback, String> {
        let t = text.trim();
        if let Ok(n) = t.parse::<i64>() {
            return Ok(Lookback::Amount(n));
        }
        let split = t
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let n: f64 = number
            .parse()
            .map_err(|_| format!("lookback {text:?}: expected e.g. 2h, 30min, 1d or 1000"))?;
        let micros_per = match unit.trim() {
            "us" => 1.0,
            "ms" => 1e3,
            "s" | "sec" | "secs" => 1e6,
            "m" | "min" | "mins" => 60e6,
            "h" | "hour" | "hours" => 3600e6,
            "d" | "day" | "days" => 86_400e6,
            other => {
                return Err(format!(
                    "lookback {text:?}: unknown unit {other:?} (use us, ms, s, min, h or d)"
                ));
            }
        };
        Ok(Lookback::Micros((n * micros_per) as i64))
    }
}

/// `text` as an integer scaled by `10^scale`, when exact.
fn numeric_scaled(text: &str, scale: i8) -> Option<i128> {
    let mut wire = Vec::new();
    numeric::encode_text(text, &mut wire).ok()?;
    numeric::to_i128(&wire, scale).ok()
}

/// The ordering column's kind, when it can order an incremental query.
pub(crate) fn orderable(kind: &ColumnKind, pg_type: &str) -> bool {
    match kind {
        ColumnKind::Int2 | ColumnKind::Int4 | ColumnKind::Int8 => true,
        ColumnKind::Decimal { .. } | ColumnKind::NumericText => true,
        ColumnKind::Timestamp | ColumnKind::TimestampTz | ColumnKind::Date => true,
        ColumnKind::Text => pg_type == "text" || pg_type.starts_with("varchar"),
        _ => false,
    }
}

/// Whether the server must compare this column with `COLLATE "C"` to agree with the host.
pub(crate) fn needs_c_collation(kind: &ColumnKind) -> bool {
    matches!(kind, ColumnKind::Text)
}

/// A read-only view of an ordering column in a batch, comparable with [`OrderValue`]s.
pub(crate) struct OrderColumn<'a> {
    array: &'a dyn Array,
    /// The column is an unconstrained `numeric` carried as text.
    numeric_text: bool,
}

impl<'a> OrderColumn<'a> {
    /// A view of `array`; `numeric_text` says whether its `Utf8` values are numbers.
    pub fn new(array: &'a dyn Array, numeric_text: bool) -> OrderColumn<'a> {
        OrderColumn {
            array,
            numeric_text,
        }
    }

    pub fn is_null(&self, i: usize) -> bool {
        self.array.is_null(i)
    }

    /// The value at row `i`, which must not be NULL.
    pub fn value(&self, i: usize) -> OrderValue {
        let a = self.array;
        match a.data_type() {
            DataType::Int16 => OrderValue::Int(i64::from(a.as_primitive::<Int16Type>().value(i))),
            DataType::Int32 => OrderValue::Int(i64::from(a.as_primitive::<Int32Type>().value(i))),
            DataType::Int64 => OrderValue::Int(a.as_primitive::<Int64Type>().value(i)),
            DataType::Decimal128(_, s) => OrderValue::Numeric(numeric::format_scaled(
                a.as_primitive::<Decimal128Type>().value(i),
                *s,
            )),
            DataType::Timestamp(_, None) => {
                OrderValue::Timestamp(a.as_primitive::<TimestampMicrosecondType>().value(i))
            }
            DataType::Timestamp(_, Some(_)) => {
                OrderValue::TimestampTz(a.as_primitive::<TimestampMicrosecondType>().value(i))
            }
            DataType::Date32 => OrderValue::Date(a.as_primitive::<Date32Type>().value(i)),
            DataType::Utf8 if self.numeric_text => {
                OrderValue::Numeric(a.as_string::<i32>().value(i).to_owned())
            }
            DataType::Utf8 => OrderValue::Text(a.as_string::<i32>().value(i).to_owned()),
            // `orderable` admits only the types above, and every caller checks it first.
            other => OrderValue::Text(format!("<unorderable {other}>")),
        }
    }

    /// Compares row `i` (not NULL) with `v`.
    pub fn compare(&self, i: usize, v: &OrderValue) -> Ordering {
        let a = self.array;
        match (a.data_type(), v) {
            (DataType::Int16, OrderValue::Int(x)) => {
                i64::from(a.as_primitive::<Int16Type>().value(i)).cmp(x)
            }
            (DataType::Int32, OrderValue::Int(x)) => {
                i64::from(a.as_primitive::<Int32Type>().value(i)).cmp(x)
            }
            (DataType::Int64, OrderValue::Int(x)) => a.as_primitive::<Int64Type>().value(i).cmp(x),
            (DataType::Timestamp(_, _), OrderValue::Timestamp(x) | OrderValue::TimestampTz(x)) => {
                a.as_primitive::<TimestampMicrosecondType>().value(i).cmp(x)
            }
            (DataType::Date32, OrderValue::Date(x)) => {
                a.as_primitive::<Date32Type>().value(i).cmp(x)
            }
            (DataType::Decimal128(_, s), OrderValue::Numeric(x)) => match numeric_scaled(x, *s) {
                Some(x) => a.as_primitive::<Decimal128Type>().value(i).cmp(&x),
                None => numeric::cmp_text(
                    &numeric::format_scaled(a.as_primitive::<Decimal128Type>().value(i), *s),
                    x,
                ),
            },
            (DataType::Utf8, OrderValue::Numeric(x)) => {
                numeric::cmp_text(a.as_string::<i32>().value(i), x)
            }
            (DataType::Utf8, OrderValue::Text(x)) => {
                a.as_string::<i32>().value(i).as_bytes().cmp(x.as_bytes())
            }
            _ => self.value(i).compare(v),
        }
    }

    /// Compares rows `i` and `j` (neither NULL).
    pub fn compare_rows(&self, i: usize, j: usize) -> Ordering {
        self.compare(i, &self.value(j))
    }

    /// First index in `from..to` whose value is not less than `v` (rows sorted ascending).
    pub fn lower_bound(&self, from: usize, to: usize, v: &OrderValue) -> usize {
        from + partition_point(to - from, |k| self.compare(from + k, v) == Ordering::Less)
    }

    /// First index in `from..to` whose value is greater than `v` (rows sorted ascending).
    pub fn upper_bound(&self, from: usize, to: usize, v: &OrderValue) -> usize {
        from + partition_point(to - from, |k| {
            self.compare(from + k, v) != Ordering::Greater
        })
    }
}

fn partition_point(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) { lo = mid + 1 } else { hi = mid }
    }
    lo
}

/// The comma-separated list used in error messages.
pub const SUPPORTED_ORDER_TYPES: &str =
    "smallint, integer, bigint, numeric, date, timestamp, timestamptz, text, varchar";

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};

    #[test]
    fn literals_are_typed_and_escaped() {
        assert_eq!(OrderValue::Int(-5).sql_literal(), "'-5'::int8");
        assert_eq!(
            OrderValue::TimestampTz(1_706_702_400_000_123).sql_literal(),
            "'2024-01-31 12:00:00.000123+00'::timestamptz"
        );
        assert_eq!(
            OrderValue::Text("it's \\ $$".into()).sql_literal(),
            "E'it''s \\\\ $$'::text"
        );
        assert_eq!(
            OrderValue::TimestampTz(i64::MAX).sql_literal(),
            "'294247-01-10 04:00:54.775807+00'::timestamptz"
        );
        assert_eq!(
            OrderValue::Date(2_145_042_905).sql_literal(),
            "'5874897-12-31'::date"
        );
        assert_eq!(OrderValue::Date(i32::MAX).sql_literal(), "'infinity'::date");
    }

    #[test]
    fn bounds_search_sorted_columns() {
        let a = Int64Array::from(vec![1, 2, 2, 2, 5]);
        let c = OrderColumn::new(&a, false);
        assert_eq!(c.lower_bound(0, 5, &OrderValue::Int(2)), 1);
        assert_eq!(c.upper_bound(0, 5, &OrderValue::Int(2)), 4);
        assert_eq!(c.lower_bound(0, 5, &OrderValue::Int(9)), 5);
        let s = StringArray::from(vec!["B", "a", "b"]);
        let c = OrderColumn::new(&s, false);
        assert_eq!(c.lower_bound(0, 3, &OrderValue::Text("a".into())), 1);
    }

    #[test]
    fn lookback_moves_down_exactly() {
        assert_eq!(
            OrderValue::Int(100).minus(&Lookback::Amount(30)),
            OrderValue::Int(70)
        );
        assert_eq!(
            OrderValue::Numeric("10.50".into()).minus(&Lookback::Amount(1)),
            OrderValue::Numeric("9.50".into())
        );
        assert_eq!(
            OrderValue::TimestampTz(10_000_000).minus(&Lookback::Micros(1_000_000)),
            OrderValue::TimestampTz(9_000_000)
        );
        assert_eq!(
            OrderValue::Date(10).minus(&Lookback::Micros(1)),
            OrderValue::Date(9)
        );
    }

    #[test]
    fn serialises_with_type_tags() {
        let json = serde_json::to_string(&OrderValue::TimestampTz(5)).unwrap();
        assert_eq!(json, r#"{"type":"timestamptz","value":5}"#);
        let back: OrderValue = serde_json::from_str(&json).unwrap();
        assert_eq!(back, OrderValue::TimestampTz(5));
    }
}
