//! Verified reclamation on DynamoDB (the emulator): every scenario of
//! `reclaim_tests::verification`, with the table's stream carrying each transition's effects
//! to the `effects` handler and the scheduler's tick reading the due index, as the sweep does.
//! (`tests/tests/it/verification.rs` runs the same scenarios on SQLite.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use async_trait::async_trait;
use aws_lambda_events::dynamodb::Event as StreamEvent;
use reclaim_api::{App, HmacLinkSigner};
use reclaim_aws::config::{AwsSettings, LinkKeySource};
use reclaim_aws::{wiring, SesMailer};
use reclaim_tests::verification::{self as scenario, Backend};
use reclaim_workflow::ports::{Clock, Revoker};
use std::sync::Arc;
use tokio::sync::Mutex;

pub(crate) struct Dynamo {
    app: App,
    stream: Mutex<common::StreamReader>,
}

#[async_trait]
impl Backend for Dynamo {
    fn app(&self) -> &App {
        &self.app
    }

    async fn drain(&self) {
        let mut stream = self.stream.lock().await;
        for _ in 0..50 {
            let event: StreamEvent = serde_json::from_value(stream.next_event().await).unwrap();
            if event.records.is_empty() {
                return;
            }
            let r = reclaim_aws::stream::handle(&self.app, &event).await;
            assert!(
                r.batch_item_failures.is_empty(),
                "the effects handler failed records: {r:?}"
            );
        }
        panic!("the stream kept producing records");
    }
}

pub(crate) async fn dynamo(clock: Arc<dyn Clock>, revoker: Arc<dyn Revoker>) -> Dynamo {
    let sdk = common::sdk().await;
    let store = common::fresh_store("verify").await;
    let ses = aws_sdk_sesv2::Client::new(&sdk);
    let sender = format!("{}@example.com", common::table_name("sender"));
    ses.create_email_identity()
        .email_identity(&sender)
        .send()
        .await
        .unwrap();
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
    let mailer = SesMailer::new(ses, store.clone(), &sender, None, clock.clone());
    let stream = Mutex::new(common::StreamReader::open(store.table()).await);
    let app = wiring::app(
        store,
        Arc::new(mailer),
        revoker,
        clock,
        Arc::new(HmacLinkSigner::new("k".repeat(32)).unwrap()),
        &settings,
    );
    Dynamo { app, stream }
}

#[tokio::test]
async fn removed_then_verified_absent_closes_complete() {
    let _one = common::STREAM_TURN.lock().await;
    scenario::removed_then_verified_absent_closes_complete(dynamo).await;
}

#[tokio::test]
async fn removed_but_still_present_is_retried_then_needs_attention() {
    let _one = common::STREAM_TURN.lock().await;
    scenario::removed_but_still_present_is_retried_then_needs_attention(dynamo).await;
}

#[tokio::test]
async fn pending_is_verified_after_its_wait_then_closes() {
    let _one = common::STREAM_TURN.lock().await;
    scenario::pending_is_verified_after_its_wait_then_closes(dynamo).await;
}

#[tokio::test]
async fn pending_past_the_limit_needs_attention() {
    let _one = common::STREAM_TURN.lock().await;
    scenario::pending_past_the_limit_needs_attention(dynamo).await;
}

#[tokio::test]
async fn reappeared_seat_is_an_alert_leaves_savings_and_reopens_linked() {
    let _one = common::STREAM_TURN.lock().await;
    scenario::reappeared_seat_is_an_alert_leaves_savings_and_reopens_linked(dynamo).await;
}

#[tokio::test]
async fn reappeared_seat_is_accepted_with_a_reason() {
    let _one = common::STREAM_TURN.lock().await;
    scenario::reappeared_seat_is_accepted_with_a_reason(dynamo).await;
}

#[tokio::test]
async fn a_manual_close_is_verified_by_check_now_and_the_rechecks_go_on() {
    let _one = common::STREAM_TURN.lock().await;
    scenario::a_manual_close_is_verified_by_check_now_and_the_rechecks_go_on(dynamo).await;
}
