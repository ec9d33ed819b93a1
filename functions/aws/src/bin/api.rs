//! The `api` function: the authenticated admin and approver JSON API and the workspace pages.
//! API Gateway's JWT authorizer checks the token; the claims it passes name the user, on the
//! JSON API and on the pages alike.

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
    let router = reclaim_aws::wiring::api_router(w.app, &w.settings.user_claim, &w.session_key);
    lambda_http::run(router).await
}
