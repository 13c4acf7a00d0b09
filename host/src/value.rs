//! Typed parameter values for `$1, $2 ...` and their conversion to the types the server infers.
//!
//! A [`Value`] says what the caller means; [`encode_params`] turns each one into the binary wire
//! form of the type PostgreSQL inferred for its placeholder, converting where that is lossless
//! (an `Int8(5)` for an `int4` placeholder, the text `"2024-01-31"` for a `date`) and failing
//! with a [`Error::BadParameter`] that names the placeholder and the type otherwise.
//!
//! ```
//! use pgcache::Value;
//!
//! // `-p` values on the command line are text, converted to the inferred type.
//! let from_cli = Value::Text("42".into());
//! // Library callers can say exactly what they mean.
//! let typed = Value::TimestampTz(1_706_702_400_000_123);
//! assert_ne!(from_cli, typed);
//! ```

use std::error::Error as StdError;

use bytes::{BufMut, BytesMut};
use sha2::Digest;
use tokio_postgres::types::{IsNull, Kind, ToSql, Type, to_sql_checked};

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
    /// Text; converted from its text form when the placeholder has another type.
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

/// A parameter already in its wire form; binds to any placeholder type.
#[derive(Debug)]
pub(crate) struct Encoded(Option<Vec<u8>>);

impl ToSql for Encoded {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match &self.0 {
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

    to_sql_checked!();
}

/// Largest parameter value accepted (PostgreSQL's own limit for one field is 1 GB; a cache
/// key over a value this large would be a mistake).
pub(crate) const MAX_PARAM_BYTES: usize = 64 << 20;

/// Encodes `values` for placeholders of types `types`, checking the count.
pub(crate) fn encode_params(types: &[Type], values: &[Value]) -> Result<Vec<Encoded>> {
    if types.len() != values.len() {
        return Err(Error::ParameterCount {
            expected: types.len(),
            given: values.len(),
        });
    }
    types
        .iter()
        .zip(values)
        .enumerate()
        .map(|(i, (ty, v))| {
            let bad = |message: String| Error::BadParameter {
                index: i + 1,
                type_name: ty.name().to_owned(),
                message,
            };
            let encoded = encode(ty, v).map_err(bad)?;
            if encoded.as_ref().is_some_and(|b| b.len() > MAX_PARAM_BYTES) {
                return Err(bad(format!(
                    "value is larger than the limit of {MAX_PARAM_BYTES} bytes"
                )));
            }
            Ok(Encoded(encoded))
        })
        .collect()
}

/// The type a domain stands for, followed through nested domains.
fn base_type(ty: &Type) -> &Type {
    match ty.kind() {
        Kind::Domain(inner) => base_type(inner),
        _ => ty,
    }
}

fn encode(ty: &Type, value: &Value) -> Result<Option<Vec<u8>>, String> {
    if matches!(value, Value::Null) {
        return Ok(None);
    }
    let ty = base_type(ty);
    let mismatch = || format!("a {} value cannot be passed as {}", value.kind(), ty.name());
    let mut out = Vec::new();
    if let Kind::Enum(labels) = ty.kind() {
        let label = match value {
            Value::Text(s) => s,
            _ => return Err(mismatch()),
        };
        if !labels.contains(label) {
            return Err(format!("{label:?} is not one of {}", labels.join(", ")));
        }
        return Ok(Some(label.as_bytes().to_vec()));
    }
    match *ty {
        Type::BOOL => {
            let b = match value {
                Value::Bool(b) => *b,
                Value::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
                    "t" | "true" | "y" | "yes" | "on" | "1" => true,
                    "f" | "false" | "n" | "no" | "off" | "0" => false,
                    _ => return Err(format!("{s:?} is not a boolean")),
                },
                _ => return Err(mismatch()),
            };
            out.push(u8::from(b));
        }
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
                Value::Numeric(s) | Value::Text(s) => s.clone(),
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
            Value::Text(s) => match s.strip_prefix("\\x") {
                Some(h) => {
                    out.extend(hex::decode(h).map_err(|e| format!("bad hex after \\x: {e}"))?)
                }
                None => out.extend_from_slice(s.as_bytes()),
            },
            _ => return Err(mismatch()),
        },
        Type::DATE => {
            let days = match value {
                Value::Date(d) => *d,
                Value::Text(s) => time::parse_date(s)?,
                _ => return Err(mismatch()),
            };
            out.extend_from_slice(&time::date_to_pg(days).to_be_bytes());
        }
        Type::TIME => {
            let micros = match value {
                Value::Time(t) => *t,
                Value::Text(s) => time::parse_time(s)?,
                _ => return Err(mismatch()),
            };
            out.extend_from_slice(&micros.to_be_bytes());
        }
        Type::TIMESTAMP | Type::TIMESTAMPTZ => {
            let micros = match value {
                Value::Timestamp(t) | Value::TimestampTz(t) => *t,
                Value::Date(d) => i64::from(*d) * 86_400_000_000,
                Value::Text(s) => time::parse_timestamp(s)?,
                _ => return Err(mismatch()),
            };
            out.extend_from_slice(&time::timestamp_to_pg(micros).to_be_bytes());
        }
        Type::INTERVAL => {
            let (months, days, micros) = match value {
                Value::Interval {
                    months,
                    days,
                    micros,
                } => (*months, *days, *micros),
                Value::Text(s) => parse_interval(s)?,
                _ => return Err(mismatch()),
            };
            out.extend_from_slice(&micros.to_be_bytes());
            out.extend_from_slice(&days.to_be_bytes());
            out.extend_from_slice(&months.to_be_bytes());
        }
        Type::UUID => match value {
            Value::Uuid(b) => out.extend_from_slice(b),
            Value::Text(s) => {
                let hex: String = s
                    .trim()
                    .trim_matches(['{', '}'])
                    .chars()
                    .filter(|c| *c != '-')
                    .collect();
                let bytes = hex::decode(&hex)
                    .ok()
                    .filter(|b| b.len() == 16)
                    .ok_or_else(|| format!("{s:?} is not a UUID"))?;
                out.extend_from_slice(&bytes);
            }
            _ => return Err(mismatch()),
        },
        _ => match value {
            Value::Other { type_name, bytes } if type_name == ty.name() => {
                out.extend_from_slice(bytes)
            }
            // Extension types whose binary form is their text (citext).
            Value::Text(s) if ty.name() == "citext" => out.extend_from_slice(s.as_bytes()),
            _ => {
                return Err(format!(
                    "pgcache cannot convert a {} value to {}; cast the placeholder in SQL, e.g. ${{n}}::text::{}",
                    value.kind(),
                    ty.name(),
                    ty.name()
                ));
            }
        },
    }
    Ok(Some(out))
}

fn integer(value: &Value) -> Option<Result<i64, String>> {
    Some(match value {
        Value::Int2(v) => Ok(i64::from(*v)),
        Value::Int4(v) => Ok(i64::from(*v)),
        Value::Int8(v) => Ok(*v),
        Value::Text(s) | Value::Numeric(s) => s
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
        Value::Text(s) | Value::Numeric(s) => match s.trim().to_ascii_lowercase().as_str() {
            "nan" => Ok(f64::NAN),
            "infinity" | "inf" => Ok(f64::INFINITY),
            "-infinity" | "-inf" => Ok(f64::NEG_INFINITY),
            t => t
                .parse::<f64>()
                .map_err(|_| format!("{s:?} is not a number")),
        },
        _ => return None,
    })
}

/// The text a value stands for when the placeholder is textual.
fn text_form(value: &Value) -> Option<String> {
    Some(match value {
        Value::Text(s) | Value::Json(s) | Value::Numeric(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Int2(v) => v.to_string(),
        Value::Int4(v) => v.to_string(),
        Value::Int8(v) => v.to_string(),
        _ => return None,
    })
}

/// Parses the common interval forms: `90 seconds`, `1 day 02:00:00`, `2 mons 3 days`, `00:05`.
fn parse_interval(text: &str) -> Result<(i32, i32, i64), String> {
    let bad =
        || format!("{text:?} is not an interval (expected e.g. '1 day 02:00:00' or '90 minutes')");
    let (mut months, mut days, mut micros) = (0i64, 0i64, 0i64);
    let mut words = text.split_whitespace().peekable();
    while let Some(word) = words.next() {
        if word.contains(':') {
            let neg = word.starts_with('-');
            let t = time::parse_time(word.trim_start_matches(['-', '+']))?;
            micros += if neg { -t } else { t };
            continue;
        }
        let n: f64 = word.parse().map_err(|_| bad())?;
        let unit = words.next().ok_or_else(bad)?.to_ascii_lowercase();
        let whole = |n: f64| -> Result<i64, String> {
            if n.fract() == 0.0 {
                Ok(n as i64)
            } else {
                Err(bad())
            }
        };
        match unit.as_str() {
            "year" | "years" | "y" => months += whole(n)? * 12,
            "mon" | "mons" | "month" | "months" => months += whole(n)?,
            "week" | "weeks" | "w" => days += whole(n)? * 7,
            "day" | "days" | "d" => days += whole(n)?,
            "hour" | "hours" | "h" => micros += (n * 3_600_000_000.0) as i64,
            "minute" | "minutes" | "min" | "mins" => micros += (n * 60_000_000.0) as i64,
            "second" | "seconds" | "sec" | "secs" | "s" => micros += (n * 1_000_000.0) as i64,
            "millisecond" | "milliseconds" | "ms" => micros += (n * 1_000.0) as i64,
            "microsecond" | "microseconds" | "us" => micros += n as i64,
            _ => return Err(bad()),
        }
    }
    Ok((
        i32::try_from(months).map_err(|_| bad())?,
        i32::try_from(days).map_err(|_| bad())?,
        micros,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(ty: Type, v: Value) -> Result<Vec<u8>, String> {
        encode(&ty, &v).map(|o| o.unwrap_or_default())
    }

    #[test]
    fn text_converts_to_inferred_types() {
        assert_eq!(
            enc(Type::INT4, Value::Text("42".into())).unwrap(),
            42i32.to_be_bytes()
        );
        assert_eq!(enc(Type::BOOL, Value::Text("yes".into())).unwrap(), [1]);
        assert_eq!(
            enc(Type::FLOAT8, Value::Text("1.5".into())).unwrap(),
            1.5f64.to_be_bytes()
        );
        assert_eq!(
            enc(
                Type::TIMESTAMPTZ,
                Value::Text("2000-01-01 00:00:00.000001+00".into())
            )
            .unwrap(),
            1i64.to_be_bytes()
        );
        assert_eq!(
            enc(Type::DATE, Value::Text("2000-01-02".into())).unwrap(),
            1i32.to_be_bytes()
        );
        assert_eq!(
            enc(Type::BYTEA, Value::Text("\\x00ff".into())).unwrap(),
            [0, 255]
        );
        assert_eq!(
            enc(
                Type::UUID,
                Value::Text("00000000-0000-0000-0000-000000000001".into())
            )
            .unwrap(),
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        );
    }

    #[test]
    fn narrowing_is_checked() {
        assert_eq!(enc(Type::INT2, Value::Int8(7)).unwrap(), 7i16.to_be_bytes());
        assert!(
            enc(Type::INT2, Value::Int8(70_000))
                .unwrap_err()
                .contains("out of range")
        );
        assert!(
            enc(Type::INT4, Value::Text("4.5".into()))
                .unwrap_err()
                .contains("not an integer")
        );
        assert!(
            enc(Type::INT4, Value::Bytea(vec![]))
                .unwrap_err()
                .contains("cannot be passed")
        );
    }

    #[test]
    fn errors_name_the_placeholder_and_type() {
        let err = encode_params(
            &[Type::INT8, Type::DATE],
            &[Value::Int8(1), Value::Text("soon".into())],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "parameter $2 (date): \"soon\" is not a date (expected YYYY-MM-DD)"
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
    fn intervals_parse() {
        assert_eq!(
            parse_interval("1 day 02:00:00").unwrap(),
            (0, 1, 7_200_000_000)
        );
        assert_eq!(parse_interval("2 mons 3 days").unwrap(), (2, 3, 0));
        assert_eq!(parse_interval("90 minutes").unwrap(), (0, 0, 5_400_000_000));
        assert!(parse_interval("soon").is_err());
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
