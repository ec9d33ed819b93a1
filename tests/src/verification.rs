//! Verified reclamation, scenario by scenario, over any store: a removal closes only when the
//! vendor confirms it, a removal the vendor carries out later is checked until it is done or
//! the rule's limit passes, and a closed candidate is re-checked on the rule's days. Each
//! scenario runs the real [`App`] (scheduler tick, effect runner, savings, alerts, Reopen) on
//! an injected clock; the vendor is a script of plugin answers (the plugins have their own
//! tests against the fake vendors in `host/tests/it/plugins.rs`).
//!
//! The store decides how effects reach the runner (the SQLite outbox and its worker locally,
//! the DynamoDB stream on AWS), so each store's test file implements [`Backend`] and calls
//! every scenario with a function that builds its store over the scenario's clock and vendor: `tests/tests/it/verification.rs` (SQLite) and
//! `functions/aws/tests/dynamodb/verification.rs` (DynamoDB on the emulator).

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use reclaim_api::App;
use reclaim_workflow::ports::{Clock, Revoker};
use reclaim_workflow::{
    Actor, Candidate, Event, Group, Principal, Reappearance, RevocationResult, Rule, State,
    Timestamp, User, VerificationStatus, VerifyResult,
};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// A clock the scenario moves. It starts on 2021-03-28, so a re-check a week after closing
/// falls in the next month.
#[derive(Clone, Debug)]
pub struct SetClock(Arc<Mutex<Timestamp>>);

impl SetClock {
    pub fn new() -> SetClock {
        let start = DateTime::parse_from_rfc3339("2021-03-28T09:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        SetClock(Arc::new(Mutex::new(start)))
    }

    pub fn set(&self, t: Timestamp) {
        if let Ok(mut now) = self.0.lock() {
            *now = t;
        }
    }

    pub fn advance(&self, by: Duration) {
        if let Ok(mut now) = self.0.lock() {
            *now += by;
        }
    }
}

impl Default for SetClock {
    fn default() -> Self {
        SetClock::new()
    }
}

impl Clock for SetClock {
    fn now(&self) -> Timestamp {
        self.0.lock().map(|t| *t).unwrap_or_default()
    }
}

/// The vendor as the scenario scripts it: each removal and each verify call takes the next
/// answer of its list; the last answer repeats.
#[derive(Debug, Default)]
pub struct ScriptedVendor {
    removals: Mutex<VecDeque<RevocationResult>>,
    checks: Mutex<VecDeque<VerifyResult>>,
    removed: AtomicU32,
    verified: AtomicU32,
    settled: AtomicU32,
}

impl ScriptedVendor {
    pub fn new(removals: Vec<RevocationResult>, checks: Vec<VerifyResult>) -> Arc<ScriptedVendor> {
        Arc::new(ScriptedVendor {
            removals: Mutex::new(removals.into()),
            checks: Mutex::new(checks.into()),
            ..ScriptedVendor::default()
        })
    }

    /// Removal calls so far.
    pub fn removals(&self) -> u32 {
        self.removed.load(Ordering::SeqCst)
    }

    /// Verify calls so far.
    pub fn checks(&self) -> u32 {
        self.verified.load(Ordering::SeqCst)
    }

    /// Verify calls that asked for the plugin's settle delay (right after a removal).
    pub fn settled(&self) -> u32 {
        self.settled.load(Ordering::SeqCst)
    }

    fn next<T: Clone>(list: &Mutex<VecDeque<T>>, fallback: T) -> T {
        let Ok(mut list) = list.lock() else {
            return fallback;
        };
        if list.len() > 1 {
            list.pop_front().unwrap_or(fallback)
        } else {
            list.front().cloned().unwrap_or(fallback)
        }
    }
}

#[async_trait]
impl Revoker for ScriptedVendor {
    async fn revoke(&self, _candidate: &Candidate, _key: &str) -> RevocationResult {
        self.removed.fetch_add(1, Ordering::SeqCst);
        Self::next(
            &self.removals,
            RevocationResult::Permanent {
                message: "no removal scripted".into(),
            },
        )
    }

    async fn verify(&self, _candidate: &Candidate, settle: bool) -> VerifyResult {
        self.verified.fetch_add(1, Ordering::SeqCst);
        if settle {
            self.settled.fetch_add(1, Ordering::SeqCst);
        }
        Self::next(&self.checks, VerifyResult::Unknown)
    }
}

/// One deployment's store with the application over it.
#[async_trait]
pub trait Backend: Send + Sync {
    fn app(&self) -> &App;
    /// Runs every effect waiting (locally the outbox's worker, on AWS the stream's records
    /// through the `effects` handler) until none is left.
    async fn drain(&self);
}

/// A scenario's world: the store's backend, its clock and its vendor.
pub struct World<B> {
    pub backend: B,
    pub clock: SetClock,
    pub vendor: Arc<ScriptedVendor>,
}

impl<B> std::fmt::Debug for World<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("clock", &self.clock)
            .field("vendor", &self.vendor)
            .finish_non_exhaustive()
    }
}

/// The plugin's answer that it removed the right.
pub fn removed() -> RevocationResult {
    RevocationResult::Removed {
        evidence: "uninstall command accepted and run".into(),
    }
}

/// The vendor accepted a removal it carries out in `secs` seconds.
pub fn pending(secs: u32) -> RevocationResult {
    RevocationResult::Pending {
        check_after_secs: secs,
    }
}

fn manual_task() -> RevocationResult {
    RevocationResult::ManualTask {
        title: "Uninstall Acrobat Pro".into(),
        instructions: "by hand".into(),
        assignee_hint: None,
    }
}

/// The rule of every scenario: removes without asking, two attempts, a week for a later
/// removal, re-checks a week and a month after closing.
pub const RULE: &str = "verified";
const GROUP: &str = "verifiers";
const PRICE_CENTS: i64 = 23_988;

fn admin() -> Actor {
    Actor::Person(Principal {
        user_id: "sam".into(),
        sam_admin: true,
        itil: false,
        groups: Vec::new(),
        stands_in: Vec::new(),
    })
}

impl<B: Backend> World<B> {
    /// The world after `make` built the store over this clock and vendor, with the rule and
    /// its group stored.
    pub async fn new<F, Fut>(vendor: Arc<ScriptedVendor>, make: F) -> World<B>
    where
        F: FnOnce(Arc<dyn Clock>, Arc<dyn Revoker>) -> Fut,
        Fut: std::future::Future<Output = B>,
    {
        let clock = SetClock::new();
        let backend = make(Arc::new(clock.clone()), vendor.clone()).await;
        let app = backend.app();
        let rule: Rule = serde_json::from_value(serde_json::json!({
            "id": RULE, "name": "Removed without asking, verified",
            "notify_user": false, "assignment_group": GROUP,
            "max_revocation_attempts": 2, "verify_within_days": 7, "recheck_days": [7, 30],
        }))
        .expect("the scenario's rule");
        app.ports.rules.put_rule(&rule).await.expect("rule");
        app.ports
            .directory
            .put_user(&User {
                id: "sam".into(),
                display_name: "Sam Admin".into(),
                email: Some("sam@example.com".into()),
                upn: None,
                itil: false,
                vip: false,
                sam_admin: true,
            })
            .await
            .expect("sam admin");
        app.ports
            .directory
            .put_group(&Group {
                id: GROUP.into(),
                name: "Verifiers".into(),
                email: None,
                members: vec!["sam".into()],
            })
            .await
            .expect("group");
        World {
            backend,
            clock,
            vendor,
        }
    }

    pub fn app(&self) -> &App {
        self.backend.app()
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// A candidate for an install of `product` on `device`, reclaimed at once; its id.
    pub async fn reclaimed(&self, product: &str, device: &str) -> String {
        let row: BTreeMap<String, String> = [
            ("publisher", "Adobe"),
            ("product", product),
            ("device", device),
            ("applies_to", "installed-software"),
            ("justification", "unused"),
            ("price_per_right", "239.88"),
            ("rule", RULE),
            ("user_id", "uma"),
            ("user_name", "Uma User"),
            ("user_email", "uma@example.com"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let report = self
            .app()
            .import(vec![(1, row)], false)
            .await
            .expect("import");
        let number = report.created.first().cloned().expect("one created");
        let c = self.app().candidate(&number).await.expect("created");
        self.app()
            .transition(&c.id, &Event::Reclaim, &admin(), None)
            .await
            .expect("reclaim");
        self.backend.drain().await;
        c.id
    }

    pub async fn candidate(&self, id: &str) -> Candidate {
        self.app().candidate(id).await.expect("candidate")
    }

    /// The scheduler at `t`, then every effect it caused.
    pub async fn tick_at(&self, t: Timestamp) {
        self.clock.set(t);
        self.app().tick().await.expect("tick");
        self.backend.drain().await;
    }

    /// Ticks at each due time of the candidate until `done` holds (at most `max` ticks).
    pub async fn tick_until(&self, id: &str, max: usize, done: impl Fn(&Candidate) -> bool) {
        for _ in 0..max {
            let c = self.candidate(id).await;
            if done(&c) {
                return;
            }
            let Some(due) = c.due_at else {
                panic!("{} is not due and not done: {c:?}", c.number);
            };
            self.tick_at(due.max(self.now())).await;
        }
        let c = self.candidate(id).await;
        assert!(done(&c), "not done after {max} ticks: {c:?}");
    }

    pub async fn events(&self, id: &str) -> Vec<String> {
        self.app()
            .ports
            .candidates
            .history(id)
            .await
            .expect("history")
            .into_iter()
            .map(|h| h.event)
            .collect()
    }
}

/// Removed, asked at once (with the plugin's settle delay), verified absent: Closed Complete,
/// counted as verified savings, with its first re-check a week later.
pub async fn removed_then_verified_absent_closes_complete<B, F, Fut>(make: F)
where
    B: Backend,
    F: FnOnce(Arc<dyn Clock>, Arc<dyn Revoker>) -> Fut,
    Fut: std::future::Future<Output = B>,
{
    let world = World::new(
        ScriptedVendor::new(vec![removed()], vec![VerifyResult::Absent]),
        make,
    )
    .await;
    let w = &world;
    let id = w.reclaimed("Acrobat Pro", "LAPTOP-1").await;
    let c = w.candidate(&id).await;
    assert_eq!(c.state, State::ClosedComplete, "{c:?}");
    let v = c.verification.clone().expect("verification");
    assert_eq!(v.status, VerificationStatus::Verified);
    assert_eq!(
        w.events(&id).await,
        ["reclaim", "revocation-removed", "verified-absent"]
    );
    assert_eq!((w.vendor.removals(), w.vendor.checks()), (1, 1));
    assert_eq!(w.vendor.settled(), 1, "right after a removal: settle first");
    assert_eq!(
        c.due_at,
        c.closed_at.map(|t| t + Duration::days(7)),
        "first re-check"
    );
    let s = reclaim_workflow::savings::Savings::of([&c]);
    let s = s.yearly();
    assert_eq!(
        (s.actual_cents, s.verified_cents, s.unverified_cents),
        (PRICE_CENTS, PRICE_CENTS, 0)
    );
}

/// Removed, but the vendor still shows it: the removal is retried (counted against the rule's
/// two attempts), and then a person must look, told what the vendor still shows.
pub async fn removed_but_still_present_is_retried_then_needs_attention<B, F, Fut>(make: F)
where
    B: Backend,
    F: FnOnce(Arc<dyn Clock>, Arc<dyn Revoker>) -> Fut,
    Fut: std::future::Future<Output = B>,
{
    let world = World::new(
        ScriptedVendor::new(vec![removed()], vec![VerifyResult::Present]),
        make,
    )
    .await;
    let w = &world;
    let id = w.reclaimed("Acrobat Pro", "LAPTOP-2").await;
    let c = w.candidate(&id).await;
    assert_eq!(c.state, State::AwaitingRevocation, "{c:?}");
    assert!(c.revocation.verifying.is_none(), "back to removing");
    assert_eq!(c.revocation.attempts, 1);
    let retry = c.due_at.expect("a retry is due");
    w.tick_at(retry).await;
    let c = w.candidate(&id).await;
    assert_eq!(c.state, State::AttentionRequired, "{c:?}");
    let why = c.attention.clone().unwrap_or_default();
    assert!(
        why.contains("still shows Adobe Acrobat Pro for uma on LAPTOP-2") && why.contains("2 "),
        "{why}"
    );
    assert_eq!((w.vendor.removals(), w.vendor.checks()), (2, 2));
    assert_eq!(
        w.events(&id).await,
        [
            "reclaim",
            "revocation-removed",
            "verified-present",
            "retry-revocation",
            "revocation-removed",
            "verified-present"
        ]
    );
}

/// Pending for ten minutes: nothing is asked before then; still installed at the first check,
/// so the next waits twice as long; absent then: Closed Complete, verified.
pub async fn pending_is_verified_after_its_wait_then_closes<B, F, Fut>(make: F)
where
    B: Backend,
    F: FnOnce(Arc<dyn Clock>, Arc<dyn Revoker>) -> Fut,
    Fut: std::future::Future<Output = B>,
{
    let world = World::new(
        ScriptedVendor::new(
            vec![pending(600)],
            vec![VerifyResult::Present, VerifyResult::Absent],
        ),
        make,
    )
    .await;
    let w = &world;
    let start = w.now();
    let id = w.reclaimed("Acrobat Pro", "LAPTOP-3").await;
    let c = w.candidate(&id).await;
    assert_eq!(c.state, State::AwaitingRevocation);
    assert!(c.revocation.verifying.is_some(), "verifying: {c:?}");
    assert_eq!(c.due_at, Some(start + Duration::seconds(600)));
    w.tick_at(start + Duration::seconds(599)).await;
    assert_eq!(w.vendor.checks(), 0, "not asked before its time");
    w.tick_at(start + Duration::seconds(600)).await;
    let c = w.candidate(&id).await;
    assert_eq!(w.vendor.checks(), 1);
    assert_eq!(c.state, State::AwaitingRevocation);
    assert_eq!(
        c.due_at,
        Some(start + Duration::seconds(600 + 1200)),
        "the next check waits twice as long"
    );
    w.tick_at(start + Duration::seconds(1800)).await;
    let c = w.candidate(&id).await;
    assert_eq!(c.state, State::ClosedComplete, "{c:?}");
    assert_eq!(
        c.verification.map(|v| v.status),
        Some(VerificationStatus::Verified)
    );
    assert_eq!(w.vendor.checks(), 2);
    assert_eq!(w.vendor.settled(), 0, "a pending removal is not settled");
    assert_eq!(w.vendor.removals(), 1, "pending is not re-requested");
}

/// Pending, and still installed when the rule's week has passed: Attention Required saying
/// when the uninstall was requested and that it is still installed.
pub async fn pending_past_the_limit_needs_attention<B, F, Fut>(make: F)
where
    B: Backend,
    F: FnOnce(Arc<dyn Clock>, Arc<dyn Revoker>) -> Fut,
    Fut: std::future::Future<Output = B>,
{
    let world = World::new(
        ScriptedVendor::new(vec![pending(3600)], vec![VerifyResult::Present]),
        make,
    )
    .await;
    let w = &world;
    let start = w.now();
    let id = w.reclaimed("Acrobat Pro", "LAPTOP-4").await;
    w.tick_until(&id, 40, |c| c.state != State::AwaitingRevocation)
        .await;
    let c = w.candidate(&id).await;
    assert_eq!(c.state, State::AttentionRequired, "{c:?}");
    assert!(w.now() >= start + Duration::days(7), "not before the limit");
    let why = c.attention.unwrap_or_default();
    let requested = start.format("%Y-%m-%d").to_string();
    assert!(
        why.starts_with(&format!(
            "uninstall requested on {requested}, still installed on "
        )),
        "{why}"
    );
    assert_eq!(w.vendor.removals(), 1);
    assert!(w.vendor.checks() > 3, "checked with backoff");
}

/// Closed and verified; the seat is re-assigned at the vendor; the re-check a week later finds
/// it: reappeared (an alert with the date found), out of the actual savings from that month;
/// Reopen makes a new candidate linked to it, once.
pub async fn reappeared_seat_is_an_alert_leaves_savings_and_reopens_linked<B, F, Fut>(make: F)
where
    B: Backend,
    F: FnOnce(Arc<dyn Clock>, Arc<dyn Revoker>) -> Fut,
    Fut: std::future::Future<Output = B>,
{
    let world = World::new(
        ScriptedVendor::new(
            vec![removed()],
            vec![VerifyResult::Absent, VerifyResult::Present],
        ),
        make,
    )
    .await;
    let w = &world;
    let id = w.reclaimed("Acrobat Pro", "LAPTOP-5").await;
    let closed = w.candidate(&id).await;
    assert_eq!(closed.state, State::ClosedComplete);
    let recheck = closed.due_at.expect("a re-check is due");
    w.tick_at(recheck).await;
    let c = w.candidate(&id).await;
    let v = c.verification.clone().expect("verification");
    assert_eq!(v.reappeared_at, Some(recheck), "{c:?}");
    assert_eq!(c.state, State::ClosedComplete, "it stays closed");
    assert_eq!(c.due_at, None, "no more re-checks once it came back");
    let events = w.events(&id).await;
    assert!(
        events.ends_with(&["verify-due".into(), "verified-present".into()]),
        "{events:?}"
    );

    let alerts = w.app().stale_alerts().await.expect("alerts");
    let alert = alerts
        .iter()
        .find(|a| a.candidate_id == id)
        .expect("an alert for it");
    assert_eq!(alert.reappeared_at, Some(recheck));
    assert!(alert.reason.starts_with("Reappeared"), "{}", alert.reason);

    let s = reclaim_workflow::savings::Savings::of([&c]);
    assert_eq!(
        (s.yearly().actual_cents, s.yearly().reappeared_cents),
        (0, PRICE_CENTS)
    );
    assert_eq!(s.actual_by_month.get("2021-03"), Some(&PRICE_CENTS));
    assert_eq!(s.actual_by_month.get("2021-04"), Some(&-PRICE_CENTS));

    let again = w.app().reopen(&id, &admin()).await.expect("reopen");
    assert_eq!(again.state, State::Ready);
    assert_eq!(again.reopened_from.as_deref(), Some(id.as_str()));
    assert_ne!(again.number, c.number);
    let old = w.candidate(&id).await;
    assert!(matches!(
        old.verification.and_then(|v| v.resolution),
        Some(Reappearance::Reopened { candidate_number, .. }) if candidate_number == again.number
    ));
    assert!(
        w.app()
            .stale_alerts()
            .await
            .expect("alerts")
            .iter()
            .all(|a| a.candidate_id != id),
        "decided: no longer an alert"
    );
    assert!(
        w.app().reopen(&id, &admin()).await.is_err(),
        "reopened once"
    );
}

/// A right that came back may instead stay with its user: Accept needs a reason and a sam
/// admin, and keeps it on the record.
pub async fn reappeared_seat_is_accepted_with_a_reason<B, F, Fut>(make: F)
where
    B: Backend,
    F: FnOnce(Arc<dyn Clock>, Arc<dyn Revoker>) -> Fut,
    Fut: std::future::Future<Output = B>,
{
    let world = World::new(
        ScriptedVendor::new(
            vec![removed()],
            vec![VerifyResult::Absent, VerifyResult::Present],
        ),
        make,
    )
    .await;
    let w = &world;
    let id = w.reclaimed("Acrobat Pro", "LAPTOP-6").await;
    let recheck = w.candidate(&id).await.due_at.expect("re-check due");
    w.tick_at(recheck).await;
    let nobody = Actor::Person(Principal {
        user_id: "uma".into(),
        sam_admin: false,
        itil: false,
        groups: vec![GROUP.into()],
        stands_in: Vec::new(),
    });
    let accept = |reason: &str| Event::AcceptReappeared {
        reason: reason.into(),
    };
    assert!(w
        .app()
        .transition(&id, &accept("mine"), &nobody, None)
        .await
        .is_err());
    assert!(w
        .app()
        .transition(&id, &accept("  "), &admin(), None)
        .await
        .is_err());
    let c = w
        .app()
        .transition(&id, &accept("needed for the audit project"), &admin(), None)
        .await
        .expect("accept");
    assert!(matches!(
        c.verification.and_then(|v| v.resolution),
        Some(Reappearance::Accepted { reason, by, .. })
            if reason == "needed for the audit project" && by == "sam"
    ));
}

/// A person's Close Complete (a manual removal) is not verified; a sam admin's Check now asks
/// the vendor at once, which confirms it, without using up the rule's first re-check; after
/// the last re-check nothing more is due.
pub async fn a_manual_close_is_verified_by_check_now_and_the_rechecks_go_on<B, F, Fut>(make: F)
where
    B: Backend,
    F: FnOnce(Arc<dyn Clock>, Arc<dyn Revoker>) -> Fut,
    Fut: std::future::Future<Output = B>,
{
    let world = World::new(
        ScriptedVendor::new(vec![manual_task()], vec![VerifyResult::Absent]),
        make,
    )
    .await;
    let w = &world;
    let id = w.reclaimed("Acrobat Pro", "LAPTOP-7").await;
    let c = w
        .app()
        .transition(
            &id,
            &Event::CloseComplete {
                note: Some("uninstalled by hand".into()),
            },
            &admin(),
            None,
        )
        .await
        .expect("close complete");
    w.backend.drain().await;
    assert_eq!(
        c.verification.as_ref().map(|v| v.status),
        Some(VerificationStatus::Unverified)
    );
    let s = reclaim_workflow::savings::Savings::of([&c]);
    assert_eq!(
        (s.yearly().verified_cents, s.yearly().unverified_cents),
        (0, PRICE_CENTS)
    );
    let first = c.due_at.expect("first re-check");
    assert_eq!(Some(first), c.closed_at.map(|t| t + Duration::days(7)));

    w.clock.advance(Duration::days(1));
    w.app()
        .transition(&id, &Event::CheckNow, &admin(), None)
        .await
        .expect("check now");
    w.backend.drain().await;
    let c = w.candidate(&id).await;
    let v = c.verification.clone().expect("verification");
    assert_eq!(
        (v.status, v.rechecks_done),
        (VerificationStatus::Verified, 0)
    );
    assert_eq!(c.due_at, Some(first), "the schedule is kept");
    assert_eq!(w.vendor.checks(), 1);

    w.tick_at(first).await;
    let c = w.candidate(&id).await;
    assert_eq!(c.verification.as_ref().map(|v| v.rechecks_done), Some(1));
    w.tick_at(c.due_at.expect("second re-check")).await;
    let c = w.candidate(&id).await;
    assert_eq!(c.verification.map(|v| v.rechecks_done), Some(2));
    assert_eq!(c.due_at, None, "two re-checks, then none");
    assert_eq!(w.vendor.checks(), 3);
}
