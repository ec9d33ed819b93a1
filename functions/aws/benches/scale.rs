//! Reclaim at scale on DynamoDB, measured as a user meets it: through HTTP, against the Router
//! the `api` and `respond` functions serve, over a table of N candidates in an emulator (AWS's
//! DynamoDB Local). The same candidates and the same requests as the SQLite scale bench
//! (`functions/local/benches/scale.rs`; both include `bench/scale.rs`).
//!
//! 1. Loads N candidates (default 200,000; `RECLAIM_SCALE_CANDIDATES`) into a new table through
//!    the store's own `insert` (chunks of 500, 16 at once: `RECLAIM_SCALE_IN_FLIGHT`), then
//!    records their savings through `record_savings`, as the stream handler does for each
//!    insert record (batches of 100): every candidate's, or the first
//!    `RECLAIM_SCALE_SAVINGS_UP_TO` only, since that is one transaction per candidate and
//!    slow on the emulator (what the savings answer reads does not depend on how many
//!    candidates added to the totals). The savings report read afterwards is checked against
//!    a fresh sum of the same candidates. The directory (10,002 users, 20 groups) is written
//!    with `put_user` / `put_group`.
//! 2. Builds the `api` function's application as its `main` does (`wiring::build_with`,
//!    `wiring::api_router`) and serves it on a loopback port, with a layer in front that plays
//!    API Gateway's JWT authorizer (a bearer token of the bench becomes the claim `sub`); the
//!    `respond` function's Router (`public_routes`) on a second port.
//! 3. For every answer, ten requests one at a time (two when they take over 30 s), each with
//!    the DynamoDB calls it made (the store's call log: actions, items read, capacity computed
//!    from item sizes and as the emulator reported it); then each answer with 1, 8 and 32
//!    concurrent clients for a few seconds (`RECLAIM_SCALE_SECS`, default 3): p50, p99,
//!    requests per second, and calls and computed capacity per request
//!    (`RECLAIM_SCALE_TIMED=0` leaves these out).
//! 4. Once each: a bulk Reclaim of group-03's Ready candidates through the API (10,000 at
//!    500,000 candidates; `RECLAIM_SCALE_BULK` gives another filter as JSON, such as
//!    `{"publisher":"Adobe"}`: 10,000 at 200,000), and a scheduler tick (`App::tick`) over the
//!    candidates due (10,000 from 200,000 candidates on).
//!
//! Needs DynamoDB Local at `RECLAIM_DYNAMODB_URL`. `tests/dynamodb/scale-bench.sh` starts it
//! (on disk, or in memory with `RECLAIM_DYNAMODB_IN_MEMORY=1`, in a private network namespace,
//! since it listens on every interface) and runs this bench there. The table
//! `reclaim-scale-<N>` is kept and reused by a later run when it still exists and
//! `RECLAIM_BENCH_DIR` holds its marker (`dynamodb-scale-<N>.done`), with whatever the earlier
//! run's answers, bulk Reclaim and tick changed. The report is printed and written to
//! `$CARGO_TARGET_DIR/reclaim-dynamodb-scale-bench-<N>.md`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_debug_implementations
)]

#[path = "../../../bench/scale.rs"]
mod scale;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
    ApiGatewayV2httpRequestContext,
};
use lambda_http::request::RequestContext;
use reclaim_api::{public_routes, ApiState, HmacLinkSigner, ManualTaskRevoker, NoAuthentication};
use reclaim_aws::config::{AwsSettings, LinkKeySource};
use reclaim_aws::dynamo::{table, CallCounts, CallRecord};
use reclaim_aws::wiring::{self, Clients, Function};
use reclaim_aws::DynamoStore;
use reclaim_workflow::ports::{CandidateRead, CandidateWrite, Directory, SavingsChange};
use reclaim_workflow::savings::{Savings, ALL_SCOPE};
use reclaim_workflow::Candidate;
use scale::{candidate, env_or, measure, target_dir, Make, CONCURRENCY, LINK_KEY, SAM};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Candidates per `insert` call while loading.
const LOAD_CHUNK: usize = 500;
/// Savings changes per `record_savings` call (the stream's batch size).
const SAVINGS_BATCH: usize = 100;
/// Requests per answer in the calls-per-request table.
const PROBES: usize = 10;

fn dynamodb_url() -> String {
    match std::env::var("RECLAIM_DYNAMODB_URL") {
        Ok(u) if !u.is_empty() => u.trim_end_matches('/').to_string(),
        _ => panic!(
            "RECLAIM_DYNAMODB_URL is not set: run tests/dynamodb/scale-bench.sh, which starts \
             DynamoDB Local in a private network namespace and runs this bench there"
        ),
    }
}

/// The SDK configuration of a function (`config::sdk_config`'s retries and timeouts), pointed
/// at the emulator with its dummy credentials.
async fn sdk(url: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "bench"))
        .endpoint_url(url)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(5)
                .with_initial_backoff(Duration::from_millis(50))
                .with_max_backoff(Duration::from_secs(5)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(30))
                .build(),
        )
        .load()
        .await
}

/// Runs `job(k)` for k in 0..count, `in_flight` at a time, retrying a failed one a few times
/// (the emulator answers a busy moment with errors the store calls retryable); returns how
/// many retries there were.
async fn run_all<F, Fut>(count: usize, in_flight: usize, job: F) -> usize
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), reclaim_workflow::ports::StoreError>> + Send,
{
    let job = Arc::new(job);
    let next = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let (job, next, retries) = (job.clone(), next.clone(), retries.clone());
        workers.spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= count {
                    return;
                }
                let mut attempt = 0;
                loop {
                    match job(k).await {
                        Ok(()) => break,
                        Err(e) if e.is_retryable() && attempt < 8 => {
                            attempt += 1;
                            retries.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(100 << attempt.min(5))).await;
                        }
                        Err(e) => panic!("job {k}: {e}"),
                    }
                }
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.unwrap();
    }
    retries.load(Ordering::Relaxed)
}

/// Loads the candidates, their savings (of the first `savings_up_to`) and the directory;
/// returns what the report says.
async fn load(store: &DynamoStore, n: usize, savings_up_to: usize) -> Vec<String> {
    let in_flight: usize = env_or("RECLAIM_SCALE_IN_FLIGHT", 16);
    let mut out = Vec::new();
    let now = chrono::Utc::now();
    let (users, groups) = scale::directory();
    let started = Instant::now();
    let users = Arc::new(users);
    {
        let (store, users) = (store.clone(), users.clone());
        run_all(users.len(), in_flight, move |k| {
            let (store, users) = (store.clone(), users.clone());
            async move { store.put_user(&users[k]).await }
        })
        .await;
    }
    for g in &groups {
        store.put_group(g).await.unwrap();
    }
    out.push(format!(
        "Directory: {} users and {} groups in {:.1} s.",
        users.len(),
        groups.len(),
        started.elapsed().as_secs_f64()
    ));
    let before = store.stats();
    let started = Instant::now();
    let chunks = n.div_ceil(LOAD_CHUNK);
    let done = Arc::new(AtomicUsize::new(0));
    let retries = {
        let (store, done) = (store.clone(), done.clone());
        run_all(chunks, in_flight, move |k| {
            let (store, done) = (store.clone(), done.clone());
            async move {
                let cs: Vec<Candidate> = (k * LOAD_CHUNK..((k + 1) * LOAD_CHUNK).min(n))
                    .map(|i| candidate(i, now))
                    .collect();
                store.insert(&cs).await?;
                let d = done.fetch_add(cs.len(), Ordering::Relaxed) + cs.len();
                if d % 50_000 < LOAD_CHUNK {
                    println!("  inserted {d} in {:.0?}", started.elapsed());
                }
                Ok(())
            }
        })
        .await
    };
    let took = started.elapsed();
    let calls = store.stats().since(&before);
    out.push(format!(
        "Inserted {n} candidates in {:.1} s ({:.0} a second; chunks of {LOAD_CHUNK}, \
         {in_flight} at once, {retries} retried): {} reads and {} writes (BatchGetItem probes, \
         BatchWriteItem of 25, the number counter), {:.0} WCU computed.",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        calls.reads,
        calls.writes,
        calls.computed_write_units
    ));
    let before = store.stats();
    let started = Instant::now();
    let done = Arc::new(AtomicUsize::new(0));
    let m = savings_up_to.min(n);
    let retries = {
        let (store, done) = (store.clone(), done.clone());
        run_all(m.div_ceil(SAVINGS_BATCH), in_flight, move |k| {
            let (store, done) = (store.clone(), done.clone());
            async move {
                let changes: Vec<SavingsChange> = (k * SAVINGS_BATCH
                    ..((k + 1) * SAVINGS_BATCH).min(m))
                    .map(|i| SavingsChange::of(&candidate(i, now)))
                    .collect();
                store.record_savings(&changes).await?;
                let d = done.fetch_add(changes.len(), Ordering::Relaxed) + changes.len();
                if d % 10_000 < SAVINGS_BATCH {
                    println!("  savings recorded for {d} in {:.0?}", started.elapsed());
                }
                Ok(())
            }
        })
        .await
    };
    let took = started.elapsed();
    let calls = store.stats().since(&before);
    out.push(format!(
        "Recorded the savings of {} in {:.1} s ({:.0} candidates a second; batches of \
         {SAVINGS_BATCH}, {in_flight} at once, {retries} retried): {} reads and {} writes (a \
         BatchGetItem of the markers per batch, one TransactWriteItems per candidate that adds \
         something).",
        if m == n {
            format!("all {n} candidates")
        } else {
            format!("the first {m} candidates only")
        },
        took.as_secs_f64(),
        m as f64 / took.as_secs_f64(),
        calls.reads,
        calls.writes,
    ));
    let expected = Savings::of(&(0..m).map(|i| candidate(i, now)).collect::<Vec<_>>());
    let read = store.savings(ALL_SCOPE).await.unwrap().unwrap_or_default();
    assert_eq!(read, expected, "the savings totals equal a fresh sum");
    out.push(format!(
        "The savings totals read back equal a fresh sum of those {m} candidates."
    ));
    out
}

/// Plays API Gateway's JWT authorizer: a bench token (`Authorization: Bearer …`) becomes the
/// verified claim `sub` in the request context, which is all `wiring::JwtClaims` reads.
async fn gateway(mut req: Request, next: Next) -> Response {
    let user = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| scale::TOKENS.iter().find(|(token, _)| *token == t))
        .map(|(_, user)| user.to_string());
    if let Some(user) = user {
        let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
        jwt.claims.insert("sub".into(), user);
        let mut authorizer = ApiGatewayRequestAuthorizer::default();
        authorizer.jwt = Some(jwt);
        let mut ctx = ApiGatewayV2httpRequestContext::default();
        ctx.authorizer = Some(authorizer);
        req.extensions_mut()
            .insert(RequestContext::ApiGatewayV2(ctx));
    }
    next.run(req).await
}

/// What one request's DynamoDB calls were.
#[derive(Default)]
struct Cost {
    calls: usize,
    reads: usize,
    writes: usize,
    items_read: usize,
    rcu: f64,
    wcu: f64,
    reported_rcu: f64,
    reported_wcu: f64,
    unreported: usize,
    ops: BTreeMap<&'static str, usize>,
}

impl Cost {
    fn of(calls: &[CallRecord]) -> Cost {
        let mut c = Cost {
            calls: calls.len(),
            ..Cost::default()
        };
        for r in calls {
            *c.ops.entry(r.op).or_default() += 1;
            match r.reported {
                Some(u) if r.write => c.reported_wcu += u,
                Some(u) => c.reported_rcu += u,
                None => c.unreported += 1,
            }
            if r.write {
                c.writes += 1;
                c.wcu += r.computed;
            } else {
                c.reads += 1;
                c.items_read += r.items.len();
                c.rcu += r.computed;
            }
        }
        c
    }

    fn ops(&self) -> String {
        self.ops
            .iter()
            .map(|(op, k)| {
                if *k > 1 {
                    format!("{op} ×{k}")
                } else {
                    op.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Sends `PROBES` requests one at a time and reports their calls: the fewest and the most,
/// the actions of the one with the most, items read and capacity (means).
async fn probe(store: &DynamoStore, name: &str, make: &Make, k: usize) -> String {
    let mut costs = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    let _ = store.take_calls();
    let started = Instant::now();
    for i in 0..PROBES {
        // An answer that reads the whole table is asked fewer times.
        if i >= 2 && started.elapsed() > Duration::from_secs(30) {
            break;
        }
        if let Err(e) = scale::send(make(k, i)).await {
            errors += 1;
            first_error.get_or_insert(e);
        }
        costs.push(Cost::of(&store.take_calls()));
    }
    if let Some(e) = first_error {
        println!("    {name}: {e}");
    }
    let min = costs.iter().map(|c| c.calls).min().unwrap_or(0);
    let most = costs.iter().max_by_key(|c| c.calls).unwrap();
    let mean = |f: &dyn Fn(&Cost) -> f64| costs.iter().map(f).sum::<f64>() / costs.len() as f64;
    let unreported = costs.iter().map(|c| c.unreported).sum::<usize>();
    format!(
        "| {name} | {} | {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} / {:.1}{} | {} |",
        costs.len(),
        if min == most.calls {
            min.to_string()
        } else {
            format!("{min}–{}", most.calls)
        },
        mean(&|c| c.reads as f64),
        mean(&|c| c.writes as f64),
        mean(&|c| c.items_read as f64),
        mean(&|c| c.rcu),
        mean(&|c| c.wcu),
        mean(&|c| c.reported_rcu),
        mean(&|c| c.reported_wcu),
        if unreported > 0 {
            format!(" ({unreported} calls unreported)")
        } else {
            String::new()
        },
        most.ops(),
    ) + &if errors > 0 {
        format!(" {errors} of {} refused", costs.len())
    } else {
        String::new()
    }
}

fn per_request(calls: &CallCounts, n: usize) -> String {
    let n = n.max(1) as f64;
    format!(
        "{:.1} | {:.1} | {:.1}",
        (calls.reads + calls.writes) as f64 / n,
        calls.computed_read_units / n,
        calls.computed_write_units / n
    )
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[tokio::main]
async fn main() {
    let n: usize = env_or("RECLAIM_SCALE_CANDIDATES", 200_000);
    let secs: f64 = env_or("RECLAIM_SCALE_SECS", 3.0);
    let url = dynamodb_url();
    let dir = std::env::var_os("RECLAIM_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("scale-bench"));
    std::fs::create_dir_all(&dir).unwrap();
    let marker = dir.join(format!("dynamodb-scale-{n}.done"));
    let table_name = format!("reclaim-scale-{n}");
    let sdk = sdk(&url).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let mut report = String::new();
    let mut line = |s: String| {
        println!("{s}");
        report.push_str(&s);
        report.push('\n');
    };
    line(format!("Load average at the start: {}.", load_average()));
    let store = DynamoStore::new(client.clone(), &table_name);
    let exists = client
        .describe_table()
        .table_name(&table_name)
        .send()
        .await
        .is_ok();
    if marker.exists() && exists {
        line(format!(
            "Table {table_name} reused from an earlier run (its answers, bulk Reclaim and tick \
             stay applied)."
        ));
    } else {
        let _ = table::delete(&client, &table_name).await;
        table::create(&client, &table_name).await.unwrap();
        println!("loading {n} candidates into {table_name} at {url}");
        let savings_up_to = env_or("RECLAIM_SCALE_SAVINGS_UP_TO", n);
        for l in load(&store, n, savings_up_to).await {
            line(l);
        }
        std::fs::write(&marker, "loaded").unwrap();
    }
    // The functions, as their `main`s build them, serving on loopback.
    let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let respond_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", api_listener.local_addr().unwrap());
    let respond = format!("http://{}", respond_listener.local_addr().unwrap());
    let settings = AwsSettings {
        table: table_name.clone(),
        sender: "Reclaim <reclaim@example.com>".into(),
        configuration_set: None,
        public_url: respond.clone(),
        link_key: LinkKeySource::Inline(LINK_KEY.into()),
        link_ttl_days: 14,
        currency: "USD".into(),
        price_period: reclaim_workflow::PricePeriod::Yearly,
        user_claim: "sub".into(),
        oidc: None,
    };
    let w = wiring::build_with(
        Clients::new(Function::Api, &sdk, None),
        settings,
        Arc::new(ManualTaskRevoker),
        Instant::now(),
    )
    .await
    .unwrap();
    let api_router = wiring::api_router(&w).layer(axum::middleware::from_fn(gateway));
    let respond_router = public_routes(
        ApiState::new(w.app.clone(), Arc::new(NoAuthentication)).trusting_forwarded_for(true),
    );
    tokio::spawn(async move { axum::serve(api_listener, api_router).await.unwrap() });
    tokio::spawn(async move { axum::serve(respond_listener, respond_router).await.unwrap() });
    let store = w.store.clone();
    store.record_calls();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let cursor = scale::deep_cursor(&http, &api).await;
    let _ = store.take_calls();
    let signer = Arc::new(HmacLinkSigner::new(LINK_KEY.as_bytes()).unwrap());
    let mut scenarios = scale::scenarios(&http, &api, &respond, n, &cursor, signer.clone());
    let answer_probe = scale::link_answer(&http, &respond, n, scale::PROBE_SLOT, signer.clone());
    scenarios.push(("link answer (POST)", answer_probe));
    let one_person: Make = {
        let (http, api) = (http.clone(), api.clone());
        Arc::new(move |_, _| {
            http.get(format!(
                "{api}/api/v1/candidates?person=person%2000421&limit=50"
            ))
            .bearer_auth(SAM)
        })
    };
    scenarios.push(("list, user search, one person", one_person));

    line(String::new());
    line(format!(
        "DynamoDB calls per request, up to {PROBES} requests one at a time ({n} candidates; \
         reads, writes, items read and capacity are means per request; capacity computed from \
         item sizes, and as DynamoDB Local reported it):"
    ));
    line(String::new());
    line(
        "| answer | requests | calls | reads | writes | items read | RCU | WCU | RCU / WCU \
         reported | actions (the request with the most calls) |"
            .into(),
    );
    line("|---|---:|---:|---:|---:|---:|---:|---:|---|---|".into());
    for (name, make) in &scenarios {
        let row = probe(&store, name, make, 0).await;
        line(row);
    }
    let timed: Vec<(&str, Make)> = scenarios
        .into_iter()
        .filter(|(name, _)| !name.starts_with("link answer") && !name.ends_with("one person"))
        .collect();

    if env_or("RECLAIM_SCALE_TIMED", 1) != 0 {
        timed_rows(
            &store,
            &http,
            &respond,
            n,
            secs,
            signer.clone(),
            timed,
            &mut line,
        )
        .await;
    }

    // A bulk Reclaim of the Ready candidates a filter selects, through the API, once.
    bulk_and_tick(&store, &w.app, &http, &api, &mut line).await;
    line(format!("Load average at the end: {}.", load_average()));
    let out = target_dir().join(format!("reclaim-dynamodb-scale-bench-{n}.md"));
    std::fs::write(&out, &report).unwrap();
    println!("report written to {}", out.display());
}

/// Each answer with 1, 8 and 32 clients, then the link answers.
#[allow(clippy::too_many_arguments)]
async fn timed_rows(
    store: &DynamoStore,
    http: &reqwest::Client,
    respond: &str,
    n: usize,
    secs: f64,
    signer: Arc<HmacLinkSigner>,
    timed: Vec<(&str, Make)>,
    line: &mut impl FnMut(String),
) {
    line(String::new());
    line(format!(
        "Timed, {secs} s per row; calls and capacity (computed) per request (load average at the \
         start: {}):",
        load_average()
    ));
    line(String::new());
    line(
        "| answer | clients | requests | errors | p50 ms | p99 ms | req/s | calls/req | RCU/req | WCU/req |"
            .into(),
    );
    line("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|".into());
    let row = |m: &scale::Measured, calls: &CallCounts| {
        format!("{} {} |", m.row(), per_request(calls, m.n))
    };
    for (name, make) in timed {
        for clients in CONCURRENCY {
            let before = store.stats();
            let m = measure(name, clients, secs, make.clone()).await;
            let calls = store.stats().since(&before);
            let _ = store.take_calls();
            line(row(&m, &calls));
            if let Some(e) = m.first_error {
                println!("    first error: {e}");
            }
        }
    }
    for (round, clients) in CONCURRENCY.into_iter().enumerate() {
        let make = scale::link_answer(http, respond, n, scale::round_slot(round), signer.clone());
        let before = store.stats();
        let m = measure("link answer (POST)", clients, secs, make).await;
        let calls = store.stats().since(&before);
        let _ = store.take_calls();
        line(row(&m, &calls));
        if let Some(e) = m.first_error {
            println!("    first error: {e}");
        }
    }
    line(format!(
        "Load average at the end of the timed rows: {}.",
        load_average()
    ));
}

/// The bulk Reclaim (of group-03's Ready candidates, or those `RECLAIM_SCALE_BULK` selects: a
/// filter as JSON), then the scheduler's tick.
async fn bulk_and_tick(
    store: &DynamoStore,
    app: &reclaim_api::App,
    http: &reqwest::Client,
    api: &str,
    line: &mut impl FnMut(String),
) {
    let filter: serde_json::Value = std::env::var("RECLAIM_SCALE_BULK")
        .ok()
        .and_then(|f| serde_json::from_str(&f).ok())
        .unwrap_or_else(|| serde_json::json!({"group": "group-03"}));
    line(String::new());
    let before = store.stats();
    let _ = store.take_calls();
    let t = Instant::now();
    let r = http
        .post(format!("{api}/api/v1/candidates/reclaim-all"))
        .bearer_auth(SAM)
        .json(&filter)
        .timeout(Duration::from_secs(3600))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    let took = t.elapsed();
    let calls = store.stats().since(&before);
    let cost = Cost::of(&store.take_calls());
    let reclaimed = body["reclaimed"].as_array().map_or(0, Vec::len);
    line(format!(
        "Bulk Reclaim of the Ready candidates of {filter} through the API: {status}, \
         {reclaimed} reclaimed in {:.1} s ({:.0} a second); {} calls ({}; {} items read), \
         {:.2} per candidate; {:.0} RCU and {:.0} WCU computed.",
        took.as_secs_f64(),
        reclaimed as f64 / took.as_secs_f64(),
        calls.reads + calls.writes,
        cost.ops(),
        cost.items_read,
        (calls.reads + calls.writes) as f64 / reclaimed.max(1) as f64,
        calls.computed_read_units,
        calls.computed_write_units,
    ));
    // The scheduler's tick over the candidates due now, as the `sweep` function runs it.
    let before = store.stats();
    let t = Instant::now();
    let _ = store.take_calls();
    let tick = app.tick().await.unwrap();
    let took = t.elapsed();
    let calls = store.stats().since(&before);
    let cost = Cost::of(&store.take_calls());
    line(format!(
        "Scheduler tick: examined {}, applied {} in {:.1} s; {} calls ({}; {} items read), \
         {:.0} RCU and {:.0} WCU computed.",
        tick.examined,
        tick.applied.len(),
        took.as_secs_f64(),
        calls.reads + calls.writes,
        cost.ops(),
        cost.items_read,
        calls.computed_read_units,
        calls.computed_write_units,
    ));
}
