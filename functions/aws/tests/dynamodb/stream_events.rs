//! The `effects` handler on a DynamoDB Streams event in the documented shape (INSERT, MODIFY
//! with old and new images, REMOVE, a history item, a corrupt record): what it runs, what it
//! skips, and how it reports a record that must be retried.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use aws_lambda_events::dynamodb::Event;
use aws_sdk_dynamodb::config::Credentials;
use reclaim_api::{App, HmacLinkSigner, ManualTaskRevoker};
use reclaim_aws::config::{AwsSettings, LinkKeySource};
use reclaim_aws::stream::{decode_record, handle, Work};
use reclaim_aws::wiring::{self, Function};
use reclaim_aws::{DynamoStore, SesMailer};
use reclaim_workflow::ports::{CandidateWrite, SystemClock, TaskStore};
use reclaim_workflow::{State, TaskKind};
use std::sync::Arc;

fn fixture() -> Event {
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/dynamodb-stream.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn settings(table: &str, sender: &str) -> AwsSettings {
    AwsSettings {
        table: table.into(),
        sender: sender.into(),
        configuration_set: None,
        public_url: "https://links.reclaim.example.com".into(),
        link_key: LinkKeySource::Inline("k".repeat(32)),
        link_ttl_days: 14,
        currency: "USD".into(),
        price_period: reclaim_workflow::PricePeriod::Yearly,
        user_claim: "sub".into(),
        oidc: None,
    }
}

fn app_over(store: DynamoStore, ses: aws_sdk_sesv2::Client, sender: &str) -> App {
    let s = settings(store.table(), sender);
    let clock = Arc::new(SystemClock);
    let mailer = SesMailer::new(ses, store.clone(), sender, None, clock.clone());
    wiring::app(
        store,
        Arc::new(mailer),
        Arc::new(ManualTaskRevoker),
        clock,
        Arc::new(HmacLinkSigner::new("k".repeat(32)).unwrap()),
        &s,
    )
}

#[test]
fn each_record_is_run_or_skipped_for_a_stated_reason() {
    let event = fixture();
    let got: Vec<Result<Work, String>> = event
        .records
        .iter()
        .map(|r| decode_record(r).map_err(|e| e.to_string()))
        .collect();
    assert_eq!(got[0], Ok(Work::Skip("no effects")), "the import");
    match &got[1] {
        Ok(Work::Run { candidate, effects }) => {
            assert_eq!(candidate.version, 1);
            assert_eq!(candidate.state, State::AwaitingUser);
            assert_eq!(effects.len(), 2);
            assert!(effects.iter().all(|e| e.version == 1));
        }
        other => panic!("the Reclaim transition runs its effects: {other:?}"),
    }
    assert_eq!(got[2], Ok(Work::Skip("not a candidate")), "a history item");
    assert_eq!(
        got[3],
        Ok(Work::Skip("version did not advance")),
        "a rewrite of the same version"
    );
    assert!(
        got[4].is_err(),
        "a corrupt record is reported: {:?}",
        got[4]
    );
    assert_eq!(got[5], Ok(Work::Skip("not a write")), "a removal");
}

#[tokio::test]
async fn a_batch_runs_once_and_a_replay_sends_nothing_twice() {
    let sdk = common::sdk().await;
    let store = common::fresh_store("stream").await;
    let ses = aws_sdk_sesv2::Client::new(&sdk);
    let sender = format!("{}@example.com", common::table_name("sender"));
    ses.create_email_identity()
        .email_identity(&sender)
        .send()
        .await
        .unwrap();
    // The `effects` function as its `main` wires it; its calls are checked against its role.
    let functions = common::Functions::new(&store, &sender, "k".repeat(32).as_str()).await;
    let app = functions
        .start(Function::Effects, Arc::new(ManualTaskRevoker))
        .await
        .app;
    // Stored as the recorded transition left it: a message is sent only while it still
    // describes the candidate (the question, while it awaits the user).
    let mut c = reclaim_workflow::testing::candidate();
    c.state = State::AwaitingUser;
    if let Some(u) = c.user.as_mut() {
        u.email = Some("uma.fixture@example.com".into());
    }
    store.insert(&[c]).await.unwrap();
    let from_us = || async {
        common::sent_mail()
            .await
            .into_iter()
            .filter(|m| m["source"] == sender.as_str())
            .collect::<Vec<_>>()
    };

    let event = fixture();
    let r = handle(&app, &event).await;
    assert!(r.batch_item_failures.is_empty(), "{r:?}");
    let mail = from_us().await;
    assert_eq!(mail.len(), 1);
    assert_eq!(
        mail[0]["destinations"]["ToAddresses"][0],
        "uma.fixture@example.com"
    );
    let tasks = store.tasks_for("c-1").await.unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].kind, TaskKind::UserAnswer);
    assert_eq!(tasks[0].id, "c-1:1:task-user-answer");

    // Lambda delivers the batch again (a retry after a timeout): nothing is done twice.
    let r = handle(&app, &event).await;
    assert!(r.batch_item_failures.is_empty());
    assert_eq!(from_us().await.len(), 1);
    assert_eq!(store.tasks_for("c-1").await.unwrap(), tasks);
    functions.check();
}

#[tokio::test]
async fn an_unreachable_store_reports_the_record_to_resume_from() {
    // Every call fails to connect (retried by the SDK, then given up): a retryable failure.
    let dead = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url("http://127.0.0.1:9")
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .retry_config(RetryConfig::standard().with_max_attempts(2))
        .load()
        .await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&dead), "nowhere");
    let app = app_over(
        store,
        aws_sdk_sesv2::Client::new(&dead),
        "reclaim@example.com",
    );
    let event = fixture();
    let r = handle(&app, &event).await;
    let ids: Vec<_> = r
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    // The import's insert (the first with work: what it adds to the savings totals) is where
    // Lambda must resume; nothing after it was attempted, so nothing is replayed twice.
    assert_eq!(
        ids,
        vec![event.records[0].change.sequence_number.clone()],
        "{r:?}"
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(
        json["batchItemFailures"][0]["itemIdentifier"],
        event.records[0]
            .change
            .sequence_number
            .clone()
            .unwrap()
            .as_str()
    );
}
