//! Plugin errors and how vendor answers map onto them.
//!
//! The workflow acts on the kind, not the text: `transient` is retried (after `retry-after` when
//! the vendor gave one), `permanent` sends the candidate to a person (Attention Required), and
//! `misconfigured` also stops and points at the plugin's config rather than the candidate. So the
//! mapping errs toward `permanent` for anything a retry will not fix.

use crate::{PluginError, TransientError};

/// The most vendor text carried into an error message; enough to diagnose, never a whole page.
const MAX_VENDOR_TEXT: usize = 300;

pub fn transient(message: impl Into<String>, retry_after_secs: Option<u32>) -> PluginError {
    PluginError::Transient(TransientError {
        message: message.into(),
        retry_after_secs,
    })
}

pub fn permanent(message: impl Into<String>) -> PluginError {
    PluginError::Permanent(message.into())
}

pub fn misconfigured(message: impl Into<String>) -> PluginError {
    PluginError::Misconfigured(message.into())
}

/// What a non-success HTTP status means for a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    Success,
    /// Throttled or the vendor is having trouble: try again later.
    Transient,
    /// Our credentials or permissions are wrong: fix the config.
    Misconfigured,
    /// The vendor refused this request for good.
    Permanent,
}

pub fn classify(status: u16) -> StatusClass {
    match status {
        200..=299 => StatusClass::Success,
        401 | 403 => StatusClass::Misconfigured,
        408 | 425 | 429 => StatusClass::Transient,
        // Not Implemented and HTTP Version Not Supported will not change on a retry.
        501 | 505 => StatusClass::Permanent,
        500..=599 => StatusClass::Transient,
        _ => StatusClass::Permanent,
    }
}

/// The error for a failed vendor call: `context` says what we were doing, `vendor_text` is the
/// vendor's own explanation when it gave one.
pub fn for_status(
    context: &str,
    status: u16,
    vendor_text: Option<&str>,
    retry_after_secs: Option<u32>,
) -> PluginError {
    let detail = match vendor_text {
        Some(t) if !t.trim().is_empty() => format!("{context}: HTTP {status}: {}", clip(t.trim())),
        _ => format!("{context}: HTTP {status}"),
    };
    match classify(status) {
        StatusClass::Transient => transient(detail, retry_after_secs),
        StatusClass::Misconfigured => misconfigured(format!(
            "{detail} (check the plugin's credentials and the permissions granted to them)"
        )),
        StatusClass::Permanent | StatusClass::Success => permanent(detail),
    }
}

/// Cut vendor text to a readable length on a char boundary.
pub fn clip(text: &str) -> String {
    if text.len() <= MAX_VENDOR_TEXT {
        return text.to_owned();
    }
    let mut end = MAX_VENDOR_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// `Retry-After` as seconds to wait: either delta-seconds or an HTTP-date (RFC 9110 10.2.3).
///
/// A date is measured against the response's own `Date` header, i.e. the vendor's clock,
/// which is what the vendor meant; guests also have no wall clock on every build path. A date
/// without a `Date` header to compare with, or anything unparseable, is ignored; a date in
/// the past means "now" (0).
pub fn parse_retry_after(value: &str, date_header: Option<&str>) -> Option<u32> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(
            value
                .parse::<u64>()
                .map_or(u32::MAX, |v| u32::try_from(v).unwrap_or(u32::MAX)),
        );
    }
    let at = parse_http_date(value)?;
    let now = parse_http_date(date_header?.trim())?;
    Some(u32::try_from(at.saturating_sub(now)).unwrap_or(u32::MAX))
}

/// IMF-fixdate only (`Sun, 06 Nov 1994 08:49:37 GMT`), which RFC 9110 requires senders to use.
fn parse_http_date(value: &str) -> Option<u64> {
    let mut parts = value.split_whitespace();
    let _weekday = parts.next()?.strip_suffix(',')?;
    let day: u64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':');
    let h: u64 = hms.next()?.parse().ok()?;
    let m: u64 = hms.next()?.parse().ok()?;
    let s: u64 = hms.next()?.parse().ok()?;
    // The year bound keeps the day arithmetic far from overflow on hostile input.
    if parts.next()? != "GMT"
        || !(1..=31).contains(&day)
        || !(1970..=9999).contains(&year)
        || h > 23
        || m > 59
        || s > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day)?;
    Some(days * 86_400 + h * 3_600 + m * 60 + s)
}

/// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u64, day: u64) -> Option<u64> {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    u64::try_from(era * 146_097 + doe - 719_468).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_statuses() {
        assert_eq!(classify(204), StatusClass::Success);
        assert_eq!(classify(401), StatusClass::Misconfigured);
        assert_eq!(classify(403), StatusClass::Misconfigured);
        assert_eq!(classify(429), StatusClass::Transient);
        assert_eq!(classify(503), StatusClass::Transient);
        assert_eq!(classify(501), StatusClass::Permanent);
        assert_eq!(classify(400), StatusClass::Permanent);
        assert_eq!(classify(409), StatusClass::Permanent);
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after("120", None), Some(120));
        assert_eq!(parse_retry_after(" 7 ", None), Some(7));
        assert_eq!(
            parse_retry_after("99999999999999999999", None),
            Some(u32::MAX)
        );
        assert_eq!(parse_retry_after("soon", None), None);
        assert_eq!(parse_retry_after("", None), None);
        assert_eq!(parse_retry_after("-5", None), None);
        let at = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(parse_http_date(at), Some(784_111_777));
        assert_eq!(
            parse_http_date("Wed, 01 Mar 2000 00:00:00 GMT"),
            Some(951_868_800)
        );
        assert_eq!(
            parse_retry_after(at, Some("Sun, 06 Nov 1994 08:49:07 GMT")),
            Some(30)
        );
        assert_eq!(
            parse_retry_after(at, Some("Sun, 06 Nov 1994 08:50:07 GMT")),
            Some(0)
        );
        assert_eq!(parse_retry_after(at, None), None);
        assert_eq!(
            parse_http_date("Sun, 06 Nov 99999999999999 08:49:37 GMT"),
            None
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Foo 1994 08:49:37 GMT", Some(at)),
            None
        );
    }

    #[test]
    fn errors_carry_context_and_kind() {
        let e = for_status("assignLicense", 429, Some("slow down"), Some(3));
        match e {
            PluginError::Transient(t) => {
                assert_eq!(t.retry_after_secs, Some(3));
                assert!(t.message.contains("HTTP 429: slow down"), "{}", t.message);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            for_status("x", 403, None, None),
            PluginError::Misconfigured(_)
        ));
        assert!(matches!(
            for_status("x", 422, None, None),
            PluginError::Permanent(_)
        ));
        assert_eq!(clip(&"é".repeat(400)).chars().count(), 153);
    }
}
