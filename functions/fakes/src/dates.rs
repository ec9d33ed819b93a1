//! Dates relative to today, so the demo's usage always reads "last used 120 days ago" whatever
//! the day the demo runs (the fakes carry no calendar crate).

use std::time::{SystemTime, UNIX_EPOCH};

/// Days since 1970-01-01 today (UTC).
fn today() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| (d.as_secs() / 86_400) as i64)
}

/// `YYYY-MM-DD` of the day `days` before today (UTC).
pub fn date_days_ago(days: u32) -> String {
    let (y, m, d) = civil(today() - i64::from(days));
    format!("{y:04}-{m:02}-{d:02}")
}

/// An RFC 3339 time on the day `days` before today, at 09:00 UTC.
pub fn time_days_ago(days: u32) -> String {
    format!("{}T09:00:00Z", date_days_ago(days))
}

/// The civil date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_are_right_around_leap_days() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(19_782), (2024, 2, 29));
        assert_eq!(civil(20_422), (2025, 11, 30));
        assert_eq!(date_days_ago(0).len(), 10);
    }
}
