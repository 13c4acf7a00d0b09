//! The PostgreSQL -> Arrow type mapping, in one place.
//!
//! | PostgreSQL | Arrow |
//! | --- | --- |
//! | `bool` | `Boolean` |
//! | `int2`, `int4`, `int8` | `Int16`, `Int32`, `Int64` |
//! | `float4`, `float8` | `Float32`, `Float64` |
//! | `numeric(p,s)`, `p <= 38`, `s <= p` | `Decimal128(p, s)` |
//! | `numeric` without typmod, or wider | `Utf8`, exact text |
//! | `text`, `varchar`, `bpchar`, `name`, `citext`, enums, `json`, `jsonb`, `xml` | `Utf8` |
//! | `bytea` | `Binary` |
//! | `date` | `Date32` |
//! | `time` | `Time64(us)` |
//! | `timestamp` | `Timestamp(us)` |
//! | `timestamptz` | `Timestamp(us, "UTC")` |
//! | `interval` | `Interval(MonthDayNano)` (on disk: a struct, see `cache::interval`) |
//! | `uuid` | `FixedSizeBinary(16)` |
//! | `inet`, `cidr`, `macaddr`, `macaddr8` | `Utf8` |
//! | `oid` | `UInt32` |
//! | one-dimensional arrays of the above | `List` of the element type |
//! | domains | as their base type |
//! | anything else | `Utf8`: the server casts the column to `text` |
//!
//! Every Arrow field carries the PostgreSQL type in its metadata under [`PG_TYPE_KEY`], e.g.
//! `numeric(12,3)` or `int4[]`, so readers (and WebAssembly guests) know what the column was.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, IntervalUnit, TimeUnit};
use tokio_postgres::types::{Kind, Type};

/// Field metadata key holding the PostgreSQL type of a column.
pub const PG_TYPE_KEY: &str = "pgcache.pg_type";

/// How one column travels from the wire into Arrow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ColumnKind {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Oid,
    Decimal { precision: u8, scale: i8 },
    NumericText,
    Text,
    Jsonb,
    Bytea,
    Uuid,
    Date,
    Time,
    Timestamp,
    TimestampTz,
    Interval,
    Inet,
    Macaddr,
    List(Box<ColumnKind>),
}

/// A result column: its name, PostgreSQL type, and how it is decoded.
#[derive(Debug, Clone)]
pub(crate) struct ColumnSpec {
    pub name: String,
    /// Type name for messages and metadata, e.g. `numeric(12,3)`.
    pub pg_type: String,
    pub kind: ColumnKind,
    /// The server sends this column as text (its type has no mapping here).
    pub as_text: bool,
}

impl ColumnSpec {
    /// Describes a column of a prepared statement.
    pub fn new(name: &str, ty: &Type, typmod: i32) -> ColumnSpec {
        let pg_type = type_display(ty, typmod);
        match kind_of(ty, typmod) {
            Some(kind) => ColumnSpec {
                name: name.to_owned(),
                pg_type,
                kind,
                as_text: false,
            },
            None => ColumnSpec {
                name: name.to_owned(),
                pg_type,
                kind: ColumnKind::Text,
                as_text: true,
            },
        }
    }

    /// The Arrow field for this column. Every column is nullable: a query's result says
    /// nothing reliable about NULLs.
    pub fn field(&self) -> Field {
        let metadata = HashMap::from([(PG_TYPE_KEY.to_owned(), self.pg_type.clone())]);
        Field::new(&self.name, self.kind.data_type(), true).with_metadata(metadata)
    }
}

impl ColumnKind {
    /// The Arrow type values of this kind are decoded into.
    pub fn data_type(&self) -> DataType {
        match self {
            ColumnKind::Bool => DataType::Boolean,
            ColumnKind::Int2 => DataType::Int16,
            ColumnKind::Int4 => DataType::Int32,
            ColumnKind::Int8 => DataType::Int64,
            ColumnKind::Float4 => DataType::Float32,
            ColumnKind::Float8 => DataType::Float64,
            ColumnKind::Oid => DataType::UInt32,
            ColumnKind::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
            ColumnKind::NumericText
            | ColumnKind::Text
            | ColumnKind::Jsonb
            | ColumnKind::Inet
            | ColumnKind::Macaddr => DataType::Utf8,
            ColumnKind::Bytea => DataType::Binary,
            ColumnKind::Uuid => DataType::FixedSizeBinary(16),
            ColumnKind::Date => DataType::Date32,
            ColumnKind::Time => DataType::Time64(TimeUnit::Microsecond),
            ColumnKind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            ColumnKind::TimestampTz => {
                DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")))
            }
            ColumnKind::Interval => DataType::Interval(IntervalUnit::MonthDayNano),
            ColumnKind::List(inner) => {
                DataType::List(Arc::new(Field::new("item", inner.data_type(), true)))
            }
        }
    }
}

/// The kind for a PostgreSQL type, or `None` when the column must come as text.
fn kind_of(ty: &Type, typmod: i32) -> Option<ColumnKind> {
    match ty.kind() {
        Kind::Enum(_) => return Some(ColumnKind::Text),
        Kind::Domain(base) => return kind_of(base, typmod),
        Kind::Array(element) => {
            return match kind_of(element, typmod)? {
                ColumnKind::List(_) => None,
                inner => Some(ColumnKind::List(Box::new(inner))),
            };
        }
        _ => {}
    }
    Some(match *ty {
        Type::BOOL => ColumnKind::Bool,
        Type::INT2 => ColumnKind::Int2,
        Type::INT4 => ColumnKind::Int4,
        Type::INT8 => ColumnKind::Int8,
        Type::FLOAT4 => ColumnKind::Float4,
        Type::FLOAT8 => ColumnKind::Float8,
        Type::OID => ColumnKind::Oid,
        Type::NUMERIC => match numeric_typmod(typmod) {
            Some((precision, scale)) if precision <= 38 && scale <= i32::from(precision) => {
                ColumnKind::Decimal {
                    precision,
                    scale: scale as i8,
                }
            }
            _ => ColumnKind::NumericText,
        },
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::JSON | Type::XML => {
            ColumnKind::Text
        }
        Type::JSONB => ColumnKind::Jsonb,
        Type::BYTEA => ColumnKind::Bytea,
        Type::UUID => ColumnKind::Uuid,
        Type::DATE => ColumnKind::Date,
        Type::TIME => ColumnKind::Time,
        Type::TIMESTAMP => ColumnKind::Timestamp,
        Type::TIMESTAMPTZ => ColumnKind::TimestampTz,
        Type::INTERVAL => ColumnKind::Interval,
        Type::INET | Type::CIDR => ColumnKind::Inet,
        Type::MACADDR | Type::MACADDR8 => ColumnKind::Macaddr,
        _ if ty.name() == "citext" => ColumnKind::Text,
        _ => return None,
    })
}

/// `(precision, scale)` of a `numeric` typmod; `None` for an unconstrained `numeric`.
/// Since PostgreSQL 15 the scale is an 11-bit signed number and may be negative.
fn numeric_typmod(typmod: i32) -> Option<(u8, i32)> {
    if typmod < 4 {
        return None;
    }
    let t = typmod - 4;
    let precision = (t >> 16) & 0xffff;
    let scale = ((t & 0x7ff) ^ 0x400) - 0x400;
    u8::try_from(precision).ok().map(|p| (p, scale))
}

/// The type as people write it: `int8`, `numeric(12,3)`, `varchar(20)`, `text[]`.
fn type_display(ty: &Type, typmod: i32) -> String {
    if let Kind::Array(element) = ty.kind() {
        return format!("{}[]", type_display(element, typmod));
    }
    match *ty {
        Type::NUMERIC => match numeric_typmod(typmod) {
            Some((p, s)) => format!("numeric({p},{s})"),
            None => "numeric".into(),
        },
        Type::VARCHAR | Type::BPCHAR if typmod >= 4 => format!("{}({})", ty.name(), typmod - 4),
        _ => ty.name().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_typmods_decode() {
        // numeric(12,3): ((12 << 16) | 3) + 4
        assert_eq!(numeric_typmod((12 << 16 | 3) + 4), Some((12, 3)));
        assert_eq!(numeric_typmod(-1), None);
        // numeric(5,-2) on PostgreSQL 15: the scale is stored as 11-bit two's complement.
        assert_eq!(numeric_typmod((5 << 16 | (0x800 - 2)) + 4), Some((5, -2)));
    }

    #[test]
    fn mapping_follows_the_table() {
        let spec = ColumnSpec::new("odometer", &Type::NUMERIC, (12 << 16 | 3) + 4);
        assert_eq!(spec.kind.data_type(), DataType::Decimal128(12, 3));
        assert_eq!(spec.pg_type, "numeric(12,3)");
        let wide = ColumnSpec::new("n", &Type::NUMERIC, (50 << 16 | 3) + 4);
        assert_eq!(wide.kind, ColumnKind::NumericText);
        let arr = ColumnSpec::new("a", &Type::INT4_ARRAY, -1);
        assert_eq!(arr.pg_type, "int4[]");
        assert!(matches!(arr.kind, ColumnKind::List(_)));
        let point = ColumnSpec::new("p", &Type::POINT, -1);
        assert!(point.as_text);
        assert_eq!(point.field().data_type(), &DataType::Utf8);
    }
}
