//! Arrow columns as WIT column values: the one conversion behind `rows.schema`, `rows.column`
//! and `rows.next-batch`, shared word for word by the wasm host and the adapter component
//! (`adapter/` includes this file), so a plugin gets the same bytes from either.
//!
//! Columns leave as typed arrays (`list<f64>`, `list<s64>`, offsets + bytes), which wasmtime
//! copies into the guest in bulk; nothing here builds a value per row except for the few
//! types that have no flat layout (booleans, intervals, 128-bit decimals). The includer
//! provides `super::wit` (its bindings of `pgcache:db/database`) and `super::PG_TYPE_KEY`.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::*;

use super::{PG_TYPE_KEY, wit};

/// The error of `rows.column(index)` past the last column.
pub fn no_column(index: u32, columns: usize) -> wit::Error {
    wit::Error::Other(format!(
        "no column {index}: the result has {columns} columns"
    ))
}

/// The error of `rows.next-batch(0)`.
pub fn zero_max_rows() -> wit::Error {
    wit::Error::BadParameter("next-batch: max-rows must be at least 1".into())
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
