//! Dates and times between PostgreSQL (microseconds or days since 2000-01-01) and Arrow
//! (since 1970-01-01), with their text forms.
//!
//! PostgreSQL's `infinity` and `-infinity` are `i64::MAX`/`i64::MIN` (timestamps) and
//! `i32::MAX`/`i32::MIN` (dates) on the wire. pgcache keeps exactly those sentinels in Arrow
//! instead of shifting them by the epoch difference, so they survive a round trip and still sort
//! after (before) every real value.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

/// Microseconds from 1970-01-01 to 2000-01-01.
pub(crate) const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days from 1970-01-01 to 2000-01-01.
pub(crate) const PG_EPOCH_DAYS: i32 = 10_957;

/// A PostgreSQL timestamp (microseconds since 2000) as Unix microseconds.
pub(crate) fn timestamp_from_pg(pg: i64) -> i64 {
    match pg {
        i64::MAX | i64::MIN => pg,
        _ => pg.saturating_add(PG_EPOCH_MICROS),
    }
}

/// Unix microseconds as a PostgreSQL timestamp.
pub(crate) fn timestamp_to_pg(unix: i64) -> i64 {
    match unix {
        i64::MAX | i64::MIN => unix,
        _ => unix.saturating_sub(PG_EPOCH_MICROS),
    }
}

/// A PostgreSQL date (days since 2000) as Unix days.
pub(crate) fn date_from_pg(pg: i32) -> i32 {
    match pg {
        i32::MAX | i32::MIN => pg,
        _ => pg.saturating_add(PG_EPOCH_DAYS),
    }
}

/// Unix days as a PostgreSQL date.
pub(crate) fn date_to_pg(unix: i32) -> i32 {
    match unix {
        i32::MAX | i32::MIN => unix,
        _ => unix.saturating_sub(PG_EPOCH_DAYS),
    }
}

fn unix_epoch() -> NaiveDateTime {
    DateTime::UNIX_EPOCH.naive_utc()
}

/// Formats Unix microseconds the way PostgreSQL reads them back exactly:
/// `2024-01-31 12:00:00.000123` (+ `+00` when `utc`), `infinity`, `-infinity`, `... BC`.
pub fn format_timestamp(unix_micros: i64, utc: bool) -> String {
    match unix_micros {
        i64::MAX => return "infinity".into(),
        i64::MIN => return "-infinity".into(),
        _ => {}
    }
    let Some(dt) = unix_epoch().checked_add_signed(chrono::TimeDelta::microseconds(unix_micros))
    else {
        return if unix_micros > 0 {
            "infinity".into()
        } else {
            "-infinity".into()
        };
    };
    let (date, bc) = format_date_parts(dt.date());
    let mut s = format!(
        "{date} {:02}:{:02}:{:02}.{:06}",
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.nanosecond() / 1000
    );
    if utc {
        s.push_str("+00");
    }
    if bc {
        s.push_str(" BC");
    }
    s
}

/// Formats Unix days as `2024-01-31`, `infinity`, or `0044-03-15 BC`.
pub fn format_date(unix_days: i32) -> String {
    match unix_days {
        i32::MAX => return "infinity".into(),
        i32::MIN => return "-infinity".into(),
        _ => {}
    }
    let Some(date) = NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|d| d.checked_add_signed(chrono::TimeDelta::days(i64::from(unix_days))))
    else {
        return if unix_days > 0 {
            "infinity".into()
        } else {
            "-infinity".into()
        };
    };
    let (text, bc) = format_date_parts(date);
    if bc { format!("{text} BC") } else { text }
}

/// `YYYY-MM-DD` with PostgreSQL's era convention (year 0 is 1 BC).
fn format_date_parts(date: NaiveDate) -> (String, bool) {
    use chrono::Datelike;
    let (bc, year) = if date.year() <= 0 {
        (true, 1 - date.year())
    } else {
        (false, date.year())
    };
    (
        format!("{year:04}-{:02}-{:02}", date.month(), date.day()),
        bc,
    )
}

/// Formats microseconds since midnight as `HH:MM:SS.ffffff`.
pub fn format_time(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    format!(
        "{:02}:{:02}:{:02}.{frac:06}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// RFC 3339 with microseconds, for JSON output (`2024-01-31T12:00:00.000123Z`).
pub fn rfc3339(unix_micros: i64, utc: bool) -> String {
    match unix_micros {
        i64::MAX => return "infinity".into(),
        i64::MIN => return "-infinity".into(),
        _ => {}
    }
    match DateTime::from_timestamp_micros(unix_micros) {
        Some(dt) => {
            let s = dt.naive_utc().format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
            if utc { s + "Z" } else { s }
        }
        None => format_timestamp(unix_micros, utc),
    }
}

/// Parses a timestamp as written by people and by [`format_timestamp`]: `2024-01-31 12:00`,
/// `2024-01-31T12:00:00.5Z`, `2024-01-31 12:00:00+02`, `infinity`. Returns Unix microseconds.
/// Without an offset the time is taken as UTC.
pub(crate) fn parse_timestamp(text: &str) -> Result<i64, String> {
    let t = text.trim();
    match t.to_ascii_lowercase().as_str() {
        "infinity" | "+infinity" => return Ok(i64::MAX),
        "-infinity" => return Ok(i64::MIN),
        _ => {}
    }
    let normalised = t.replacen(' ', "T", 1);
    if let Ok(dt) = DateTime::parse_from_rfc3339(&normalised) {
        return Ok(dt.timestamp_micros());
    }
    // Offsets as PostgreSQL prints them: +02, -0330, +05:30.
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M%#z"] {
        if let Ok(dt) = DateTime::parse_from_str(&normalised, fmt) {
            return Ok(dt.timestamp_micros());
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(&normalised, fmt) {
            return Ok(dt.and_utc().timestamp_micros());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d.and_time(NaiveTime::MIN).and_utc().timestamp_micros());
    }
    Err(format!(
        "{text:?} is not a timestamp (expected e.g. 2024-01-31 12:00:00.123456+00)"
    ))
}

/// Parses `2024-01-31` or `infinity` into Unix days.
pub(crate) fn parse_date(text: &str) -> Result<i32, String> {
    let t = text.trim();
    match t.to_ascii_lowercase().as_str() {
        "infinity" | "+infinity" => return Ok(i32::MAX),
        "-infinity" => return Ok(i32::MIN),
        _ => {}
    }
    let d = NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .map_err(|_| format!("{text:?} is not a date (expected YYYY-MM-DD)"))?;
    let days = d
        .signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default())
        .num_days();
    i32::try_from(days).map_err(|_| format!("{text:?} is out of range"))
}

/// Parses `HH:MM[:SS[.ffffff]]` into microseconds since midnight.
pub(crate) fn parse_time(text: &str) -> Result<i64, String> {
    let t = NaiveTime::parse_from_str(text.trim(), "%H:%M:%S%.f")
        .or_else(|_| NaiveTime::parse_from_str(text.trim(), "%H:%M"))
        .map_err(|_| format!("{text:?} is not a time of day (expected HH:MM:SS)"))?;
    Ok(i64::from(t.num_seconds_from_midnight()) * 1_000_000 + i64::from(t.nanosecond() / 1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_roundtrip_through_text_at_microsecond_precision() {
        for micros in [
            0,
            1,
            -1,
            1_706_702_400_000_123,
            -62_135_596_800_000_000,
            253_402_300_799_999_999,
        ] {
            let text = format_timestamp(micros, true);
            assert_eq!(parse_timestamp(&text).unwrap(), micros, "{text}");
        }
        assert_eq!(
            format_timestamp(1_706_702_400_000_123, true),
            "2024-01-31 12:00:00.000123+00"
        );
        assert_eq!(
            parse_timestamp("2024-01-31 14:00:00.000123+02").unwrap(),
            1_706_702_400_000_123
        );
        assert_eq!(
            parse_timestamp("2024-01-31T12:00:00.000123Z").unwrap(),
            1_706_702_400_000_123
        );
        assert_eq!(parse_timestamp("infinity").unwrap(), i64::MAX);
    }

    #[test]
    fn epochs_keep_infinity_sentinels() {
        assert_eq!(timestamp_from_pg(0), PG_EPOCH_MICROS);
        assert_eq!(timestamp_from_pg(i64::MAX), i64::MAX);
        assert_eq!(timestamp_to_pg(i64::MIN), i64::MIN);
        assert_eq!(date_from_pg(0), PG_EPOCH_DAYS);
        assert_eq!(date_to_pg(date_from_pg(-5)), -5);
    }

    #[test]
    fn dates_and_times_format_like_postgres() {
        assert_eq!(format_date(0), "1970-01-01");
        assert_eq!(format_date(i32::MAX), "infinity");
        assert_eq!(parse_date("2000-01-01").unwrap(), PG_EPOCH_DAYS);
        assert_eq!(format_time(3_723_000_004), "01:02:03.000004");
        assert_eq!(parse_time("01:02:03.000004").unwrap(), 3_723_000_004);
        assert!(format_date(-719_528 - 366).ends_with(" BC"));
    }
}
