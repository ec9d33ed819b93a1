//! The effects worker: runs what transitions left in the outbox, after they committed.
//!
//! Guarantees, and how:
//! - **At least once.** A row is marked done only after its run returns. A worker stopped
//!   mid-run (dropped, crashed, killed) leaves the row pending; the next worker releases old
//!   claims on start and runs it. Effects are idempotent by key, so a second run is harmless.
//! - **In order per candidate.** Effects of one candidate run in commit order; a retrying effect
//!   holds back the later effects of its candidate until it is done or has failed.
//! - **Prompt.** The store pokes a [`Notify`](tokio::sync::Notify) after each commit that
//!   queued effects; a periodic poll covers retries that come due and other processes' commits.
//! - **Bounded retries.** Retryable errors back off exponentially (with jitter, never sooner
//!   than the error's own retry-after); after `max_attempts` the row is marked failed with its
//!   error and listed by [`SqliteStore::failed_effects`]. Permanent errors fail at once.
//!
//! The worker also carries the scheduler tick (reminders, deadlines, retries of revocations):
//! give [`WorkerConfig::tick`] a callback and it is called every period until shutdown.

use crate::outbox::{by_candidate, OutboxEntry};
use crate::sqlite::SqliteStore;
use async_trait::async_trait;
use reclaim_workflow::ports::{Clock, MailError, StoreError, SystemClock};
use reclaim_workflow::{Candidate, Effect, Timestamp};
use std::fmt;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

/// Why running an effect failed, classified so the worker knows whether to try again.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Trying again later may work (mail server down, database busy).
    #[error("{message}")]
    Retryable {
        message: String,
        /// Not before this long (a service's Retry-After).
        retry_after: Option<Duration>,
    },
    /// Trying again will not help (a bad address, a record that no longer fits).
    #[error("{0}")]
    Permanent(String),
}

impl RunError {
    pub fn retryable(message: impl Into<String>) -> RunError {
        RunError::Retryable {
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn permanent(message: impl Into<String>) -> RunError {
        RunError::Permanent(message.into())
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, RunError::Retryable { .. })
    }
}

impl From<StoreError> for RunError {
    fn from(e: StoreError) -> RunError {
        if e.is_retryable() {
            RunError::retryable(e.to_string())
        } else {
            RunError::permanent(e.to_string())
        }
    }
}

impl From<MailError> for RunError {
    fn from(e: MailError) -> RunError {
        if e.is_retryable() {
            RunError::retryable(e.to_string())
        } else {
            RunError::permanent(e.to_string())
        }
    }
}

/// What the worker calls for each effect: the application implements it (render and send
/// mail, open tasks, run the revoker and record its outcome). It must be idempotent by
/// `effect.key`, since an effect can run more than once.
#[async_trait]
pub trait EffectRunner: Send + Sync {
    /// `candidate` is the candidate as the effect's transition left it.
    async fn run(&self, candidate: &Candidate, effect: &Effect) -> Result<(), RunError>;
}

/// The periodic callback (the scheduler tick), given the current time.
pub type TickFn = Arc<dyn Fn(Timestamp) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// A periodic callback and its period.
#[derive(Clone)]
pub struct Tick {
    pub every: Duration,
    pub call: TickFn,
}

impl Tick {
    /// Wraps an async closure: `Tick::new(Duration::from_secs(60), move |now| { ... async {} })`.
    pub fn new<F, Fut>(every: Duration, f: F) -> Tick
    where
        F: Fn(Timestamp) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Tick {
            every,
            call: Arc::new(move |now| Box::pin(f(now))),
        }
    }
}

impl fmt::Debug for Tick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tick")
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

/// How the worker paces itself.
#[derive(Clone)]
pub struct WorkerConfig {
    /// Effects claimed per round.
    pub batch: u32,
    /// Candidates whose effects run at the same time.
    pub concurrency: usize,
    /// Look at the outbox at least this often even without a poke.
    pub poll_interval: Duration,
    /// A claim not settled within this time is considered abandoned and runs again.
    pub lease: Duration,
    /// Runs of one effect before it is marked failed. With the default backoff (2 s doubling,
    /// capped at 30 minutes) the default 20 rides out about five hours of a mail server or
    /// disk being unavailable before a message is given up on.
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    pub tick: Option<Tick>,
    /// More periodic jobs, each on its own period (the usage connectors' look for due runs).
    pub also: Vec<Tick>,
    pub clock: Arc<dyn Clock>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            batch: 64,
            concurrency: 8,
            poll_interval: Duration::from_secs(2),
            lease: Duration::from_secs(15 * 60),
            max_attempts: 20,
            backoff_base: Duration::from_secs(2),
            backoff_cap: Duration::from_secs(30 * 60),
            tick: None,
            also: Vec::new(),
            clock: Arc::new(SystemClock),
        }
    }
}

impl fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerConfig")
            .field("batch", &self.batch)
            .field("concurrency", &self.concurrency)
            .field("poll_interval", &self.poll_interval)
            .field("lease", &self.lease)
            .field("max_attempts", &self.max_attempts)
            .field("backoff_base", &self.backoff_base)
            .field("backoff_cap", &self.backoff_cap)
            .field("tick", &self.tick)
            .finish_non_exhaustive()
    }
}

impl WorkerConfig {
    /// The wait before attempt `attempts + 1`, after `attempts` failed runs.
    pub fn backoff(&self, key: &str, attempts: u32, retry_after: Option<Duration>) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let base = self
            .backoff_base
            .saturating_mul(1u32 << exp)
            .min(self.backoff_cap);
        // Up to a quarter more, derived from the key so retries of many effects spread out
        // and a test sees the same numbers every time.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (key, attempts).hash(&mut h);
        let quarter = base / 4;
        let jitter = if quarter.is_zero() {
            Duration::ZERO
        } else {
            let nanos = u64::try_from(quarter.as_nanos()).unwrap_or(u64::MAX);
            Duration::from_nanos(h.finish() % nanos.max(1))
        };
        (base + jitter).max(retry_after.unwrap_or_default())
    }
}

/// What one call to [`run_due`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrainStats {
    pub done: u64,
    pub retried: u64,
    pub failed: u64,
}

impl DrainStats {
    fn add(&mut self, other: DrainStats) {
        self.done += other.done;
        self.retried += other.retried;
        self.failed += other.failed;
    }
}

/// A running worker. [`Worker::shutdown`] stops it cleanly (runs in flight finish);
/// dropping it stops it at once (runs in flight are abandoned and run again after restart).
pub struct Worker {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("tasks", &self.tasks.len())
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Starts draining the outbox (and ticking, if configured) on the current tokio runtime.
    /// Local mode runs one worker per database file: on start it takes over the claims a
    /// previous worker left behind.
    pub fn start(
        store: SqliteStore,
        runner: Arc<dyn EffectRunner>,
        config: WorkerConfig,
    ) -> Worker {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        for tick in config.tick.iter().chain(&config.also) {
            tasks.push(tokio::spawn(tick_loop(
                tick.clone(),
                config.clock.clone(),
                stopped.clone(),
            )));
        }
        tasks.push(tokio::spawn(drain_loop(store, runner, config, stopped)));
        Worker { stop, tasks }
    }

    /// Stops claiming new effects, lets the runs in flight finish, and waits for them.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn tick_loop(tick: Tick, clock: Arc<dyn Clock>, mut stopped: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(tick.every.max(Duration::from_millis(10)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => (tick.call)(clock.now()).await,
            changed = stopped.changed() => {
                if changed.is_err() || *stopped.borrow() {
                    return;
                }
            }
        }
    }
}

async fn drain_loop(
    store: SqliteStore,
    runner: Arc<dyn EffectRunner>,
    config: WorkerConfig,
    mut stopped: watch::Receiver<bool>,
) {
    let notify = store.outbox_notify();
    if let Err(e) = store.release_all_claims().await {
        tracing::warn!(error = %e, "cannot release old outbox claims");
    }
    loop {
        if *stopped.borrow() {
            return;
        }
        if let Err(e) = drain(&store, &runner, &config, Some(&stopped)).await {
            tracing::warn!(error = %e, "outbox drain failed; will retry");
        }
        let wait = match store.next_effect_due().await {
            Ok(Some(at)) => (at - config.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(config.poll_interval),
            _ => config.poll_interval,
        };
        tokio::select! {
            _ = notify.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            changed = stopped.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// Runs every effect that is due now, round after round, until none is left. For the CLI's
/// one-shot commands and for tests; the worker calls the same thing.
pub async fn run_due(
    store: &SqliteStore,
    runner: &Arc<dyn EffectRunner>,
    config: &WorkerConfig,
) -> Result<DrainStats, StoreError> {
    drain(store, runner, config, None).await
}

async fn drain(
    store: &SqliteStore,
    runner: &Arc<dyn EffectRunner>,
    config: &WorkerConfig,
    stopped: Option<&watch::Receiver<bool>>,
) -> Result<DrainStats, StoreError> {
    let mut total = DrainStats::default();
    loop {
        if stopped.is_some_and(|s| *s.borrow()) {
            return Ok(total);
        }
        let claimed = store
            .claim_effects(config.clock.now(), config.batch.max(1), config.lease)
            .await?;
        if claimed.is_empty() {
            return Ok(total);
        }
        total.add(run_claimed(store, runner, config, claimed).await);
    }
}

async fn run_claimed(
    store: &SqliteStore,
    runner: &Arc<dyn EffectRunner>,
    config: &WorkerConfig,
    claimed: Vec<OutboxEntry>,
) -> DrainStats {
    let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let mut running = JoinSet::new();
    let mut groups = Vec::new();
    for group in by_candidate(claimed) {
        let progress = Arc::new(AtomicUsize::new(0));
        let keys: Vec<(String, u32)> = group.iter().map(|e| (e.key.clone(), e.attempts)).collect();
        let (store2, runner2, config2, permits2, progress2) = (
            store.clone(),
            runner.clone(),
            config.clone(),
            permits.clone(),
            progress.clone(),
        );
        let id = running.spawn(async move {
            let _permit = permits2.acquire_owned().await;
            run_group(&store2, &runner2, &config2, group, &progress2).await
        });
        groups.push((id.id(), keys, progress));
    }
    let mut stats = DrainStats::default();
    while let Some(joined) = running.join_next_with_id().await {
        match joined {
            Ok((_, s)) => stats.add(s),
            Err(e) => {
                // The runner panicked: count it against the effect that was running, and free
                // the ones after it so they run in a later round.
                let Some((_, keys, progress)) = groups.iter().find(|(id, ..)| *id == e.id()) else {
                    continue;
                };
                let at = progress.load(Ordering::SeqCst);
                for (i, (key, attempts)) in keys.iter().enumerate().skip(at) {
                    if i == at {
                        let failure =
                            RunError::retryable(format!("the effect runner panicked: {e}"));
                        let s = settle(store, config, key, *attempts, Err(failure)).await;
                        stats.add(s);
                    } else if let Err(e) = store.release_effect(key).await {
                        tracing::warn!(key, error = %e, "cannot release an effect claim");
                    }
                }
            }
        }
    }
    stats
}

async fn run_group(
    store: &SqliteStore,
    runner: &Arc<dyn EffectRunner>,
    config: &WorkerConfig,
    group: Vec<OutboxEntry>,
    progress: &AtomicUsize,
) -> DrainStats {
    let mut stats = DrainStats::default();
    let mut held_back = false;
    for (i, entry) in group.iter().enumerate() {
        if held_back {
            if let Err(e) = store.release_effect(&entry.key).await {
                tracing::warn!(key = entry.key, error = %e, "cannot release an effect claim");
            }
            continue;
        }
        progress.store(i, Ordering::SeqCst);
        let result = runner.run(&entry.candidate, &entry.effect).await;
        let s = settle(store, config, &entry.key, entry.attempts, result).await;
        // A retry later holds back this candidate's later effects (they must follow it).
        held_back = s.retried > 0;
        stats.add(s);
    }
    stats
}

async fn settle(
    store: &SqliteStore,
    config: &WorkerConfig,
    key: &str,
    attempts_before: u32,
    result: Result<(), RunError>,
) -> DrainStats {
    let now = config.clock.now();
    let attempts = attempts_before.saturating_add(1);
    let (outcome, stats) = match result {
        Ok(()) => (
            store.complete_effect(key, now).await,
            DrainStats {
                done: 1,
                ..DrainStats::default()
            },
        ),
        Err(RunError::Retryable {
            message,
            retry_after,
        }) if attempts < config.max_attempts.max(1) => {
            let wait = config.backoff(key, attempts, retry_after);
            let at = chrono::Duration::from_std(wait)
                .ok()
                .and_then(|d| now.checked_add_signed(d))
                .unwrap_or(now + chrono::Duration::days(1));
            tracing::info!(key, attempts, error = %message, "effect will be retried");
            (
                store.retry_effect(key, at, &message).await,
                DrainStats {
                    retried: 1,
                    ..DrainStats::default()
                },
            )
        }
        Err(e) => {
            let why = if e.is_retryable() {
                format!("gave up after {attempts} attempts: {e}")
            } else {
                e.to_string()
            };
            tracing::warn!(key, error = %why, "effect failed");
            (
                store.fail_effect(key, now, &why).await,
                DrainStats {
                    failed: 1,
                    ..DrainStats::default()
                },
            )
        }
    };
    if let Err(e) = outcome {
        // The claim stays until its lease ends; then the effect runs again (at least once).
        tracing::warn!(key, error = %e, "cannot record an effect's result");
    }
    stats
}
