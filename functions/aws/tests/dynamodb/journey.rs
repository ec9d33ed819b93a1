//! End to end on the emulator, as the four functions run it: an admin's API Gateway request
//! → the `api` Router → DynamoDB → the stream's records → the `effects` handler → SES (read
//! back from the emulator) → the user's link through the `respond` Router → … → Closed
//! Complete. Real event JSON (fixtures) for API Gateway v2; the stream records are the ones
//! the emulator's DynamoDB stream produced.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use aws_lambda_events::dynamodb::Event as StreamEvent;
use axum::http::StatusCode;
use http_body_util::BodyExt;
use reclaim_api::{
    admin_routes, public_routes, ApiState, HmacLinkSigner, ManualTaskRevoker, NoAuthentication,
};
use reclaim_aws::wiring::{Function, JwtClaims, Wiring};
use reclaim_aws::DynamoStore;
use reclaim_workflow::ports::{
    CandidateRead, CandidateWrite, Directory, LinkAction, LinkSigner, TaskStore,
};
use reclaim_workflow::{Group, State, TaskKind, User};
use std::sync::Arc;
use tower::ServiceExt;

const KEY: &str = "0123456789abcdef0123456789abcdef-journey";

/// The three functions the journey goes through, each wired as its `main` wires it (their AWS
/// calls are checked against their roles at the end), and the operator's own store.
struct World {
    api: Wiring,
    respond: Wiring,
    effects: Wiring,
    functions: common::Functions,
    store: DynamoStore,
    stream: common::StreamReader,
    /// The journey reads its table's stream: its turn at that ([`common::STREAM_TURN`]).
    _turn: tokio::sync::MutexGuard<'static, ()>,
    sender: String,
    user_email: String,
}

async fn world() -> World {
    let turn = common::STREAM_TURN.lock().await;
    let sdk = common::sdk().await;
    let store = common::fresh_store("journey").await;
    let ses = aws_sdk_sesv2::Client::new(&sdk);
    let sender = format!("{}@example.com", common::table_name("reclaim"));
    ses.create_email_identity()
        .email_identity(&sender)
        .send()
        .await
        .unwrap();
    let functions = common::Functions::new(&store, &sender, KEY).await;
    let api = functions
        .start(Function::Api, Arc::new(ManualTaskRevoker))
        .await;
    let respond = functions
        .start(Function::Respond, Arc::new(ManualTaskRevoker))
        .await;
    let effects = functions
        .start(Function::Effects, Arc::new(ManualTaskRevoker))
        .await;
    let user_email = format!("{}@example.com", common::table_name("uma"));
    let person = |id: &str, email: String, admin: bool| User {
        id: id.into(),
        display_name: id.to_uppercase(),
        email: Some(email),
        upn: None,
        itil: false,
        vip: false,
        sam_admin: admin,
    };
    store
        .put_user(&person("ada", "ada@example.com".into(), true))
        .await
        .unwrap();
    store
        .put_user(&person("bob", "bob@example.com".into(), false))
        .await
        .unwrap();
    store
        .put_group(&Group {
            id: "approvers".into(),
            name: "Approvers".into(),
            email: None,
            members: vec!["bob".into()],
        })
        .await
        .unwrap();
    let mut c = reclaim_workflow::testing::candidate();
    if let Some(u) = c.user.as_mut() {
        u.email = Some(user_email.clone());
    }
    c.opened_at = chrono::Utc::now();
    c.updated_at = c.opened_at;
    store.insert(&[c]).await.unwrap();
    let mut stream = common::StreamReader::open(store.table()).await;
    let _ = stream.next_event().await; // the import: nothing to do
    World {
        api,
        respond,
        effects,
        functions,
        store,
        stream,
        _turn: turn,
        sender,
        user_email,
    }
}

/// An API Gateway v2 fixture with its placeholders filled in, as `lambda_http` decodes it.
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

async fn call(router: axum::Router, req: lambda_http::Request) -> (StatusCode, String) {
    let res = router.oneshot(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).to_string())
}

impl World {
    fn api(&self) -> axum::Router {
        admin_routes(
            ApiState::new(self.api.app.clone(), Arc::new(JwtClaims::new("sub")))
                .trusting_forwarded_for(true),
        )
    }

    fn respond(&self) -> axum::Router {
        public_routes(
            ApiState::new(self.respond.app.clone(), Arc::new(NoAuthentication))
                .trusting_forwarded_for(true),
        )
    }

    /// Hands the stream's new records to the `effects` handler until nothing is left,
    /// returning how many batches ran.
    async fn drain(&mut self) -> usize {
        for batches in 0..10 {
            let event: StreamEvent =
                serde_json::from_value(self.stream.next_event().await).unwrap();
            if event.records.is_empty() {
                return batches;
            }
            let r = reclaim_aws::stream::handle(&self.effects.app, &event).await;
            assert!(r.batch_item_failures.is_empty(), "{r:?}");
        }
        panic!("the effects never settled");
    }

    async fn mail_to_user(&self) -> Vec<serde_json::Value> {
        common::sent_mail()
            .await
            .into_iter()
            .filter(|m| m["destinations"]["ToAddresses"][0] == self.user_email.as_str())
            .collect()
    }
}

/// The `/respond/{token}` links in a message, with what each does.
fn links(body: &str) -> Vec<(LinkAction, String)> {
    let signer = HmacLinkSigner::new(KEY).unwrap();
    body.split("/respond/")
        .skip(1)
        .filter_map(|rest| {
            let token: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_' || *c == '.')
                .collect();
            let claims = signer.verify(&token, chrono::Utc::now()).ok()?;
            Some((claims.action, token))
        })
        .collect()
}

#[tokio::test]
async fn reclaim_email_answer_no_manual_removal_close_complete() {
    let mut w = world().await;

    // 1. The admin reclaims through the `api` Router, with the JWT authorizer's claims.
    let (status, body) = call(
        w.api(),
        gateway_request("apigw-v2-admin-reclaim.json", &[("{id}", "c-1")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        w.store.get("c-1").await.unwrap().unwrap().state,
        State::AwaitingUser
    );

    // Without the authorizer's claims, the same request is not let in.
    let mut anonymous = gateway_request("apigw-v2-admin-reclaim.json", &[("{id}", "c-1")]);
    anonymous.extensions_mut().clear();
    assert_eq!(call(w.api(), anonymous).await.0, StatusCode::UNAUTHORIZED);

    // 2. The stream carries the transition's effects to `effects`: the email and the task.
    assert!(w.drain().await >= 1);
    let mail = w.mail_to_user().await;
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert_eq!(mail[0]["source"], w.sender.as_str());
    let subject = mail[0]["subject"].as_str().unwrap();
    assert!(subject.contains("Acrobat Pro"), "{subject}");
    // The HTML escapes slashes in attributes; read it as a mail client would.
    let body = mail[0]["body"].as_str().unwrap().replace("&#x2f;", "/");
    let found = links(&body);
    assert!(found.iter().any(|(a, _)| *a == LinkAction::Keep), "{body}");
    let remove = found
        .iter()
        .find(|(a, _)| *a == LinkAction::Remove)
        .map(|(_, t)| t.clone())
        .expect("a No link");
    assert!(body.contains("https://links.reclaim.example.com/respond/"));
    let tasks = w.store.tasks_for("c-1").await.unwrap();
    assert!(
        tasks
            .iter()
            .any(|t| t.kind == TaskKind::UserAnswer && t.open),
        "an ITIL user also gets a task: {tasks:?}"
    );

    // A replay of everything the stream has carried so far does nothing twice.
    let mut replay = common::StreamReader::open(w.store.table()).await;
    let all: StreamEvent = serde_json::from_value(replay.next_event().await).unwrap();
    let r = reclaim_aws::stream::handle(&w.effects.app, &all).await;
    assert!(r.batch_item_failures.is_empty());
    assert_eq!(w.mail_to_user().await.len(), 1, "no second email");
    assert_eq!(
        w.store.tasks_for("c-1").await.unwrap(),
        tasks,
        "no second task"
    );

    // 3. The user presses No on the link page (through the `respond` Router): one read of
    // the candidate, one conditional write, and the page built from what was written.
    let before = w.respond.store.stats();
    let (status, page) = call(
        w.respond(),
        gateway_request("apigw-v2-public-respond.json", &[("{token}", &remove)]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let cost = w.respond.store.stats().since(&before);
    assert_eq!(
        (cost.reads, cost.writes),
        (1, 1),
        "a user's answer is one read and one write: {cost:?}"
    );
    let c = w.store.get("c-1").await.unwrap().unwrap();
    assert_eq!(c.state, State::AwaitingRevocation);
    let history = w.store.history("c-1").await.unwrap();
    let answer = history.last().unwrap();
    assert_eq!(answer.ip.as_deref(), Some("198.51.100.23"));
    // The link works once.
    let (_, again) = call(
        w.respond(),
        gateway_request("apigw-v2-public-respond.json", &[("{token}", &remove)]),
    )
    .await;
    assert_eq!(w.store.history("c-1").await.unwrap().len(), history.len());
    assert!(!again.is_empty());

    // 4. `effects` runs the revocation: the manual-task revoker asks a person to remove it.
    w.drain().await;
    let c = w.store.get("c-1").await.unwrap().unwrap();
    assert_eq!(c.state, State::AwaitingRevocation);
    assert!(c.revocation.manual_task_open, "{c:?}");
    let tasks = w.store.tasks_for("c-1").await.unwrap();
    assert!(tasks
        .iter()
        .any(|t| t.kind == TaskKind::ManualRemoval && t.open));

    // 5. The admin closes it complete; the user is told.
    let req = gateway_request("apigw-v2-admin-reclaim.json", &[("{id}", "c-1")]);
    let (mut parts, body) = req.into_parts();
    parts.uri = "/api/v1/candidates/c-1/close-complete".parse().unwrap();
    let (status, body) = call(w.api(), lambda_http::Request::from_parts(parts, body)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    w.drain().await;
    let c = w.store.get("c-1").await.unwrap().unwrap();
    assert_eq!(c.state, State::ClosedComplete);
    assert!(w
        .store
        .tasks_for("c-1")
        .await
        .unwrap()
        .iter()
        .all(|t| !t.open));
    let mail = w.mail_to_user().await;
    assert_eq!(mail.len(), 2, "asked, then told it was removed: {mail:?}");
    let states: Vec<State> = w
        .store
        .history("c-1")
        .await
        .unwrap()
        .iter()
        .map(|h| h.to)
        .collect();
    assert_eq!(states.first(), Some(&State::AwaitingUser));
    assert_eq!(states.last(), Some(&State::ClosedComplete));

    // Every AWS call the three functions made is one their roles allow.
    w.functions.check();
}
