//! What people, files and vendors feed in: text that could pose as mail instructions, lists
//! of addresses, spreadsheet formulas, ids shaped like numbers, messages with nobody to go to
//! and messages a later transition made untrue. Each case is refused with the field named,
//! or made harmless, through the one Router.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use reclaim_api::http::outbox::encode_segment;
use reclaim_tests::*;
use reclaim_workflow::ports::{CandidateWrite, Revoker, SystemClock, TaskStore};
use reclaim_workflow::{Candidate, RevocationResult, State};
use serde_json::{json, Value};
use std::sync::Arc;

const PHISH: &str =
    "Acro\nYes, keep it:   http://evil.example/phish\nNo, remove it: http://evil.example/x";

/// The field names of a 422 for rows (`invalid_rows`) or for one body (`invalid`).
fn refused_fields(r: &Resp) -> Vec<String> {
    let v = r.json();
    let mut out = Vec::new();
    if let Some(rows) = v["error"]["rows"].as_array() {
        for row in rows {
            for e in row["errors"].as_array().unwrap() {
                out.push(e["field"].as_str().unwrap().to_string());
            }
        }
    }
    out.extend(r.fields());
    out
}

fn row(extra: Value) -> Value {
    let mut row = json!({
        "publisher": "Adobe", "product": "Acrobat Pro", "device": "LAPTOP-042",
        "justification": "unused", "price_per_right": "239.88", "rule": "notify",
        "user_id": "uma", "user_name": "Uma Itil", "user_email": "uma@example.com",
    });
    for (k, v) in extra.as_object().unwrap() {
        row[k] = v.clone();
    }
    row
}

async fn count(h: &Harness) -> usize {
    h.get("/api/v1/candidates", SAM).await.json()["items"]
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test]
async fn names_that_would_break_a_line_are_refused_with_row_and_field() {
    let h = Harness::new().await;
    for (field, value) in [
        ("product", PHISH),
        ("publisher", "Adobe\r\nBcc: x@evil.example"),
        ("user_name", "Uma\u{202E}lmth.exe"),
        ("device", "LAPTOP\u{0}042"),
        ("version", "1.0\u{2028}Yes"),
    ] {
        let r = h
            .post(
                "/api/v1/candidates",
                SAM,
                json!({"candidates": [row(json!({})), row(json!({ field: value }))]}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {}",
            r.text()
        );
        assert_eq!(r.json()["error"]["rows"][0]["line"], 2, "{}", r.text());
        assert_eq!(refused_fields(&r), [field], "{}", r.text());
    }
    assert_eq!(count(&h).await, 0, "nothing stored");

    // The same rule for usage rows.
    let r = h
        .post(
            "/api/v1/usage",
            SAM,
            json!({"usage": [{"user_id": "uma", "user_name": "Uma\nYes", "publisher": "Adobe",
                             "product": "Acrobat Pro", "device": "LAPTOP-042"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(r.text().contains("user_name"), "{}", r.text());
    assert!(r.text().contains("line break"), "{}", r.text());
}

#[tokio::test]
async fn rules_groups_notes_and_users_refuse_what_no_field_may_hold() {
    let h = Harness::new().await;
    let n = h.create_one(json!({})).await;
    let before = h.snapshot(&n).await;

    let r = h
        .call(
            Method::PUT,
            "/api/v1/rules/evil",
            Some(SAM),
            Some(json!({"id": "evil", "name": "Nice\nYes, keep it: http://evil.example"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.fields(), ["name"]);

    let r = h
        .call(
            Method::PUT,
            "/api/v1/groups/g2",
            Some(SAM),
            Some(json!({"id": "g2", "name": "Desk\u{202E}top", "members": ["ada"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.fields(), ["name"]);

    let r = h
        .post(
            &format!("/api/v1/candidates/{n}/work-notes"),
            SAM,
            json!({"text": "called\u{0}the user"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.fields(), ["text"]);
    assert!(r.text().contains("NUL"), "{}", r.text());

    for email in [
        "victim@corp.example,attacker@evil.example",
        "\"a@b\"@evil.com",
    ] {
        let r = h
            .call(
                Method::PUT,
                &format!("/api/v1/candidates/{n}/user"),
                Some(SAM),
                Some(json!({"user": {"id": "uma", "display_name": "Uma", "email": email}})),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{email}: {}",
            r.text()
        );
        assert_eq!(r.fields(), ["user.email"]);
    }
    assert_eq!(h.snapshot(&n).await, before, "nothing changed");

    // A multi-line note keeps its line breaks.
    let r = h
        .post(
            &format!("/api/v1/candidates/{n}/work-notes"),
            SAM,
            json!({"text": "first line\nsecond line"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        h.candidate(&n).await.work_notes[0].text,
        "first line\nsecond line"
    );
}

#[tokio::test]
async fn an_address_is_one_plain_mailbox() {
    let h = Harness::new().await;
    for email in [
        "victim@corp.example,attacker@evil.example",
        "\"a@b\"@evil.com",
        "Uma <uma@example.com>",
        "uma@[127.0.0.1]",
    ] {
        let r = h
            .post(
                "/api/v1/candidates",
                SAM,
                json!({"candidates": [row(json!({ "user_email": email }))]}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{email}: {}",
            r.text()
        );
        assert_eq!(refused_fields(&r), ["user_email"], "{}", r.text());
    }
    assert_eq!(count(&h).await, 0);
}

#[tokio::test]
async fn every_savings_csv_opens_formulas_as_text() {
    let h = Harness::new().await;
    h.create_one(json!({"publisher": "=cmd|' /C calc'!A0", "product": "@SUM(A1)"}))
        .await;
    let api = h.get("/api/v1/savings.csv", SAM).await;
    assert_eq!(api.status, StatusCode::OK, "{}", api.text());
    let s = h.ui_sign_in("sam").await;
    let ui = h.ui(Method::GET, "/ui/savings.csv", Some(&s), None).await;
    assert_eq!(ui.status, StatusCode::OK, "{}", ui.text());
    for csv in [api.text(), ui.text()] {
        assert!(csv.contains("\"'=cmd|' /C calc'!A0\""), "{csv}");
        assert!(csv.contains("\"'=cmd|' /C calc'!A0 / @SUM(A1)\""), "{csv}");
        for cell in csv.lines().flat_map(|l| l.split(',')) {
            assert!(
                !cell
                    .trim_start_matches('"')
                    .starts_with(['=', '+', '@', '\t', '\r']),
                "a cell starts a formula: {cell:?} in {csv}"
            );
        }
    }
}

#[tokio::test]
async fn an_imported_id_cannot_take_over_a_number() {
    let h = Harness::new().await;
    let first = h.create_one(json!({})).await;
    assert_eq!(first, "RC0000001");
    let r = h
        .post(
            "/api/v1/candidates",
            SAM,
            json!({"candidates": [row(json!({"id": "RC0000001", "product": "Other"}))]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(refused_fields(&r), ["id"]);
    assert!(r.text().contains("candidate number"), "{}", r.text());
    let got = h.get("/api/v1/candidates/RC0000001", SAM).await;
    assert_eq!(
        got.json()["candidate"]["software"]["product"],
        "Acrobat Pro",
        "{}",
        got.text()
    );
    // Ids of another shape still import.
    let r = h
        .post(
            "/api/v1/candidates",
            SAM,
            json!({"candidates": [row(json!({"id": "inv-RC0000001", "device": "LAPTOP-043"}))]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

#[tokio::test]
async fn a_json_array_body_is_told_to_be_an_object() {
    let h = Harness::new().await;
    let r = h
        .post("/api/v1/candidates", SAM, json!([row(json!({}))]))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("array"), "{message}");
    assert!(message.contains("{\"candidates\": [...]}"), "{message}");
    assert!(!message.contains("expected a sequence"), "{message}");
}

/// A candidate stored before the checks existed (or by another tool): mail built from it still
/// cannot be steered by its names.
#[tokio::test]
async fn mail_puts_the_real_links_first_and_quotes_what_was_imported() {
    let h = Harness::new().await;
    let n = h.create_one(json!({})).await;
    let mut c = h.candidate(&n).await;
    c.id = "stored-before".into();
    c.number = "RC0000099".into();
    c.software.product = PHISH.into();
    h.embedded.store.insert(&[c]).await.unwrap();
    let r = h
        .post("/api/v1/candidates/stored-before/reclaim", SAM, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    h.drain().await;
    let mail = h
        .mail_to("uma@example.com")
        .await
        .into_iter()
        .find(|m| m.text.contains("RC0000099"))
        .expect("the question to uma");
    assert!(!mail.subject.contains(['\n', '\r']), "{:?}", mail.subject);
    let first_link = mail.text.find("http").unwrap();
    assert!(
        mail.text[first_link..].starts_with(&format!("{PUBLIC_URL}/respond/")),
        "the first link is a real answer link:\n{}",
        mail.text
    );
    let yes = mail.text.find("Yes, keep it:").unwrap();
    assert!(yes < mail.text.find("evil").unwrap(), "{}", mail.text);
    for line in mail.text.lines() {
        assert!(
            !line.trim_start().starts_with("Yes, keep it:") || line.contains(PUBLIC_URL),
            "an imported value poses as an answer line: {line:?}\n{}",
            mail.text
        );
    }
    assert!(
        mail.text.contains("Software: \"Adobe Acro\\u{a}Yes"),
        "{}",
        mail.text
    );
    // The HTML part: the name is text, never a link, and the real buttons are there.
    let html = mail.html.replace("&#x2f;", "/");
    assert!(!html.contains("href=\"http://evil.example"), "{html}");
    assert!(
        html.contains(&format!("href=\"{PUBLIC_URL}/respond/")),
        "{html}"
    );

    // The outbox page links only into this deployment.
    let page = h
        .send(
            Request::builder()
                .uri(format!("/outbox/{}", encode_segment(&mail.key)))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let page = page.text().replace("&#x2f;", "/");
    assert!(!page.contains("href=\"http://evil.example"), "{page}");
    assert!(
        page.contains(&format!("href=\"{PUBLIC_URL}/respond/")),
        "{page}"
    );
}

/// A revoker that answers what the test says.
#[derive(Debug)]
struct Answers(RevocationResult);

#[async_trait]
impl Revoker for Answers {
    async fn revoke(&self, _c: &Candidate, _key: &str) -> RevocationResult {
        self.0.clone()
    }
}

async fn with_revoker(r: RevocationResult) -> Harness {
    Harness::with_clock_and_revoker(Arc::new(SystemClock), Arc::new(Answers(r))).await
}

#[tokio::test]
async fn a_manual_task_for_someone_unknown_goes_to_the_assignment_group() {
    let h = with_revoker(RevocationResult::ManualTask {
        title: "Remove it".into(),
        instructions: "Use the console.".into(),
        assignee_hint: Some("Service Desk".into()),
    })
    .await;
    let n = h.create_one(json!({"rule": "silent"})).await;
    let r = h
        .post(&format!("/api/v1/candidates/{n}/reclaim"), SAM, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    h.drain().await;
    let c = h.candidate(&n).await;
    assert_eq!(c.state, State::AwaitingRevocation);
    assert_eq!(c.assigned_to, None, "nobody called 'Service Desk' holds it");
    let tasks = h.embedded.store.tasks_for(&c.id).await.unwrap();
    let task = tasks.iter().find(|t| t.open).expect("the manual task");
    assert_eq!(task.group.as_deref(), Some("desktop"));
    assert!(
        task.instructions.contains("'Service Desk'"),
        "{}",
        task.instructions
    );
    let to_ada = h.mail_to("ada@example.com").await;
    assert!(
        to_ada
            .iter()
            .any(|m| m.subject.starts_with("Please remove")),
        "the group's member is asked: {to_ada:?}"
    );
}

#[tokio::test]
async fn a_message_with_nobody_to_go_to_puts_the_candidate_on_hold() {
    let h = Harness::new().await;
    let r = h
        .call(
            Method::PUT,
            "/api/v1/groups/nomail",
            Some(SAM),
            Some(json!({"id": "nomail", "name": "No mail", "members": ["noe"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let n = h
        .create_one(json!({"rule": "silent", "assignment_group": "nomail"}))
        .await;
    let r = h
        .post(&format!("/api/v1/candidates/{n}/reclaim"), SAM, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    h.drain().await;
    let c = h.candidate(&n).await;
    assert_eq!(c.state, State::AttentionRequired);
    assert_eq!(
        c.attention.as_deref(),
        Some("no email address for anyone in group nomail")
    );
    let alerts = h.get("/api/v1/alerts", SAM).await;
    assert_eq!(alerts.status, StatusCode::OK, "{}", alerts.text());
    assert!(
        alerts
            .text()
            .contains("Attention Required: no email address for anyone in group nomail"),
        "{}",
        alerts.text()
    );
}

#[tokio::test]
async fn a_reject_overtaken_by_close_skipped_tells_the_user_nothing_untrue() {
    let h = Harness::new().await;
    let n = h.create_one(json!({})).await;
    let ok = |r: Resp| assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    ok(
        h.post(&format!("/api/v1/candidates/{n}/reclaim"), SAM, json!({}))
            .await,
    );
    h.drain().await;
    ok(h.post(
        &format!("/api/v1/candidates/{n}/answer"),
        UMA,
        json!({"keep": true}),
    )
    .await);
    h.drain().await;
    // The reject and the close-skipped land before the reject's mail goes out.
    ok(
        h.post(&format!("/api/v1/candidates/{n}/reject"), ADA, json!({}))
            .await,
    );
    let c = h.candidate(&n).await;
    assert_eq!(c.state, State::AwaitingRevocation);
    ok(h.post(
        &format!("/api/v1/candidates/{n}/close-skipped"),
        SAM,
        json!({"reason": "kept after all"}),
    )
    .await);
    h.drain().await;
    assert_eq!(h.candidate(&n).await.state, State::ClosedSkipped);
    let told: Vec<String> = h
        .mail_to("uma@example.com")
        .await
        .into_iter()
        .map(|m| m.subject)
        .collect();
    assert!(
        !told.iter().any(|s| s.contains("will be removed")),
        "uma was told a removal that did not happen: {told:?}"
    );
}

#[tokio::test]
async fn a_plugin_answer_cannot_add_lines_to_what_is_shown() {
    let h = with_revoker(RevocationResult::Removed {
        evidence: "removed\u{0}\u{1b}[31m seat\u{202E}".into(),
    })
    .await;
    let n = h.create_one(json!({"rule": "silent"})).await;
    let r = h
        .post(&format!("/api/v1/candidates/{n}/reclaim"), SAM, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    h.drain().await;
    let c = h.candidate(&n).await;
    assert_eq!(c.state, State::ClosedComplete, "the fact is kept");
    let history = h.history(&n).await;
    let shown = serde_json::to_string(&history).unwrap();
    assert!(!shown.contains("\\u0000"), "{shown}");
    assert!(!shown.contains("\\u001b"), "{shown}");
    assert!(shown.contains("\\\\u{0}"), "{shown}");
}

#[tokio::test]
async fn the_pages_refuse_the_same_text_as_the_api() {
    let h = Harness::new().await;
    let n = h.create_one(json!({})).await;
    let id = h.candidate(&n).await.id;
    let before = h.snapshot(&n).await;
    let sam = h.ui_sign_in("sam").await;
    let r = h
        .ui(
            Method::POST,
            &format!("/ui/candidates/{id}/notes"),
            Some(&sam),
            Some(&[("csrf", &sam.csrf), ("text", "called\u{0}the user")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(r.text().contains("NUL"), "{}", r.text());
    assert_eq!(h.snapshot(&n).await, before, "nothing changed");
}

#[test]
fn a_seed_file_with_a_name_that_breaks_a_line_is_refused_naming_the_entry() {
    let mut seed = reclaim_local::seed::demo();
    seed.users[1].display_name = "Alice\nYes, keep it: http://evil.example".into();
    seed.groups[0].email = Some("a@corp.example,b@evil.example".into());
    let err = seed.validate().unwrap_err().to_string();
    assert!(
        err.contains("users[1] (alice): display_name: contains a line break"),
        "{err}"
    );
    assert!(
        err.contains("groups[0] (desktop-approvers): email"),
        "{err}"
    );
}

#[tokio::test]
async fn a_second_open_candidate_for_the_same_seat_is_refused_or_reported_under_skip_invalid() {
    let h = Harness::new().await;
    let r = h
        .post(
            "/api/v1/candidates",
            SAM,
            json!({"candidates": [row(json!({}))]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let first = r.json()["created"][0].as_str().unwrap().to_string();

    // The same user, software and device again: refused, nothing stored.
    let r = h
        .post(
            "/api/v1/candidates",
            SAM,
            json!({"candidates": [row(json!({"product": "acrobat pro"}))]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(refused_fields(&r), ["user_id"]);
    assert!(
        r.text().contains(&first),
        "names the open one: {}",
        r.text()
    );
    assert_eq!(count(&h).await, 1);

    // Twice in one import: the second line is the duplicate. Another device is another seat.
    let r = h
        .post(
            "/api/v1/candidates",
            SAM,
            json!({"skip_invalid": true, "candidates": [
                row(json!({"device": "LAPTOP-077"})),
                row(json!({"device": "LAPTOP-077"})),
                row(json!({})),
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let body = r.json();
    assert_eq!(body["created"].as_array().unwrap().len(), 1, "{body}");
    let lines: Vec<u64> = body["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [2, 3], "{body}");
    assert_eq!(count(&h).await, 2);

    // Once the first is closed, the seat may have a candidate again.
    let r = h
        .post(
            &format!("/api/v1/candidates/{first}/close-skipped"),
            SAM,
            json!({"reason": "kept"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = h
        .post(
            "/api/v1/candidates",
            SAM,
            json!({"candidates": [row(json!({}))]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}
