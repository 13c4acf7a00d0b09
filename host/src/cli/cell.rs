//! One value of a result, as the text and JSON outputs show it.
//!
//! One conversion serves the table, CSV and JSON formats: numbers stay numbers, `numeric` is
//! exact text, timestamps are RFC 3339, `bytea` is `\x` + hex, `jsonb` is embedded as JSON.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, IntervalMonthDayNanoType, Time64MicrosecondType, TimestampMicrosecondType,
    UInt32Type,
};
use pgcache::pg::types::PG_TYPE_KEY;
use pgcache::text;
use serde_json::Value as Json;

/// A value ready for output.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
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
            DataType::Float32 => {
                Cell::Float(f64::from(array.as_primitive::<Float32Type>().value(row)))
            }
            DataType::Float64 => Cell::Float(array.as_primitive::<Float64Type>().value(row)),
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
            Cell::Float(v) => float_text(*v),
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

    /// The JSON value for the json format.
    pub fn json(&self) -> Json {
        match self {
            Cell::Null => Json::Null,
            Cell::Bool(b) => Json::Bool(*b),
            Cell::Int(v) => Json::from(*v),
            Cell::Float(v) if v.is_finite() => Json::from(*v),
            Cell::Float(v) => Json::String(float_text(*v)),
            Cell::Text(s) => Json::String(s.clone()),
            Cell::Json(s) => serde_json::from_str(s).unwrap_or_else(|_| Json::String(s.clone())),
            Cell::List(items) => Json::Array(items.iter().map(Cell::json).collect()),
        }
    }
}

/// The PostgreSQL type recorded in a field's metadata.
pub fn pg_type(field: &arrow::datatypes::Field) -> Option<&str> {
    field.metadata().get(PG_TYPE_KEY).map(String::as_str)
}

fn float_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    } else {
        v.to_string()
    }
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
        parts.push(format!(
            "{years} year{}",
            if years.abs() == 1 { "" } else { "s" }
        ));
    }
    if months != 0 {
        parts.push(format!(
            "{months} mon{}",
            if months.abs() == 1 { "" } else { "s" }
        ));
    }
    if days != 0 {
        parts.push(format!(
            "{days} day{}",
            if days.abs() == 1 { "" } else { "s" }
        ));
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
        assert_eq!(
            Cell::List(vec![Cell::Int(1), Cell::Null, Cell::Text("a b".into())]).text(),
            "{1,NULL,\"a b\"}"
        );
        assert_eq!(
            Cell::Json("{\"a\":1}".into()).json(),
            serde_json::json!({"a": 1})
        );
        assert_eq!(Cell::Float(f64::NAN).json(), serde_json::json!("NaN"));
    }
}
