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

fn get_with(uri: &str, token: &str) -> Request<Body> {
    Request::get(uri)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

fn post_json(uri: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

async fn new_token(app: &axum::Router) -> String {
    let (status, _, body) = call(app.clone(), token_request("fake-secret")).await;
    assert_eq!(status, StatusCode::OK);
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn graph_refuses_a_token_past_its_calls_as_expired_with_graphs_answer() {
    let state = GraphState::default();
    state.add_user("u-1", "one@example.com", &[graph::SKU_E5.0]);
    state.expire_tokens_after(1);
    let app = graph::router(state.clone());
    let token = new_token(&app).await;
    let details = "/v1.0/users/one@example.com/licenseDetails";

    assert_eq!(
        call(app.clone(), get_with(details, &token)).await.0,
        StatusCode::OK
    );
    let response = app
        .clone()
        .oneshot(get_with(details, &token))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert_eq!(
        body["error"]["message"],
        "Lifetime validation failed, the token is expired."
    );
    assert!(body["error"]["innerError"]["request-id"].is_string());

    // A new token is good for one more call; the fake counted both token requests.
    let renewed = new_token(&app).await;
    assert_ne!(renewed, token);
    assert_eq!(
        call(app.clone(), get_with(details, &renewed)).await.0,
        StatusCode::OK
    );
    assert_eq!(state.token_requests(), 2);

    // Lifetime 0: the endpoint issues tokens the API refuses.
    state.expire_tokens_after(0);
    let refused = new_token(&app).await;
    let (status, _, body) = call(app.clone(), get_with(details, &refused)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert_eq!(state.token_requests(), 3);
}

#[tokio::test]
async fn graph_license_comes_back_when_reassigned() {
    let state = GraphState::default();
    state.add_user("u-1", "one@example.com", &[]);
    let app = graph::router(state.clone());
    assert!(!state.has_license("one@example.com", graph::SKU_E5.0));

    assert!(state.reassign_license("one@example.com", graph::SKU_E5.1));
    assert!(state.has_license("one@example.com", graph::SKU_E5.0));
    assert!(!state.reassign_license("nobody@example.com", graph::SKU_E5.0));
    assert!(!state.reassign_license("one@example.com", "NOT_A_SKU"));

    // The same through the demo control, by skuId.
    let reassign = post_json(
        "/_fake/reassign",
        &format!(
            r#"{{"upn":"one@example.com","sku":"{}"}}"#,
            graph::SKU_VISIO.0
        ),
    );
    assert_eq!(call(app.clone(), reassign).await.0, StatusCode::NO_CONTENT);
    assert!(state.has_license("one@example.com", graph::SKU_VISIO.0));
    let unknown = post_json(
        "/_fake/reassign",
        r#"{"upn":"nobody@example.com","sku":"SPE_E5"}"#,
    );
    assert_eq!(call(app, unknown).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn graph_keeps_listing_a_group_license_until_licensing_processes_a_removed_membership() {
    let state = GraphState::default();
    state.add_user("u-1", "one@example.com", &[]);
    state.add_group("g-visio", "Visio users", &[graph::SKU_VISIO.0], &["u-1"]);
    let app = graph::router(state.clone());
    let token = new_token(&app).await;

    assert!(state.remove_member_before_licensing("g-visio", "u-1"));
    assert!(!state.remove_member_before_licensing("g-visio", "u-1"));
    assert!(!state.is_member("g-visio", "u-1"));
    assert!(state.has_license("one@example.com", graph::SKU_VISIO.0));
    let (_, _, user) = call(app.clone(), get_with("/v1.0/users/one@example.com", &token)).await;
    assert_eq!(
        user["licenseAssignmentStates"][0]["assignedByGroup"],
        "g-visio"
    );
    let leave = Request::delete("/v1.0/groups/g-visio/members/u-1/$ref")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(app, leave).await.0, StatusCode::NOT_FOUND);

    state.process_group_licensing();
    assert!(!state.has_license("one@example.com", graph::SKU_VISIO.0));
}

#[tokio::test]
async fn csd_held_uninstall_stays_pending_until_completed_and_an_app_can_come_back() {
    let state = CsdState::default();
    state.add_app("app-1", "Snagit", &["PC-1"]);
    state.hold_uninstalls(true);
    let app = csd::router(state.clone());
    let statuses =
        "/deviceAppManagement/mobileApps/app-1/deviceStatuses?$filter=deviceName%20eq%20'PC-1'";
    let mut assign = post_json(
        "/deviceAppManagement/mobileApps/app-1/assignments",
        r#"{"intent":"uninstall","target":{"deviceName":"PC-1"}}"#,
    );
    assign
        .headers_mut()
        .insert("authorization", "Bearer fake-csd-token".parse().unwrap());
    assert_eq!(call(app.clone(), assign).await.0, StatusCode::CREATED);

    for _ in 0..3 {
        let (_, _, body) = call(app.clone(), get_with(statuses, "fake-csd-token")).await;
        assert_eq!(body["value"][0]["installState"], "installed");
    }
    assert!(state.is_uninstall_pending("app-1", "PC-1"));

    let complete = post_json(
        "/_fake/complete-uninstall",
        r#"{"app":"app-1","device":"PC-1"}"#,
    );
    assert_eq!(call(app.clone(), complete).await.0, StatusCode::NO_CONTENT);
    assert!(!state.is_uninstall_pending("app-1", "PC-1"));
    assert!(!state.complete_uninstall("app-1", "PC-1"));
    let (_, _, body) = call(app.clone(), get_with(statuses, "fake-csd-token")).await;
    assert_eq!(body["value"][0]["installState"], "notInstalled");

    let reinstall = post_json("/_fake/reinstall", r#"{"app":"app-1","device":"PC-1"}"#);
    assert_eq!(call(app.clone(), reinstall).await.0, StatusCode::NO_CONTENT);
    assert_eq!(
        state.install_state("app-1", "PC-1").as_deref(),
        Some("installed")
    );
    assert!(!state.reinstall("app-nope", "PC-1"));
    let unknown = post_json("/_fake/reinstall", r#"{"app":"app-nope","device":"PC-1"}"#);
    assert_eq!(call(app, unknown).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn csd_in_oauth_mode_accepts_only_tokens_from_the_fake_graph_login() {
    let graph_state = GraphState::default();
    let csd_state = CsdState::default();
    csd_state.add_app("app-1", "Snagit", &["PC-1"]);
    csd_state.accept_tokens_from(&graph_state);
    let login = graph::router(graph_state.clone());
    let app = csd::router(csd_state);
    let list = "/deviceAppManagement/mobileApps?$filter=displayName%20eq%20'Snagit'";

    let (status, _, body) = call(app.clone(), get_with(list, "fake-csd-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");

    let token = new_token(&login).await;
    let (status, _, body) = call(app.clone(), get_with(list, &token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["value"][0]["id"], "app-1");

    graph_state.expire_tokens_after(1);
    let (status, _, body) = call(app, get_with(list, &token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body["error"]["message"],
        "Lifetime validation failed, the token is expired."
    );
}

#[tokio::test]
async fn scim_deactivated_user_comes_back_when_reactivated() {
    let state = ScimState::default();
    state.add_user("u-1", "one@example.com", false);
    let app = scim::router(state.clone());
    assert!(state.reactivate("u-1"));
    assert_eq!(state.active("u-1"), Some(true));
    assert!(!state.reactivate("u-2"));

    state.add_user("u-3", "three@example.com", false);
    let reactivate = post_json("/_fake/reactivate", r#"{"id":"u-3"}"#);
    assert_eq!(
        call(app.clone(), reactivate).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(state.active("u-3"), Some(true));
    let unknown = post_json("/_fake/reactivate", r#"{"id":"u-9"}"#);
    assert_eq!(call(app, unknown).await.0, StatusCode::NOT_FOUND);
}

async fn graph_token(app: &axum::Router) -> String {
    let (_, _, body) = call(app.clone(), token_request("fake-secret")).await;
    body["access_token"].as_str().unwrap().to_owned()
}

fn authed(uri: &str, token: &str) -> Request<Body> {
    Request::get(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("host", "graph.test:8080")
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn graph_pages_users_with_their_selected_fields_and_licenses() {
    let state = GraphState::default();
    state.add_licensed_user(
        "u-1",
        "one@example.com",
        "One",
        &[graph::SKU_E5.0],
        30,
        Some(3),
    );
    state.add_user("u-2", "two@example.com", &[]);
    state.add_user("u-3", "three@example.com", &[graph::SKU_E3.0]);
    state.set_users_page_size(2);
    let app = graph::router(state.clone());
    let token = graph_token(&app).await;

    let (status, _, body) = call(
        app.clone(),
        authed(
            "/v1.0/users?$select=id,userPrincipalName,assignedLicenses&$top=999",
            &token,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let users = body["value"].as_array().unwrap();
    assert_eq!(users.len(), 2, "the fake's page size wins over $top");
    assert!(
        users[0].get("displayName").is_none(),
        "only what $select names"
    );
    assert_eq!(users[0]["userPrincipalName"], "one@example.com");
    assert_eq!(users[0]["assignedLicenses"][0]["skuId"], graph::SKU_E5.0);
    let next = body["@odata.nextLink"].as_str().unwrap();
    assert!(
        next.starts_with("http://graph.test:8080/v1.0/users?"),
        "{next}"
    );

    let path = next.trim_start_matches("http://graph.test:8080");
    let (_, _, body) = call(app.clone(), authed(path, &token)).await;
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    assert!(body.get("@odata.nextLink").is_none(), "the last page");

    let (_, _, skus) = call(app, authed("/v1.0/subscribedSkus", &token)).await;
    let e5 = skus["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["skuId"] == graph::SKU_E5.0)
        .unwrap();
    assert_eq!(e5["skuPartNumber"], "SPE_E5");
    assert_eq!(e5["consumedUnits"], 1);
}

#[tokio::test]
async fn graph_answers_the_usage_report_with_a_redirect_to_a_csv_that_may_conceal_names() {
    let state = GraphState::default();
    state.add_licensed_user(
        "u-1",
        "one@example.com",
        "One",
        &[graph::SKU_E5.0],
        30,
        Some(3),
    );
    let app = graph::router(state.clone());
    let token = graph_token(&app).await;
    let response = app
        .clone()
        .oneshot(authed(
            "/v1.0/reports/getM365AppUserDetail(period='D30')",
            &token,
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        location,
        "http://graph.test:8080/_fake/report-download/m365-apps"
    );

    let download = || {
        Request::get("/_fake/report-download/m365-apps")
            .body(Body::empty())
            .unwrap()
    };
    let csv = |response: axum::response::Response| async move {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    };
    let text = csv(app.clone().oneshot(download()).await.unwrap()).await;
    assert!(text.starts_with("\u{feff}Report Refresh Date,User Principal Name,Last Activity Date"));
    let date = state.last_activity_date("u-1").unwrap();
    assert!(
        text.contains(&format!(",one@example.com,{date},")),
        "{text}"
    );

    state.conceal_report_names(true);
    let text = csv(app.oneshot(download()).await.unwrap()).await;
    assert!(!text.contains("one@example.com"), "{text}");
}

#[tokio::test]
async fn csd_pages_detected_apps_and_their_devices_with_users_and_last_use() {
    let state = CsdState::default();
    state.add_app("app-a", "Contoso Draw", &["PC-1", "PC-2", "PC-3"]);
    state.add_app("app-b", "Contoso Write", &["PC-1"]);
    state.set_device_user("PC-1", "u-1", "one@example.com", "One");
    state.set_last_used("app-a", "PC-1", 10);
    state.set_inventory_page_size(2);
    let app = csd::router(state.clone());
    let get = |uri: &str| {
        Request::get(uri)
            .header("authorization", "Bearer fake-csd-token")
            .header("host", "csd.test")
            .body(Body::empty())
            .unwrap()
    };
    let (status, _, apps) = call(app.clone(), get("/deviceManagement/detectedApps")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(apps["value"].as_array().unwrap().len(), 2);
    assert_eq!(apps["value"][0]["publisher"], "Contoso");
    assert_eq!(apps["value"][0]["deviceCount"], 3);
    assert!(apps.get("@odata.nextLink").is_none());

    let (_, _, devices) = call(
        app.clone(),
        get("/deviceManagement/detectedApps/app-a/managedDevices"),
    )
    .await;
    let list = devices["value"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["deviceName"], "PC-1");
    assert_eq!(list[0]["userId"], "u-1");
    assert!(list[0]["lastUsedDateTime"].is_string());
    assert!(list[1]["lastUsedDateTime"].is_null(), "not metered there");
    let next = devices["@odata.nextLink"].as_str().unwrap();
    let (_, _, rest) = call(app.clone(), get(next.trim_start_matches("http://csd.test"))).await;
    assert_eq!(rest["value"][0]["deviceName"], "PC-3");
    assert_eq!(
        state.installs(true),
        vec![
            ("app-a".to_string(), "PC-1".to_string()),
            ("app-b".to_string(), "PC-1".to_string())
        ]
    );
    let (status, _, _) = call(
        app,
        get("/deviceManagement/detectedApps/nope/managedDevices"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
