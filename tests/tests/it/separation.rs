//! Separation of duties: nobody decides on their own keep request. When the person asking is
//! the only member of the assignment group, the request goes to the sam admins, and their pages
//! say so.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::{Method, StatusCode};
use reclaim_tests::*;
use reclaim_workflow::State;
use serde_json::json;

async fn put_group(h: &Harness, id: &str, members: &[&str]) {
    let r = h
        .call(
            Method::PUT,
            &format!("/api/v1/groups/{id}"),
            Some(SAM),
            Some(json!({"id": id, "name": format!("{id} approvers"), "members": members})),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
}

/// A candidate of uma's in `group`, Awaiting Approval after uma answered Yes.
async fn kept_by_uma(h: &Harness, group: &str) -> String {
    let n = h.create_one(json!({"assignment_group": group})).await;
    let r = h
        .post(&format!("/api/v1/candidates/{n}/reclaim"), SAM, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    h.drain().await;
    let r = h
        .post(
            &format!("/api/v1/candidates/{n}/answer"),
            UMA,
            json!({"keep": true, "comment": "I use it every week"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    h.drain().await;
    assert_eq!(h.candidate(&n).await.state, State::AwaitingApproval);
    n
}

fn keep_requests(mail: &[reclaim_local::StoredMessage], n_id: &str) -> usize {
    mail.iter()
        .filter(|m| m.text.contains(n_id) && m.text.contains("Approve"))
        .count()
}

#[tokio::test]
async fn a_member_of_the_group_cannot_approve_or_reject_their_own_keep_request() {
    let h = Harness::new().await;
    put_group(&h, "mixed", &["uma", "ada"]).await;
    let n = kept_by_uma(&h, "mixed").await;
    let id = h.candidate(&n).await.id;
    let before = h.snapshot(&n).await;
    for action in ["approve", "reject"] {
        let r = h
            .post(&format!("/api/v1/candidates/{n}/{action}"), UMA, json!({}))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{action}: {}", r.text());
        assert!(
            r.text()
                .contains("nobody decides on their own keep request"),
            "{}",
            r.text()
        );
    }
    assert_eq!(h.snapshot(&n).await, before, "nothing changed");
    // The request went to the other member only.
    assert_eq!(keep_requests(&h.mail_to("ada@example.com").await, &id), 1);
    assert_eq!(keep_requests(&h.mail_to("uma@example.com").await, &id), 0);
    // Uma's own pages offer no decision either.
    let uma = h.ui_sign_in("uma").await;
    let page = h.ui(Method::GET, "/ui/approvals", Some(&uma), None).await;
    assert!(!page.text().contains(&n), "{}", page.text());
    let r = h
        .ui(
            Method::POST,
            &format!("/ui/candidates/{id}/action"),
            Some(&uma),
            Some(&[("csrf", &uma.csrf), ("action", "approve")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    // The other member decides.
    let r = h
        .post(&format!("/api/v1/candidates/{n}/approve"), ADA, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(h.candidate(&n).await.state, State::ClosedSkipped);
}

#[tokio::test]
async fn the_only_member_s_own_request_goes_to_the_sam_admins_and_the_page_says_so() {
    let h = Harness::new().await;
    put_group(&h, "solo", &["uma"]).await;
    let n = kept_by_uma(&h, "solo").await;
    let id = h.candidate(&n).await.id;
    assert_eq!(keep_requests(&h.mail_to("uma@example.com").await, &id), 0);
    assert_eq!(
        keep_requests(&h.mail_to("sam@example.com").await, &id),
        1,
        "the sam admins are asked instead"
    );
    let r = h
        .post(&format!("/api/v1/candidates/{n}/approve"), UMA, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());

    let sam = h.ui_sign_in("sam").await;
    let queue = h.ui(Method::GET, "/ui/approvals", Some(&sam), None).await;
    assert!(queue.text().contains(&n), "{}", queue.text());
    assert!(
        queue.text().contains("Sent to the sam admins"),
        "{}",
        queue.text()
    );
    let page = h
        .ui(
            Method::GET,
            &format!("/ui/candidates/{id}"),
            Some(&sam),
            None,
        )
        .await;
    assert!(
        page.text().contains("was sent to the sam admins"),
        "{}",
        page.text()
    );
    let r = h
        .post(&format!("/api/v1/candidates/{n}/reject"), SAM, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(h.candidate(&n).await.state, State::AwaitingRevocation);
}

#[tokio::test]
async fn sam_admins_do_not_decide_requests_a_group_member_can_decide() {
    let h = Harness::new().await;
    // The harness's "desktop" group has ada; uma's request is hers to decide.
    let n = kept_by_uma(&h, "desktop").await;
    let r = h
        .post(&format!("/api/v1/candidates/{n}/approve"), SAM, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
}

#[tokio::test]
async fn a_sam_admin_cannot_skip_the_reclamation_of_their_own_seat() {
    let h = Harness::new().await;
    let n = h
        .create_one(json!({"user_id": "sam", "user_name": "Sam", "user_email": "sam@example.com"}))
        .await;
    let r = h
        .post(
            &format!("/api/v1/candidates/{n}/close-skipped"),
            SAM,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(h.candidate(&n).await.state, State::Ready);
}
