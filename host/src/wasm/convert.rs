//! Conversions between the WIT types and pgcache's: parameter values in, Arrow columns out.
//!
//! Columns leave as typed arrays (`list<f64>`, `list<s64>`, offsets + bytes), which wasmtime
//! copies into the guest in bulk; nothing here builds a value per row except for the few
//! types that have no flat layout (booleans, intervals, 128-bit decimals).

use super::wit;
use crate::{CacheStats, Lookback, RefreshReport, Value};

pub use super::columns::{column, schema};

/// A WIT parameter value as pgcache's.
pub fn value(v: wit::Value) -> Result<Value, String> {
    Ok(match v {
        wit::Value::Null => Value::Null,
        wit::Value::Boolean(b) => Value::Bool(b),
        wit::Value::Int16(v) => Value::Int2(v),
        wit::Value::Int32(v) => Value::Int4(v),
        wit::Value::Int64(v) => Value::Int8(v),
        wit::Value::Float32(v) => Value::Float4(v),
        wit::Value::Float64(v) => Value::Float8(v),
        wit::Value::Numeric(s) => Value::Numeric(s),
        wit::Value::Text(s) => Value::Text(s),
        wit::Value::Bytea(b) => Value::Bytea(b),
        wit::Value::Date(d) => Value::Date(d),
        wit::Value::Time(t) => Value::Time(t),
        wit::Value::Timestamp(t) => Value::Timestamp(t),
        wit::Value::Timestamptz(t) => Value::TimestampTz(t),
        wit::Value::Interval(i) => Value::Interval {
            months: i.months,
            days: i.days,
            micros: i.microseconds,
        },
        wit::Value::Uuid(b) => Value::Uuid(
            b.try_into()
                .map_err(|b: Vec<u8>| format!("a uuid has 16 bytes, not {}", b.len()))?,
        ),
        wit::Value::Json(s) => Value::Json(s),
        wit::Value::Other(o) => Value::Other {
            type_name: o.type_name,
            bytes: o.bytes,
        },
    })
}

/// A WIT lookback as pgcache's.
pub fn lookback(l: wit::Lookback) -> Lookback {
    match l {
        wit::Lookback::Microseconds(m) => Lookback::Micros(m),
        wit::Lookback::Amount(n) => Lookback::Amount(n),
    }
}

/// Bytes a guest receives for `values` (for the per-result byte limit).
pub fn transfer_size(values: &wit::ColumnValues) -> u64 {
    fn scalar(d: &wit::ScalarData) -> u64 {
        use wit::ScalarData as D;
        (match d {
            D::Boolean(v) => v.len(),
            D::Int16(v) => v.len() * 2,
            D::Int32(v) | D::Date32(v) => v.len() * 4,
            D::Uint32(v) => v.len() * 4,
            D::Float32(v) => v.len() * 4,
            D::Int64(v) | D::Time64(v) | D::Timestamp(v) | D::Timestamptz(v) => v.len() * 8,
            D::Float64(v) => v.len() * 8,
            D::Decimal128(v) => v.len(),
            D::Utf8(v) | D::Binary(v) => v.offsets.len() * 4 + v.data.len(),
            D::FixedSizeBinary(v) => v.data.len(),
            D::Interval(v) => v.len() * 16,
        }) as u64
    }
    let data = match &values.data {
        wit::ColumnData::Scalar(d) => scalar(d),
        wit::ColumnData::List(l) => l.offsets.len() as u64 * 4 + scalar(&l.elements),
    };
    data + values.validity.as_ref().map_or(0, |v| v.len() as u64)
}

/// What an incremental refresh did, for the guest.
pub fn report(r: Option<&RefreshReport>) -> wit::RefreshReport {
    wit::RefreshReport {
        rows_from_database: r.map_or(0, |r| r.rows_from_database),
        rows_from_cache: r.map_or(0, |r| r.rows_from_cache),
        watermark: r
            .and_then(|r| r.watermark.as_ref())
            .map(ToString::to_string),
        full: r.is_some_and(|r| r.full),
    }
}

/// Cache statistics for the guest; `cache_dir` is the name the host shows it.
pub fn stats(s: CacheStats, cache_dir: &str) -> wit::Stats {
    wit::Stats {
        total_files: s.total_files as u32,
        total_size_mb: s.total_size_mb,
        total_records: s.total_records,
        cache_dir: cache_dir.to_owned(),
        entries: s
            .entries
            .into_iter()
            .map(|e| wit::EntryStats {
                name: e.name,
                query: e.query,
                mode: e.mode,
                order_column: e.order_column,
                rows: e.rows,
                bytes: e.bytes,
                watermark: e.watermark,
                created: e.created,
                refreshed: e.refreshed,
                hits: e.hits,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Float64Array, Int32Array, ListArray, StringArray};
    use arrow::datatypes::Int32Type;
    use std::sync::Arc;

    #[test]
    fn sliced_columns_start_at_zero() {
        let strings: ArrayRef = Arc::new(StringArray::from(vec![
            Some("ab"),
            None,
            Some("c"),
            Some(""),
        ]));
        let v = column(&strings.slice(1, 3));
        assert_eq!(v.len, 3);
        assert_eq!(v.validity, Some(vec![0b110]));
        let wit::ColumnData::Scalar(wit::ScalarData::Utf8(s)) = v.data else {
            panic!("utf8")
        };
        assert_eq!((s.offsets, s.data), (vec![0, 0, 1, 1], b"c".to_vec()));

        let floats: ArrayRef = Arc::new(Float64Array::from(vec![1.0, 2.5, 3.0]));
        let v = column(&floats.slice(1, 2));
        assert!(
            matches!(v.data, wit::ColumnData::Scalar(wit::ScalarData::Float64(ref f)) if f == &[2.5, 3.0])
        );
        assert_eq!(v.validity, None);
    }

    #[test]
    fn lists_carry_offsets_and_element_validity() {
        let list: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), None]),
            None,
            Some(vec![Some(3)]),
        ]));
        let v = column(&list);
        assert_eq!(v.validity, Some(vec![0b101]));
        let wit::ColumnData::List(l) = v.data else {
            panic!("list")
        };
        assert_eq!(l.offsets, vec![0, 2, 2, 3]);
        assert_eq!(l.element_validity, Some(vec![0b101]));
        assert!(matches!(l.elements, wit::ScalarData::Int32(ref i) if i == &[1, 0, 3]));
        let _ = Int32Array::from(vec![1]);
    }
}
