//! The usage connectors' runner on DynamoDB (the emulator): every scenario of
//! `reclaim_tests::connectors`, runs kept as items of their connector's partition.
//! (`tests/tests/connectors.rs` runs the same scenarios on SQLite.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use async_trait::async_trait;
use reclaim_api::{App, HmacLinkSigner};
use reclaim_aws::config::{AwsSettings, LinkKeySource};
use reclaim_aws::{wiring, SesMailer};
use reclaim_tests::connectors as scenario;
use reclaim_tests::verification::{Backend, ScriptedVendor};
use reclaim_workflow::ports::Clock;
use std::sync::Arc;

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
    let sdk = common::sdk().await;
    let store = common::fresh_store("connectors").await;
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
    Dynamo(wiring::app(
        store,
        Arc::new(mailer),
        ScriptedVendor::new(vec![], vec![]),
        clock,
        Arc::new(HmacLinkSigner::new("k".repeat(32)).unwrap()),
        &settings,
    ))
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
