//! The workspace pages on AWS, through the `api` function's Router with real API Gateway v2
//! events: people sign in with the identity provider (the real oidc-provider under Node, as in
//! local mode) into sessions kept in DynamoDB; a session made by one Lambda instance works on
//! another, signing out ends it everywhere, the JWT authorizer's claims never sign anyone in on
//! a page, and someone the directory does not know gets no session. Every AWS call is checked
//! against the `api` function's role.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use axum::http::StatusCode;
use http_body_util::BodyExt;
use reclaim_api::ManualTaskRevoker;
use reclaim_aws::wiring::{self, Function};
use reclaim_aws::DynamoStore;
use reclaim_tests::oidc::{OidcAccount, OidcClient, OidcProvider};
use reclaim_workflow::ports::{CandidateRead, CandidateWrite, Directory};
use reclaim_workflow::User;
use std::sync::Arc;
use tower::ServiceExt;

const KEY: &str = "0123456789abcdef0123456789abcdef-workspace";
const PUBLIC: &str = "https://links.reclaim.example.com";
const CLIENT_SECRET: &str = "client-secret-of-the-aws-tests";

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

fn provider() -> OidcProvider {
    let redirect = format!("{PUBLIC}/ui/oidc/callback");
    OidcProvider::start(
        &OidcClient::new(common::OIDC_CLIENT_ID, CLIENT_SECRET, &[&redirect]),
        &[
            OidcAccount::new("00u-ada", "ada", "ada@example.com", "Ada", "ada-pass-1"),
            OidcAccount::new("00u-zed", "zed", "zed@example.com", "Zed", "zed-pass-1"),
        ],
    )
}

/// One `api` function instance (a cold start), as `main` builds it.
async fn api_instance(functions: &common::Functions) -> axum::Router {
    let w = functions
        .start(Function::Api, Arc::new(ManualTaskRevoker))
        .await;
    wiring::api_router(&w)
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

/// An API Gateway v2 event for a workspace route (no authorizer on `/ui`), as a browser at
/// the public URL sends it.
fn ui_event(
    method: &str,
    path_and_query: &str,
    cookies: &[&str],
    form: Option<&str>,
) -> lambda_http::Request {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let route = if path == "/ui" { "/ui" } else { "/ui/{proxy+}" };
    let mut headers = serde_json::json!({
        "accept": "text/html",
        "host": "links.reclaim.example.com",
        "user-agent": "Mozilla/5.0 (test browser)",
        "x-forwarded-for": "203.0.113.9",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    });
    if form.is_some() {
        headers["content-type"] = "application/x-www-form-urlencoded".into();
        headers["origin"] = PUBLIC.into();
    }
    let event = serde_json::json!({
        "version": "2.0",
        "routeKey": format!("{method} {route}"),
        "rawPath": path,
        "rawQueryString": query,
        "cookies": cookies,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123def4",
            "domainName": "links.reclaim.example.com",
            "domainPrefix": "links",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9",
                "userAgent": "Mozilla/5.0 (test browser)"
            },
            "requestId": "EXAMPLEuiReqId=",
            "routeKey": format!("{method} {route}"),
            "stage": "$default",
            "time": "05/Jan/2026:09:00:00 +0000",
            "timeEpoch": 1767603600000u64
        },
        "body": form.unwrap_or(""),
        "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).unwrap()
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

/// `name=value` of a cookie a response sets.
fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
        .find(|c| c.starts_with(&format!("{name}=")) && c.len() > name.len() + 1)
}

fn form_token(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("the page has a form");
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// Signs in through the provider as `user`: Reclaim's redirect, the provider's login form,
/// and the callback on another instance. Returns the callback's answer.
async fn sign_in(
    functions: &common::Functions,
    user: &str,
    password: &str,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let (status, headers, body) = call(
        api_instance(functions).await,
        ui_event("GET", "/ui/sign-in/oidc?next=%2Fui", &[], None),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let authorize = headers
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let binding = cookie(&headers, "reclaim_oidc").expect("a binding cookie");
    let (user, password) = (user.to_string(), password.to_string());
    let back = tokio::task::spawn_blocking(move || {
        reclaim_tests::oidc::log_in(&authorize, &user, &password)
    })
    .await
    .unwrap();
    let path = back.strip_prefix(PUBLIC).unwrap().to_string();
    call(
        api_instance(functions).await,
        ui_event("GET", &path, &[&binding], None),
    )
    .await
}

#[tokio::test]
async fn a_person_signs_in_with_the_provider_and_the_session_lives_in_dynamodb() {
    let op = provider();
    let (store, id, mut functions) = store_with_admin().await;
    functions.with_oidc(op.issuer(), CLIENT_SECRET).await;

    // The sign-in page offers the provider, no person picker and no token form.
    let (status, _, page) = call(
        api_instance(&functions).await,
        ui_event("GET", "/ui/sign-in", &[], None),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Sign in with Example ID"), "{page}");
    assert!(!page.contains("name=\"user\"") && !page.contains("name=\"token\""));

    let (status, headers, body) = sign_in(&functions, "ada", "ada-pass-1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let session = cookie(&headers, "reclaim_session").expect("a session");
    let set = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("reclaim_session="))
        .unwrap();
    assert!(
        set.contains("; Secure") && set.contains("HttpOnly"),
        "{set}"
    );

    // A third instance serves the page to her: the session is in the table, not the process.
    let page_path = format!("/ui/candidates/{id}");
    let (status, _, page) = call(
        api_instance(&functions).await,
        ui_event("GET", &page_path, &[&session], None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Ada Admin"), "{page}");
    let number = store.get(&id).await.unwrap().unwrap().number;
    assert!(page.contains(&number));

    // A form posted to yet another instance is hers.
    let csrf = form_token(&page);
    let form = format!("csrf={csrf}&text=Checked+with+the+team");
    let (status, headers, body) = call(
        api_instance(&functions).await,
        ui_event(
            "POST",
            &format!("{page_path}/notes"),
            &[&session],
            Some(&form),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert!(headers
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("done=note"));
    let history = store.history(&id).await.unwrap();
    assert_eq!(history.last().map(|h| h.event.as_str()), Some("work-note"));

    // Signing out on one instance ends the session on every other.
    let (status, _, _) = call(
        api_instance(&functions).await,
        ui_event(
            "POST",
            "/ui/sign-out",
            &[&session],
            Some(&format!("csrf={csrf}")),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, headers, _) = call(
        api_instance(&functions).await,
        ui_event("GET", &page_path, &[&session], None),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(headers
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("/ui/sign-in"));
    functions.check();
}

#[tokio::test]
async fn someone_the_directory_does_not_know_gets_a_page_and_no_session() {
    let op = provider();
    let (_store, _id, mut functions) = store_with_admin().await;
    functions.with_oidc(op.issuer(), CLIENT_SECRET).await;
    let (status, headers, body) = sign_in(&functions, "zed", "zed-pass-1").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("zed@example.com"), "{body}");
    assert_eq!(cookie(&headers, "reclaim_session"), None);
    functions.check();
}

#[tokio::test]
async fn jwt_claims_never_sign_anyone_in_on_a_page() {
    let (_store, id, functions) = store_with_admin().await;
    // A request carrying the authorizer's claims for Ada (as the JSON API gets them).
    let req = gateway_request("apigw-v2-ui-page.json", &[("{id}", &id), ("{user}", "ada")]);
    let (status, headers, _) = call(api_instance(&functions).await, req).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let to = headers.get("location").unwrap().to_str().unwrap();
    assert!(to.starts_with("/ui/sign-in?next="), "{to}");
    let req = gateway_request("apigw-v2-ui-page-no-claims.json", &[("{id}", &id)]);
    let (status, _, _) = call(api_instance(&functions).await, req).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    functions.check();
}
