//! Candidates from usage: usage rows of installs and subscriptions are evaluated against the
//! reclamation rules (criteria, exclusions, dedupe), giving the candidates to create, the
//! report of a report-only rule, and the open candidates whose user became active again.

use crate::intake::{Draft, FieldError, Fields};
use crate::model::{
    AppliesTo, Candidate, Cents, Criteria, Exclusions, Group, PricePeriod, Rule, RuleSnapshot,
    Software, State, Timestamp, UserRef,
};
use chrono::Duration;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The columns of a usage row.
pub const USAGE_FIELDS: &[&str] = &[
    "user_id",
    "user_name",
    "user_email",
    "user_upn",
    "user_itil",
    "user_vip",
    "user_groups",
    "provisioned_at",
    "applies_to",
    "device",
    "publisher",
    "product",
    "version",
    "sku",
    "subscription_id",
    "last_used_at",
    "hours_used",
    "price_per_right",
    "price_period",
    "rights",
];

/// One install or subscription seat and how much it was used.
#[derive(Clone, Debug, PartialEq)]
pub struct UsageRecord {
    pub user: UserRef,
    /// Groups the user belongs to (for group exclusions).
    pub user_groups: Vec<String>,
    pub provisioned_at: Option<Timestamp>,
    pub applies_to: AppliesTo,
    pub device: Option<String>,
    pub software: Software,
    pub last_used_at: Option<Timestamp>,
    /// Hours used in the usage window of the export.
    pub hours_used: Option<f64>,
    pub price_per_right_cents: Cents,
    /// What the row says; `None` leaves it to the rule, then the deployment.
    pub price_period: Option<PricePeriod>,
    pub rights: u32,
}

impl UsageRecord {
    /// One open candidate per user and software (and device, for installs).
    pub fn key(&self) -> String {
        seat_key(
            &self.user.id,
            &self.software.publisher,
            &self.software.product,
            self.device.as_deref(),
        )
    }
}

/// The identity of a seat: what "the same user and software" means for dedupe and cancel.
pub fn seat_key(user: &str, publisher: &str, product: &str, device: Option<&str>) -> String {
    let device = device.unwrap_or("");
    // One allocation per key: imports compute a key for every row.
    let mut key =
        String::with_capacity(user.len() + publisher.len() + product.len() + device.len() + 3);
    key.push_str(user);
    for part in [publisher, product, device] {
        key.push('\u{1f}');
        key.extend(part.chars().flat_map(char::to_lowercase));
    }
    key
}

/// The seat a candidate is about.
pub fn candidate_key(c: &Candidate) -> Option<String> {
    c.user.as_ref().map(|u| {
        seat_key(
            &u.id,
            &c.software.publisher,
            &c.software.product,
            c.device.as_deref(),
        )
    })
}

/// Validates one usage row.
pub fn parse_usage_row(row: &BTreeMap<String, String>) -> Result<UsageRecord, Vec<FieldError>> {
    let mut f = Fields::new(row, USAGE_FIELDS);
    if f.text("user_id").is_none() {
        f.err("user_id", "is required".into());
    }
    let user = f.user();
    let user_groups = f
        .text("user_groups")
        .map(|g| {
            g.split([';', ','])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let provisioned_at = f.time("provisioned_at");
    let applies_to = f.applies_to("applies_to");
    let device = f.text("device");
    if applies_to == Some(AppliesTo::InstalledSoftware) && device.is_none() {
        f.err("device", "is required for installed software".into());
    }
    let publisher = f.required("publisher");
    let product = f.required("product");
    let last_used_at = f.time("last_used_at");
    let hours_used = f.decimal("hours_used");
    let price = f.money("price_per_right");
    let price_period = f.price_period("price_period");
    let rights = f.whole("rights").unwrap_or(1);
    match (user, applies_to, publisher, product, price) {
        (Some(user), Some(applies_to), Some(publisher), Some(product), Some(price))
            if f.is_ok() =>
        {
            Ok(UsageRecord {
                user,
                user_groups,
                provisioned_at,
                applies_to,
                device,
                software: Software {
                    publisher,
                    product,
                    version: f.text("version"),
                    sku: f.text("sku"),
                    subscription_id: f.text("subscription_id"),
                },
                last_used_at,
                hours_used,
                price_per_right_cents: price,
                price_period,
                rights,
            })
        }
        _ => Err(f.errors),
    }
}

/// Usage rows as they are read, one at a time: the valid ones parsed, the bad ones kept with
/// their errors. A large export is never held as text: each row is parsed as it arrives and
/// only the parsed records stay.
#[derive(Clone, Debug, Default)]
pub struct UsageBatch {
    /// Rows read, good and bad.
    pub rows: usize,
    pub records: Vec<(usize, UsageRecord)>,
    /// Bad rows by line, with every problem of each.
    pub invalid: Vec<(usize, Vec<FieldError>)>,
}

impl UsageBatch {
    /// Parses one row (`line` as the file counts it) and keeps the result.
    pub fn push(&mut self, line: usize, row: &BTreeMap<String, String>) {
        self.rows += 1;
        match parse_usage_row(row) {
            Ok(r) => self.records.push((line, r)),
            Err(errors) => self.invalid.push((line, errors)),
        }
    }

    /// A row that could not even be read into fields (a nested JSON value, say).
    pub fn reject(&mut self, line: usize, errors: Vec<FieldError>) {
        self.rows += 1;
        self.invalid.push((line, errors));
    }
}

/// What evaluation decided for one (rule, usage row) match.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "detail", rename_all = "kebab-case")]
pub enum Decision {
    /// A candidate is created.
    Create,
    /// The rule is report-only: this is what it would create.
    WouldCreate,
    /// An exclusion applies; the text says which.
    Excluded(String),
    /// An open candidate for the same user and software exists (its number).
    AlreadyOpen(String),
}

/// One line of the evaluation report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub line: usize,
    pub rule: String,
    pub user: String,
    pub publisher: String,
    pub product: String,
    pub justification: &'static str,
    pub decision: Decision,
}

/// An open candidate whose user used the software again after it was opened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ActiveAgain {
    /// The usage row that showed it.
    pub line: usize,
    pub candidate_id: String,
    pub number: String,
    pub last_used_at: Timestamp,
}

/// The result of evaluating a usage import.
#[derive(Clone, Debug, Default)]
pub struct Evaluation {
    /// Candidates to create, with the line of the usage row.
    pub create: Vec<(usize, Draft)>,
    pub findings: Vec<Finding>,
    pub active_again: Vec<ActiveAgain>,
}

/// Evaluates usage rows against the rules. `open` are the candidates still open (for dedupe
/// and cancel); `groups` resolve group exclusions; `now` dates the inactivity tests;
/// `price_period` is the deployment's, for rows and rules that name none.
pub fn evaluate(
    rules: &[Rule],
    usage: &[(usize, UsageRecord)],
    open: &[Candidate],
    groups: &[Group],
    now: Timestamp,
    price_period: PricePeriod,
) -> Evaluation {
    evaluate_against(
        rules,
        usage,
        &OpenSeats::of(open),
        groups,
        now,
        price_period,
    )
}

/// What evaluation needs of an open candidate: enough to dedupe and to cancel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenSeat {
    pub id: String,
    pub number: String,
    pub state: State,
    pub opened_at: Timestamp,
}

/// The open candidates by seat ([`seat_key`]). A connector's run keeps one across its pages
/// and adds what each page creates, instead of indexing every open candidate again per page.
#[derive(Clone, Debug, Default)]
pub struct OpenSeats(HashMap<String, OpenSeat>);

impl OpenSeats {
    pub fn of(open: &[Candidate]) -> OpenSeats {
        let mut seats = OpenSeats(HashMap::with_capacity(open.len()));
        for c in open {
            seats.add(c);
        }
        seats
    }

    /// Adds a candidate if it is open (a closed one holds no seat).
    pub fn add(&mut self, c: &Candidate) {
        if c.state.is_closed() {
            return;
        }
        if let Some(k) = candidate_key(c) {
            self.0.insert(
                k,
                OpenSeat {
                    id: c.id.clone(),
                    number: c.number.clone(),
                    state: c.state,
                    opened_at: c.opened_at,
                },
            );
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// [`evaluate`] against open seats already indexed.
pub fn evaluate_against(
    rules: &[Rule],
    usage: &[(usize, UsageRecord)],
    open: &OpenSeats,
    groups: &[Group],
    now: Timestamp,
    price_period: PricePeriod,
) -> Evaluation {
    let mut out = Evaluation::default();
    let open_by_key = &open.0;
    // Which products each user holds (for overlapping; only built when a rule needs it).
    let mut held: HashMap<&str, Vec<&Software>> = HashMap::new();
    if rules
        .iter()
        .any(|r| matches!(r.criteria, Some(Criteria::Overlapping { .. })))
    {
        held.reserve(usage.len() / 2);
        for (_, u) in usage {
            held.entry(u.user.id.as_str())
                .or_default()
                .push(&u.software);
        }
    }
    // The snapshot every candidate of a rule keeps, made once per rule rather than per row.
    let snapshots: Vec<_> = rules.iter().map(Rule::snapshot).collect();
    let members: HashMap<&str, HashSet<&str>> = groups
        .iter()
        .map(|g| {
            (
                g.id.as_str(),
                g.members.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    let mut planned: HashSet<String> = HashSet::new();
    let mut canceled: HashSet<String> = HashSet::new();

    for (line, u) in usage {
        let key = u.key();
        // Usage newer than an open candidate's opening: the user is active again.
        if let (Some(c), Some(used)) = (open_by_key.get(&key), u.last_used_at) {
            let cancelable = matches!(
                c.state,
                State::Ready | State::AwaitingUser | State::AwaitingApproval
            );
            if cancelable && used > c.opened_at && canceled.insert(c.id.clone()) {
                out.active_again.push(ActiveAgain {
                    line: *line,
                    candidate_id: c.id.clone(),
                    number: c.number.clone(),
                    last_used_at: used,
                });
                continue;
            }
        }
        for (rule, snapshot) in rules.iter().zip(&snapshots) {
            let Some(criteria) = &rule.criteria else {
                continue;
            };
            if rule.applies_to.is_some_and(|a| a != u.applies_to) {
                continue;
            }
            if !rule.software.is_empty()
                && !rule
                    .software
                    .iter()
                    .any(|m| m.matches(&u.software.publisher, &u.software.product))
            {
                continue;
            }
            let hit = match criteria {
                Criteria::LastUsedBefore { days } => {
                    let cutoff = now - Duration::days(i64::from(*days));
                    u.last_used_at.is_none_or(|t| t < cutoff)
                }
                Criteria::UsageBelow { hours } => u.hours_used.is_some_and(|h| h < *hours),
                Criteria::NeverUsed => {
                    u.last_used_at.is_none() && u.hours_used.is_none_or(|h| h == 0.0)
                }
                Criteria::Overlapping { products } => {
                    let position = |s: &Software| {
                        products
                            .iter()
                            .position(|m| m.matches(&s.publisher, &s.product))
                    };
                    match position(&u.software) {
                        None => false,
                        Some(mine) => held
                            .get(u.user.id.as_str())
                            .into_iter()
                            .flatten()
                            .filter_map(|s| position(s))
                            .any(|other| other < mine),
                    }
                }
                Criteria::Consolidation { from } => from
                    .iter()
                    .any(|m| m.matches(&u.software.publisher, &u.software.product)),
            };
            if !hit {
                continue;
            }
            let justification = rule
                .justification
                .unwrap_or_else(|| criteria.justification());
            let who = Subject {
                user_id: &u.user.id,
                vip: u.user.vip,
                listed_groups: &u.user_groups,
                provisioned_at: u.provisioned_at,
            };
            let decision = if let Some(why) = exclusion(&rule.exclusions, &who, &members, now) {
                Decision::Excluded(why)
            } else if let Some(c) = open_by_key.get(&key) {
                Decision::AlreadyOpen(c.number.clone())
            } else if planned.contains(&key) {
                Decision::AlreadyOpen("(earlier in this import)".into())
            } else if !rule.create_candidates {
                Decision::WouldCreate
            } else {
                planned.insert(key.clone());
                let period = PricePeriod::resolve(u.price_period, rule.price_period, price_period);
                out.create
                    .push((*line, draft(rule, snapshot, u, justification, period, now)));
                Decision::Create
            };
            out.findings.push(Finding {
                line: *line,
                rule: rule.id.clone(),
                user: u.user.id.clone(),
                publisher: u.software.publisher.clone(),
                product: u.software.product.clone(),
                justification: justification.as_str(),
                decision,
            });
            // The first matching rule decides for a row.
            break;
        }
    }
    out
}

/// The person a rule's exclusions look at, as the data at hand knows them.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    pub user_id: &'a str,
    pub vip: bool,
    /// Groups the data itself lists for the user (a usage row's `user_groups`).
    pub listed_groups: &'a [String],
    pub provisioned_at: Option<Timestamp>,
}

/// Why the exclusions keep `who` out, or `None`: the one test behind candidate creation from
/// usage, Reclaim and every removal. `members` are the directory's groups (id → member ids).
pub fn exclusion(
    ex: &Exclusions,
    who: &Subject<'_>,
    members: &HashMap<&str, HashSet<&str>>,
    now: Timestamp,
) -> Option<String> {
    if ex.users.iter().any(|x| x == who.user_id) {
        return Some(format!("user {} is excluded", who.user_id));
    }
    for g in &ex.groups {
        let listed = who.listed_groups.iter().any(|x| x == g);
        let member = members
            .get(g.as_str())
            .is_some_and(|m| m.contains(who.user_id));
        if listed || member {
            return Some(format!("members of group {g} are excluded"));
        }
    }
    if ex.vips && who.vip {
        return Some("VIP users are excluded".into());
    }
    if let (Some(days), Some(at)) = (ex.provisioned_within_days, who.provisioned_at) {
        if at > now - Duration::days(i64::from(days)) {
            return Some(format!(
                "users provisioned less than {days} days ago are excluded"
            ));
        }
    }
    None
}

/// Why the candidate's rule, as it is now, keeps its user out, unless a sam admin overrode
/// it on this candidate: `rule` is the current rule (`None` when deleted: nothing to hold),
/// `user` the directory's entry (VIP now, not only when the candidate was made), `groups` the
/// directory's groups.
pub fn candidate_exclusion(
    c: &Candidate,
    rule: Option<&Rule>,
    user: Option<&crate::User>,
    groups: &[Group],
    now: Timestamp,
) -> Option<String> {
    if c.exclusion_override.is_some() {
        return None;
    }
    let (rule, who) = (rule?, c.user.as_ref()?);
    let members: HashMap<&str, HashSet<&str>> = groups
        .iter()
        .map(|g| {
            (
                g.id.as_str(),
                g.members.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    let subject = Subject {
        user_id: &who.id,
        vip: who.vip || user.is_some_and(|u| u.vip),
        listed_groups: &[],
        provisioned_at: c.provisioned_at,
    };
    exclusion(&rule.exclusions, &subject, &members, now)
        .map(|why| format!("rule {} excludes this user: {why}", rule.name))
}

fn draft(
    rule: &Rule,
    snapshot: &RuleSnapshot,
    u: &UsageRecord,
    justification: crate::Justification,
    price_period: PricePeriod,
    now: Timestamp,
) -> Draft {
    Draft {
        id: None,
        applies_to: u.applies_to,
        software: u.software.clone(),
        device: u.device.clone(),
        user: Some(u.user.clone()),
        justification,
        inactive_days: u
            .last_used_at
            .map(|t| u32::try_from((now - t).num_days().max(0)).unwrap_or(u32::MAX)),
        last_used_at: u.last_used_at,
        unused_rights: u.rights.max(1),
        price_per_right_cents: u.price_per_right_cents,
        price_period,
        rule: snapshot.clone(),
        assignment_group: rule.assignment_group.clone(),
        assigned_to: None,
        provisioned_at: u.provisioned_at,
    }
}

/// Why an open candidate needs a look.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StaleAlert {
    pub candidate_id: String,
    pub number: String,
    pub state: State,
    pub days: i64,
    pub reason: String,
    /// Whose queue it sits in, so an approver of several groups sees where to look.
    pub assignment_group: Option<String>,
    /// A closed candidate whose right a re-check found again at the vendor, on this date: a
    /// sam admin reopens it or accepts it.
    pub reappeared_at: Option<Timestamp>,
}

/// From when a candidate is an alert ([`stale_alert`] says so at this time and after, until
/// it moves): stores index it, so listing the alerts reads only the candidates that are one.
pub fn alert_from(c: &Candidate) -> Option<Timestamp> {
    if let Some(found) = c
        .verification
        .as_ref()
        .filter(|v| v.awaits_decision())
        .and_then(|v| v.reappeared_at)
    {
        return Some(found);
    }
    if c.state.is_closed() {
        return None;
    }
    let since = c.state_since.unwrap_or(c.updated_at);
    if c.state == State::AttentionRequired {
        return Some(since);
    }
    // "More than 30 (60) days" in whole days: from the 31st (61st) day on.
    let open = c.opened_at + chrono::Duration::days(31);
    if c.state == State::AwaitingRevocation {
        return Some(open.min(since + chrono::Duration::days(61)));
    }
    Some(open)
}

/// Attention Required (a person must act), open longer than 30 days, Awaiting Revocation
/// longer than 60 days, or closed but found again at the vendor and not decided on yet.
pub fn stale_alert(c: &Candidate, now: Timestamp) -> Option<StaleAlert> {
    let alert = |days: i64, reason: String| StaleAlert {
        candidate_id: c.id.clone(),
        number: c.number.clone(),
        state: c.state,
        days,
        reason,
        assignment_group: c.assignment_group.clone(),
        reappeared_at: c.reappeared_at(),
    };
    if let Some(found) = c
        .verification
        .as_ref()
        .filter(|v| v.awaits_decision())
        .and_then(|v| v.reappeared_at)
    {
        return Some(alert(
            (now - found).num_days(),
            format!(
                "Reappeared: a re-check on {} found it at the vendor again; reopen it or accept it",
                found.format("%Y-%m-%d")
            ),
        ));
    }
    if c.state.is_closed() {
        return None;
    }
    let since = c.state_since.unwrap_or(c.updated_at);
    let in_state = (now - since).num_days();
    // Waiting for a person (an address missing, a plugin refusing) is an alert from day one.
    if c.state == State::AttentionRequired {
        return Some(alert(
            in_state,
            format!(
                "Attention Required: {}",
                c.attention.as_deref().unwrap_or("a person must look")
            ),
        ));
    }
    if c.state == State::AwaitingRevocation && in_state > 60 {
        return Some(alert(
            in_state,
            format!("Awaiting Revocation for {in_state} days"),
        ));
    }
    let open = (now - c.opened_at).num_days();
    (open > 30).then(|| alert(open, format!("open for {open} days")))
}
