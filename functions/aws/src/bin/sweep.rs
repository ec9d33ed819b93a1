//! The `sweep` function: the EventBridge schedule → one scheduler tick (reminders,
//! no-response auto-reclamation, due retries).

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use reclaim_api::ManualTaskRevoker;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    reclaim_aws::wiring::init_tracing();
    let w = reclaim_aws::wiring::build(
        reclaim_aws::wiring::Function::Sweep,
        Arc::new(ManualTaskRevoker),
    )
    .await?;
    let app = &w.app;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<EventBridgeEvent<serde_json::Value>>| async move {
            reclaim_aws::sweep::handle(app, &event.payload).await
        },
    ))
    .await
}
