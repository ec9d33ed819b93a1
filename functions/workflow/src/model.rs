//! The records of the workflow: removal candidates, rules, groups, users, tasks and the audit
//! trail. Plain data with serde, so every adapter stores the same shape.

use crate::intake::FieldError;
use crate::text::{address, one_line};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// All times are UTC; adapters store them as RFC 3339 strings.
pub type Timestamp = DateTime<Utc>;

/// Money in minor units (cents) so sums are exact.
pub type Cents = i64;

/// The eight states of a removal candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    AttentionRequired,
    Ready,
    AwaitingUser,
    AwaitingApproval,
    AwaitingRevocation,
    ClosedComplete,
    ClosedSkipped,
    ClosedCanceled,
}

impl State {
    /// Every state, in the order the workflow graph draws them.
    pub const ALL: [State; 8] = [
        State::Ready,
        State::AttentionRequired,
        State::AwaitingUser,
        State::AwaitingApproval,
        State::AwaitingRevocation,
        State::ClosedComplete,
        State::ClosedSkipped,
        State::ClosedCanceled,
    ];

    /// Closed candidates never reopen; only work notes may still be added.
    pub fn is_closed(self) -> bool {
        matches!(
            self,
            State::ClosedComplete | State::ClosedSkipped | State::ClosedCanceled
        )
    }

    /// The wire name (`awaiting-user`), used in URLs, filters and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            State::AttentionRequired => "attention-required",
            State::Ready => "ready",
            State::AwaitingUser => "awaiting-user",
            State::AwaitingApproval => "awaiting-approval",
            State::AwaitingRevocation => "awaiting-revocation",
            State::ClosedComplete => "closed-complete",
            State::ClosedSkipped => "closed-skipped",
            State::ClosedCanceled => "closed-canceled",
        }
    }

    /// The name people read ("Awaiting User").
    pub fn label(self) -> &'static str {
        match self {
            State::AttentionRequired => "Attention Required",
            State::Ready => "Ready",
            State::AwaitingUser => "Awaiting User",
            State::AwaitingApproval => "Awaiting Approval",
            State::AwaitingRevocation => "Awaiting Revocation",
            State::ClosedComplete => "Closed Complete",
            State::ClosedSkipped => "Closed Skipped",
            State::ClosedCanceled => "Closed Canceled",
        }
    }

    /// Parses the wire name; `None` names nothing we know.
    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Whether a candidate is an install on a device or a SaaS seat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppliesTo {
    InstalledSoftware,
    Subscription,
}

impl AppliesTo {
    pub const ALL: [AppliesTo; 2] = [AppliesTo::InstalledSoftware, AppliesTo::Subscription];

    pub fn as_str(self) -> &'static str {
        match self {
            AppliesTo::InstalledSoftware => "installed-software",
            AppliesTo::Subscription => "subscription",
        }
    }

    pub fn parse(s: &str) -> Option<AppliesTo> {
        AppliesTo::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// Why a right may not be needed; rules and reports group by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Justification {
    LowUsage,
    Unused,
    Unallocated,
    Unlicensed,
    Restricted,
    Overlapping,
    Consolidation,
    Downgrade,
}

impl Justification {
    pub const ALL: [Justification; 8] = [
        Justification::LowUsage,
        Justification::Unused,
        Justification::Unallocated,
        Justification::Unlicensed,
        Justification::Restricted,
        Justification::Overlapping,
        Justification::Consolidation,
        Justification::Downgrade,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Justification::LowUsage => "low-usage",
            Justification::Unused => "unused",
            Justification::Unallocated => "unallocated",
            Justification::Unlicensed => "unlicensed",
            Justification::Restricted => "restricted",
            Justification::Overlapping => "overlapping",
            Justification::Consolidation => "consolidation",
            Justification::Downgrade => "downgrade",
        }
    }

    pub fn parse(s: &str) -> Option<Justification> {
        Justification::ALL.into_iter().find(|j| j.as_str() == s)
    }

    /// What people read ("Overlaps another product the user has").
    pub fn words(self) -> &'static str {
        match self {
            Justification::LowUsage => "Low usage",
            Justification::Unused => "Not used",
            Justification::Unallocated => "Not allocated to anyone",
            Justification::Unlicensed => "Not licensed",
            Justification::Restricted => "Restricted software",
            Justification::Overlapping => "Overlaps another product the user has",
            Justification::Consolidation => "Being replaced by another product",
            Justification::Downgrade => "A lower edition would do",
        }
    }
}

/// How often a price is paid. Without it a price is a bare number: nobody can tell whether
/// 1,200.00 is a month or a year, and savings would add months to years.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum PricePeriod {
    Monthly,
    /// The default, also for candidates stored before prices had a period: their savings were
    /// counted as they are, which is what a yearly price counts, so they keep their numbers.
    #[default]
    Yearly,
    /// A perpetual licence: paid once, so reclaiming it saves once, not every year.
    OneTime,
}

impl PricePeriod {
    pub const ALL: [PricePeriod; 3] = [
        PricePeriod::Monthly,
        PricePeriod::Yearly,
        PricePeriod::OneTime,
    ];

    /// The wire name (`one-time`), in imports, rules, settings and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            PricePeriod::Monthly => "monthly",
            PricePeriod::Yearly => "yearly",
            PricePeriod::OneTime => "one-time",
        }
    }

    /// Parses the wire name; `None` names nothing we know.
    pub fn parse(s: &str) -> Option<PricePeriod> {
        PricePeriod::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The words after an amount ("per month", "per year", "one-time"): the one wording pages,
    /// mail and exports use, so an amount never appears without its period.
    pub fn words(self) -> &'static str {
        match self {
            PricePeriod::Monthly => "per month",
            PricePeriod::Yearly => "per year",
            PricePeriod::OneTime => "one-time",
        }
    }

    /// The basis savings at this period are reported on: recurring prices per year, one-time
    /// prices apart (a perpetual licence reclaimed is not saved again every year).
    pub fn basis(self) -> PricePeriod {
        match self {
            PricePeriod::Monthly | PricePeriod::Yearly => PricePeriod::Yearly,
            PricePeriod::OneTime => PricePeriod::OneTime,
        }
    }

    /// An amount at this period, on its [`basis`](PricePeriod::basis): a month's price counts
    /// twelve times a year.
    pub fn on_basis(self, cents: Cents) -> Cents {
        match self {
            PricePeriod::Monthly => cents.saturating_mul(12),
            PricePeriod::Yearly | PricePeriod::OneTime => cents,
        }
    }

    /// The period a new candidate's price has: what its row says, else what its rule says,
    /// else the deployment's default. The one order every import follows.
    pub fn resolve(
        row: Option<PricePeriod>,
        rule: Option<PricePeriod>,
        deployment: PricePeriod,
    ) -> PricePeriod {
        row.or(rule).unwrap_or(deployment)
    }
}

impl fmt::Display for PricePeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What reclaiming one candidate saves, on the basis every report counts it: per year for
/// monthly and yearly prices, once for perpetual licences.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Saving {
    pub cents: Cents,
    /// [`PricePeriod::Yearly`] or [`PricePeriod::OneTime`].
    pub basis: PricePeriod,
}

/// What is being reclaimed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Software {
    pub publisher: String,
    pub product: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub sku: Option<String>,
    #[serde(default)]
    pub subscription_id: Option<String>,
}

/// The person who holds the right, as the candidate saw them when it was created or fixed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRef {
    pub id: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub upn: Option<String>,
    /// ITIL (fulfiller) users also get a task beside the email.
    #[serde(default)]
    pub itil: bool,
    #[serde(default)]
    pub vip: bool,
}

impl UserRef {
    /// A usable address: present and not blank.
    pub fn email(&self) -> Option<&str> {
        self.email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
    }
}

/// Exclusions a rule applies before it creates candidates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exclusions {
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub vips: bool,
    /// Users provisioned less than this many days ago are left alone.
    #[serde(default)]
    pub provisioned_within_days: Option<u32>,
}

/// A reclamation rule as sam admins manage it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub applies_to: Option<AppliesTo>,
    #[serde(default)]
    pub justification: Option<Justification>,
    #[serde(default = "yes")]
    pub notify_user: bool,
    /// 0 reclaims without waiting for the user.
    #[serde(default)]
    pub days_before_auto_reclamation: u32,
    /// Days after the user was asked at which a reminder goes out.
    #[serde(default)]
    pub reminder_days: Vec<u32>,
    #[serde(default)]
    pub assignment_group: Option<String>,
    /// Off means report only: a dry run that creates nothing.
    #[serde(default = "yes")]
    pub create_candidates: bool,
    #[serde(default)]
    pub exclusions: Exclusions,
    /// The plugin that revokes; `None` lets the host route by what plugins declare.
    #[serde(default)]
    pub plugin: Option<String>,
    /// Transient revocation failures tolerated before a person must look.
    #[serde(default = "default_attempts")]
    pub max_revocation_attempts: u32,
    /// Which software the rule looks at when evaluating usage; empty means all.
    #[serde(default)]
    pub software: Vec<SoftwareMatch>,
    /// What makes a right reclaimable; `None` means the rule only receives imported candidates.
    #[serde(default)]
    pub criteria: Option<Criteria>,
    /// Days a removal the vendor carries out later (`pending`, such as an uninstall on the
    /// device's next check-in) may take before a person must look.
    #[serde(default = "default_verify_within_days")]
    pub verify_within_days: u32,
    /// Days after closing at which the vendor is asked again whether the seat or install stayed
    /// gone; a re-install or a re-assignment would otherwise silently eat the savings.
    #[serde(default = "default_recheck_days")]
    pub recheck_days: Vec<u32>,
    /// The period of the prices of this rule's candidates when their rows do not say; `None`
    /// leaves it to the deployment's default. Left out of the JSON when unset, so rules stored
    /// before it existed read and digest the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_period: Option<PricePeriod>,
}

/// Selects software by publisher and (optionally) product, case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoftwareMatch {
    pub publisher: String,
    #[serde(default)]
    pub product: Option<String>,
}

impl Software {
    /// The name people read: "Zoom Pro", not "Zoom Zoom Pro". The publisher is left out when
    /// the product already starts with the publisher's name (its first word, so "Zoom, Inc."
    /// and "Zoom Pro" read as "Zoom Pro"); pages, mail and task titles all use this.
    pub fn label(&self) -> String {
        let publisher = self.publisher.trim();
        let product = self.product.trim();
        let first = publisher
            .split(|c: char| c.is_whitespace() || c == ',')
            .next()
            .unwrap_or_default()
            .trim_end_matches('.');
        let starts = first.chars().count() >= 2
            && product
                .get(..first.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(first))
            && product[first.len()..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric());
        if starts || publisher.is_empty() {
            product.to_string()
        } else {
            format!("{publisher} {product}")
        }
    }

    /// [`Software::label`] with the version, when there is one.
    pub fn label_with_version(&self) -> String {
        match &self.version {
            Some(v) if !v.trim().is_empty() => format!("{} {}", self.label(), v.trim()),
            _ => self.label(),
        }
    }
}

impl SoftwareMatch {
    pub fn matches(&self, publisher: &str, product: &str) -> bool {
        self.publisher.eq_ignore_ascii_case(publisher)
            && self
                .product
                .as_deref()
                .is_none_or(|p| p.eq_ignore_ascii_case(product))
    }
}

/// The usage test a rule applies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Criteria {
    /// Last used more than `days` days ago (never-used rights count too).
    LastUsedBefore { days: u32 },
    /// Fewer than `hours` hours of use in the usage window.
    UsageBelow { hours: f64 },
    /// No recorded use at all.
    NeverUsed,
    /// The user holds more than one of these; all but the first they hold are reclaimable.
    Overlapping { products: Vec<SoftwareMatch> },
    /// The organisation moves off these products: any of them is reclaimable.
    Consolidation { from: Vec<SoftwareMatch> },
}

impl Criteria {
    /// The justification candidates get when the rule does not name one.
    pub fn justification(&self) -> Justification {
        match self {
            Criteria::LastUsedBefore { .. } | Criteria::NeverUsed => Justification::Unused,
            Criteria::UsageBelow { .. } => Justification::LowUsage,
            Criteria::Overlapping { .. } => Justification::Overlapping,
            Criteria::Consolidation { .. } => Justification::Consolidation,
        }
    }
}

impl Eq for Criteria {}

fn yes() -> bool {
    true
}

fn default_attempts() -> u32 {
    5
}

/// A week: long enough for a device that is off over a weekend to check in.
pub const DEFAULT_VERIFY_WITHIN_DAYS: u32 = 7;

fn default_verify_within_days() -> u32 {
    DEFAULT_VERIFY_WITHIN_DAYS
}

/// A week (the next sign-in or device check-in) and a month (the next true-up or onboarding).
pub const DEFAULT_RECHECK_DAYS: [u32; 2] = [7, 30];

fn default_recheck_days() -> Vec<u32> {
    DEFAULT_RECHECK_DAYS.to_vec()
}

impl Rule {
    /// The fields a candidate keeps, so later rule edits do not change open work.
    pub fn snapshot(&self) -> RuleSnapshot {
        RuleSnapshot {
            id: self.id.clone(),
            name: self.name.clone(),
            notify_user: self.notify_user,
            days_before_auto_reclamation: self.days_before_auto_reclamation,
            reminder_days: self.reminder_days.clone(),
            plugin: self.plugin.clone(),
            max_revocation_attempts: self.max_revocation_attempts,
            verify_within_days: self.verify_within_days,
            recheck_days: self.recheck_days.clone(),
        }
    }
}

/// The rule as it was when the candidate was created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSnapshot {
    pub id: String,
    pub name: String,
    pub notify_user: bool,
    pub days_before_auto_reclamation: u32,
    #[serde(default)]
    pub reminder_days: Vec<u32>,
    #[serde(default)]
    pub plugin: Option<String>,
    #[serde(default = "default_attempts")]
    pub max_revocation_attempts: u32,
    #[serde(default = "default_verify_within_days")]
    pub verify_within_days: u32,
    #[serde(default = "default_recheck_days")]
    pub recheck_days: Vec<u32>,
}

/// A named group of approvers; only members approve or reject its keep-requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub members: Vec<String>,
}

impl Group {
    /// The members who may decide a keep request `requester` made: everyone but them. When
    /// none is left, the sam admins decide ([`StandIn`](crate::StandIn)).
    pub fn deciders_besides<'a>(
        &'a self,
        requester: Option<&'a str>,
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.members
            .iter()
            .map(String::as_str)
            .filter(move |m| Some(*m) != requester)
    }
}

/// A person known to Reclaim (directory entry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub id: String,
    pub display_name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub upn: Option<String>,
    #[serde(default)]
    pub itil: bool,
    #[serde(default)]
    pub vip: bool,
    #[serde(default)]
    pub sam_admin: bool,
}

impl User {
    pub fn to_ref(&self) -> UserRef {
        UserRef {
            id: self.id.clone(),
            display_name: self.display_name.clone(),
            email: self.email.clone(),
            upn: self.upn.clone(),
            itil: self.itil,
            vip: self.vip,
        }
    }
}

/// Where the revocation step stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// Plugin runs so far in this revocation (reset on Resume).
    pub attempts: u32,
    /// A manual-removal task is open: the scheduler does not retry the plugin.
    pub manual_task_open: bool,
    /// The last outcome or error, as people read it.
    pub last_outcome: Option<String>,
    /// The plugin answered; the vendor is being asked whether the right is really gone.
    #[serde(default)]
    pub verifying: Option<Verifying>,
}

/// Why the vendor is being asked, which decides what a `present` answer means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerifyAfter {
    /// The plugin said removed: still present means the removal did not take, and is retried.
    Removed,
    /// The vendor accepted a removal it carries out later: still present means not yet.
    Pending,
}

/// A removal waiting for the vendor's confirmation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verifying {
    pub after: VerifyAfter,
    /// When the plugin answered; the rule's `verify_within_days` counts from here.
    pub since: Timestamp,
    /// Verify calls recorded so far; a verify effect runs only as the next one, so a repeated
    /// delivery does not ask twice.
    pub calls: u32,
    /// The first wait the plugin asked for (`pending(n)`); later checks back off from it.
    pub interval_secs: u32,
    /// What the plugin reported when it removed it, kept for the closing entry.
    #[serde(default)]
    pub evidence: Option<String>,
}

/// How sure Reclaim is that a Closed Complete right is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerificationStatus {
    /// The vendor said it is absent.
    Verified,
    /// Closed by a person (a manual removal, Close Complete): nobody asked the vendor yet.
    Unverified,
    /// The plugin cannot tell (a manual-task plugin, a vendor without a read API).
    NotVerifiable,
}

impl VerificationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VerificationStatus::Verified => "verified",
            VerificationStatus::Unverified => "unverified",
            VerificationStatus::NotVerifiable => "not-verifiable",
        }
    }

    /// What people read.
    pub fn label(self) -> &'static str {
        match self {
            VerificationStatus::Verified => "verified absent at the vendor",
            VerificationStatus::Unverified => "not verified at the vendor",
            VerificationStatus::NotVerifiable => "not verifiable by its plugin",
        }
    }
}

/// What a sam admin decided about a right that came back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Reappearance {
    /// A new candidate, linked to this one, reclaims it again.
    Reopened {
        candidate_id: String,
        candidate_number: String,
        by: String,
        at: Timestamp,
    },
    /// The user keeps it; the reason is on the record.
    Accepted {
        reason: String,
        by: String,
        at: Timestamp,
    },
}

/// The vendor's word on a Closed Complete candidate: at closing, and at each re-check after.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub status: VerificationStatus,
    /// When the status was last established.
    pub at: Timestamp,
    /// Verify calls recorded since closing (re-checks and failed attempts); a re-check effect
    /// runs only as the next one.
    #[serde(default)]
    pub calls: u32,
    /// Re-checks of the rule's `recheck_days` done so far.
    #[serde(default)]
    pub rechecks_done: u32,
    /// Failed calls for the re-check now due, for its backoff.
    #[serde(default)]
    pub failures: u32,
    #[serde(default)]
    pub last_checked_at: Option<Timestamp>,
    /// A re-check found the seat or install again: actual savings lose it from this date.
    #[serde(default)]
    pub reappeared_at: Option<Timestamp>,
    #[serde(default)]
    pub resolution: Option<Reappearance>,
}

impl Verification {
    pub fn new(status: VerificationStatus, at: Timestamp) -> Verification {
        Verification {
            status,
            at,
            calls: 0,
            rechecks_done: 0,
            failures: 0,
            last_checked_at: None,
            reappeared_at: None,
            resolution: None,
        }
    }

    /// Came back and nobody decided yet: an alert.
    pub fn awaits_decision(&self) -> bool {
        self.reappeared_at.is_some() && self.resolution.is_none()
    }
}

/// A comment on the record by a person working it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkNote {
    pub at: Timestamp,
    pub author: String,
    pub text: String,
}

/// One piece of software (or one seat) that one user may lose.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub id: String,
    /// Human-readable, e.g. `RC0001042`.
    pub number: String,
    pub applies_to: AppliesTo,
    pub software: Software,
    pub device: Option<String>,
    pub user: Option<UserRef>,
    pub justification: Justification,
    pub inactive_days: Option<u32>,
    pub last_used_at: Option<Timestamp>,
    pub unused_rights: u32,
    pub price_per_right_cents: Cents,
    /// How often `price_per_right_cents` is paid. Candidates stored before it existed read as
    /// [`PricePeriod::Yearly`], which keeps their savings at the numbers they always had.
    #[serde(default)]
    pub price_period: PricePeriod,
    pub rule: RuleSnapshot,
    pub assignment_group: Option<String>,
    pub assigned_to: Option<String>,
    pub state: State,
    /// Bumped by exactly one on every transition; writes are conditional on it.
    pub version: u64,
    pub opened_at: Timestamp,
    pub updated_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    /// When the user was asked (start of the reminder schedule).
    pub asked_at: Option<Timestamp>,
    /// Auto-reclamation deadline while Awaiting User.
    pub deadline_at: Option<Timestamp>,
    /// The next time the scheduler must look at this candidate.
    pub due_at: Option<Timestamp>,
    pub reminders_sent: u32,
    pub revocation: Revocation,
    /// When the candidate entered its current state (stale alerts measure from here).
    #[serde(default)]
    pub state_since: Option<Timestamp>,
    /// Why a person must look (Attention Required).
    pub attention: Option<String>,
    /// The state the candidate was in when it needed attention; Resume returns there.
    pub attention_from: Option<State>,
    pub work_notes: Vec<WorkNote>,
    /// Closed Complete only: whether the vendor confirmed it, and whether it stayed gone.
    #[serde(default)]
    pub verification: Option<Verification>,
    /// The closed candidate whose right came back, when this one reclaims it again.
    #[serde(default)]
    pub reopened_from: Option<String>,
    /// When the user's account was made, where the data said (a rule may exclude users
    /// provisioned recently).
    #[serde(default)]
    pub provisioned_at: Option<Timestamp>,
    /// A sam admin decided this candidate goes on although its rule excludes its user.
    #[serde(default)]
    pub exclusion_override: Option<ExclusionOverride>,
}

/// A sam admin's explicit decision to reclaim despite the rule's exclusions, kept with why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExclusionOverride {
    pub by: String,
    pub comment: String,
    pub at: Timestamp,
}

impl Candidate {
    /// Unused rights times price, per the candidate's own [`PricePeriod`]: a monthly price
    /// gives a month's amount. Reports add [`Candidate::saving`] instead, which puts every
    /// candidate on one basis.
    pub fn potential_savings_cents(&self) -> Cents {
        self.price_per_right_cents
            .saturating_mul(i64::from(self.unused_rights))
    }

    /// What reclaiming saves on the basis reports count it: per year (a monthly price twelve
    /// times), or once for a perpetual licence.
    pub fn saving(&self) -> Saving {
        Saving {
            cents: self.price_period.on_basis(self.potential_savings_cents()),
            basis: self.price_period.basis(),
        }
    }

    /// Why it was flagged, in one sentence everyone shows the same way (pages, mail, link
    /// pages): the justification in words and, where known, when it was last used.
    pub fn reason(&self) -> String {
        match self.inactive_days {
            Some(0) => format!("{}; used today", self.justification.words()),
            Some(1) => format!("{}; last used yesterday", self.justification.words()),
            Some(d) => format!("{}; last used {d} days ago", self.justification.words()),
            None => self.justification.words().to_string(),
        }
    }

    /// The number the next verify call gets, while the vendor may be asked: a removal being
    /// verified, or a Closed Complete candidate being re-checked. The transitions that ask and
    /// the effect that runs the call both go by it, so a repeated delivery asks nobody.
    pub fn next_verify_call(&self) -> Option<u32> {
        match self.state {
            State::AwaitingRevocation => self.revocation.verifying.as_ref().map(|v| v.calls + 1),
            State::ClosedComplete => self.verification.as_ref().map(|v| v.calls + 1),
            _ => None,
        }
    }

    /// A Closed Complete candidate whose right a re-check found again.
    pub fn reappeared_at(&self) -> Option<Timestamp> {
        self.verification.as_ref().and_then(|v| v.reappeared_at)
    }
}

/// Who did something, as the audit trail records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "kebab-case")]
pub enum ActorRef {
    Person(String),
    Scheduler,
    Revocation,
    Mail,
}

impl fmt::Display for ActorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActorRef::Person(id) => f.write_str(id),
            ActorRef::Scheduler => f.write_str("scheduler"),
            ActorRef::Revocation => f.write_str("revocation"),
            ActorRef::Mail => f.write_str("mail"),
        }
    }
}

/// One transition in the audit trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub candidate_id: String,
    /// The version the transition produced.
    pub version: u64,
    pub at: Timestamp,
    pub actor: ActorRef,
    pub event: String,
    pub from: State,
    pub to: State,
    pub reason: Option<String>,
    /// For answers through a link: where the click came from.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// What a task asks of a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskKind {
    /// Approve or reject a keep-request (assignment group).
    Approval,
    /// Answer keep/remove (ITIL users, beside the email).
    UserAnswer,
    /// Remove the software by hand.
    ManualRemoval,
}

impl TaskKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Approval => "approval",
            TaskKind::UserAnswer => "user-answer",
            TaskKind::ManualRemoval => "manual-removal",
        }
    }
}

/// A unit of human work tied to one candidate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Derived from the effect key that created it, so creating it twice is harmless.
    pub id: String,
    pub candidate_id: String,
    pub candidate_number: String,
    pub kind: TaskKind,
    pub assignee: Option<String>,
    pub group: Option<String>,
    pub title: String,
    pub instructions: String,
    pub open: bool,
    pub created_at: Timestamp,
    pub closed_at: Option<Timestamp>,
}

impl UserRef {
    /// The user's fields as any entry point must give them: one-line names and ids, and an
    /// address that is exactly one mailbox.
    pub fn check_text(&self) -> Result<(), FieldError> {
        one_line("user.id", &self.id)?;
        one_line("user.display_name", &self.display_name)?;
        if let Some(upn) = &self.upn {
            one_line("user.upn", upn)?;
        }
        address("user.email", self.email.as_deref())
    }
}

impl User {
    /// A directory entry as seed files and the API must give it: the same rule as
    /// [`UserRef::check_text`], because the entry becomes the candidate's user.
    pub fn check_text(&self) -> Result<(), FieldError> {
        one_line("id", &self.id)?;
        one_line("display_name", &self.display_name)?;
        if let Some(upn) = &self.upn {
            one_line("upn", upn)?;
        }
        address("email", self.email.as_deref())
    }
}

impl Group {
    /// A group's id, name and members are one line each; its address is one mailbox.
    pub fn check_text(&self) -> Result<(), FieldError> {
        one_line("id", &self.id)?;
        one_line("name", &self.name)?;
        for (i, m) in self.members.iter().enumerate() {
            one_line(&format!("members[{i}]"), m)?;
        }
        address("email", self.email.as_deref())
    }
}
