//! Text forms of values as pgcache prints them: exact, and readable back by PostgreSQL.
//!
//! ```
//! use pgcache::text;
//! assert_eq!(text::format_scaled(-1_234_567, 3), "-1234.567");
//! assert_eq!(text::rfc3339(1_706_702_400_000_123, true), "2024-01-31T12:00:00.000123Z");
//! assert_eq!(text::format_timestamp(i64::MAX, true), "infinity");
//! assert_eq!(text::format_float4(0.1), "0.1");
//! assert_eq!(text::format_float8(1e20), "1e+20");
//! ```

pub use crate::pg::numeric::format_scaled;
pub use crate::pg::time::{format_date, format_time, format_timestamp, rfc3339};

/// A `real` as PostgreSQL prints it: the shortest digits that read back as the same `f32`
/// (`0.1`, not `0.10000000149011612`), in exponent form outside 1e-4 to 1e6 (`1.5e-05`,
/// `1e+06`), and `NaN`, `Infinity`, `-Infinity`, `-0`.
pub fn format_float4(v: f32) -> String {
    if !v.is_finite() {
        return non_finite(f64::from(v));
    }
    shortest(&format!("{v:e}"), 6)
}

/// A `double precision` as PostgreSQL prints it: the shortest digits that read back as the
/// same `f64`, in exponent form outside 1e-4 to 1e15 (`1e+15`, `1e-05`).
pub fn format_float8(v: f64) -> String {
    if !v.is_finite() {
        return non_finite(v);
    }
    shortest(&format!("{v:e}"), 15)
}

fn non_finite(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v > 0.0 {
        "Infinity".into()
    } else {
        "-Infinity".into()
    }
}

/// Lays out Rust's shortest round-trip `{:e}` form (`-1.2345e-7`) the way PostgreSQL's
/// `float4out`/`float8out` do: plain digits when the decimal exponent is in `-4..fixed_below`,
/// else `d.ddde±XX` with at least two exponent digits.
fn shortest(exp_form: &str, fixed_below: i32) -> String {
    let (mantissa, exponent) = exp_form.split_once('e').unwrap_or((exp_form, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if (-4..fixed_below).contains(&exponent) {
        let point = exponent + 1;
        let text = if point <= 0 {
            format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}", "0".repeat(point as usize - digits.len()))
        } else {
            let (whole, fraction) = digits.split_at(point as usize);
            format!("{whole}.{fraction}")
        };
        return format!("{sign}{text}");
    }
    let (first, rest) = digits.split_at(1.min(digits.len()));
    let fraction = if rest.is_empty() {
        String::new()
    } else {
        format!(".{rest}")
    };
    let exp_sign = if exponent < 0 { '-' } else { '+' };
    format!(
        "{sign}{first}{fraction}e{exp_sign}{:02}",
        exponent.unsigned_abs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_postgres_prints_them() {
        // `SELECT 1e5::float4, 1e6::float4, ...` on PostgreSQL 15.
        for (v, text) in [
            (1e5f32, "100000"),
            (1e6, "1e+06"),
            (123_456.0, "123456"),
            (1_234_567.0, "1.234567e+06"),
            (1.5e-4, "0.00015"),
            (1.5e-5, "1.5e-05"),
            (0.1, "0.1"),
            (3.402_823_5e38, "3.4028235e+38"),
            (1e-45, "1e-45"),
            (-0.0, "-0"),
            (f32::NAN, "NaN"),
            (f32::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(format_float4(v), text, "{v:e}");
        }
        for (v, text) in [
            (1e15, "1e+15"),
            (1e14, "100000000000000"),
            (123_456_789_012_345.0, "123456789012345"),
            (1_234_567_890_123_456.0, "1.234567890123456e+15"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e300, "1e+300"),
            (1.5e-300, "1.5e-300"),
            (5e-324, "5e-324"),
            (100.0, "100"),
            (0.5, "0.5"),
            (-2.25, "-2.25"),
            (0.0, "0"),
        ] {
            assert_eq!(format_float8(v), text, "{v:e}");
        }
    }
}
