//! The `effects` function: DynamoDB stream batches → email, tasks, revocations.
//!
//! Revocations go to the built-in manual-task revoker until the plugin host exposes its
//! `Revoker`; then it is built here, once, with the precompiled plugins.

use aws_lambda_events::dynamodb::Event;
use lambda_runtime::{service_fn, LambdaEvent};
use reclaim_api::ManualTaskRevoker;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    reclaim_aws::wiring::init_tracing();
    let w = reclaim_aws::wiring::build(Arc::new(ManualTaskRevoker)).await?;
    let app = &w.app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<_, lambda_runtime::Error>(reclaim_aws::stream::handle(app, &event.payload).await)
    }))
    .await
}
