//! Dates and times between PostgreSQL (microseconds or days since 2000-01-01) and Arrow
//! (since 1970-01-01), with their text forms.
//!
//! PostgreSQL's `infinity` and `-infinity` are `i64::MAX`/`i64::MIN` (timestamps) and
//! `i32::MAX`/`i32::MIN` (dates) on the wire. pgcache keeps exactly those sentinels in Arrow
//! instead of shifting them by the epoch difference, so they survive a round trip and still sort
//! after (before) every real value. A value Arrow's type cannot hold exactly (PostgreSQL's
//! `24:00:00`, its last timestamps of year 294247 on) is an error naming the column, never a
//! changed value.

/// Now, in Unix microseconds (the unit of every timestamp pgcache keeps).
pub(crate) fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Microseconds from 1970-01-01 to 2000-01-01.
pub(crate) const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days from 1970-01-01 to 2000-01-01.
pub(crate) const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds in a day; also the first value past the end of Arrow's `Time64(µs)` range.
pub(crate) const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A PostgreSQL timestamp (microseconds since 2000) as Unix microseconds. PostgreSQL's last
/// timestamps (294247-01-10 04:00:54.775807 UTC to 294276-12-31) have no Unix microsecond
/// count in an `i64` other than the `infinity` sentinel: they are an error, never `infinity`.
pub(crate) fn timestamp_from_pg(pg: i64) -> Result<i64, String> {
    match pg {
        i64::MAX | i64::MIN => Ok(pg),
        _ => pg
            .checked_add(PG_EPOCH_MICROS)
            .filter(|unix| *unix != i64::MAX)
            .ok_or_else(|| {
                format!(
                    "timestamp {} is past the last instant Arrow's Timestamp(µs) holds ({}); \
                     cast the column to text to keep it",
                    format_pg_timestamp(pg),
                    format_timestamp(i64::MAX - 1, false)
                )
            }),
    }
}

/// Unix microseconds as a PostgreSQL timestamp; a value outside PostgreSQL's range (other
/// than the `infinity` sentinels) is an error, never a silent `-infinity`.
pub(crate) fn timestamp_to_pg(unix: i64) -> Result<i64, String> {
    match unix {
        i64::MAX | i64::MIN => Ok(unix),
        _ => unix
            .checked_sub(PG_EPOCH_MICROS)
            .filter(|pg| *pg != i64::MIN)
            .ok_or_else(|| format!("timestamp {unix} µs since 1970 is out of range")),
    }
}

/// A PostgreSQL date (days since 2000) as Unix days. Every PostgreSQL date fits.
pub(crate) fn date_from_pg(pg: i32) -> i32 {
    match pg {
        i32::MAX | i32::MIN => pg,
        _ => pg.saturating_add(PG_EPOCH_DAYS),
    }
}

/// Unix days as a PostgreSQL date; out of range is an error, never a silent `-infinity`.
pub(crate) fn date_to_pg(unix: i32) -> Result<i32, String> {
    match unix {
        i32::MAX | i32::MIN => Ok(unix),
        _ => unix
            .checked_sub(PG_EPOCH_DAYS)
            .filter(|pg| *pg != i32::MIN)
            .ok_or_else(|| format!("date {unix} days since 1970 is out of range")),
    }
}

/// Checks a PostgreSQL `time` for Arrow's `Time64(µs)`, whose values lie in
/// `[00:00:00, 24:00:00)`: PostgreSQL's `24:00:00` has no place there and is an error.
pub(crate) fn time_of_day(micros: i64) -> Result<i64, String> {
    if (0..MICROS_PER_DAY).contains(&micros) {
        Ok(micros)
    } else {
        Err(format!(
            "time {} is outside Arrow's Time64 range (00:00:00 to 23:59:59.999999); \
             cast the column to text or interval to keep it",
            format_time(micros)
        ))
    }
}

/// The proleptic Gregorian (year, month, day) of `days` since 1970-01-01, for every `i64`
/// day count that has one (Howard Hinnant's `civil_from_days`); year 0 is 1 BC. Calendar
/// libraries stop short of PostgreSQL's range (chrono at 262142 AD), so this is plain
/// arithmetic.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // `day` is in 1..=31 and `month` in 1..=12 by construction.
    (year, month as u32, day as u32)
}

/// `YYYY-MM-DD` with PostgreSQL's era convention (year 0 is 1 BC): the text and whether it
/// is BC.
fn date_parts(days: i64) -> (String, bool) {
    let (year, month, day) = civil_from_days(days);
    let (year, bc) = if year <= 0 {
        (1 - year, true)
    } else {
        (year, false)
    };
    (format!("{year:04}-{month:02}-{day:02}"), bc)
}

/// `HH:MM:SS.ffffff` of microseconds within a day.
fn clock(micros: i64) -> String {
    let secs = micros / 1_000_000;
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        micros % 1_000_000
    )
}

/// A finite instant of `micros` since `epoch_days`, as PostgreSQL writes it.
pub(crate) fn timestamp_text(epoch_days: i64, micros: i64, utc: bool) -> String {
    let micros = i128::from(micros) + i128::from(epoch_days) * i128::from(MICROS_PER_DAY);
    let per_day = i128::from(MICROS_PER_DAY);
    // Both fit an i64: |micros| / per_day is below 2^38, the remainder below a day.
    let days = micros.div_euclid(per_day) as i64;
    let (date, bc) = date_parts(days);
    let mut s = format!("{date} {}", clock(micros.rem_euclid(per_day) as i64));
    if utc {
        s.push_str("+00");
    }
    if bc {
        s.push_str(" BC");
    }
    s
}

/// A PostgreSQL timestamp (microseconds since 2000) as text, for messages.
fn format_pg_timestamp(pg: i64) -> String {
    timestamp_text(i64::from(PG_EPOCH_DAYS), pg, false)
}

/// Formats Unix microseconds the way PostgreSQL reads them back exactly:
/// `2024-01-31 12:00:00.000123` (+ `+00` when `utc`), `infinity`, `-infinity`, `... BC`.
pub fn format_timestamp(unix_micros: i64, utc: bool) -> String {
    match unix_micros {
        i64::MAX => "infinity".into(),
        i64::MIN => "-infinity".into(),
        _ => timestamp_text(0, unix_micros, utc),
    }
}

/// Formats Unix days as `2024-01-31`, `infinity`, or `0044-03-15 BC`.
pub fn format_date(unix_days: i32) -> String {
    match unix_days {
        i32::MAX => "infinity".into(),
        i32::MIN => "-infinity".into(),
        _ => {
            let (text, bc) = date_parts(i64::from(unix_days));
            if bc { format!("{text} BC") } else { text }
        }
    }
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

/// RFC 3339 with microseconds, for JSON output (`2024-01-31T12:00:00.000123Z`). Years past
/// 9999 carry a `+` and years before 1 AD are ISO 8601's astronomical years (`0000` is 1 BC,
/// `-0043` is 44 BC), as ISO 8601's expanded form writes them.
pub fn rfc3339(unix_micros: i64, utc: bool) -> String {
    match unix_micros {
        i64::MAX => return "infinity".into(),
        i64::MIN => return "-infinity".into(),
        _ => {}
    }
    let days = unix_micros.div_euclid(MICROS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let year = match year {
        y if y < 0 => format!("-{:04}", -y),
        y if y > 9999 => format!("+{y}"),
        y => format!("{y:04}"),
    };
    let s = format!(
        "{year}-{month:02}-{day:02}T{}",
        clock(unix_micros.rem_euclid(MICROS_PER_DAY))
    );
    if utc { s + "Z" } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_format_like_postgres_over_its_whole_range() {
        assert_eq!(
            format_timestamp(1_706_702_400_000_123, true),
            "2024-01-31 12:00:00.000123+00"
        );
        assert_eq!(format_timestamp(-1, false), "1969-12-31 23:59:59.999999");
        assert_eq!(
            format_timestamp(-62_135_596_800_000_000, false),
            "0001-01-01 00:00:00.000000"
        );
        assert!(format_timestamp(-62_135_596_800_000_001, false).ends_with(" BC"));
        // Past chrono's last year: still the real date, not `infinity`.
        assert_eq!(
            format_timestamp(i64::MAX - 1, true),
            "294247-01-10 04:00:54.775806+00"
        );
        assert_eq!(format_timestamp(i64::MAX, true), "infinity");
        assert_eq!(
            rfc3339(1_706_702_400_000_123, true),
            "2024-01-31T12:00:00.000123Z"
        );
        assert_eq!(
            rfc3339(i64::MAX - 1, false),
            "+294247-01-10T04:00:54.775806"
        );
    }

    #[test]
    fn epochs_keep_infinity_sentinels_and_refuse_what_does_not_fit() {
        assert_eq!(timestamp_from_pg(0), Ok(PG_EPOCH_MICROS));
        assert_eq!(timestamp_from_pg(i64::MAX), Ok(i64::MAX));
        // 294276-12-31 23:59:59.999999, PostgreSQL's last timestamp.
        let last = 9_224_318_015_999_999_999i128 - i128::from(PG_EPOCH_MICROS);
        let err = timestamp_from_pg(last as i64).unwrap_err();
        assert!(err.contains("294276-12-31 23:59:59.999999"), "{err}");
        assert!(timestamp_from_pg(i64::MAX - PG_EPOCH_MICROS).is_err());
        assert_eq!(
            timestamp_from_pg(i64::MAX - PG_EPOCH_MICROS - 1),
            Ok(i64::MAX - 1)
        );
        assert_eq!(timestamp_to_pg(i64::MIN), Ok(i64::MIN));
        assert!(timestamp_to_pg(i64::MIN + 1).is_err());
        assert_eq!(date_from_pg(0), PG_EPOCH_DAYS);
        assert_eq!(date_to_pg(date_from_pg(-5)), Ok(-5));
        assert!(date_to_pg(i32::MIN + 5).is_err());
    }

    #[test]
    fn dates_and_times_format_like_postgres() {
        assert_eq!(format_date(0), "1970-01-01");
        assert_eq!(format_date(i32::MAX), "infinity");
        assert_eq!(format_date(2_145_042_905), "5874897-12-31");
        assert_eq!(format_time(3_723_000_004), "01:02:03.000004");
        assert!(format_date(-719_528 - 366).ends_with(" BC"));
        assert_eq!(time_of_day(MICROS_PER_DAY - 1), Ok(MICROS_PER_DAY - 1));
        assert!(
            time_of_day(MICROS_PER_DAY)
                .unwrap_err()
                .contains("24:00:00")
        );
    }
}
