//! One value of a result, as the text and JSON outputs show it.
//!
//! One conversion serves the table, CSV and JSON formats: numbers stay numbers (floats in the
//! shortest form that reads back as the same value, as PostgreSQL prints them), `numeric` is
//! exact text, timestamps are RFC 3339, `bytea` is `\x` + hex, and `json`/`jsonb` values are
//! embedded in JSON output as the text the server stored, never re-encoded.

use crate::pg::types::PG_TYPE_KEY;
use crate::text;
use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, IntervalMonthDayNanoType, Time64MicrosecondType, TimestampMicrosecondType,
    UInt32Type,
};

/// A value ready for output.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    /// `real`: printed with the shortest digits that read back as the same `f32`.
    Float4(f32),
    /// `double precision`.
    Float8(f64),
    /// Shown as a string in JSON.
    Text(String),
    /// Already JSON text (`json`, `jsonb` columns).
    Json(String),
    List(Vec<Cell>),
}

impl Cell {
    /// Reads row `row` of `array`; `pg_type` is the column's PostgreSQL type, if known.
    pub fn of(array: &dyn Array, pg_type: Option<&str>, row: usize) -> Cell {
        if array.is_null(row) {
            return Cell::Null;
        }
        match array.data_type() {
            DataType::Boolean => Cell::Bool(array.as_boolean().value(row)),
            DataType::Int16 => Cell::Int(i64::from(array.as_primitive::<Int16Type>().value(row))),
            DataType::Int32 => Cell::Int(i64::from(array.as_primitive::<Int32Type>().value(row))),
            DataType::Int64 => Cell::Int(array.as_primitive::<Int64Type>().value(row)),
            DataType::UInt32 => Cell::Int(i64::from(array.as_primitive::<UInt32Type>().value(row))),
            DataType::Float32 => Cell::Float4(array.as_primitive::<Float32Type>().value(row)),
            DataType::Float64 => Cell::Float8(array.as_primitive::<Float64Type>().value(row)),
            DataType::Decimal128(_, scale) => Cell::Text(text::format_scaled(
                array.as_primitive::<Decimal128Type>().value(row),
                *scale,
            )),
            DataType::Utf8 => {
                let s = array.as_string::<i32>().value(row);
                match pg_type {
                    Some("json" | "jsonb") => Cell::Json(s.to_owned()),
                    _ => Cell::Text(s.to_owned()),
                }
            }
            DataType::Binary => Cell::Text(format!(
                "\\x{}",
                hex::encode(array.as_binary::<i32>().value(row))
            )),
            DataType::FixedSizeBinary(16) => {
                Cell::Text(uuid_text(array.as_fixed_size_binary().value(row)))
            }
            DataType::FixedSizeBinary(_) => {
                Cell::Text(hex::encode(array.as_fixed_size_binary().value(row)))
            }
            DataType::Date32 => Cell::Text(text::format_date(
                array.as_primitive::<Date32Type>().value(row),
            )),
            DataType::Time64(_) => Cell::Text(text::format_time(
                array.as_primitive::<Time64MicrosecondType>().value(row),
            )),
            DataType::Timestamp(_, tz) => Cell::Text(text::rfc3339(
                array.as_primitive::<TimestampMicrosecondType>().value(row),
                tz.is_some(),
            )),
            DataType::Interval(_) => {
                let v = array.as_primitive::<IntervalMonthDayNanoType>().value(row);
                Cell::Text(interval_text(v.months, v.days, v.nanoseconds / 1000))
            }
            DataType::List(_) => {
                let list = array.as_list::<i32>();
                let values = list.value(row);
                let element = pg_type.and_then(|t| t.strip_suffix("[]"));
                Cell::List(
                    (0..values.len())
                        .map(|i| Cell::of(values.as_ref(), element, i))
                        .collect(),
                )
            }
            _ => Cell::Text(
                arrow::util::display::array_value_to_string(array, row)
                    .unwrap_or_else(|e| format!("<{e}>")),
            ),
        }
    }

    /// Text for the table and CSV formats; NULL is empty.
    pub fn text(&self) -> String {
        match self {
            Cell::Null => String::new(),
            Cell::Bool(b) => if *b { "t" } else { "f" }.to_owned(),
            Cell::Int(v) => v.to_string(),
            Cell::Float4(v) => text::format_float4(*v),
            Cell::Float8(v) => text::format_float8(*v),
            Cell::Text(s) | Cell::Json(s) => s.clone(),
            Cell::List(items) => {
                let inner: Vec<String> = items
                    .iter()
                    .map(|c| match c {
                        Cell::Null => "NULL".to_owned(),
                        Cell::Text(s) | Cell::Json(s) => quote_element(s),
                        other => other.text(),
                    })
                    .collect();
                format!("{{{}}}", inner.join(","))
            }
        }
    }

    /// Appends the JSON for the json format to `out`: numbers as numbers with their exact
    /// digits, non-finite floats and other values as strings, `json`/`jsonb` as the stored
    /// text itself (its key order, duplicate keys and number digits untouched).
    pub fn write_json(&self, out: &mut String) {
        match self {
            Cell::Null => out.push_str("null"),
            Cell::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Cell::Int(v) => out.push_str(&v.to_string()),
            Cell::Float4(v) if v.is_finite() => out.push_str(&text::format_float4(*v)),
            Cell::Float8(v) if v.is_finite() => out.push_str(&text::format_float8(*v)),
            Cell::Float4(_) | Cell::Float8(_) => json_string(&self.text(), out),
            Cell::Text(s) => json_string(s, out),
            Cell::Json(s) => raw_json(s, out),
            Cell::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_json(out);
                }
                out.push(']');
            }
        }
    }
}

/// Appends `s` as a JSON string.
pub fn json_string(s: &str, out: &mut String) {
    // Serialising a str cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

/// Appends stored JSON text as it is. Line breaks can only be whitespace between tokens
/// (PostgreSQL refuses them unescaped inside strings), so they become spaces and a row stays
/// one line. Text that is not JSON (never stored by PostgreSQL) is written as a string.
fn raw_json(s: &str, out: &mut String) {
    if serde_json::from_str::<serde::de::IgnoredAny>(s).is_err() {
        return json_string(s, out);
    }
    out.extend(s.trim().chars().map(|c| match c {
        '\n' | '\r' => ' ',
        c => c,
    }));
}

/// The PostgreSQL type recorded in a field's metadata.
pub fn pg_type(field: &arrow::datatypes::Field) -> Option<&str> {
    field.metadata().get(PG_TYPE_KEY).map(String::as_str)
}

fn quote_element(s: &str) -> String {
    if !s.is_empty()
        && !s.contains([',', '{', '}', '"', '\\', ' '])
        && !s.eq_ignore_ascii_case("null")
    {
        return s.to_owned();
    }
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn uuid_text(b: &[u8]) -> String {
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn interval_text(months: i32, days: i32, micros: i64) -> String {
    let mut parts = Vec::new();
    let (years, months) = (months / 12, months % 12);
    if years != 0 {
        parts.push(format!("{years} year{}", if years == 1 { "" } else { "s" }));
    }
    if months != 0 {
        parts.push(format!(
            "{months} mon{}",
            if months == 1 { "" } else { "s" }
        ));
    }
    if days != 0 {
        parts.push(format!("{days} day{}", if days == 1 { "" } else { "s" }));
    }
    if micros != 0 || parts.is_empty() {
        let sign = if micros < 0 { "-" } else { "" };
        parts.push(format!("{sign}{}", text::format_time(micros.abs())));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_print_like_postgres_and_rfc3339() {
        assert_eq!(
            interval_text(14, 3, 3_723_000_000),
            "1 year 2 mons 3 days 01:02:03.000000"
        );
        assert_eq!(interval_text(0, 0, -1), "-00:00:00.000001");
        // PostgreSQL's plural: everything but exactly 1.
        assert_eq!(interval_text(-13, -1, 0), "-1 years -1 mons -1 days");
        assert_eq!(
            Cell::List(vec![Cell::Int(1), Cell::Null, Cell::Text("a b".into())]).text(),
            "{1,NULL,\"a b\"}"
        );
        let json = |c: Cell| {
            let mut out = String::new();
            c.write_json(&mut out);
            out
        };
        // Stored JSON passes through: big numbers, key order, duplicate keys.
        let stored = "{\"z\": 12345678901234567890123, \"a\": 1,\n \"a\": 2}";
        assert_eq!(
            json(Cell::Json(stored.into())),
            "{\"z\": 12345678901234567890123, \"a\": 1,  \"a\": 2}"
        );
        assert_eq!(json(Cell::Json("not json".into())), "\"not json\"");
        assert_eq!(json(Cell::Float8(f64::NAN)), "\"NaN\"");
        assert_eq!(json(Cell::Float4(0.1)), "0.1");
        assert_eq!(Cell::Float4(0.1).text(), "0.1");
        assert_eq!(
            json(Cell::List(vec![
                Cell::Int(1),
                Cell::Null,
                Cell::Text("\"".into())
            ])),
            "[1,null,\"\\\"\"]"
        );
    }
}
