//! The usage connectors' runner on DynamoDB (the emulator): every scenario of
//! `reclaim_tests::connectors`, runs kept as items of their connector's partition.
//! (`tests/tests/it/connectors.rs` runs the same scenarios on SQLite.) Then the `connectors`
//! function, wired as its `main` wires it: a run longer than one invocation goes on from its
//! cursor in the next, and with no connector loaded an invocation returns at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use async_trait::async_trait;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use reclaim_api::{App, HmacLinkSigner, ManualTaskRevoker};
use reclaim_aws::calls::Function;
use reclaim_aws::config::{AwsSettings, LinkKeySource};
use reclaim_aws::{wiring, DynamoStore, SesMailer};
use reclaim_tests::connectors as scenario;
use reclaim_tests::verification::{Backend, ScriptedVendor};
use reclaim_workflow::ports::{
    CandidateFilter, Clock, CollectFailure, CollectedPage, ConnectorInfo, RunState, SystemClock,
    UsageSources,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Dynamo(App);

#[async_trait]
impl Backend for Dynamo {
    fn app(&self) -> &App {
        &self.0
    }

    /// The scenarios run no effects.
    async fn drain(&self) {}
}

async fn dynamo(clock: Arc<dyn Clock>) -> Dynamo {
    Dynamo(app_over(common::fresh_store("connectors").await, clock).await)
}

/// The application over `store`, as an operator (or another function) sees the table.
async fn app_over(store: DynamoStore, clock: Arc<dyn Clock>) -> App {
    let sdk = common::sdk().await;
    let sender = "reclaim@example.com".to_string();
    let settings = AwsSettings {
        table: store.table().into(),
        sender: sender.clone(),
        configuration_set: None,
        public_url: "https://links.reclaim.example.com".into(),
        link_key: LinkKeySource::Inline("k".repeat(32)),
        link_ttl_days: 14,
        currency: "USD".into(),
        price_period: reclaim_workflow::PricePeriod::Yearly,
        user_claim: "sub".into(),
        oidc: None,
    };
    let mailer = SesMailer::new(
        aws_sdk_sesv2::Client::new(&sdk),
        store.clone(),
        &sender,
        None,
        clock.clone(),
    );
    wiring::app(
        store,
        Arc::new(mailer),
        ScriptedVendor::new(vec![], vec![]),
        clock,
        Arc::new(HmacLinkSigner::new("k".repeat(32)).unwrap()),
        &settings,
    )
}

#[tokio::test]
async fn a_run_of_several_pages_equals_the_file_import() {
    scenario::a_run_of_several_pages_equals_the_file_import(dynamo).await;
}

#[tokio::test]
async fn a_crashed_run_resumes_from_its_cursor_without_duplicates() {
    scenario::a_crashed_run_resumes_from_its_cursor_without_duplicates(dynamo).await;
}

#[tokio::test]
async fn page_errors_are_retried_or_end_the_run() {
    scenario::page_errors_are_retried_or_end_the_run(dynamo).await;
}

#[tokio::test]
async fn report_only_rules_create_nothing() {
    scenario::report_only_rules_create_nothing(dynamo).await;
}

/// Its Reclaim's effects (the ITIL user's task) run from the table's stream, as in the
/// verification scenarios.
#[tokio::test]
async fn itil_people_a_connector_finds_are_asked_with_a_task() {
    let _one = common::STREAM_TURN.lock().await;
    scenario::itil_people_a_connector_finds_are_asked_with_a_task(|clock| {
        super::verification::dynamo(clock, ScriptedVendor::new(vec![], vec![]))
    })
    .await;
}

/// A vendor that takes `page_time` to answer each page of the scripted connector.
struct Slow {
    inner: Arc<scenario::ScriptedSource>,
    page_time: Duration,
}

#[async_trait]
impl UsageSources for Slow {
    async fn connectors(&self) -> Result<Vec<ConnectorInfo>, reclaim_workflow::ports::StoreError> {
        self.inner.connectors().await
    }

    async fn collect(
        &self,
        connector: &str,
        cursor: Option<&str>,
        pages_done: u32,
    ) -> Result<CollectedPage, CollectFailure> {
        tokio::time::sleep(self.page_time).await;
        self.inner.collect(connector, cursor, pages_done).await
    }
}

fn scheduled() -> EventBridgeEvent<serde_json::Value> {
    serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/tests/fixtures/eventbridge-scheduled.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap()
}

const KEY: &str = "0123456789abcdef0123456789abcdef-connectors";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_longer_than_one_invocation_continues_from_its_cursor_in_the_next() {
    let store = common::fresh_store("conn-invocations").await;
    let operator = app_over(store.clone(), Arc::new(SystemClock)).await;
    scenario::rules(&operator).await;
    let functions = common::Functions::new(&store, "reclaim@example.com", KEY).await;
    let w = functions
        .start(Function::Connectors, Arc::new(ManualTaskRevoker))
        .await;
    let rows = scenario::usage_rows(chrono::Utc::now());
    let source = Arc::new(scenario::ScriptedSource::new(&rows, 10));
    let mut app = w.app.clone();
    // Each page outlasts an invocation's time for the connectors: every invocation collects
    // at most one page, then saves the run and leaves it to the next.
    app.ports.sources = Arc::new(Slow {
        inner: source.clone(),
        page_time: Duration::from_millis(700),
    });
    let tick = scheduled();
    let mut seen = Vec::new();
    for _ in 0..20 {
        let until = Instant::now() + Duration::from_millis(500);
        let report = reclaim_aws::connectors::handle(&app, &tick, until)
            .await
            .unwrap();
        let [run] = report.runs.as_slice() else {
            panic!("one run per invocation: {report:?}")
        };
        seen.push((run.seq, run.pages, run.state));
        if run.state != RunState::Running {
            break;
        }
        // Released for the next invocation at once, not after its lease.
        assert!(run.lease_until <= chrono::Utc::now(), "{run:?}");
    }
    let last = *seen.last().unwrap();
    assert_eq!(last, (1, 4, RunState::Finished), "{seen:?}");
    assert!(seen.len() >= 4, "one page at most per invocation: {seen:?}");
    assert!(
        seen.windows(2).all(|w| w[1].1 <= w[0].1 + 1),
        "one page at most per invocation: {seen:?}"
    );
    assert_eq!(
        source.asked.lock().unwrap().clone(),
        vec![0, 1, 2, 3],
        "every page once, each from the cursor the last one saved"
    );

    // One run, finished, with every row; its candidates are those of an uninterrupted run.
    let runs = operator
        .ports
        .runs
        .runs(scenario::CONNECTOR, 10)
        .await
        .unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = &runs[0];
    assert_eq!((run.pages, run.rows), (4, 37), "{run:?}");
    let candidates = operator
        .list_all(&CandidateFilter::default())
        .await
        .unwrap();
    assert_eq!(run.created as usize, candidates.len());
    let uninterrupted = dynamo(Arc::new(SystemClock)).await;
    let mut other = uninterrupted.0.clone();
    scenario::rules(&other).await;
    other.ports.sources = Arc::new(scenario::ScriptedSource::new(&rows, 10));
    let whole = other
        .run_connector(scenario::CONNECTOR, "schedule", None)
        .await
        .unwrap();
    assert_eq!(
        (
            whole.created,
            whole.report_only,
            &whole.skipped,
            &whole.notes
        ),
        (run.created, run.report_only, &run.skipped, &run.notes)
    );

    // Not due again until its schedule says so: the next invocation runs nothing.
    let next =
        reclaim_aws::connectors::handle(&app, &tick, Instant::now() + Duration::from_secs(5))
            .await
            .unwrap();
    assert!(next.runs.is_empty(), "{next:?}");
    functions.check();
}

#[tokio::test]
async fn with_no_connector_loaded_an_invocation_returns_at_once() {
    let store = common::fresh_store("conn-none").await;
    let functions = common::Functions::new(&store, "reclaim@example.com", KEY).await;
    let w = functions
        .start(Function::Connectors, Arc::new(ManualTaskRevoker))
        .await;
    assert!(w.sources.is_none());
    let _init = functions.check();
    let report = reclaim_aws::connectors::handle(
        &w.app,
        &scheduled(),
        Instant::now() + Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert!(report.runs.is_empty());
    assert!(functions.check().is_empty(), "no call to AWS");

    // Only the schedule invokes it.
    let mut other = scheduled();
    other.source = "aws.s3".into();
    let refused = reclaim_aws::connectors::handle(&w.app, &other, Instant::now()).await;
    assert!(
        matches!(
            refused,
            Err(reclaim_aws::connectors::ConnectorsError::NotScheduled { .. })
        ),
        "{refused:?}"
    );
}
