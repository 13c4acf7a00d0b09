//! Typed parameter values for `$1, $2 ...` and their conversion to the types the server infers.
//!
//! A [`Value`] says what the caller means; [`encode_params`] turns each one into the wire form of
//! the type PostgreSQL inferred for its placeholder, converting typed values where that is
//! lossless (an `Int8(5)` for an `int4` placeholder) and failing with a
//! [`Error::BadParameter`] that names the placeholder and the type otherwise.
//!
//! Text values ([`Value::Text`], what `-p` gives) are never parsed here: the server's own input
//! function reads them for the placeholder's type (`crate::pg::params`), under the session's
//! `TimeZone`, `DateStyle` and `IntervalStyle`, and pgcache binds and keys the value the server
//! made of them.
//!
//! ```
//! use pgcache::Value;
//!
//! // `-p` values on the command line are text, read by the server as the inferred type.
//! let from_cli = Value::Text("42".into());
//! // Library callers can say exactly what they mean.
//! let typed = Value::TimestampTz(1_706_702_400_000_123);
//! assert_ne!(from_cli, typed);
//! ```

use std::error::Error as StdError;

use bytes::{BufMut, BytesMut};
use sha2::Digest;
use tokio_postgres::types::{Format, IsNull, Kind, ToSql, Type, to_sql_checked};

use crate::error::{Error, Result};
use crate::pg::{numeric, time};

/// A parameter value. Timestamps are microseconds since 1970-01-01 (`Timestamp` without zone,
/// `TimestampTz` in UTC), dates are days since 1970-01-01, numerics are exact decimal text.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// SQL NULL, for any type.
    Null,
    /// `boolean`.
    Bool(bool),
    /// `smallint`.
    Int2(i16),
    /// `integer`.
    Int4(i32),
    /// `bigint`.
    Int8(i64),
    /// `real`.
    Float4(f32),
    /// `double precision`.
    Float8(f64),
    /// `numeric`, as exact decimal text (`"-12.50"`, `"NaN"`).
    Numeric(String),
    /// Text, read by the server's input function for the placeholder's type (what `-p` gives):
    /// `'2024-01-05 10:00 Europe/Lisbon'` for a `timestamptz`, `'Jan 5 2024'` for a `date`.
    Text(String),
    /// `bytea`.
    Bytea(Vec<u8>),
    /// `date`: days since 1970-01-01.
    Date(i32),
    /// `time`: microseconds since midnight.
    Time(i64),
    /// `timestamp` (without time zone): microseconds since 1970-01-01.
    Timestamp(i64),
    /// `timestamptz`: microseconds since 1970-01-01 00:00 UTC.
    TimestampTz(i64),
    /// `interval`.
    Interval {
        /// Months.
        months: i32,
        /// Days.
        days: i32,
        /// Microseconds.
        micros: i64,
    },
    /// `uuid`.
    Uuid([u8; 16]),
    /// `json` or `jsonb`, as JSON text.
    Json(String),
    /// Any other type, given as its binary wire form; `type_name` must match the placeholder's.
    Other {
        /// The PostgreSQL type name, e.g. `point`.
        type_name: String,
        /// The value in the type's binary format.
        bytes: Vec<u8>,
    },
}

impl Value {
    /// Feeds the value, with its type, into a cache key hash: equal values of different types
    /// give different keys.
    pub(crate) fn hash_into(&self, h: &mut sha2::Sha256) {
        let mut tagged = |tag: &str, bytes: &[u8]| {
            h.update((tag.len() as u32).to_le_bytes());
            h.update(tag.as_bytes());
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        match self {
            Value::Null => tagged("null", &[]),
            Value::Bool(v) => tagged("bool", &[u8::from(*v)]),
            Value::Int2(v) => tagged("int2", &v.to_le_bytes()),
            Value::Int4(v) => tagged("int4", &v.to_le_bytes()),
            Value::Int8(v) => tagged("int8", &v.to_le_bytes()),
            Value::Float4(v) => tagged("float4", &v.to_bits().to_le_bytes()),
            Value::Float8(v) => tagged("float8", &v.to_bits().to_le_bytes()),
            Value::Numeric(v) => tagged("numeric", v.as_bytes()),
            Value::Text(v) => tagged("text", v.as_bytes()),
            Value::Bytea(v) => tagged("bytea", v),
            Value::Date(v) => tagged("date", &v.to_le_bytes()),
            Value::Time(v) => tagged("time", &v.to_le_bytes()),
            Value::Timestamp(v) => tagged("timestamp", &v.to_le_bytes()),
            Value::TimestampTz(v) => tagged("timestamptz", &v.to_le_bytes()),
            Value::Interval {
                months,
                days,
                micros,
            } => {
                let mut b = Vec::with_capacity(16);
                b.extend_from_slice(&months.to_le_bytes());
                b.extend_from_slice(&days.to_le_bytes());
                b.extend_from_slice(&micros.to_le_bytes());
                tagged("interval", &b);
            }
            Value::Uuid(v) => tagged("uuid", v),
            Value::Json(v) => tagged("json", v.as_bytes()),
            Value::Other { type_name, bytes } => tagged(&format!("other:{type_name}"), bytes),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int2(_) => "int2",
            Value::Int4(_) => "int4",
            Value::Int8(_) => "int8",
            Value::Float4(_) => "float4",
            Value::Float8(_) => "float8",
            Value::Numeric(_) => "numeric",
            Value::Text(_) => "text",
            Value::Bytea(_) => "bytea",
            Value::Date(_) => "date",
            Value::Time(_) => "time",
            Value::Timestamp(_) => "timestamp",
            Value::TimestampTz(_) => "timestamptz",
            Value::Interval { .. } => "interval",
            Value::Uuid(_) => "uuid",
            Value::Json(_) => "json",
            Value::Other { .. } => "other",
        }
    }
}

/// A parameter already in its wire form; binds to any placeholder type. Text values travel in
/// PostgreSQL's text format, so the server's input function reads them; everything else in the
/// binary format of the placeholder's type.
#[derive(Debug)]
pub(crate) struct Encoded {
    bytes: Option<Vec<u8>>,
    text: bool,
}

impl Encoded {
    /// `text` in the text format, for the server to read as the placeholder's type.
    pub(crate) fn text(text: &str) -> Encoded {
        Encoded {
            bytes: Some(text.as_bytes().to_vec()),
            text: true,
        }
    }
}

impl ToSql for Encoded {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match &self.bytes {
            Some(bytes) => {
                out.put_slice(bytes);
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, _: &Type) -> Format {
        if self.text {
            Format::Text
        } else {
            Format::Binary
        }
    }

    to_sql_checked!();
}

/// Largest parameter value accepted (PostgreSQL's own limit for one field is 1 GB; a cache
/// key over a value this large would be a mistake).
pub(crate) const MAX_PARAM_BYTES: usize = 64 << 20;

/// Encodes `values` for placeholders of types `types`, checking the count.
pub(crate) fn encode_params(types: &[Type], values: &[Value]) -> Result<Vec<Encoded>> {
    check_count(types, values)?;
    types
        .iter()
        .zip(values)
        .enumerate()
        .map(|(i, (ty, v))| {
            let bad = |message: String| bad_parameter(i, ty, message);
            if let Value::Text(s) = v {
                check_size(s.len()).map_err(bad)?;
                return Ok(Encoded::text(s));
            }
            let bytes = encode(ty, v).map_err(bad)?;
            if let Some(b) = &bytes {
                check_size(b.len()).map_err(bad)?;
            }
            Ok(Encoded { bytes, text: false })
        })
        .collect()
}

/// Fails unless there is one value per placeholder.
pub(crate) fn check_count(types: &[Type], values: &[Value]) -> Result<()> {
    if types.len() == values.len() {
        Ok(())
    } else {
        Err(Error::ParameterCount {
            expected: types.len(),
            given: values.len(),
        })
    }
}

/// The error for placeholder `index` (zero-based) of type `ty`.
pub(crate) fn bad_parameter(index: usize, ty: &Type, message: String) -> Error {
    Error::BadParameter {
        index: index + 1,
        type_name: ty.name().to_owned(),
        message,
    }
}

/// Fails for a value larger than [`MAX_PARAM_BYTES`].
pub(crate) fn check_size(len: usize) -> Result<(), String> {
    if len > MAX_PARAM_BYTES {
        Err(format!(
            "value is larger than the limit of {MAX_PARAM_BYTES} bytes"
        ))
    } else {
        Ok(())
    }
}

/// The type a domain stands for, followed through nested domains.
fn base_type(ty: &Type) -> &Type {
    match ty.kind() {
        Kind::Domain(inner) => base_type(inner),
        _ => ty,
    }
}

/// The binary wire form of a typed (non-text) value for a placeholder of type `ty`.
fn encode(ty: &Type, value: &Value) -> Result<Option<Vec<u8>>, String> {
    if matches!(value, Value::Null) {
        return Ok(None);
    }
    if let Value::Other { type_name, bytes } = value {
        // Also what the server made of a text value (see `crate::pg::params`).
        if type_name == ty.name() || type_name == base_type(ty).name() {
            return Ok(Some(bytes.clone()));
        }
    }
    let ty = base_type(ty);
    let mismatch = || format!("a {} value cannot be passed as {}", value.kind(), ty.name());
    let mut out = Vec::new();
    if let Kind::Enum(_) = ty.kind() {
        return Err(mismatch());
    }
    match *ty {
        Type::BOOL => match value {
            Value::Bool(b) => out.push(u8::from(*b)),
            _ => return Err(mismatch()),
        },
        Type::INT2 => out.extend_from_slice(
            &narrow::<i16>(integer(value).ok_or_else(mismatch)??)?.to_be_bytes(),
        ),
        Type::INT4 => out.extend_from_slice(
            &narrow::<i32>(integer(value).ok_or_else(mismatch)??)?.to_be_bytes(),
        ),
        Type::INT8 => out.extend_from_slice(&integer(value).ok_or_else(mismatch)??.to_be_bytes()),
        Type::OID => out.extend_from_slice(
            &narrow::<u32>(integer(value).ok_or_else(mismatch)??)?.to_be_bytes(),
        ),
        Type::FLOAT4 => {
            let f = float(value).ok_or_else(mismatch)??;
            out.extend_from_slice(&(f as f32).to_be_bytes());
        }
        Type::FLOAT8 => out.extend_from_slice(&float(value).ok_or_else(mismatch)??.to_be_bytes()),
        Type::NUMERIC => {
            let text = match value {
                Value::Numeric(s) => s.clone(),
                Value::Int2(v) => v.to_string(),
                Value::Int4(v) => v.to_string(),
                Value::Int8(v) => v.to_string(),
                Value::Float4(v) if v.is_finite() => v.to_string(),
                Value::Float8(v) if v.is_finite() => v.to_string(),
                _ => return Err(mismatch()),
            };
            numeric::encode_text(&text, &mut out)?;
        }
        Type::TEXT
        | Type::VARCHAR
        | Type::BPCHAR
        | Type::NAME
        | Type::UNKNOWN
        | Type::JSON
        | Type::XML => {
            out.extend_from_slice(text_form(value).ok_or_else(mismatch)?.as_bytes());
        }
        Type::JSONB => {
            out.push(1);
            out.extend_from_slice(text_form(value).ok_or_else(mismatch)?.as_bytes());
        }
        Type::BYTEA => match value {
            Value::Bytea(b) => out.extend_from_slice(b),
            _ => return Err(mismatch()),
        },
        Type::DATE => match value {
            Value::Date(d) => out.extend_from_slice(&time::date_to_pg(*d)?.to_be_bytes()),
            _ => return Err(mismatch()),
        },
        Type::TIME => match value {
            Value::Time(t) => out.extend_from_slice(&t.to_be_bytes()),
            _ => return Err(mismatch()),
        },
        Type::TIMESTAMP | Type::TIMESTAMPTZ => {
            let micros = match value {
                Value::Timestamp(t) | Value::TimestampTz(t) => *t,
                Value::Date(d) => match *d {
                    i32::MAX => i64::MAX,
                    i32::MIN => i64::MIN,
                    d => i64::from(d) * 86_400_000_000,
                },
                _ => return Err(mismatch()),
            };
            out.extend_from_slice(&time::timestamp_to_pg(micros)?.to_be_bytes());
        }
        Type::INTERVAL => match value {
            Value::Interval {
                months,
                days,
                micros,
            } => {
                out.extend_from_slice(&micros.to_be_bytes());
                out.extend_from_slice(&days.to_be_bytes());
                out.extend_from_slice(&months.to_be_bytes());
            }
            _ => return Err(mismatch()),
        },
        Type::UUID => match value {
            Value::Uuid(b) => out.extend_from_slice(b),
            _ => return Err(mismatch()),
        },
        _ => {
            return Err(format!(
                "pgcache cannot convert a {} value to {}; pass it as text, or cast the placeholder in SQL, e.g. ${{n}}::text::{}",
                value.kind(),
                ty.name(),
                ty.name()
            ));
        }
    }
    Ok(Some(out))
}

fn integer(value: &Value) -> Option<Result<i64, String>> {
    Some(match value {
        Value::Int2(v) => Ok(i64::from(*v)),
        Value::Int4(v) => Ok(i64::from(*v)),
        Value::Int8(v) => Ok(*v),
        Value::Numeric(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("{s:?} is not an integer")),
        _ => return None,
    })
}

fn narrow<T: TryFrom<i64>>(v: i64) -> Result<T, String> {
    T::try_from(v).map_err(|_| format!("{v} is out of range"))
}

fn float(value: &Value) -> Option<Result<f64, String>> {
    Some(match value {
        Value::Float4(v) => Ok(f64::from(*v)),
        Value::Float8(v) => Ok(*v),
        Value::Int2(v) => Ok(f64::from(*v)),
        Value::Int4(v) => Ok(f64::from(*v)),
        Value::Int8(v) => Ok(*v as f64),
        Value::Numeric(s) => match s.trim().to_ascii_lowercase().as_str() {
            "nan" => Ok(f64::NAN),
            t => t
                .parse::<f64>()
                .map_err(|_| format!("{s:?} is not a number")),
        },
        _ => return None,
    })
}

/// The text a typed value stands for when the placeholder is textual.
fn text_form(value: &Value) -> Option<String> {
    Some(match value {
        Value::Json(s) | Value::Numeric(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Int2(v) => v.to_string(),
        Value::Int4(v) => v.to_string(),
        Value::Int8(v) => v.to_string(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(ty: Type, v: Value) -> Result<Vec<u8>, String> {
        encode(&ty, &v).map(|o| o.unwrap_or_default())
    }

    #[test]
    fn text_travels_as_text_for_the_server_to_read() {
        let encoded = encode_params(
            &[Type::TIMESTAMPTZ, Type::INT4],
            &[
                Value::Text("2024-01-05 10:00 Europe/Lisbon".into()),
                Value::Null,
            ],
        )
        .unwrap();
        assert!(matches!(
            encoded[0].encode_format(&Type::TIMESTAMPTZ),
            Format::Text
        ));
        assert_eq!(
            encoded[0].bytes.as_deref(),
            Some(b"2024-01-05 10:00 Europe/Lisbon".as_slice())
        );
        assert!(encoded[1].bytes.is_none());
    }

    #[test]
    fn typed_values_convert_where_lossless() {
        assert_eq!(enc(Type::INT2, Value::Int8(7)).unwrap(), 7i16.to_be_bytes());
        assert!(
            enc(Type::INT2, Value::Int8(70_000))
                .unwrap_err()
                .contains("out of range")
        );
        assert!(
            enc(Type::INT4, Value::Numeric("4.5".into()))
                .unwrap_err()
                .contains("not an integer")
        );
        assert!(
            enc(Type::INT4, Value::Bytea(vec![]))
                .unwrap_err()
                .contains("cannot be passed")
        );
        assert_eq!(
            enc(
                Type::TIMESTAMPTZ,
                Value::TimestampTz(time::PG_EPOCH_MICROS + 1)
            )
            .unwrap(),
            1i64.to_be_bytes()
        );
        // Outside PostgreSQL's range: an error, never a silent infinity.
        assert!(enc(Type::TIMESTAMP, Value::Timestamp(i64::MIN + 1)).is_err());
        assert!(enc(Type::DATE, Value::Date(i32::MIN + 1)).is_err());
    }

    #[test]
    fn server_readings_bind_to_their_type_and_domains_of_it() {
        let read = Value::Other {
            type_name: "int4".into(),
            bytes: 5i32.to_be_bytes().to_vec(),
        };
        assert_eq!(enc(Type::INT4, read.clone()).unwrap(), 5i32.to_be_bytes());
        assert!(enc(Type::INT8, read).is_err());
    }

    #[test]
    fn errors_name_the_placeholder_and_type() {
        let err = encode_params(
            &[Type::INT8, Type::DATE],
            &[Value::Int8(1), Value::Bool(true)],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "parameter $2 (date): a bool value cannot be passed as date"
        );
        let err = encode_params(&[Type::INT8], &[]).unwrap_err();
        assert!(matches!(
            err,
            Error::ParameterCount {
                expected: 1,
                given: 0
            }
        ));
    }

    #[test]
    fn keys_distinguish_types() {
        let key = |v: Value| {
            let mut h = sha2::Sha256::new();
            v.hash_into(&mut h);
            h.finalize()
        };
        assert_ne!(key(Value::Int4(1)), key(Value::Int8(1)));
        assert_ne!(key(Value::Text("1".into())), key(Value::Int8(1)));
        assert_eq!(key(Value::Int8(1)), key(Value::Int8(1)));
    }
}
