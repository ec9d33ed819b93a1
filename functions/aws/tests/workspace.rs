//! The workspace pages on AWS, through the `api` function's Router with real API Gateway v2
//! events: the person is whoever the JWT authorizer's verified claims name, a request
//! without claims is sent to sign in whatever cookie it carries, and a form rendered by one
//! Lambda instance is accepted by another.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use http_body_util::BodyExt;
use reclaim_api::ManualTaskRevoker;
use reclaim_aws::wiring::{self, Function};
use reclaim_aws::DynamoStore;
use reclaim_workflow::ports::{CandidateRead, CandidateWrite, Directory};
use reclaim_workflow::User;
use std::sync::Arc;
use tower::ServiceExt;

const KEY: &str = "0123456789abcdef0123456789abcdef-workspace";

async fn store_with_admin() -> (DynamoStore, String, common::Functions) {
    let store = common::fresh_store("workspace").await;
    store
        .put_user(&User {
            id: "ada".into(),
            display_name: "Ada Admin".into(),
            email: Some("ada@example.com".into()),
            upn: None,
            itil: false,
            vip: false,
            sam_admin: true,
        })
        .await
        .unwrap();
    let c = reclaim_workflow::testing::candidate();
    let id = c.id.clone();
    store.insert(&[c]).await.unwrap();
    let functions = common::Functions::new(&store, "reclaim@example.com", KEY).await;
    (store, id, functions)
}

/// One `api` function instance (a cold start), as `main` builds it.
async fn api_instance(functions: &common::Functions) -> axum::Router {
    let w = functions
        .start(Function::Api, Arc::new(ManualTaskRevoker))
        .await;
    wiring::api_router(w.app, &w.settings.user_claim, &w.session_key)
}

fn gateway_request(fixture: &str, fill: &[(&str, &str)]) -> lambda_http::Request {
    let mut json = std::fs::read_to_string(format!(
        "{}/tests/fixtures/{fixture}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    for (k, v) in fill {
        json = json.replace(k, v);
    }
    lambda_http::request::from_str(&json).unwrap()
}

async fn call(
    router: axum::Router,
    req: lambda_http::Request,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let res = router.oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).to_string())
}

fn form_token(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("the page has a form");
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

#[tokio::test]
async fn a_page_behind_the_jwt_authorizer_is_shown_to_the_person_its_claims_name() {
    let (store, id, functions) = store_with_admin().await;
    let req = gateway_request("apigw-v2-ui-page.json", &[("{id}", &id), ("{user}", "ada")]);
    let (status, _, body) = call(api_instance(&functions).await, req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains("Ada Admin"),
        "the page names the viewer: {body}"
    );
    let number = store.get(&id).await.unwrap().unwrap().number;
    assert!(body.contains(&number), "the candidate is shown: {body}");
    functions.check();
}

#[tokio::test]
async fn a_page_without_claims_sends_the_browser_to_sign_in() {
    let (_store, id, functions) = store_with_admin().await;
    let req = gateway_request("apigw-v2-ui-page-no-claims.json", &[("{id}", &id)]);
    let (status, headers, _) = call(api_instance(&functions).await, req).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let to = headers.get("location").unwrap().to_str().unwrap();
    assert!(to.starts_with("/ui/sign-in?next="), "{to}");
    functions.check();
}

#[tokio::test]
async fn claims_for_someone_the_directory_does_not_know_sign_in_nobody() {
    let (_store, id, functions) = store_with_admin().await;
    let req = gateway_request(
        "apigw-v2-ui-page.json",
        &[("{id}", &id), ("{user}", "mallory")],
    );
    let (status, headers, _) = call(api_instance(&functions).await, req).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let to = headers.get("location").unwrap().to_str().unwrap();
    assert!(to.starts_with("/ui/sign-in"), "{to}");
    functions.check();
}

#[tokio::test]
async fn a_form_rendered_by_one_instance_is_accepted_by_another() {
    let (store, id, functions) = store_with_admin().await;
    let page = gateway_request("apigw-v2-ui-page.json", &[("{id}", &id), ("{user}", "ada")]);
    let (status, _, body) = call(api_instance(&functions).await, page).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let csrf = form_token(&body);

    // A second cold start: a new process, the same derived session key.
    let post = gateway_request(
        "apigw-v2-ui-form.json",
        &[("{id}", &id), ("{user}", "ada"), ("{csrf}", &csrf)],
    );
    let (status, headers, body) = call(api_instance(&functions).await, post).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let to = headers.get("location").unwrap().to_str().unwrap();
    assert!(to.contains("done=note"), "{to}");
    let history = store.history(&id).await.unwrap();
    assert_eq!(history.last().map(|h| h.event.as_str()), Some("work-note"));
    let c = store.get(&id).await.unwrap().unwrap();
    assert!(
        c.work_notes
            .iter()
            .any(|n| n.text == "Checked with the team"),
        "{:?}",
        c.work_notes
    );

    // Someone else's claims with Ada's form token: refused.
    let mut bob = store.user("ada").await.unwrap().unwrap();
    bob.id = "bob".into();
    bob.display_name = "Bob".into();
    store.put_user(&bob).await.unwrap();
    let forged = gateway_request(
        "apigw-v2-ui-form.json",
        &[("{id}", &id), ("{user}", "bob"), ("{csrf}", &csrf)],
    );
    let (status, _, _) = call(api_instance(&functions).await, forged).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    functions.check();
}
