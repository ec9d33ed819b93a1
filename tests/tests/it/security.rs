//! Security tests: every route × every role from the route tables, link tokens attacked field
//! by field, and the headers and cookies every page carries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::{Method, StatusCode};
use reclaim_api::http::openapi::{RouteDoc, ROUTES};
use reclaim_api::http::outbox::encode_segment;
use reclaim_api::http::ui::PAGES;
use reclaim_api::HmacLinkSigner;
use reclaim_tests::*;
use reclaim_workflow::ports::{LinkAction, LinkClaims, LinkSigner};
use reclaim_workflow::State;
use serde_json::json;

/// Who calls. The candidate of every case belongs to uma and the `desktop` group (ada).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Anonymous,
    TheUser,
    AnotherUser,
    OtherGroupApprover,
    GroupMember,
    SamAdmin,
}

const ROLES: [Role; 6] = [
    Role::Anonymous,
    Role::TheUser,
    Role::AnotherUser,
    Role::OtherGroupApprover,
    Role::GroupMember,
    Role::SamAdmin,
];

impl Role {
    fn who(self) -> Option<(&'static str, &'static str)> {
        match self {
            Role::Anonymous => None,
            Role::TheUser => Some(("uma", UMA)),
            Role::AnotherUser => Some(("nia", NIA)),
            Role::OtherGroupApprover => Some(("bob", BOB)),
            Role::GroupMember => Some(("ada", ADA)),
            Role::SamAdmin => Some(("sam", SAM)),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Role::Anonymous => "anonymous",
            Role::TheUser => "the user (uma)",
            Role::AnotherUser => "another user (nia)",
            Role::OtherGroupApprover => "an approver of another group (bob)",
            Role::GroupMember => "a member of the right group (ada)",
            Role::SamAdmin => "a sam admin (sam)",
        }
    }
}

/// What a case needs before the request.
#[derive(Clone, Copy, Debug)]
enum Setup {
    Nothing,
    /// A candidate in this state; `{id}` in the path is its id.
    Candidate(State),
    /// A Closed Complete candidate of uma's that a re-check found again at the vendor.
    Reappeared,
    /// `{id}` is this literal (rules, groups).
    Named(&'static str),
    /// `{id}` is a rule made for this case alone (deleting it harms no other case).
    FreshRule,
    /// `{token}` is a fresh "No, remove it" link of uma's.
    Link,
    /// `{key}` is a message in the outbox.
    Mail,
}

#[derive(Clone, Copy, Debug)]
enum Body {
    Empty,
    Json(&'static str),
    /// A workspace form; the role's form token is added, `{id}` is replaced.
    Form(&'static [(&'static str, &'static str)]),
    /// The sign-in form (fetched fresh), choosing the role's own user.
    SignIn,
}

struct Expect {
    method: &'static str,
    path: &'static str,
    setup: Setup,
    body: Body,
    /// anonymous, the user, another user, other-group approver, group member, sam admin
    status: [u16; 6],
}

const fn e(
    method: &'static str,
    path: &'static str,
    setup: Setup,
    body: Body,
    status: [u16; 6],
) -> Expect {
    Expect {
        method,
        path,
        setup,
        body,
        status,
    }
}

use Body::*;
use Setup::*;
use State::*;

const ALL_200: [u16; 6] = [200; 6];
const SIGNED_IN: [u16; 6] = [401, 200, 200, 200, 200, 200];
const ADMIN: [u16; 6] = [401, 403, 403, 403, 403, 200];
const VISIBLE: [u16; 6] = [401, 200, 403, 403, 200, 200];
const PAGE: [u16; 6] = [303, 200, 200, 200, 200, 200];
const ADMIN_PAGE: [u16; 6] = [303, 403, 403, 403, 403, 200];

const RULE: &str = r#"{"id": "notify", "name": "Ask the user", "notify_user": true,
  "days_before_auto_reclamation": 14, "reminder_days": [3, 7], "assignment_group": "desktop"}"#;
const GROUP: &str = r#"{"id": "desktop", "name": "desktop approvers", "members": ["ada"]}"#;
const ROW: &str = r#"{"candidates": [{"publisher": "Adobe", "product": "Reader", "version": "24",
  "device": "LAPTOP-042", "justification": "unused", "inactive_days": 90, "price_per_right": "10.00",
  "rule": "notify", "user_id": "uma", "user_name": "Uma", "user_email": "uma@example.com"}]}"#;
const RULE_FORM: &[(&str, &str)] = &[
    ("id", "from-form"),
    ("name", "From the form"),
    ("days_before_auto_reclamation", "14"),
    ("max_revocation_attempts", "5"),
];
const USER: &str = r#"{"user": {"id": "uma", "display_name": "Uma", "email": "uma@example.com"}}"#;

/// The expected status of every route for every role. A route without a row here fails the
/// test, so a new route cannot ship without saying who may call it.
const EXPECT: &[Expect] = &[
    e("GET", "/healthz", Nothing, Empty, ALL_200),
    e("GET", "/assets/reclaim.css", Nothing, Empty, ALL_200),
    // The signed token is the credential: who else is signed in does not matter.
    e("GET", "/respond/{token}", Link, Empty, ALL_200),
    e("POST", "/respond/{token}", Link, Form(&[]), ALL_200),
    e("GET", "/api/v1/openapi.json", Nothing, Empty, ALL_200),
    e("GET", "/api/v1/me", Nothing, Empty, SIGNED_IN),
    e(
        "GET",
        "/api/v1/candidates",
        Candidate(Ready),
        Empty,
        SIGNED_IN,
    ),
    e(
        "POST",
        "/api/v1/candidates",
        Nothing,
        Json(ROW),
        [401, 403, 403, 403, 403, 201],
    ),
    e(
        "POST",
        "/api/v1/candidates/reclaim-all",
        Candidate(Ready),
        Json("{}"),
        ADMIN,
    ),
    e(
        "GET",
        "/api/v1/candidates/{id}",
        Candidate(Ready),
        Empty,
        VISIBLE,
    ),
    e(
        "GET",
        "/api/v1/candidates/{id}/workflow",
        Candidate(Ready),
        Empty,
        VISIBLE,
    ),
    e(
        "GET",
        "/api/v1/candidates/{id}/history.csv",
        Candidate(Ready),
        Empty,
        VISIBLE,
    ),
    e(
        "POST",
        "/api/v1/candidates/{id}/reclaim",
        Candidate(Ready),
        Json("{}"),
        ADMIN,
    ),
    e(
        "POST",
        "/api/v1/candidates/{id}/answer",
        Candidate(AwaitingUser),
        Json(r#"{"keep": false}"#),
        [401, 200, 403, 403, 403, 403],
    ),
    e(
        "POST",
        "/api/v1/candidates/{id}/approve",
        Candidate(AwaitingApproval),
        Json("{}"),
        [401, 403, 403, 403, 200, 403],
    ),
    e(
        "POST",
        "/api/v1/candidates/{id}/reject",
        Candidate(AwaitingApproval),
        Json("{}"),
        [401, 403, 403, 403, 200, 403],
    ),
    e(
        "POST",
        "/api/v1/candidates/{id}/close-complete",
        Candidate(AwaitingRevocation),
        Json("{}"),
        ADMIN,
    ),
    e(
        "POST",
        "/api/v1/candidates/{id}/close-skipped",
        Candidate(Ready),
        Json("{}"),
        ADMIN,
    ),
    e(
        "POST",
        "/api/v1/candidates/{id}/resume",
        Candidate(AttentionRequired),
        Json("{}"),
        ADMIN,
    ),
    e(
        "POST",
        "/api/v1/candidates/{id}/override-exclusion",
        Candidate(Ready),
        Json(r#"{"comment": "the owner asked for it to go"}"#),
        ADMIN,
    ),
    e(
        "POST",
        "/api/v1/candidates/{id}/check-now",
        Candidate(ClosedComplete),
        Json("{}"),
        ADMIN,
    ),
    e(
        "POST",
        "/api/v1/candidates/{id}/reopen",
        Reappeared,
        Json("{}"),
        [401, 403, 403, 403, 403, 201],
    ),
    e(
        "POST",
        "/api/v1/candidates/{id}/accept",
        Reappeared,
        Json(r#"{"reason": "needed for the audit project"}"#),
        ADMIN,
    ),
    e(
        "POST",
        "/api/v1/candidates/{id}/assign",
        Candidate(Ready),
        Json(r#"{"group": "saas"}"#),
        ADMIN,
    ),
    e(
        "POST",
        "/api/v1/candidates/{id}/work-notes",
        Candidate(Ready),
        Json(r#"{"text": "called"}"#),
        [401, 403, 403, 403, 200, 200],
    ),
    e(
        "PUT",
        "/api/v1/candidates/{id}/user",
        Candidate(AttentionRequired),
        Json(USER),
        ADMIN,
    ),
    e("GET", "/api/v1/workflow", Nothing, Empty, SIGNED_IN),
    e("GET", "/api/v1/tasks/mine", Nothing, Empty, SIGNED_IN),
    e("GET", "/api/v1/rules", Nothing, Empty, ADMIN),
    e("GET", "/api/v1/rules/{id}", Named("notify"), Empty, ADMIN),
    e(
        "DELETE",
        "/api/v1/rules/{id}",
        FreshRule,
        Empty,
        [401, 403, 403, 403, 403, 204],
    ),
    e(
        "PUT",
        "/api/v1/rules/{id}",
        Named("notify"),
        Json(RULE),
        ADMIN,
    ),
    e("GET", "/api/v1/groups", Nothing, Empty, SIGNED_IN),
    e(
        "GET",
        "/api/v1/groups/{id}",
        Named("desktop"),
        Empty,
        SIGNED_IN,
    ),
    e(
        "PUT",
        "/api/v1/groups/{id}",
        Named("desktop"),
        Json(GROUP),
        ADMIN,
    ),
    e("GET", "/api/v1/savings", Nothing, Empty, SIGNED_IN),
    e("GET", "/api/v1/savings.csv", Nothing, Empty, SIGNED_IN),
    e(
        "POST",
        "/api/v1/usage",
        Nothing,
        Json(r#"{"usage": []}"#),
        [401, 403, 403, 403, 403, 422],
    ),
    e("GET", "/api/v1/alerts", Nothing, Empty, SIGNED_IN),
    e("GET", "/api/v1/connectors", Nothing, Empty, ADMIN),
    e(
        "GET",
        "/api/v1/connectors/{id}/runs",
        Named("scripted-usage"),
        Empty,
        ADMIN,
    ),
    e(
        "POST",
        "/api/v1/connectors/{id}/run",
        Named("scripted-usage"),
        Empty,
        [401, 403, 403, 403, 403, 202],
    ),
    e(
        "GET",
        "/api/v1/history?from=2020-01-01&to=2030-12-31",
        Nothing,
        Empty,
        ADMIN,
    ),
    e(
        "GET",
        "/api/v1/history.csv?from=2020-01-01&to=2030-12-31",
        Nothing,
        Empty,
        ADMIN,
    ),
    // Local mode only, unauthenticated on purpose (127.0.0.1, one developer).
    e("GET", "/outbox", Mail, Empty, ALL_200),
    e("GET", "/outbox/{key}", Mail, Empty, ALL_200),
    e("GET", "/outbox/{key}/html", Mail, Empty, ALL_200),
    // The workspace: no session → to the sign-in page (303).
    e("GET", "/ui", Nothing, Empty, PAGE),
    e(
        "GET",
        "/ui/sign-in",
        Nothing,
        Empty,
        [200, 303, 303, 303, 303, 303],
    ),
    e(
        "POST",
        "/ui/sign-in",
        Nothing,
        SignIn,
        [401, 303, 303, 303, 303, 303],
    ),
    // No identity provider is configured here: both answer 404 (the oidc module has one).
    e("GET", "/ui/sign-in/oidc", Nothing, Empty, [404; 6]),
    e("GET", "/ui/oidc/callback", Nothing, Empty, [404; 6]),
    e("POST", "/ui/sign-out", Nothing, Form(&[]), [303; 6]),
    e(
        "POST",
        "/ui/sessions/end-all",
        Nothing,
        Form(&[]),
        [303, 403, 403, 403, 403, 303],
    ),
    e("GET", "/", Nothing, Empty, [303; 6]),
    e("GET", "/ui/candidates", Candidate(Ready), Empty, PAGE),
    e(
        "POST",
        "/ui/candidates/reclaim",
        Candidate(Ready),
        Form(&[("id", "{id}")]),
        [303, 403, 403, 403, 403, 200],
    ),
    e(
        "POST",
        "/ui/candidates/select",
        Candidate(Ready),
        Form(&[("id", "{id}"), ("go", "state=ready")]),
        [303, 403, 403, 403, 403, 200],
    ),
    e(
        "GET",
        "/ui/candidates/{id}",
        Candidate(Ready),
        Empty,
        [303, 200, 403, 403, 200, 200],
    ),
    e(
        "GET",
        "/ui/candidates/{id}/history.csv",
        Candidate(Ready),
        Empty,
        [303, 200, 403, 403, 200, 200],
    ),
    e(
        "POST",
        "/ui/candidates/{id}/action",
        Candidate(AwaitingApproval),
        Form(&[("action", "reject")]),
        [303, 403, 403, 403, 303, 403],
    ),
    e(
        "POST",
        "/ui/candidates/{id}/assign",
        Candidate(Ready),
        Form(&[("group", "saas")]),
        [303, 403, 403, 403, 403, 303],
    ),
    e(
        "POST",
        "/ui/candidates/{id}/user",
        Candidate(AttentionRequired),
        Form(&[("user_id", "uma"), ("email", "uma@example.com")]),
        [303, 403, 403, 403, 403, 303],
    ),
    e(
        "POST",
        "/ui/candidates/{id}/notes",
        Candidate(Ready),
        Form(&[("text", "called")]),
        [303, 403, 403, 403, 303, 303],
    ),
    e("GET", "/ui/approvals", Nothing, Empty, PAGE),
    e("GET", "/ui/tasks", Nothing, Empty, PAGE),
    e("GET", "/ui/savings", Nothing, Empty, PAGE),
    e("GET", "/ui/savings.csv", Nothing, Empty, PAGE),
    e(
        "GET",
        "/ui/history.csv?from=2020-01-01&to=2030-12-31",
        Nothing,
        Empty,
        ADMIN_PAGE,
    ),
    e("GET", "/ui/rules", Nothing, Empty, ADMIN_PAGE),
    e("GET", "/ui/rules/new", Nothing, Empty, ADMIN_PAGE),
    e(
        "POST",
        "/ui/rules",
        Nothing,
        Form(RULE_FORM),
        [303, 403, 403, 403, 403, 303],
    ),
    e(
        "GET",
        "/ui/rules/{id}/edit",
        Named("notify"),
        Empty,
        ADMIN_PAGE,
    ),
    e(
        "POST",
        "/ui/rules/{id}/edit",
        Named("notify"),
        Form(&[("name", "Ask the user")]),
        // Without the digest of the rule as shown, a save is a conflict, never a blind write.
        [303, 403, 403, 403, 403, 409],
    ),
    e(
        "POST",
        "/ui/rules/{id}/delete",
        FreshRule,
        Form(&[("confirm", "yes")]),
        [303, 403, 403, 403, 403, 303],
    ),
    e("GET", "/ui/alerts", Nothing, Empty, PAGE),
    e("GET", "/ui/connectors", Nothing, Empty, ADMIN_PAGE),
    e(
        "POST",
        "/ui/connectors/{id}/run",
        Named("scripted-usage-2"),
        Form(&[]),
        [303, 403, 403, 403, 403, 303],
    ),
];

async fn reclaim(h: &Harness, n: &str) {
    let r = h
        .post(&format!("/api/v1/candidates/{n}/reclaim"), SAM, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    h.drain().await;
}

/// A fresh candidate of uma's (group desktop) in `state`; returns its number.
async fn candidate_in(h: &Harness, state: State) -> String {
    let n = match state {
        AwaitingRevocation | ClosedComplete => h.create_one(json!({"rule": "silent"})).await,
        AttentionRequired => h.create_one(json!({"user_email": ""})).await,
        _ => h.create_one(json!({})).await,
    };
    if state != Ready {
        reclaim(h, &n).await;
    }
    if state == ClosedComplete {
        let r = h
            .post(
                &format!("/api/v1/candidates/{n}/close-complete"),
                SAM,
                json!({"note": "removed by hand"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        h.drain().await;
    }
    if state == AwaitingApproval {
        let r = h
            .post(
                &format!("/api/v1/candidates/{n}/answer"),
                UMA,
                json!({"keep": true}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        h.drain().await;
    }
    assert_eq!(h.candidate(&n).await.state, state, "setup of {n}");
    n
}

/// A candidate of uma's closed complete a week ago and found again by its first re-check,
/// written straight to the store (the verification tests drive the real path); its id.
async fn reappeared(h: &Harness) -> String {
    use reclaim_workflow::ports::{CandidateWrite, Change};
    let n = candidate_in(h, Ready).await;
    let c = h.candidate(&n).await;
    let now = chrono::Utc::now();
    let mut v = reclaim_workflow::Verification::new(
        reclaim_workflow::VerificationStatus::Verified,
        now - chrono::Duration::days(7),
    );
    v.reappeared_at = Some(now);
    let mut closed = c.clone();
    closed.version += 1;
    closed.state = ClosedComplete;
    closed.closed_at = Some(now - chrono::Duration::days(7));
    closed.verification = Some(v);
    let entry = reclaim_workflow::HistoryEntry {
        candidate_id: c.id.clone(),
        version: closed.version,
        at: now,
        actor: reclaim_workflow::ActorRef::Revocation,
        event: "verified-present".into(),
        from: Ready,
        to: ClosedComplete,
        reason: None,
        ip: None,
        user_agent: None,
    };
    h.embedded
        .store
        .commit(&Change {
            expected_version: c.version,
            candidate: closed,
            entry,
            effects: vec![],
        })
        .await
        .unwrap();
    c.id
}

/// The "No, remove it" link of the newest email about candidate `n`.
async fn remove_link(h: &Harness, n: &str) -> String {
    let id = h.candidate(n).await.id;
    let mail = h.mail_to("uma@example.com").await;
    let m = mail
        .iter()
        .rev()
        .find(|m| m.text.contains(&id))
        .expect("the email about the candidate");
    link_path(&m.text, "No, remove it")
}

#[tokio::test]
async fn every_route_for_every_role_answers_the_expected_status() {
    // A deployment with one usage connector, so its routes answer as they do for real.
    let h = Harness::with_sources(std::sync::Arc::new(
        reclaim_tests::connectors::ScriptedSource::new(&[], 10)
            .named(&["scripted-usage", "scripted-usage-2"]),
    ))
    .await;
    let mut sessions = Vec::new();
    for role in ROLES {
        sessions.push(match role.who() {
            Some((user, _)) => Some(h.ui_sign_in(user).await),
            None => None,
        });
    }
    let routes: Vec<&RouteDoc> = ROUTES.iter().chain(PAGES.iter()).collect();
    let mut failures = Vec::new();
    let mut cases = 0;
    let mut cases_with_rules = 0;
    for d in &routes {
        let method = d.method.as_str();
        let Some(x) = EXPECT
            .iter()
            // A row may add a query the route needs (`?from=…`); the route is the path.
            .find(|x| x.method == method && x.path.split('?').next() == Some(d.path))
        else {
            failures.push(format!(
                "{method} {}: no row in EXPECT; say who may call it",
                d.path
            ));
            continue;
        };
        for (i, role) in ROLES.iter().enumerate() {
            cases += 1;
            let mut path = x.path.to_string();
            let mut id = String::new();
            match x.setup {
                Nothing => {}
                Candidate(state) => {
                    let n = candidate_in(&h, state).await;
                    id = h.candidate(&n).await.id;
                    path = path.replace("{id}", &id);
                }
                Reappeared => {
                    id = reappeared(&h).await;
                    path = path.replace("{id}", &id);
                }
                Named(name) => path = path.replace("{id}", name),
                FreshRule => {
                    cases_with_rules += 1;
                    let rule: reclaim_workflow::Rule = serde_json::from_value(
                        json!({"id": format!("spare-{cases_with_rules}"), "name": "Spare"}),
                    )
                    .unwrap();
                    h.embedded.app.ports.rules.put_rule(&rule).await.unwrap();
                    path = path.replace("{id}", &rule.id);
                }
                Link => {
                    let n = candidate_in(&h, AwaitingUser).await;
                    path = remove_link(&h, &n).await;
                }
                Mail => {
                    let n = candidate_in(&h, AwaitingUser).await;
                    let c = h.candidate(&n).await;
                    let key = h
                        .mail_to("uma@example.com")
                        .await
                        .into_iter()
                        .rev()
                        .find(|m| m.text.contains(&c.id))
                        .unwrap()
                        .key;
                    path = path.replace("{key}", &encode_segment(&key));
                }
            }
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            let session = sessions[i].as_ref();
            let r = match x.body {
                Form(fields) if path.starts_with("/ui") => {
                    let mut f: Vec<(&str, String)> = fields
                        .iter()
                        .map(|(k, v)| (*k, v.replace("{id}", &id)))
                        .collect();
                    if let Some(s) = session {
                        f.push(("csrf", s.csrf.clone()));
                    }
                    let pairs: Vec<(&str, &str)> =
                        f.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    h.ui(m, &path, session, Some(&pairs)).await
                }
                Form(_) => {
                    let token = role.who().map(|w| w.1);
                    h.call_raw(
                        m,
                        &path,
                        token,
                        Some("application/x-www-form-urlencoded"),
                        "",
                    )
                    .await
                }
                SignIn => {
                    let page = h.ui(Method::GET, "/ui/sign-in", None, None).await;
                    let pre = UiSession {
                        cookie: set_cookie_value(&page, "reclaim_sign_in").unwrap(),
                        csrf: csrf_of(&page.text()),
                    };
                    let user = role.who().map_or("", |w| w.0);
                    h.ui(
                        m,
                        &path,
                        Some(&pre),
                        Some(&[("csrf", &pre.csrf), ("user", user)]),
                    )
                    .await
                }
                _ if path.starts_with("/ui") => h.ui(m, &path, session, None).await,
                Json(body) => {
                    let v: serde_json::Value = serde_json::from_str(body).unwrap();
                    h.call(m, &path, role.who().map(|w| w.1), Some(v)).await
                }
                Empty => h.call(m, &path, role.who().map(|w| w.1), None).await,
            };
            // Signing out ends sessions on the server: the next cases need fresh ones.
            if matches!(x.path, "/ui/sign-out" | "/ui/sessions/end-all") {
                for (j, role) in ROLES.iter().enumerate() {
                    if let Some((user, _)) = role.who() {
                        sessions[j] = Some(h.ui_sign_in(user).await);
                    }
                }
            }
            let want = x.status[i];
            if r.status.as_u16() != want {
                let body: String = r.text().chars().take(160).collect();
                failures.push(format!(
                    "{method} {} as {}: expected {want}, got {} ({})",
                    x.path,
                    role.name(),
                    r.status.as_u16(),
                    body.replace('\n', " ")
                ));
            }
        }
    }
    assert!(cases >= 6 * 40, "only {cases} cases");
    assert!(
        failures.is_empty(),
        "{} of {cases} route × role cases are wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Link tokens

fn signer() -> HmacLinkSigner {
    HmacLinkSigner::new(LINK_KEY).unwrap()
}

/// The token of a `/respond/{token}` path.
fn token_of(path: &str) -> &str {
    path.strip_prefix("/respond/").unwrap()
}

/// A token whose claims part is that of `claims` but whose signature is `original`'s: one
/// field changed, the signature kept.
fn with_claims_of(original: &str, claims: &LinkClaims) -> String {
    let forged = signer().sign(claims);
    let body = forged.split_once('.').unwrap().0;
    let tag = original.split_once('.').unwrap().1;
    format!("{body}.{tag}")
}

async fn press(h: &Harness, token: &str) -> Resp {
    h.call_raw(
        Method::POST,
        &format!("/respond/{token}"),
        None,
        Some("application/x-www-form-urlencoded"),
        "comment=x",
    )
    .await
}

#[tokio::test]
async fn link_tokens_tampered_expired_replayed_misused_truncated_or_oversized_change_nothing() {
    let h = Harness::new().await;
    let n = candidate_in(&h, AwaitingUser).await;
    let other = candidate_in(&h, AwaitingUser).await;
    let c = h.candidate(&n).await;
    let path = remove_link(&h, &n).await;
    let token = token_of(&path).to_string();
    let claims = signer().verify(&token, chrono::Utc::now()).unwrap();
    assert_eq!(claims.candidate_id, c.id);
    assert_eq!(claims.user_id, "uma");
    assert_eq!(claims.action, LinkAction::Remove);
    let before = h.snapshot(&n).await;
    let other_before = h.snapshot(&other).await;

    let mut attacks: Vec<(&str, String, StatusCode)> = Vec::new();
    let tamper = |f: &dyn Fn(&mut LinkClaims)| {
        let mut x = claims.clone();
        f(&mut x);
        with_claims_of(&token, &x)
    };
    let other_id = h.candidate(&other).await.id;
    attacks.push((
        "candidate id tampered",
        tamper(&|x| x.candidate_id = other_id.clone()),
        StatusCode::BAD_REQUEST,
    ));
    attacks.push((
        "user tampered",
        tamper(&|x| x.user_id = "nia".into()),
        StatusCode::BAD_REQUEST,
    ));
    attacks.push((
        "answer tampered",
        tamper(&|x| x.action = LinkAction::Keep),
        StatusCode::BAD_REQUEST,
    ));
    attacks.push((
        "version tampered",
        tamper(&|x| x.version += 1),
        StatusCode::BAD_REQUEST,
    ));
    attacks.push((
        "expiry tampered",
        tamper(&|x| x.expires_at += chrono::Duration::days(365)),
        StatusCode::BAD_REQUEST,
    ));
    let other_key = HmacLinkSigner::new([7u8; 32]).unwrap().sign(&claims);
    attacks.push((
        "signed with another key",
        other_key,
        StatusCode::BAD_REQUEST,
    ));
    let mut expired = claims.clone();
    expired.expires_at = chrono::Utc::now() - chrono::Duration::minutes(1);
    attacks.push((
        "expired (validly signed)",
        signer().sign(&expired),
        StatusCode::GONE,
    ));
    attacks.push((
        "truncated by one character",
        token[..token.len() - 1].to_string(),
        StatusCode::BAD_REQUEST,
    ));
    attacks.push((
        "truncated to its claims",
        token.split_once('.').unwrap().0.to_string(),
        StatusCode::BAD_REQUEST,
    ));
    attacks.push((
        "oversized",
        format!("{token}{}", "A".repeat(4000)),
        StatusCode::BAD_REQUEST,
    ));
    attacks.push((
        "empty signature",
        format!("{}.", token.split_once('.').unwrap().0),
        StatusCode::BAD_REQUEST,
    ));
    let mut misused = claims.clone();
    misused.user_id = "nia".into();
    attacks.push((
        "validly signed for another user",
        signer().sign(&misused),
        StatusCode::FORBIDDEN,
    ));

    for (what, t, want) in &attacks {
        let get = h
            .call(Method::GET, &format!("/respond/{t}"), None, None)
            .await;
        let post = press(&h, t).await;
        if *want != StatusCode::FORBIDDEN {
            assert_eq!(get.status, *want, "GET, {what}: {}", get.text());
        }
        assert_eq!(post.status, *want, "POST, {what}: {}", post.text());
        assert!(!post.text().contains("Thank you"), "{what}");
        assert_eq!(h.snapshot(&n).await, before, "{what} changed the candidate");
        assert_eq!(h.snapshot(&other).await, other_before, "{what}");
    }

    // The real link works once; replayed after the state moved, it changes nothing.
    let r = press(&h, &token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let after = h.snapshot(&n).await;
    assert_eq!(after.state, AwaitingRevocation);
    let r = press(&h, &token).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.text().contains("Already answered"));
    let r = h.call(Method::GET, &path, None, None).await;
    assert!(r.text().contains("Already answered"));
    assert_eq!(h.snapshot(&n).await, after);
}

#[tokio::test]
async fn approver_links_work_for_the_group_once_and_for_nobody_else() {
    let h = Harness::new().await;
    let n = candidate_in(&h, AwaitingApproval).await;
    let c = h.candidate(&n).await;
    let mail = h.mail_to("ada@example.com").await;
    let approve = link_path(
        &mail
            .iter()
            .rev()
            .find(|m| m.text.contains(&c.id))
            .unwrap()
            .text,
        "Approve (keep)",
    );
    let claims = signer()
        .verify(token_of(&approve), chrono::Utc::now())
        .unwrap();
    assert_eq!(claims.user_id, "ada");
    assert_eq!(claims.action, LinkAction::Approve);
    let before = h.snapshot(&n).await;
    // Signed for bob (another group) or for the holder: refused, nothing changed.
    for who in ["bob", "uma", "nobody"] {
        let mut x = claims.clone();
        x.user_id = who.into();
        let r = press(&h, &signer().sign(&x)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{who}: {}", r.text());
        assert_eq!(h.snapshot(&n).await, before, "{who}");
    }
    // The approver's own link: a confirmation page on GET, the decision on POST, once.
    let r = h.call(Method::GET, &approve, None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("Approve"));
    assert_eq!(h.snapshot(&n).await, before);
    let r = h
        .call_raw(
            Method::POST,
            &approve,
            None,
            Some("application/x-www-form-urlencoded"),
            "comment=ok",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let after = h.snapshot(&n).await;
    assert_eq!(after.state, ClosedSkipped);
    let entry = h.history(&n).await.pop().unwrap();
    assert_eq!(entry.actor.to_string(), "ada");
    let reject = link_path(
        &mail
            .iter()
            .rev()
            .find(|m| m.text.contains(&c.id))
            .unwrap()
            .text,
        "Reject (remove)",
    );
    let r = press(&h, token_of(&reject)).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(h.snapshot(&n).await, after);
}

// ---------------------------------------------------------------------------------------------
// Headers and cookies

#[tokio::test]
async fn workspace_pages_carry_the_security_headers_and_no_inline_script_or_style() {
    let h = Harness::new().await;
    let n = candidate_in(&h, AwaitingApproval).await;
    let id = h.candidate(&n).await.id;
    let sam = h.ui_sign_in("sam").await;
    let ada = h.ui_sign_in("ada").await;
    let mut pages = vec![h.ui(Method::GET, "/ui/sign-in", None, None).await];
    for p in [
        "/ui".to_string(),
        "/ui/candidates".into(),
        format!("/ui/candidates/{id}"),
        "/ui/tasks".into(),
        "/ui/savings".into(),
        "/ui/alerts".into(),
        "/ui/connectors".into(),
        "/ui/candidates?state=nonsense".into(),
    ] {
        pages.push(h.ui(Method::GET, &p, Some(&sam), None).await);
    }
    pages.push(h.ui(Method::GET, "/ui/approvals", Some(&ada), None).await);
    for r in &pages {
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("form-action 'self'"), "{csp}");
        assert!(
            !csp.contains("script-src") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("referrer-policy"), Some("same-origin"));
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let text = r.text();
        assert!(text.starts_with("<!doctype html>"), "{}", r.status);
        assert!(!text.contains("<script"), "inline script");
        assert!(
            !text.contains(" style=\""),
            "inline style (the CSP blocks it)"
        );
        assert!(
            !text.contains(" on") || !text.contains("onclick="),
            "inline handler"
        );
    }
    // Every cookie the workspace sets is HttpOnly and SameSite=Strict.
    let r = h.ui(Method::GET, "/ui/sign-in", None, None).await;
    for c in set_cookies(&r) {
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Strict"),
            "{c}"
        );
    }
}
