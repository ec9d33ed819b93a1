//! The effects worker: at least once, in order per candidate, prompt, bounded retries, clean
//! shutdown, and the restart after an interrupted run.

// Test support code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use async_trait::async_trait;
use common::{admin, candidate, change, test_db};
use reclaim_local::{
    run_due, EffectRunner, EffectState, RunError, SqliteStore, Tick, Worker, WorkerConfig,
};
use reclaim_workflow::ports::CandidateWrite;
use reclaim_workflow::{Actor, Candidate, Effect, Event, Principal, Via};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Counts the runs of each effect key and remembers their order.
#[derive(Default)]
struct Counting {
    runs: Mutex<Vec<String>>,
}

impl Counting {
    fn runs(&self) -> Vec<String> {
        self.runs.lock().unwrap().clone()
    }

    fn per_key(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for k in self.runs() {
            *m.entry(k).or_default() += 1;
        }
        m
    }
}

#[async_trait]
impl EffectRunner for Counting {
    async fn run(&self, candidate: &Candidate, effect: &Effect) -> Result<(), RunError> {
        assert_eq!(candidate.id, effect.candidate_id);
        assert_eq!(
            candidate.version, effect.version,
            "the snapshot is the effect's version"
        );
        self.runs.lock().unwrap().push(effect.key.clone());
        Ok(())
    }
}

/// Starts every run and never finishes one: a worker that is stopped mid-run.
struct Hanging {
    started: tokio::sync::Notify,
    count: AtomicUsize,
}

#[async_trait]
impl EffectRunner for Hanging {
    async fn run(&self, _: &Candidate, _: &Effect) -> Result<(), RunError> {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.started.notify_one();
        std::future::pending::<()>().await;
        Ok(())
    }
}

/// Fails each key `failures` times with `error`, then succeeds.
struct Flaky {
    failures: usize,
    permanent: bool,
    seen: Mutex<HashMap<String, usize>>,
    order: Mutex<Vec<String>>,
}

impl Flaky {
    fn new(failures: usize, permanent: bool) -> Flaky {
        Flaky {
            failures,
            permanent,
            seen: Mutex::new(HashMap::new()),
            order: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait]
impl EffectRunner for Flaky {
    async fn run(&self, _: &Candidate, effect: &Effect) -> Result<(), RunError> {
        self.order.lock().unwrap().push(effect.key.clone());
        let n = {
            let mut seen = self.seen.lock().unwrap();
            let n = seen.entry(effect.key.clone()).or_default();
            *n += 1;
            *n
        };
        if n <= self.failures {
            return Err(if self.permanent {
                RunError::permanent(format!("refused #{n}"))
            } else {
                RunError::retryable(format!("busy #{n}"))
            });
        }
        Ok(())
    }
}

fn quick() -> WorkerConfig {
    WorkerConfig {
        poll_interval: Duration::from_millis(20),
        backoff_base: Duration::from_millis(5),
        backoff_cap: Duration::from_millis(20),
        ..WorkerConfig::default()
    }
}

async fn reclaimed(store: &SqliteStore, n: u64) -> Candidate {
    let c = candidate(n);
    store.insert(std::slice::from_ref(&c)).await.unwrap();
    let ch = change(&c, &Event::Reclaim, &admin());
    store.commit(&ch).await.unwrap();
    ch.candidate
}

async fn wait_until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..500 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

async fn drained(store: &SqliteStore) -> bool {
    store.outbox_counts().await.unwrap().pending == 0
}

#[tokio::test]
async fn a_commit_wakes_the_worker_without_waiting_for_the_poll() {
    let db = test_db();
    let runner = Arc::new(Counting::default());
    let config = WorkerConfig {
        poll_interval: Duration::from_secs(3600),
        ..WorkerConfig::default()
    };
    let worker = Worker::start(db.store.clone(), runner.clone(), config);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let c = reclaimed(&db, 1).await;
    wait_until("the effects ran", || drained(&db)).await;
    let effects = db.effects_for(&c.id).await.unwrap();
    assert_eq!(effects.len(), 2);
    assert!(effects
        .iter()
        .all(|e| e.state == EffectState::Done && e.attempts == 1));
    assert_eq!(runner.runs().len(), 2);
    worker.shutdown().await;
}

#[tokio::test]
async fn an_interrupted_effect_runs_exactly_once_after_restart() {
    let db = test_db();
    let c = reclaimed(&db, 1).await;
    let keys: Vec<String> = db
        .effects_for(&c.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys.len(), 2);

    // The first process starts running the effects and dies before any returns.
    let hanging = Arc::new(Hanging {
        started: tokio::sync::Notify::new(),
        count: AtomicUsize::new(0),
    });
    let worker = Worker::start(db.store.clone(), hanging.clone(), quick());
    tokio::time::timeout(Duration::from_secs(5), hanging.started.notified())
        .await
        .expect("the first run started");
    drop(worker);
    let db = db.reopen();
    assert_eq!(
        db.outbox_counts().await.unwrap().pending,
        2,
        "nothing was marked done by the interrupted worker"
    );

    // The restarted process runs each effect once, and only once.
    let counting = Arc::new(Counting::default());
    let worker = Worker::start(db.store.clone(), counting.clone(), quick());
    wait_until("the effects ran after restart", || drained(&db)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    worker.shutdown().await;
    let per_key = counting.per_key();
    for k in &keys {
        assert_eq!(
            per_key.get(k),
            Some(&1),
            "{k} ran exactly once after restart"
        );
    }
    assert_eq!(counting.runs().len(), 2);
    assert_eq!(
        hanging.count.load(Ordering::SeqCst),
        1,
        "the hung run blocked the rest of its candidate"
    );
}

#[tokio::test]
async fn effects_of_one_candidate_run_in_commit_order_even_across_retries() {
    let db = test_db();
    let c = reclaimed(&db, 1).await;
    let user = Actor::Person(Principal::user("u-1"));
    let answer = change(
        &c,
        &Event::Answer {
            keep: false,
            comment: None,
            via: Via::api(),
        },
        &user,
    );
    db.commit(&answer).await.unwrap();
    let order: Vec<String> = db
        .effects_for(&c.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(order.len(), 4);

    // Every effect fails once: the first one's retry must hold back the rest.
    let flaky = Arc::new(Flaky::new(1, false));
    let worker = Worker::start(db.store.clone(), flaky.clone(), quick());
    wait_until("all effects are done", || drained(&db)).await;
    worker.shutdown().await;
    let ran = flaky.order.lock().unwrap().clone();
    let mut expected = Vec::new();
    for k in &order {
        expected.push(k.clone());
        expected.push(k.clone());
    }
    assert_eq!(ran, expected, "each effect ran twice, in commit order");
    let done = db.effects_for(&c.id).await.unwrap();
    assert!(done
        .iter()
        .all(|e| e.state == EffectState::Done && e.attempts == 2));
    assert!(done
        .iter()
        .all(|e| e.last_error.as_deref() == Some("busy #1")));
}

#[tokio::test]
async fn retryable_errors_back_off_then_fail_after_max_attempts() {
    let db = test_db();
    let c = reclaimed(&db, 1).await;
    let flaky: Arc<dyn EffectRunner> = Arc::new(Flaky::new(usize::MAX, false));
    let config = WorkerConfig {
        max_attempts: 3,
        ..quick()
    };
    let mut rounds = 0;
    while !drained(&db).await {
        run_due(&db, &flaky, &config).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        rounds += 1;
        assert!(rounds < 500, "never gave up");
    }
    let failed = db.failed_effects().await.unwrap();
    assert_eq!(failed.len(), 2);
    for f in &failed {
        assert_eq!(f.candidate_id, c.id);
        assert_eq!(f.attempts, 3);
        assert_eq!(f.state, EffectState::Failed);
        let err = f.last_error.as_deref().unwrap();
        assert!(err.contains("gave up after 3 attempts"), "{err}");
    }
    assert_eq!(db.outbox_counts().await.unwrap().failed, 2);
}

#[tokio::test]
async fn a_permanent_error_fails_at_once_and_a_person_can_requeue_it() {
    let db = test_db();
    reclaimed(&db, 1).await;
    let refusing: Arc<dyn EffectRunner> = Arc::new(Flaky::new(1, true));
    let stats = run_due(&db, &refusing, &quick()).await.unwrap();
    assert_eq!(stats.failed, 2);
    let failed = db.failed_effects().await.unwrap();
    assert_eq!(failed.len(), 2);
    assert!(failed
        .iter()
        .all(|f| f.attempts == 1 && f.last_error.as_deref() == Some("refused #1")));

    for f in &failed {
        assert!(db
            .retry_failed_effect(&f.key, chrono::Utc::now())
            .await
            .unwrap());
    }
    let stats = run_due(&db, &refusing, &quick()).await.unwrap();
    assert_eq!(stats.done, 2, "the second run succeeds");
    assert!(db.failed_effects().await.unwrap().is_empty());
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let config = WorkerConfig::default();
    let wait = config.backoff("k", 1, Some(Duration::from_secs(600)));
    assert!(wait >= Duration::from_secs(600));
    let first = config.backoff("k", 1, None);
    let third = config.backoff("k", 3, None);
    assert!(first >= config.backoff_base && third > first);
    assert!(config.backoff("k", 60, None) <= config.backoff_cap + config.backoff_cap / 4);
}

struct Panicking;

#[async_trait]
impl EffectRunner for Panicking {
    async fn run(&self, _: &Candidate, _: &Effect) -> Result<(), RunError> {
        panic!("runner bug");
    }
}

#[tokio::test]
async fn a_panicking_runner_counts_as_a_retryable_failure() {
    let db = test_db();
    let c = reclaimed(&db, 1).await;
    let runner: Arc<dyn EffectRunner> = Arc::new(Panicking);
    // A retry far enough out that this drain never reaches it, however long the panic hook
    // takes to print a backtrace.
    let config = WorkerConfig {
        backoff_base: Duration::from_secs(60),
        backoff_cap: Duration::from_secs(120),
        ..quick()
    };
    let stats = run_due(&db, &runner, &config).await.unwrap();
    assert_eq!(
        stats.retried, 1,
        "the first effect panicked and will be retried"
    );
    let effects = db.effects_for(&c.id).await.unwrap();
    assert_eq!(effects[0].attempts, 1);
    assert!(effects[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("panicked"));
    assert_eq!(
        effects[1].attempts, 0,
        "the next one was not run, only released"
    );
    assert!(effects.iter().all(|e| e.state == EffectState::Pending));
}

/// Takes a while per run, to show shutdown waits for runs in flight.
struct Slow(Counting);

#[async_trait]
impl EffectRunner for Slow {
    async fn run(&self, candidate: &Candidate, effect: &Effect) -> Result<(), RunError> {
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.0.run(candidate, effect).await
    }
}

#[tokio::test]
async fn shutdown_lets_runs_in_flight_finish() {
    let db = test_db();
    let c = reclaimed(&db, 1).await;
    let slow = Arc::new(Slow(Counting::default()));
    let worker = Worker::start(db.store.clone(), slow.clone(), quick());
    tokio::time::sleep(Duration::from_millis(30)).await;
    worker.shutdown().await;
    let effects = db.effects_for(&c.id).await.unwrap();
    assert_eq!(
        effects[0].state,
        EffectState::Done,
        "the run in flight finished and was recorded"
    );
    let runs = slow.0.runs().len();
    let done = effects
        .iter()
        .filter(|e| e.state == EffectState::Done)
        .count();
    assert_eq!(runs, done, "every run that returned was recorded");
}

#[tokio::test]
async fn the_tick_runs_periodically_until_shutdown() {
    let db = test_db();
    let ticks = Arc::new(AtomicUsize::new(0));
    let counter = ticks.clone();
    let config = WorkerConfig {
        tick: Some(Tick::new(Duration::from_millis(20), move |_now| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        })),
        ..quick()
    };
    let worker = Worker::start(db.store.clone(), Arc::new(Counting::default()), config);
    wait_until("the tick ran three times", || {
        let n = ticks.load(Ordering::SeqCst);
        async move { n >= 3 }
    })
    .await;
    worker.shutdown().await;
    let after = ticks.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        ticks.load(Ordering::SeqCst),
        after,
        "no tick after shutdown"
    );
}
