//! Reclaim at scale on the embedded store, measured as a user meets it: through HTTP, against
//! the release `reclaim serve` binary, with a million candidates in the database.
//!
//! 1. Generates N candidates (default 1,000,000) spread over every stage, 20 assignment groups,
//!    40 products of 8 publishers, 10,000 users and 24 months, straight into a fresh SQLite file
//!    through the store's own `insert` (so every index and catalog is as the product keeps it),
//!    with 10,000 of them due for the scheduler (a reminder). The generator and the load
//!    generator are `bench/scale.rs`, shared with the DynamoDB bench
//!    (`functions/aws/benches/scale.rs`).
//! 2. Starts `reclaim serve` on that file (mail kept in the outbox, a seed with a sam admin's and
//!    an approver's API tokens, the link-signing key known to the bench).
//! 3. Drives each answer with 1, 8 and 32 concurrent clients for a few seconds each: the list
//!    (no filter, each filter, a part-of-a-word search, sorted, counted, a page deep in the
//!    result), a candidate, savings, alerts, the approvals queue, a link's page and its answer.
//!    Reports p50/p99 and requests per second.
//! 4. Once each: a scheduler tick over the 10,000 due candidates and the effects it queues,
//!    in process before the server starts (on a freshly generated file only), and a bulk
//!    Reclaim of 10,000 through the API.
//!
//! `cargo bench -p reclaim-local --bench scale` builds what it needs but not the server: run
//! `cargo build --release -p reclaim-local --bin reclaim` first. Environment:
//! `RECLAIM_SCALE_CANDIDATES` (default 1000000), `RECLAIM_SCALE_SECS` per measurement (default
//! 3), `RECLAIM_BIN` (default `$CARGO_TARGET_DIR/release/reclaim`), `RECLAIM_BENCH_DIR` (where
//! the database goes; it is kept and reused when it already holds that many candidates),
//! `RECLAIM_SCALE_ONLY` (measure only the answers whose name contains it, e.g. `link answer`;
//! the bulk Reclaim and the tick run only without it).
//! The report is printed and written to `$CARGO_TARGET_DIR/reclaim-scale-bench.md`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../../../bench/scale.rs"]
mod scale;

// The allocator of the `reclaim` binary, so the store is measured as it runs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use chrono::Utc;
use reclaim_api::HmacLinkSigner;
use reclaim_local::SqliteStore;
use reclaim_workflow::ports::CandidateWrite;
use reclaim_workflow::Candidate;
use scale::{candidate, env_or, measure, target_dir, Make, CONCURRENCY, LINK_KEY, SAM};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    let (users, groups) = scale::directory();
    let tokens: std::collections::BTreeMap<&str, &str> = scale::TOKENS.into_iter().collect();
    let seed = serde_json::json!({
        "users": users, "groups": groups,
        "tokens": tokens,
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

#[tokio::main]
async fn main() {
    reclaim_local::allocator::return_freed_memory_at_once();
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
    let generated = !marker.exists();
    if generated {
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
    let signer = Arc::new(HmacLinkSigner::new(LINK_KEY.as_bytes()).unwrap());
    // The scheduler's tick over the candidates due now, in process, before the server starts
    // (its own first tick would take them) and only on a freshly generated file (a kept one
    // has had its reminders sent); then the effects the tick queued, run to the end.
    let only = std::env::var("RECLAIM_SCALE_ONLY").ok();
    if generated && only.is_none() {
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
        let ticked = t.elapsed();
        let t = Instant::now();
        let drained = embedded.drain().await.unwrap();
        line(format!(
            "Scheduler tick: examined {}, applied {} in {:.1} s; the {} effects it queued ran in \
             {:.1} s ({} failed).",
            tick.examined,
            tick.applied.len(),
            ticked.as_secs_f64(),
            drained.done + drained.failed,
            t.elapsed().as_secs_f64(),
            drained.failed
        ));
    }
    let server = serve(&bin, &db, &seed).await;
    let base = server.base.clone();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let cursor = scale::deep_cursor(&client, &base).await;
    line(String::new());
    line("| answer | clients | requests | errors | p50 ms | p99 ms | req/s |".into());
    line("|---|---:|---:|---:|---:|---:|---:|".into());
    let wanted = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    let scenarios = scale::scenarios(&client, &base, &base, n, &cursor, signer.clone());
    for (name, make) in scenarios.into_iter().filter(|(name, _)| wanted(name)) {
        for clients in CONCURRENCY {
            let m = measure(name, clients, secs, make.clone()).await;
            line(m.row());
            if let Some(e) = m.first_error {
                println!("    first error: {e}");
            }
        }
    }
    // Link answers: each POST answers a different candidate once.
    for (round, clients) in CONCURRENCY.into_iter().enumerate() {
        if !wanted("link answer (POST)") {
            break;
        }
        let make: Make =
            scale::link_answer(&client, &base, n, scale::round_slot(round), signer.clone());
        let m = measure("link answer (POST)", clients, secs, make).await;
        line(m.row());
        if let Some(e) = m.first_error {
            println!("    first error: {e}");
        }
    }
    if only.is_some() {
        drop(server);
        return;
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
    let out = target_dir().join("reclaim-scale-bench.md");
    std::fs::write(&out, &report).unwrap();
    println!("report written to {}", out.display());
}
