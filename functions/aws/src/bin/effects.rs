//! The `effects` function: DynamoDB stream batches → email, tasks, revocations.
//!
//! Revocations run through the plugin host, built once at init over the precompiled plugins
//! packaged with the function (`RECLAIM_PLUGINS_DIR`, see [`reclaim_aws::plugins`]): loaded
//! with `deserialize`, never compiled here. Without plugins, revocations become manual tasks.

use aws_lambda_events::dynamodb::Event;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    reclaim_aws::wiring::init_tracing();
    // The plugins load on a blocking thread while the SDK is configured and the secrets read.
    let loading = reclaim_aws::plugins::start_loading();
    let w = reclaim_aws::wiring::build_loading(reclaim_aws::wiring::Function::Effects, |clients| {
        reclaim_aws::plugins::finish_loading(loading, clients)
    })
    .await?;
    let app = &w.app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<_, lambda_runtime::Error>(reclaim_aws::stream::handle(app, &event.payload).await)
    }))
    .await
}
