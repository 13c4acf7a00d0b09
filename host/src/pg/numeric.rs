//! PostgreSQL `numeric` in its binary wire format: decoding to exact decimal text or to a
//! scaled `i128` (Arrow `Decimal128`), and encoding from decimal text.
//!
//! The wire format is `ndigits: i16, weight: i16, sign: u16, dscale: u16` followed by
//! `ndigits` base-10 000 digits; the value is `sum(digit[i] * 10000^(weight - i))`.
//! Nothing here goes through `f64`: every conversion is exact or an error.

const POS: u16 = 0x0000;
const NEG: u16 = 0x4000;
const NAN: u16 = 0xC000;
const PINF: u16 = 0xD000;
const NINF: u16 = 0xF000;

/// A decoded numeric: a finite value's base-10 000 digits, or a special value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Numeric<'a> {
    Finite {
        negative: bool,
        weight: i16,
        dscale: u16,
        digits: Digits<'a>,
    },
    NaN,
    Infinity,
    NegInfinity,
}

/// The big-endian base-10 000 digits, borrowed from the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Digits<'a>(&'a [u8]);

impl Digits<'_> {
    fn len(&self) -> usize {
        self.0.len() / 2
    }

    fn get(&self, i: usize) -> i128 {
        i128::from(u16::from_be_bytes([self.0[2 * i], self.0[2 * i + 1]]))
    }
}

/// Parses the wire format.
pub(crate) fn parse(raw: &[u8]) -> Result<Numeric<'_>, String> {
    if raw.len() < 8 {
        return Err(format!("numeric value of {} bytes is too short", raw.len()));
    }
    let ndigits = u16::from_be_bytes([raw[0], raw[1]]) as usize;
    let weight = i16::from_be_bytes([raw[2], raw[3]]);
    let sign = u16::from_be_bytes([raw[4], raw[5]]);
    let dscale = u16::from_be_bytes([raw[6], raw[7]]);
    let digits = &raw[8..];
    if digits.len() != ndigits * 2 {
        return Err(format!(
            "numeric value announces {ndigits} digits but carries {} bytes",
            digits.len()
        ));
    }
    match sign {
        POS | NEG => Ok(Numeric::Finite {
            negative: sign == NEG,
            weight,
            dscale,
            digits: Digits(digits),
        }),
        NAN => Ok(Numeric::NaN),
        PINF => Ok(Numeric::Infinity),
        NINF => Ok(Numeric::NegInfinity),
        other => Err(format!(
            "numeric value has an unknown sign word {other:#06x}"
        )),
    }
}

/// The value times `10^scale` as an `i128`, for `Decimal128(p, scale)`. Fails on special
/// values, on digits below the scale (which would be rounded away) and on overflow.
pub(crate) fn to_i128(raw: &[u8], scale: i8) -> Result<i128, String> {
    let (negative, weight, digits) = match parse(raw)? {
        Numeric::Finite {
            negative,
            weight,
            digits,
            ..
        } => (negative, weight, digits),
        Numeric::NaN => {
            return Err(
                "NaN cannot be stored as a Decimal128; cast the column to text or filter it".into(),
            );
        }
        Numeric::Infinity | Numeric::NegInfinity => {
            return Err(
                "infinity cannot be stored as a Decimal128; cast the column to text or filter it"
                    .into(),
            );
        }
    };
    let scale = i32::from(scale);
    let overflow = || "value does not fit in a Decimal128".to_owned();
    let mut acc: i128 = 0;
    for i in 0..digits.len() {
        let digit = digits.get(i);
        // Exponent of this digit in base 10, shifted by the scale.
        let exp = 4 * (i32::from(weight) - i as i32) + scale;
        if exp >= 0 {
            let factor = 10i128.checked_pow(exp as u32).ok_or_else(overflow)?;
            acc = digit
                .checked_mul(factor)
                .and_then(|d| acc.checked_add(d))
                .ok_or_else(overflow)?;
        } else {
            // Only the top `4 - shift` decimal digits of this group lie above the scale.
            let shift = (-exp) as u32;
            let divisor = 10i128.pow(shift.min(4));
            if digit % divisor != 0 {
                return Err(format!("value has more than {scale} decimal places"));
            }
            acc = acc.checked_add(digit / divisor).ok_or_else(overflow)?;
        }
    }
    Ok(if negative { -acc } else { acc })
}

/// The exact text form, as PostgreSQL prints it (`dscale` decimal places, `NaN`, `Infinity`).
pub(crate) fn to_text(raw: &[u8]) -> Result<String, String> {
    let (negative, weight, dscale, digits) = match parse(raw)? {
        Numeric::Finite {
            negative,
            weight,
            dscale,
            digits,
        } => (negative, weight, dscale, digits),
        Numeric::NaN => return Ok("NaN".into()),
        Numeric::Infinity => return Ok("Infinity".into()),
        Numeric::NegInfinity => return Ok("-Infinity".into()),
    };
    let digit_at = |i: i32| -> i128 {
        if i >= 0 && (i as usize) < digits.len() {
            digits.get(i as usize)
        } else {
            0
        }
    };
    let mut out = String::new();
    if negative && digits.len() > 0 {
        out.push('-');
    }
    // Integer part: digits with index 0..=weight.
    if weight < 0 {
        out.push('0');
    } else {
        for i in 0..=i32::from(weight) {
            let d = digit_at(i);
            if i == 0 {
                out.push_str(&d.to_string());
            } else {
                out.push_str(&format!("{d:04}"));
            }
        }
    }
    if dscale > 0 {
        out.push('.');
        let mut frac = String::new();
        let mut i = i32::from(weight) + 1;
        while frac.len() < dscale as usize {
            frac.push_str(&format!("{:04}", digit_at(i)));
            i += 1;
        }
        frac.truncate(dscale as usize);
        out.push_str(&frac);
    }
    Ok(out)
}

/// Formats `value / 10^scale` as decimal text with exactly `scale` decimal places.
pub fn format_scaled(value: i128, scale: i8) -> String {
    if scale <= 0 {
        let mut s = value.to_string();
        s.extend(std::iter::repeat_n('0', (-scale) as usize));
        return s;
    }
    let scale = scale as usize;
    let digits = value.unsigned_abs().to_string();
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{}{int}.{frac}", if value < 0 { "-" } else { "" })
}

/// Encodes decimal text (`-12.5`, `1e3`, `NaN`, `Infinity`) in the wire format.
pub(crate) fn encode_text(text: &str, out: &mut Vec<u8>) -> Result<(), String> {
    let t = text.trim();
    let special = |sign: u16, out: &mut Vec<u8>| {
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&0i16.to_be_bytes());
        out.extend_from_slice(&sign.to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
    };
    let sign = match t.to_ascii_lowercase().as_str() {
        "nan" => Some(NAN),
        "infinity" | "+infinity" | "inf" | "+inf" => Some(PINF),
        "-infinity" | "-inf" => Some(NINF),
        _ => None,
    };
    if let Some(sign) = sign {
        special(sign, out);
        return Ok(());
    }
    let bad = || format!("{text:?} is not a decimal number");
    let (negative, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (
            &rest[..at],
            rest[at + 1..].parse::<i32>().map_err(|_| bad())?,
        ),
        None => (rest, 0),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(at) => (&mantissa[..at], &mantissa[at + 1..]),
        None => (mantissa, ""),
    };
    if int_part.is_empty() && frac_part.is_empty()
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    // Digit i of `all` has decimal exponent `point - 1 - i`.
    let all: Vec<u8> = int_part
        .bytes()
        .chain(frac_part.bytes())
        .map(|b| b - b'0')
        .collect();
    let point = int_part.len() as i64 + i64::from(exponent);
    let dscale = (frac_part.len() as i64 - i64::from(exponent)).max(0);
    if dscale > 16383 || point.abs() > 131_072 {
        return Err(format!("{text:?} is out of the range of numeric"));
    }
    // Base-10 000 group `w` holds decimal exponents 4w ..= 4w + 3.
    let max_w = (point - 1).div_euclid(4);
    let min_w = (point - all.len() as i64).div_euclid(4);
    let mut groups = vec![0u16; (max_w - min_w + 1) as usize];
    for (i, d) in all.iter().enumerate() {
        let e = point - 1 - i as i64;
        groups[(max_w - e.div_euclid(4)) as usize] +=
            u16::from(*d) * 10u16.pow(e.rem_euclid(4) as u32);
    }
    let (groups, weight, sign) = match groups.iter().position(|g| *g != 0) {
        None => (&groups[..0], 0, POS),
        Some(first) => {
            let last = groups.iter().rposition(|g| *g != 0).unwrap_or(first);
            (
                &groups[first..=last],
                max_w - first as i64,
                if negative { NEG } else { POS },
            )
        }
    };
    out.extend_from_slice(&(groups.len() as u16).to_be_bytes());
    out.extend_from_slice(&(weight as i16).to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&(dscale as u16).to_be_bytes());
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
    Ok(())
}

/// Compares two decimal texts numerically (both produced by [`to_text`] or [`format_scaled`]).
pub(crate) fn cmp_text(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn parts(s: &str) -> (bool, &str, &str) {
        let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        (neg, int.trim_start_matches('0'), frac.trim_end_matches('0'))
    }
    fn cmp_abs(a: (&str, &str), b: (&str, &str)) -> Ordering {
        a.0.len()
            .cmp(&b.0.len())
            .then_with(|| a.0.cmp(b.0))
            .then_with(|| a.1.cmp(b.1))
    }
    let rank = |s: &str| match s {
        "NaN" => 3,
        "Infinity" => 2,
        "-Infinity" => -2,
        _ => 0,
    };
    let (ra, rb) = (rank(a), rank(b));
    if ra != 0 || rb != 0 {
        return ra.cmp(&rb);
    }
    let (na, ia, fa) = parts(a);
    let (nb, ib, fb) = parts(b);
    let zero_a = ia.is_empty() && fa.is_empty();
    let zero_b = ib.is_empty() && fb.is_empty();
    match (na && !zero_a, nb && !zero_b) {
        (false, true) => Ordering::Greater,
        (true, false) => Ordering::Less,
        (false, false) => cmp_abs((ia, fa), (ib, fb)),
        (true, true) => cmp_abs((ib, fb), (ia, fa)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(text: &str) -> String {
        let mut buf = Vec::new();
        encode_text(text, &mut buf).unwrap();
        to_text(&buf).unwrap()
    }

    #[test]
    fn text_roundtrips_exactly() {
        for (input, expected) in [
            ("0", "0"),
            ("1", "1"),
            ("-1", "-1"),
            ("12.5", "12.5"),
            ("0.0001", "0.0001"),
            ("0.00001", "0.00001"),
            ("10000", "10000"),
            ("123456789.123456789", "123456789.123456789"),
            ("-0.5", "-0.5"),
            ("1e3", "1000"),
            ("1.5e-3", "0.0015"),
            ("1.000", "1.000"),
            (
                "99999999999999999999999999999999999999",
                "99999999999999999999999999999999999999",
            ),
            ("NaN", "NaN"),
            ("-Infinity", "-Infinity"),
            (".5", "0.5"),
            ("00012.300", "12.300"),
        ] {
            assert_eq!(roundtrip(input), expected, "input {input}");
        }
    }

    #[test]
    fn rejects_garbage() {
        let mut buf = Vec::new();
        for bad in ["", "abc", "1.2.3", "--1", "1e", "."] {
            assert!(encode_text(bad, &mut buf).is_err(), "{bad}");
        }
    }

    #[test]
    fn scaled_integers_are_exact() {
        let mut buf = Vec::new();
        encode_text("-1234.567", &mut buf).unwrap();
        assert_eq!(to_i128(&buf, 3).unwrap(), -1_234_567);
        assert_eq!(to_i128(&buf, 5).unwrap(), -123_456_700);
        assert!(to_i128(&buf, 2).is_err());
        buf.clear();
        encode_text("9999999999999999999999999999.9999999999", &mut buf).unwrap();
        assert_eq!(
            to_i128(&buf, 10).unwrap(),
            99_999_999_999_999_999_999_999_999_999_999_999_999
        );
        buf.clear();
        encode_text("NaN", &mut buf).unwrap();
        assert!(to_i128(&buf, 2).unwrap_err().contains("NaN"));
    }

    #[test]
    fn formats_scaled_values() {
        assert_eq!(format_scaled(-1_234_567, 3), "-1234.567");
        assert_eq!(format_scaled(5, 3), "0.005");
        assert_eq!(format_scaled(-5, 3), "-0.005");
        assert_eq!(format_scaled(12, 0), "12");
        assert_eq!(format_scaled(12, -2), "1200");
    }

    #[test]
    fn compares_decimal_text() {
        use std::cmp::Ordering::*;
        assert_eq!(cmp_text("1.0", "1.00"), Equal);
        assert_eq!(cmp_text("-0", "0"), Equal);
        assert_eq!(cmp_text("9.9", "10"), Less);
        assert_eq!(cmp_text("-10", "-9.9"), Less);
        assert_eq!(cmp_text("0.001", "0.0009"), Greater);
        assert_eq!(cmp_text("Infinity", "1e9"), Greater);
        assert_eq!(cmp_text("NaN", "Infinity"), Greater);
    }
}
