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
    let (revoker, host) = reclaim_aws::plugins::revoker_from_env()?;
    let w = reclaim_aws::wiring::build(reclaim_aws::wiring::Function::Effects, revoker).await?;
    if let Some(host) = &host {
        let prefix =
            std::env::var(reclaim_aws::plugins::VENDOR_SECRETS_PREFIX_ENV).unwrap_or_default();
        reclaim_aws::plugins::provide_store_secrets(host, &w.clients.secrets(), &prefix).await;
    }
    let app = &w.app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<_, lambda_runtime::Error>(reclaim_aws::stream::handle(app, &event.payload).await)
    }))
    .await
}
