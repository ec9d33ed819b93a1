//! Verified reclamation on the embedded SQLite store: every scenario of
//! `reclaim_tests::verification`, with the outbox's worker running the effects.
//! (`functions/aws/tests/dynamodb/verification.rs` runs the same scenarios on DynamoDB.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use reclaim_api::App;
use reclaim_tests::verification::{self as scenario, Backend, ScriptedVendor, World};
use reclaim_tests::Harness;
use reclaim_workflow::ports::{Clock, Revoker};
use reclaim_workflow::VerifyResult;
use std::sync::Arc;

struct Sqlite(Harness);

#[async_trait]
impl Backend for Sqlite {
    fn app(&self) -> &App {
        &self.0.embedded.app
    }

    async fn drain(&self) {
        self.0.drain().await;
    }
}

async fn sqlite(clock: Arc<dyn Clock>, revoker: Arc<dyn Revoker>) -> Sqlite {
    Sqlite(Harness::with_clock_and_revoker(clock, revoker).await)
}

#[tokio::test]
async fn removed_then_verified_absent_closes_complete() {
    scenario::removed_then_verified_absent_closes_complete(sqlite).await;
}

#[tokio::test]
async fn removed_but_still_present_is_retried_then_needs_attention() {
    scenario::removed_but_still_present_is_retried_then_needs_attention(sqlite).await;
}

#[tokio::test]
async fn pending_is_verified_after_its_wait_then_closes() {
    scenario::pending_is_verified_after_its_wait_then_closes(sqlite).await;
}

#[tokio::test]
async fn pending_past_the_limit_needs_attention() {
    scenario::pending_past_the_limit_needs_attention(sqlite).await;
}

#[tokio::test]
async fn reappeared_seat_is_an_alert_leaves_savings_and_reopens_linked() {
    scenario::reappeared_seat_is_an_alert_leaves_savings_and_reopens_linked(sqlite).await;
}

#[tokio::test]
async fn reappeared_seat_is_accepted_with_a_reason() {
    scenario::reappeared_seat_is_accepted_with_a_reason(sqlite).await;
}

#[tokio::test]
async fn a_manual_close_is_verified_by_check_now_and_the_rechecks_go_on() {
    scenario::a_manual_close_is_verified_by_check_now_and_the_rechecks_go_on(sqlite).await;
}

#[tokio::test]
async fn the_workspace_shows_a_reappeared_seat_and_reopens_it_from_the_page() {
    use axum::http::{Method, StatusCode};
    let vendor = ScriptedVendor::new(
        vec![scenario::removed()],
        vec![VerifyResult::Absent, VerifyResult::Present],
    );
    let w = World::new(vendor, sqlite).await;
    let id = w.reclaimed("Acrobat Pro", "LAPTOP-8").await;
    let due = w.candidate(&id).await.due_at.expect("re-check due");
    w.tick_at(due).await;
    let h = &w.backend.0;
    let sam = h.ui_sign_in("sam").await;
    let path = format!("/ui/candidates/{id}");

    let page = h.ui(Method::GET, &path, Some(&sam), None).await;
    assert_eq!(page.status, StatusCode::OK);
    let text = page.page();
    for shown in [
        "data-status=\"verified\"",
        "data-reappeared=\"yes\"",
        "Savings lost",
        "verified absent at the vendor",
        "id=\"do-reopen\"",
        "id=\"do-accept-reappeared\"",
        "re-check on day 7: the vendor shows Adobe Acrobat Pro for uma on LAPTOP-8 again",
    ] {
        assert!(text.contains(shown), "{shown} missing: {text}");
    }
    assert!(!text.contains("id=\"do-check-now\""), "decide first");
    // The history reads as words, and exports for an auditor.
    for said in [
        "The plugin removed it",
        "The vendor confirms it is gone",
        "Re-check: it is back at the vendor",
        "stays Closed Complete",
    ] {
        assert!(text.contains(said), "{said} missing: {text}");
    }
    let csv = h
        .get(
            &format!("/api/v1/candidates/{id}/history.csv"),
            reclaim_tests::SAM,
        )
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.text()
            .contains(",Re-check: it is back at the vendor,verified-present,"),
        "{}",
        csv.text()
    );

    let alerts = h
        .ui(Method::GET, "/ui/alerts", Some(&sam), None)
        .await
        .page();
    assert!(alerts.contains("class=\"reappeared\""), "{alerts}");
    assert!(alerts.contains("Reappeared: a re-check on"), "{alerts}");
    let savings = h
        .ui(Method::GET, "/ui/savings", Some(&sam), None)
        .await
        .page();
    assert!(
        savings.contains("<p class=\"big\" id=\"reappeared\">USD 239.88</p>"),
        "{savings}"
    );

    let version = w.candidate(&id).await.version.to_string();
    let r = h
        .ui(
            Method::POST,
            &format!("{path}/action"),
            Some(&sam),
            Some(&[
                ("csrf", &sam.csrf),
                ("action", "reopen"),
                ("expected_version", &version),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let to = r
        .header("location")
        .expect("to the new candidate")
        .to_string();
    assert!(to.ends_with("?done=reopened"), "{to}");
    let again = h.ui(Method::GET, &to, Some(&sam), None).await.page();
    assert!(again.contains("Reopened from"), "{again}");
    assert!(again.contains("data-state=\"ready\""), "{again}");
    let old = h.ui(Method::GET, &path, Some(&sam), None).await.page();
    assert!(old.contains("id=\"resolution\">reopened as"), "{old}");
}
