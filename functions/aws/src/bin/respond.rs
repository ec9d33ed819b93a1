//! The `respond` function: the public link pages (users' Yes/No, approvers' approve/reject).
//! Unauthenticated: the signed, single-use token in the link is the credential, and the
//! function's role can only read candidates and write transitions.

use reclaim_api::{public_routes, ApiState, ManualTaskRevoker, NoAuthentication};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    reclaim_aws::wiring::init_tracing();
    // Never runs a revocation (only `effects` does); the revoker is here because `App` has one.
    let w = reclaim_aws::wiring::build(
        reclaim_aws::wiring::Function::Respond,
        Arc::new(ManualTaskRevoker),
    )
    .await?;
    let state = ApiState::new(w.app, Arc::new(NoAuthentication)).trusting_forwarded_for(true);
    lambda_http::run(public_routes(state)).await
}
