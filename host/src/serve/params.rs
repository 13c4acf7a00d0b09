//! Parameters and lookback windows of the HTTP API as JSON.
//!
//! A parameter is a plain JSON scalar (null, or text for the server's input function of the
//! placeholder's type, as `pgcache query -p` takes it) or a typed value: an object with one
//! key naming a case of the WIT `value` variant, e.g. `{"int64": 5}`, `{"bytea": "<base64>"}`,
//! `{"interval": {"months": 1, "days": 2, "microseconds": 3}}`, `{"other": {"type-name":
//! "point", "bytes": "<base64>"}}`, `{"float64": "NaN"}`. A typed value is read into the WIT
//! value and converted by the wasm host's own conversion, so a client (the adapter component
//! above all) gets exactly what a plugin passing that value gets.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value as Json;

use super::error::ApiError;
use crate::wasm::bindings::pgcache::db::database as wit;
use crate::wasm::convert;
use crate::{Lookback, PluginError, Value};

/// JSON parameters as pgcache's values; a bad one is a `bad-parameter` error naming `$n`.
pub(crate) fn params(values: Vec<Json>) -> Result<Vec<Value>, ApiError> {
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            param(v).map_err(|m| {
                ApiError::plugin(PluginError::BadParameter(format!("${}: {m}", i + 1)))
            })
        })
        .collect()
}

fn param(v: Json) -> Result<Value, String> {
    match v {
        Json::Null => Ok(Value::Null),
        Json::String(s) => Ok(Value::Text(s)),
        Json::Bool(b) => Ok(Value::Text(b.to_string())),
        Json::Number(n) => Ok(Value::Text(n.to_string())),
        Json::Object(map) if map.len() == 1 => {
            let Some((case, payload)) = map.into_iter().next() else {
                return Err("an empty object is no value".into());
            };
            convert::value(typed(&case, payload)?)
        }
        other => Err(format!(
            "a parameter is a JSON string, number, boolean, null or an object with one key \
             naming its type, not {other}"
        )),
    }
}

/// The WIT value of case `case` with `payload`.
fn typed(case: &str, payload: Json) -> Result<wit::Value, String> {
    let bad = |what: &str| format!("{case}: expected {what}, not {payload}");
    let int = |min: i64, max: i64| -> Result<i64, String> {
        payload
            .as_i64()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| bad("an integer in range"))
    };
    let text = || {
        payload
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| bad("a string"))
    };
    let bytes = |p: &Json| -> Result<Vec<u8>, String> {
        let s = p.as_str().ok_or_else(|| bad("base64 text"))?;
        BASE64
            .decode(s)
            .map_err(|e| format!("{case}: not base64: {e}"))
    };
    let float = || -> Result<f64, String> {
        match &payload {
            Json::Number(n) => n.as_f64().ok_or_else(|| bad("a number")),
            Json::String(s) => match s.as_str() {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                _ => Err(bad("a number, \"NaN\", \"Infinity\" or \"-Infinity\"")),
            },
            _ => Err(bad("a number")),
        }
    };
    let field = |name: &str| -> Result<i64, String> {
        payload
            .get(name)
            .and_then(Json::as_i64)
            .ok_or_else(|| bad(&format!("an object with integer {name:?}")))
    };
    Ok(match case {
        "null" => wit::Value::Null,
        "boolean" => wit::Value::Boolean(payload.as_bool().ok_or_else(|| bad("true or false"))?),
        "int16" => wit::Value::Int16(int(i16::MIN.into(), i16::MAX.into())? as i16),
        "int32" => wit::Value::Int32(int(i32::MIN.into(), i32::MAX.into())? as i32),
        "int64" => wit::Value::Int64(int(i64::MIN, i64::MAX)?),
        "float32" => wit::Value::Float32(float()? as f32),
        "float64" => wit::Value::Float64(float()?),
        "numeric" => wit::Value::Numeric(text()?),
        "text" => wit::Value::Text(text()?),
        "json" => wit::Value::Json(text()?),
        "bytea" => wit::Value::Bytea(bytes(&payload)?),
        "uuid" => wit::Value::Uuid(bytes(&payload)?),
        "date" => wit::Value::Date(int(i32::MIN.into(), i32::MAX.into())? as i32),
        "time" => wit::Value::Time(int(i64::MIN, i64::MAX)?),
        "timestamp" => wit::Value::Timestamp(int(i64::MIN, i64::MAX)?),
        "timestamptz" => wit::Value::Timestamptz(int(i64::MIN, i64::MAX)?),
        "interval" => wit::Value::Interval(wit::Interval {
            months: i32::try_from(field("months")?).map_err(|_| bad("months in range"))?,
            days: i32::try_from(field("days")?).map_err(|_| bad("days in range"))?,
            microseconds: field("microseconds")?,
        }),
        "other" => wit::Value::Other(wit::OtherValue {
            type_name: payload
                .get("type-name")
                .and_then(Json::as_str)
                .ok_or_else(|| bad("an object with \"type-name\""))?
                .to_owned(),
            bytes: bytes(payload.get("bytes").unwrap_or(&Json::Null))?,
        }),
        other => return Err(format!("no value type {other:?}")),
    })
}

/// A lookback window: text as people write it (`"2h"`, `"1000"`), a number (an amount), or
/// typed as the WIT `lookback`: `{"microseconds": n}`, `{"amount": n}`.
pub(crate) fn lookback(window: &Json) -> Result<Lookback, ApiError> {
    let typed = |case: &str, n: &Json| -> Result<Lookback, String> {
        let n = n
            .as_i64()
            .ok_or_else(|| format!("lookback {case}: expected an integer, not {n}"))?;
        match case {
            "microseconds" => Ok(convert::lookback(wit::Lookback::Microseconds(n))),
            "amount" => Ok(convert::lookback(wit::Lookback::Amount(n))),
            other => Err(format!(
                "lookback: {other:?} is neither \"microseconds\" nor \"amount\""
            )),
        }
    };
    match window {
        Json::String(s) => Lookback::parse(s),
        Json::Object(map) if map.len() == 1 => match map.iter().next() {
            Some((case, n)) => typed(case, n),
            None => Err("lookback: an empty object".into()),
        },
        other => Lookback::parse(&other.to_string()),
    }
    .map_err(ApiError::bad_request)
}

/// What an incremental refresh did, as one line of ASCII-only JSON for the `pgcache-refresh`
/// header: `{"rows-from-database": n, "rows-from-cache": n, "watermark": text|null, "full": b}`.
pub(crate) fn refresh_header(report: Option<&crate::RefreshReport>) -> String {
    let r = convert::report(report);
    let json = serde_json::json!({
        "rows-from-database": r.rows_from_database,
        "rows-from-cache": r.rows_from_cache,
        "watermark": r.watermark,
        "full": r.full,
    })
    .to_string();
    // JSON allows any character escaped; a header value allows only visible ASCII.
    let mut ascii = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                ascii.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    ascii
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typed_and_plain_parameters() {
        let values = params(vec![
            json!(null),
            json!("2024-01-05"),
            json!(7),
            json!({"int64": 5}),
            json!({"bytea": "AAH/"}),
            json!({"interval": {"months": 1, "days": 2, "microseconds": 3}}),
            json!({"float64": "NaN"}),
        ])
        .expect("parameters");
        assert_eq!(values[0], Value::Null);
        assert_eq!(values[1], Value::Text("2024-01-05".into()));
        assert_eq!(values[2], Value::Text("7".into()));
        assert_eq!(values[3], Value::Int8(5));
        assert_eq!(values[4], Value::Bytea(vec![0, 1, 255]));
        assert_eq!(
            values[5],
            Value::Interval {
                months: 1,
                days: 2,
                micros: 3
            }
        );
        assert!(matches!(values[6], Value::Float8(f) if f.is_nan()));
    }

    #[test]
    fn a_bad_parameter_names_its_placeholder() {
        let e = params(vec![json!(1), json!({"uuid": "AAE="})]).expect_err("a short uuid");
        assert_eq!(
            e.plugin_error(),
            Some(&PluginError::BadParameter(
                "$2: a uuid has 16 bytes, not 2".into()
            ))
        );
        assert!(params(vec![json!({"int16": 70000})]).is_err());
        assert!(params(vec![json!({"int64": 1, "text": "x"})]).is_err());
    }

    #[test]
    fn refresh_header_is_ascii() {
        let header = refresh_header(None);
        assert_eq!(
            header,
            r#"{"full":false,"rows-from-cache":0,"rows-from-database":0,"watermark":null}"#
        );
    }
}
