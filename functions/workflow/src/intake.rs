//! Turning rows (CSV lines, JSON objects, API bodies) into candidates, with every problem
//! reported by field so an import can name the line and field of each bad row.

use crate::model::{
    AppliesTo, Candidate, Cents, Justification, PricePeriod, Revocation, Rule, RuleSnapshot,
    Software, State, Timestamp, UserRef,
};
use crate::text;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// The columns a candidate row may have. Anything else is refused as an unknown field.
pub const FIELDS: &[&str] = &[
    "id",
    "applies_to",
    "publisher",
    "product",
    "version",
    "sku",
    "subscription_id",
    "device",
    "user_id",
    "user_name",
    "user_email",
    "user_upn",
    "user_itil",
    "user_vip",
    "provisioned_at",
    "justification",
    "inactive_days",
    "last_used_at",
    "unused_rights",
    "price_per_right",
    "price_period",
    "rule",
    "assignment_group",
    "assigned_to",
];

/// One problem with one field of one row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// A valid row, not yet numbered or stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Draft {
    pub id: Option<String>,
    pub applies_to: AppliesTo,
    pub software: Software,
    pub device: Option<String>,
    pub user: Option<UserRef>,
    pub justification: Justification,
    pub inactive_days: Option<u32>,
    pub last_used_at: Option<Timestamp>,
    pub unused_rights: u32,
    pub price_per_right_cents: Cents,
    /// Resolved already ([`PricePeriod::resolve`]): the row's, the rule's or the deployment's.
    pub price_period: PricePeriod,
    /// The rule as the candidate will keep it.
    pub rule: RuleSnapshot,
    pub assignment_group: Option<String>,
    pub assigned_to: Option<String>,
    /// When the user's account was made, where the data says (recently provisioned users may
    /// be excluded by the rule).
    pub provisioned_at: Option<Timestamp>,
}

/// What the row may refer to, and what it falls back on.
#[derive(Clone, Copy, Debug)]
pub struct Known<'a> {
    pub rules: &'a [Rule],
    pub groups: &'a [String],
    /// The deployment's price period, for rows and rules that name none.
    pub price_period: PricePeriod,
}

/// Reads typed fields out of one row, collecting every problem instead of stopping at the
/// first, so one pass reports all of a row's errors. Candidate rows and usage rows share it.
#[derive(Debug)]
pub struct Fields<'a> {
    row: &'a BTreeMap<String, String>,
    pub errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    /// Starts reading; fields not in `allowed` are reported as unknown, and every value must
    /// be one line of visible text (every field of a row is a single-line field).
    pub fn new(row: &'a BTreeMap<String, String>, allowed: &[&str]) -> Self {
        let mut f = Fields {
            row,
            errors: Vec::new(),
        };
        for (k, v) in row {
            if !allowed.contains(&k.as_str()) {
                f.err(
                    k,
                    format!("unknown field (expected one of: {})", allowed.join(", ")),
                );
            } else if let Err(e) = text::single_line(v) {
                f.err(k, e.to_string());
            }
        }
        f
    }

    pub fn err(&mut self, field: &str, message: String) {
        self.errors.push(FieldError {
            field: field.to_string(),
            message,
        });
    }

    /// The trimmed text; blank counts as absent.
    pub fn text(&self, k: &str) -> Option<String> {
        self.row
            .get(k)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }

    pub fn required(&mut self, k: &str) -> Option<String> {
        let v = self.text(k);
        if v.is_none() {
            self.err(k, "is required".into());
        }
        v
    }

    pub fn flag(&mut self, k: &str) -> bool {
        match self.text(k).as_deref() {
            None => false,
            Some(v)
                if ["true", "yes", "1"]
                    .iter()
                    .any(|t| v.eq_ignore_ascii_case(t)) =>
            {
                true
            }
            Some(v)
                if ["false", "no", "0"]
                    .iter()
                    .any(|t| v.eq_ignore_ascii_case(t)) =>
            {
                false
            }
            Some(v) => {
                self.err(k, format!("'{v}' is not true or false"));
                false
            }
        }
    }

    pub fn whole(&mut self, k: &str) -> Option<u32> {
        let v = self.text(k)?;
        match v.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.err(k, format!("'{v}' is not a whole number >= 0"));
                None
            }
        }
    }

    pub fn decimal(&mut self, k: &str) -> Option<f64> {
        let v = self.text(k)?;
        match v.parse::<f64>() {
            Ok(n) if n.is_finite() && n >= 0.0 => Some(n),
            _ => {
                self.err(k, format!("'{v}' is not a number >= 0"));
                None
            }
        }
    }

    pub fn time(&mut self, k: &str) -> Option<Timestamp> {
        let v = self.text(k)?;
        let t = parse_time(&v);
        if t.is_none() {
            self.err(
                k,
                format!("'{v}' is not a date (YYYY-MM-DD) or RFC 3339 time"),
            );
        }
        t
    }

    /// Absent means 0.
    pub fn money(&mut self, k: &str) -> Option<Cents> {
        match self.text(k) {
            None => Some(0),
            Some(v) => {
                let m = parse_money(&v);
                if m.is_none() {
                    self.err(k, format!("'{v}' is not an amount like 12.50"));
                }
                m
            }
        }
    }

    /// Absent is `None`: the rule or the deployment decides ([`PricePeriod::resolve`]).
    pub fn price_period(&mut self, k: &str) -> Option<PricePeriod> {
        let v = self.text(k)?;
        let p = PricePeriod::parse(&v);
        if p.is_none() {
            let all: Vec<_> = PricePeriod::ALL.iter().map(|p| p.as_str()).collect();
            self.err(k, format!("'{v}' is not one of {}", all.join(", ")));
        }
        p
    }

    /// Absent means installed software.
    pub fn applies_to(&mut self, k: &str) -> Option<AppliesTo> {
        match self.text(k) {
            None => Some(AppliesTo::InstalledSoftware),
            Some(v) => {
                let a = AppliesTo::parse(&v);
                if a.is_none() {
                    self.err(
                        k,
                        format!("'{v}' is not installed-software or subscription"),
                    );
                }
                a
            }
        }
    }

    pub fn email(&mut self, k: &str) -> Option<String> {
        let e = self.text(k)?;
        match text::email(&e) {
            Ok(()) => Some(e),
            Err(why) => {
                self.err(k, why);
                None
            }
        }
    }

    /// A user from `user_id`, `user_name`, `user_email`, `user_upn`, `user_itil`, `user_vip`.
    pub fn user(&mut self) -> Option<UserRef> {
        let email = self.email("user_email");
        let itil = self.flag("user_itil");
        let vip = self.flag("user_vip");
        let user = self.text("user_id").map(|id| UserRef {
            display_name: self.text("user_name").unwrap_or_else(|| id.clone()),
            id,
            email,
            upn: self.text("user_upn"),
            itil,
            vip,
        });
        if user.is_none() && (self.text("user_email").is_some() || self.text("user_name").is_some())
        {
            self.err(
                "user_id",
                "is required when other user fields are given".into(),
            );
        }
        user
    }

    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Validates one row given as field → text. Blank values count as absent.
pub fn parse_row(
    row: &BTreeMap<String, String>,
    known: Known<'_>,
) -> Result<Draft, Vec<FieldError>> {
    let mut f = Fields::new(row, FIELDS);
    let applies_to = f.applies_to("applies_to");
    let publisher = f.required("publisher");
    let product = f.required("product");
    let justification = match f.text("justification") {
        None => {
            f.err("justification", "is required".into());
            None
        }
        Some(v) => {
            let j = Justification::parse(&v);
            if j.is_none() {
                let all: Vec<_> = Justification::ALL.iter().map(|j| j.as_str()).collect();
                f.err(
                    "justification",
                    format!("'{v}' is not one of {}", all.join(", ")),
                );
            }
            j
        }
    };
    let device = f.text("device");
    if applies_to == Some(AppliesTo::InstalledSoftware) && device.is_none() {
        f.err("device", "is required for installed software".into());
    }
    let user = f.user();
    let inactive_days = f.whole("inactive_days");
    let unused_rights = f.whole("unused_rights").unwrap_or(1);
    let last_used_at = f.time("last_used_at");
    let price = f.money("price_per_right");
    let period = f.price_period("price_period");
    let rule = match f.text("rule") {
        None if known.rules.len() == 1 => known.rules.first().cloned(),
        None => {
            f.err("rule", "is required".into());
            None
        }
        Some(r) => {
            let rule = known.rules.iter().find(|x| x.id == r).cloned();
            if rule.is_none() {
                f.err("rule", format!("unknown rule '{r}'"));
            }
            rule
        }
    };
    let assignment_group = f
        .text("assignment_group")
        .or_else(|| rule.as_ref().and_then(|r| r.assignment_group.clone()));
    if let Some(g) = &assignment_group {
        if !known.groups.contains(g) {
            f.err(
                "assignment_group",
                format!("unknown assignment group '{g}'"),
            );
        }
    }
    let id = f.text("id");
    if let Some(i) = &id {
        if let Err(why) = check_id(i) {
            f.err("id", why);
        }
    }

    match (applies_to, publisher, product, justification, price, rule) {
        (
            Some(applies_to),
            Some(publisher),
            Some(product),
            Some(justification),
            Some(price),
            Some(rule),
        ) if f.is_ok() => Ok(Draft {
            id,
            applies_to,
            software: Software {
                publisher,
                product,
                version: f.text("version"),
                sku: f.text("sku"),
                subscription_id: f.text("subscription_id"),
            },
            device,
            user,
            justification,
            inactive_days,
            last_used_at,
            unused_rights,
            price_per_right_cents: price,
            price_period: PricePeriod::resolve(period, rule.price_period, known.price_period),
            rule: rule.snapshot(),
            assignment_group,
            assigned_to: f.text("assigned_to"),
            provisioned_at: f.time("provisioned_at"),
        }),
        _ => Err(f.errors),
    }
}

/// `RC0000042`.
pub fn format_number(n: u64) -> String {
    format!("RC{n:07}")
}

impl Draft {
    /// The seat the row is about (as [`crate::usage::candidate_key`] reads a candidate's), when
    /// it names a user.
    pub fn seat_key(&self) -> Option<String> {
        self.user.as_ref().map(|u| {
            crate::usage::seat_key(
                &u.id,
                &self.software.publisher,
                &self.software.product,
                self.device.as_deref(),
            )
        })
    }

    /// The new candidate in Ready, version 0.
    pub fn into_candidate(self, id: String, number: u64, now: Timestamp) -> Candidate {
        Candidate {
            id,
            number: format_number(number),
            applies_to: self.applies_to,
            software: self.software,
            device: self.device,
            user: self.user,
            justification: self.justification,
            inactive_days: self.inactive_days,
            last_used_at: self.last_used_at,
            unused_rights: self.unused_rights,
            price_per_right_cents: self.price_per_right_cents,
            price_period: self.price_period,
            rule: self.rule,
            assignment_group: self.assignment_group,
            assigned_to: self.assigned_to,
            state: State::Ready,
            version: 0,
            opened_at: now,
            updated_at: now,
            closed_at: None,
            asked_at: None,
            deadline_at: None,
            due_at: None,
            reminders_sent: 0,
            revocation: Revocation::default(),
            state_since: Some(now),
            attention: None,
            attention_from: None,
            work_notes: Vec::new(),
            verification: None,
            reopened_from: None,
            provisioned_at: self.provisioned_at,
            exclusion_override: None,
        }
    }
}

/// `RC0000042` and the like: letters then digits. Candidates are found by id or by number in
/// one lookup, so an id of this shape could answer for another candidate's number: ids may
/// never look like one, which keeps the two in separate spaces.
pub fn looks_like_number(x: &str) -> bool {
    let digits = x.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    digits.len() < x.len() && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// An imported candidate id: short, URL-safe, and never shaped like a number.
pub fn check_id(id: &str) -> Result<(), String> {
    if id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Err("use at most 64 letters, digits, '-' or '_'".into())
    } else if looks_like_number(id) {
        Err(format!(
            "'{id}' has the shape of a candidate number (letters then digits), which Reclaim \
             gives out itself; use another id, e.g. 'import-{id}'"
        ))
    } else {
        Ok(())
    }
}

/// `2026-01-31` or an RFC 3339 time.
pub fn parse_time(s: &str) -> Option<Timestamp> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
}

/// `12`, `12.5`, `12.50` → cents. No negatives, no more than two decimals.
pub fn parse_money(s: &str) -> Option<Cents> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || frac.len() > 2 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().ok()? * 10,
        _ => frac.parse().ok()?,
    };
    whole.checked_mul(100)?.checked_add(frac)
}

/// Cents as `12.50`.
pub fn format_money(c: Cents) -> String {
    let sign = if c < 0 { "-" } else { "" };
    let c = c.unsigned_abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

/// A row as read from a file: its line (CSV, counting the header) or item number (JSON), and
/// field → text.
pub type Row = (usize, BTreeMap<String, String>);

/// Reads JSON candidate rows: an array of flat objects (or `{"candidates": [...]}`). Strings,
/// numbers and booleans are taken as text; nested values are refused with their item and field.
pub fn rows_from_json(v: &serde_json::Value) -> Result<Vec<Row>, Vec<(usize, FieldError)>> {
    use serde_json::Value;
    let items = match v {
        Value::Array(items) => items,
        Value::Object(o) => match o.get("candidates") {
            Some(Value::Array(items)) if o.len() == 1 => items,
            _ => {
                return Err(vec![(
                    0,
                    FieldError {
                        field: "(document)".into(),
                        message:
                            "expected an array of candidate objects or {\"candidates\": [...]}"
                                .into(),
                    },
                )])
            }
        },
        _ => {
            return Err(vec![(
                0,
                FieldError {
                    field: "(document)".into(),
                    message: "expected an array of candidate objects".into(),
                },
            )])
        }
    };
    let mut rows = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let line = i + 1;
        let Value::Object(o) = item else {
            errors.push((
                line,
                FieldError {
                    field: "(item)".into(),
                    message: "each candidate must be an object".into(),
                },
            ));
            continue;
        };
        let mut row = BTreeMap::new();
        for (k, v) in o {
            let text = match v {
                Value::Null => continue,
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Array(_) | Value::Object(_) => {
                    errors.push((
                        line,
                        FieldError {
                            field: k.clone(),
                            message: "must be a string, number or boolean".into(),
                        },
                    ));
                    continue;
                }
            };
            row.insert(k.clone(), text);
        }
        rows.push((line, row));
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}
