//! The Microsoft 365 usage report (`getM365AppUserDetail`, `getOffice365ActiveUserDetail`):
//! a CSV with one line per user and the dates of their last activity.
//!
//! Tenants may conceal names in reports (Microsoft 365 admin center, Reports settings): the
//! report then shows a hash instead of each user principal name, and no line can be matched to
//! a user. [`Activity::concealed`] says so, so the connector reports those users as unmatched
//! rather than as never active.

use std::collections::HashMap;

/// Last activity per user, from one report.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Activity {
    /// Lower-cased user principal name → the latest activity date (`YYYY-MM-DD`); `None` when
    /// the report lists the user with no activity in its period.
    pub by_upn: HashMap<String, Option<String>>,
    /// Lines whose user principal name is concealed (no `@`): they match nobody.
    pub concealed: u32,
}

impl Activity {
    /// Whether the tenant conceals names: any concealed line means all are (it is a tenant
    /// setting), so users missing from the report cannot be called inactive.
    pub fn is_concealed(&self) -> bool {
        self.concealed > 0
    }
}

/// Reads the report. Columns are found by their header, so both reports (and columns Microsoft
/// adds later) work: `User Principal Name`, and every column whose name ends in
/// `Last Activity Date`, of which the latest date counts.
pub fn parse(text: &str) -> Result<Activity, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = parse_csv(text)?.into_iter();
    let header = records
        .next()
        .ok_or_else(|| "the usage report is empty (no header line)".to_string())?;
    let find = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let upn_col = find("User Principal Name")
        .ok_or_else(|| "the usage report has no `User Principal Name` column".to_string())?;
    let date_cols: Vec<usize> = header
        .iter()
        .enumerate()
        .filter(|(_, h)| {
            h.trim()
                .to_ascii_lowercase()
                .ends_with("last activity date")
        })
        .map(|(i, _)| i)
        .collect();
    if date_cols.is_empty() {
        return Err("the usage report has no `Last Activity Date` column".into());
    }
    let mut activity = Activity::default();
    for record in records {
        let Some(upn) = record.get(upn_col).map(|u| u.trim()) else {
            continue;
        };
        if upn.is_empty() {
            continue;
        }
        if !upn.contains('@') {
            activity.concealed += 1;
            continue;
        }
        let latest = date_cols
            .iter()
            .filter_map(|i| record.get(*i))
            .map(|d| d.trim())
            .filter(|d| is_date(d))
            .max()
            .map(str::to_string);
        let entry = activity
            .by_upn
            .entry(upn.to_ascii_lowercase())
            .or_insert(None);
        if latest > *entry {
            *entry = latest;
        }
    }
    Ok(activity)
}

/// `YYYY-MM-DD`: the reports' date format (empty when there was no activity).
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// RFC 4180 CSV: quoted fields may hold commas, quotes (doubled) and line breaks.
fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut line = 1;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                c => {
                    if c == '\n' {
                        line += 1;
                    }
                    field.push(c);
                }
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            ',' => record.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                line += 1;
                record.push(std::mem::take(&mut field));
                if !(record.len() == 1 && record[0].is_empty()) {
                    records.push(std::mem::take(&mut record));
                } else {
                    record.clear();
                }
            }
            c => field.push(c),
        }
    }
    if quoted {
        return Err(format!(
            "the usage report ends inside a quoted field (line {line})"
        ));
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const APPS: &str =
        "\u{feff}Report Refresh Date,User Principal Name,Last Activity Date,Windows,Mac\r\n\
        2026-11-29,Ann@Demo.Example,2026-11-20,Yes,No\r\n\
        2026-11-29,bob@demo.example,,No,No\r\n\
        2026-11-29,\"quoted, name@demo.example\",2026-10-01,Yes,No\r\n";

    #[test]
    fn the_apps_report_gives_each_users_last_activity_by_lower_cased_upn() {
        let a = parse(APPS).unwrap();
        assert_eq!(
            a.by_upn.get("ann@demo.example"),
            Some(&Some("2026-11-20".into()))
        );
        assert_eq!(a.by_upn.get("bob@demo.example"), Some(&None));
        assert_eq!(
            a.by_upn.get("quoted, name@demo.example"),
            Some(&Some("2026-10-01".into()))
        );
        assert!(!a.is_concealed());
    }

    #[test]
    fn the_active_user_report_takes_the_latest_of_its_service_dates() {
        let csv = "Report Refresh Date,User Principal Name,Exchange Last Activity Date,Teams Last Activity Date\n\
            2026-11-29,ann@demo.example,2026-11-02,2026-11-21\n";
        let a = parse(csv).unwrap();
        assert_eq!(
            a.by_upn.get("ann@demo.example"),
            Some(&Some("2026-11-21".into()))
        );
    }

    #[test]
    fn hashed_names_are_counted_as_concealed_and_match_nobody() {
        let csv = "Report Refresh Date,User Principal Name,Last Activity Date\n\
            2026-11-29,8A2F0C1B9E6D4F7A3C5B,2026-11-20\n\
            2026-11-29,11D0C2A7F43E99B0E1AA,\n";
        let a = parse(csv).unwrap();
        assert_eq!(a.concealed, 2);
        assert!(a.by_upn.is_empty());
        assert!(a.is_concealed());
    }

    #[test]
    fn a_report_without_the_needed_columns_or_with_an_open_quote_is_refused() {
        assert!(parse("").is_err());
        assert!(parse("Report Refresh Date,Last Activity Date\n").is_err());
        assert!(parse("User Principal Name,Windows\n").is_err());
        assert!(parse("User Principal Name,Last Activity Date\n\"open,2026-01-01\n").is_err());
    }
}
