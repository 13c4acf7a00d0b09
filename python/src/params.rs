//! Python parameter values as [`pgcache::Value`]s, the way psycopg2 adapts them: typed where
//! Python's type says what the value is (so a cache hit needs no round trip), as text for the
//! server's input function where it does not (`str`, lists as array literals).
//!
//! | Python | Value |
//! | --- | --- |
//! | `None` | `Null` |
//! | `bool` | `Bool` |
//! | `int` | `Int8`, or exact `Numeric` beyond 64 bits |
//! | `float` | `Float8` |
//! | `str` | `Text`: the server reads it as the placeholder's type |
//! | `bytes`, `bytearray`, `memoryview` | `Bytea` |
//! | `datetime` naive / aware | `Timestamp` / `TimestampTz` (the instant, in UTC) |
//! | `date`, `time`, `timedelta` | `Date`, `Time`, `Interval` (a `time` with a zone: text) |
//! | `Decimal` | `Numeric` |
//! | `UUID` | `Uuid` |
//! | `dict` | `Json` |
//! | `list`, `tuple` | `Text`: an array literal (`{1,2,NULL}`), for `= ANY(%s)` |

use pgcache::Value;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple,
};

/// Microseconds in a day.
const DAY_MICROS: i64 = 86_400_000_000;

/// The values of `params`: a tuple or list (any iterable but a string, bytes or a mapping).
pub fn to_values(py: Python<'_>, params: &Bound<'_, PyAny>) -> PyResult<Vec<Value>> {
    if params.is_instance_of::<PyDict>() {
        return Err(bad(
            py,
            "named parameters (%(name)s) are not supported: pass a tuple or list for %s or $n",
        ));
    }
    if params.is_instance_of::<PyString>() || params.is_instance_of::<PyBytes>() {
        return Err(bad(
            py,
            "params must be a tuple or list of values, not a single string: write (value,)",
        ));
    }
    let mut values = Vec::new();
    for (i, item) in params.try_iter()?.enumerate() {
        values.push(
            value(py, &item?)
                .map_err(|e| bad(py, &format!("parameter {}: {}", i + 1, e.value(py))))?,
        );
    }
    Ok(values)
}

/// A `pgcache.errors.ParameterError` with `message`.
fn bad(py: Python<'_>, message: &str) -> PyErr {
    match py
        .import("pgcache.errors")
        .and_then(|m| m.getattr("ParameterError"))
        .and_then(|c| c.call1((message,)))
    {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}

/// One value.
fn value(py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<Value> {
    if v.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if v.is_instance_of::<PyInt>() {
        return Ok(match v.extract::<i64>() {
            Ok(n) => Value::Int8(n),
            Err(_) => Value::Numeric(v.str()?.to_string()),
        });
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        return Ok(Value::Float8(f.value()));
    }
    if v.is_instance_of::<PyString>() {
        return Ok(Value::Text(v.extract()?));
    }
    if let Ok(b) = v.cast::<PyBytes>() {
        return Ok(Value::Bytea(b.as_bytes().to_vec()));
    }
    if let Ok(b) = v.cast::<PyByteArray>() {
        return Ok(Value::Bytea(b.to_vec()));
    }
    let datetime = py.import("datetime")?;
    if v.is_instance(&datetime.getattr("datetime")?)? {
        let aware = !v.call_method0("utcoffset")?.is_none();
        let epoch = if aware {
            let utc = datetime.getattr("timezone")?.getattr("utc")?;
            datetime
                .getattr("datetime")?
                .call1((1970, 1, 1, 0, 0, 0, 0, utc))?
        } else {
            datetime.getattr("datetime")?.call1((1970, 1, 1))?
        };
        let micros = delta_micros(&v.sub(epoch)?)?;
        return Ok(if aware {
            Value::TimestampTz(micros)
        } else {
            Value::Timestamp(micros)
        });
    }
    if v.is_instance(&datetime.getattr("date")?)? {
        let epoch = datetime.getattr("date")?.call1((1970, 1, 1))?;
        let days: i32 = v.sub(epoch)?.getattr("days")?.extract()?;
        return Ok(Value::Date(days));
    }
    if v.is_instance(&datetime.getattr("time")?)? {
        if !v.call_method0("utcoffset")?.is_none() {
            return Ok(Value::Text(v.call_method0("isoformat")?.extract()?));
        }
        let part = |name: &str| -> PyResult<i64> { v.getattr(name)?.extract() };
        let micros = ((part("hour")? * 60 + part("minute")?) * 60 + part("second")?) * 1_000_000
            + part("microsecond")?;
        return Ok(Value::Time(micros));
    }
    if v.is_instance(&datetime.getattr("timedelta")?)? {
        let days: i32 = v.getattr("days")?.extract()?;
        let seconds: i64 = v.getattr("seconds")?.extract()?;
        let micros: i64 = v.getattr("microseconds")?.extract()?;
        return Ok(Value::Interval {
            months: 0,
            days,
            micros: seconds * 1_000_000 + micros,
        });
    }
    if v.is_instance(&py.import("decimal")?.getattr("Decimal")?)? {
        let finite: bool = v.call_method0("is_finite")?.extract()?;
        let text: String = if finite {
            py.import("builtins")?
                .getattr("format")?
                .call1((v, "f"))?
                .extract()?
        } else if v.call_method0("is_nan")?.extract()? {
            "NaN".into()
        } else {
            v.str()?.to_string()
        };
        return Ok(Value::Numeric(text));
    }
    if v.is_instance(&py.import("uuid")?.getattr("UUID")?)? {
        let bytes: Vec<u8> = v.getattr("bytes")?.extract()?;
        let bytes: [u8; 16] = bytes
            .try_into()
            .map_err(|_| pyo3::exceptions::PyValueError::new_err("a UUID has 16 bytes"))?;
        return Ok(Value::Uuid(bytes));
    }
    if v.is_instance_of::<PyDict>() {
        let text: String = py.import("json")?.call_method1("dumps", (v,))?.extract()?;
        return Ok(Value::Json(text));
    }
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        let mut text = String::new();
        array_literal(py, v, &mut text)?;
        return Ok(Value::Text(text));
    }
    if v.hasattr("tobytes")? {
        // memoryview and other buffers.
        return Ok(Value::Bytea(v.call_method0("tobytes")?.extract()?));
    }
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "cannot pass a {} value; use None, bool, int, float, str, bytes, datetime, date, time, \
         timedelta, Decimal, UUID, dict or a list of these",
        v.get_type().name()?
    )))
}

/// The microseconds of a `timedelta`.
fn delta_micros(delta: &Bound<'_, PyAny>) -> PyResult<i64> {
    let days: i64 = delta.getattr("days")?.extract()?;
    let seconds: i64 = delta.getattr("seconds")?.extract()?;
    let micros: i64 = delta.getattr("microseconds")?.extract()?;
    Ok(days * DAY_MICROS + seconds * 1_000_000 + micros)
}

/// `items` as a PostgreSQL array literal, read by the array type's input function.
fn array_literal(py: Python<'_>, items: &Bound<'_, PyAny>, out: &mut String) -> PyResult<()> {
    out.push('{');
    for (i, item) in items.try_iter()?.enumerate() {
        let item = item?;
        if i > 0 {
            out.push(',');
        }
        if item.is_none() {
            out.push_str("NULL");
        } else if let Ok(b) = item.cast::<PyBool>() {
            out.push(if b.is_true() { 't' } else { 'f' });
        } else if item.is_instance_of::<PyList>() || item.is_instance_of::<PyTuple>() {
            array_literal(py, &item, out)?;
        } else {
            let text = match value(py, &item)? {
                Value::Text(s) | Value::Json(s) | Value::Numeric(s) => s,
                Value::Int8(n) => n.to_string(),
                Value::Float8(_) | Value::Uuid(_) => item.str()?.to_string(),
                Value::Bytea(b) => {
                    let mut hex = String::from("\\x");
                    for byte in b {
                        hex.push_str(&format!("{byte:02x}"));
                    }
                    hex
                }
                _ => item.str()?.to_string(),
            };
            out.push('"');
            for c in text.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
    }
    out.push('}');
    Ok(())
}
