//! The AWS benchmark (not a test): what a transition and a candidate's whole life cost in
//! DynamoDB calls and capacity, and how long the `api` and `effects` functions take to start.
//!
//! 1. **Capacity.** Two lifecycles run through the real Routers and the stream handler on the
//!    emulator (moto): Reclaim → Awaiting User → the user answers No → Awaiting Revocation →
//!    the plugin removes it → Closed Complete; and Reclaim → the user answers Yes → Awaiting
//!    Approval → the approver approves → Closed Skipped. The store logs every call
//!    ([`DynamoStore::record_calls`]): the action, the capacity the emulator reported, and the
//!    capacity computed from the items' sizes by DynamoDB's documented rules. Writes into the
//!    two global secondary indexes and the larger-of-old-and-new rule for replaced candidate
//!    items are computed here from the candidate item before and after each step.
//! 2. **Init time.** The four release binaries (`api`, `respond`, `effects`, `sweep`) start
//!    under a Lambda Runtime API server (tests/common/runtime_api.rs) with one event queued:
//!    process start → first `/next` (init done) → first answer. `effects` loads the real
//!    plugins (plugins/dist or `RECLAIM_PLUGINS_DIR`, precompiled here for this machine). Each
//!    binary logs where its init time went. `RECLAIM_BENCH_RUNS` (default 15) starts per
//!    configuration, after one unmeasured start.
//!
//! Run: `RECLAIM_MOTO_URL=http://127.0.0.1:PORT cargo bench -p reclaim-aws --bench aws`
//! (moto from the test venv: `python -m moto.server -H 127.0.0.1 -p PORT`). Prints the
//! report and writes it to `$CARGO_TARGET_DIR/reclaim-aws-bench.md`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_debug_implementations
)]

#[path = "../tests/common/mod.rs"]
mod common;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use axum::http::{Method, StatusCode};
use common::runtime_api::RuntimeApi;
use http_body_util::BodyExt;
use reclaim_api::{public_routes, ApiState, App, HmacLinkSigner, NoAuthentication};
use reclaim_aws::config::{AwsSettings, LinkKeySource};
use reclaim_aws::dynamo::capacity::write_units;
use reclaim_aws::dynamo::CallRecord;
use reclaim_aws::wiring;
use reclaim_aws::{DynamoStore, SesMailer};
use reclaim_workflow::event::RevocationResult;
use reclaim_workflow::ports::{
    CandidateRead, CandidateWrite, Directory, LinkAction, LinkClaims, LinkSigner, Revoker,
    SystemClock,
};
use reclaim_workflow::{Candidate, Group, State, User};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

const KEY: &str = "0123456789abcdef0123456789abcdef-benchmark";
const ID: &str = "c-1";

/// A vendor that always removes the seat: the DynamoDB traffic around a revocation is the
/// same whatever the plugin does, and the plugin's own cost is in the plugin host benchmark.
struct AlwaysRemoves;

#[async_trait]
impl Revoker for AlwaysRemoves {
    async fn revoke(&self, _c: &Candidate, key: &str) -> RevocationResult {
        RevocationResult::Removed {
            evidence: format!("removed ({key})"),
        }
    }
}

struct World {
    app: App,
    store: DynamoStore,
    raw: aws_sdk_dynamodb::Client,
    stream: common::StreamReader,
    api: axum::Router,
    respond: axum::Router,
}

async fn world(sender: &str) -> World {
    let sdk = common::sdk().await;
    let store = common::fresh_store("bench").await;
    let settings = AwsSettings {
        table: store.table().to_string(),
        sender: sender.to_string(),
        configuration_set: None,
        public_url: "https://links.reclaim.example.com".into(),
        link_key: LinkKeySource::Inline(KEY.into()),
        link_ttl_days: 14,
        currency: "USD".into(),
        price_period: reclaim_workflow::PricePeriod::Yearly,
        user_claim: "sub".into(),
        oidc: None,
    };
    let clock = Arc::new(SystemClock);
    let mailer = SesMailer::new(
        aws_sdk_sesv2::Client::new(&sdk),
        store.clone(),
        sender,
        None,
        clock.clone(),
    );
    let app = wiring::app(
        store.clone(),
        Arc::new(mailer),
        Arc::new(AlwaysRemoves),
        clock,
        Arc::new(HmacLinkSigner::new(KEY).unwrap()),
        &settings,
    );
    let person = |id: &str, admin: bool| User {
        id: id.into(),
        display_name: id.to_uppercase(),
        email: Some(format!("{id}@example.com")),
        upn: None,
        itil: false,
        vip: false,
        sam_admin: admin,
    };
    store.put_user(&person("ada", true)).await.unwrap();
    store.put_user(&person("bob", false)).await.unwrap();
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
    c.opened_at = chrono::Utc::now();
    c.updated_at = c.opened_at;
    store.insert(&[c]).await.unwrap();
    let mut stream = common::StreamReader::open(store.table()).await;
    let _ = stream.next_event().await; // the import
    let api = reclaim_api::admin_routes(
        ApiState::new(app.clone(), Arc::new(wiring::JwtClaims::new("sub"))).behind_proxy(),
    );
    let respond = public_routes(
        ApiState::new(app.clone(), Arc::new(NoAuthentication)).trusting_forwarded_for(true),
    );
    store.record_calls();
    let _ = store.take_calls();
    World {
        app,
        store,
        raw: aws_sdk_dynamodb::Client::new(&sdk),
        stream,
        api,
        respond,
    }
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn gateway_request(name: &str, fill: &[(&str, &str)]) -> lambda_http::Request {
    let mut json = fixture(name);
    for (k, v) in fill {
        json = json.replace(k, v);
    }
    lambda_http::request::from_str(&json).unwrap()
}

async fn call(router: &axum::Router, req: lambda_http::Request) -> StatusCode {
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let _ = res.into_body().collect().await;
    status
}

/// The candidate item as stored (read off the books, not through the store).
async fn candidate_item(w: &World) -> HashMap<String, AttributeValue> {
    w.raw
        .get_item()
        .table_name(w.store.table())
        .key("pk", AttributeValue::S(format!("C#{ID}")))
        .key("sk", AttributeValue::S("C".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_default()
}

fn attr<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}

/// One step of a lifecycle and what it cost.
struct Step {
    name: String,
    function: &'static str,
    calls: Vec<CallRecord>,
    /// Index writes caused by the candidate item's write (computed).
    gsi_wcu: f64,
    /// Extra write units because a candidate put replaced a larger item (computed).
    replace_wcu: f64,
}

impl Step {
    fn reads(&self) -> usize {
        self.calls.iter().filter(|c| !c.write).count()
    }
    fn writes(&self) -> usize {
        self.calls.iter().filter(|c| c.write).count()
    }
    fn rcu(&self) -> f64 {
        self.calls
            .iter()
            .filter(|c| !c.write)
            .map(|c| c.computed)
            .sum()
    }
    fn wcu(&self) -> f64 {
        self.calls
            .iter()
            .filter(|c| c.write)
            .map(|c| c.computed)
            .sum::<f64>()
            + self.replace_wcu
    }
    fn reported(&self, write: bool) -> (f64, usize) {
        let mut sum = 0.0;
        let mut missing = 0;
        for c in self.calls.iter().filter(|c| c.write == write) {
            match c.reported {
                Some(u) => sum += u,
                None => missing += 1,
            }
        }
        (sum, missing)
    }
    fn ops(&self) -> String {
        let mut by: BTreeMap<(&str, bool), usize> = BTreeMap::new();
        for c in &self.calls {
            let what = if c.items.iter().all(|(k, _)| k.starts_with("DIR/")) && !c.write {
                "directory"
            } else {
                ""
            };
            *by.entry((c.op, what == "directory")).or_default() += 1;
        }
        by.iter()
            .map(|((op, dir), n)| {
                let dir = if *dir { " (who)" } else { "" };
                if *n > 1 {
                    format!("{op}{dir} ×{n}")
                } else {
                    format!("{op}{dir}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn kib_units(bytes: usize) -> f64 {
    write_units(bytes, false)
}

/// Index writes and the replaced-item surcharge of the candidate's change from `old` to `new`.
fn candidate_write_extras(
    old: &HashMap<String, AttributeValue>,
    new: &HashMap<String, AttributeValue>,
    calls: &[CallRecord],
) -> (f64, f64) {
    let changed = attr(old, "ver") != attr(new, "ver")
        || old.get("ver") != new.get("ver")
        || old.get("fx") != new.get("fx");
    let written = calls
        .iter()
        .filter(|c| c.write && c.ok)
        .flat_map(|c| c.items.iter().map(move |i| (c, i)))
        .find(|(_, (k, _))| k == &format!("C#{ID}/C"));
    let Some((call, (_, new_logged))) = written.filter(|_| changed) else {
        return (0.0, 0.0);
    };
    let size = |i: &HashMap<String, AttributeValue>| {
        reclaim_aws::dynamo::capacity::item_bytes(&i.clone().into_iter().collect())
    };
    let (old_b, new_b) = (size(old), size(new));
    let mut gsi = 0.0;
    for (pk, sk) in [("g1pk", "g1sk"), ("g2pk", "g2sk")] {
        let before = (attr(old, pk), attr(old, sk));
        let after = (attr(new, pk), attr(new, sk));
        gsi += match (before.0.is_some(), after.0.is_some()) {
            (true, true) if before == after => kib_units(new_b),
            (true, true) => kib_units(old_b) + kib_units(new_b),
            (false, true) => kib_units(new_b),
            (true, false) => kib_units(old_b),
            (false, false) => 0.0,
        };
    }
    let factor = if call.op == "TransactWriteItems" {
        2.0
    } else {
        1.0
    };
    let replace = factor * (kib_units(old_b.max(*new_logged)) - kib_units(*new_logged));
    (gsi, replace)
}

/// The candidate item before a step, to tell what the step's writes did to it.
struct Before(HashMap<String, AttributeValue>);

impl World {
    async fn begin(&mut self) -> Before {
        let before = candidate_item(self).await;
        let _ = self.store.take_calls();
        Before(before)
    }

    async fn finish(&mut self, name: &str, function: &'static str, before: Before) -> Step {
        let calls = self.store.take_calls();
        let after = candidate_item(self).await;
        let (gsi_wcu, replace_wcu) = candidate_write_extras(&before.0, &after, &calls);
        Step {
            name: name.to_string(),
            function,
            calls,
            gsi_wcu,
            replace_wcu,
        }
    }

    /// One batch of stream records through the `effects` handler.
    async fn effects_batch(&mut self) -> bool {
        let event: aws_lambda_events::dynamodb::Event =
            serde_json::from_value(self.stream.next_event().await).unwrap();
        if event.records.is_empty() {
            return false;
        }
        let r = reclaim_aws::stream::handle(&self.app, &event).await;
        assert!(r.batch_item_failures.is_empty(), "{r:?}");
        true
    }

    async fn state(&self) -> State {
        self.store.get(ID).await.unwrap().unwrap().state
    }

    fn link(&self, user: &str, action: LinkAction, version: u64) -> String {
        HmacLinkSigner::new(KEY).unwrap().sign(&LinkClaims {
            candidate_id: ID.into(),
            user_id: user.into(),
            action,
            version,
            expires_at: chrono::Utc::now() + chrono::Duration::days(7),
        })
    }
}

async fn drain_steps(w: &mut World, what: &str, steps: &mut Vec<Step>) {
    for i in 1..=5 {
        let before = w.begin().await;
        let any = w.effects_batch().await;
        let step = w
            .finish(&format!("{what} (batch {i})"), "effects", before)
            .await;
        if !any || step.calls.is_empty() {
            return;
        }
        steps.push(step);
    }
}

async fn link_steps(
    w: &mut World,
    steps: &mut Vec<Step>,
    user: &str,
    action: LinkAction,
    label: &str,
) {
    let version = w.store.get(ID).await.unwrap().unwrap().version;
    let token = w.link(user, action, version);
    let before = w.begin().await;
    let mut req = gateway_request("apigw-v2-public-respond.json", &[("{token}", &token)]);
    *req.method_mut() = Method::GET;
    assert_eq!(call(&w.respond, req).await, StatusCode::OK);
    steps.push(
        w.finish(&format!("{label}: link page (GET)"), "respond", before)
            .await,
    );
    let before = w.begin().await;
    let req = gateway_request("apigw-v2-public-respond.json", &[("{token}", &token)]);
    assert_eq!(call(&w.respond, req).await, StatusCode::OK);
    steps.push(
        w.finish(&format!("{label}: answer (POST)"), "respond", before)
            .await,
    );
}

async fn reclaim_step(w: &mut World, steps: &mut Vec<Step>) {
    let before = w.begin().await;
    let req = gateway_request("apigw-v2-admin-reclaim.json", &[("{id}", ID)]);
    assert_eq!(call(&w.api, req).await, StatusCode::OK);
    steps.push(
        w.finish("admin Reclaim (POST /api/v1/…/reclaim)", "api", before)
            .await,
    );
}

async fn lifecycle_remove(sender: &str) -> Vec<Step> {
    let mut w = world(sender).await;
    let mut steps = Vec::new();
    reclaim_step(&mut w, &mut steps).await;
    assert_eq!(w.state().await, State::AwaitingUser);
    drain_steps(&mut w, "mail the user, open the ITIL task", &mut steps).await;
    link_steps(
        &mut w,
        &mut steps,
        "u-1",
        LinkAction::Remove,
        "user answers No",
    )
    .await;
    assert_eq!(w.state().await, State::AwaitingRevocation);
    drain_steps(
        &mut w,
        "revocation → Closed Complete, then its effects",
        &mut steps,
    )
    .await;
    assert_eq!(w.state().await, State::ClosedComplete);
    steps
}

async fn lifecycle_keep(sender: &str) -> Vec<Step> {
    let mut w = world(sender).await;
    let mut steps = Vec::new();
    reclaim_step(&mut w, &mut steps).await;
    drain_steps(&mut w, "mail the user, open the ITIL task", &mut steps).await;
    link_steps(
        &mut w,
        &mut steps,
        "u-1",
        LinkAction::Keep,
        "user answers Yes (keep)",
    )
    .await;
    assert_eq!(w.state().await, State::AwaitingApproval);
    drain_steps(&mut w, "approval task, mail the approvers", &mut steps).await;
    link_steps(
        &mut w,
        &mut steps,
        "bob",
        LinkAction::Approve,
        "approver approves",
    )
    .await;
    assert_eq!(w.state().await, State::ClosedSkipped);
    drain_steps(&mut w, "close tasks, tell the user", &mut steps).await;
    steps
}

fn fmt_units(u: f64) -> String {
    let u = u + 0.0; // no "-0"
    if (u - u.round()).abs() < 1e-9 {
        format!("{u:.0}")
    } else {
        format!("{u:.1}")
    }
}

fn capacity_table(title: &str, steps: &[Step], out: &mut String) {
    let _ = writeln!(out, "\n**{title}**\n");
    let _ = writeln!(
        out,
        "| step | function | reads | writes | DynamoDB actions | RCU (computed) | WCU table (computed) | WCU GSI (computed) | RCU / WCU reported by moto |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---|---:|---:|---:|---|");
    let mut total = (0, 0, 0.0, 0.0, 0.0);
    for s in steps {
        let (rr, rmiss) = s.reported(false);
        let (wr, wmiss) = s.reported(true);
        let missing = if rmiss + wmiss > 0 {
            format!(" ({} call(s) without ConsumedCapacity)", rmiss + wmiss)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} / {}{} |",
            s.name,
            s.function,
            s.reads(),
            s.writes(),
            s.ops(),
            fmt_units(s.rcu()),
            fmt_units(s.wcu()),
            fmt_units(s.gsi_wcu),
            fmt_units(rr),
            fmt_units(wr),
            missing
        );
        total.0 += s.reads();
        total.1 += s.writes();
        total.2 += s.rcu();
        total.3 += s.wcu();
        total.4 += s.gsi_wcu;
    }
    let _ = writeln!(
        out,
        "| **whole lifecycle** | | **{}** | **{}** | | **{}** | **{}** | **{}** | |",
        total.0,
        total.1,
        fmt_units(total.2),
        fmt_units(total.3),
        fmt_units(total.4)
    );
}

/// Item sizes of one run, for the report.
fn sizes(runs: &[&[Step]], out: &mut String) {
    let mut seen: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for c in runs
        .iter()
        .flat_map(|r| r.iter())
        .flat_map(|s| &s.calls)
        .filter(|c| c.write)
    {
        for (k, b) in &c.items {
            let kind = match k.split('/').nth(1).unwrap_or_default() {
                "C" => "candidate item".to_string(),
                s if s.starts_with("H#") => "history item".to_string(),
                s if s.starts_with("T#") => "task item".to_string(),
                _ if k.starts_with("M#") => "mail record".to_string(),
                other => other.to_string(),
            };
            let e = seen.entry(kind).or_insert((usize::MAX, 0));
            e.0 = e.0.min(*b);
            e.1 = e.1.max(*b);
        }
    }
    let list: Vec<String> = seen
        .iter()
        .map(|(k, (lo, hi))| format!("{k} {lo}–{hi} B"))
        .collect();
    let _ = writeln!(out, "\nItem sizes written: {}.", list.join(", "));
}

// ---------------------------------------------------------------------------------------------
// Init time

/// One start configuration: function name, binary, what is configured, event, environment.
type Case<'a> = (&'a str, &'a str, &'a str, String, Vec<(&'a str, String)>);

struct InitRun {
    init: Duration,
    answered: Duration,
    phases: BTreeMap<String, f64>,
}

fn built_plugins() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for dir in [
        std::env::var_os("RECLAIM_PLUGINS_DIR").map(PathBuf::from),
        Some(root.join("plugins/dist")),
    ]
    .into_iter()
    .flatten()
    {
        if dir.join("m365-revoke/plugin.wasm").is_file() {
            return dir;
        }
    }
    panic!("no built plugins: run plugins/build.sh first (it writes plugins/dist)");
}

/// Numbers logged as `name=value` on the lines that say where init time went.
fn phases(stderr: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in stderr
        .lines()
        .filter(|l| l.contains("init done") || l.contains("plugins loaded"))
    {
        for word in line.split_whitespace() {
            if let Some((k, v)) = word.split_once('=') {
                if let Ok(v) = v.parse::<f64>() {
                    out.insert(k.to_string(), v);
                }
            }
        }
    }
    out
}

async fn start_once(bin: &str, name: &str, event: &str, env: &[(&str, String)]) -> InitRun {
    let api = RuntimeApi::new(name, vec![("req-1".to_string(), event.to_string())]);
    let (addr, server) = api.serve().await;
    let mut cmd = tokio::process::Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/01/05/[$LATEST]bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .env("AWS_ENDPOINT_URL", common::moto_url())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("RUST_LOG", "info")
        // The functions log to stdout (as Lambda collects it).
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap();
    api.wait_for_outcomes(1, &mut child, Duration::from_secs(30))
        .await;
    let (init, answered, kind, body) = {
        let seen = api.seen();
        let o = &seen.outcomes[0];
        (
            seen.first_next.unwrap() - started,
            o.at - started,
            o.kind.clone(),
            o.body.clone(),
        )
    };
    assert_eq!(kind, "response", "{name} answered with an error: {body}");
    child.kill().await.unwrap();
    let out = child.wait_with_output().await.unwrap();
    server.abort();
    InitRun {
        init,
        answered,
        phases: phases(&String::from_utf8_lossy(&out.stdout)),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

async fn init_times(out: &mut String) {
    let runs: usize = std::env::var("RECLAIM_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let sdk = common::sdk().await;
    let store = common::fresh_store("bench-init").await;
    store
        .put_user(&User {
            id: "ada".into(),
            display_name: "Ada".into(),
            email: Some("ada@example.com".into()),
            upn: None,
            itil: false,
            vip: false,
            sam_admin: true,
        })
        .await
        .unwrap();
    store
        .insert(&[reclaim_workflow::testing::candidate()])
        .await
        .unwrap();
    let secret = aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(common::table_name("link-key"))
        .secret_string(KEY)
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();

    // The effects function's package: the real plugins, precompiled for this machine.
    let package = tempfile::tempdir().unwrap();
    let done = reclaim_host::precompile::precompile_dir(
        &reclaim_host::HostConfig::default(),
        None,
        &built_plugins(),
        package.path(),
    )
    .unwrap();

    let api_event = fixture("apigw-v2-admin-reclaim.json")
        .replace("\"POST", "\"GET")
        .replace("/api/v1/candidates/{id}/reclaim", "/api/v1/candidates/c-1")
        .replace("candidates/{id}/reclaim", "candidates/c-1");
    // `respond`: a user opens their link (GET): one read of the candidate.
    let candidate = reclaim_workflow::testing::candidate();
    let token = HmacLinkSigner::new(KEY).unwrap().sign(&LinkClaims {
        candidate_id: candidate.id.clone(),
        user_id: candidate.user.as_ref().map(|u| u.id.clone()).unwrap(),
        action: LinkAction::Remove,
        version: candidate.version,
        expires_at: chrono::Utc::now() + chrono::Duration::days(7),
    });
    let respond_event = fixture("apigw-v2-public-respond.json")
        .replace("\"POST", "\"GET")
        .replace("{token}", &token);
    // `sweep`: the schedule's tick (every state's due index, nothing due).
    let sweep_event = fixture("eventbridge-scheduled.json");
    let mut stream: serde_json::Value =
        serde_json::from_str(&fixture("dynamodb-stream.json")).unwrap();
    stream["Records"] = serde_json::Value::Array(vec![stream["Records"][0].clone()]);
    let effects_event = stream.to_string();

    let base = |key: Option<&str>| {
        let mut env = vec![
            ("RECLAIM_TABLE", store.table().to_string()),
            (
                "RECLAIM_PUBLIC_URL",
                "https://links.reclaim.example.com".to_string(),
            ),
            ("RECLAIM_SENDER", "reclaim@example.com".to_string()),
        ];
        match key {
            Some(arn) => env.push(("RECLAIM_LINK_KEY_SECRET", arn.to_string())),
            None => env.push(("RECLAIM_LINK_KEY", KEY.to_string())),
        }
        env
    };
    let plugins_env = ("RECLAIM_PLUGINS_DIR", package.path().display().to_string());
    let cases: Vec<Case> = vec![
        (
            "api",
            env!("CARGO_BIN_EXE_api"),
            "link key in the environment",
            api_event.clone(),
            base(None),
        ),
        (
            "api",
            env!("CARGO_BIN_EXE_api"),
            "link key from Secrets Manager",
            api_event.clone(),
            base(Some(&secret)),
        ),
        (
            "respond",
            env!("CARGO_BIN_EXE_respond"),
            "link key from Secrets Manager",
            respond_event.clone(),
            base(Some(&secret)),
        ),
        (
            "sweep",
            env!("CARGO_BIN_EXE_sweep"),
            "link key from Secrets Manager",
            sweep_event.clone(),
            base(Some(&secret)),
        ),
        (
            "effects",
            env!("CARGO_BIN_EXE_effects"),
            "4 precompiled plugins, link key in the environment",
            effects_event.clone(),
            [base(None), vec![plugins_env.clone()]].concat(),
        ),
        (
            "effects",
            env!("CARGO_BIN_EXE_effects"),
            "4 precompiled plugins, link key from Secrets Manager",
            effects_event.clone(),
            [base(Some(&secret)), vec![plugins_env.clone()]].concat(),
        ),
        (
            "effects",
            env!("CARGO_BIN_EXE_effects"),
            "no plugins (manual tasks), link key in the environment",
            effects_event.clone(),
            base(None),
        ),
    ];
    // What one emulator round trip costs, so the first answer can be read without it.
    let mut first = Vec::new();
    let mut warm = Vec::new();
    for _ in 0..runs {
        let client = aws_sdk_dynamodb::Client::new(&common::sdk().await);
        for i in 0..4 {
            let t = Instant::now();
            client
                .get_item()
                .table_name(store.table())
                .key("pk", AttributeValue::S("DIR".into()))
                .key("sk", AttributeValue::S("U#ada".into()))
                .consistent_read(true)
                .send()
                .await
                .unwrap();
            let took = t.elapsed().as_secs_f64() * 1e3;
            if i == 0 {
                first.push(took);
            } else {
                warm.push(took);
            }
        }
    }
    let _ = writeln!(
        out,
        "\nOne GetItem on the emulator from this machine: {:.1} ms on a new client (connection set-up included), {:.1} ms warm (medians).",
        median(first),
        median(warm)
    );
    let _ = writeln!(
        out,
        "\n**Init time** (release build, {runs} starts each; plugins: {})\n",
        done.iter()
            .map(|p| format!("{} {} KiB", p.id, p.bytes / 1024))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        out,
        "| function | configuration | start → init done (first /next), median / max | start → first event answered, median / max | where init went (medians, ms) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    for (name, bin, what, event, env) in cases {
        // One unmeasured start warms the page cache for the binary and the artifacts.
        let _ = start_once(bin, &format!("reclaim-{name}"), &event, &env).await;
        let mut results = Vec::new();
        for _ in 0..runs {
            results.push(start_once(bin, &format!("reclaim-{name}"), &event, &env).await);
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let init: Vec<f64> = results.iter().map(|r| ms(r.init)).collect();
        let answered: Vec<f64> = results.iter().map(|r| ms(r.answered)).collect();
        let mut keys: Vec<String> = results
            .iter()
            .flat_map(|r| r.phases.keys().cloned())
            .collect();
        keys.sort();
        keys.dedup();
        let phases: Vec<String> = keys
            .iter()
            .filter(|k| k.ends_with("_ms"))
            .filter_map(|k| {
                let v: Vec<f64> = results
                    .iter()
                    .filter_map(|r| r.phases.get(k))
                    .copied()
                    .collect();
                // A phase this configuration does not have (no secret read, no plugins).
                let m = median(v);
                (m >= 0.005).then(|| format!("{} {:.2}", k.trim_end_matches("_ms"), m))
            })
            .collect();
        let _ = writeln!(
            out,
            "| `{name}` | {what} | {:.1} / {:.1} ms | {:.1} / {:.1} ms | {} |",
            median(init.clone()),
            max(&init),
            median(answered.clone()),
            max(&answered),
            phases.join(", ")
        );
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = rt.block_on(async {
        let sdk = common::sdk().await;
        let sender = format!("{}@example.com", common::table_name("bench"));
        aws_sdk_sesv2::Client::new(&sdk)
            .create_email_identity()
            .email_identity(&sender)
            .send()
            .await
            .unwrap();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "## DynamoDB per step (emulator: moto at {})",
            common::moto_url()
        );
        let remove = lifecycle_remove(&sender).await;
        capacity_table(
            "Reclaim → No → plugin removes → Closed Complete",
            &remove,
            &mut out,
        );
        let keep = lifecycle_keep(&sender).await;
        capacity_table(
            "Reclaim → Yes (keep) → approver approves → Closed Skipped",
            &keep,
            &mut out,
        );
        sizes(&[&remove, &keep], &mut out);
        init_times(&mut out).await;
        out
    });
    println!("{report}");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let file = target.join("reclaim-aws-bench.md");
    if std::fs::write(&file, &report).is_ok() {
        println!("written to {}", file.display());
    }
}
