//! The fakes answer like their vendors at the HTTP level, without a socket.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use reclaim_fakes::{csd, graph, scim, CsdState, GraphState, ScimState};
use serde_json::Value;
use tower::ServiceExt;

async fn call(router: axum::Router, req: Request<Body>) -> (StatusCode, Option<String>, Value) {
    let response = router.oneshot(req).await.unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, retry_after, json)
}

fn token_request(secret: &str) -> Request<Body> {
    Request::post("/fake-tenant/oauth2/v2.0/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "grant_type=client_credentials&client_id=fake-client&client_secret={secret}&scope=x"
        )))
        .unwrap()
}

#[tokio::test]
async fn graph_issues_tokens_only_for_the_right_secret_and_throttles_on_demand() {
    let state = GraphState::default();
    state.add_user("u-1", "one@example.com", &[graph::SKU_E5.0]);
    let app = graph::router(state.clone());

    let (status, _, body) = call(app.clone(), token_request("wrong")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");

    let (status, _, body) = call(app.clone(), token_request("fake-secret")).await;
    assert_eq!(status, StatusCode::OK);
    let token = body["access_token"].as_str().unwrap().to_owned();

    let details = || {
        Request::get("/v1.0/users/one@example.com/licenseDetails")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    state.throttle_next(1, 9);
    let (status, retry_after, _) = call(app.clone(), details()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after.as_deref(), Some("9"));
    let (status, _, body) = call(app.clone(), details()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["value"][0]["skuPartNumber"], "SPE_E5");

    let anonymous = Request::get("/v1.0/users/one@example.com")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(app, anonymous).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn scim_filters_by_user_name_and_patches_active() {
    let state = ScimState::default();
    state.add_user("u-1", "one@example.com", true);
    let app = scim::router(state.clone());
    let auth = "Bearer fake-scim-token";

    let list = Request::get("/scim/v2/Users?filter=userName%20eq%20%22one@example.com%22")
        .header("authorization", auth)
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = call(app.clone(), list).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["Resources"][0]["id"], "u-1");

    let patch = Request::patch("/scim/v2/Users/u-1")
        .header("authorization", auth)
        .header("content-type", "application/scim+json")
        .body(Body::from(
            r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}"#,
        ))
        .unwrap();
    assert_eq!(call(app.clone(), patch).await.0, StatusCode::NO_CONTENT);
    assert_eq!(state.active("u-1"), Some(false));

    let missing = Request::get("/scim/v2/Users/u-2")
        .header("authorization", auth)
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = call(app, missing).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["status"], "404");
}

#[tokio::test]
async fn csd_uninstall_completes_after_the_configured_status_reads() {
    let state = CsdState::default();
    state.add_app("app-1", "Snagit", &["PC-1"]);
    state.set_polls_before_gone(1);
    let app = csd::router(state.clone());
    let auth = "Bearer fake-csd-token";
    let status_read = || {
        Request::get(
            "/deviceAppManagement/mobileApps/app-1/deviceStatuses?$filter=deviceName%20eq%20'PC-1'",
        )
        .header("authorization", auth)
        .body(Body::empty())
        .unwrap()
    };
    let assign = Request::post("/deviceAppManagement/mobileApps/app-1/assignments")
        .header("authorization", auth)
        .header("content-type", "application/json")
        .body(Body::from(
            r#"{"intent":"uninstall","target":{"deviceName":"PC-1"}}"#,
        ))
        .unwrap();
    assert_eq!(call(app.clone(), assign).await.0, StatusCode::CREATED);
    let (_, _, body) = call(app.clone(), status_read()).await;
    assert_eq!(body["value"][0]["installState"], "installed");
    let (_, _, body) = call(app, status_read()).await;
    assert_eq!(body["value"][0]["installState"], "notInstalled");
}
