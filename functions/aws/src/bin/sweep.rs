//! The `sweep` function: the EventBridge schedule → one scheduler tick (reminders,
//! no-response auto-reclamation, due retries); an operator's invocation → the savings
//! totals' rebuild (`reclaim_aws::sweep::REBUILD_SAVINGS`).

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
            // Stop a rebuild with time to answer: the deadline is in milliseconds since the epoch.
            let left = std::time::SystemTime::UNIX_EPOCH
                + std::time::Duration::from_millis(event.context.deadline);
            let left = left
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default()
                .saturating_sub(std::time::Duration::from_secs(20));
            reclaim_aws::sweep::handle(app, &event.payload, std::time::Instant::now() + left).await
        },
    ))
    .await
}
