//! Conversions between the WIT types and pgcache's: parameter values in, Arrow columns out.
//!
//! Columns leave as typed arrays (`list<f64>`, `list<s64>`, offsets + bytes), which wasmtime
//! copies into the guest in bulk; nothing here builds a value per row except for the few
//! types that have no flat layout (booleans, intervals, 128-bit decimals).

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::*;

use super::bindings::pgcache::db::database as wit;
use crate::pg::types::PG_TYPE_KEY;
use crate::{CacheStats, Lookback, RefreshReport, Value};

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

/// The WIT description of a result's columns.
pub fn schema(schema: &Schema) -> Vec<wit::Column> {
    schema
        .fields()
        .iter()
        .map(|f| {
            let (is_list, t) = match f.data_type() {
                DataType::List(inner) => (true, inner.data_type()),
                t => (false, t),
            };
            let (precision, scale) = match t {
                DataType::Decimal128(p, s) => (*p, *s),
                _ => (0, 0),
            };
            wit::Column {
                name: f.name().clone(),
                scalar: scalar_type(t),
                is_list,
                precision,
                scale,
                pg_type: f.metadata().get(PG_TYPE_KEY).cloned().unwrap_or_default(),
            }
        })
        .collect()
}

fn scalar_type(t: &DataType) -> wit::ScalarType {
    use wit::ScalarType as S;
    match t {
        DataType::Boolean => S::Boolean,
        DataType::Int16 => S::Int16,
        DataType::Int32 => S::Int32,
        DataType::Int64 => S::Int64,
        DataType::UInt32 => S::Uint32,
        DataType::Float32 => S::Float32,
        DataType::Float64 => S::Float64,
        DataType::Decimal128(..) => S::Decimal128,
        DataType::Binary => S::Binary,
        DataType::FixedSizeBinary(_) => S::FixedSizeBinary,
        DataType::Date32 => S::Date32,
        DataType::Time64(_) => S::Time64,
        DataType::Timestamp(_, None) => S::Timestamp,
        DataType::Timestamp(_, Some(_)) => S::Timestamptz,
        DataType::Interval(_) => S::Interval,
        _ => S::Utf8,
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

/// An Arrow column as WIT column values.
pub fn column(array: &ArrayRef) -> wit::ColumnValues {
    let data = match array.data_type() {
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            let offsets = list.value_offsets();
            let (first, last) = (offsets[0], offsets[offsets.len() - 1]);
            let elements = list.values().slice(first as usize, (last - first) as usize);
            wit::ColumnData::List(wit::ListData {
                offsets: offsets.iter().map(|o| o - first).collect(),
                elements: scalar(&elements),
                element_validity: validity(&elements),
            })
        }
        _ => wit::ColumnData::Scalar(scalar(array)),
    };
    wit::ColumnValues {
        len: array.len() as u32,
        data,
        validity: validity(array),
    }
}

/// The validity bitmap, least significant bit first, starting at the array's first value.
fn validity(array: &dyn Array) -> Option<Vec<u8>> {
    let nulls = array.logical_nulls()?;
    if nulls.null_count() == 0 {
        return None;
    }
    Some(nulls.inner().sliced().as_slice().to_vec())
}

fn var_binary(offsets: &[i32], values: &[u8]) -> wit::VarBinary {
    let (first, last) = (offsets[0], offsets[offsets.len() - 1]);
    wit::VarBinary {
        offsets: offsets.iter().map(|o| o - first).collect(),
        data: values[first as usize..last as usize].to_vec(),
    }
}

/// The values of a primitive array with NULL slots set to zero, so a guest that sums a column
/// without looking at validity still gets the sum of the values present.
fn zeroed<T: ArrowPrimitiveType>(a: &dyn Array) -> Vec<T::Native> {
    let p = a.as_primitive::<T>();
    let mut values = p.values().to_vec();
    if let Some(nulls) = p.nulls().filter(|n| n.null_count() > 0) {
        for i in nulls
            .iter()
            .enumerate()
            .filter(|(_, valid)| !valid)
            .map(|(i, _)| i)
        {
            values[i] = T::Native::default();
        }
    }
    values
}

fn scalar(a: &dyn Array) -> wit::ScalarData {
    use wit::ScalarData as D;
    match a.data_type() {
        DataType::Boolean => D::Boolean(a.as_boolean().values().iter().collect()),
        DataType::Int16 => D::Int16(zeroed::<Int16Type>(a)),
        DataType::Int32 => D::Int32(zeroed::<Int32Type>(a)),
        DataType::Int64 => D::Int64(zeroed::<Int64Type>(a)),
        DataType::UInt32 => D::Uint32(zeroed::<UInt32Type>(a)),
        DataType::Float32 => D::Float32(zeroed::<Float32Type>(a)),
        DataType::Float64 => D::Float64(zeroed::<Float64Type>(a)),
        DataType::Decimal128(..) => D::Decimal128(
            zeroed::<Decimal128Type>(a)
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        ),
        DataType::Utf8 => {
            let s = a.as_string::<i32>();
            D::Utf8(var_binary(s.value_offsets(), s.value_data()))
        }
        DataType::Binary => {
            let b = a.as_binary::<i32>();
            D::Binary(var_binary(b.value_offsets(), b.value_data()))
        }
        DataType::FixedSizeBinary(width) => {
            let f = a.as_fixed_size_binary();
            let w = *width as usize;
            let start = f.offset() * w;
            D::FixedSizeBinary(wit::FixedBinary {
                width: *width as u32,
                data: f.value_data()[start..start + f.len() * w].to_vec(),
            })
        }
        DataType::Date32 => D::Date32(zeroed::<Date32Type>(a)),
        DataType::Time64(_) => D::Time64(zeroed::<Time64MicrosecondType>(a)),
        DataType::Timestamp(_, None) => D::Timestamp(zeroed::<TimestampMicrosecondType>(a)),
        DataType::Timestamp(_, Some(_)) => D::Timestamptz(zeroed::<TimestampMicrosecondType>(a)),
        DataType::Interval(_) => D::Interval(
            a.as_primitive::<IntervalMonthDayNanoType>()
                .values()
                .iter()
                .map(|v| wit::Interval {
                    months: v.months,
                    days: v.days,
                    microseconds: v.nanoseconds / 1000,
                })
                .collect(),
        ),
        // pgcache produces no other types; show anything else as text.
        _ => {
            let text: Vec<String> = (0..a.len())
                .map(|i| arrow::util::display::array_value_to_string(a, i).unwrap_or_default())
                .collect();
            let mut offsets = vec![0i32];
            let mut data = Vec::new();
            for t in &text {
                data.extend_from_slice(t.as_bytes());
                offsets.push(data.len() as i32);
            }
            D::Utf8(wit::VarBinary { offsets, data })
        }
    }
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
    use arrow::array::{Float64Array, Int32Array, ListArray, StringArray};
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
