//! Reclaim at scale on the embedded store, measured as a user meets it: through HTTP, against
//! the release `reclaim serve` binary, with a million candidates in the database.
//!
//! 1. Generates N candidates (default 1,000,000) spread over every stage, 20 assignment groups,
//!    40 products of 8 publishers, 10,000 users and 24 months, straight into a fresh SQLite file
//!    through the store's own `insert` (so every index and catalog is as the product keeps it),
//!    with 10,000 of them due for the scheduler.
//! 2. Starts `reclaim serve` on that file (mail kept in the outbox, a seed with a sam admin's and
//!    an approver's API tokens, the link-signing key known to the bench).
//! 3. Drives each answer with 1, 8 and 32 concurrent clients for a few seconds each: the list
//!    (no filter, each filter, a part-of-a-word search, sorted, counted, a page deep in the
//!    result), a candidate, savings, alerts, the approvals queue, a link's page and its answer.
//!    Reports p50/p99 and requests per second.
//! 4. Once each: a bulk Reclaim of 10,000 through the API, and (with the server stopped) a
//!    scheduler tick over the 10,000 due candidates, in process.
//!
//! `cargo bench -p reclaim-local --bench scale` builds what it needs but not the server: run
//! `cargo build --release -p reclaim-local --bin reclaim` first. Environment:
//! `RECLAIM_SCALE_CANDIDATES` (default 1000000), `RECLAIM_SCALE_SECS` per measurement (default
//! 3), `RECLAIM_BIN` (default `$CARGO_TARGET_DIR/release/reclaim`), `RECLAIM_BENCH_DIR` (where
//! the database goes; it is kept and reused when it already holds that many candidates).
//! The report is printed and written to `$CARGO_TARGET_DIR/reclaim-scale-bench.md`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use chrono::{Duration as Days, TimeZone, Utc};
use reclaim_api::HmacLinkSigner;
use reclaim_local::SqliteStore;
use reclaim_workflow::ports::{CandidateWrite, LinkAction, LinkClaims, LinkSigner};
use reclaim_workflow::{Candidate, State, Timestamp, UserRef};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LINK_KEY: &str = "scale-bench-link-key-0123456789abcdef0123456789abcdef";
const SAM: &str = "scale-sam-admin-token-000001";
const APPROVER: &str = "scale-approver-token-0000001";
const GROUPS: usize = 20;
const USERS: usize = 10_000;
const DUE_NOW: usize = 10_000;
const PUBLISHERS: [&str; 8] = [
    "Adobe",
    "Microsoft",
    "Autodesk",
    "Zoom",
    "Slack",
    "Tableau",
    "Atlassian",
    "JetBrains",
];
const PRODUCTS: [&str; 5] = ["Pro", "Standard", "Enterprise", "Desktop", "Studio"];

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// Which stage the i-th candidate is in: most are Ready or closed, as in a real estate.
fn stage(i: usize) -> State {
    match i % 100 {
        0..=39 => State::Ready,
        40..=54 => State::AwaitingUser,
        55..=59 => State::AwaitingApproval,
        60..=62 => State::AwaitingRevocation,
        63..=87 => State::ClosedComplete,
        88..=94 => State::ClosedSkipped,
        95..=98 => State::ClosedCanceled,
        _ => State::AttentionRequired,
    }
}

fn user(u: usize) -> UserRef {
    UserRef {
        id: format!("user-{u:05}"),
        display_name: format!("Person {u:05}"),
        email: Some(format!("person{u:05}@example.com")),
        upn: None,
        itil: false,
        vip: false,
    }
}

fn candidate(i: usize, now: Timestamp) -> Candidate {
    let mut c = reclaim_workflow::testing::candidate();
    let n = i as u64 + 1;
    c.id = format!("scale-{n:07}");
    c.number = reclaim_workflow::intake::format_number(n);
    c.state = stage(i);
    let p = (i / 7) % (PUBLISHERS.len() * PRODUCTS.len());
    c.software.publisher = PUBLISHERS[p % PUBLISHERS.len()].into();
    c.software.product = format!(
        "{} {}",
        PUBLISHERS[p % PUBLISHERS.len()],
        PRODUCTS[p / PUBLISHERS.len()]
    );
    c.user = Some(user((i * 7919) % USERS));
    c.assignment_group = Some(format!("group-{:02}", i % GROUPS));
    c.price_per_right_cents = 1_000 + ((i * 37) % 50_000) as i64;
    c.inactive_days = Some(((i * 13) % 400) as u32);
    let month = (i % 24) as i64;
    c.opened_at = now - Days::days(30 * month + 31);
    c.updated_at = c.opened_at;
    c.state_since = Some(c.opened_at);
    c.version = 1;
    c.due_at = None;
    match c.state {
        State::AwaitingUser => {
            c.asked_at = Some(now - Days::days(2));
            // The due ones had until an hour ago to answer: the tick reclaims them.
            c.deadline_at = if i % 15 < 1 && i / 100 < DUE_NOW {
                Some(now - Days::hours(1))
            } else {
                Some(now + Days::days(((i % 28) + 1) as i64))
            };
            c.due_at = c.deadline_at;
        }
        s if s.is_closed() => {
            c.closed_at = Some(c.opened_at + Days::days(10));
        }
        _ => {}
    }
    c
}

async fn generate(path: &Path, n: usize) -> Duration {
    let started = Instant::now();
    let store = SqliteStore::open(path).unwrap();
    let now = Utc::now();
    let batch = 10_000;
    let mut i = 0;
    while i < n {
        let end = (i + batch).min(n);
        let cs: Vec<Candidate> = (i..end).map(|k| candidate(k, now)).collect();
        store.insert(&cs).await.unwrap();
        i = end;
        if i % 100_000 == 0 {
            println!("  generated {i} in {:.0?}", started.elapsed());
        }
    }
    store.allocate_numbers(1).await.unwrap();
    started.elapsed()
}

fn seed_file(dir: &Path) -> PathBuf {
    let mut users = vec![
        serde_json::json!({"id": "sam", "display_name": "Sam Admin", "email": "sam@example.com", "sam_admin": true}),
        serde_json::json!({"id": "ada", "display_name": "Ada Approver", "email": "ada@example.com", "itil": true}),
    ];
    for u in 0..USERS {
        users.push(serde_json::to_value(user(u)).unwrap());
    }
    let groups: Vec<serde_json::Value> = (0..GROUPS)
        .map(|g| {
            serde_json::json!({
                "id": format!("group-{g:02}"), "name": format!("Group {g:02}"),
                "email": format!("group{g:02}@example.com"),
                "members": if g == 7 { vec!["ada"] } else { vec![] },
            })
        })
        .collect();
    let seed = serde_json::json!({
        "users": users, "groups": groups,
        "tokens": {SAM: "sam", APPROVER: "ada"},
    });
    let path = dir.join("seed.json");
    std::fs::write(&path, serde_json::to_vec(&seed).unwrap()).unwrap();
    path
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// The child is waited for by `Server`'s drop; only a failed start leaves it, and that ends
// the bench.
#[allow(clippy::zombie_processes)]
async fn serve(bin: &Path, db: &Path, seed: &Path) -> Server {
    let port = free_port();
    let child = Command::new(bin)
        .args(["serve", "--db"])
        .arg(db)
        .args(["--addr", &format!("127.0.0.1:{port}")])
        .arg("--seed")
        .arg(seed)
        .args(["--mail", "outbox", "--tick-secs", "86400"])
        .args(["--public-url", &format!("http://127.0.0.1:{port}")])
        .env("RECLAIM_LINK_KEY", LINK_KEY)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start reclaim serve (build it with cargo build --release)");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..600 {
        if client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Server { child, base };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("reclaim serve did not come up");
}

/// One request a client makes, again and again (`i` counts the client's requests).
type Make = Arc<dyn Fn(usize, usize) -> reqwest::RequestBuilder + Send + Sync>;

struct Measured {
    name: String,
    clients: usize,
    n: usize,
    errors: usize,
    first_error: Option<String>,
    p50: Duration,
    p99: Duration,
    per_sec: f64,
}

async fn measure(name: &str, clients: usize, secs: f64, make: Make) -> Measured {
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..clients {
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            let mut errors = 0;
            let mut first_error = None;
            let mut i = 0;
            while Instant::now() < until {
                let t = Instant::now();
                let r = make(k, i).send().await;
                let ok = match r {
                    Ok(r) => {
                        let status = r.status();
                        let body = r.bytes().await.unwrap_or_default();
                        if status.is_success() || status.is_redirection() {
                            true
                        } else {
                            if first_error.is_none() {
                                first_error = Some(format!(
                                    "{status}: {}",
                                    String::from_utf8_lossy(&body)
                                        .chars()
                                        .take(200)
                                        .collect::<String>()
                                ));
                            }
                            false
                        }
                    }
                    Err(e) => {
                        if first_error.is_none() {
                            first_error = Some(e.to_string());
                        }
                        false
                    }
                };
                times.push(t.elapsed());
                if !ok {
                    errors += 1;
                }
                i += 1;
            }
            (times, errors, first_error)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for t in tasks {
        let (times, e, f) = t.await.unwrap();
        all.extend(times);
        errors += e;
        first_error = first_error.or(f);
    }
    let elapsed = started.elapsed();
    all.sort_unstable();
    let at = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Measured {
        name: name.to_string(),
        clients,
        n: all.len(),
        errors,
        first_error,
        p50: at(0.50),
        p99: at(0.99),
        per_sec: all.len() as f64 / elapsed.as_secs_f64(),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let n: usize = env_or("RECLAIM_SCALE_CANDIDATES", 1_000_000);
    let secs: f64 = env_or("RECLAIM_SCALE_SECS", 3.0);
    let bin = std::env::var_os("RECLAIM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("release").join("reclaim"));
    assert!(
        bin.exists(),
        "{} is missing: cargo build --release -p reclaim-local --bin reclaim",
        bin.display()
    );
    let dir = std::env::var_os("RECLAIM_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("scale-bench"));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join(format!("scale-{n}.db"));
    let marker = dir.join(format!("scale-{n}.done"));
    let mut report = String::new();
    let mut line = |s: String| {
        println!("{s}");
        report.push_str(&s);
        report.push('\n');
    };
    if !marker.exists() {
        for suffix in ["", "-wal", "-shm", ".link-key"] {
            let mut p = db.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
        println!("generating {n} candidates into {}", db.display());
        let took = generate(&db, n).await;
        std::fs::write(&marker, format!("{took:?}")).unwrap();
        line(format!(
            "Generated {n} candidates in {:.1} s ({:.0} candidates/s).",
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64()
        ));
    }
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    line(format!(
        "Database: {n} candidates, {:.0} MB.",
        size as f64 / 1e6
    ));
    let seed = seed_file(&dir);
    let server = serve(&bin, &db, &seed).await;
    let base = server.base.clone();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let get = |path: String, token: &'static str| -> Make {
        let (client, base) = (client.clone(), base.clone());
        Arc::new(move |_, _| client.get(format!("{base}{path}")).bearer_auth(token))
    };
    // A page deep in a listing: follow `next` 200 pages of 50.
    let mut cursor = String::new();
    for _ in 0..200 {
        let url = format!(
            "{base}/api/v1/candidates?state=closed-complete&limit=50{}",
            if cursor.is_empty() {
                String::new()
            } else {
                format!("&cursor={cursor}")
            }
        );
        let body: serde_json::Value = client
            .get(url)
            .bearer_auth(SAM)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        match body["next"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    let signer = Arc::new(HmacLinkSigner::new(LINK_KEY.as_bytes()).unwrap());
    let link = {
        let signer = signer.clone();
        move |i: usize, action: LinkAction| {
            // The i-th Awaiting User candidate (stage 40..=54 of every hundred).
            let k = (i / 15) * 100 + 40 + i % 15;
            let c = candidate(k, Utc::now());
            signer.sign(&LinkClaims {
                candidate_id: c.id,
                user_id: c.user.unwrap().id,
                action,
                version: 1,
                expires_at: Utc.timestamp_opt(4_000_000_000, 0).unwrap(),
            })
        }
    };
    let pick = move |k: usize, i: usize| ((k * 1_000_003 + i * 7_919) % n) + 1;
    let scenarios: Vec<(&str, Make)> = vec![
        (
            "list, no filter",
            get("/api/v1/candidates?limit=50".into(), SAM),
        ),
        (
            "list, stage",
            get(
                "/api/v1/candidates?state=awaiting-user&limit=50".into(),
                SAM,
            ),
        ),
        (
            "list, group",
            get("/api/v1/candidates?group=group-07&limit=50".into(), SAM),
        ),
        (
            "list, software search",
            get(
                "/api/v1/candidates?software=desk%20stud&limit=50".into(),
                SAM,
            ),
        ),
        (
            "list, user search",
            get(
                "/api/v1/candidates?person=person%200421&limit=50".into(),
                SAM,
            ),
        ),
        (
            "list, sorted by savings",
            get("/api/v1/candidates?sort=-savings&limit=50".into(), SAM),
        ),
        (
            "list, stage + sorted + counted",
            get(
                "/api/v1/candidates?state=ready&sort=deadline&count=true&limit=50".into(),
                SAM,
            ),
        ),
        (
            "list, page 201",
            get(
                format!("/api/v1/candidates?state=closed-complete&limit=50&cursor={cursor}"),
                SAM,
            ),
        ),
        ("candidate", {
            let (client, base) = (client.clone(), base.clone());
            Arc::new(move |k, i| {
                client
                    .get(format!(
                        "{base}/api/v1/candidates/{}",
                        reclaim_workflow::intake::format_number(pick(k, i) as u64)
                    ))
                    .bearer_auth(SAM)
            })
        }),
        ("savings", get("/api/v1/savings".into(), SAM)),
        ("alerts", get("/api/v1/alerts".into(), SAM)),
        (
            "approvals queue",
            get("/api/v1/tasks/mine".into(), APPROVER),
        ),
        ("link page (GET)", {
            let (client, base, link) = (client.clone(), base.clone(), link.clone());
            Arc::new(move |k, i| {
                client.get(format!(
                    "{base}/respond/{}",
                    link(k * 1000 + i % 1000, LinkAction::Keep)
                ))
            })
        }),
    ];
    line(String::new());
    line("| answer | clients | requests | errors | p50 ms | p99 ms | req/s |".into());
    line("|---|---:|---:|---:|---:|---:|---:|".into());
    for (name, make) in scenarios {
        for clients in [1, 8, 32] {
            let m = measure(name, clients, secs, make.clone()).await;
            line(format!(
                "| {} | {} | {} | {} | {} | {} | {:.0} |",
                m.name,
                m.clients,
                m.n,
                m.errors,
                ms(m.p50),
                ms(m.p99),
                m.per_sec
            ));
            if let Some(e) = m.first_error {
                println!("    first error: {e}");
            }
        }
    }
    // Link answers: each POST answers a different candidate once (offset per concurrency, so
    // no run answers a candidate another already did).
    for (round, clients) in [1usize, 8, 32].into_iter().enumerate() {
        let (client, base, link) = (client.clone(), base.clone(), link.clone());
        let offset = 20_000 * (round + 1);
        let make: Make = Arc::new(move |k, i| {
            client
                .post(format!(
                    "{base}/respond/{}",
                    link(offset + k * 600 + i, LinkAction::Keep)
                ))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("origin", base.clone())
                .body("comment=")
        });
        let m = measure("link answer (POST)", clients, secs, make).await;
        line(format!(
            "| {} | {} | {} | {} | {} | {} | {:.0} |",
            m.name,
            m.clients,
            m.n,
            m.errors,
            ms(m.p50),
            ms(m.p99),
            m.per_sec
        ));
        if let Some(e) = m.first_error {
            println!("    first error: {e}");
        }
    }
    // A bulk Reclaim of one group's Ready candidates (20,000 at a million; the API takes
    // them all), once.
    let t = Instant::now();
    let r = client
        .post(format!("{base}/api/v1/candidates/reclaim-all"))
        .bearer_auth(SAM)
        .json(&serde_json::json!({"group": "group-03"}))
        .timeout(Duration::from_secs(3600))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    let reclaimed = body["reclaimed"].as_array().map_or(0, Vec::len);
    line(String::new());
    line(format!(
        "Bulk Reclaim of group-03's Ready candidates through the API: {status}, {reclaimed} reclaimed in {:.1} s.",
        t.elapsed().as_secs_f64()
    ));
    drop(server);
    // The scheduler's tick over the candidates due now, in process on the same file.
    let embedded = reclaim_local::Embedded::open_with_mail(
        &db,
        reclaim_api::Settings::default(),
        signer.clone(),
        Arc::new(reclaim_api::ManualTaskRevoker),
        Arc::new(reclaim_workflow::ports::SystemClock),
        reclaim_local::MailChoice::Outbox,
    )
    .unwrap();
    let t = Instant::now();
    let tick = embedded.app.tick().await.unwrap();
    line(format!(
        "Scheduler tick: examined {}, applied {} in {:.1} s.",
        tick.examined,
        tick.applied.len(),
        t.elapsed().as_secs_f64()
    ));
    let out = target_dir().join("reclaim-scale-bench.md");
    std::fs::write(&out, &report).unwrap();
    println!("report written to {}", out.display());
}
