//! The usage connectors' runner on SQLite: every scenario of `reclaim_tests::connectors`.
//! (`functions/aws/tests/dynamodb/connectors.rs` runs the same scenarios on DynamoDB.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reclaim_tests::connectors as scenario;
use reclaim_tests::verification::{Backend, ScriptedVendor};
use reclaim_tests::Harness;
use reclaim_workflow::ports::Clock;
use std::sync::Arc;

struct Sqlite(Harness);

#[async_trait::async_trait]
impl Backend for Sqlite {
    fn app(&self) -> &reclaim_api::App {
        &self.0.embedded.app
    }

    async fn drain(&self) {
        self.0.drain().await;
    }
}

async fn sqlite(clock: Arc<dyn Clock>) -> Sqlite {
    Sqlite(Harness::with_clock_and_revoker(clock, ScriptedVendor::new(vec![], vec![])).await)
}

#[tokio::test]
async fn a_run_of_several_pages_equals_the_file_import() {
    scenario::a_run_of_several_pages_equals_the_file_import(sqlite).await;
}

#[tokio::test]
async fn a_crashed_run_resumes_from_its_cursor_without_duplicates() {
    scenario::a_crashed_run_resumes_from_its_cursor_without_duplicates(sqlite).await;
}

#[tokio::test]
async fn page_errors_are_retried_or_end_the_run() {
    scenario::page_errors_are_retried_or_end_the_run(sqlite).await;
}

#[tokio::test]
async fn report_only_rules_create_nothing() {
    scenario::report_only_rules_create_nothing(sqlite).await;
}

#[tokio::test]
async fn itil_people_a_connector_finds_are_asked_with_a_task() {
    scenario::itil_people_a_connector_finds_are_asked_with_a_task(sqlite).await;
}

/// `reclaim serve`'s worker starts a connector whose schedule says so, in the background of
/// its scheduler tick, and the run finishes.
#[tokio::test]
async fn the_worker_runs_a_due_connector() {
    let mut h = Harness::new().await;
    scenario::rules(&h.embedded.app).await;
    let rows = scenario::usage_rows(h.embedded.app.now());
    h.embedded.app.ports.sources = Arc::new(scenario::ScriptedSource::new(&rows, 10));
    let worker = h
        .embedded
        .start_worker(Some(std::time::Duration::from_millis(50)));
    let mut finished = None;
    for _ in 0..200 {
        let runs = h
            .embedded
            .app
            .ports
            .runs
            .runs(scenario::CONNECTOR, 5)
            .await
            .unwrap();
        if let Some(r) = runs
            .iter()
            .find(|r| r.state == reclaim_workflow::ports::RunState::Finished)
        {
            finished = Some((r.clone(), runs.len()));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    worker.shutdown().await;
    let (run, count) = finished.expect("the worker ran the connector");
    assert_eq!((run.seq, run.trigger.as_str(), count), (1, "schedule", 1));
    assert!(run.created > 0);
}

/// The API: a sam admin lists the connectors, presses *Run now* (202; a second press while it
/// runs is a conflict), a runner takes the run at once, and its counts are in the runs.
#[tokio::test]
async fn a_sam_admin_runs_a_connector_through_the_api() {
    use axum::http::StatusCode;
    use reclaim_tests::SAM;
    let clock = reclaim_tests::verification::SetClock::new();
    let rows = scenario::usage_rows(clock.now());
    let h = Harness::with_sources(Arc::new(scenario::ScriptedSource::new(&rows, 10))).await;
    scenario::rules(&h.embedded.app).await;

    let r = h.get("/api/v1/connectors", SAM).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()[0]["id"], scenario::CONNECTOR);
    assert_eq!(r.json()[0]["schedule"], "daily");
    assert_eq!(r.json()[0]["runs"], serde_json::json!([]));

    let path = format!("/api/v1/connectors/{}/run", scenario::CONNECTOR);
    let r = h.post(&path, SAM, serde_json::json!({})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(r.json()["trigger"], "sam");
    assert_eq!(r.json()["state"], "running");
    let again = h.post(&path, SAM, serde_json::json!({})).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text());

    // The runner (the worker's tick, or the connectors function) takes it at once.
    let done = h.embedded.app.run_due_connectors(None).await.unwrap();
    assert_eq!(done.len(), 1);
    let runs = h
        .get(
            &format!("/api/v1/connectors/{}/runs?limit=5", scenario::CONNECTOR),
            SAM,
        )
        .await;
    assert_eq!(runs.status, StatusCode::OK, "{}", runs.text());
    let run = &runs.json()[0];
    assert_eq!(
        (
            run["seq"].as_u64(),
            run["state"].as_str(),
            run["trigger"].as_str()
        ),
        (Some(1), Some("finished"), Some("sam"))
    );
    assert_eq!(run["rows"], 37);
    assert!(run["created"].as_u64().unwrap() > 0);

    // The rule's page names the connector its candidates came from.
    assert_eq!(run["created_by_rule"]["adobe-unused"], run["created"]);
    let sam = h.ui_sign_in("sam").await;
    let page = h
        .ui(
            axum::http::Method::GET,
            "/ui/rules/adobe-unused/edit",
            Some(&sam),
            None,
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text().contains("Candidates from usage connectors")
            && page.text().contains("Scripted usage</a> ("),
        "{}",
        page.text()
    );

    let missing = h
        .post("/api/v1/connectors/nope/run", SAM, serde_json::json!({}))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.text());
    let bad = h
        .get(
            &format!("/api/v1/connectors/{}/runs?limit=0", scenario::CONNECTOR),
            SAM,
        )
        .await;
    assert_eq!(
        bad.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        bad.text()
    );
}
