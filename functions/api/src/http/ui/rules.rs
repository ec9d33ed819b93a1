//! Rule pages: sam admins list, create and edit reclamation rules in the workspace.
//!
//! A form is turned into the same JSON the API takes and stored through
//! [`App::put_rule`](crate::App::put_rule), so the workspace refuses exactly the rules the API
//! and the CLI refuse, with the same reasons; a refused form comes back with what was typed and
//! each problem next to its field. Lists are typed one entry per line (software as
//! `Publisher / Product`), which keeps the pages free of scripts.
//!
//! Rules carry no version, so the edit form carries a digest of the rule as it was shown: a
//! save over someone else's newer change is refused once, showing what was typed, and goes
//! through only when sent again knowingly.

use super::form::FormFields;
use super::{see_other, UiError, UiResult, Viewer};
use crate::app::AppError;
use crate::http::error::{ApiError, Path, Query};
use crate::http::outbox::encode_segment;
use crate::http::ApiState;
use axum::extract::State;
use axum::http::StatusCode;
use minijinja::{context, Value};
use reclaim_workflow::intake::FieldError;
use reclaim_workflow::{AppliesTo, Criteria, Justification, PricePeriod, Rule, SoftwareMatch};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value as Json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Longest text a rule form field may hold (lists of users are the long ones).
const MAX_FIELD: usize = 20_000;

/// The criteria a form offers, with the words the page shows.
const CRITERIA: [(&str, &str); 5] = [
    ("last-used-before", "Last used more than N days ago"),
    (
        "usage-below",
        "Less than H hours of use in the usage window",
    ),
    ("never-used", "Never used"),
    (
        "overlapping",
        "Overlapping products (keep the first one the user holds)",
    ),
    ("consolidation", "Consolidation (moving off these products)"),
];

/// The price periods a form offers, with what each means for a price.
const PERIODS: [(PricePeriod, &str); 3] = [
    (PricePeriod::Monthly, "Monthly: a price is per month"),
    (PricePeriod::Yearly, "Yearly: a price is per year"),
    (
        PricePeriod::OneTime,
        "One-time: perpetual licences, paid once",
    ),
];

/// A rule as the form shows and sends it: every value is text the person typed, so a refused
/// form comes back exactly as it was sent.
#[derive(Clone, Debug, Default, Serialize)]
struct RuleForm {
    id: String,
    name: String,
    applies_to: String,
    justification: String,
    notify_user: bool,
    days_before_auto_reclamation: String,
    reminder_days: String,
    assignment_group: String,
    create_candidates: bool,
    exclude_users: String,
    exclude_groups: String,
    exclude_vips: bool,
    exclude_provisioned_within_days: String,
    plugin: String,
    max_revocation_attempts: String,
    verify_within_days: String,
    recheck_days: String,
    /// Empty: the deployment's default.
    price_period: String,
    software: String,
    criteria: String,
    criteria_days: String,
    criteria_hours: String,
    criteria_products: String,
}

fn match_line(m: &SoftwareMatch) -> String {
    match &m.product {
        Some(p) => format!("{} / {p}", m.publisher),
        None => m.publisher.clone(),
    }
}

fn days_text(days: &[u32]) -> String {
    days.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn lines(items: impl IntoIterator<Item = String>) -> String {
    items.into_iter().collect::<Vec<_>>().join("\n")
}

impl RuleForm {
    /// What a new rule starts from: ask the user, two reminders, two weeks.
    fn new_rule() -> RuleForm {
        RuleForm {
            notify_user: true,
            create_candidates: true,
            days_before_auto_reclamation: "14".into(),
            reminder_days: "3, 7".into(),
            max_revocation_attempts: "5".into(),
            verify_within_days: reclaim_workflow::DEFAULT_VERIFY_WITHIN_DAYS.to_string(),
            recheck_days: days_text(&reclaim_workflow::DEFAULT_RECHECK_DAYS),
            ..RuleForm::default()
        }
    }

    fn from_rule(r: &Rule) -> RuleForm {
        let (criteria, days, hours, products) = match &r.criteria {
            None => ("", String::new(), String::new(), String::new()),
            Some(Criteria::LastUsedBefore { days }) => (
                "last-used-before",
                days.to_string(),
                String::new(),
                String::new(),
            ),
            Some(Criteria::UsageBelow { hours }) => (
                "usage-below",
                String::new(),
                hours.to_string(),
                String::new(),
            ),
            Some(Criteria::NeverUsed) => {
                ("never-used", String::new(), String::new(), String::new())
            }
            Some(Criteria::Overlapping { products }) => (
                "overlapping",
                String::new(),
                String::new(),
                lines(products.iter().map(match_line)),
            ),
            Some(Criteria::Consolidation { from }) => (
                "consolidation",
                String::new(),
                String::new(),
                lines(from.iter().map(match_line)),
            ),
        };
        RuleForm {
            id: r.id.clone(),
            name: r.name.clone(),
            applies_to: r
                .applies_to
                .map(|a| a.as_str().to_string())
                .unwrap_or_default(),
            justification: r
                .justification
                .map(|j| j.as_str().to_string())
                .unwrap_or_default(),
            notify_user: r.notify_user,
            days_before_auto_reclamation: r.days_before_auto_reclamation.to_string(),
            reminder_days: days_text(&r.reminder_days),
            assignment_group: r.assignment_group.clone().unwrap_or_default(),
            create_candidates: r.create_candidates,
            exclude_users: lines(r.exclusions.users.iter().cloned()),
            exclude_groups: lines(r.exclusions.groups.iter().cloned()),
            exclude_vips: r.exclusions.vips,
            exclude_provisioned_within_days: r
                .exclusions
                .provisioned_within_days
                .map(|d| d.to_string())
                .unwrap_or_default(),
            plugin: r.plugin.clone().unwrap_or_default(),
            max_revocation_attempts: r.max_revocation_attempts.to_string(),
            verify_within_days: r.verify_within_days.to_string(),
            recheck_days: days_text(&r.recheck_days),
            price_period: r
                .price_period
                .map(|p| p.as_str().to_string())
                .unwrap_or_default(),
            software: lines(r.software.iter().map(match_line)),
            criteria: criteria.to_string(),
            criteria_days: days,
            criteria_hours: hours,
            criteria_products: products,
        }
    }

    fn from_fields(f: &FormFields, errors: &mut Vec<FieldError>) -> RuleForm {
        let mut text = |name: &str| {
            let t = f.get(name).unwrap_or_default().trim();
            if t.chars().count() > MAX_FIELD {
                errors.push(problem(name, format!("at most {MAX_FIELD} characters")));
                String::new()
            } else {
                t.to_string()
            }
        };
        RuleForm {
            id: text("id"),
            name: text("name"),
            applies_to: text("applies_to"),
            justification: text("justification"),
            notify_user: false,
            days_before_auto_reclamation: text("days_before_auto_reclamation"),
            reminder_days: text("reminder_days"),
            assignment_group: text("assignment_group"),
            create_candidates: false,
            exclude_users: text("exclude_users"),
            exclude_groups: text("exclude_groups"),
            exclude_vips: false,
            exclude_provisioned_within_days: text("exclude_provisioned_within_days"),
            plugin: text("plugin"),
            max_revocation_attempts: text("max_revocation_attempts"),
            verify_within_days: text("verify_within_days"),
            // Empty means never; a form without the box at all keeps the default.
            recheck_days: if f.get("recheck_days").is_some() {
                text("recheck_days")
            } else {
                days_text(&reclaim_workflow::DEFAULT_RECHECK_DAYS)
            },
            price_period: text("price_period"),
            software: text("software"),
            criteria: text("criteria"),
            criteria_days: text("criteria_days"),
            criteria_hours: text("criteria_hours"),
            criteria_products: text("criteria_products"),
        }
        .with_boxes(f)
    }

    /// Checkboxes are sent only when ticked.
    fn with_boxes(mut self, f: &FormFields) -> RuleForm {
        let ticked = |name: &str| f.get(name).is_some();
        self.notify_user = ticked("notify_user");
        self.create_candidates = ticked("create_candidates");
        self.exclude_vips = ticked("exclude_vips");
        self
    }

    /// The rule JSON the API would take, or every field the form got wrong before the rule
    /// check can even look (a day count that is not a number).
    #[cfg(test)]
    fn to_json(&self) -> Result<Json, Vec<FieldError>> {
        let (json, errors) = self.to_json_lenient();
        if errors.is_empty() {
            Ok(json)
        } else {
            Err(errors)
        }
    }

    /// The rule JSON with a stand-in for each value the form could not read, and those
    /// problems: the rule check still runs on the rest, so one submit reports everything.
    fn to_json_lenient(&self) -> (Json, Vec<FieldError>) {
        let mut errors = Vec::new();
        let mut rule = Map::new();
        rule.insert("id".into(), json!(self.id));
        rule.insert("name".into(), json!(self.name));
        if !self.applies_to.is_empty() {
            if AppliesTo::parse(&self.applies_to).is_none() {
                errors.push(problem("applies_to", "choose one of the offered kinds"));
            }
            rule.insert("applies_to".into(), json!(self.applies_to));
        }
        if !self.justification.is_empty() {
            if Justification::parse(&self.justification).is_none() {
                errors.push(problem(
                    "justification",
                    "choose one of the offered reasons",
                ));
            }
            rule.insert("justification".into(), json!(self.justification));
        }
        rule.insert("notify_user".into(), json!(self.notify_user));
        let days = whole(
            "days_before_auto_reclamation",
            &self.days_before_auto_reclamation,
            true,
            &mut errors,
        );
        rule.insert(
            "days_before_auto_reclamation".into(),
            json!(days.unwrap_or(0)),
        );
        let reminders: Vec<u32> = split_list(&self.reminder_days)
            .iter()
            .filter_map(|d| whole("reminder_days", d, true, &mut errors))
            .collect();
        rule.insert("reminder_days".into(), json!(reminders));
        if !self.assignment_group.is_empty() {
            rule.insert("assignment_group".into(), json!(self.assignment_group));
        }
        rule.insert("create_candidates".into(), json!(self.create_candidates));
        let within = whole(
            "exclude_provisioned_within_days",
            &self.exclude_provisioned_within_days,
            false,
            &mut errors,
        );
        rule.insert(
            "exclusions".into(),
            json!({
                "users": split_list(&self.exclude_users),
                "groups": split_list(&self.exclude_groups),
                "vips": self.exclude_vips,
                "provisioned_within_days": within,
            }),
        );
        if !self.plugin.is_empty() {
            rule.insert("plugin".into(), json!(self.plugin));
        }
        let attempts = whole(
            "max_revocation_attempts",
            &self.max_revocation_attempts,
            true,
            &mut errors,
        );
        rule.insert(
            "max_revocation_attempts".into(),
            json!(attempts.unwrap_or(1)),
        );
        // Left empty (or sent by an older form): the default.
        let within = whole(
            "verify_within_days",
            &self.verify_within_days,
            false,
            &mut errors,
        );
        rule.insert(
            "verify_within_days".into(),
            json!(within.unwrap_or(reclaim_workflow::DEFAULT_VERIFY_WITHIN_DAYS)),
        );
        let rechecks: Vec<u32> = split_list(&self.recheck_days)
            .iter()
            .filter_map(|d| whole("recheck_days", d, true, &mut errors))
            .collect();
        rule.insert("recheck_days".into(), json!(rechecks));
        if !self.price_period.is_empty() {
            if PricePeriod::parse(&self.price_period).is_none() {
                errors.push(problem("price_period", "choose one of the offered periods"));
            }
            rule.insert("price_period".into(), json!(self.price_period));
        }
        rule.insert("software".into(), matches(&self.software));
        match self.criteria.as_str() {
            "" => {}
            "last-used-before" => {
                let days = whole("criteria_days", &self.criteria_days, true, &mut errors);
                rule.insert(
                    "criteria".into(),
                    json!({"kind": "last-used-before", "days": days.unwrap_or(0)}),
                );
            }
            "usage-below" => {
                let hours = match self.criteria_hours.parse::<f64>() {
                    Ok(h) if h.is_finite() => h,
                    _ => {
                        errors.push(problem(
                            "criteria_hours",
                            "enter a number of hours, such as 2 or 0.5",
                        ));
                        0.0
                    }
                };
                rule.insert(
                    "criteria".into(),
                    json!({"kind": "usage-below", "hours": hours}),
                );
            }
            "never-used" => {
                rule.insert("criteria".into(), json!({"kind": "never-used"}));
            }
            "overlapping" => {
                rule.insert(
                    "criteria".into(),
                    json!({"kind": "overlapping", "products": matches(&self.criteria_products)}),
                );
            }
            "consolidation" => {
                rule.insert(
                    "criteria".into(),
                    json!({"kind": "consolidation", "from": matches(&self.criteria_products)}),
                );
            }
            _ => errors.push(problem("criteria", "choose one of the offered criteria")),
        }
        (Json::Object(rule), errors)
    }
}

fn problem(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// A whole number of days or attempts; empty is `None`, or an error when `required`.
fn whole(field: &str, text: &str, required: bool, errors: &mut Vec<FieldError>) -> Option<u32> {
    if text.is_empty() {
        if required {
            errors.push(problem(field, "enter a whole number"));
        }
        return None;
    }
    match text.parse::<u32>() {
        Ok(n) => Some(n),
        Err(_) => {
            errors.push(problem(
                field,
                format!("'{text}' is not a whole number of 0 or more"),
            ));
            None
        }
    }
}

/// Entries typed one per line or separated by commas.
fn split_list(text: &str) -> Vec<String> {
    text.split(['\n', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `Publisher / Product` lines (the product may be left out) as software matches.
fn matches(text: &str) -> Json {
    let list: Vec<Json> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once('/') {
            Some((publisher, product)) => {
                json!({"publisher": publisher.trim(), "product": product.trim()})
            }
            None => json!({"publisher": l}),
        })
        .collect();
    Json::Array(list)
}

/// Where a problem the rule check names (`software[1].publisher`, `criteria.days`) is shown on
/// the form, and how it reads there.
fn on_form(e: FieldError) -> (String, String) {
    let line_of = |path: &str| -> Option<(usize, String)> {
        let rest = path.split_once('[')?.1;
        let (index, after) = rest.split_once(']')?;
        let n = index.parse::<usize>().ok()?;
        Some((n + 1, after.trim_start_matches('.').to_string()))
    };
    let (field, prefix) = match e.field.as_str() {
        f if f.starts_with("software") => ("software", line_of(f)),
        f if f.starts_with("criteria.products") || f.starts_with("criteria.from") => {
            ("criteria_products", line_of(f))
        }
        "criteria.days" => ("criteria_days", None),
        "criteria.hours" => ("criteria_hours", None),
        f if f.starts_with("criteria") => ("criteria", None),
        "exclusions.users" => ("exclude_users", None),
        "exclusions.groups" => ("exclude_groups", None),
        "exclusions.vips" => ("exclude_vips", None),
        "exclusions.provisioned_within_days" => ("exclude_provisioned_within_days", None),
        f if f.starts_with("exclusions") => ("exclude_users", None),
        f => (f, None),
    };
    let message = match prefix {
        Some((line, what)) if !what.is_empty() => format!("line {line}: {what} {}", e.message),
        Some((line, _)) => format!("line {line}: {}", e.message),
        None => e.message,
    };
    (field.to_string(), message)
}

/// The words the form shows above a field, for the list of problems at the top.
fn label(field: &str) -> &str {
    match field {
        "id" => "Id",
        "name" => "Name",
        "applies_to" => "Applies to",
        "justification" => "Justification",
        "notify_user" => "Email the user",
        "days_before_auto_reclamation" => "Days before removal without an answer",
        "reminder_days" => "Reminders on days",
        "assignment_group" => "Assignment group",
        "create_candidates" => "Create candidates",
        "exclude_users" => "Users left alone",
        "exclude_groups" => "Groups left alone",
        "exclude_vips" => "VIPs",
        "exclude_provisioned_within_days" => "Users provisioned recently",
        "plugin" => "Plugin",
        "max_revocation_attempts" => "Attempts before a person must look",
        "verify_within_days" => "Days a later removal may take",
        "recheck_days" => "Check it stayed gone on days",
        "price_period" => "Prices are paid",
        "software" => "Software",
        "criteria" => "Reclaimable when",
        "criteria_days" => "N days",
        "criteria_hours" => "H hours",
        "criteria_products" => "Products",
        "confirm" => "Delete this rule",
        other => other,
    }
}

/// A digest of the rule as stored, so an edit form knows whether it is still editing that.
fn digest(rule: &Rule) -> String {
    let bytes = serde_json::to_vec(rule).unwrap_or_default();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn describe_matches(list: &[SoftwareMatch]) -> String {
    list.iter()
        .map(|m| match &m.product {
            Some(p) => format!("{} {p}", m.publisher),
            None => format!("all {}", m.publisher),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The rule's test in words, for the list.
fn describe_criteria(c: Option<&Criteria>) -> String {
    match c {
        None => "Imported candidates only".into(),
        Some(Criteria::LastUsedBefore { days }) => format!("Last used more than {days} days ago"),
        Some(Criteria::UsageBelow { hours }) => format!("Under {hours} hours of use"),
        Some(Criteria::NeverUsed) => "Never used".into(),
        Some(Criteria::Overlapping { products }) => {
            format!("Overlapping: {}", describe_matches(products))
        }
        Some(Criteria::Consolidation { from }) => {
            format!("Consolidation off {}", describe_matches(from))
        }
    }
}

fn describe_user_step(r: &Rule) -> String {
    let after = match r.days_before_auto_reclamation {
        0 => "removes at once".to_string(),
        d => format!("removes after {d} days without an answer"),
    };
    if !r.notify_user {
        return format!("Does not ask; {after}");
    }
    if r.reminder_days.is_empty() {
        format!("Asks the user; {after}")
    } else {
        let days: Vec<String> = r.reminder_days.iter().map(u32::to_string).collect();
        format!("Asks the user, reminds on day {}; {after}", days.join(", "))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesQuery {
    saved: Option<String>,
    deleted: Option<String>,
}

/// Every rule, with what it looks at and what it does.
pub async fn rules_page(
    State(s): State<ApiState>,
    v: Viewer,
    q: Result<Query<RulesQuery>, ApiError>,
) -> UiResult {
    v.require_sam_admin("Managing rules")?;
    let (saved, deleted) = match q {
        Ok(Query(q)) => (q.saved, q.deleted),
        Err(_) => (None, None),
    };
    let groups = s
        .app
        .ports
        .directory
        .groups()
        .await
        .map_err(AppError::from)?;
    let group_name = |id: &str| {
        groups
            .iter()
            .find(|g| g.id == id)
            .map_or_else(|| id.to_string(), |g| g.name.clone())
    };
    let mut rules = s.app.ports.rules.rules().await.map_err(AppError::from)?;
    rules.sort_by_key(|r| r.name.to_lowercase());
    let saved = saved.filter(|id| rules.iter().any(|r| &r.id == id));
    let deleted = deleted.filter(|id| !rules.iter().any(|r| &r.id == id) && id.len() <= 64);
    let rows: Vec<Value> = rules
        .iter()
        .map(|r| {
            context! {
                id => r.id,
                href => format!("/ui/rules/{}/edit", encode_segment(&r.id)),
                name => r.name,
                software => if r.software.is_empty() {
                    "All software".to_string()
                } else {
                    describe_matches(&r.software)
                },
                criteria => describe_criteria(r.criteria.as_ref()),
                user_step => describe_user_step(r),
                group => r.assignment_group.as_deref().map(group_name),
                creates => r.create_candidates,
                plugin => r.plugin,
            }
        })
        .collect();
    Ok(v.render(
        "ui_rules.html",
        "rules",
        context! { rules => rows, saved, deleted },
    ))
}

/// Renders the form, with problems by field when it was refused.
async fn form_page(
    s: &ApiState,
    v: &Viewer,
    status: StatusCode,
    form: &RuleForm,
    editing: Option<(&str, String)>,
    problems: Vec<FieldError>,
    conflict: bool,
) -> UiResult {
    let groups = s
        .app
        .ports
        .directory
        .groups()
        .await
        .map_err(AppError::from)?;
    let mut by_field: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut summary = Vec::new();
    for e in problems {
        let (field, message) = on_form(e);
        summary.push(context! { label => label(&field), field, message });
        by_field.entry(field).or_default().push(message);
    }
    let (action, loaded, editing_id) = match &editing {
        Some((id, digest)) => (
            format!("/ui/rules/{}/edit", encode_segment(id)),
            digest.clone(),
            Some(id.to_string()),
        ),
        None => ("/ui/rules".to_string(), String::new(), None),
    };
    // Which connectors' latest runs made candidates by this rule.
    let sources: Vec<Value> = match &editing_id {
        Some(id) => s
            .app
            .rule_sources(id)
            .await?
            .into_iter()
            .map(|(c, n)| context! { id => c.id, name => c.name, created => n })
            .collect(),
        None => Vec::new(),
    };
    let mut res = v.render(
        "ui_rule.html",
        "rules",
        context! {
            f => form,
            delete_action => editing_id.as_ref().map(|id| format!("/ui/rules/{}/delete", encode_segment(id))),
            action,
            loaded,
            editing => editing_id,
            sources,
            errors => by_field,
            summary,
            conflict,
            groups => groups.iter().map(|g| context! { id => g.id, name => g.name }).collect::<Vec<_>>(),
            applies => AppliesTo::ALL.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
            justifications => Justification::ALL.iter().map(|j| j.as_str()).collect::<Vec<_>>(),
            criteria => CRITERIA.iter().map(|(id, label)| context! { id, label }).collect::<Vec<_>>(),
            periods => PERIODS.iter().map(|(p, label)| context! { id => p.as_str(), label }).collect::<Vec<_>>(),
            default_period => s.app.settings.price_period.as_str(),
            plugins => s.app.ports.revoker.plugin_names().unwrap_or_default(),
        },
    );
    *res.status_mut() = status;
    Ok(res)
}

pub async fn new_rule_page(State(s): State<ApiState>, v: Viewer) -> UiResult {
    v.require_sam_admin("Managing rules")?;
    form_page(
        &s,
        &v,
        StatusCode::OK,
        &RuleForm::new_rule(),
        None,
        Vec::new(),
        false,
    )
    .await
}

async fn stored(s: &ApiState, id: &str) -> Result<Rule, UiError> {
    s.app
        .ports
        .rules
        .rule(id)
        .await
        .map_err(AppError::from)?
        .ok_or_else(|| ApiError::not_found(format!("rule '{id}' not found")).into())
}

pub async fn edit_rule_page(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
) -> UiResult {
    v.require_sam_admin("Managing rules")?;
    let rule = stored(&s, &id).await?;
    form_page(
        &s,
        &v,
        StatusCode::OK,
        &RuleForm::from_rule(&rule),
        Some((&rule.id, digest(&rule))),
        Vec::new(),
        false,
    )
    .await
}

/// Stores the form's rule through the one rule check, or shows the form again with every
/// problem next to its field (422) and nothing stored.
async fn save(
    s: &ApiState,
    v: &Viewer,
    form: RuleForm,
    editing: Option<(&str, String)>,
    mut problems: Vec<FieldError>,
) -> UiResult {
    let (json, more) = form.to_json_lenient();
    problems.extend(more);
    if !problems.is_empty() {
        // Every problem at once: the rule check's too, except where the form already said
        // what is wrong with that box.
        if let Err(AppError::Invalid(checked)) = s.app.check_rule(&json).await {
            let said: Vec<String> = problems.iter().map(|p| on_form(p.clone()).0).collect();
            problems.extend(
                checked
                    .into_iter()
                    .filter(|c| !said.contains(&on_form(c.clone()).0)),
            );
        }
    }
    let json = Some(json);
    let Some(json) = json.filter(|_| problems.is_empty()) else {
        return form_page(
            s,
            v,
            StatusCode::UNPROCESSABLE_ENTITY,
            &form,
            editing,
            problems,
            false,
        )
        .await;
    };
    match s.app.put_rule(&json).await {
        Ok(rule) => Ok(see_other(&format!(
            "/ui/rules?saved={}",
            encode_segment(&rule.id)
        ))),
        Err(AppError::Invalid(problems)) => {
            form_page(
                s,
                v,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                editing,
                problems,
                false,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// Creates a rule; an id already in use is refused rather than overwriting that rule.
pub async fn create_rule(
    State(s): State<ApiState>,
    v: Viewer,
    super::form::UiForm(f): super::form::UiForm,
) -> UiResult {
    v.require_sam_admin("Managing rules")?;
    v.check(&f)?;
    let mut problems = Vec::new();
    let form = RuleForm::from_fields(&f, &mut problems);
    if !form.id.is_empty()
        && s.app
            .ports
            .rules
            .rule(&form.id)
            .await
            .map_err(AppError::from)?
            .is_some()
    {
        problems.push(problem(
            "id",
            format!(
                "a rule with the id '{}' exists already; edit it instead",
                form.id
            ),
        ));
    }
    save(&s, &v, form, None, problems).await
}

/// Replaces a rule. The id comes from the path; a rule changed by someone else since the form
/// was opened is not overwritten without a second, knowing save.
pub async fn save_rule(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
    super::form::UiForm(f): super::form::UiForm,
) -> UiResult {
    v.require_sam_admin("Managing rules")?;
    v.check(&f)?;
    let current = stored(&s, &id).await?;
    let mut problems = Vec::new();
    let mut form = RuleForm::from_fields(&f, &mut problems);
    form.id = current.id.clone();
    let now = digest(&current);
    if f.get("loaded") != Some(now.as_str()) {
        let status = StatusCode::CONFLICT;
        return form_page(
            &s,
            &v,
            status,
            &form,
            Some((&current.id, now)),
            problems,
            true,
        )
        .await;
    }
    save(&s, &v, form, Some((&current.id, now)), problems).await
}

/// Deletes a rule once the box saying so is ticked; candidates it created keep their copy.
pub async fn delete_rule(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
    super::form::UiForm(f): super::form::UiForm,
) -> UiResult {
    v.require_sam_admin("Managing rules")?;
    v.check(&f)?;
    let current = stored(&s, &id).await?;
    if f.get("confirm").is_none() {
        let problems = vec![problem("confirm", "tick the box to confirm the deletion")];
        let editing = Some((current.id.as_str(), digest(&current)));
        let form = RuleForm::from_rule(&current);
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return form_page(&s, &v, status, &form, editing, problems, false).await;
    }
    s.app.delete_rule(&current.id).await?;
    Ok(see_other(&format!(
        "/ui/rules?deleted={}",
        encode_segment(&current.id)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_survives_the_form_both_ways() {
        let rule: Rule = serde_json::from_value(json!({
            "id": "adobe-90", "name": "Adobe unused 90 days", "applies_to": "installed-software",
            "justification": "unused", "notify_user": true, "days_before_auto_reclamation": 14,
            "reminder_days": [3, 7], "assignment_group": "desktop", "create_candidates": false,
            "exclusions": {"users": ["ceo", "cfo"], "groups": ["execs"], "vips": true,
                           "provisioned_within_days": 30},
            "plugin": "csd-uninstall", "max_revocation_attempts": 4,
            "software": [{"publisher": "Adobe", "product": "Acrobat Pro"}, {"publisher": "Corel"}],
            "criteria": {"kind": "overlapping", "products": [
                {"publisher": "Microsoft", "product": "Visio"}, {"publisher": "Lucid"}]},
            "price_period": "one-time"
        }))
        .unwrap();
        let json = RuleForm::from_rule(&rule).to_json().unwrap();
        let back: Rule = serde_json::from_value(json).unwrap();
        assert_eq!(back, rule);
    }

    #[test]
    fn numbers_the_form_cannot_read_are_named_by_field() {
        let form = RuleForm {
            id: "x".into(),
            name: "X".into(),
            days_before_auto_reclamation: "two weeks".into(),
            reminder_days: "3, x".into(),
            max_revocation_attempts: String::new(),
            criteria: "usage-below".into(),
            criteria_hours: "lots".into(),
            ..RuleForm::default()
        };
        let errors = form.to_json().unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "days_before_auto_reclamation",
                "reminder_days",
                "max_revocation_attempts",
                "criteria_hours"
            ]
        );
    }

    #[test]
    fn a_period_left_empty_is_the_deployments_and_an_unknown_one_is_named() {
        let form = RuleForm {
            id: "x".into(),
            name: "X".into(),
            ..RuleForm::new_rule()
        };
        let json = form.to_json().unwrap();
        assert!(json.get("price_period").is_none(), "{json}");
        let back: Rule = serde_json::from_value(json).unwrap();
        assert_eq!(back.price_period, None);
        let weekly = RuleForm {
            price_period: "weekly".into(),
            ..form
        };
        let errors = weekly.to_json().unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "price_period");
    }

    #[test]
    fn problems_in_list_entries_point_at_the_line() {
        let (field, message) = on_form(problem("software[1].publisher", "is required"));
        assert_eq!(field, "software");
        assert_eq!(message, "line 2: publisher is required");
        let (field, _) = on_form(problem("criteria.from", "list the products"));
        assert_eq!(field, "criteria_products");
        let (field, _) = on_form(problem("exclusions.provisioned_within_days", "at least 1"));
        assert_eq!(field, "exclude_provisioned_within_days");
    }
}
