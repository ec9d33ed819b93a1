//! Time travel: the scheduler (`App::tick`) on the real SQLite store under a settable clock.
//! Deadlines reclaim automatically, reminders go out once at the rule's days, transient plugin
//! failures wait for their retry time, run out into Attention Required, and usage that shows
//! the user active again cancels the candidate.
//!
//! The revoker here is a script of plugin outcomes, not the WASM plugin host: the host and the
//! built-in plugins have their own tests (host/tests); these tests are about what the workflow
//! does with each outcome and when.

// Test code: helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use chrono::{DateTime, Duration, Utc};
use reclaim_tests::*;
use reclaim_workflow::ports::{Clock, Revoker};
use reclaim_workflow::{Candidate, RevocationResult, State, Timestamp};
use serde_json::json;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// A clock the test sets. It starts years before the wall clock: everything the store and the
/// worker time (effects due, messages sent) must follow this clock, not the machine's.
#[derive(Clone, Debug)]
struct TestClock(Arc<Mutex<Timestamp>>);

impl TestClock {
    fn new() -> TestClock {
        let start = DateTime::parse_from_rfc3339("2021-03-01T09:00:00Z").unwrap();
        TestClock(Arc::new(Mutex::new(start.with_timezone(&Utc))))
    }

    fn set(&self, t: Timestamp) {
        *self.0.lock().unwrap() = t;
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

/// Answers each revocation with the next scripted outcome; the last one repeats.
#[derive(Debug)]
struct ScriptedRevoker {
    script: Mutex<VecDeque<RevocationResult>>,
    calls: Mutex<Vec<String>>,
}

impl ScriptedRevoker {
    fn new(outcomes: Vec<RevocationResult>) -> Arc<ScriptedRevoker> {
        Arc::new(ScriptedRevoker {
            script: Mutex::new(outcomes.into()),
            calls: Mutex::new(Vec::new()),
        })
    }

    fn calls(&self) -> usize {
        self.calls.lock().unwrap().len()
    }
}

#[async_trait]
impl Revoker for ScriptedRevoker {
    async fn revoke(&self, _candidate: &Candidate, key: &str) -> RevocationResult {
        self.calls.lock().unwrap().push(key.to_string());
        let mut script = self.script.lock().unwrap();
        if script.len() > 1 {
            script.pop_front().unwrap()
        } else {
            script.front().cloned().unwrap()
        }
    }
}

fn removed() -> RevocationResult {
    RevocationResult::Removed {
        evidence: "seat released".into(),
    }
}

fn transient(message: &str, retry_after_secs: Option<u32>) -> RevocationResult {
    RevocationResult::Transient {
        message: message.into(),
        retry_after_secs,
    }
}

async fn harness(outcomes: Vec<RevocationResult>) -> (Harness, TestClock, Arc<ScriptedRevoker>) {
    let clock = TestClock::new();
    let revoker = ScriptedRevoker::new(outcomes);
    let h = Harness::with_clock_and_revoker(Arc::new(clock.clone()), revoker.clone()).await;
    (h, clock, revoker)
}

/// Reclaims through the API and runs the effects; returns when the candidate was asked.
async fn reclaim(h: &Harness, n: &str) -> Candidate {
    let r = h
        .post(&format!("/api/v1/candidates/{n}/reclaim"), SAM, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    h.drain().await;
    h.candidate(n).await
}

/// Runs one scheduler tick and returns the events it applied.
async fn tick(h: &Harness) -> Vec<(String, &'static str)> {
    h.embedded.app.tick().await.unwrap().applied
}

fn reminders(mail: &[reclaim_local::StoredMessage]) -> usize {
    mail.iter()
        .filter(|m| m.subject.starts_with("Reminder:"))
        .count()
}

#[tokio::test]
async fn no_answer_by_the_deadline_reclaims_automatically_through_the_revoker() {
    let (h, clock, revoker) = harness(vec![removed()]).await;
    let t0 = clock.now();
    let n = h.create_one(json!({})).await; // rule `notify`: 14 days, reminders on days 3 and 7
    let c = reclaim(&h, &n).await;
    assert_eq!(c.state, State::AwaitingUser);
    assert_eq!(c.deadline_at, Some(t0 + Duration::days(14)));

    clock.set(t0 + Duration::days(14) - Duration::seconds(1));
    // Reminders are due by now, the deadline is not: the candidate still waits for the user.
    while !tick(&h).await.is_empty() {}
    assert_eq!(h.candidate(&n).await.state, State::AwaitingUser);
    assert_eq!(revoker.calls(), 0);

    clock.set(t0 + Duration::days(14));
    assert_eq!(tick(&h).await, vec![(n.clone(), "deadline-passed")]);
    assert_eq!(h.candidate(&n).await.state, State::AwaitingRevocation);
    assert!(tick(&h).await.is_empty(), "a second tick does nothing");
    h.drain().await;

    assert_eq!(revoker.calls(), 1);
    let c = h.candidate(&n).await;
    assert_eq!(c.state, State::ClosedComplete);
    let history = h.history(&n).await;
    let auto = history
        .iter()
        .find(|e| e.to == State::AwaitingRevocation)
        .unwrap();
    assert_eq!(auto.at, t0 + Duration::days(14));
    assert!(
        auto.reason
            .as_deref()
            .unwrap_or("")
            .contains("auto-reclamation"),
        "{auto:?}"
    );
    let mail = h.mail_to("uma@example.com").await;
    let removed = mail
        .iter()
        .find(|m| m.subject.ends_with("has been removed"))
        .unwrap_or_else(|| panic!("{mail:?}"));
    assert_eq!(
        removed.created_at,
        t0 + Duration::days(14),
        "the outbox stamps a message with the workflow's clock"
    );
}

#[tokio::test]
async fn reminders_go_out_once_on_each_of_the_rules_days_even_when_tick_runs_twice() {
    let (h, clock, _) = harness(vec![removed()]).await;
    let t0 = clock.now();
    let n = h.create_one(json!({})).await;
    reclaim(&h, &n).await;
    assert_eq!(reminders(&h.mail_to("uma@example.com").await), 0);

    clock.set(t0 + Duration::days(3) - Duration::seconds(1));
    assert!(tick(&h).await.is_empty(), "not due before day 3");

    for (day, expected) in [(3, 1), (7, 2)] {
        clock.set(t0 + Duration::days(day));
        assert_eq!(tick(&h).await, vec![(n.clone(), "remind")], "day {day}");
        assert!(
            tick(&h).await.is_empty(),
            "day {day}: the second tick is idle"
        );
        h.drain().await;
        h.drain().await;
        let mail = h.mail_to("uma@example.com").await;
        assert_eq!(reminders(&mail), expected, "day {day}: {mail:?}");
        let c = h.candidate(&n).await;
        assert_eq!(c.reminders_sent, expected as u32);
        assert_eq!(c.state, State::AwaitingUser);
    }
    // After the last reminder the next thing due is the deadline.
    let c = h.candidate(&n).await;
    assert_eq!(c.due_at, Some(t0 + Duration::days(14)));
    clock.set(t0 + Duration::days(13));
    assert!(tick(&h).await.is_empty());
}

#[tokio::test]
async fn a_transient_failure_waits_for_its_retry_after_then_the_retry_completes() {
    let (h, clock, revoker) = harness(vec![
        transient("429 Too Many Requests", Some(900)),
        removed(),
    ])
    .await;
    let t0 = clock.now();
    let n = h.create_one(json!({"rule": "silent"})).await;
    let c = reclaim(&h, &n).await;
    assert_eq!(revoker.calls(), 1);
    assert_eq!(c.state, State::AwaitingRevocation);
    assert_eq!(c.revocation.attempts, 1);
    // The exponential delay for a first retry is under a minute; the vendor asked for 15.
    assert_eq!(c.due_at, Some(t0 + Duration::seconds(900)));

    clock.set(t0 + Duration::seconds(899));
    assert!(tick(&h).await.is_empty(), "not before Retry-After");
    h.drain().await;
    assert_eq!(revoker.calls(), 1);

    clock.set(t0 + Duration::seconds(900));
    assert_eq!(tick(&h).await, vec![(n.clone(), "retry-revocation")]);
    assert!(tick(&h).await.is_empty());
    h.drain().await;
    assert_eq!(revoker.calls(), 2);
    let c = h.candidate(&n).await;
    assert_eq!(c.state, State::ClosedComplete);
    assert_eq!(c.revocation.attempts, 2);
}

#[tokio::test]
async fn transient_failures_until_attempts_run_out_need_attention_with_the_error() {
    let (h, clock, revoker) = harness(vec![transient("vendor answered 503", None)]).await;
    let rule = json!({"id": "flaky", "name": "Flaky vendor", "notify_user": false,
                      "days_before_auto_reclamation": 0, "assignment_group": "desktop",
                      "max_revocation_attempts": 3});
    let r = h
        .call(
            axum::http::Method::PUT,
            "/api/v1/rules/flaky",
            Some(SAM),
            Some(rule),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let n = h.create_one(json!({"rule": "flaky"})).await;
    let mut c = reclaim(&h, &n).await;
    let mut delays = Vec::new();
    while c.state == State::AwaitingRevocation {
        let due = c.due_at.unwrap();
        delays.push((due - clock.now()).num_seconds());
        clock.set(due - Duration::seconds(1));
        assert!(
            tick(&h).await.is_empty(),
            "attempt {}",
            c.revocation.attempts
        );
        clock.set(due);
        assert_eq!(tick(&h).await.len(), 1);
        h.drain().await;
        c = h.candidate(&n).await;
    }
    assert_eq!(revoker.calls(), 3);
    assert_eq!(c.state, State::AttentionRequired);
    assert_eq!(c.due_at, None);
    let why = c.attention.clone().unwrap();
    assert!(
        why.contains("3 times") && why.contains("vendor answered 503"),
        "{why}"
    );
    // Backoff doubles (with jitter between half and all of it): 30-60 s, then 60-120 s.
    assert_eq!(delays.len(), 2, "{delays:?}");
    assert!((30..=60).contains(&delays[0]), "{delays:?}");
    assert!((60..=120).contains(&delays[1]), "{delays:?}");
    clock.set(clock.now() + Duration::days(30));
    assert!(
        tick(&h).await.is_empty(),
        "nothing retries out of Attention Required"
    );
    assert_eq!(revoker.calls(), 3);
}

fn usage_row(last_used_at: DateTime<Utc>) -> serde_json::Value {
    json!({"user_id": "uma", "user_email": "uma@example.com", "device": "LAPTOP-042",
           "publisher": "Adobe", "product": "Acrobat Pro",
           "last_used_at": last_used_at.to_rfc3339()})
}

#[tokio::test]
async fn usage_showing_the_user_active_again_cancels_the_candidate_and_tells_the_user() {
    let (h, clock, revoker) = harness(vec![removed()]).await;
    let t0 = clock.now();
    let n = h.create_one(json!({})).await;
    reclaim(&h, &n).await;

    // Usage from before the candidate opened says nothing new.
    clock.set(t0 + Duration::days(1));
    let r = h
        .post(
            "/api/v1/usage",
            SAM,
            json!({"usage": [usage_row(t0 - Duration::days(40))]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["canceled"], json!([]));
    assert_eq!(h.candidate(&n).await.state, State::AwaitingUser);

    clock.set(t0 + Duration::days(2));
    let r = h
        .post(
            "/api/v1/usage",
            SAM,
            json!({"usage": [usage_row(t0 + Duration::days(1))]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["canceled"], json!([n.clone()]));
    h.drain().await;
    let c = h.candidate(&n).await;
    assert_eq!(c.state, State::ClosedCanceled);
    assert_eq!(c.last_used_at, Some(t0 + Duration::days(1)));
    let mail = h.mail_to("uma@example.com").await;
    assert!(
        mail.iter()
            .any(|m| m.subject.ends_with("reclamation canceled")),
        "{mail:?}"
    );
    // Canceled is closed: the deadline passing later does nothing.
    clock.set(t0 + Duration::days(20));
    assert!(tick(&h).await.is_empty());
    assert_eq!(revoker.calls(), 0);
}

#[tokio::test]
async fn the_worker_runs_the_scheduler_on_its_period_and_each_due_event_happens_once() {
    let (h, clock, revoker) = harness(vec![removed()]).await;
    let t0 = clock.now();
    let n = h.create_one(json!({})).await;
    reclaim(&h, &n).await;
    let worker = h
        .embedded
        .start_worker(Some(std::time::Duration::from_millis(20)));
    clock.set(t0 + Duration::days(14));
    let mut c = h.candidate(&n).await;
    for _ in 0..500 {
        if c.state == State::ClosedComplete {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        c = h.candidate(&n).await;
    }
    assert_eq!(c.state, State::ClosedComplete);
    // Let it tick a few more times over the same clock: nothing more happens.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    worker.shutdown().await;
    let history = h.history(&n).await;
    let states: Vec<State> = history.iter().map(|e| e.to).collect();
    assert_eq!(
        states,
        vec![
            State::AwaitingUser,
            State::AwaitingRevocation,
            // Removed, then the vendor is asked (this revoker cannot tell: not verifiable).
            State::AwaitingRevocation,
            State::ClosedComplete
        ],
        "{history:?}"
    );
    assert_eq!(revoker.calls(), 1);
    // The tick read the injected clock, not the wall clock.
    assert_eq!(history[1].at, t0 + Duration::days(14));
}

async fn alerts(h: &Harness) -> Vec<serde_json::Value> {
    alerts_of(h, SAM).await
}

async fn alerts_of(h: &Harness, token: &str) -> Vec<serde_json::Value> {
    let r = h.get("/api/v1/alerts", token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json().as_array().unwrap().clone()
}

#[tokio::test]
async fn candidates_open_too_long_are_listed_as_stale_alerts() {
    let manual = RevocationResult::ManualTask {
        title: "Uninstall by hand".into(),
        instructions: "Remove it from the device".into(),
        assignee_hint: None,
    };
    let (h, clock, _) = harness(vec![manual]).await;
    let t0 = clock.now();
    let ready = h.create_one(json!({})).await;
    let revoking = h
        .create_one(json!({"rule": "silent", "device": "PC-2"}))
        .await;
    assert_eq!(
        reclaim(&h, &revoking).await.state,
        State::AwaitingRevocation
    );
    clock.set(t0 + Duration::days(30));
    assert_eq!(alerts(&h).await, Vec::<serde_json::Value>::new());

    clock.set(t0 + Duration::days(31));
    let got = alerts(&h).await;
    assert_eq!(got.len(), 2, "{got:?}");
    for a in &got {
        assert_eq!(a["days"], 31);
        assert_eq!(a["reason"], "open for 31 days");
    }

    clock.set(t0 + Duration::days(61));
    let got = alerts(&h).await;
    let of = |n: &str| got.iter().find(|a| a["number"] == n).unwrap().clone();
    assert_eq!(of(&revoking)["reason"], "Awaiting Revocation for 61 days");
    assert_eq!(of(&revoking)["state"], "awaiting-revocation");
    assert_eq!(of(&ready)["reason"], "open for 61 days");
    assert_eq!(of(&ready)["assignment_group"], "desktop");

    // Approvers see the alerts of their own groups; the user the candidates are about, and an
    // approver of another group, see none.
    assert_eq!(alerts_of(&h, ADA).await, got, "ada approves for desktop");
    assert_eq!(alerts_of(&h, BOB).await, Vec::<serde_json::Value>::new());
    assert_eq!(alerts_of(&h, UMA).await, Vec::<serde_json::Value>::new());
    let ada = h.ui_sign_in("ada").await;
    let page = h.ui(Method::GET, "/ui/alerts", Some(&ada), None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains(&revoking) && page.text().contains(&ready));
    let bob = h.ui_sign_in("bob").await;
    let page = h.ui(Method::GET, "/ui/alerts", Some(&bob), None).await;
    assert!(page.text().contains("id=\"no-alerts\""), "{}", page.text());

    // A page at a time: one alert, then the next named by the Link header, then no more.
    let r = h.get("/api/v1/alerts?limit=1", SAM).await;
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    let link = r.header("link").expect("a next page").to_string();
    let next = link
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_string();
    let r = h.get(&next, SAM).await;
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    let mut both: Vec<serde_json::Value> = vec![];
    both.extend(
        h.get("/api/v1/alerts?limit=1", SAM)
            .await
            .json()
            .as_array()
            .unwrap()
            .clone(),
    );
    both.extend(r.json().as_array().unwrap().clone());
    assert_eq!(both.len(), 2);
    assert_ne!(both[0]["number"], both[1]["number"]);
    assert!(r.header("link").is_none(), "the last page names none");
    let r = h.get("/api/v1/alerts?limit=0", SAM).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // The sam admin's page counts them.
    let sam = h.ui_sign_in("sam").await;
    let page = h.ui(Method::GET, "/ui/alerts", Some(&sam), None).await;
    assert!(page.text().contains("2 alert(s)."), "{}", page.text());
}
