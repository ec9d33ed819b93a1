//! The usage connectors' runner on SQLite: every scenario of `reclaim_tests::connectors`.
//! (`functions/aws/tests/connectors.rs` runs the same scenarios on DynamoDB.)

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
