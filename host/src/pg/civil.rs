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

use crate::pg::time;

/// Unix days as PostgreSQL date text: `2024-01-31`, `5874897-12-31`, `4714-11-24 BC`,
/// `infinity` (the shared formatting: dates have no saturated value).
pub(crate) fn format_date(unix_days: i32) -> String {
    time::format_date(unix_days)
}

/// Unix microseconds as PostgreSQL timestamp text (`+00` appended when `utc`); `i64::MIN` is
/// `-infinity`, every other value (`i64::MAX` included, see the module documentation) is the
/// finite instant it counts.
pub(crate) fn format_timestamp(unix_micros: i64, utc: bool) -> String {
    if unix_micros == i64::MIN {
        return "-infinity".into();
    }
    time::timestamp_text(0, unix_micros, utc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::time::civil_from_days;
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
            prop_assert_eq!(format_date(days), time::format_date(days));
            prop_assert_eq!(format_timestamp(micros, true), time::format_timestamp(micros, true));
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
