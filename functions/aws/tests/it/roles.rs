//! The IAM roles of `infra/template.yaml` fit the code: each of the five functions, wired as
//! its `main` wires it (`connectors` with the real `m365-usage` plugin against the fake Graph), goes through everything it does on AWS (against the emulator), every
//! AWS call is recorded at the SDK ([`reclaim_aws::calls`]), and then
//!
//! - every call must be allowed by the function's role (the other AWS journeys check their
//!   own calls the same way, `common::Functions::check`);
//! - every grant of every role must be used by some call here, unless [`EXCEPTIONS`] says why
//!   no journey can use it;
//! - no statement that limits `dynamodb:LeadingKeys` may allow a keyless action (a scan).
//!
//! A new AWS call in the code fails this test until the template allows it; a new grant
//! fails it until a journey here uses it (or an exception explains it). See
//! `tests/common/roles.rs` for what of IAM is modelled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use aws_lambda_events::dynamodb::Event as StreamEvent;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use axum::http::StatusCode;
use common::roles::{self, Exception};
use common::Functions;
use http_body_util::BodyExt;
use reclaim_api::{public_routes, ApiState, HmacLinkSigner, ManualTaskRevoker, NoAuthentication};
use reclaim_aws::calls::Function;
use reclaim_aws::wiring::Wiring;
use reclaim_workflow::ports::{
    CandidateFilter, CandidateRead, CandidateWrite, Change, Directory, LinkAction, LinkClaims,
    LinkSigner, PageRequest, RuleStore, TaskStore,
};
use reclaim_workflow::testing::contract::varied;
use reclaim_workflow::{apply, Actor, Event, Group, Principal, State, User};
use std::sync::Arc;
use tower::ServiceExt;

const KEY: &str = "0123456789abcdef0123456789abcdef-roles";
/// Microsoft 365 E3 at the fake Graph.
const E3: &str = "05e9a617-0261-4cee-bb44-138d3ef5d965";

/// The built plugins (`plugins/build.sh`): the test command's build when it exported
/// `RECLAIM_PLUGINS_DIR`, else `plugins/dist`.
fn built_plugins() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    [
        std::env::var_os("RECLAIM_PLUGINS_DIR").map(std::path::PathBuf::from),
        Some(root.join("plugins/dist")),
    ]
    .into_iter()
    .flatten()
    .find(|d| d.join("m365-usage/plugin.wasm").is_file())
    .expect("the plugins are built: run plugins/build.sh DIR and set RECLAIM_PLUGINS_DIR=DIR")
}

/// The connectors function's package as a deployment ships it: only `m365-usage`, configured
/// for the fake Graph, its client secret a `store:` source (read from Secrets Manager at
/// init), precompiled for this machine.
fn connector_package(fakes: &reclaim_fakes::FakeVendors) -> tempfile::TempDir {
    let installed = tempfile::tempdir().unwrap();
    fakes
        .install_plugins(&built_plugins(), installed.path())
        .unwrap();
    let src = tempfile::tempdir().unwrap();
    let dest = src.path().join("m365-usage");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::copy(
        installed.path().join("m365-usage/plugin.wasm"),
        dest.join("plugin.wasm"),
    )
    .unwrap();
    let manifest =
        std::fs::read_to_string(installed.path().join("m365-usage/reclaim-plugin.toml")).unwrap();
    let manifest: String = manifest
        .lines()
        .map(|l| {
            if l.starts_with("\"client-secret\" = \"file:") {
                "\"client-secret\" = \"store:m365-usage-client-secret\"".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        manifest.contains("store:m365-usage-client-secret"),
        "{manifest}"
    );
    std::fs::write(dest.join("reclaim-plugin.toml"), manifest).unwrap();
    let package = tempfile::tempdir().unwrap();
    reclaim_host::precompile::precompile_dir(
        &reclaim_host::HostConfig::default(),
        None,
        src.path(),
        package.path(),
    )
    .unwrap();
    package
}

/// Grants no journey can use, each with the reason. Keep each line true: an exception that
/// explains no unused grant fails the test too.
const EXCEPTIONS: &[Exception] = &[
    Exception {
        function: None,
        action: "managed-policy",
        resource: "AWSLambdaBasicExecutionRole",
        why: "Lambda itself writes the function's logs to CloudWatch Logs",
    },
    Exception {
        function: None,
        action: "managed-policy",
        resource: "AWSXrayWriteOnlyAccess",
        why: "Tracing: Active: the Lambda service sends the trace segments; the code calls no X-Ray API",
    },
    Exception {
        function: Some(Function::Effects),
        action: "managed-policy",
        resource: "AWSLambdaDynamoDBExecutionRole",
        why: "the event source mapping reads the table's stream and invokes effects; the code reads no stream",
    },
    Exception {
        function: None,
        action: "sqs:SendMessage",
        resource: "FailureQueue",
        why: "Lambda sends failed asynchronous invocations and exhausted stream batches to the failure queue",
    },
    Exception {
        function: None,
        action: "kms:*",
        resource: "DataKey",
        why: "DynamoDB uses the table's key on the function's behalf (kms:ViaService); the code calls no KMS API",
    },
];

fn admin() -> Actor {
    Actor::Person(Principal {
        sam_admin: true,
        ..Principal::user("ada")
    })
}

fn person(id: &str, admin: bool) -> User {
    User {
        id: id.into(),
        display_name: id.to_uppercase(),
        email: Some(format!("{id}@example.com")),
        upn: None,
        itil: false,
        vip: false,
        sam_admin: admin,
    }
}

fn link(c: &reclaim_workflow::Candidate, user: &str, action: LinkAction) -> String {
    HmacLinkSigner::new(KEY).unwrap().sign(&LinkClaims {
        candidate_id: c.id.clone(),
        user_id: user.to_string(),
        action,
        version: c.version,
        expires_at: chrono::Utc::now() + chrono::Duration::days(3),
    })
}

/// A link page (GET) or a button (POST) through the `respond` function's Router.
async fn respond(w: &Wiring, method: &str, token: &str) -> StatusCode {
    let router = public_routes(
        ApiState::new(w.app.clone(), Arc::new(NoAuthentication)).trusting_forwarded_for(true),
    );
    let json = std::fs::read_to_string(format!(
        "{}/tests/fixtures/apigw-v2-public-respond.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .replace("{token}", token)
    .replace("\"POST", &format!("\"{method}"));
    let res = router
        .oneshot(lambda_http::request::from_str(&json).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert!(
        status.is_success(),
        "{status}: {}",
        String::from_utf8_lossy(&body)
    );
    status
}

/// Hands the stream's new records to `effects` until nothing is left.
async fn drain(effects: &Wiring, stream: &mut common::StreamReader) {
    for _ in 0..10 {
        let event: StreamEvent = serde_json::from_value(stream.next_event().await).unwrap();
        if event.records.is_empty() {
            return;
        }
        let r = reclaim_aws::stream::handle(&effects.app, &event).await;
        assert!(r.batch_item_failures.is_empty(), "{r:?}");
    }
    panic!("the effects never settled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_allows_what_its_function_does_and_nothing_more() {
    // The deployment: a table, a sender whose domain is the SES identity, a configuration
    // set, the link key and a vendor secret in Secrets Manager. The test's own store (the
    // operator) seeds and looks; only the functions' calls are checked.
    let store = common::fresh_store("roles").await;
    // A domain of its own: verifying it in the emulator verifies every address in it, which
    // other tests (an unverified sender) must not see.
    let domain = format!("{}.example.org", common::table_name("roles"));
    let sender = format!("reclaim@{domain}");
    let mut f = Functions::new(&store, &sender, KEY).await;
    let ses = aws_sdk_sesv2::Client::new(&f.sdk);
    let set = common::table_name("set");
    ses.create_configuration_set()
        .configuration_set_name(&set)
        .send()
        .await
        .unwrap();
    f.deployment.configuration_set = Some(set);
    f.deployment.vendor_prefix = format!("{}/", common::table_name("vendor"));
    aws_sdk_secretsmanager::Client::new(&f.sdk)
        .create_secret()
        .name(format!("{}m365-client-secret", f.deployment.vendor_prefix))
        .secret_string("vendor-secret")
        .send()
        .await
        .unwrap();
    store.put_user(&person("ada", true)).await.unwrap();
    store.put_user(&person("bob", false)).await.unwrap();

    // The workspace signs people in: api reads the client secret at init.
    f.with_oidc(
        "https://login.example.com",
        "client-secret-of-the-roles-test",
    )
    .await;
    let api = f.start(Function::Api, Arc::new(ManualTaskRevoker)).await;
    assert!(api.oidc.is_some());
    let respond_check = f
        .start(Function::Respond, Arc::new(ManualTaskRevoker))
        .await;
    assert!(
        respond_check.oidc.is_none(),
        "only api reads the client secret"
    );
    let respond_fn = f
        .start(Function::Respond, Arc::new(ManualTaskRevoker))
        .await;
    let effects = f
        .start(Function::Effects, Arc::new(ManualTaskRevoker))
        .await;
    let sweep = f.start(Function::Sweep, Arc::new(ManualTaskRevoker)).await;

    // --- api: workspace sessions and sign-ins in progress.
    {
        use reclaim_workflow::ports::{PendingSignIn, SessionRecord, SessionStore};
        let now = chrono::Utc::now();
        let session = SessionRecord {
            id: "roles-session".into(),
            user_id: "ada".into(),
            method: "oidc".into(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + chrono::Duration::hours(1),
        };
        api.store.put_session(&session).await.unwrap();
        assert!(api
            .store
            .session("roles-session", now)
            .await
            .unwrap()
            .is_some());
        assert!(api.store.touch_session(&session).await.unwrap());
        assert!(api.store.end_session("roles-session").await.unwrap());
        api.store.put_session(&session).await.unwrap();
        assert_eq!(api.store.end_all_sessions().await.unwrap(), 1);
        api.store
            .put_sign_in(&PendingSignIn {
                id: "roles-state".into(),
                nonce: "n".into(),
                pkce_verifier: "v".into(),
                next: "/ui".into(),
                expires_at: now + chrono::Duration::minutes(10),
            })
            .await
            .unwrap();
        assert!(api
            .store
            .take_sign_in("roles-state", now)
            .await
            .unwrap()
            .is_some());
    }

    // --- api: the directory, rules, imports small and large, every listing, tasks.
    let app = &api.app;
    assert!(app.principal("ada").await.unwrap().is_some());
    api.store
        .put_group(&Group {
            id: "approvers".into(),
            name: "Approvers".into(),
            email: None,
            members: vec!["bob".into()],
        })
        .await
        .unwrap();
    assert!(api.store.group("approvers").await.unwrap().is_some());
    let rule = serde_json::json!({
        "id": "roles-rule", "name": "Roles", "notify_user": true,
        "days_before_auto_reclamation": 14, "reminder_days": [3, 7],
        "assignment_group": "approvers", "software": [{"publisher": "Adobe"}],
        "criteria": {"kind": "last-used-before", "days": 90}, "create_candidates": true
    });
    app.put_rule(&rule).await.unwrap();
    assert!(api.store.rule("roles-rule").await.unwrap().is_some());
    assert_eq!(api.store.rules().await.unwrap().len(), 1);
    app.delete_rule("roles-rule").await.unwrap();

    // A small import is one transaction; a large one is checked and written in batches.
    // An id that looks like a number costs the alias lookup wherever it is read (respond's
    // link, effects' revocation).
    let mut asked = reclaim_workflow::testing::candidate();
    asked.id = "RC7000001".into();
    asked.number = "RC0000901".into();
    asked.opened_at = chrono::Utc::now();
    asked.updated_at = asked.opened_at;
    let mut kept = asked.clone();
    kept.id = "c-roles-2".into();
    kept.number = "RC0000902".into();
    api.store
        .insert(&[asked.clone(), kept.clone()])
        .await
        .unwrap();
    let many: Vec<_> = (1..=12).map(|n| varied(n + 100)).collect();
    api.store.insert(&many).await.unwrap();
    assert!(api.store.allocate_numbers(1).await.unwrap() > 0);
    assert!(api.store.get("RC0000902").await.unwrap().is_some());
    assert!(api.store.history("RC0000113").await.unwrap().is_empty());
    for filter in [
        CandidateFilter::default(),
        CandidateFilter {
            state: Some(State::Ready),
            ..Default::default()
        },
        CandidateFilter {
            group: Some("approvers".into()),
            ..Default::default()
        },
        // A search by person: the people catalog, then the person's candidates.
        CandidateFilter {
            user_text: Some("carla".into()),
            ..Default::default()
        },
        // A search by software: the software catalog, then the product's candidates.
        CandidateFilter {
            software_text: Some("acro".into()),
            ..Default::default()
        },
    ] {
        let page = PageRequest {
            limit: 5,
            cursor: None,
            sort: None,
        };
        assert!(!app
            .ports
            .candidates
            .list(&filter, &page)
            .await
            .unwrap()
            .items
            .is_empty());
    }
    // A sorted list reads the order's index.
    let sorted = PageRequest {
        limit: 5,
        cursor: None,
        sort: Some(reclaim_workflow::ports::Sort {
            key: reclaim_workflow::ports::SortKey::Savings,
            descending: true,
        }),
    };
    assert!(!app
        .ports
        .candidates
        .list(&CandidateFilter::default(), &sorted)
        .await
        .unwrap()
        .items
        .is_empty());
    app.stale_alerts().await.unwrap();
    // A savings report reads the running totals.
    app.ports
        .candidates
        .savings(reclaim_workflow::savings::ALL_SCOPE)
        .await
        .unwrap();
    // An auditor's export of a period reads the by-time index.
    let now = chrono::Utc::now();
    app.ports
        .candidates
        .history_between(
            now - chrono::Duration::days(1),
            now + chrono::Duration::days(1),
            &PageRequest::default(),
        )
        .await
        .unwrap();

    // The admin corrects a candidate's user (the people catalog learns the new name).
    let mut user = asked.user.clone().unwrap();
    user.display_name = "Corrected Name".into();
    let asked = app
        .transition(&asked.id, &Event::UpdateUser { user }, &admin(), None)
        .await
        .unwrap();
    // The admin reclaims both (through the App the Router calls).
    for c in [&asked, &kept] {
        app.transition(&c.id, &Event::Reclaim, &admin(), None)
            .await
            .unwrap();
    }

    // --- effects: the stream's records → mail (SES refuses first: the sender is not yet
    // verified, so the claim is given back), tasks, plugin secrets.
    let mut stream = common::StreamReader::open(store.table()).await;
    let first: StreamEvent = serde_json::from_value(stream.next_event().await).unwrap();
    let r = reclaim_aws::stream::handle(&effects.app, &first).await;
    assert!(r.batch_item_failures.is_empty(), "{r:?}");
    ses.create_email_identity()
        .email_identity(&domain)
        .send()
        .await
        .unwrap();
    ses.create_email_identity()
        .email_identity(&sender)
        .send()
        .await
        .unwrap();
    // Lambda delivers the batch again; now the mail goes out.
    let r = reclaim_aws::stream::handle(&effects.app, &first).await;
    assert!(r.batch_item_failures.is_empty(), "{r:?}");
    drain(&effects, &mut stream).await;
    let secrets = reclaim_aws::plugins::store_secrets(
        &effects.clients.secrets(),
        &f.deployment.vendor_prefix,
        &["m365-client-secret".to_string()],
    )
    .await;
    assert_eq!(secrets.len(), 1);

    // --- respond: the user's pages and answers, then an approver's.
    let asked_now = store.get(&asked.id).await.unwrap().unwrap();
    let kept_now = store.get(&kept.id).await.unwrap().unwrap();
    let remove = link(&asked_now, "u-1", LinkAction::Remove);
    respond(&respond_fn, "GET", &remove).await;
    respond(&respond_fn, "POST", &remove).await;
    // Used: the page says what happened, from the history.
    respond(&respond_fn, "GET", &remove).await;
    respond(
        &respond_fn,
        "POST",
        &link(&kept_now, "u-1", LinkAction::Keep),
    )
    .await;
    // Revocation (a manual task), closing the user's tasks, the keep request to the group.
    drain(&effects, &mut stream).await;
    let awaiting = store.get(&kept.id).await.unwrap().unwrap();
    assert_eq!(awaiting.state, State::AwaitingApproval);
    respond(
        &respond_fn,
        "POST",
        &link(&awaiting, "bob", LinkAction::Approve),
    )
    .await;
    drain(&effects, &mut stream).await;
    let bob = app.principal("bob").await.unwrap().unwrap();
    app.my_tasks(&bob).await.unwrap();
    assert!(!api.store.tasks_for(&asked.id).await.unwrap().is_empty());

    // --- sweep: a due candidate moves on at the scheduled tick; a tick that loses a race to
    // another writer reads the candidate once to tell a conflict from a removal.
    let mut due = varied(301);
    due.state = State::AwaitingUser;
    due.rule.notify_user = true;
    due.due_at = Some(chrono::Utc::now() - chrono::Duration::hours(1));
    due.deadline_at = due.due_at;
    store.insert(std::slice::from_ref(&due)).await.unwrap();
    let tick: EventBridgeEvent<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/tests/fixtures/eventbridge-scheduled.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    let later = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let report = reclaim_aws::sweep::handle(&sweep.app, &tick, later)
        .await
        .unwrap();
    let reclaim_aws::sweep::SweepReport::Tick(report) = report else {
        panic!("{report:?}")
    };
    assert!(report.examined >= 1, "{report:?}");
    // An operator rebuilds the savings totals.
    let mut rebuild = tick.clone();
    rebuild.source = reclaim_aws::sweep::OPERATOR_SOURCE.into();
    rebuild.detail_type = reclaim_aws::sweep::REBUILD_SAVINGS.into();
    rebuild.detail = serde_json::json!({});
    let report = reclaim_aws::sweep::handle(&sweep.app, &rebuild, later)
        .await
        .unwrap();
    let reclaim_aws::sweep::SweepReport::Rebuild(report) = report else {
        panic!("{report:?}")
    };
    assert!(report.examined >= 1 && report.next.is_none(), "{report:?}");
    let current = store.get(&due.id).await.unwrap().unwrap();
    let t = apply(
        &current,
        &Event::WorkNote {
            text: "late".into(),
        },
        &admin(),
        chrono::Utc::now(),
    )
    .unwrap();
    let lost = sweep
        .store
        .commit(&Change {
            expected_version: current.version + 7,
            candidate: t.candidate,
            entry: t.entry,
            effects: t.effects,
        })
        .await;
    assert!(
        matches!(
            lost,
            Err(reclaim_workflow::ports::StoreError::Conflict { .. })
        ),
        "{lost:?}"
    );

    // --- connectors: the real m365-usage connector, precompiled as the package ships it, its
    // client secret from Secrets Manager, collects from the fake Graph on loopback: a dozen
    // idle seats become candidates (more than one transaction's worth: checked and written in
    // batches, with the catalogs), and a user active again has their open candidate canceled.
    let fakes = reclaim_fakes::spawn_all().await.unwrap();
    for n in 0..12 {
        fakes.graph.add_licensed_user(
            &format!("u-idle-{n:02}"),
            &format!("idle{n:02}@demo.example"),
            &format!("Idle {n}"),
            &[E3],
            500,
            Some(200),
        );
    }
    let (_, _, client_secret) = fakes.graph.credentials();
    aws_sdk_secretsmanager::Client::new(&f.sdk)
        .create_secret()
        .name(format!(
            "{}m365-usage-client-secret",
            f.deployment.vendor_prefix
        ))
        .secret_string(client_secret)
        .send()
        .await
        .unwrap();
    let package = connector_package(&fakes);
    let dir = package.path().to_path_buf();
    let loading = tokio::task::spawn_blocking(move || {
        let revoker = reclaim_aws::plugins::plugin_revoker(
            &dir,
            reclaim_host::HostConfig {
                allow_private_addresses: true,
                ..reclaim_aws::plugins::host_config()
            },
        )?;
        let host = revoker.host().clone();
        Ok((
            Arc::new(revoker) as Arc<dyn reclaim_workflow::ports::Revoker>,
            Some(host),
        ))
    });
    let clients =
        reclaim_aws::wiring::Clients::new(Function::Connectors, &f.sdk, Some(f.calls.clone()));
    let ports = reclaim_aws::plugins::finish_loading_sources_with(
        loading,
        clients.clone(),
        &f.deployment.vendor_prefix,
    )
    .await
    .unwrap();
    let connectors = reclaim_aws::wiring::build_with_plugins(
        clients,
        f.settings(),
        ports,
        std::time::Instant::now(),
    )
    .await
    .unwrap();
    let rule: reclaim_workflow::Rule = serde_json::from_value(serde_json::json!({
        "id": "m365-idle", "name": "Microsoft 365 idle 90 days", "notify_user": true,
        "days_before_auto_reclamation": 14, "assignment_group": "approvers",
        "software": [{"publisher": "Microsoft"}],
        "criteria": {"kind": "last-used-before", "days": 90}
    }))
    .unwrap();
    store.put_rule(&rule).await.unwrap();
    let mut fay = reclaim_workflow::testing::candidate();
    fay.id = "c-roles-fay".into();
    fay.number = "RC0000950".into();
    fay.state = State::Ready;
    fay.applies_to = reclaim_workflow::AppliesTo::Subscription;
    fay.software.publisher = "Microsoft".into();
    fay.software.product = "Microsoft 365 E3".into();
    fay.device = None;
    if let Some(u) = fay.user.as_mut() {
        u.id = "u-fay".into();
    }
    fay.opened_at = chrono::Utc::now() - chrono::Duration::days(30);
    fay.updated_at = fay.opened_at;
    store.insert(std::slice::from_ref(&fay)).await.unwrap();
    let later = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let report = reclaim_aws::connectors::handle(&connectors.app, &tick, later)
        .await
        .unwrap();
    let [run] = report.runs.as_slice() else {
        panic!("{report:?}")
    };
    assert_eq!(run.connector, "m365-usage");
    assert_eq!(
        run.state,
        reclaim_workflow::ports::RunState::Finished,
        "{run:?}"
    );
    assert!(run.created > 10, "{run:?}");
    assert_eq!(run.canceled, 1, "{run:?}");
    assert_eq!(
        store.get(&fay.id).await.unwrap().unwrap().state,
        State::ClosedCanceled
    );
    // Not due again until tomorrow: the next tick reads the run and does nothing.
    let again = reclaim_aws::connectors::handle(&connectors.app, &tick, later)
        .await
        .unwrap();
    assert!(again.runs.is_empty(), "{again:?}");
    // A cancellation that loses a race to a person's answer reads the candidate once.
    let mut racing = reclaim_workflow::testing::contract::varied(302);
    racing.state = State::Ready;
    store.insert(std::slice::from_ref(&racing)).await.unwrap();
    let t = apply(
        &racing,
        &Event::UsageDetected {
            last_used_at: chrono::Utc::now(),
        },
        &Actor::Scheduler,
        chrono::Utc::now(),
    )
    .unwrap();
    let lost = connectors
        .store
        .commit(&Change {
            expected_version: racing.version + 7,
            candidate: t.candidate,
            entry: t.entry,
            effects: t.effects,
        })
        .await;
    assert!(
        matches!(
            lost,
            Err(reclaim_workflow::ports::StoreError::Conflict { .. })
        ),
        "{lost:?}"
    );

    // --- api: the workspace lists the connectors the connectors function published, and a
    // sam admin's Run now writes a run that function's next invocation takes.
    let listed = api.app.connectors().await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].info.id, "m365-usage");
    assert!(
        !listed[0].runs.is_empty(),
        "the runs of the connectors function"
    );
    let requested = api
        .app
        .request_connector_run("m365-usage", "sam")
        .await
        .unwrap();
    let taken = reclaim_aws::connectors::handle(&connectors.app, &tick, later)
        .await
        .unwrap();
    assert_eq!(taken.runs[0].seq, requested.seq, "{taken:?}");
    assert_eq!(taken.runs[0].trigger, "sam");

    // --- the check.
    let calls = f.calls.take();
    eprintln!("{}", roles::summary(&f.deployment, &calls));
    for function in Function::ALL {
        assert!(
            calls.iter().any(|c| c.function == function),
            "no call recorded for {function}"
        );
    }
    let mut problems = roles::denials(&f.deployment, &calls);
    problems.extend(roles::unused_grants(&f.deployment, &calls, EXCEPTIONS));
    problems.extend(roles::leading_key_holes(&f.deployment));
    assert!(
        problems.is_empty(),
        "the roles in infra/template.yaml do not fit what the functions do:\n{}",
        problems.join("\n")
    );
}
