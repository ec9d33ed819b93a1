//! The `api` function: the authenticated admin and approver JSON API and the workspace pages.
//! API Gateway's JWT authorizer checks the JSON API's tokens and its claims name the caller;
//! the pages sign people in with the identity provider (sessions in DynamoDB).

use reclaim_api::ManualTaskRevoker;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    reclaim_aws::wiring::init_tracing();
    // Never runs a revocation (only `effects` does); the revoker is here because `App` has one.
    let w = reclaim_aws::wiring::build(
        reclaim_aws::wiring::Function::Api,
        Arc::new(ManualTaskRevoker),
    )
    .await?;
    let router = reclaim_aws::wiring::api_router(&w);
    lambda_http::run(router).await
}
