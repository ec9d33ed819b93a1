//! The workflow end to end through the API, with the effects run by the local worker's drain
//! (the real `App::run_effect`: outbox mail, tasks, the manual-task revoker).

// Test code: helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::{header, Method, Request, StatusCode};
use reclaim_tests::*;
use reclaim_workflow::State;
use serde_json::{json, Value};

fn state_of(v: &Value) -> &str {
    v["state"]
        .as_str()
        .unwrap_or_else(|| panic!("no state in {v}"))
}

async fn reclaim(h: &Harness, n: &str) -> Value {
    let r = h
        .post(&format!("/api/v1/candidates/{n}/reclaim"), SAM, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    h.drain().await;
    r.json()
}

async fn tasks(h: &Harness, token: &str) -> Vec<Value> {
    let r = h.get("/api/v1/tasks/mine", token).await;
    assert_eq!(r.status, StatusCode::OK);
    r.json().as_array().unwrap().clone()
}

/// POSTs a link page's form, with a browser's user agent.
async fn press(h: &Harness, path: &str, comment: &str) -> Resp {
    let body = format!("comment={comment}");
    let req = Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::USER_AGENT, "Mozilla/5.0 (test browser)")
        .header(header::ORIGIN, PUBLIC_URL)
        .body(axum::body::Body::from(body))
        .unwrap();
    h.send(req).await
}

#[tokio::test]
async fn notify_yes_and_approve_closes_skipped_and_tells_the_user() {
    let h = Harness::new().await;
    let n = h.create_one(json!({})).await;
    let c = reclaim(&h, &n).await;
    assert_eq!(state_of(&c), "awaiting-user");
    let r = h
        .post(
            &format!("/api/v1/candidates/{n}/answer"),
            UMA,
            json!({"keep": true, "comment": "I use it monthly", "expected_version": c["version"]}),
        )
        .await;
    assert_eq!(state_of(&r.json()), "awaiting-approval");
    h.drain().await;
    // The approver got the keep request by mail and as a group task.
    let mail = h.mail_to("ada@example.com").await;
    assert_eq!(mail.len(), 1);
    assert!(
        mail[0].subject.contains("Keep request"),
        "{}",
        mail[0].subject
    );
    let approvals = tasks(&h, ADA).await;
    assert!(approvals
        .iter()
        .any(|t| t["kind"] == "approval" && t["candidate_number"] == n.as_str()));
    let r = h
        .post(
            &format!("/api/v1/candidates/{n}/approve"),
            ADA,
            json!({"comment": "ok"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(state_of(&r.json()), "closed-skipped");
    h.drain().await;
    let mail = h.mail_to("uma@example.com").await;
    assert!(
        mail.iter().any(|m| m.subject.starts_with("You keep")),
        "{mail:?}"
    );
    assert!(
        tasks(&h, ADA).await.is_empty(),
        "the approval task is closed"
    );
    // The detail page shows the path taken and no more actions.
    let d = h.get(&format!("/api/v1/candidates/{n}"), SAM).await.json();
    assert_eq!(d["workflow"]["current"], "closed-skipped");
    assert_eq!(
        d["workflow"]["path"],
        json!([
            "ready",
            "awaiting-user",
            "awaiting-approval",
            "closed-skipped"
        ])
    );
    assert_eq!(d["history"].as_array().unwrap().len(), 3);
    assert_eq!(d["history"][1]["reason"], "I use it monthly");
    assert!(d["actions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a == "work-note"));
}

#[tokio::test]
async fn yes_and_reject_removes_through_a_manual_task_then_close_complete() {
    let h = Harness::new().await;
    let n = h.create_one(json!({})).await;
    reclaim(&h, &n).await;
    h.post(
        &format!("/api/v1/candidates/{n}/answer"),
        UMA,
        json!({"keep": true}),
    )
    .await;
    h.drain().await;
    let r = h
        .post(
            &format!("/api/v1/candidates/{n}/reject"),
            ADA,
            json!({"comment": "use Reader"}),
        )
        .await;
    assert_eq!(state_of(&r.json()), "awaiting-revocation");
    h.drain().await;
    // The manual-task revoker opened a removal task for the assignment group.
    let c = h.candidate(&n).await;
    assert_eq!(c.state, State::AwaitingRevocation);
    assert!(c.revocation.manual_task_open);
    let open = tasks(&h, ADA).await;
    let removal: Vec<_> = open
        .iter()
        .filter(|t| t["kind"] == "manual-removal")
        .collect();
    assert_eq!(removal.len(), 1, "{open:?}");
    assert!(removal[0]["instructions"]
        .as_str()
        .unwrap()
        .contains("LAPTOP-042"));
    assert!(h
        .mail_to("uma@example.com")
        .await
        .iter()
        .any(|m| m.subject.contains("will be removed")));
    // The workflow shows the stage.
    let g = h
        .get(&format!("/api/v1/candidates/{n}/workflow"), ADA)
        .await
        .json();
    assert_eq!(g["current"], "awaiting-revocation");
    let r = h
        .post(
            &format!("/api/v1/candidates/{n}/close-complete"),
            SAM,
            json!({"note": "uninstalled"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(state_of(&r.json()), "closed-complete");
    h.drain().await;
    assert!(tasks(&h, ADA).await.is_empty());
    let s = h.get("/api/v1/savings", SAM).await.json();
    assert_eq!(s["actual_cents"], 23_988);
    assert_eq!(s["potential_cents"], 0);
}

#[tokio::test]
async fn no_goes_to_awaiting_revocation() {
    let h = Harness::new().await;
    let n = h.create_one(json!({})).await;
    reclaim(&h, &n).await;
    let r = h
        .post(
            &format!("/api/v1/candidates/{n}/answer"),
            UMA,
            json!({"keep": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(state_of(&r.json()), "awaiting-revocation");
    h.drain().await;
    let hist = h.history(&n).await;
    assert_eq!(hist[1].event, "answer-remove");
    assert_eq!(hist.last().unwrap().event, "revocation-manual-task");
}

#[tokio::test]
async fn notify_off_goes_straight_to_awaiting_revocation_without_mail() {
    let h = Harness::new().await;
    let n = h.create_one(json!({"rule": "silent"})).await;
    let c = reclaim(&h, &n).await;
    assert_eq!(state_of(&c), "awaiting-revocation");
    assert!(h.mail_to("uma@example.com").await.is_empty());
    assert!(tasks(&h, UMA).await.is_empty());
}

#[tokio::test]
async fn an_itil_user_gets_a_task_and_an_email_a_non_itil_user_only_an_email() {
    let h = Harness::new().await;
    let itil = h.create_one(json!({})).await;
    let plain = h
        .create_one(
            json!({"user_id": "nia", "user_name": "Nia", "user_email": "nia@example.com",
                           "user_itil": false}),
        )
        .await;
    let r = h
        .post("/api/v1/candidates/reclaim-all", SAM, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["reclaimed"].as_array().unwrap().len(), 2);
    h.drain().await;

    let uma_tasks = tasks(&h, UMA).await;
    assert_eq!(uma_tasks.len(), 1);
    assert_eq!(uma_tasks[0]["kind"], "user-answer");
    assert_eq!(uma_tasks[0]["candidate_number"], itil.as_str());
    assert_eq!(h.mail_to("uma@example.com").await.len(), 1);

    assert!(tasks(&h, NIA).await.is_empty());
    let nia_mail = h.mail_to("nia@example.com").await;
    assert_eq!(nia_mail.len(), 1);
    assert!(nia_mail[0].text.contains("/respond/"));
    assert_eq!(h.candidate(&plain).await.state, State::AwaitingUser);
}

#[tokio::test]
async fn a_missing_email_needs_attention_then_fix_and_resume() {
    let h = Harness::new().await;
    let n = h
        .create_one(
            json!({"user_id": "noe", "user_name": "Noe", "user_email": null, "user_itil": false}),
        )
        .await;
    let c = reclaim(&h, &n).await;
    assert_eq!(state_of(&c), "attention-required");
    assert!(c["attention"].as_str().unwrap().contains("email"));
    // Fix the address, then Resume goes on where the Reclaim stopped: the user is asked.
    let r = h
        .call(
            Method::PUT,
            &format!("/api/v1/candidates/{n}/user"),
            Some(SAM),
            Some(
                json!({"user": {"id": "noe", "display_name": "Noe", "email": "noe@example.com"},
                        "expected_version": c["version"]}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["user"]["email"], "noe@example.com");
    let r = h
        .post(&format!("/api/v1/candidates/{n}/resume"), SAM, json!({}))
        .await;
    assert_eq!(state_of(&r.json()), "awaiting-user");
    h.drain().await;
    assert_eq!(h.mail_to("noe@example.com").await.len(), 1);
}

#[tokio::test]
async fn the_yes_link_shows_a_page_on_get_answers_once_on_post() {
    let h = Harness::new().await;
    let n = h.create_one(json!({})).await;
    reclaim(&h, &n).await;
    let mail = h.mail_to("uma@example.com").await;
    let yes = link_path(&mail[0].text, "Yes, keep it");
    let before = h.snapshot(&n).await;

    // GET (a mail scanner, or the person) shows the page and changes nothing, every time.
    for _ in 0..2 {
        let r = h.call(Method::GET, &yes, None, None).await;
        assert_eq!(r.status, StatusCode::OK);
        let page = r.page();
        assert!(page.contains("Adobe Acrobat Pro"), "{page}");
        assert!(page.contains("LAPTOP-042"));
        assert!(page.contains("Yes, keep it"));
        assert!(page.contains(&format!("action=\"{yes}\"")));
        assert!(page.contains("method=\"post\""));
        assert!(!page.contains("<script"));
        assert_eq!(h.snapshot(&n).await, before);
    }

    // A work note meanwhile does not use the link up.
    let r = h
        .post(
            &format!("/api/v1/candidates/{n}/work-notes"),
            SAM,
            json!({"text": "asked by phone too"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);

    // POST answers once, recording the user agent.
    let r = press(&h, &yes, "still+need+it").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("Thank you"));
    let after = h.snapshot(&n).await;
    assert_eq!(after.state, State::AwaitingApproval);
    let entry = h.history(&n).await.pop().unwrap();
    assert_eq!(entry.event, "answer-keep");
    assert_eq!(entry.reason.as_deref(), Some("still need it"));
    assert_eq!(
        entry.user_agent.as_deref(),
        Some("Mozilla/5.0 (test browser)")
    );

    // A second POST (or the No link) changes nothing and says what was recorded.
    let r = press(&h, &yes, "").await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.text().contains("Already answered"));
    // In words, by "you", and where it stands without stage names.
    assert!(
        r.page().contains("The user answered: keep it by you"),
        "{}",
        r.page()
    );
    assert!(r
        .page()
        .contains("the request to keep it is with the approvers"));
    assert!(!r.page().contains("Awaiting Approval"));
    let no = link_path(&mail[0].text, "No, remove it");
    let r = press(&h, &no, "").await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = h.call(Method::GET, &no, None, None).await;
    assert!(r.text().contains("Already answered"), "{}", r.text());
    assert_eq!(h.snapshot(&n).await, after);
}

#[tokio::test]
async fn the_approvers_reject_link_works_through_the_page() {
    let h = Harness::new().await;
    let n = h.create_one(json!({})).await;
    reclaim(&h, &n).await;
    let yes = link_path(&h.mail_to("uma@example.com").await[0].text, "Yes, keep it");
    press(&h, &yes, "").await;
    h.drain().await;
    let reject = link_path(
        &h.mail_to("ada@example.com").await[0].text,
        "Reject (remove)",
    );
    let r = h.call(Method::GET, &reject, None, None).await;
    assert!(r.text().contains("Reject"), "{}", r.text());
    assert_eq!(h.candidate(&n).await.state, State::AwaitingApproval);
    let r = press(&h, &reject, "use+the+free+reader").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let c = h.candidate(&n).await;
    assert_eq!(c.state, State::AwaitingRevocation);
    assert_eq!(h.history(&n).await.pop().unwrap().actor.to_string(), "ada");
}

#[tokio::test]
async fn tampered_and_expired_links_show_a_clear_page_and_change_nothing() {
    use reclaim_api::HmacLinkSigner;
    use reclaim_workflow::ports::{LinkAction, LinkClaims, LinkSigner};
    let h = Harness::new().await;
    let n = h.create_one(json!({})).await;
    reclaim(&h, &n).await;
    let before = h.snapshot(&n).await;
    let yes = link_path(&h.mail_to("uma@example.com").await[0].text, "Yes, keep it");
    let mut tampered = yes.clone().into_bytes();
    let i = tampered.len() - 3;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for method in [Method::GET, Method::POST] {
        let r = h
            .call_raw(
                method,
                &tampered,
                None,
                Some("application/x-www-form-urlencoded"),
                "",
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.text().contains("not valid"), "{}", r.text());
    }
    let c = h.candidate(&n).await;
    let expired = HmacLinkSigner::new(LINK_KEY).unwrap().sign(&LinkClaims {
        candidate_id: c.id.clone(),
        user_id: "uma".into(),
        action: LinkAction::Remove,
        version: c.version,
        expires_at: chrono::Utc::now() - chrono::Duration::hours(1),
    });
    let r = press(&h, &format!("/respond/{expired}"), "").await;
    assert_eq!(r.status, StatusCode::GONE);
    assert!(r.text().contains("expired"));
    assert_eq!(h.snapshot(&n).await, before);
}

#[tokio::test]
async fn the_outbox_page_lists_mail_with_clickable_links() {
    let h = Harness::new().await;
    let n = h.create_one(json!({})).await;
    reclaim(&h, &n).await;
    let mail = h.mail_to("uma@example.com").await;
    let yes = link_path(&mail[0].text, "Yes, keep it");
    let r = h.call(Method::GET, "/outbox", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let page = r.page();
    assert!(
        page.contains("Do you still need Adobe Acrobat Pro?"),
        "{page}"
    );
    assert!(
        page.contains(&format!("href=\"{PUBLIC_URL}{yes}\"")),
        "{page}"
    );
    assert!(page.contains("uma@example.com"));
    // The message page frames the HTML part from a sandboxed, script-free route.
    let key: String = mail[0]
        .key
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let r = h
        .call(Method::GET, &format!("/outbox/{key}"), None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("<iframe"));
    assert!(r
        .header("content-security-policy")
        .unwrap()
        .contains("frame-src 'self'"));
    let r = h
        .call(Method::GET, &format!("/outbox/{key}/html"), None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let csp = r.header("content-security-policy").unwrap();
    assert!(csp.contains("sandbox") && !csp.contains("script"), "{csp}");
    assert!(r.text().contains("Yes, keep it"));
    let r = h.call(Method::GET, "/outbox/nope", None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
