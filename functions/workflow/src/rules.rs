//! Checking a reclamation rule before it is stored, so a bad rule is refused with the field to
//! fix instead of being stored and then quietly matching nothing (or everything) at the next
//! usage import. The API, the CLI and the workspace all store rules through this one check.

use crate::intake::FieldError;
use crate::model::{
    AppliesTo, Criteria, Exclusions, Group, Justification, PricePeriod, Rule, SoftwareMatch,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Longest rule id: ids end up in URLs, CSV reports and candidate snapshots.
pub const MAX_ID_LEN: usize = 64;

fn problem(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// Checks one field's JSON against its type, so a wrong `criteria` is reported as `criteria`
/// rather than as a whole-body error.
fn check_typed<T: DeserializeOwned>(
    obj: &serde_json::Map<String, Value>,
    field: &str,
) -> Option<FieldError> {
    let v = obj.get(field)?;
    serde_json::from_value::<T>(v.clone())
        .err()
        .map(|e| problem(field, e.to_string()))
}

/// Reads a rule from JSON. Every problem names its field: unknown and missing fields, and a
/// field whose value does not fit (an unknown criteria `kind`, a negative day count).
pub fn parse_rule(v: &Value) -> Result<Rule, Vec<FieldError>> {
    let Value::Object(obj) = v else {
        return Err(vec![problem("(rule)", "a rule is a JSON object")]);
    };
    let whole = match serde_json::from_value::<Rule>(v.clone()) {
        Ok(rule) => return Ok(rule),
        Err(e) => e,
    };
    let mut errors: Vec<FieldError> = [
        check_typed::<String>(obj, "id"),
        check_typed::<String>(obj, "name"),
        check_typed::<Option<AppliesTo>>(obj, "applies_to"),
        check_typed::<Option<Justification>>(obj, "justification"),
        check_typed::<bool>(obj, "notify_user"),
        check_typed::<u32>(obj, "days_before_auto_reclamation"),
        check_typed::<Vec<u32>>(obj, "reminder_days"),
        check_typed::<Option<String>>(obj, "assignment_group"),
        check_typed::<bool>(obj, "create_candidates"),
        check_typed::<Exclusions>(obj, "exclusions"),
        check_typed::<Option<String>>(obj, "plugin"),
        check_typed::<u32>(obj, "max_revocation_attempts"),
        check_typed::<Vec<SoftwareMatch>>(obj, "software"),
        check_typed::<Option<Criteria>>(obj, "criteria"),
        check_typed::<u32>(obj, "verify_within_days"),
        check_typed::<Vec<u32>>(obj, "recheck_days"),
        check_typed::<Option<PricePeriod>>(obj, "price_period"),
    ]
    .into_iter()
    .flatten()
    .collect();
    for required in ["id", "name"] {
        if !obj.contains_key(required) {
            errors.push(problem(required, "is required"));
        }
    }
    let message = whole.to_string();
    if errors.is_empty() {
        // Not inside a known field: an unknown field at the top level.
        if let Some(name) = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next())
        {
            errors.push(problem(name, "unknown field"));
        }
    }
    if errors.is_empty() {
        errors.push(problem("(rule)", message));
    }
    Err(errors)
}

fn check_lines(v: &Value, path: &str, errors: &mut Vec<FieldError>) {
    match v {
        Value::String(s) => {
            if let Err(e) = crate::text::single_line(s) {
                errors.push(problem(path, e.to_string()));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_lines(item, &format!("{path}[{i}]"), errors);
            }
        }
        Value::Object(fields) => {
            for (k, item) in fields {
                let path = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                check_lines(item, &path, errors);
            }
        }
        _ => {}
    }
}

fn check_matches(field: &str, list: &[SoftwareMatch], errors: &mut Vec<FieldError>) {
    for (i, m) in list.iter().enumerate() {
        if m.publisher.trim().is_empty() {
            errors.push(problem(format!("{field}[{i}].publisher"), "is required"));
        }
        if m.product.as_deref().is_some_and(|p| p.trim().is_empty()) {
            errors.push(problem(
                format!("{field}[{i}].product"),
                "leave it out to match every product of the publisher",
            ));
        }
    }
}

/// What would make a well-typed rule useless or harmful: an unknown assignment group, criteria
/// that can never (or always) match, reminders after the deadline. `groups` are the assignment
/// groups that exist.
/// A removal the vendor has not carried out in a quarter will not happen by itself.
const MAX_VERIFY_DAYS: u32 = 90;
/// Re-checks beyond a few years outlive the licence term they protect.
const MAX_RECHECK_DAY: u32 = 3 * 366;
const MAX_RECHECKS: usize = 10;

pub fn check_rule(rule: &Rule, groups: &[Group]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    // Every text of a rule (its name, ids, publishers, products) is one line: rule names and
    // software end up in mail and on pages.
    if let Ok(v) = serde_json::to_value(rule) {
        check_lines(&v, "", &mut errors);
    }
    let id_ok = !rule.id.is_empty()
        && rule.id.len() <= MAX_ID_LEN
        && rule
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !id_ok {
        errors.push(problem(
            "id",
            format!("use 1 to {MAX_ID_LEN} letters, digits, '-' or '_'"),
        ));
    }
    if rule.name.trim().is_empty() {
        errors.push(problem("name", "is required"));
    }
    if let Some(g) = &rule.assignment_group {
        if !groups.iter().any(|x| &x.id == g) {
            errors.push(problem(
                "assignment_group",
                format!("unknown assignment group '{g}'"),
            ));
        }
    }
    if rule.max_revocation_attempts == 0 {
        errors.push(problem("max_revocation_attempts", "must be at least 1"));
    }
    let deadline = rule.days_before_auto_reclamation;
    for day in &rule.reminder_days {
        if *day == 0 {
            errors.push(problem(
                "reminder_days",
                "day 0 is when the user is asked; reminders start at day 1",
            ));
        } else if deadline > 0 && *day >= deadline {
            errors.push(problem(
                "reminder_days",
                format!(
                    "a reminder on day {day} would come at or after the deadline \
                     (the removal day is day {deadline}) and never be sent"
                ),
            ));
        }
    }
    if !(1..=MAX_VERIFY_DAYS).contains(&rule.verify_within_days) {
        errors.push(problem(
            "verify_within_days",
            format!("must be 1 to {MAX_VERIFY_DAYS} days"),
        ));
    }
    if rule.recheck_days.len() > MAX_RECHECKS {
        errors.push(problem(
            "recheck_days",
            format!("at most {MAX_RECHECKS} re-checks"),
        ));
    }
    for day in &rule.recheck_days {
        if !(1..=MAX_RECHECK_DAY).contains(day) {
            errors.push(problem(
                "recheck_days",
                format!("day {day}: re-checks are 1 to {MAX_RECHECK_DAY} days after closing"),
            ));
        }
    }
    check_matches("software", &rule.software, &mut errors);
    match &rule.criteria {
        None => {}
        Some(Criteria::LastUsedBefore { days: 0 }) => {
            errors.push(problem(
                "criteria.days",
                "must be at least 1 (0 would select every right)",
            ));
        }
        Some(Criteria::UsageBelow { hours }) if !hours.is_finite() || *hours <= 0.0 => {
            errors.push(problem(
                "criteria.hours",
                "must be a number of hours above 0",
            ));
        }
        Some(Criteria::LastUsedBefore { .. } | Criteria::UsageBelow { .. }) => {}
        Some(Criteria::NeverUsed) => {}
        Some(Criteria::Overlapping { products }) => {
            if products.len() < 2 {
                errors.push(problem(
                    "criteria.products",
                    "list at least two products: the one to keep first, then the overlapping ones",
                ));
            }
            check_matches("criteria.products", products, &mut errors);
        }
        Some(Criteria::Consolidation { from }) => {
            if from.is_empty() {
                errors.push(problem(
                    "criteria.from",
                    "list the products the organisation moves off",
                ));
            }
            check_matches("criteria.from", from, &mut errors);
        }
    }
    if let Some(days) = rule.exclusions.provisioned_within_days {
        if days == 0 {
            errors.push(problem(
                "exclusions.provisioned_within_days",
                "must be at least 1 (leave it out for no such exclusion)",
            ));
        }
    }
    errors
}
