//! Ports: the narrow traits adapters implement (SQLite and DynamoDB stores, outbox and SES
//! mailers, the plugin host). The core never does I/O itself; the application layer hands it
//! data read through these traits and writes back what the core decided.

use crate::effect::Effect;
use crate::event::{RevocationResult, VerifyResult};
use crate::model::{
    AppliesTo, Candidate, Group, HistoryEntry, Justification, Rule, State, Task, Timestamp, User,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A storage failure, classified so callers know whether trying again can help.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Someone else moved the candidate first (optimistic concurrency lost).
    #[error("candidate {id} was changed by someone else (expected version {expected})")]
    Conflict { id: String, expected: u64 },
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    #[error("{kind} {id} already exists")]
    Duplicate { kind: &'static str, id: String },
    /// The backend is busy or unreachable: retryable.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be read back: permanent, needs a person.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The backend refused the request itself (missing table, denied permission, a request it
    /// calls invalid): trying again cannot help, a person must fix the deployment.
    #[error("store refused the request: {0}")]
    Refused(String),
    /// The write would make an item larger than the backend stores (DynamoDB's 400 KB item
    /// limit): permanent, since the same change is refused again however often it is tried;
    /// the caller can only write less.
    #[error("too large to store: {0}")]
    TooLarge(String),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Filters for listing candidates; every field narrows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CandidateFilter {
    #[serde(default)]
    pub state: Option<State>,
    #[serde(default)]
    pub justification: Option<Justification>,
    #[serde(default)]
    pub applies_to: Option<AppliesTo>,
    #[serde(default)]
    pub publisher: Option<String>,
    #[serde(default)]
    pub product: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    /// Only candidates the scheduler must look at by this time.
    #[serde(default)]
    pub due_before: Option<Timestamp>,
    /// Part of a word of the software's publisher or product ("acrobat" finds Adobe Acrobat
    /// Pro), ignoring case.
    #[serde(default)]
    pub software_text: Option<String>,
    /// Part of the user's id, name or email, ignoring case.
    #[serde(default)]
    pub user_text: Option<String>,
    /// Only candidates that are an alert by this time ([`crate::usage::alert_from`]).
    #[serde(default)]
    pub alert_before: Option<Timestamp>,
}

/// Whether `needle` occurs in `hay`, ignoring ASCII case: the one text match every store
/// applies (SQLite's `LIKE` ignores the same case), so a search finds the same on both.
pub fn contains_text(hay: &str, needle: &str) -> bool {
    let needle = needle.trim();
    needle.is_empty()
        || hay
            .to_ascii_lowercase()
            .contains(&needle.to_ascii_lowercase())
}

/// The words a software search looks in.
pub fn software_haystack(publisher: &str, product: &str) -> String {
    format!("{publisher} {product}")
}

/// Whether a person matches a user search (id, name or email).
pub fn user_matches(id: &str, name: &str, email: Option<&str>, text: &str) -> bool {
    contains_text(id, text)
        || contains_text(name, text)
        || email.is_some_and(|e| contains_text(e, text))
}

impl CandidateFilter {
    /// The same predicate every backend applies, for backends that filter in memory and for
    /// tests that check them.
    pub fn matches(&self, c: &Candidate) -> bool {
        self.state.is_none_or(|s| c.state == s)
            && self.justification.is_none_or(|j| c.justification == j)
            && self.applies_to.is_none_or(|a| c.applies_to == a)
            && self
                .publisher
                .as_deref()
                .is_none_or(|p| c.software.publisher.eq_ignore_ascii_case(p))
            && self
                .product
                .as_deref()
                .is_none_or(|p| c.software.product.eq_ignore_ascii_case(p))
            && self
                .group
                .as_deref()
                .is_none_or(|g| c.assignment_group.as_deref() == Some(g))
            && self
                .user
                .as_deref()
                .is_none_or(|u| c.user.as_ref().is_some_and(|x| x.id == u))
            && self
                .due_before
                .is_none_or(|t| c.due_at.is_some_and(|d| d <= t))
            && self.software_text.as_deref().is_none_or(|t| {
                contains_text(
                    &software_haystack(&c.software.publisher, &c.software.product),
                    t,
                )
            })
            && self
                .alert_before
                .is_none_or(|t| crate::usage::alert_from(c).is_some_and(|a| a <= t))
            && self.user_text.as_deref().is_none_or(|t| {
                c.user
                    .as_ref()
                    .is_some_and(|u| user_matches(&u.id, &u.display_name, u.email.as_deref(), t))
            })
    }
}

/// A column the list can be ordered by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SortKey {
    Number,
    Software,
    User,
    InactiveDays,
    Deadline,
    Stage,
    Savings,
}

/// One candidate's place in an order: every store sorts by exactly these values (SQLite keeps
/// them as indexed columns, derived from here), so both give the same order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SortValue {
    Int(i64),
    Text(String),
}

impl SortKey {
    pub const ALL: [SortKey; 7] = [
        SortKey::Number,
        SortKey::Software,
        SortKey::User,
        SortKey::InactiveDays,
        SortKey::Deadline,
        SortKey::Stage,
        SortKey::Savings,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Number => "number",
            SortKey::Software => "software",
            SortKey::User => "user",
            SortKey::InactiveDays => "inactive-days",
            SortKey::Deadline => "deadline",
            SortKey::Stage => "stage",
            SortKey::Savings => "savings",
        }
    }

    pub fn parse(s: &str) -> Option<SortKey> {
        SortKey::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The value this candidate sorts by. Missing values sort last going up: no user after
    /// every name, no deadline after the latest, unknown inactivity before zero days (the
    /// least reason to reclaim).
    pub fn value(self, c: &Candidate) -> SortValue {
        match self {
            SortKey::Number => SortValue::Text(c.number.clone()),
            SortKey::Software => SortValue::Text(
                format!("{} {}", c.software.product, c.software.publisher).to_ascii_lowercase(),
            ),
            SortKey::User => SortValue::Text(c.user.as_ref().map_or_else(
                || "\u{10FFFF}".to_string(),
                |u| {
                    let name = if u.display_name.trim().is_empty() {
                        &u.id
                    } else {
                        &u.display_name
                    };
                    name.to_ascii_lowercase()
                },
            )),
            SortKey::InactiveDays => SortValue::Int(c.inactive_days.map_or(-1, i64::from)),
            SortKey::Deadline => SortValue::Int(
                c.deadline_at
                    .map_or(i64::MAX, |d| d.timestamp_nanos_opt().unwrap_or(i64::MAX)),
            ),
            SortKey::Stage => SortValue::Text(c.state.as_str().to_string()),
            // On the basis the list shows it: a monthly price counts twelve times.
            SortKey::Savings => SortValue::Int(c.saving().cents),
        }
    }
}

/// An order for a list: a column, up or down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

impl Sort {
    /// Compares two candidates in this order, the number breaking ties so the order is total.
    pub fn compare(&self, a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
        let o = self
            .key
            .value(a)
            .cmp(&self.key.value(b))
            .then_with(|| a.number.cmp(&b.number));
        if self.descending {
            o.reverse()
        } else {
            o
        }
    }
}

/// Where a page of a sorted list starts: just after, or just before, a candidate's place in
/// the order (its sort value and number).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Keyset {
    After(SortValue, String),
    Before(SortValue, String),
}

/// One page of a sorted list cut from all the matching candidates in memory, for a store that
/// has no index for the order (it reads the whole, bounded, result): the page, and whether
/// there is more after it and before it.
pub fn page_in_memory(
    mut items: Vec<Candidate>,
    sort: Sort,
    at: Option<&Keyset>,
    limit: usize,
) -> (Vec<Candidate>, bool, bool) {
    items.sort_by(|a, b| sort.compare(a, b));
    let place = |c: &Candidate, v: &SortValue, n: &str| {
        let o = sort
            .key
            .value(c)
            .cmp(v)
            .then_with(|| c.number.as_str().cmp(n));
        if sort.descending {
            o.reverse()
        } else {
            o
        }
    };
    let limit = limit.max(1);
    match at {
        None => {
            let more = items.len() > limit;
            items.truncate(limit);
            (items, more, false)
        }
        Some(Keyset::After(v, n)) => {
            let start = items.partition_point(|c| place(c, v, n).is_le());
            let more = items.len() - start > limit;
            let page = items.drain(start..).take(limit).collect();
            (page, more, start > 0)
        }
        Some(Keyset::Before(v, n)) => {
            let end = items.partition_point(|c| place(c, v, n).is_lt());
            let start = end.saturating_sub(limit);
            let later = end < items.len();
            let page = items.drain(start..end).collect();
            (page, later, start > 0)
        }
    }
}

/// How many candidates match, counted up to a bound so counting never costs more than a
/// bounded read: `more` says there are more than `n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Count {
    pub n: u64,
    pub more: bool,
}

/// Cursor pagination: pass back `next` (or `prev`) to get the following (or preceding) page.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    pub limit: u32,
    pub cursor: Option<String>,
    /// `None`: the store's own order (the cheapest; what the scheduler and exports use). A
    /// cursor belongs to the order it was made in; another order refuses it.
    #[serde(default)]
    pub sort: Option<Sort>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
    /// The page before this one, where the store can go back (SQLite always; DynamoDB in a
    /// sorted list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
}

/// One transition to persist: the new candidate written only if the stored version is still
/// `expected_version`, together with its history entry and effects (all or nothing).
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub expected_version: u64,
    pub candidate: Candidate,
    pub entry: HistoryEntry,
    pub effects: Vec<Effect>,
}

/// Reading candidates.
#[async_trait]
pub trait CandidateRead: Send + Sync {
    /// By id or by number (`RC0000042`).
    async fn get(&self, id: &str) -> Result<Option<Candidate>, StoreError>;
    /// A store may leave each candidate's `work_notes` out of a list (DynamoDB keeps notes in
    /// items of their own, which a list page does not read, so a page costs the same however
    /// much was written on its candidates); `get` always has them.
    async fn list(
        &self,
        filter: &CandidateFilter,
        page: &PageRequest,
    ) -> Result<Page<Candidate>, StoreError>;
    /// Every candidate, a page at a time in no promised order, read from what the store
    /// holds of the candidates themselves rather than from any order kept beside them: the
    /// rebuild reads this, so it also finds candidates whose order items it has yet to write.
    /// `page.sort` is not used. Unlike a list, this may read the whole table: only the
    /// operator's rebuild calls it.
    async fn every(&self, page: &PageRequest) -> Result<Page<Candidate>, StoreError> {
        let page = PageRequest {
            sort: None,
            ..page.clone()
        };
        self.list(&CandidateFilter::default(), &page).await
    }
    /// How many match the filter, counted up to `up_to` (a store may count fewer, and says so
    /// with `more`).
    async fn count(&self, filter: &CandidateFilter, up_to: u64) -> Result<Count, StoreError>;
    /// The running savings totals of a scope (`savings::ALL_SCOPE`, or a group's
    /// `savings::group_scope`), kept as transitions commit, so a report reads one record
    /// instead of every candidate. `None`: this store keeps no totals and the caller sums the
    /// candidates.
    async fn savings(&self, _scope: &str) -> Result<Option<crate::savings::Savings>, StoreError> {
        Ok(None)
    }
    /// The audit trail, oldest first.
    async fn history(&self, id: &str) -> Result<Vec<HistoryEntry>, StoreError>;
    /// Every candidate's history entries made at or after `from` and before `to`, in time
    /// order (then candidate, then version), a page at a time: what an auditor exports for a
    /// period. `page.sort` is not used.
    async fn history_between(
        &self,
        from: Timestamp,
        to: Timestamp,
        page: &PageRequest,
    ) -> Result<Page<TrailEntry>, StoreError>;
}

/// One entry of an audit trail with its candidate's number, for exports across candidates.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrailEntry {
    pub number: String,
    #[serde(flatten)]
    pub entry: HistoryEntry,
}

/// Writing candidates.
#[async_trait]
pub trait CandidateWrite: Send + Sync {
    /// Stores new candidates (all or nothing); a duplicate id is refused.
    async fn insert(&self, candidates: &[Candidate]) -> Result<(), StoreError>;
    /// Reserves `count` consecutive candidate numbers and returns the first.
    async fn allocate_numbers(&self, count: u32) -> Result<u64, StoreError>;
    /// One atomic, conditional write of a transition. Work notes are append-only and only
    /// `Event::WorkNote` adds one, so a store may write just the notes the transition added:
    /// a candidate read from `list` without its notes commits without losing any.
    async fn commit(&self, change: &Change) -> Result<(), StoreError>;
    /// For a store whose savings totals follow its change stream (DynamoDB: a transition stays
    /// one write, and the stream's reader calls this with a batch's changes, in order):
    /// applies what each stored version of a candidate changed, at most once per candidate
    /// version, so a redelivered record changes nothing. A store that keeps its totals in the
    /// transition's own write does nothing here.
    async fn record_savings(&self, _changes: &[SavingsChange]) -> Result<(), StoreError> {
        Ok(())
    }
    /// For a store that keeps each candidate's place in the list orders apart from the
    /// candidate (DynamoDB's order items, written with every candidate write): writes them
    /// again from `candidates` as read, except where a later version already did. The
    /// rebuild calls it, so candidates stored before a release that added an order are sorted
    /// too. A store whose orders are columns of the candidate's own row does nothing. Returns
    /// how many candidates were written.
    async fn reindex(&self, _candidates: &[Candidate]) -> Result<u64, StoreError> {
        Ok(0)
    }
}

/// What one stored version of a candidate adds to the savings: a store that keeps running
/// totals apart from its commits (DynamoDB, from its stream) records what it last added per
/// candidate and applies the difference, so a lost or repeated record is repaired by the next.
#[derive(Clone, Debug, PartialEq)]
pub struct SavingsChange {
    pub candidate_id: String,
    pub version: u64,
    /// The contribution and the group it counts in; `None` when it adds nothing.
    pub adds: Option<SavingsPart>,
}

/// A candidate's contribution and its group.
pub type SavingsPart = (crate::savings::Contribution, Option<String>);

/// The cells each scope gains or loses between two contributions.
pub type ScopeCells = std::collections::BTreeMap<String, std::collections::BTreeMap<String, i64>>;

impl SavingsChange {
    /// What `c`, as stored, adds.
    pub fn of(c: &Candidate) -> SavingsChange {
        SavingsChange {
            candidate_id: c.id.clone(),
            version: c.version,
            adds: crate::savings::Contribution::of(c).map(|x| (x, c.assignment_group.clone())),
        }
    }

    /// The cells each scope (`savings::ALL_SCOPE` and the groups') gains or loses going from
    /// `recorded` to this, zeros left out: empty when nothing changes in the savings.
    pub fn deltas(&self, recorded: Option<&SavingsPart>) -> ScopeCells {
        use crate::savings::{group_scope, ALL_SCOPE};
        let mut out = ScopeCells::new();
        for (part, sign) in [(recorded, -1), (self.adds.as_ref(), 1)] {
            if let Some((x, group)) = part {
                for scope in [ALL_SCOPE.to_string(), group_scope(group.as_deref())] {
                    let cells = out.entry(scope).or_default();
                    for (k, v) in x.cells(sign) {
                        *cells.entry(k).or_default() += v;
                    }
                }
            }
        }
        for cells in out.values_mut() {
            cells.retain(|_, v| *v != 0);
        }
        out.retain(|_, cells| !cells.is_empty());
        out
    }
}

/// The candidate store: both halves.
pub trait CandidateStore: CandidateRead + CandidateWrite {}
impl<T: CandidateRead + CandidateWrite> CandidateStore for T {}

/// Tasks for people: approvals, ITIL users' answers, manual removals.
#[async_trait]
pub trait TaskStore: Send + Sync {
    /// Creates the task unless one with the same id exists (effects run at least once).
    async fn create_task(&self, task: &Task) -> Result<(), StoreError>;
    async fn close_tasks(
        &self,
        candidate_id: &str,
        kinds: &[crate::model::TaskKind],
        at: Timestamp,
    ) -> Result<(), StoreError>;
    /// Open tasks assigned to this person or to any of these groups.
    async fn open_tasks(&self, user_id: &str, groups: &[String]) -> Result<Vec<Task>, StoreError>;
    async fn tasks_for(&self, candidate_id: &str) -> Result<Vec<Task>, StoreError>;
}

/// Users and assignment groups.
#[async_trait]
pub trait Directory: Send + Sync {
    async fn user(&self, id: &str) -> Result<Option<User>, StoreError>;
    async fn users(&self) -> Result<Vec<User>, StoreError>;
    async fn put_user(&self, user: &User) -> Result<(), StoreError>;
    async fn group(&self, id: &str) -> Result<Option<Group>, StoreError>;
    async fn groups(&self) -> Result<Vec<Group>, StoreError>;
    async fn put_group(&self, group: &Group) -> Result<(), StoreError>;
}

/// Reclamation rules.
#[async_trait]
pub trait RuleStore: Send + Sync {
    async fn rule(&self, id: &str) -> Result<Option<Rule>, StoreError>;
    async fn rules(&self) -> Result<Vec<Rule>, StoreError>;
    async fn put_rule(&self, rule: &Rule) -> Result<(), StoreError>;
    /// Removes a rule; `false` when there was none. Candidates keep their snapshot of it, so
    /// open work goes on as it was started.
    async fn delete_rule(&self, id: &str) -> Result<bool, StoreError>;
}

/// A signed-in browser session, kept by the server so that signing out, or a sam admin
/// signing everyone out, ends it at once on every instance; the browser's cookie only names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// SHA-256 (hex) of the secret in the browser's cookie: a copy of the store cannot be
    /// replayed as cookies.
    pub id: String,
    pub user_id: String,
    /// How the person proved who they are (`oidc`, `token`, `demo`), for the audit.
    pub method: String,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// The earlier of the idle and the absolute end; after it the session is gone, whatever
    /// the store still holds.
    pub expires_at: Timestamp,
}

/// A sign-in sent to the identity provider that has not come back yet. It is taken once: a
/// replayed `state` finds nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSignIn {
    /// SHA-256 (hex) of the `state` parameter.
    pub id: String,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier for the token request.
    pub pkce_verifier: String,
    /// The workspace path to return to.
    pub next: String,
    pub expires_at: Timestamp,
}

/// Workspace sessions and sign-ins in progress.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session (and may drop expired ones).
    async fn put_session(&self, session: &SessionRecord) -> Result<(), StoreError>;
    /// The session, unless it does not exist or `now` is past its `expires_at`.
    async fn session(&self, id: &str, now: Timestamp) -> Result<Option<SessionRecord>, StoreError>;
    /// Replaces a session that still exists (last seen, expiry); `false` when it was ended
    /// meanwhile, which must not bring it back.
    async fn touch_session(&self, session: &SessionRecord) -> Result<bool, StoreError>;
    /// Ends one session; `false` when there was none.
    async fn end_session(&self, id: &str) -> Result<bool, StoreError>;
    /// Ends every session; returns how many there were.
    async fn end_all_sessions(&self) -> Result<u64, StoreError>;
    async fn put_sign_in(&self, pending: &PendingSignIn) -> Result<(), StoreError>;
    /// Removes and returns the pending sign-in, unless it is missing or expired: of two takes
    /// of the same id, at most one gets it.
    async fn take_sign_in(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<PendingSignIn>, StoreError>;
}

/// API bearer tokens, stored only as SHA-256 digests (hex) so a copy of the store gives no
/// usable token.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Gives the token to a user (replacing whoever held it).
    async fn put_token(&self, digest: &str, user_id: &str) -> Result<(), StoreError>;
    async fn token_user(&self, digest: &str) -> Result<Option<String>, StoreError>;
}

/// A rendered message, ready to send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingMail {
    /// The effect key: a mailer sends at most one message per key.
    pub key: String,
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("mail service unavailable: {0}")]
    Unavailable(String),
    #[error("message refused: {0}")]
    Rejected(String),
    /// The server permanently refused a recipient (a 5xx to `RCPT TO`, or to the message for
    /// that recipient): retrying cannot help until the address is fixed. The application turns
    /// a refused candidate user into [`Event::MailRefused`](crate::Event::MailRefused).
    #[error("recipient {recipient} refused: {message}")]
    RecipientRefused {
        recipient: String,
        /// The server's answer, e.g. `550 5.1.1 mailbox unavailable`.
        message: String,
    },
}

impl MailError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, MailError::Unavailable(_))
    }
}

#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends once per `mail.key`; a repeat with the same key is a no-op.
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError>;
}

/// Removes the right: routes the candidate to a plugin and reports what happened. Failures
/// are outcomes (`Transient`, `Permanent`), never errors, so the workflow records them.
#[async_trait]
pub trait Revoker: Send + Sync {
    async fn revoke(&self, candidate: &Candidate, idempotency_key: &str) -> RevocationResult;

    /// Asks the vendor whether the candidate's right is still there, through the plugin that
    /// removes it. `settle`: the plugin answered `removed` a moment ago, so a vendor whose
    /// reads lag its writes is given the plugin's settle delay first. A revoker that cannot ask
    /// anyone answers `Unknown`, and candidates close as not verifiable.
    async fn verify(&self, candidate: &Candidate, settle: bool) -> VerifyResult {
        let _ = (candidate, settle);
        VerifyResult::Unknown
    }

    /// The plugins a rule may name, when this revoker knows them (`None`: it does not, as in a
    /// process that only serves the API). A rule naming another plugin would send every one of
    /// its candidates to Attention Required, so rules are checked against this list.
    fn plugin_names(&self) -> Option<Vec<String>> {
        None
    }
}

/// The current time; injected so time-travel tests are deterministic.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }
}

/// What an email link is allowed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkAction {
    Keep,
    Remove,
    Approve,
    Reject,
}

impl LinkAction {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkAction::Keep => "keep",
            LinkAction::Remove => "remove",
            LinkAction::Approve => "approve",
            LinkAction::Reject => "reject",
        }
    }
}

/// What a signed link names: one candidate, one person, one answer, one version, an expiry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkClaims {
    pub candidate_id: String,
    pub user_id: String,
    pub action: LinkAction,
    pub version: u64,
    pub expires_at: Timestamp,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("this link is malformed or has been altered")]
    Invalid,
    #[error("this link expired at {0}")]
    Expired(Timestamp),
}

/// Signs and checks email links.
pub trait LinkSigner: Send + Sync {
    fn sign(&self, claims: &LinkClaims) -> String;
    fn verify(&self, token: &str, now: Timestamp) -> Result<LinkClaims, LinkError>;
}

// ---- Usage connectors ----

/// A usage connector as the runner and the pages see it (from its manifest and
/// `describe-source`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorInfo {
    pub id: String,
    pub name: String,
    pub vendor: String,
    pub version: String,
    /// What one row stands for, in the connector's words.
    pub description: String,
    /// The schedule as the manifest writes it (`daily`, `6h`).
    pub schedule: String,
    /// Seconds between scheduled runs.
    pub every_secs: u64,
}

/// One page a connector returned, its rows already parsed as a file's rows are, so a
/// connector and an import accept and refuse the same rows.
#[derive(Clone, Debug, Default)]
pub struct CollectedPage {
    pub rows: Vec<Result<crate::usage::UsageRecord, Vec<crate::intake::FieldError>>>,
    /// Where the next page starts; `None`: the collection is finished.
    pub next_cursor: Option<String>,
    /// Rows the connector saw but could not report, by reason (names concealed, say).
    pub notes: Vec<(String, u64)>,
}

/// Why a page could not be collected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CollectFailure {
    /// Throttled, the vendor down, a deadline hit: the same page may succeed later.
    #[error("{message}")]
    Transient {
        message: String,
        retry_after_secs: Option<u64>,
    },
    /// Needs a person or a change to the connector (bad credentials, a cap, not a source).
    #[error("{0}")]
    Permanent(String),
}

/// The usage connectors a deployment has loaded (plugins that export `collect`).
#[async_trait]
pub trait UsageSources: Send + Sync {
    /// The connectors this deployment runs (on AWS the `api` function reads the list the
    /// `connectors` function wrote, so it may fail as a store does).
    async fn connectors(&self) -> Result<Vec<ConnectorInfo>, StoreError>;
    /// The page at `cursor` (`None`: the first), the run having collected `pages_done`
    /// pages so far (the manifest's cap on pages per run counts them).
    async fn collect(
        &self,
        connector: &str,
        cursor: Option<&str>,
        pages_done: u32,
    ) -> Result<CollectedPage, CollectFailure>;
}

/// A deployment without connectors.
#[derive(Debug)]
pub struct NoSources;

#[async_trait]
impl UsageSources for NoSources {
    async fn connectors(&self) -> Result<Vec<ConnectorInfo>, StoreError> {
        Ok(Vec::new())
    }
    async fn collect(
        &self,
        connector: &str,
        _cursor: Option<&str>,
        _pages_done: u32,
    ) -> Result<CollectedPage, CollectFailure> {
        Err(CollectFailure::Permanent(format!(
            "no connector `{connector}` is loaded"
        )))
    }
}

/// Where a connector run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    Running,
    Finished,
    Failed,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Finished => "finished",
            RunState::Failed => "failed",
        }
    }
}

/// One run of a connector: what it did so far and where it resumes. Saved after every page,
/// so a crash or a timeout loses at most the page in flight, which is evaluated again
/// (dedupe keeps it from creating anything twice).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorRun {
    pub connector: String,
    /// 1 for a connector's first run, then one more for each: a new run is written only if
    /// its number is free, so two runners cannot start two runs at once.
    pub seq: u64,
    /// Every save is conditional on it.
    pub version: u64,
    pub state: RunState,
    /// `schedule`, or the id of the person who pressed *Run now*.
    pub trigger: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// Until then the run is its runner's; after it (a crash, a timeout) another may resume it.
    pub lease_until: Timestamp,
    /// Where the next page starts.
    pub cursor: Option<String>,
    pub pages: u32,
    pub rows: u64,
    pub created: u64,
    /// Rows a report-only rule would have made a candidate of.
    pub report_only: u64,
    pub canceled: u64,
    /// Rows that made nothing, by reason (invalid, excluded, already open, no rule applies).
    pub skipped: BTreeMap<String, u64>,
    /// What the connector could not report, by its reason.
    pub notes: BTreeMap<String, u64>,
    /// Candidates created, by the rule that created them (a rule's page names the
    /// connectors its candidates came from).
    #[serde(default)]
    pub created_by_rule: BTreeMap<String, u64>,
    /// Why a failed run ended (the connector's message).
    pub error: Option<String>,
    /// Transient page errors retried so far.
    pub retries: u32,
}

impl ConnectorRun {
    pub fn id(&self) -> String {
        format!("{}#{:010}", self.connector, self.seq)
    }
}

/// Connector runs, per connector, newest first.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Writes a run. `expected` `None`: a new run, refused with [`StoreError::Duplicate`]
    /// when its number is taken; `Some(v)`: only over version `v`, else
    /// [`StoreError::Conflict`]. The run carries its new version.
    async fn put_run(&self, run: &ConnectorRun, expected: Option<u64>) -> Result<(), StoreError>;
    /// A connector's latest runs, newest first.
    async fn runs(&self, connector: &str, limit: u32) -> Result<Vec<ConnectorRun>, StoreError>;
    /// Keeps the list of connectors the collecting process loaded, for processes that list
    /// and start runs without loading plugins (on AWS the `api` function). A store whose
    /// deployment loads its plugins where it lists them (one machine) keeps nothing.
    async fn publish_connectors(&self, _list: &[ConnectorInfo]) -> Result<(), StoreError> {
        Ok(())
    }
    /// The list [`RunStore::publish_connectors`] kept, if any.
    async fn published_connectors(&self) -> Result<Vec<ConnectorInfo>, StoreError> {
        Ok(Vec::new())
    }
}
