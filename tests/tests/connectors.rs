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
