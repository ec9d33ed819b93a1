//! The application layer: reads through the ports, asks the core, writes back what it decided,
//! and runs effects. Local mode and every Lambda use this one implementation.

use crate::mail::{MailContext, Renderer};
use chrono::Duration;
use reclaim_workflow::effect::{Effect, EffectKind, Recipient};
use reclaim_workflow::intake::{self, FieldError, Known};
use reclaim_workflow::ports::{
    CandidateFilter, CandidateStore, Change, Clock, Directory, LinkAction, LinkClaims, LinkError,
    LinkSigner, MailError, Mailer, OutgoingMail, PageRequest, Revoker, RuleStore, RunStore,
    SessionStore, StoreError, TaskStore, TokenStore, UsageSources,
};
use reclaim_workflow::usage;
use reclaim_workflow::RevocationResult;
use reclaim_workflow::{
    apply, schedule, Actor, Candidate, Event, Group, HistoryEntry, Principal, Reappearance,
    Refusal, Rule, StandIn, State, Task, Timestamp, UserRef, VerifyAfter, Via,
};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Everything the application needs from the outside world.
#[derive(Clone)]
pub struct Ports {
    pub candidates: Arc<dyn CandidateStore>,
    pub tasks: Arc<dyn TaskStore>,
    pub directory: Arc<dyn Directory>,
    pub rules: Arc<dyn RuleStore>,
    /// Workspace sessions and sign-ins in progress.
    pub sessions: Arc<dyn SessionStore>,
    /// API tokens, as digests.
    pub tokens: Arc<dyn TokenStore>,
    pub mailer: Arc<dyn Mailer>,
    pub revoker: Arc<dyn Revoker>,
    pub clock: Arc<dyn Clock>,
    pub signer: Arc<dyn LinkSigner>,
    /// The usage connectors loaded (plugins that collect usage).
    pub sources: Arc<dyn UsageSources>,
    /// The connectors' runs.
    pub runs: Arc<dyn RunStore>,
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ports { .. }")
    }
}

/// Deployment settings the application reads.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where people reach the Router, e.g. `http://127.0.0.1:8080`; links in emails start here.
    pub public_url: String,
    /// Approver links and links of candidates without a deadline expire after this many days.
    pub link_ttl_days: i64,
    /// The currency of every price and saving (ISO 4217, e.g. `EUR`), shown with each amount.
    pub currency: String,
    /// The period of imported prices whose row and rule name none: what a bare price means in
    /// this organisation's exports.
    pub price_period: reclaim_workflow::PricePeriod,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            public_url: "http://127.0.0.1:8080".into(),
            link_ttl_days: 14,
            currency: "USD".into(),
            price_period: reclaim_workflow::PricePeriod::default(),
        }
    }
}

/// Why an application call failed; the Router maps each to an HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{kind} '{id}' not found")]
    NotFound { kind: &'static str, id: String },
    #[error("{0}")]
    Refused(#[from] Refusal),
    #[error("candidate {id} is at version {actual}, not {expected}: reload and try again")]
    Stale {
        id: String,
        expected: u64,
        actual: u64,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("{0}")]
    Forbidden(String),
    /// The candidate's rule excludes its user: not reclaimed (the reason is on its history).
    #[error("{number} was not reclaimed: {reason}; a sam admin may override the exclusion on it")]
    Excluded { number: String, reason: String },
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { kind, id } => AppError::NotFound { kind, id },
            StoreError::Conflict { .. } => AppError::Conflict(e.to_string()),
            StoreError::Duplicate { .. } => AppError::Conflict(e.to_string()),
            other => AppError::Store(other),
        }
    }
}

/// Why an effect could not run, classified for the runner's retry decision.
#[derive(Debug, thiserror::Error)]
pub enum EffectError {
    #[error("retryable: {0}")]
    Retryable(String),
    #[error("permanent: {0}")]
    Permanent(String),
}

impl EffectError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, EffectError::Retryable(_))
    }
}

impl From<StoreError> for EffectError {
    fn from(e: StoreError) -> Self {
        if e.is_retryable() {
            EffectError::Retryable(e.to_string())
        } else {
            EffectError::Permanent(e.to_string())
        }
    }
}

impl From<MailError> for EffectError {
    fn from(e: MailError) -> Self {
        if e.is_retryable() {
            EffectError::Retryable(e.to_string())
        } else {
            EffectError::Permanent(e.to_string())
        }
    }
}

/// How many transitions of a bulk action are in flight at once: enough for the SQLite writer
/// to commit them in shared transactions and for DynamoDB round trips to overlap, few enough
/// to leave the store to everyone else too.
pub const BULK_IN_FLIGHT: usize = 64;

/// How far a bulk action has got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BulkProgress {
    pub done: usize,
    pub total: usize,
}

/// Result of a bulk Reclaim: every candidate once, by what happened to it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BulkReport {
    /// Every candidate that moved (the three lists below together).
    pub reclaimed: Vec<String>,
    /// The user was asked (Awaiting User).
    pub asked: Vec<String>,
    /// The rule does not ask: the removal started at once (Awaiting Revocation).
    pub removing: Vec<String>,
    /// A person must fix something first (Attention Required: no email, no group).
    pub attention: Vec<String>,
    pub refused: Vec<BulkRefusal>,
    /// Not reclaimed because the rule excludes the user (the reason on each history).
    pub excluded: Vec<BulkRefusal>,
}

impl BulkReport {
    /// Files one candidate's Reclaim under what happened to it. A store failure is returned:
    /// the bulk action stops there.
    fn record(
        &mut self,
        number: &str,
        result: Result<Candidate, AppError>,
    ) -> Result<(), AppError> {
        match result {
            Ok(c) => {
                match c.state {
                    State::AwaitingUser => self.asked.push(c.number.clone()),
                    State::AwaitingRevocation => self.removing.push(c.number.clone()),
                    _ => self.attention.push(c.number.clone()),
                }
                self.reclaimed.push(c.number);
            }
            Err(AppError::Store(e)) => return Err(AppError::Store(e)),
            Err(AppError::Excluded { number, reason }) => self.excluded.push(BulkRefusal {
                number,
                error: reason,
            }),
            Err(e) => self.refused.push(BulkRefusal {
                number: number.to_string(),
                error: e.to_string(),
            }),
        }
        Ok(())
    }
}

/// What a Reclaim would do to one candidate, decided by the same checks the Reclaim makes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "why", rename_all = "kebab-case")]
pub enum PreviewOutcome {
    /// The user is emailed and asked.
    AskUser,
    /// The rule does not ask: the removal starts at once.
    RemoveNow,
    /// It would wait in Attention Required (no email, no assignment group).
    NeedsAttention(String),
    /// The rule excludes the user: skipped.
    Excluded(String),
    /// Not allowed (not Ready any more, not a sam admin).
    Refused(String),
}

/// One candidate of a bulk preview, with the version the confirmation will insist on.
#[derive(Clone, Debug, Serialize)]
pub struct PreviewItem {
    pub id: String,
    pub number: String,
    pub version: u64,
    pub software: String,
    pub user: Option<String>,
    pub rule: String,
    #[serde(flatten)]
    pub outcome: PreviewOutcome,
}

/// What a bulk Reclaim would do, before it does anything.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BulkPreview {
    pub items: Vec<PreviewItem>,
}

impl BulkPreview {
    /// How many would end up each way: (ask, remove now, needs attention, excluded, refused).
    pub fn counts(&self) -> [usize; 5] {
        let mut n = [0; 5];
        for i in &self.items {
            n[match i.outcome {
                PreviewOutcome::AskUser => 0,
                PreviewOutcome::RemoveNow => 1,
                PreviewOutcome::NeedsAttention(_) => 2,
                PreviewOutcome::Excluded(_) => 3,
                PreviewOutcome::Refused(_) => 4,
            }] += 1;
        }
        n
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct BulkRefusal {
    pub number: String,
    pub error: String,
}

/// One bad row of an import.
#[derive(Clone, Debug, Serialize)]
pub struct RowError {
    /// 1-based line (CSV, counting the header) or item index (JSON).
    pub line: usize,
    pub errors: Vec<FieldError>,
}

/// What an import did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ImportReport {
    pub created: Vec<String>,
    pub invalid: Vec<RowError>,
    /// True when nothing was stored because some rows were bad.
    pub rejected: bool,
}

/// Candidates stored per insert call when an import creates many.
const INSERT_CHUNK: usize = 1000;

/// A chunk of new candidates on its way into the store, handed back once stored.
type StoringChunk =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<Candidate>, StoreError>> + Send>>;

/// What a usage import did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct UsageReport {
    /// Rows read.
    pub rows: usize,
    /// Numbers of the candidates created.
    pub created: Vec<String>,
    /// Every rule match and its decision (created, would create, excluded, already open).
    pub findings: Vec<usage::Finding>,
    /// Numbers of the candidates closed as canceled: their user is active again.
    pub canceled: Vec<String>,
    /// Lines of good rows no rule applied to (used recently enough, or software no rule
    /// covers): said, so that every row of the file is accounted for.
    pub unmatched: Vec<usize>,
    pub invalid: Vec<RowError>,
    /// True when nothing was stored because some rows were bad.
    pub rejected: bool,
}

/// The rules, groups and open candidates usage rows are evaluated against.
pub(crate) struct UsageContext {
    rules: Vec<Rule>,
    groups: Vec<Group>,
    open: usage::OpenSeats,
}

/// What one scheduler tick did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TickReport {
    pub examined: usize,
    pub applied: Vec<(String, &'static str)>,
}

/// What the POST behind a link did.
#[derive(Clone, Debug, Serialize)]
pub struct LinkAnswer {
    pub view: LinkView,
    /// The link was already used before this request: nothing was tried.
    pub used_before: bool,
}

/// What a link shows before anyone confirms.
#[derive(Clone, Debug, Serialize)]
pub struct LinkView {
    pub claims: LinkClaims,
    pub candidate: Candidate,
    /// Set when the candidate moved on since the link was sent.
    pub already: Option<HistoryEntry>,
}

/// A link that cannot be used, with the reason people see.
#[derive(Debug, thiserror::Error)]
pub enum LinkProblem {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("this link is for a record that no longer exists")]
    Gone,
    #[error(transparent)]
    App(#[from] AppError),
}

/// The rules, and the groups when a rule excludes by group, as a bulk action read them once
/// for all its candidates (a bulk Reclaim of 10,000 reads its rules once, not 10,000 times).
struct RuleSnapshot {
    rules: HashMap<String, Rule>,
    groups: Vec<Group>,
}

/// The application: cheap to clone, shared by every request and the effect runner.
#[derive(Clone, Debug)]
pub struct App {
    pub ports: Ports,
    pub settings: Arc<Settings>,
    renderer: Arc<Renderer>,
}

impl App {
    /// An amount in the deployment's currency, as pages and mail show it ("EUR 1,975.00").
    pub fn money(&self, cents: reclaim_workflow::Cents) -> String {
        reclaim_workflow::text::money(cents, &self.settings.currency)
    }

    /// What reclaiming a candidate saves, with its basis ("EUR 14,400.00 per year").
    pub fn saving(&self, c: &Candidate) -> String {
        reclaim_workflow::text::saving(c.saving(), &self.settings.currency)
    }

    /// A candidate's price of one right with its period ("EUR 1,200.00 per seat per year").
    pub fn price(&self, c: &Candidate) -> String {
        reclaim_workflow::text::price_per_seat(
            c.price_per_right_cents,
            &self.settings.currency,
            c.price_period,
        )
    }

    pub fn new(ports: Ports, settings: Settings) -> Self {
        App {
            ports,
            settings: Arc::new(settings),
            renderer: Arc::new(Renderer::new()),
        }
    }

    pub fn now(&self) -> Timestamp {
        self.ports.clock.now()
    }

    /// Who a user id is, with the roles and groups the directory gives them.
    pub async fn principal(&self, user_id: &str) -> Result<Option<Principal>, AppError> {
        // Both reads are needed for every authenticated request; made at once, they cost one
        // round trip to the directory instead of two.
        let dir = &self.ports.directory;
        let (user, groups) = tokio::join!(dir.user(user_id), dir.groups());
        let Some(user) = user? else {
            return Ok(None);
        };
        let groups = groups?;
        // Sam admins decide the keep requests of a group's only member (and of a group
        // with no members): nobody decides on their own request.
        let stands_in = if user.sam_admin {
            groups.iter().filter_map(StandIn::for_group).collect()
        } else {
            Vec::new()
        };
        let groups = groups
            .into_iter()
            .filter(|g| g.members.iter().any(|m| m == user_id))
            .map(|g| g.id)
            .collect();
        Ok(Some(Principal {
            user_id: user.id,
            sam_admin: user.sam_admin,
            itil: user.itil,
            groups,
            stands_in,
        }))
    }

    pub async fn candidate(&self, id: &str) -> Result<Candidate, AppError> {
        self.ports
            .candidates
            .get(id)
            .await?
            .ok_or_else(|| AppError::NotFound {
                kind: "candidate",
                id: id.to_string(),
            })
    }

    /// Applies one event to one candidate and commits it conditionally on the version read
    /// (or on `expected_version` when the caller saw an older one: then it is stale).
    pub async fn transition(
        &self,
        id: &str,
        event: &Event,
        actor: &Actor,
        expected_version: Option<u64>,
    ) -> Result<Candidate, AppError> {
        self.transition_in(id, event, actor, expected_version, None)
            .await
    }

    /// [`App::transition`] with the rules a bulk action read once.
    async fn transition_in(
        &self,
        id: &str,
        event: &Event,
        actor: &Actor,
        expected_version: Option<u64>,
        known: Option<&RuleSnapshot>,
    ) -> Result<Candidate, AppError> {
        let current = self.candidate(id).await?;
        if let Some(v) = expected_version {
            if v != current.version {
                return Err(AppError::Stale {
                    id: current.number,
                    expected: v,
                    actual: current.version,
                });
            }
        }
        Ok(self.commit_event_in(&current, event, actor, known).await?.0)
    }

    /// Decides and writes one transition from a candidate already read: the write is
    /// conditional on that read's version, so no second read is needed to stay correct.
    async fn commit_event(
        &self,
        current: &Candidate,
        event: &Event,
        actor: &Actor,
    ) -> Result<(Candidate, HistoryEntry), AppError> {
        self.commit_event_in(current, event, actor, None).await
    }

    /// [`App::commit_event`] with the rules a bulk action read once.
    async fn commit_event_in(
        &self,
        current: &Candidate,
        event: &Event,
        actor: &Actor,
        known: Option<&RuleSnapshot>,
    ) -> Result<(Candidate, HistoryEntry), AppError> {
        // Exclusions hold at Reclaim whatever made the candidate (an import, a rule that
        // changed since): the attempt is recorded, nothing else happens.
        if matches!(event, Event::Reclaim) && current.state == State::Ready {
            // A refusal (not a sam admin) wins over the exclusion, so it reveals nothing.
            apply(current, event, actor, self.now())?;
            if let Some(reason) = self.exclusion_in(current, known).await? {
                let held = Event::ExclusionHeld {
                    reason: reason.clone(),
                };
                Box::pin(self.commit_event(current, &held, actor)).await?;
                return Err(AppError::Excluded {
                    number: current.number.clone(),
                    reason,
                });
            }
        }
        let t = apply(current, event, actor, self.now())?;
        let change = Change {
            expected_version: current.version,
            candidate: t.candidate,
            entry: t.entry,
            effects: t.effects,
        };
        self.ports.candidates.commit(&change).await?;
        tracing::info!(
            candidate = %change.candidate.number,
            event = event.name(),
            from = %current.state,
            to = %change.candidate.state,
            "transition"
        );
        Ok((change.candidate, change.entry))
    }

    /// Reclaim every Ready candidate the filter selects (Reclaim All).
    pub async fn reclaim_all(
        &self,
        filter: &CandidateFilter,
        actor: &Actor,
        progress: &(dyn Fn(BulkProgress) + Send + Sync),
    ) -> Result<BulkReport, AppError> {
        let mut filter = filter.clone();
        filter.state = Some(State::Ready);
        let mut ready = Vec::new();
        let mut page = PageRequest {
            limit: 500,
            cursor: None,
            sort: None,
        };
        loop {
            let p = self.ports.candidates.list(&filter, &page).await?;
            ready.extend(p.items);
            match p.next {
                Some(next) => page.cursor = Some(next),
                None => break,
            }
        }
        let known = &self.rule_snapshot().await?;
        self.bulk(&ready, progress, |c| async move {
            let result = self
                .commit_event_in(c, &Event::Reclaim, actor, Some(known))
                .await
                .map(|(c, _)| c);
            (c.number.clone(), result)
        })
        .await
    }

    /// Every Ready candidate the filter selects (Reclaim All), at most `limit`.
    pub async fn ready_matching(
        &self,
        filter: &CandidateFilter,
        limit: usize,
    ) -> Result<Vec<Candidate>, AppError> {
        let mut filter = filter.clone();
        filter.state = Some(State::Ready);
        let mut out = Vec::new();
        let mut page = PageRequest {
            limit: 500,
            cursor: None,
            sort: None,
        };
        loop {
            let p = self.ports.candidates.list(&filter, &page).await?;
            out.extend(p.items);
            if out.len() > limit {
                out.truncate(limit);
                return Ok(out);
            }
            match p.next {
                Some(next) => page.cursor = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// What Reclaim would do to each of these candidates, changing nothing: the same checks
    /// (the actor's right, the exclusions, what the rule and the user's data lead to).
    pub async fn reclaim_preview(
        &self,
        candidates: &[Candidate],
        actor: &Actor,
    ) -> Result<BulkPreview, AppError> {
        let now = self.now();
        let mut preview = BulkPreview::default();
        let known = self.rule_snapshot().await?;
        // The exclusions' reads overlap, as a bulk Reclaim's transitions do.
        let mut outcomes = Vec::with_capacity(candidates.len());
        for stretch in candidates.chunks(BULK_IN_FLIGHT) {
            let each = stretch
                .iter()
                .map(|c| self.preview_one(c, actor, now, &known));
            for o in futures_util::future::join_all(each).await {
                outcomes.push(o?);
            }
        }
        for (c, outcome) in candidates.iter().zip(outcomes) {
            preview.items.push(PreviewItem {
                id: c.id.clone(),
                number: c.number.clone(),
                version: c.version,
                software: c.software.label(),
                user: c.user.as_ref().map(|u| u.display_name.clone()),
                rule: c.rule.name.clone(),
                outcome,
            });
        }
        Ok(preview)
    }

    /// What a Reclaim would do to one candidate now.
    async fn preview_one(
        &self,
        c: &Candidate,
        actor: &Actor,
        now: Timestamp,
        known: &RuleSnapshot,
    ) -> Result<PreviewOutcome, AppError> {
        Ok(match apply(c, &Event::Reclaim, actor, now) {
            Err(r) => PreviewOutcome::Refused(r.to_string()),
            Ok(t) => match self.exclusion_in(c, Some(known)).await? {
                Some(why) => PreviewOutcome::Excluded(why),
                None => match t.candidate.state {
                    State::AwaitingUser => PreviewOutcome::AskUser,
                    State::AwaitingRevocation => PreviewOutcome::RemoveNow,
                    _ => PreviewOutcome::NeedsAttention(t.candidate.attention.unwrap_or_default()),
                },
            },
        })
    }

    /// Reclaims exactly the candidates a person confirmed, each only if it is still at the
    /// version the preview showed: one that changed since is refused, not acted on unseen.
    /// `progress` hears how many are done after each stretch.
    pub async fn reclaim_confirmed(
        &self,
        picks: &[(String, u64)],
        actor: &Actor,
        progress: &(dyn Fn(BulkProgress) + Send + Sync),
    ) -> Result<BulkReport, AppError> {
        let known = &self.rule_snapshot().await?;
        self.bulk(picks, progress, |(id, version)| async move {
            let result = self
                .transition_in(id, &Event::Reclaim, actor, Some(*version), Some(known))
                .await;
            (id.clone(), result)
        })
        .await
    }

    /// Runs one Reclaim per item, [`BULK_IN_FLIGHT`] at a time, and files each result in
    /// pick order. In flight together, the transitions share the store's commits (SQLite's
    /// writer commits what is queued in one transaction) or overlap their round trips
    /// (DynamoDB), which is what makes ten thousand take seconds rather than minutes. A store
    /// failure stops it after the stretch it happened in.
    async fn bulk<'a, T, F, Fut>(
        &'a self,
        items: &'a [T],
        progress: &(dyn Fn(BulkProgress) + Send + Sync),
        one: F,
    ) -> Result<BulkReport, AppError>
    where
        F: Fn(&'a T) -> Fut,
        Fut: std::future::Future<Output = (String, Result<Candidate, AppError>)>,
    {
        let mut report = BulkReport::default();
        let total = items.len();
        let mut done = 0;
        progress(BulkProgress { done, total });
        for stretch in items.chunks(BULK_IN_FLIGHT) {
            let results = futures_util::future::join_all(stretch.iter().map(&one)).await;
            let mut failed = None;
            for (number, result) in results {
                if let Err(e) = report.record(&number, result) {
                    failed.get_or_insert(e);
                }
            }
            done += stretch.len();
            progress(BulkProgress { done, total });
            if let Some(e) = failed {
                return Err(e);
            }
        }
        Ok(report)
    }

    /// Imports candidate rows (field → text). Nothing is stored when any row is bad, unless
    /// `skip_invalid`; then the good rows are stored and the bad ones reported.
    pub async fn import(
        &self,
        rows: Vec<(usize, BTreeMap<String, String>)>,
        skip_invalid: bool,
    ) -> Result<ImportReport, AppError> {
        let rules = self.ports.rules.rules().await?;
        let groups: Vec<String> = self
            .ports
            .directory
            .groups()
            .await?
            .into_iter()
            .map(|g| g.id)
            .collect();
        let known = Known {
            rules: &rules,
            groups: &groups,
            price_period: self.settings.price_period,
        };
        let mut report = ImportReport::default();
        let mut drafts = Vec::new();
        // One open candidate per user and software (and device), as the usage import keeps it:
        // a second one would ask the user twice and remove the seat twice.
        let mut open: BTreeMap<String, String> = self
            .open_candidates()
            .await?
            .into_iter()
            .filter_map(|c| usage::candidate_key(&c).map(|k| (k, c.number)))
            .collect();
        for (line, row) in rows {
            match intake::parse_row(&row, known) {
                Ok(d) => {
                    let key = d.seat_key();
                    match key.as_ref().and_then(|k| open.get(k)) {
                        Some(number) => report.invalid.push(RowError {
                            line,
                            errors: vec![field_error(
                                "user_id",
                                format!(
                                    "{} already has an open candidate for {} {}{} ({number})",
                                    d.user.as_ref().map_or("", |u| u.id.as_str()),
                                    d.software.publisher,
                                    d.software.product,
                                    d.device
                                        .as_deref()
                                        .map(|x| format!(" on {x}"))
                                        .unwrap_or_default()
                                ),
                            )],
                        }),
                        None => {
                            if let Some(k) = key {
                                open.insert(k, format!("line {line} of this import"));
                            }
                            drafts.push(d)
                        }
                    }
                }
                Err(errors) => report.invalid.push(RowError { line, errors }),
            }
        }
        if !report.invalid.is_empty() && !skip_invalid {
            report.rejected = true;
            return Ok(report);
        }
        if drafts.is_empty() {
            return Ok(report);
        }
        let count = u32::try_from(drafts.len())
            .map_err(|_| AppError::BadRequest("too many rows in one import".into()))?;
        let first = self.ports.candidates.allocate_numbers(count).await?;
        let now = self.now();
        let candidates: Vec<Candidate> = drafts
            .into_iter()
            .zip(first..)
            .map(|(d, n)| {
                let id =
                    d.id.clone()
                        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                d.into_candidate(id, n, now)
            })
            .collect();
        self.ports.candidates.insert(&candidates).await?;
        report.created = candidates.into_iter().map(|c| c.number).collect();
        Ok(report)
    }

    /// Every candidate still open (for dedupe, cancel and stale alerts).
    pub async fn open_candidates(&self) -> Result<Vec<Candidate>, AppError> {
        let mut out = Vec::new();
        for state in State::ALL.into_iter().filter(|s| !s.is_closed()) {
            let filter = CandidateFilter {
                state: Some(state),
                ..CandidateFilter::default()
            };
            out.extend(self.list_all(&filter).await?);
        }
        Ok(out)
    }

    /// Every candidate the filter selects, following the cursor to the end.
    pub async fn list_all(&self, filter: &CandidateFilter) -> Result<Vec<Candidate>, AppError> {
        let mut out = Vec::new();
        let mut page = PageRequest {
            limit: 1000,
            cursor: None,
            sort: None,
        };
        loop {
            let p = self.ports.candidates.list(filter, &page).await?;
            out.extend(p.items);
            match p.next {
                Some(next) => page.cursor = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// Imports usage rows and evaluates the rules: creates candidates (never a second open one
    /// for the same user and software), reports what report-only rules would create, and
    /// cancels open candidates whose user is active again. Nothing is stored when any row is
    /// bad, unless `skip_invalid`.
    pub async fn import_usage(
        &self,
        rows: Vec<intake::Row>,
        skip_invalid: bool,
    ) -> Result<UsageReport, AppError> {
        let mut batch = usage::UsageBatch::default();
        for (line, row) in &rows {
            batch.push(*line, row);
        }
        drop(rows);
        self.import_usage_batch(batch, skip_invalid).await
    }

    /// As [`App::import_usage`], for rows already parsed as they were read (the CLI streams a
    /// large file into a [`usage::UsageBatch`] instead of holding it as text).
    pub async fn import_usage_batch(
        &self,
        batch: usage::UsageBatch,
        skip_invalid: bool,
    ) -> Result<UsageReport, AppError> {
        let started = std::time::Instant::now();
        let usage::UsageBatch {
            rows,
            records,
            invalid,
        } = batch;
        let mut report = UsageReport {
            rows,
            invalid: invalid
                .into_iter()
                .map(|(line, errors)| RowError { line, errors })
                .collect(),
            ..UsageReport::default()
        };
        report.invalid.sort_by_key(|r| r.line);
        if !report.invalid.is_empty() && !skip_invalid {
            report.rejected = true;
            return Ok(report);
        }
        let mut known = self.usage_context().await?;
        let read = started.elapsed();
        self.apply_usage(records, &mut known, &mut report).await?;
        tracing::debug!(
            rows = report.rows,
            created = report.created.len(),
            read_ms = read.as_millis(),
            store_ms = (started.elapsed() - read).as_millis(),
            "usage import"
        );
        Ok(report)
    }

    /// What evaluating usage rows needs besides the rows: read once per import or connector
    /// run.
    pub(crate) async fn usage_context(&self) -> Result<UsageContext, AppError> {
        Ok(UsageContext {
            rules: self.ports.rules.rules().await?,
            groups: self.ports.directory.groups().await?,
            open: usage::OpenSeats::of(&self.open_candidates().await?),
        })
    }

    /// Evaluates parsed usage rows and stores what follows: the candidates to create, the
    /// cancellations of candidates whose user is active again; adds it all to `report`. The
    /// one copy of this for a file import and a connector's page; candidates it creates join
    /// `known.open`, so a later page of the same run cannot create them again.
    pub(crate) async fn apply_usage(
        &self,
        records: Vec<(usize, usage::UsageRecord)>,
        known: &mut UsageContext,
        report: &mut UsageReport,
    ) -> Result<(), AppError> {
        let now = self.now();
        let evaluation = usage::evaluate_against(
            &known.rules,
            &records,
            &known.open,
            &known.groups,
            now,
            self.settings.price_period,
        );
        let touched: std::collections::HashSet<usize> = evaluation
            .findings
            .iter()
            .map(|f| f.line)
            .chain(evaluation.active_again.iter().map(|a| a.line))
            .collect();
        report.unmatched.extend(
            records
                .iter()
                .map(|(line, _)| *line)
                .filter(|l| !touched.contains(l)),
        );
        drop(records);
        if !evaluation.create.is_empty() {
            let count = u32::try_from(evaluation.create.len())
                .map_err(|_| AppError::BadRequest("too many rows in one import".into()))?;
            let first = self.ports.candidates.allocate_numbers(count).await?;
            // Built and stored a chunk at a time, so the whole import is never held twice;
            // the next chunk is built and handed to the store while it stores the one before.
            let mut drafts = evaluation.create.into_iter().zip(first..);
            let mut storing: Option<StoringChunk> = None;
            loop {
                let chunk: Vec<Candidate> = drafts
                    .by_ref()
                    .take(INSERT_CHUNK)
                    .map(|((_, d), n)| d.into_candidate(uuid::Uuid::new_v4().to_string(), n, now))
                    .collect();
                let next = if chunk.is_empty() {
                    None
                } else {
                    Some(self.start_storing(chunk).await)
                };
                if let Some(stored) = storing.take() {
                    match stored.await {
                        Ok(stored) => {
                            for c in stored {
                                known.open.add(&c);
                                report.created.push(c.number);
                            }
                        }
                        Err(e) => {
                            // The chunk already handed over is settled before the error is
                            // returned, so nothing is still being written when the caller
                            // hears of it.
                            if let Some(next) = next {
                                let _ = next.await;
                            }
                            return Err(e.into());
                        }
                    }
                }
                match next {
                    Some(next) => storing = Some(next),
                    None => break,
                }
            }
        }
        for a in evaluation.active_again {
            let event = Event::UsageDetected {
                last_used_at: a.last_used_at,
            };
            match self
                .transition(&a.candidate_id, &event, &Actor::Scheduler, None)
                .await
            {
                Ok(_) => report.canceled.push(a.number),
                Err(AppError::Store(e)) => return Err(AppError::Store(e)),
                Err(e) => tracing::info!(candidate = %a.number, error = %e, "not canceled"),
            }
        }
        report.findings.extend(evaluation.findings);
        Ok(())
    }

    /// Starts storing `chunk`: the store's insert runs until it first waits (the SQLite store
    /// has encoded the chunk and queued it for its writer by then), and the returned future
    /// finishes it, handing the chunk back once stored.
    async fn start_storing(&self, chunk: Vec<Candidate>) -> StoringChunk {
        let store = Arc::clone(&self.ports.candidates);
        let mut storing: StoringChunk =
            Box::pin(async move { store.insert(&chunk).await.map(|()| chunk) });
        let first =
            std::future::poll_fn(|cx| std::task::Poll::Ready(storing.as_mut().poll(cx))).await;
        match first {
            std::task::Poll::Ready(done) => Box::pin(std::future::ready(done)),
            std::task::Poll::Pending => storing,
        }
    }

    /// Open candidates that need a look: open more than 30 days, or Awaiting Revocation more
    /// than 60 days. Every one of them, for the command line of the machine's operator.
    pub async fn stale_alerts(&self) -> Result<Vec<usage::StaleAlert>, AppError> {
        self.stale_alerts_where(|_| true).await
    }

    /// The stale alerts `who` can act on ([`Principal::looks_after`]): all of them for a sam
    /// admin, those of their groups and those assigned to them for anyone else.
    pub async fn stale_alerts_for(
        &self,
        who: &Principal,
    ) -> Result<Vec<usage::StaleAlert>, AppError> {
        self.stale_alerts_where(|c| who.looks_after(c)).await
    }

    /// One page of the alerts `who` can act on, in the store's order (the longest first within
    /// the page), and where the next page starts: a bounded read however many there are.
    pub async fn stale_alerts_page(
        &self,
        who: &Principal,
        limit: u32,
        cursor: Option<String>,
    ) -> Result<(Vec<usage::StaleAlert>, Option<String>), AppError> {
        let now = self.now();
        let alerting = CandidateFilter {
            alert_before: Some(now),
            ..CandidateFilter::default()
        };
        let mut page = PageRequest {
            limit,
            cursor,
            sort: None,
        };
        let mut alerts = Vec::new();
        // A person who sees few of them reads at most this many store pages for one page.
        for _ in 0..20 {
            let got = self.ports.candidates.list(&alerting, &page).await?;
            alerts.extend(
                got.items
                    .iter()
                    .filter(|c| who.looks_after(c))
                    .filter_map(|c| usage::stale_alert(c, now)),
            );
            page.cursor = got.next;
            let want = limit.saturating_sub(u32::try_from(alerts.len()).unwrap_or(u32::MAX));
            if want == 0 || page.cursor.is_none() {
                break;
            }
            page.limit = want;
        }
        alerts.sort_by_key(|a| std::cmp::Reverse(a.days));
        Ok((alerts, page.cursor))
    }

    async fn stale_alerts_where(
        &self,
        keep: impl Fn(&Candidate) -> bool,
    ) -> Result<Vec<usage::StaleAlert>, AppError> {
        let now = self.now();
        // Only the candidates that are an alert by now (an index on SQLite), never every
        // open or closed one.
        let alerting = CandidateFilter {
            alert_before: Some(now),
            ..CandidateFilter::default()
        };
        let mut alerts: Vec<_> = self
            .list_all(&alerting)
            .await?
            .into_iter()
            .filter(|c| keep(c))
            .filter_map(|c| usage::stale_alert(&c, now))
            .collect();
        alerts.sort_by_key(|a| std::cmp::Reverse(a.days));
        Ok(alerts)
    }

    /// Reads and checks a rule (JSON) against the directory and the installed plugins (when the
    /// revoker knows them) without storing it: every problem names its field, so the API, the
    /// CLI and the workspace refuse the same rules the same way.
    pub async fn check_rule(&self, v: &serde_json::Value) -> Result<Rule, AppError> {
        let rule = reclaim_workflow::rules::parse_rule(v).map_err(AppError::Invalid)?;
        let groups = self.ports.directory.groups().await?;
        let mut errors = reclaim_workflow::rules::check_rule(&rule, &groups);
        if let (Some(p), Some(names)) = (&rule.plugin, self.ports.revoker.plugin_names()) {
            if !names.contains(p) {
                let installed = if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                };
                errors.push(field_error(
                    "plugin",
                    format!("no plugin '{p}' is installed (installed: {installed})"),
                ));
            }
        }
        if errors.is_empty() {
            Ok(rule)
        } else {
            Err(AppError::Invalid(errors))
        }
    }

    /// The Assign event for a group and/or a person, both checked against the directory, so
    /// the API and the workspace refuse the same assignments with the same words.
    pub async fn assignment(
        &self,
        group: Option<String>,
        assigned_to: Option<String>,
    ) -> Result<Event, AppError> {
        let mut errors = Vec::new();
        if group.is_none() && assigned_to.is_none() {
            errors.push(field_error(
                "group",
                "give a group, a person (assigned_to) or both",
            ));
        }
        let dir = &self.ports.directory;
        if let Some(g) = &group {
            if dir.group(g).await?.is_none() {
                errors.push(field_error(
                    "group",
                    format!("unknown assignment group '{g}'"),
                ));
            }
        }
        if let Some(u) = &assigned_to {
            if dir.user(u).await?.is_none() {
                errors.push(field_error("assigned_to", format!("unknown user '{u}'")));
            }
        }
        if errors.is_empty() {
            Ok(Event::Assign { group, assigned_to })
        } else {
            Err(AppError::Invalid(errors))
        }
    }

    /// The UpdateUser event for a corrected user (the usual fix: the missing email), checked
    /// the same way for the API and the workspace.
    pub fn user_update(user: UserRef) -> Result<Event, AppError> {
        let mut errors = Vec::new();
        if user.id.trim().is_empty() {
            errors.push(field_error("user.id", "is required"));
        }
        if let Err(e) = user.check_text() {
            errors.push(e);
        }
        if errors.is_empty() {
            Ok(Event::UpdateUser { user })
        } else {
            Err(AppError::Invalid(errors))
        }
    }

    /// Deletes a rule. Candidates already created keep their snapshot of it and go on as they
    /// were started; later imports naming the rule are refused as naming an unknown rule.
    pub async fn delete_rule(&self, id: &str) -> Result<(), AppError> {
        if self.ports.rules.delete_rule(id).await? {
            Ok(())
        } else {
            Err(AppError::NotFound {
                kind: "rule",
                id: id.to_string(),
            })
        }
    }

    /// Creates or replaces a rule once [`App::check_rule`] accepts it. Open candidates keep the
    /// snapshot of the rule they were created with.
    pub async fn put_rule(&self, v: &serde_json::Value) -> Result<Rule, AppError> {
        let rule = self.check_rule(v).await?;
        self.ports.rules.put_rule(&rule).await?;
        Ok(rule)
    }

    /// Moves every due candidate on: deadlines, reminders, retries. Running a tick twice does
    /// nothing the second time, because each applied event moves `due_at` on.
    pub async fn tick(&self) -> Result<TickReport, AppError> {
        let now = self.now();
        let filter = CandidateFilter {
            due_before: Some(now),
            ..CandidateFilter::default()
        };
        let mut report = TickReport::default();
        let mut page = PageRequest {
            limit: 200,
            cursor: None,
            sort: None,
        };
        loop {
            let p = self.ports.candidates.list(&filter, &page).await?;
            for c in &p.items {
                report.examined += 1;
                if let Some(event) = schedule::due_event(c, now) {
                    match self.commit_event(c, &event, &Actor::Scheduler).await {
                        Ok(_) => report.applied.push((c.number.clone(), event.name())),
                        Err(AppError::Store(e)) => return Err(AppError::Store(e)),
                        // Lost a race or no longer due: the next tick looks again.
                        Err(e) => {
                            tracing::debug!(candidate = %c.number, error = %e, "tick skipped")
                        }
                    }
                }
            }
            match p.next {
                Some(next) => page.cursor = Some(next),
                None => break,
            }
        }
        Ok(report)
    }

    /// Runs one effect. At least once: every branch is safe to repeat with the same key.
    pub async fn run_effect(
        &self,
        snapshot: &Candidate,
        effect: &Effect,
    ) -> Result<(), EffectError> {
        match &effect.kind {
            EffectKind::Email { mail, recipient } => {
                // Tell people what is true when the message leaves, not when it was decided: a
                // later transition (a close-skipped right after a reject) supersedes it.
                let current = self.ports.candidates.get(&snapshot.id).await?;
                match current {
                    Some(c) if mail.still_true_in(c.state) => {}
                    other => {
                        tracing::info!(
                            candidate = %snapshot.number,
                            key = %effect.key,
                            mail = mail.as_str(),
                            now = ?other.map(|c| c.state),
                            "a later transition superseded this message; not sent"
                        );
                        return Ok(());
                    }
                }
                let messages = match self.render_mail(snapshot, effect, *mail, recipient).await? {
                    Addressed::To(messages) => messages,
                    Addressed::Nobody(who) => return self.undeliverable(snapshot, &who).await,
                };
                // A refused recipient does not stop the others of a group mail.
                let mut refused = Vec::new();
                for msg in messages {
                    match self.ports.mailer.send(&msg).await {
                        Ok(()) => {}
                        Err(MailError::RecipientRefused { recipient, message }) => {
                            refused.push((recipient, message))
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                match (recipient, refused.as_slice()) {
                    (_, []) => Ok(()),
                    (Recipient::CandidateUser, [(address, message)]) => {
                        self.user_address_refused(snapshot, address, message).await
                    }
                    // Someone from the directory: the effect fails (listed, logged) so a
                    // person fixes the address and retries it.
                    (_, refused) => Err(EffectError::Permanent(
                        refused
                            .iter()
                            .map(|(to, why)| format!("recipient {to} refused: {why}"))
                            .collect::<Vec<_>>()
                            .join("; "),
                    )),
                }
            }
            EffectKind::CreateTask(t) => {
                let task = Task {
                    id: effect.key.clone(),
                    candidate_id: snapshot.id.clone(),
                    candidate_number: snapshot.number.clone(),
                    kind: t.kind,
                    assignee: t.assignee.clone(),
                    group: t.group.clone(),
                    title: t.title.clone(),
                    instructions: t.instructions.clone(),
                    open: true,
                    created_at: self.now(),
                    closed_at: None,
                };
                Ok(self.ports.tasks.create_task(&task).await?)
            }
            EffectKind::CloseTasks { kinds } => Ok(self
                .ports
                .tasks
                .close_tasks(&snapshot.id, kinds, self.now())
                .await?),
            EffectKind::Revoke { attempt } => self.revoke(snapshot, effect, *attempt).await,
            EffectKind::Verify { call } => self.verify(snapshot, *call).await,
        }
    }

    /// The candidate an effect is about, as it is now: effects run after their transition,
    /// and others may have moved it since.
    async fn current(&self, snapshot: &Candidate) -> Result<Candidate, EffectError> {
        self.ports
            .candidates
            .get(&snapshot.id)
            .await?
            .ok_or_else(|| EffectError::Permanent(format!("candidate {} is gone", snapshot.id)))
    }

    /// Asks the vendor whether the right is gone and records the answer, only while this call
    /// is still the one the candidate waits for (a repeated delivery asks nobody).
    async fn verify(&self, snapshot: &Candidate, call: u32) -> Result<(), EffectError> {
        let still_wanted = |c: &Candidate| c.next_verify_call() == Some(call);
        let current = self.current(snapshot).await?;
        if !still_wanted(&current) {
            tracing::info!(candidate = %current.number, call, "verification no longer wanted; skipped");
            return Ok(());
        }
        let settle = current
            .revocation
            .verifying
            .as_ref()
            .is_some_and(|v| v.after == VerifyAfter::Removed && v.calls == 0);
        let result = self.ports.revoker.verify(&current, settle).await;
        tracing::info!(candidate = %current.number, call, ?result, "verification");
        self.record_outcome(
            snapshot,
            &Event::Verification(result),
            &Actor::Revocation,
            still_wanted,
        )
        .await
        .map(|_| ())
    }

    /// Why the candidate's rule, as stored now, keeps its user out (see
    /// [`usage::candidate_exclusion`]); `None` when nothing does or a sam admin overrode it.
    pub async fn exclusion(&self, c: &Candidate) -> Result<Option<String>, AppError> {
        self.exclusion_in(c, None).await
    }

    /// [`App::exclusion`] with the rules (and groups) a bulk action read once, instead of a
    /// read of the candidate's rule for each candidate.
    async fn exclusion_in(
        &self,
        c: &Candidate,
        known: Option<&RuleSnapshot>,
    ) -> Result<Option<String>, AppError> {
        if c.exclusion_override.is_some() || c.user.is_none() {
            return Ok(None);
        }
        let read;
        let rule = match known {
            Some(k) => k.rules.get(&c.rule.id),
            None => {
                read = self.ports.rules.rule(&c.rule.id).await?;
                read.as_ref()
            }
        };
        let Some(rule) = rule else {
            return Ok(None);
        };
        let ex = &rule.exclusions;
        if ex.users.is_empty()
            && ex.groups.is_empty()
            && !ex.vips
            && ex.provisioned_within_days.is_none()
        {
            return Ok(None);
        }
        let user_id = c.user.as_ref().map(|u| u.id.as_str()).unwrap_or_default();
        let user = self.ports.directory.user(user_id).await?;
        let fetched;
        let groups: &[Group] = match (ex.groups.is_empty(), known) {
            (true, _) => &[],
            (false, Some(k)) => &k.groups,
            (false, None) => {
                fetched = self.ports.directory.groups().await?;
                &fetched
            }
        };
        Ok(usage::candidate_exclusion(
            c,
            Some(rule),
            user.as_ref(),
            groups,
            self.now(),
        ))
    }

    /// Every rule, and the groups when a rule excludes by group: what a bulk action's
    /// exclusion checks need, read once for all its candidates.
    async fn rule_snapshot(&self) -> Result<RuleSnapshot, AppError> {
        let rules: HashMap<String, Rule> = self
            .ports
            .rules
            .rules()
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        let groups = if rules.values().any(|r| !r.exclusions.groups.is_empty()) {
            self.ports.directory.groups().await?
        } else {
            Vec::new()
        };
        Ok(RuleSnapshot { rules, groups })
    }

    /// Reclaims again a right that came back after closing: a new Ready candidate, linked to
    /// the old one (`reopened_from`), and the old one marked as reopened. The old candidate's
    /// write decides (a second Reopen, or an Accept meanwhile, is refused); a retry after a
    /// failure between the two writes makes the missing candidate.
    pub async fn reopen(&self, id: &str, actor: &Actor) -> Result<Candidate, AppError> {
        if !actor.is_sam_admin() {
            return Err(AppError::Forbidden(
                "Reopen may only be done by a sam admin".into(),
            ));
        }
        let old = self.candidate(id).await?;
        let new_id = format!("{}-again-{}", old.id, old.version + 1);
        if let Some(Reappearance::Reopened { candidate_id, .. }) = old
            .verification
            .as_ref()
            .and_then(|v| v.resolution.as_ref())
        {
            if let Some(existing) = self.ports.candidates.get(candidate_id).await? {
                return Err(AppError::Conflict(format!(
                    "{} was already reopened as {}",
                    old.number, existing.number
                )));
            }
            let again = self.reopened(&old, candidate_id, None).await?;
            return Ok(again);
        }
        // Refused (not reappeared, decided already, not a sam admin) before a number is spent.
        apply(
            &old,
            &Event::Reopen {
                candidate_id: new_id.clone(),
                candidate_number: String::new(),
            },
            actor,
            self.now(),
        )?;
        if let Some(key) = usage::candidate_key(&old) {
            if let Some(open) = self
                .open_candidates()
                .await?
                .into_iter()
                .find(|c| usage::candidate_key(c).as_deref() == Some(key.as_str()))
            {
                return Err(AppError::Conflict(format!(
                    "{} already has an open candidate for this right: {}",
                    old.user.as_ref().map_or("", |u| u.id.as_str()),
                    open.number
                )));
            }
        }
        let number = self.ports.candidates.allocate_numbers(1).await?;
        let number = intake::format_number(number);
        let event = Event::Reopen {
            candidate_id: new_id.clone(),
            candidate_number: number.clone(),
        };
        self.commit_event(&old, &event, actor).await?;
        self.reopened(&old, &new_id, Some(number)).await
    }

    /// The new candidate for a reopened one.
    async fn reopened(
        &self,
        old: &Candidate,
        new_id: &str,
        number: Option<String>,
    ) -> Result<Candidate, AppError> {
        let number = match number {
            Some(n) => n,
            None => match old
                .verification
                .as_ref()
                .and_then(|v| v.resolution.as_ref())
            {
                Some(Reappearance::Reopened {
                    candidate_number, ..
                }) => candidate_number.clone(),
                _ => intake::format_number(self.ports.candidates.allocate_numbers(1).await?),
            },
        };
        let now = self.now();
        let mut c = old.clone();
        c.id = new_id.to_string();
        c.number = number;
        c.state = State::Ready;
        c.version = 0;
        c.opened_at = now;
        c.updated_at = now;
        c.state_since = Some(now);
        c.closed_at = None;
        c.asked_at = None;
        c.deadline_at = None;
        c.due_at = None;
        c.reminders_sent = 0;
        c.revocation = Default::default();
        c.attention = None;
        c.attention_from = None;
        c.work_notes = Vec::new();
        c.verification = None;
        c.reopened_from = Some(old.id.clone());
        c.assigned_to = None;
        match self.ports.candidates.insert(std::slice::from_ref(&c)).await {
            Ok(()) | Err(StoreError::Duplicate { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(c)
    }

    async fn revoke(
        &self,
        snapshot: &Candidate,
        effect: &Effect,
        attempt: u32,
    ) -> Result<(), EffectError> {
        // Only run if this attempt is still the one the candidate waits for: a repeat of the
        // effect, or a candidate closed meanwhile, must not call the vendor again.
        let still_wanted = |c: &Candidate| {
            c.state == State::AwaitingRevocation && c.revocation.attempts + 1 == attempt
        };
        let current = self.current(snapshot).await?;
        if !still_wanted(&current) {
            tracing::info!(candidate = %current.number, attempt, "revocation no longer wanted; skipped");
            return Ok(());
        }
        // Checked again before every removal: the user may have become a VIP, or the rule
        // changed, since the candidate was reclaimed.
        let excluded = match self.exclusion(&current).await {
            Ok(x) => x,
            Err(AppError::Store(e)) => return Err(e.into()),
            Err(e) => return Err(EffectError::Permanent(e.to_string())),
        };
        if let Some(reason) = excluded {
            tracing::warn!(candidate = %current.number, %reason, "the rule excludes the user; not removed");
            let held = Event::ExclusionHeld { reason };
            return self
                .record_outcome(snapshot, &held, &Actor::Revocation, still_wanted)
                .await
                .map(|_| ());
        }
        let result = self
            .known_assignee(self.ports.revoker.revoke(&current, &effect.key).await)
            .await?;
        tracing::info!(candidate = %current.number, attempt, ?result, "revocation outcome");
        let event = Event::Revocation(result);
        self.record_outcome(snapshot, &event, &Actor::Revocation, still_wanted)
            .await
            .map(|_| ())
    }

    /// A manual task's assignee must be someone Reclaim knows: a plugin configured with a
    /// name that is not a user id ("Service Desk") would leave the task with nobody. The task
    /// goes to the assignment group instead, and its instructions say why.
    async fn known_assignee(
        &self,
        result: RevocationResult,
    ) -> Result<RevocationResult, EffectError> {
        let RevocationResult::ManualTask {
            title,
            instructions,
            assignee_hint: Some(hint),
        } = result
        else {
            return Ok(result);
        };
        if self.ports.directory.user(&hint).await?.is_some() {
            return Ok(RevocationResult::ManualTask {
                title,
                instructions,
                assignee_hint: Some(hint),
            });
        }
        tracing::warn!(assignee = %hint, "the plugin named an assignee who is not a user; the task goes to the assignment group");
        Ok(RevocationResult::ManualTask {
            title,
            instructions: format!(
                "{instructions}\n\n(The plugin named '{hint}' as the assignee, who is not a \
                 user of Reclaim; the task went to the assignment group.)"
            ),
            assignee_hint: None,
        })
    }

    /// Records what the outside world said (a plugin's outcome, a mail server's refusal) on
    /// the candidate as it is now: conditional on the version read, re-read and re-applied
    /// when someone wrote meanwhile (a work note). `false` when `wanted` no longer holds.
    async fn record_outcome(
        &self,
        snapshot: &Candidate,
        event: &Event,
        actor: &Actor,
        wanted: impl Fn(&Candidate) -> bool,
    ) -> Result<bool, EffectError> {
        for _ in 0..5 {
            let current = self.current(snapshot).await?;
            if !wanted(&current) {
                return Ok(false);
            }
            match self.commit_event(&current, event, actor).await {
                Ok(_) => return Ok(true),
                Err(AppError::Conflict(_)) => continue,
                Err(AppError::Store(e)) => return Err(e.into()),
                Err(e) => return Err(EffectError::Permanent(e.to_string())),
            }
        }
        Err(EffectError::Retryable(format!(
            "candidate {} kept changing while recording '{}'",
            snapshot.number,
            event.name()
        )))
    }

    /// The mail server refused the candidate's user for good: the candidate waits in
    /// Attention Required for a person to fix the address. A closed candidate cannot wait, so
    /// then the effect fails with the server's answer (listed with the failed effects).
    async fn user_address_refused(
        &self,
        snapshot: &Candidate,
        address: &str,
        message: &str,
    ) -> Result<(), EffectError> {
        tracing::warn!(candidate = %snapshot.number, recipient = address, answer = message, "the mail server refused the user's address");
        let event = Event::MailRefused {
            recipient: address.to_string(),
            message: message.to_string(),
        };
        // Only while the address is still the one refused.
        let same_address = |c: &Candidate| {
            c.user
                .as_ref()
                .and_then(|u| u.email())
                .is_some_and(|e| e.eq_ignore_ascii_case(address))
        };
        self.hold_for_mail(
            snapshot,
            &event,
            same_address,
            format!("recipient {address} refused: {message}"),
        )
        .await
    }

    /// Puts the open candidate in Attention Required for a mail event, once (an effect may run
    /// twice: not again while it already waits for the same reason) and only while
    /// `still_applies`. A closed candidate cannot wait: the effect fails with `failure`
    /// (listed with the failed effects).
    async fn hold_for_mail(
        &self,
        snapshot: &Candidate,
        event: &Event,
        still_applies: impl Fn(&Candidate) -> bool,
        failure: String,
    ) -> Result<(), EffectError> {
        let why = event.mail_attention().unwrap_or_default();
        let wanted = |c: &Candidate| {
            let told = c.state == State::AttentionRequired
                && c.attention.as_deref().is_some_and(|a| a.contains(&why));
            !c.state.is_closed() && still_applies(c) && !told
        };
        if self
            .record_outcome(snapshot, event, &Actor::Mail, wanted)
            .await?
        {
            return Ok(());
        }
        let closed = self
            .ports
            .candidates
            .get(&snapshot.id)
            .await?
            .is_none_or(|c| c.state.is_closed());
        if closed {
            return Err(EffectError::Permanent(format!(
                "{failure} (candidate {} is closed)",
                snapshot.number
            )));
        }
        Ok(())
    }

    fn link(&self, c: &Candidate, user_id: &str, action: LinkAction, expires: Timestamp) -> String {
        let token = self.ports.signer.sign(&LinkClaims {
            candidate_id: c.id.clone(),
            user_id: user_id.to_string(),
            action,
            version: c.version,
            expires_at: expires,
        });
        format!(
            "{}/respond/{token}",
            self.settings.public_url.trim_end_matches('/')
        )
    }

    /// Who a group's mail goes to. A keep request never goes to the person who made it; when
    /// nobody else is in the group it goes to the sam admins (the same rule as
    /// [`StandIn`], which lets them decide it).
    async fn deciders(
        &self,
        group: &reclaim_workflow::Group,
        kind: reclaim_workflow::MailKind,
        requester: Option<&str>,
    ) -> Result<Vec<reclaim_workflow::User>, EffectError> {
        let keep_request = kind == reclaim_workflow::MailKind::KeepRequest;
        let members: Vec<&str> = if keep_request {
            group.deciders_besides(requester).collect()
        } else {
            group.members.iter().map(String::as_str).collect()
        };
        let mut out = Vec::new();
        for m in members {
            if let Some(u) = self.ports.directory.user(m).await? {
                out.push(u);
            }
        }
        // The same rule as `StandIn::for_group`: nobody besides the requester is in the group.
        if keep_request && group.deciders_besides(requester).next().is_none() {
            out = self
                .ports
                .directory
                .users()
                .await?
                .into_iter()
                .filter(|u| u.sam_admin && Some(u.id.as_str()) != requester)
                .collect();
        }
        Ok(out)
    }

    /// The people a group's message goes to who have an address: (id, name, email).
    async fn group_people(
        &self,
        c: &Candidate,
        gid: &str,
        kind: reclaim_workflow::MailKind,
    ) -> Result<Vec<(String, String, String)>, EffectError> {
        let Some(group) = self.ports.directory.group(gid).await? else {
            return Err(EffectError::Permanent(format!(
                "assignment group {gid} not found"
            )));
        };
        let requester = c.user.as_ref().map(|u| u.id.as_str());
        let deciders = self.deciders(&group, kind, requester).await?;
        Ok(deciders
            .into_iter()
            .filter_map(|u| {
                let e = u.email.clone().filter(|e| !e.trim().is_empty())?;
                Some((u.id, u.display_name, e))
            })
            .collect())
    }

    /// Renders the messages of one email effect (one per recipient for group mail, so each
    /// approver gets links that name them), or says who had no address. A task's assignee
    /// without an address (or unknown) is replaced by the candidate's assignment group.
    async fn render_mail(
        &self,
        c: &Candidate,
        effect: &Effect,
        kind: reclaim_workflow::MailKind,
        recipient: &Recipient,
    ) -> Result<Addressed, EffectError> {
        let mut people: Vec<(String, String, String)> = Vec::new(); // (id, name, email)
        let nobody = match recipient {
            Recipient::CandidateUser => {
                if let Some(u) = &c.user {
                    if let Some(e) = u.email() {
                        people.push((u.id.clone(), u.display_name.clone(), e.to_string()));
                    }
                }
                match &c.user {
                    Some(u) => format!("the user {}", u.id),
                    None => "the candidate's user (none recorded)".to_string(),
                }
            }
            Recipient::Person(id) => {
                if let Some(u) = self.ports.directory.user(id).await? {
                    if let Some(e) = u.email.clone().filter(|e| !e.trim().is_empty()) {
                        people.push((u.id, u.display_name, e));
                    }
                }
                if let (true, Some(gid)) = (people.is_empty(), &c.assignment_group) {
                    people = self.group_people(c, gid, kind).await?;
                    tracing::info!(candidate = %c.number, key = %effect.key, assignee = %id, group = %gid, "the assignee has no address; sent to the assignment group");
                }
                match &c.assignment_group {
                    Some(gid) => format!("{id} or anyone in group {gid}"),
                    None => id.clone(),
                }
            }
            Recipient::Group(gid) => {
                people = self.group_people(c, gid, kind).await?;
                format!("anyone in group {gid}")
            }
        };
        if people.is_empty() {
            return Ok(Addressed::Nobody(nobody));
        }
        let expires = c
            .deadline_at
            .unwrap_or_else(|| self.now() + Duration::days(self.settings.link_ttl_days));
        let approver_expires = self.now() + Duration::days(self.settings.link_ttl_days);
        let many = people.len() > 1;
        let mut out = Vec::new();
        for (id, name, email) in people {
            use reclaim_workflow::MailKind as K;
            let (yes, no) = match kind {
                K::AskUser | K::Reminder => (
                    Some(self.link(c, &id, LinkAction::Keep, expires)),
                    Some(self.link(c, &id, LinkAction::Remove, expires)),
                ),
                K::KeepRequest => (
                    Some(self.link(c, &id, LinkAction::Approve, approver_expires)),
                    Some(self.link(c, &id, LinkAction::Reject, approver_expires)),
                ),
                _ => (None, None),
            };
            let ctx = MailContext {
                kind,
                recipient_name: name,
                candidate: c,
                yes_url: yes,
                no_url: no,
                candidate_url: format!(
                    "{}/ui/candidates/{}",
                    self.settings.public_url.trim_end_matches('/'),
                    c.id
                ),
                currency: &self.settings.currency,
            };
            let rendered = self
                .renderer
                .render(&ctx)
                .map_err(|e| EffectError::Permanent(format!("template: {e}")))?;
            let key = if many {
                format!("{}:{id}", effect.key)
            } else {
                effect.key.clone()
            };
            out.push(OutgoingMail {
                key,
                to: vec![email],
                subject: rendered.subject,
                text: rendered.text,
                html: rendered.html,
            });
        }
        Ok(Addressed::To(out))
    }

    /// A message with nobody to go to: the open candidate waits in Attention Required saying
    /// whose address is missing (listed on the Alerts page); for a closed one the effect fails
    /// with that reason (listed with the failed effects). Never dropped in silence.
    async fn undeliverable(&self, snapshot: &Candidate, who: &str) -> Result<(), EffectError> {
        tracing::warn!(candidate = %snapshot.number, recipient = who, "no email address to send to");
        let event = Event::MailUndeliverable {
            recipient: who.to_string(),
        };
        let failure = event.mail_attention().unwrap_or_default();
        self.hold_for_mail(snapshot, &event, |_| true, failure)
            .await
    }

    /// What a link shows on GET: never changes anything. The link is used up (`already`)
    /// once the candidate has moved to another state since the link's version.
    pub async fn link_view(&self, token: &str) -> Result<LinkView, LinkProblem> {
        let claims = self.ports.signer.verify(token, self.now())?;
        let candidate = match self.ports.candidates.get(&claims.candidate_id).await {
            Ok(Some(c)) => c,
            Ok(None) => return Err(LinkProblem::Gone),
            Err(e) => return Err(LinkProblem::App(e.into())),
        };
        let already = if candidate.version != claims.version {
            let history = self
                .ports
                .candidates
                .history(&candidate.id)
                .await
                .map_err(AppError::from)?;
            // Only a move to another state uses a link up: a work note, an assignment or a
            // reminder bumps the version too, and must not kill the links already sent.
            history
                .into_iter()
                .find(|h| h.version > claims.version && h.from != h.to)
        } else {
            None
        };
        Ok(LinkView {
            claims,
            candidate,
            already,
        })
    }

    /// The POST behind a link's button: answers, approves or rejects, exactly once. A user's
    /// answer reads the candidate once: the write is conditional on that read, and the page
    /// shown afterwards is built from the committed change.
    pub async fn link_answer(
        &self,
        token: &str,
        via: Via,
        comment: Option<String>,
    ) -> Result<LinkAnswer, LinkProblem> {
        let view = self.link_view(token).await?;
        if view.already.is_some() {
            return Ok(LinkAnswer {
                view,
                used_before: true,
            });
        }
        let claims = &view.claims;
        let actor = match claims.action {
            LinkAction::Keep | LinkAction::Remove => {
                Actor::Person(Principal::user(&claims.user_id))
            }
            LinkAction::Approve | LinkAction::Reject => {
                match self.principal(&claims.user_id).await? {
                    Some(p) => Actor::Person(p),
                    None => {
                        return Err(LinkProblem::App(AppError::Forbidden(
                            "this link's approver is no longer known".into(),
                        )))
                    }
                }
            }
        };
        let event = match claims.action {
            LinkAction::Keep => Event::Answer {
                keep: true,
                comment,
                via,
            },
            LinkAction::Remove => Event::Answer {
                keep: false,
                comment,
                via,
            },
            LinkAction::Approve => Event::Approve { comment, via },
            LinkAction::Reject => Event::Reject { comment, via },
        };
        // Conditional on the version we just looked at (edits since the link was sent are
        // fine; a concurrent answer is not).
        match self.commit_event(&view.candidate, &event, &actor).await {
            // The state moved with this answer, so it is the first move since the link was
            // sent (the view found none): the entry that used the link up.
            Ok((candidate, entry)) => {
                return Ok(LinkAnswer {
                    view: LinkView {
                        claims: view.claims,
                        candidate,
                        already: Some(entry),
                    },
                    used_before: false,
                })
            }
            // Someone answered between the view and the write: show what happened.
            Err(AppError::Stale { .. } | AppError::Conflict(_)) => {}
            Err(AppError::Refused(r))
                if r.reason == reclaim_workflow::RefusalReason::NotAllowedInState => {}
            Err(e) => return Err(e.into()),
        }
        Ok(LinkAnswer {
            view: self.link_view(token).await?,
            used_before: false,
        })
    }

    /// Open tasks for a person and their groups.
    pub async fn my_tasks(&self, p: &Principal) -> Result<Vec<Task>, AppError> {
        Ok(self.ports.tasks.open_tasks(&p.user_id, &p.groups).await?)
    }
}

/// Who an email effect reaches.
enum Addressed {
    To(Vec<OutgoingMail>),
    /// Nobody had an address; names who it was for.
    Nobody(String),
}

fn field_error(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}
