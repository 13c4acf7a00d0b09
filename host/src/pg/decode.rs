//! Decoding PostgreSQL's binary wire format straight into Arrow builders.
//!
//! A [`BatchBuilder`] holds one [`Decoder`] per column and turns rows of raw field bytes (from
//! binary `COPY` or from binary `DataRow` messages alike) into record batches of bounded size.
//! Nothing is allocated per row except what the Arrow builders themselves grow.

use std::sync::Arc;

use arrow::array::builder::NullBufferBuilder;
use arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    FixedSizeBinaryBuilder, Float32Builder, Float64Builder, Int16Builder, Int32Builder,
    Int64Builder, IntervalMonthDayNanoBuilder, ListArray, StringBuilder, Time64MicrosecondBuilder,
    TimestampMicrosecondBuilder, UInt32Builder,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{Field, IntervalMonthDayNano, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::numeric;
use super::time;
use super::types::{ColumnKind, ColumnSpec};
use crate::error::{Error, Result};

/// One column's builder.
#[derive(Debug)]
pub(crate) enum Decoder {
    Bool(BooleanBuilder),
    Int2(Int16Builder),
    Int4(Int32Builder),
    Int8(Int64Builder),
    Float4(Float32Builder),
    Float8(Float64Builder),
    Oid(UInt32Builder),
    Decimal(Decimal128Builder, i8),
    NumericText(StringBuilder),
    Text(StringBuilder),
    Jsonb(StringBuilder),
    Bytea(BinaryBuilder),
    Uuid(FixedSizeBinaryBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Interval(IntervalMonthDayNanoBuilder),
    Inet(StringBuilder),
    Macaddr(StringBuilder),
    List {
        offsets: Vec<i32>,
        validity: NullBufferBuilder,
        child: Box<Decoder>,
        item: Arc<Field>,
    },
}

impl Decoder {
    pub fn new(kind: &ColumnKind, capacity: usize) -> Decoder {
        match kind {
            ColumnKind::Bool => Decoder::Bool(BooleanBuilder::with_capacity(capacity)),
            ColumnKind::Int2 => Decoder::Int2(Int16Builder::with_capacity(capacity)),
            ColumnKind::Int4 => Decoder::Int4(Int32Builder::with_capacity(capacity)),
            ColumnKind::Int8 => Decoder::Int8(Int64Builder::with_capacity(capacity)),
            ColumnKind::Float4 => Decoder::Float4(Float32Builder::with_capacity(capacity)),
            ColumnKind::Float8 => Decoder::Float8(Float64Builder::with_capacity(capacity)),
            ColumnKind::Oid => Decoder::Oid(UInt32Builder::with_capacity(capacity)),
            ColumnKind::Decimal { scale, .. } => Decoder::Decimal(
                Decimal128Builder::with_capacity(capacity).with_data_type(kind.data_type()),
                *scale,
            ),
            ColumnKind::NumericText => {
                Decoder::NumericText(StringBuilder::with_capacity(capacity, capacity * 8))
            }
            ColumnKind::Text => {
                Decoder::Text(StringBuilder::with_capacity(capacity, capacity * 16))
            }
            ColumnKind::Jsonb => {
                Decoder::Jsonb(StringBuilder::with_capacity(capacity, capacity * 32))
            }
            ColumnKind::Bytea => {
                Decoder::Bytea(BinaryBuilder::with_capacity(capacity, capacity * 16))
            }
            ColumnKind::Uuid => Decoder::Uuid(FixedSizeBinaryBuilder::with_capacity(capacity, 16)),
            ColumnKind::Date => Decoder::Date(Date32Builder::with_capacity(capacity)),
            ColumnKind::Time => Decoder::Time(Time64MicrosecondBuilder::with_capacity(capacity)),
            ColumnKind::Timestamp => {
                Decoder::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity))
            }
            ColumnKind::TimestampTz => Decoder::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            ),
            ColumnKind::Interval => {
                Decoder::Interval(IntervalMonthDayNanoBuilder::with_capacity(capacity))
            }
            ColumnKind::Inet => {
                Decoder::Inet(StringBuilder::with_capacity(capacity, capacity * 12))
            }
            ColumnKind::Macaddr => {
                Decoder::Macaddr(StringBuilder::with_capacity(capacity, capacity * 17))
            }
            ColumnKind::List(inner) => Decoder::List {
                offsets: {
                    let mut o = Vec::with_capacity(capacity + 1);
                    o.push(0);
                    o
                },
                validity: NullBufferBuilder::new(capacity),
                child: Box::new(Decoder::new(inner, capacity)),
                item: Arc::new(Field::new("item", inner.data_type(), true)),
            },
        }
    }

    /// Appends one value in binary wire format, or NULL.
    pub fn append(&mut self, value: Option<&[u8]>) -> Result<(), String> {
        let Some(v) = value else {
            self.append_null();
            return Ok(());
        };
        match self {
            Decoder::Bool(b) => b.append_value(fixed::<1>(v)?[0] != 0),
            Decoder::Int2(b) => b.append_value(i16::from_be_bytes(fixed(v)?)),
            Decoder::Int4(b) => b.append_value(i32::from_be_bytes(fixed(v)?)),
            Decoder::Int8(b) => b.append_value(i64::from_be_bytes(fixed(v)?)),
            Decoder::Float4(b) => b.append_value(f32::from_be_bytes(fixed(v)?)),
            Decoder::Float8(b) => b.append_value(f64::from_be_bytes(fixed(v)?)),
            Decoder::Oid(b) => b.append_value(u32::from_be_bytes(fixed(v)?)),
            Decoder::Decimal(b, scale) => b.append_value(numeric::to_i128(v, *scale)?),
            Decoder::NumericText(b) => b.append_value(numeric::to_text(v)?),
            Decoder::Text(b) => b.append_value(utf8(v)?),
            Decoder::Jsonb(b) => match v.split_first() {
                Some((1, json)) => b.append_value(utf8(json)?),
                _ => return Err("jsonb value has an unknown format version".into()),
            },
            Decoder::Bytea(b) => b.append_value(v),
            Decoder::Uuid(b) => b.append_value(fixed::<16>(v)?).map_err(|e| e.to_string())?,
            Decoder::Date(b) => b.append_value(time::date_from_pg(i32::from_be_bytes(fixed(v)?))),
            Decoder::Time(b) => b.append_value(time::time_of_day(i64::from_be_bytes(fixed(v)?))?),
            Decoder::Timestamp(b) => {
                b.append_value(time::timestamp_from_pg(i64::from_be_bytes(fixed(v)?))?)
            }
            Decoder::Interval(b) => b.append_value(interval(fixed::<16>(v)?)?),
            Decoder::Inet(b) => b.append_value(inet_text(v)?),
            Decoder::Macaddr(b) => {
                if v.len() != 6 && v.len() != 8 {
                    return Err(format!("macaddr value of {} bytes", v.len()));
                }
                let text: Vec<String> = v.iter().map(|x| format!("{x:02x}")).collect();
                b.append_value(text.join(":"));
            }
            Decoder::List {
                offsets,
                validity,
                child,
                ..
            } => {
                let added = append_array(child, v)?;
                let last = offsets.last().copied().unwrap_or(0);
                let next = i32::try_from(added)
                    .ok()
                    .and_then(|n| last.checked_add(n))
                    .ok_or("list is too long")?;
                offsets.push(next);
                validity.append_non_null();
            }
        }
        Ok(())
    }

    fn append_null(&mut self) {
        match self {
            Decoder::Bool(b) => b.append_null(),
            Decoder::Int2(b) => b.append_null(),
            Decoder::Int4(b) => b.append_null(),
            Decoder::Int8(b) => b.append_null(),
            Decoder::Float4(b) => b.append_null(),
            Decoder::Float8(b) => b.append_null(),
            Decoder::Oid(b) => b.append_null(),
            Decoder::Decimal(b, _) => b.append_null(),
            Decoder::NumericText(b)
            | Decoder::Text(b)
            | Decoder::Jsonb(b)
            | Decoder::Inet(b)
            | Decoder::Macaddr(b) => b.append_null(),
            Decoder::Bytea(b) => b.append_null(),
            Decoder::Uuid(b) => b.append_null(),
            Decoder::Date(b) => b.append_null(),
            Decoder::Time(b) => b.append_null(),
            Decoder::Timestamp(b) => b.append_null(),
            Decoder::Interval(b) => b.append_null(),
            Decoder::List {
                offsets, validity, ..
            } => {
                offsets.push(offsets.last().copied().unwrap_or(0));
                validity.append_null();
            }
        }
    }

    /// Takes the values appended so far as an array, leaving the builder empty.
    pub fn finish(&mut self) -> ArrayRef {
        match self {
            Decoder::Bool(b) => Arc::new(b.finish()),
            Decoder::Int2(b) => Arc::new(b.finish()),
            Decoder::Int4(b) => Arc::new(b.finish()),
            Decoder::Int8(b) => Arc::new(b.finish()),
            Decoder::Float4(b) => Arc::new(b.finish()),
            Decoder::Float8(b) => Arc::new(b.finish()),
            Decoder::Oid(b) => Arc::new(b.finish()),
            Decoder::Decimal(b, _) => Arc::new(b.finish()),
            Decoder::NumericText(b)
            | Decoder::Text(b)
            | Decoder::Jsonb(b)
            | Decoder::Inet(b)
            | Decoder::Macaddr(b) => Arc::new(b.finish()),
            Decoder::Bytea(b) => Arc::new(b.finish()),
            Decoder::Uuid(b) => Arc::new(b.finish()),
            Decoder::Date(b) => Arc::new(b.finish()),
            Decoder::Time(b) => Arc::new(b.finish()),
            Decoder::Timestamp(b) => Arc::new(b.finish()),
            Decoder::Interval(b) => Arc::new(b.finish()),
            Decoder::List {
                offsets,
                validity,
                child,
                item,
            } => {
                let values = child.finish();
                let offsets = OffsetBuffer::new(std::mem::replace(offsets, vec![0]).into());
                Arc::new(ListArray::new(
                    item.clone(),
                    offsets,
                    values,
                    validity.finish(),
                ))
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Decoder::Bool(b) => b.len(),
            Decoder::Int2(b) => b.len(),
            Decoder::Int4(b) => b.len(),
            Decoder::Int8(b) => b.len(),
            Decoder::Float4(b) => b.len(),
            Decoder::Float8(b) => b.len(),
            Decoder::Oid(b) => b.len(),
            Decoder::Decimal(b, _) => b.len(),
            Decoder::NumericText(b)
            | Decoder::Text(b)
            | Decoder::Jsonb(b)
            | Decoder::Inet(b)
            | Decoder::Macaddr(b) => b.len(),
            Decoder::Bytea(b) => b.len(),
            Decoder::Uuid(b) => b.len(),
            Decoder::Date(b) => b.len(),
            Decoder::Time(b) => b.len(),
            Decoder::Timestamp(b) => b.len(),
            Decoder::Interval(b) => b.len(),
            Decoder::List { offsets, .. } => offsets.len() - 1,
        }
    }
}

/// Appends the elements of a one-dimensional array value to `child`; returns how many.
fn append_array(child: &mut Decoder, v: &[u8]) -> Result<usize, String> {
    let mut r = Reader(v);
    let ndim = r.i32()?;
    let _has_nulls = r.i32()?;
    let _element_oid = r.i32()?;
    match ndim {
        0 => return Ok(0),
        1 => {}
        n if n > 1 => {
            return Err(format!(
                "{n}-dimensional arrays are not supported; cast the column to text or unnest it"
            ));
        }
        n => return Err(format!("array value with {n} dimensions")),
    }
    let len = usize::try_from(r.i32()?).map_err(|_| "negative array length")?;
    let _lower_bound = r.i32()?;
    for _ in 0..len {
        let n = r.i32()?;
        let element = if n < 0 {
            None
        } else {
            Some(r.take(n as usize)?)
        };
        child.append(element)?;
    }
    Ok(len)
}

/// An `interval` (microseconds, days, months on the wire) as Arrow's month-day-nanosecond
/// interval. Its time part holds at most 2^63 - 1 ns, about 106 751 days: a longer one is an
/// error, never a changed value.
fn interval(raw: [u8; 16]) -> Result<IntervalMonthDayNano, String> {
    let [
        m0,
        m1,
        m2,
        m3,
        m4,
        m5,
        m6,
        m7,
        d0,
        d1,
        d2,
        d3,
        o0,
        o1,
        o2,
        o3,
    ] = raw;
    let micros = i64::from_be_bytes([m0, m1, m2, m3, m4, m5, m6, m7]);
    let days = i32::from_be_bytes([d0, d1, d2, d3]);
    let months = i32::from_be_bytes([o0, o1, o2, o3]);
    let nanos = micros.checked_mul(1000).ok_or_else(|| {
        format!(
            "interval with a time part of {} hours is longer than Arrow's interval holds \
             (2^63 ns, about 106 751 days); justify_hours(...) moves whole days into the day \
             field, or cast the column to text",
            micros / 3_600_000_000
        )
    })?;
    Ok(IntervalMonthDayNano::new(months, days, nanos))
}

/// Big-endian cursor over a value.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("value is truncated".into());
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(fixed(self.take(4)?)?))
    }
}

#[inline]
fn fixed<const N: usize>(v: &[u8]) -> Result<[u8; N], String> {
    v.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", v.len()))
}

#[inline]
fn utf8(v: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(v).map_err(|e| format!("value is not valid UTF-8 ({e})"))
}

/// `inet`/`cidr` wire format: family, bits, is_cidr, address length, address.
fn inet_text(v: &[u8]) -> Result<String, String> {
    let [family, bits, is_cidr, len, addr @ ..] = v else {
        return Err("inet value is truncated".into());
    };
    let (text, full) = match (*family, addr.len()) {
        (2, 4) if *len == 4 => (
            std::net::Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]).to_string(),
            32,
        ),
        (3, 16) if *len == 16 => {
            let octets: [u8; 16] = addr.try_into().map_err(|_| "inet value is truncated")?;
            (std::net::Ipv6Addr::from(octets).to_string(), 128)
        }
        _ => return Err("inet value has an unknown address family".into()),
    };
    Ok(if *is_cidr != 0 || *bits != full {
        format!("{text}/{bits}")
    } else {
        text
    })
}

/// Accumulates rows into record batches of at most `max_rows` rows or about `max_bytes` bytes.
#[derive(Debug)]
pub(crate) struct BatchBuilder {
    schema: SchemaRef,
    columns: Vec<ColumnSpec>,
    decoders: Vec<Decoder>,
    max_rows: usize,
    max_bytes: usize,
    rows: usize,
    bytes: usize,
}

/// Default cap on the wire bytes gathered into one batch.
pub(crate) const BATCH_BYTES: usize = 64 << 20;

impl BatchBuilder {
    pub fn new(schema: SchemaRef, columns: Vec<ColumnSpec>, max_rows: usize) -> BatchBuilder {
        let capacity = max_rows.min(8192);
        let decoders = columns
            .iter()
            .map(|c| Decoder::new(&c.kind, capacity))
            .collect();
        BatchBuilder {
            schema,
            columns,
            decoders,
            max_rows,
            max_bytes: BATCH_BYTES,
            rows: 0,
            bytes: 0,
        }
    }

    pub fn columns(&self) -> usize {
        self.decoders.len()
    }

    /// Appends field `index` of the current row.
    #[inline]
    pub fn append(&mut self, index: usize, value: Option<&[u8]>) -> Result<()> {
        self.bytes += value.map_or(0, <[u8]>::len);
        self.decoders[index]
            .append(value)
            .map_err(|message| Error::Decode {
                column: self.columns[index].name.clone(),
                message,
            })
    }

    /// Marks the end of a row; returns true when the batch is full.
    #[inline]
    pub fn end_row(&mut self) -> bool {
        self.rows += 1;
        self.rows >= self.max_rows || self.bytes >= self.max_bytes
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Takes the rows gathered so far as a batch (possibly empty).
    pub fn finish(&mut self) -> Result<RecordBatch> {
        debug_assert!(self.decoders.iter().all(|d| d.len() == self.rows));
        let arrays: Vec<ArrayRef> = self.decoders.iter_mut().map(Decoder::finish).collect();
        let options = RecordBatchOptions::new().with_row_count(Some(self.rows));
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new_with_options(self.schema.clone(), arrays, &options)
            .map_err(Error::arrow("assembling a record batch"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::Int32Type;

    #[test]
    fn lists_keep_null_elements_and_null_lists() {
        let mut d = Decoder::new(&ColumnKind::List(Box::new(ColumnKind::Int4)), 4);
        // {1,NULL,3}
        let mut v = Vec::new();
        for x in [1i32, 1, 23, 3, 1] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v.extend_from_slice(&4i32.to_be_bytes());
        v.extend_from_slice(&1i32.to_be_bytes());
        v.extend_from_slice(&(-1i32).to_be_bytes());
        v.extend_from_slice(&4i32.to_be_bytes());
        v.extend_from_slice(&3i32.to_be_bytes());
        d.append(Some(&v)).unwrap();
        d.append(None).unwrap();
        let empty = [0u8; 12];
        d.append(Some(&empty)).unwrap();
        let array = d.finish();
        let list = array.as_list::<i32>();
        assert_eq!(list.len(), 3);
        assert!(list.is_null(1));
        assert_eq!(list.value(2).len(), 0);
        let first = list.value(0);
        let ints = first.as_primitive::<Int32Type>();
        assert_eq!(
            ints.iter().collect::<Vec<_>>(),
            vec![Some(1), None, Some(3)]
        );
    }

    #[test]
    fn bad_values_are_errors_not_panics() {
        let mut d = Decoder::new(&ColumnKind::Int8, 1);
        assert!(
            d.append(Some(&[1, 2, 3]))
                .unwrap_err()
                .contains("expected 8 bytes")
        );
        let mut t = Decoder::new(&ColumnKind::Text, 1);
        assert!(t.append(Some(&[0xff, 0xfe])).unwrap_err().contains("UTF-8"));
        let mut l = Decoder::new(&ColumnKind::List(Box::new(ColumnKind::Int4)), 1);
        let mut two_dims = Vec::new();
        for x in [2i32, 0, 23, 1, 1, 1, 1] {
            two_dims.extend_from_slice(&x.to_be_bytes());
        }
        assert!(
            l.append(Some(&two_dims))
                .unwrap_err()
                .contains("2-dimensional")
        );
    }

    #[test]
    fn inet_prints_like_postgres() {
        assert_eq!(inet_text(&[2, 32, 0, 4, 10, 0, 0, 1]).unwrap(), "10.0.0.1");
        assert_eq!(
            inet_text(&[2, 24, 1, 4, 10, 0, 0, 0]).unwrap(),
            "10.0.0.0/24"
        );
    }
}
