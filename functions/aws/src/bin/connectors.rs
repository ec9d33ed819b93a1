//! The `connectors` function: the EventBridge schedule → the usage connectors that are due,
//! or whose run was left unfinished, each run until shortly before the invocation's end and
//! then left for the next invocation to resume from its cursor (see
//! `reclaim_aws::connectors`).
//!
//! The plugins load exactly as in `effects` (the same package, `RECLAIM_PLUGIN_CONFIG` and
//! `store:` secrets), on a blocking thread while the SDK is configured; the loaded plugins
//! that export `collect` are the application's usage sources. Without plugins there is
//! nothing to run, and each invocation returns at once.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    reclaim_aws::wiring::init_tracing();
    let loading = reclaim_aws::plugins::start_loading();
    let w =
        reclaim_aws::wiring::build_plugins(reclaim_aws::wiring::Function::Connectors, |clients| {
            reclaim_aws::plugins::finish_loading_sources(loading, clients)
        })
        .await?;
    let longest_page = w
        .sources
        .as_ref()
        .map(reclaim_aws::plugins::longest_page)
        .unwrap_or_default();
    let app = &w.app;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<EventBridgeEvent<serde_json::Value>>| async move {
            let until = reclaim_aws::connectors::until(
                event.context.deadline,
                longest_page,
                std::time::SystemTime::now(),
                std::time::Instant::now(),
            );
            reclaim_aws::connectors::handle(app, &event.payload, until).await
        },
    ))
    .await
}
