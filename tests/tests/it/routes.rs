//! The route table, the OpenAPI document, security headers and who sees which candidates.

// Test code: helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::{Method, StatusCode};
use reclaim_api::http::openapi::{openapi, RouteDoc, ROUTES};
use reclaim_api::http::ui::PAGES;
use reclaim_api::http::{mounted_routes, Method as M};
use reclaim_tests::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// The JSON API's table (in the OpenAPI document) and the workspace's pages (not in it).
fn every_route() -> impl Iterator<Item = &'static RouteDoc> {
    ROUTES.iter().chain(PAGES.iter())
}

#[test]
fn the_route_tables_and_the_mounted_routes_are_the_same() {
    let documented: BTreeSet<(M, &str)> = every_route().map(|d| (d.method, d.path)).collect();
    let mounted: BTreeSet<(M, &str)> = mounted_routes(true).into_iter().collect();
    let undocumented: Vec<_> = mounted.difference(&documented).collect();
    let unmounted: Vec<_> = documented.difference(&mounted).collect();
    assert!(
        undocumented.is_empty(),
        "mounted but not documented: {undocumented:?}"
    );
    assert!(
        unmounted.is_empty(),
        "documented but not mounted: {unmounted:?}"
    );
    assert_eq!(
        ROUTES.len() + PAGES.len(),
        documented.len(),
        "a route is documented twice"
    );
    // The OpenAPI document describes the JSON API, the link pages and the outbox; the
    // workspace's pages are HTML for browsers and live only in PAGES (with `/`, which sends a
    // browser there).
    assert!(ROUTES
        .iter()
        .all(|d| !d.path.starts_with("/ui") && d.path != "/"));
    assert!(PAGES
        .iter()
        .all(|d| d.path.starts_with("/ui") || d.path == "/"));
}

#[tokio::test]
async fn every_documented_route_is_served_by_the_router() {
    let h = Harness::new().await;
    for d in every_route() {
        let path = d
            .path
            .replace("{id}", "x")
            .replace("{token}", "x")
            .replace("{key}", "x");
        let method = Method::from_bytes(d.method.as_str().as_bytes()).unwrap();
        let r = h.call_raw(method, &path, None, None, "").await;
        let no_route = r.status == StatusCode::NOT_FOUND && r.text().contains("no_such_route");
        assert!(
            !no_route && r.status != StatusCode::METHOD_NOT_ALLOWED,
            "{} {} is documented but the router answers {}",
            d.method.as_str(),
            d.path,
            r.status
        );
    }
}

#[tokio::test]
async fn the_openapi_document_is_3_1_and_describes_each_route() {
    let h = Harness::new().await;
    let r = h
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.json();
    assert_eq!(doc, openapi());
    assert_eq!(doc["openapi"], "3.1.0");
    for d in ROUTES {
        let op = &doc["paths"][d.path][d.method.as_str().to_ascii_lowercase()];
        assert!(
            op["responses"].is_object(),
            "{} {}",
            d.method.as_str(),
            d.path
        );
        if let Some(body) = d.body {
            assert!(
                doc["components"]["schemas"][body].is_object(),
                "schema {body}"
            );
        }
    }
    let reclaim = &doc["paths"]["/api/v1/candidates/{id}/reclaim"]["post"];
    assert!(reclaim["responses"]["409"].is_object());
    assert_eq!(reclaim["parameters"][0]["name"], "id");
    assert_eq!(
        doc["components"]["schemas"]["AnswerBody"]["additionalProperties"],
        false
    );
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let h = Harness::new().await;
    for r in [
        h.get("/api/v1/me", SAM).await,
        h.call(Method::GET, "/api/v1/me", None, None).await,
        h.call(Method::GET, "/respond/garbage", None, None).await,
        h.call(Method::GET, "/outbox", None, None).await,
        h.call(Method::GET, "/nowhere", None, None).await,
    ] {
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(
            !csp.contains("script-src") && csp.contains("default-src 'none'"),
            "{csp}"
        );
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("referrer-policy"), Some("same-origin"));
    }
}

#[tokio::test]
async fn public_and_admin_route_sets_are_separate() {
    let h = Harness::new().await;
    let state = reclaim_api::ApiState::new(
        h.embedded.app.clone(),
        std::sync::Arc::new(reclaim_api::NoAuthentication),
    );
    use tower::ServiceExt;
    let public = reclaim_api::public_routes(state.clone());
    let admin = reclaim_api::admin_routes(state);
    let req = |p: &str| {
        axum::http::Request::get(p)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let r = public.clone().oneshot(req("/api/v1/me")).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = public.oneshot(req("/outbox")).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = admin.clone().oneshot(req("/respond/abc")).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = admin.oneshot(req("/api/v1/me")).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

fn numbers(r: &Resp) -> BTreeSet<String> {
    r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["number"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn listing_is_scoped_by_role_and_pages_with_a_cursor() {
    let h = Harness::new().await;
    let uma1 = h.create_one(json!({})).await;
    let uma2 = h.create_one(json!({"product": "Photoshop"})).await;
    let nia1 = h
        .create_one(json!({"user_id": "nia", "user_email": "nia@example.com", "user_itil": false}))
        .await;
    let saas = h
        .create_one(json!({"user_id": "nia", "user_email": "nia@example.com",
                           "assignment_group": "saas", "publisher": "Zoom", "product": "Pro"}))
        .await;

    let all: BTreeSet<String> = [&uma1, &uma2, &nia1, &saas].into_iter().cloned().collect();
    assert_eq!(numbers(&h.get("/api/v1/candidates", SAM).await), all);
    // A user sees their own; an approver sees their group's; someone else sees nothing.
    assert_eq!(
        numbers(&h.get("/api/v1/candidates", UMA).await),
        [uma1.clone(), uma2.clone()].into_iter().collect()
    );
    assert_eq!(
        numbers(&h.get("/api/v1/candidates", BOB).await),
        [saas.clone()].into_iter().collect()
    );
    assert_eq!(
        numbers(&h.get("/api/v1/candidates", ADA).await),
        [uma1.clone(), uma2.clone(), nia1.clone()]
            .into_iter()
            .collect()
    );
    assert!(numbers(&h.get("/api/v1/candidates", EVE).await).is_empty());
    // Asking for more than one may see is refused, not silently narrowed.
    let r = h.get("/api/v1/candidates?user=uma", NIA).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h.get("/api/v1/candidates?group=desktop", BOB).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Filters narrow.
    let r = h.get("/api/v1/candidates?publisher=zoom", SAM).await;
    assert_eq!(numbers(&r), [saas.clone()].into_iter().collect());
    let r = h
        .get("/api/v1/candidates?group=desktop&product=Photoshop", ADA)
        .await;
    assert_eq!(numbers(&r), [uma2.clone()].into_iter().collect());

    // Pages of one, following `next`, give every candidate once.
    let mut seen = Vec::new();
    let mut path = "/api/v1/candidates?limit=1".to_string();
    loop {
        let r = h.get(&path, SAM).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let page = numbers(&r);
        assert!(page.len() <= 1);
        seen.extend(page);
        match r.json()["next"].as_str() {
            Some(next) => path = format!("/api/v1/candidates?limit=1&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4);
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), all);

    // Sorted by user, counted, and back again with `prev`.
    let r = h
        .get("/api/v1/candidates?limit=2&sort=-user&count=true", SAM)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let body = r.json();
    assert_eq!(body["total"], json!({"n": 4, "more": false}));
    assert!(body.get("prev").is_none(), "the first page has none");
    let first: Vec<Value> = body["items"].as_array().unwrap().clone();
    let next = body["next"].as_str().unwrap().to_string();
    let r = h
        .get(
            &format!("/api/v1/candidates?limit=2&sort=-user&cursor={next}"),
            SAM,
        )
        .await;
    let prev = r.json()["prev"].as_str().unwrap().to_string();
    let r = h
        .get(
            &format!("/api/v1/candidates?limit=2&sort=-user&cursor={prev}"),
            SAM,
        )
        .await;
    assert_eq!(r.json()["items"].as_array().unwrap(), &first);
    let names: Vec<String> = first
        .iter()
        .map(|c| {
            c["user"]["display_name"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase()
        })
        .collect();
    assert!(names.windows(2).all(|w| w[0] >= w[1]), "{names:?}");
    // Part of a word, any case.
    let r = h.get("/api/v1/candidates?software=ZOO", SAM).await;
    assert_eq!(numbers(&r), [saas.clone()].into_iter().collect());
    // An order that does not exist is a 400 naming the field.
    let r = h.get("/api/v1/candidates?sort=colour", SAM).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.fields(), ["sort"]);

    // Savings follow the same scope: 239.88 per candidate.
    let r = h.get("/api/v1/savings", SAM).await;
    assert_eq!(r.json()["potential_cents"], 4 * 23_988);
    let r = h.get("/api/v1/savings", UMA).await;
    assert_eq!(r.json()["potential_cents"], 2 * 23_988);
}

#[tokio::test]
async fn me_groups_and_the_bare_workflow() {
    let h = Harness::new().await;
    let r = h.get("/api/v1/me", ADA).await;
    assert_eq!(r.json()["principal"]["groups"], json!(["desktop"]));
    assert_eq!(r.json()["principal"]["sam_admin"], false);
    let r = h.get("/api/v1/groups", NIA).await;
    assert_eq!(r.json().as_array().unwrap().len(), 2);
    let r = h.get("/api/v1/workflow", NIA).await;
    let g = r.json();
    assert_eq!(g["states"].as_array().unwrap().len(), 8);
    assert!(g["current"].is_null());
    // A sam admin changes a group; members must exist.
    let r = h
        .call(
            Method::PUT,
            "/api/v1/groups/desktop",
            Some(SAM),
            Some(json!({"id": "desktop", "name": "Desktop", "members": ["ada", "eve"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = h.get("/api/v1/me", EVE).await;
    assert_eq!(r.json()["principal"]["groups"], json!(["desktop"]));
}
