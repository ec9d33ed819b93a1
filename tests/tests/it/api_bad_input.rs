//! Bad input through `Router::oneshot`: each is a 4xx JSON error naming the problem, and the
//! stored candidate (version, state, history) is exactly as it was.

// Test code: helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::{Method, StatusCode};
use reclaim_tests::*;
use serde_json::json;

async fn ready_candidate(h: &Harness) -> (String, Snapshot) {
    let n = h.create_one(json!({})).await;
    let before = h.snapshot(&n).await;
    assert_eq!(before.state, reclaim_workflow::State::Ready);
    (n, before)
}

#[tokio::test]
async fn malformed_json_is_a_400_naming_json_and_changes_nothing() {
    let h = Harness::new().await;
    let (n, before) = ready_candidate(&h).await;
    let r = h
        .call_raw(
            Method::POST,
            &format!("/api/v1/candidates/{n}/reclaim"),
            Some(SAM),
            Some("application/json"),
            "{\"expected_version\": 0,",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(r.code(), "malformed_json");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("JSON"));
    assert_eq!(h.snapshot(&n).await, before);
}

#[tokio::test]
async fn an_unknown_field_is_a_422_that_names_the_field_and_changes_nothing() {
    let h = Harness::new().await;
    let (n, before) = ready_candidate(&h).await;
    let r = h
        .post(
            &format!("/api/v1/candidates/{n}/reclaim"),
            SAM,
            json!({"expected_version": 0, "force": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.code(), "invalid_body");
    assert_eq!(r.fields(), ["force"]);
    assert_eq!(h.snapshot(&n).await, before);

    // The same on a body with required fields, and on a wrongly typed one.
    let r = h
        .post(
            &format!("/api/v1/candidates/{n}/assign"),
            SAM,
            json!({"groop": "desktop"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.fields(), ["groop"]);
    let r = h
        .post(
            &format!("/api/v1/candidates/{n}/answer"),
            UMA,
            json!({"keep": "yes"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.code(), "invalid_body");
    assert_eq!(h.snapshot(&n).await, before);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415() {
    let h = Harness::new().await;
    let (n, before) = ready_candidate(&h).await;
    let r = h
        .call_raw(
            Method::POST,
            &format!("/api/v1/candidates/{n}/reclaim"),
            Some(SAM),
            Some("text/plain"),
            "reclaim please",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(r.code(), "unsupported_media_type");
    assert_eq!(h.snapshot(&n).await, before);
}

#[tokio::test]
async fn an_oversized_body_is_a_413() {
    let h = Harness::new().await;
    let (n, before) = ready_candidate(&h).await;
    let big = format!("{{\"text\": \"{}\"}}", "x".repeat(3 * 1024 * 1024));
    let r = h
        .call_raw(
            Method::POST,
            &format!("/api/v1/candidates/{n}/work-notes"),
            Some(SAM),
            Some("application/json"),
            big,
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert_eq!(r.code(), "body_too_large");
    assert_eq!(h.snapshot(&n).await, before);
}

#[tokio::test]
async fn an_unknown_id_is_a_404_naming_it() {
    let h = Harness::new().await;
    for (method, path) in [
        (Method::GET, "/api/v1/candidates/RC9999999"),
        (Method::GET, "/api/v1/candidates/no-such-id/workflow"),
        (Method::POST, "/api/v1/candidates/no-such-id/reclaim"),
        (Method::POST, "/api/v1/candidates/no-such-id/close-complete"),
    ] {
        let r = h.call(method.clone(), path, Some(SAM), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(r.code(), "not_found");
        let id = path.split('/').nth(4).unwrap();
        assert!(r.text().contains(id), "{}", r.text());
    }
    let r = h.get("/api/v1/rules/nope", SAM).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
}

#[tokio::test]
async fn no_token_or_an_unknown_token_is_a_401_and_changes_nothing() {
    let h = Harness::new().await;
    let (n, before) = ready_candidate(&h).await;
    let path = format!("/api/v1/candidates/{n}/reclaim");
    let r = h.call(Method::POST, &path, None, Some(json!({}))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "unauthorized");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let r = h
        .call(
            Method::POST,
            &path,
            Some("token-that-nobody-was-given"),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.text().contains("not valid"));
    let r = h.call(Method::GET, "/api/v1/candidates", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(h.snapshot(&n).await, before);
}

#[tokio::test]
async fn a_wrong_role_is_a_403_and_changes_nothing() {
    let h = Harness::new().await;
    let (n, before) = ready_candidate(&h).await;
    // A plain user may not reclaim, skip or resume, even their own candidate.
    for action in ["reclaim", "close-skipped", "resume"] {
        let r = h
            .post(&format!("/api/v1/candidates/{n}/{action}"), UMA, json!({}))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{action}");
        assert_eq!(r.code(), "forbidden");
        assert!(r.text().contains("sam admin"), "{}", r.text());
    }
    // Only sam admins create candidates, reclaim in bulk, change rules and groups.
    let r = h
        .post("/api/v1/candidates", ADA, json!({"candidates": [{}]}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .post("/api/v1/candidates/reclaim-all", ADA, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .call(
            Method::PUT,
            "/api/v1/groups/desktop",
            Some(ADA),
            Some(json!({"id": "desktop", "name": "mine now", "members": ["ada", "eve"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h.get("/api/v1/rules", NIA).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Someone else's candidate is not visible to a user outside its group.
    let r = h.get(&format!("/api/v1/candidates/{n}"), EVE).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(h.snapshot(&n).await, before);
    assert_eq!(
        h.embedded
            .app
            .ports
            .directory
            .group("desktop")
            .await
            .unwrap()
            .unwrap()
            .members,
        ["ada"]
    );

    // In Awaiting Approval, an approver of another group is refused by the core.
    let r = h
        .post(&format!("/api/v1/candidates/{n}/reclaim"), SAM, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Another user may not answer for the candidate's user.
    let before = h.snapshot(&n).await;
    let r = h
        .post(
            &format!("/api/v1/candidates/{n}/answer"),
            NIA,
            json!({"keep": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(r.text().contains("candidate's user"), "{}", r.text());
    assert_eq!(h.snapshot(&n).await, before);
    let r = h
        .post(
            &format!("/api/v1/candidates/{n}/answer"),
            UMA,
            json!({"keep": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let before = h.snapshot(&n).await;
    let r = h
        .post(&format!("/api/v1/candidates/{n}/approve"), BOB, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(r.text().contains("assignment group"), "{}", r.text());
    assert_eq!(h.snapshot(&n).await, before);
}

#[tokio::test]
async fn an_event_the_state_does_not_allow_is_a_409_and_changes_nothing() {
    let h = Harness::new().await;
    let (n, before) = ready_candidate(&h).await;
    for (token, action, body) in [
        (UMA, "answer", json!({"keep": false})),
        (SAM, "close-complete", json!({})),
        (SAM, "resume", json!({})),
        (ADA, "approve", json!({"comment": "fine"})),
    ] {
        let r = h
            .post(&format!("/api/v1/candidates/{n}/{action}"), token, body)
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{action}: {}", r.text());
        assert_eq!(r.code(), "not_allowed_in_state");
        assert!(r.text().contains("Ready"), "{}", r.text());
    }
    assert_eq!(h.snapshot(&n).await, before);
}

#[tokio::test]
async fn a_stale_version_is_a_409_and_changes_nothing() {
    let h = Harness::new().await;
    let (n, before) = ready_candidate(&h).await;
    let r = h
        .post(
            &format!("/api/v1/candidates/{n}/reclaim"),
            SAM,
            json!({"expected_version": before.version + 3}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "stale_version");
    assert!(r.text().contains("reload"), "{}", r.text());
    assert_eq!(h.snapshot(&n).await, before);
    // The right version goes through.
    let r = h
        .post(
            &format!("/api/v1/candidates/{n}/reclaim"),
            SAM,
            json!({"expected_version": before.version}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["version"], before.version + 1);
}

#[tokio::test]
async fn invalid_field_values_are_a_422_listing_each_field() {
    let h = Harness::new().await;
    let (n, before) = ready_candidate(&h).await;
    let r = h
        .post(
            &format!("/api/v1/candidates/{n}/assign"),
            SAM,
            json!({"group": "nobody-group", "assigned_to": "ghost"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.code(), "invalid");
    assert_eq!(r.fields(), ["group", "assigned_to"]);
    let r = h
        .call(
            Method::PUT,
            &format!("/api/v1/candidates/{n}/user"),
            Some(SAM),
            Some(json!({"user": {"id": "uma", "email": "not an address"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.fields(), ["user.email"]);
    let r = h
        .post(
            &format!("/api/v1/candidates/{n}/work-notes"),
            SAM,
            json!({"text": "  "}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.fields(), ["text"]);
    let r = h
        .call(
            Method::PUT,
            "/api/v1/rules/r2",
            Some(SAM),
            Some(json!({"id": "other", "name": "", "assignment_group": "nope"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.fields(), ["id", "name", "assignment_group"]);
    // An id the path and body agree on, but no rule may have: named once, by the rule check.
    let r = h
        .call(
            Method::PUT,
            "/api/v1/rules/has%20space",
            Some(SAM),
            Some(json!({"id": "has space", "name": "Spaced"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.fields(), ["id"]);
    assert!(h
        .embedded
        .app
        .ports
        .rules
        .rule("r2")
        .await
        .unwrap()
        .is_none());
    assert_eq!(h.snapshot(&n).await, before);
}

#[tokio::test]
async fn an_import_with_a_bad_row_stores_nothing_and_names_line_and_field() {
    let h = Harness::new().await;
    let good = json!({"publisher": "Zoom", "product": "Pro", "justification": "unused",
                      "applies_to": "subscription", "rule": "notify"});
    let bad = json!({"publisher": "Zoom", "product": "Pro", "justification": "bored",
                     "applies_to": "subscription", "rule": "notify", "colour": "red"});
    let r = h
        .post(
            "/api/v1/candidates",
            SAM,
            json!({"candidates": [good.clone(), bad]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.code(), "invalid_rows");
    let rows = r.json()["error"]["rows"].clone();
    assert_eq!(rows[0]["line"], 2);
    let fields: Vec<&str> = rows[0]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"justification") && fields.contains(&"colour"),
        "{fields:?}"
    );
    let list = h.get("/api/v1/candidates", SAM).await;
    assert_eq!(list.json()["items"].as_array().unwrap().len(), 0);
    // A nested value is refused too.
    let r = h
        .post(
            "/api/v1/candidates",
            SAM,
            json!({"candidates": [{"publisher": {"a": 1}}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn bad_query_parameters_are_a_400_naming_them() {
    let h = Harness::new().await;
    let r = h.get("/api/v1/candidates?colour=red", SAM).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "invalid_query");
    assert_eq!(r.fields(), ["colour"]);
    let r = h.get("/api/v1/candidates?state=sleeping", SAM).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("sleeping"));
    let r = h.get("/api/v1/candidates?limit=0", SAM).await;
    assert_eq!(
        (r.status, r.fields()),
        (StatusCode::BAD_REQUEST, vec!["limit".to_string()])
    );
    let r = h.get("/api/v1/candidates?cursor=not-a-cursor", SAM).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(r.code(), "bad_cursor");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let h = Harness::new().await;
    let r = h.get("/api/v1/nothing-here", SAM).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "no_such_route");
    let r = h
        .call(Method::DELETE, "/api/v1/candidates", Some(SAM), None)
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.code(), "method_not_allowed");
}
