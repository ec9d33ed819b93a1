//! A rule's exclusions are a guarantee: checked again at Reclaim and before every removal,
//! whatever made the candidate (an import, a rule changed since), and overridden only by a sam
//! admin on one candidate, with a comment.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::StatusCode;
use reclaim_tests::*;
use reclaim_workflow::{Group, Rule, State, User};
use serde_json::{json, Value};

/// The harness's silent rule (removal without asking), with these exclusions.
async fn silent_rule_excluding(h: &Harness, exclusions: Value) {
    let rule: Rule = serde_json::from_value(json!({
        "id": "silent", "name": "Remove without asking", "notify_user": false,
        "days_before_auto_reclamation": 0, "assignment_group": "desktop",
        "exclusions": exclusions,
    }))
    .unwrap();
    h.embedded.app.ports.rules.put_rule(&rule).await.unwrap();
}

async fn reclaim(h: &Harness, n: &str) -> Resp {
    let r = h
        .post(&format!("/api/v1/candidates/{n}/reclaim"), SAM, json!({}))
        .await;
    h.drain().await;
    r
}

async fn refused_as_excluded(h: &Harness, n: &str, why: &str) {
    let r = reclaim(h, n).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "excluded", "{}", r.text());
    assert!(r.text().contains(why), "{}", r.text());
    let c = h.candidate(n).await;
    assert_eq!(c.state, State::Ready, "nothing happened");
    let last = h.history(n).await.pop().unwrap();
    assert_eq!(last.event, "exclusion-held");
    assert!(last.reason.unwrap_or_default().contains(why));
    assert!(
        h.mail_to("uma@example.com").await.is_empty(),
        "nobody was asked"
    );
}

#[tokio::test]
async fn an_excluded_user_is_not_reclaimed_and_the_reason_is_on_the_history() {
    let h = Harness::new().await;
    silent_rule_excluding(&h, json!({"users": ["uma"]})).await;
    let n = h.create_one(json!({"rule": "silent"})).await;
    refused_as_excluded(&h, &n, "user uma is excluded").await;
}

#[tokio::test]
async fn a_member_of_an_excluded_group_is_not_reclaimed() {
    let h = Harness::new().await;
    h.embedded
        .app
        .ports
        .directory
        .put_group(&Group {
            id: "board".into(),
            name: "The board".into(),
            email: None,
            members: vec!["uma".into()],
        })
        .await
        .unwrap();
    silent_rule_excluding(&h, json!({"groups": ["board"]})).await;
    let n = h.create_one(json!({"rule": "silent"})).await;
    refused_as_excluded(&h, &n, "members of group board are excluded").await;
}

#[tokio::test]
async fn a_vip_is_not_reclaimed_whether_the_row_or_the_directory_says_so() {
    let h = Harness::new().await;
    silent_rule_excluding(&h, json!({"vips": true})).await;
    // The imported row says VIP.
    let n = h
        .create_one(json!({"rule": "silent", "user_vip": true}))
        .await;
    refused_as_excluded(&h, &n, "VIP users are excluded").await;
    // The row does not, but the directory does now.
    let m = h.create_one(json!({"rule": "silent"})).await;
    let dir = &h.embedded.app.ports.directory;
    let mut uma: User = dir.user("uma").await.unwrap().unwrap();
    uma.vip = true;
    dir.put_user(&uma).await.unwrap();
    refused_as_excluded(&h, &m, "VIP users are excluded").await;
}

#[tokio::test]
async fn a_recently_provisioned_user_is_not_reclaimed() {
    let h = Harness::new().await;
    silent_rule_excluding(&h, json!({"provisioned_within_days": 30})).await;
    let recent = (chrono::Utc::now() - chrono::Duration::days(3)).to_rfc3339();
    let n = h
        .create_one(json!({"rule": "silent", "provisioned_at": recent}))
        .await;
    refused_as_excluded(&h, &n, "provisioned less than 30 days ago").await;
    let long_ago = (chrono::Utc::now() - chrono::Duration::days(300)).to_rfc3339();
    let m = h
        .create_one(json!({"rule": "silent", "provisioned_at": long_ago}))
        .await;
    assert_eq!(reclaim(&h, &m).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_rule_that_gains_an_exclusion_holds_it_for_candidates_made_before() {
    let h = Harness::new().await;
    let n = h.create_one(json!({"rule": "silent"})).await;
    silent_rule_excluding(&h, json!({"users": ["uma"]})).await;
    refused_as_excluded(&h, &n, "user uma is excluded").await;
}

#[tokio::test]
async fn a_user_excluded_after_reclaim_is_not_removed_and_needs_attention() {
    let h = Harness::new().await;
    // Asked first; excluded while the question waits; the user answers "remove it".
    let n = h.create_one(json!({})).await;
    assert_eq!(reclaim(&h, &n).await.status, StatusCode::OK);
    let rule: Rule = serde_json::from_value(json!({
        "id": "notify", "name": "Ask the user", "notify_user": true,
        "days_before_auto_reclamation": 14, "reminder_days": [3, 7],
        "assignment_group": "desktop", "exclusions": {"vips": true},
    }))
    .unwrap();
    h.embedded.app.ports.rules.put_rule(&rule).await.unwrap();
    let dir = &h.embedded.app.ports.directory;
    let mut uma: User = dir.user("uma").await.unwrap().unwrap();
    uma.vip = true;
    dir.put_user(&uma).await.unwrap();
    let r = h
        .post(
            &format!("/api/v1/candidates/{n}/answer"),
            UMA,
            json!({"keep": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    h.drain().await;
    let c = h.candidate(&n).await;
    assert_eq!(c.state, State::AttentionRequired, "{c:?}");
    assert!(c
        .attention
        .unwrap_or_default()
        .contains("not removed: rule Ask the user excludes this user: VIP users are excluded"));
    let tasks = h.embedded.app.ports.tasks.tasks_for(&c.id).await.unwrap();
    assert!(
        tasks
            .iter()
            .all(|t| t.kind != reclaim_workflow::TaskKind::ManualRemoval),
        "no removal ran: {tasks:?}"
    );
}

#[tokio::test]
async fn a_sam_admin_overrides_the_exclusion_on_one_candidate_with_a_comment() {
    let h = Harness::new().await;
    silent_rule_excluding(&h, json!({"vips": true})).await;
    let n = h
        .create_one(json!({"rule": "silent", "user_vip": true}))
        .await;
    let other = h
        .create_one(json!({"rule": "silent", "user_vip": true}))
        .await;
    let path = format!("/api/v1/candidates/{n}/override-exclusion");
    // Not without a comment, and not by anyone else.
    let r = h.post(&path, SAM, json!({"comment": "  "})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    let r = h.post(&path, ADA, json!({"comment": "mine"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = h
        .post(
            &path,
            SAM,
            json!({"comment": "the owner asked for the seat to go"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        h.history(&n).await.pop().unwrap().reason.as_deref(),
        Some("exclusion overridden: the owner asked for the seat to go")
    );
    // This one goes ahead, to the removal; the other still holds.
    assert_eq!(reclaim(&h, &n).await.status, StatusCode::OK);
    assert_eq!(h.candidate(&n).await.state, State::AwaitingRevocation);
    refused_as_excluded(&h, &other, "VIP users are excluded").await;
}

#[tokio::test]
async fn bulk_reclaim_reports_excluded_candidates_apart() {
    let h = Harness::new().await;
    silent_rule_excluding(&h, json!({"vips": true})).await;
    let vip = h
        .create_one(json!({"rule": "silent", "user_vip": true}))
        .await;
    let plain = h.create_one(json!({"rule": "silent"})).await;
    // The preview says what each would do and does nothing.
    let r = h
        .post(
            "/api/v1/candidates/reclaim-all?dry_run=true",
            SAM,
            json!({"state": "ready"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let items = r.json()["items"].as_array().unwrap().clone();
    let outcome = |n: &str| {
        items
            .iter()
            .find(|i| i["number"] == n)
            .map(|i| i["outcome"].clone())
            .unwrap()
    };
    assert_eq!(outcome(&vip), "excluded");
    assert_eq!(outcome(&plain), "remove-now");
    assert_eq!(h.candidate(&plain).await.state, State::Ready);
    assert_eq!(h.history(&vip).await.len(), 0, "a preview writes nothing");
    let r = h
        .post(
            "/api/v1/candidates/reclaim-all",
            SAM,
            json!({"state": "ready"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let body = r.json();
    assert_eq!(body["reclaimed"], json!([plain]), "{body}");
    assert_eq!(body["excluded"][0]["number"], json!(vip), "{body}");
    assert!(body["excluded"][0]["error"]
        .as_str()
        .unwrap()
        .contains("VIP users are excluded"));
}

/// A rule store that counts reads, around the real one.
struct CountingRules {
    inner: std::sync::Arc<dyn reclaim_workflow::ports::RuleStore>,
    reads: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl reclaim_workflow::ports::RuleStore for CountingRules {
    async fn rule(&self, id: &str) -> Result<Option<Rule>, reclaim_workflow::ports::StoreError> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.rule(id).await
    }
    async fn rules(&self) -> Result<Vec<Rule>, reclaim_workflow::ports::StoreError> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.rules().await
    }
    async fn put_rule(&self, rule: &Rule) -> Result<(), reclaim_workflow::ports::StoreError> {
        self.inner.put_rule(rule).await
    }
    async fn delete_rule(&self, id: &str) -> Result<bool, reclaim_workflow::ports::StoreError> {
        self.inner.delete_rule(id).await
    }
}

#[tokio::test]
async fn a_bulk_reclaim_reads_the_rules_once_and_still_holds_each_exclusion() {
    let h = Harness::new().await;
    silent_rule_excluding(&h, json!({"vips": true})).await;
    let vip = h
        .create_one(json!({"rule": "silent", "user_vip": true}))
        .await;
    let mut plain = Vec::new();
    for _ in 0..6 {
        plain.push(h.create_one(json!({"rule": "silent"})).await);
    }
    let counting = std::sync::Arc::new(CountingRules {
        inner: h.embedded.app.ports.rules.clone(),
        reads: Default::default(),
    });
    let mut ports = h.embedded.app.ports.clone();
    ports.rules = counting.clone();
    let app = reclaim_api::App::new(ports, (*h.embedded.app.settings).clone());
    let sam = reclaim_workflow::Actor::Person(app.principal("sam").await.unwrap().unwrap());
    let ready = reclaim_workflow::ports::CandidateFilter {
        state: Some(State::Ready),
        ..Default::default()
    };
    let ready_now = app.ready_matching(&ready, 100).await.unwrap();
    app.reclaim_preview(&ready_now, &sam).await.unwrap();
    let report = app.reclaim_all(&ready, &sam, &|_| {}).await.unwrap();
    assert_eq!(report.reclaimed.len(), plain.len(), "{report:?}");
    assert_eq!(report.excluded.len(), 1, "{report:?}");
    assert_eq!(report.excluded[0].number, vip);
    assert_eq!(
        counting.reads.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "one read of the rules for the preview, one for the Reclaim"
    );
}
