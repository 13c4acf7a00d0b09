//! Dates and timestamps of ordering values written out exactly, over PostgreSQL's whole range.
//!
//! PostgreSQL's dates run to 5874897 AD and its timestamps to 294276 AD, past what general
//! calendar libraries represent (chrono stops at 262142 AD). A watermark rendered through such
//! a library turned into `'infinity'` there, and the next refresh dropped every stored row
//! above the safe value. These functions compute the proleptic Gregorian calendar with plain
//! integer arithmetic (Howard Hinnant's `civil_from_days`), so every value of an `i32` day or
//! `i64` microsecond count has its exact text, which PostgreSQL reads back to the same value.
//!
//! Two values are not dates at all: `i32::MAX`/`i32::MIN` days and `i64::MIN` microseconds are
//! PostgreSQL's `infinity`/`-infinity`. `i64::MAX` microseconds is *also* the value a decoded
//! timestamp saturates to when it lies above Unix microsecond range (294247-01-10 AD .. 294276
//! AD), so it is written as that finite instant: as the lower bound of a delta read
//! (`col >= bound`) it then selects exactly the rows stored with that value, the saturated ones
//! and the real `infinity` alike.

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// The proleptic Gregorian (year, month, day) of `days` since 1970-01-01; year 0 is 1 BC.
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

/// `YYYY-MM-DD`, with ` BC` appended for years before 1 AD as PostgreSQL writes them.
fn date_text(days: i64) -> (String, bool) {
    let (year, month, day) = civil_from_days(days);
    let (year, bc) = if year <= 0 {
        (1 - year, true)
    } else {
        (year, false)
    };
    (format!("{year:04}-{month:02}-{day:02}"), bc)
}

/// Unix days as PostgreSQL date text: `2024-01-31`, `5874897-12-31`, `4714-11-24 BC`,
/// `infinity`.
pub(crate) fn format_date(unix_days: i32) -> String {
    match unix_days {
        i32::MAX => "infinity".into(),
        i32::MIN => "-infinity".into(),
        days => {
            let (text, bc) = date_text(i64::from(days));
            if bc { format!("{text} BC") } else { text }
        }
    }
}

/// Unix microseconds as PostgreSQL timestamp text (`+00` appended when `utc`); `i64::MIN` is
/// `-infinity`, every other value (`i64::MAX` included, see the module documentation) is the
/// finite instant it counts.
pub(crate) fn format_timestamp(unix_micros: i64, utc: bool) -> String {
    if unix_micros == i64::MIN {
        return "-infinity".into();
    }
    let days = unix_micros.div_euclid(MICROS_PER_DAY);
    let micros = unix_micros.rem_euclid(MICROS_PER_DAY);
    let (date, bc) = date_text(days);
    let secs = micros / 1_000_000;
    let mut text = format!(
        "{date} {:02}:{:02}:{:02}.{:06}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        micros % 1_000_000
    );
    if utc {
        text.push_str("+00");
    }
    if bc {
        text.push_str(" BC");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_dates() {
        assert_eq!(format_date(0), "1970-01-01");
        assert_eq!(format_date(19_753), "2024-01-31");
        assert_eq!(format_date(-719_528), "0001-01-01 BC");
        assert_eq!(format_date(-719_529), "0002-12-31 BC");
        // PostgreSQL's last date and chrono's first unrepresentable year.
        assert_eq!(format_date(2_145_042_905), "5874897-12-31");
        assert_eq!(format_date(95_026_237), "262143-01-01");
        assert_eq!(format_date(i32::MAX), "infinity");
        assert_eq!(format_date(i32::MIN), "-infinity");
    }

    #[test]
    fn known_timestamps() {
        assert_eq!(
            format_timestamp(1_706_702_400_000_123, true),
            "2024-01-31 12:00:00.000123+00"
        );
        assert_eq!(format_timestamp(-1, false), "1969-12-31 23:59:59.999999");
        assert_eq!(
            format_timestamp(i64::MAX, true),
            "294247-01-10 04:00:54.775807+00"
        );
        assert_eq!(format_timestamp(i64::MIN, false), "-infinity");
    }

    proptest! {
        /// Inside chrono's range the text is the one the rest of pgcache writes.
        #[test]
        fn agrees_with_the_shared_formatting(days in -2_000_000i32..2_000_000, micros in -60_000_000_000_000_000i64..60_000_000_000_000_000) {
            prop_assert_eq!(format_date(days), crate::pg::time::format_date(days));
            prop_assert_eq!(format_timestamp(micros, true), crate::pg::time::format_timestamp(micros, true));
        }

        /// Consecutive days are consecutive calendar dates, everywhere in the range.
        #[test]
        fn days_follow_each_other(days in -800_000_000i64..2_145_042_906) {
            let (y, m, d) = civil_from_days(days);
            let (y2, m2, d2) = civil_from_days(days + 1);
            let next = if d2 == 1 { (m2 == 1 && y2 == y + 1 && m == 12) || (y2 == y && m2 == m + 1) } else { y2 == y && m2 == m && d2 == d + 1 };
            prop_assert!(next, "{:?} then {:?}", (y, m, d), (y2, m2, d2));
        }
    }
}
