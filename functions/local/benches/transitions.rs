//! Transitions per second on the embedded store, against the raw commit rate of the same disk.
//!
//! Drives N candidates (default 10,000) through Reclaim → No (answer remove) → Close Complete,
//! each step as the application does it: read the candidate, apply the event with
//! `reclaim_workflow::apply`, commit the change (candidate + history + effects, conditional).
//! Two ways: one caller at a time (every commit is its own transaction), and 64 callers at once
//! (the writer groups their commits). In the same run, on the same disk with the same pragmas:
//! single-row INSERT transactions, one after another, as the raw rate to compare with.
//!
//! `cargo bench -p reclaim-local --bench transitions` (env: `RECLAIM_BENCH_CANDIDATES`,
//! `RECLAIM_BENCH_DIR` to put the files on another disk, `RECLAIM_BENCH_CONCURRENT_ONLY=1` for
//! the 64-caller NORMAL run alone, to profile it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

// The allocator of the `reclaim` binary, so the store is measured as it runs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use reclaim_local::{Durability, Options, SqliteStore};
use reclaim_workflow::ports::{CandidateRead, CandidateWrite, Change};
use reclaim_workflow::{apply, Actor, Candidate, Event, Principal, Via};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONCURRENT_CALLERS: usize = 64;

fn candidates(n: usize) -> Vec<Candidate> {
    (1..=n as u64)
        .map(|i| {
            let mut c = reclaim_workflow::testing::candidate();
            c.id = format!("bench-{i:06}");
            c.number = reclaim_workflow::intake::format_number(i);
            if let Some(u) = c.user.as_mut() {
                // Notify on, an email, not ITIL: Reclaim → Awaiting User with one email.
                u.itil = false;
                u.id = format!("user-{i}");
            }
            c
        })
        .collect()
}

fn admin() -> Actor {
    Actor::Person(Principal {
        sam_admin: true,
        ..Principal::user("admin")
    })
}

/// One transition as the application performs it: read, decide, conditional write.
async fn step(store: &SqliteStore, id: &str, event: &Event, actor: &Actor) {
    let c = store.get(id).await.unwrap().unwrap();
    let t = apply(&c, event, actor, c.updated_at).unwrap();
    store
        .commit(&Change {
            expected_version: c.version,
            candidate: t.candidate,
            entry: t.entry,
            effects: t.effects,
        })
        .await
        .unwrap();
}

async fn drive(store: &SqliteStore, c: &Candidate) {
    let user = Actor::Person(Principal::user(c.user.as_ref().unwrap().id.clone()));
    let answer = Event::Answer {
        keep: false,
        comment: None,
        via: Via::api(),
    };
    step(store, &c.id, &Event::Reclaim, &admin()).await;
    step(store, &c.id, &answer, &user).await;
    step(store, &c.id, &Event::CloseComplete { note: None }, &admin()).await;
}

struct Run {
    transitions: usize,
    elapsed: Duration,
    writes_per_transaction: f64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.transitions as f64 / self.elapsed.as_secs_f64()
    }
}

fn options(durability: Durability) -> Options {
    Options {
        durability,
        ..Options::default()
    }
}

async fn prepared(
    dir: &std::path::Path,
    name: &str,
    all: &[Candidate],
    durability: Durability,
) -> SqliteStore {
    let store = SqliteStore::open_with(dir.join(name), options(durability)).unwrap();
    for chunk in all.chunks(1000) {
        store.insert(chunk).await.unwrap();
    }
    store
}

async fn sequential(dir: &std::path::Path, all: &[Candidate], durability: Durability) -> Run {
    let name = format!("sequential-{durability:?}.db");
    let store = prepared(dir, &name, all, durability).await;
    let before = store.write_stats();
    let start = Instant::now();
    for c in all {
        drive(&store, c).await;
    }
    let elapsed = start.elapsed();
    finish(&store, all, elapsed, before).await
}

async fn concurrent(dir: &std::path::Path, all: &[Candidate], durability: Durability) -> Run {
    let name = format!("concurrent-{durability:?}.db");
    let store = prepared(dir, &name, all, durability).await;
    let all = Arc::new(all.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let before = store.write_stats();
    let start = Instant::now();
    let mut callers = Vec::new();
    for _ in 0..CONCURRENT_CALLERS {
        let (store, all, next) = (store.clone(), all.clone(), next.clone());
        callers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(c) = all.get(i) else { return };
                drive(&store, c).await;
            }
        }));
    }
    for c in callers {
        c.await.unwrap();
    }
    let elapsed = start.elapsed();
    finish(&store, &all, elapsed, before).await
}

async fn finish(
    store: &SqliteStore,
    all: &[Candidate],
    elapsed: Duration,
    before: reclaim_local::WriteStats,
) -> Run {
    // Spot-check that the work was really done.
    for c in all.iter().step_by(997) {
        let got = store.get(&c.id).await.unwrap().unwrap();
        assert_eq!(got.version, 3);
        assert_eq!(store.history(&c.id).await.unwrap().len(), 3);
    }
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!(
        counts.pending,
        5 * all.len() as u64,
        "1 + 2 + 2 effects each"
    );
    let after = store.write_stats();
    let tx = (after.transactions - before.transactions).max(1);
    Run {
        transitions: 3 * all.len(),
        elapsed,
        writes_per_transaction: (after.writes - before.writes) as f64 / tx as f64,
    }
}

/// Single-row INSERT transactions, one after another, with the store's pragmas.
fn raw_rate(dir: &std::path::Path, count: usize, durability: Durability) -> (f64, Duration) {
    let path = dir.join(format!("raw-{durability:?}.db"));
    let conn = reclaim_local::sqlite::connect(&path, &options(durability)).unwrap();
    conn.execute_batch("CREATE TABLE raw (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
        .unwrap();
    let payload = "x".repeat(100);
    let mut insert = conn
        .prepare("INSERT INTO raw (payload) VALUES (?1)")
        .unwrap();
    let start = Instant::now();
    for _ in 0..count {
        // Autocommit: each INSERT is its own transaction.
        insert.execute([&payload]).unwrap();
    }
    let elapsed = start.elapsed();
    (count as f64 / elapsed.as_secs_f64(), elapsed)
}

fn main() {
    reclaim_local::allocator::return_freed_memory_at_once();
    let n: usize = std::env::var("RECLAIM_BENCH_CANDIDATES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = match std::env::var_os("RECLAIM_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let all = candidates(n);

    if std::env::var_os("RECLAIM_BENCH_PROBE").is_some() {
        rt.block_on(probe(dir.path(), &all));
        return;
    }
    if std::env::var_os("RECLAIM_BENCH_CONCURRENT_ONLY").is_some() {
        // One run to profile: 64 callers under NORMAL, nothing else in the process.
        let run = rt.block_on(concurrent(dir.path(), &all, Durability::Normal));
        println!(
            "64 callers, NORMAL: {} transitions in {:.2}s = {:.0}/s, {:.1} writes per transaction",
            run.transitions,
            run.elapsed.as_secs_f64(),
            run.rate(),
            run.writes_per_transaction
        );
        return;
    }
    // Every commit waits for an fsync under FULL: a tenth of the candidates keeps it short.
    let full_n = (n / 10).max(100);
    let mut table = Vec::new();
    for (durability, count) in [(Durability::Normal, n), (Durability::Full, full_n)] {
        let all = &all[..count.min(all.len())];
        let (raw, raw_elapsed) = raw_rate(dir.path(), 3 * all.len(), durability);
        let seq = rt.block_on(sequential(dir.path(), all, durability));
        let conc = rt.block_on(concurrent(dir.path(), all, durability));
        println!(
            "{durability:?}: raw single-row INSERT transactions: {raw:.0}/s ({} in {:.2}s)",
            3 * all.len(),
            raw_elapsed.as_secs_f64()
        );
        for (name, run) in [
            ("one caller at a time", seq),
            ("64 concurrent callers (group commit)", conc),
        ] {
            println!(
                "{durability:?}, {name}: {} transitions in {:.2}s = {:.0}/s, {:.0}% of raw, \
                 {:.1} writes per transaction",
                run.transitions,
                run.elapsed.as_secs_f64(),
                run.rate(),
                100.0 * run.rate() / raw,
                run.writes_per_transaction
            );
            table.push((durability, all.len(), name, run, raw));
        }
    }
    println!("files in {}", dir.path().display());
    println!();
    println!(
        "| synchronous | candidates | callers | transitions/s | raw INSERT tx/s | ratio | writes per transaction |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|");
    for (durability, count, name, run, raw) in table {
        let sync = match durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        println!(
            "| {sync} | {count} | {name} | {:.0} | {raw:.0} | {:.0}% | {:.1} |",
            run.rate(),
            100.0 * run.rate() / raw,
            run.writes_per_transaction
        );
    }
}

async fn probe(dir: &std::path::Path, all: &[Candidate]) {
    let store = prepared(dir, "probe.db", all, Durability::Normal).await;
    let t = Instant::now();
    for c in all {
        store.get(&c.id).await.unwrap();
    }
    println!(
        "get: {:.1}us",
        t.elapsed().as_secs_f64() * 1e6 / all.len() as f64
    );
    let t = Instant::now();
    let mut changes = Vec::new();
    for c in all {
        let tr = apply(c, &Event::Reclaim, &admin(), c.updated_at).unwrap();
        changes.push(Change {
            expected_version: 0,
            candidate: tr.candidate,
            entry: tr.entry,
            effects: tr.effects,
        });
    }
    println!(
        "apply: {:.1}us",
        t.elapsed().as_secs_f64() * 1e6 / all.len() as f64
    );
    let t = Instant::now();
    for ch in &changes {
        let _ = serde_json::to_string(&ch.candidate).unwrap();
    }
    println!(
        "json: {:.1}us",
        t.elapsed().as_secs_f64() * 1e6 / all.len() as f64
    );
    let t = Instant::now();
    for ch in &changes {
        store.commit(ch).await.unwrap();
    }
    println!(
        "commit: {:.1}us",
        t.elapsed().as_secs_f64() * 1e6 / all.len() as f64
    );
    let t = Instant::now();
    for c in all {
        store.allocate_numbers(1).await.unwrap();
        let _ = c;
    }
    println!(
        "trivial write: {:.1}us",
        t.elapsed().as_secs_f64() * 1e6 / all.len() as f64
    );
    let t = Instant::now();
    for c in all {
        reclaim_workflow::ports::Directory::user(&store, "nobody")
            .await
            .unwrap();
        let _ = c;
    }
    println!(
        "trivial read: {:.1}us",
        t.elapsed().as_secs_f64() * 1e6 / all.len() as f64
    );
}
