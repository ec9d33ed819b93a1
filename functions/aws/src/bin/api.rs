//! The `api` function: the authenticated admin and approver JSON API. API Gateway's JWT
//! authorizer checks the token; the claims it passes name the user.

use reclaim_api::{admin_routes, ApiState, ManualTaskRevoker};
use reclaim_aws::wiring::JwtClaims;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    reclaim_aws::wiring::init_tracing();
    // Never runs a revocation (only `effects` does); the revoker is here because `App` has one.
    let w = reclaim_aws::wiring::build(Arc::new(ManualTaskRevoker)).await?;
    let auth = Arc::new(JwtClaims::new(w.settings.user_claim.clone()));
    let state = ApiState::new(w.app, auth).trusting_forwarded_for(true);
    lambda_http::run(admin_routes(state)).await
}
