//! The writer thread: the only connection that writes, and the group commit.
//!
//! Each write is a closure queued on a channel. The thread takes the first waiting write and
//! every other one already queued (up to `max_batch`), runs them in one `BEGIN IMMEDIATE`
//! transaction and commits once. A write that fails reports its own error; the others still
//! commit. Results are delivered only after the commit, so a caller never sees `Ok` for data
//! that is not durable.
//!
//! Nearly every failing write fails before it changes a row (a stale version, a missing
//! candidate), so there is nothing of it to undo, and the writes run without savepoints: a
//! savepoint journals every page a write touches, which cost a sixth of the writer's time. A
//! write that fails after changing rows can only be undone with the whole transaction: then
//! the transaction is rolled back and its writes run again, each in its own savepoint. A write
//! is therefore a closure that can run more than once; only the run that commits counts.

use reclaim_workflow::ports::StoreError;
use rusqlite::Connection;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::{oneshot, Notify};

/// What a write closure hands back: its value, and whether it queued effects for the worker.
#[derive(Debug)]
pub(crate) struct WriteOutcome<T> {
    pub value: T,
    pub wakes_worker: bool,
}

impl<T> WriteOutcome<T> {
    pub fn new(value: T) -> Self {
        WriteOutcome {
            value,
            wakes_worker: false,
        }
    }

    pub fn waking(value: T, wakes_worker: bool) -> Self {
        WriteOutcome {
            value,
            wakes_worker,
        }
    }
}

trait Job: Send {
    /// Runs the write; `Some(wakes)` when it should be kept, `None` to roll it back.
    fn run(&mut self, conn: &Connection) -> Option<bool>;
    /// Delivers the result once the fate of the transaction is known.
    fn finish(self: Box<Self>, commit: Result<(), String>);
}

struct Typed<T, F> {
    f: F,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Typed<T, F>
where
    T: Send,
    F: FnMut(&Connection) -> Result<WriteOutcome<T>, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) -> Option<bool> {
        let f = &mut self.f;
        let result = catch_unwind(AssertUnwindSafe(|| f(conn)))
            .unwrap_or_else(|_| Err(StoreError::Unavailable("a write panicked".into())));
        match result {
            Ok(out) => {
                self.result = Some(Ok(out.value));
                Some(out.wakes_worker)
            }
            Err(e) => {
                self.result = Some(Err(e));
                None
            }
        }
    }

    fn finish(self: Box<Self>, commit: Result<(), String>) {
        let result = match (self.result, commit) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (_, Err(why)) => Err(StoreError::Unavailable(why)),
            (None, Ok(())) => Err(StoreError::Unavailable("the write did not run".into())),
        };
        // The caller may have gone away (request canceled); the write stands regardless.
        let _ = self.reply.send(result);
    }
}

type BoxedJob = Box<dyn Job>;

/// What the writer runs in every transaction after its writes and before it commits (the
/// store's deferred work, e.g. the savings moves); its failure fails the whole transaction.
pub(crate) type BeforeCommit = fn(&Connection) -> Result<(), StoreError>;

/// Counters of the writer's work, for benchmarks and diagnostics.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Shared with the checkpointer, which checkpoints when it moved.
    transactions: Arc<AtomicU64>,
    writes: AtomicU64,
}

/// How much the group commit grouped: writes per committed transaction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Transactions committed.
    pub transactions: u64,
    /// Writes those transactions carried (each a commit, insert, task update...).
    pub writes: u64,
}

pub(crate) struct Writer {
    tx: Option<mpsc::Sender<BoxedJob>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl Writer {
    pub fn start(
        conn: Connection,
        max_batch: usize,
        notify: Arc<Notify>,
        before_commit: BeforeCommit,
    ) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel::<BoxedJob>();
        let counters = Arc::new(Counters::default());
        let shared = counters.clone();
        let thread = std::thread::Builder::new()
            .name("reclaim-sqlite-writer".into())
            .spawn(move || writer_loop(&conn, &rx, max_batch, &notify, &shared, before_commit))?;
        Ok(Writer {
            tx: Some(tx),
            thread: Some(thread),
            counters,
        })
    }

    /// The count of committed transactions, which the checkpointer watches.
    pub fn commits(&self) -> Arc<AtomicU64> {
        self.counters.transactions.clone()
    }

    pub fn stats(&self) -> WriteStats {
        WriteStats {
            transactions: self.counters.transactions.load(Ordering::Relaxed),
            writes: self.counters.writes.load(Ordering::Relaxed),
        }
    }

    pub async fn submit<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<WriteOutcome<T>, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job: BoxedJob = Box::new(Typed {
            f,
            result: None,
            reply,
        });
        let stopped = || StoreError::Unavailable("the database writer has stopped".into());
        self.tx
            .as_ref()
            .ok_or_else(stopped)?
            .send(job)
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel lets the thread finish what is queued and close the connection;
        // waiting for it means a store reopened right after sees every write.
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn writer_loop(
    conn: &Connection,
    rx: &mpsc::Receiver<BoxedJob>,
    max_batch: usize,
    notify: &Notify,
    counters: &Counters,
    before_commit: BeforeCommit,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = VecDeque::with_capacity(16);
        batch.push_back(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push_back(job),
                Err(_) => break,
            }
        }
        run_batch(conn, batch, notify, counters, before_commit);
    }
}

fn exec(conn: &Connection, sql: &str) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn run_batch(
    conn: &Connection,
    mut queue: VecDeque<BoxedJob>,
    notify: &Notify,
    counters: &Counters,
    before_commit: BeforeCommit,
) {
    // Set once a write failed after changing rows: from then on each write of this batch runs
    // in its own savepoint, so one write's failure is undone alone.
    let mut savepoints = false;
    while !queue.is_empty() {
        if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
            let why = format!("cannot start a write transaction: {e}");
            for job in queue {
                job.finish(Err(why.clone()));
            }
            return;
        }
        let grouped = queue.len() > 1;
        let isolated = grouped && savepoints;
        let mut ran: Vec<BoxedJob> = Vec::with_capacity(queue.len());
        let mut wake = false;
        let mut lost: Option<String> = None;
        let mut again = false;
        while let Some(mut job) = queue.pop_front() {
            if isolated {
                if let Err(e) = exec(conn, "SAVEPOINT w") {
                    lost = Some(format!("cannot start a savepoint: {e}"));
                    queue.push_front(job);
                    break;
                }
            }
            let changes = conn.total_changes();
            let kept = job.run(conn);
            if conn.is_autocommit() {
                // SQLite rolled the whole transaction back (an I/O error, a full disk): the
                // writes before this one are gone too.
                ran.push(job);
                lost = Some("the transaction was rolled back by the database".into());
                break;
            }
            let settled = match kept {
                Some(w) => {
                    wake |= w;
                    if isolated {
                        exec(conn, "RELEASE w")
                    } else {
                        Ok(())
                    }
                }
                None if isolated => {
                    exec(conn, "ROLLBACK TO w").and_then(|()| exec(conn, "RELEASE w"))
                }
                // The only write of this transaction failed: undo it whole.
                None if !grouped => exec(conn, "ROLLBACK"),
                // It failed before changing a row: nothing of it to undo.
                None if conn.total_changes() == changes => Ok(()),
                // It changed rows, then failed: only the transaction can undo them.
                None => {
                    ran.push(job);
                    again = true;
                    break;
                }
            };
            ran.push(job);
            if let Err(e) = settled {
                lost = Some(format!("cannot settle a savepoint: {e}"));
                break;
            }
        }
        if again {
            match exec(conn, "ROLLBACK") {
                Ok(()) => {
                    // Every write of the transaction runs again, in order, each isolated.
                    for job in ran.into_iter().rev() {
                        queue.push_front(job);
                    }
                    savepoints = true;
                    continue;
                }
                Err(e) => lost = Some(format!("cannot roll back a failed write: {e}")),
            }
        }
        if let Some(why) = lost {
            if !conn.is_autocommit() {
                let _ = exec(conn, "ROLLBACK");
            }
            for job in ran {
                job.finish(Err(why.clone()));
            }
            continue;
        }
        if conn.is_autocommit() {
            // Rolled back above: nothing to commit, each job reports its own error.
            for job in ran {
                job.finish(Ok(()));
            }
            continue;
        }
        if let Err(e) = before_commit(conn) {
            let _ = exec(conn, "ROLLBACK");
            let why = format!("cannot settle the transaction: {e}");
            for job in ran {
                job.finish(Err(why.clone()));
            }
            continue;
        }
        match exec(conn, "COMMIT") {
            Ok(()) => {
                counters.transactions.fetch_add(1, Ordering::Relaxed);
                counters
                    .writes
                    .fetch_add(ran.len() as u64, Ordering::Relaxed);
                for job in ran {
                    job.finish(Ok(()));
                }
                if wake {
                    notify.notify_one();
                }
            }
            Err(e) => {
                if !conn.is_autocommit() {
                    let _ = exec(conn, "ROLLBACK");
                }
                let why = format!("commit failed: {e}");
                for job in ran {
                    job.finish(Err(why.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A queued write inserting `keys` in order, counting its runs; its reply's receiver.
    fn inserting(
        keys: &'static [&'static str],
        runs: &Arc<AtomicUsize>,
    ) -> (BoxedJob, oneshot::Receiver<Result<(), StoreError>>) {
        let runs = runs.clone();
        let (reply, rx) = oneshot::channel();
        let f = move |conn: &Connection| {
            runs.fetch_add(1, Ordering::Relaxed);
            for k in keys {
                conn.execute("INSERT INTO t (k) VALUES (?1)", [k])
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            }
            Ok(WriteOutcome::new(()))
        };
        let job: BoxedJob = Box::new(Typed {
            f,
            result: None,
            reply,
        });
        (job, rx)
    }

    fn keys(conn: &Connection) -> Vec<String> {
        conn.prepare("SELECT k FROM t ORDER BY k")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    type Reply = oneshot::Receiver<Result<(), StoreError>>;

    fn batch(
        conn: &Connection,
        jobs: Vec<(BoxedJob, Reply)>,
    ) -> (Vec<Result<(), StoreError>>, Counters) {
        batch_settled_by(conn, jobs, |_| Ok(()))
    }

    fn batch_settled_by(
        conn: &Connection,
        jobs: Vec<(BoxedJob, Reply)>,
        before_commit: BeforeCommit,
    ) -> (Vec<Result<(), StoreError>>, Counters) {
        let counters = Counters::default();
        let (queue, replies): (VecDeque<_>, Vec<_>) = jobs.into_iter().unzip();
        run_batch(conn, queue, &Notify::new(), &counters, before_commit);
        let results = replies
            .into_iter()
            .map(|mut rx| rx.try_recv().unwrap())
            .collect();
        (results, counters)
    }

    fn table() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY)")
            .unwrap();
        conn
    }

    #[test]
    fn a_write_failing_after_it_changed_rows_is_undone_alone_and_the_others_commit() {
        let conn = table();
        let runs: Vec<_> = (0..3).map(|_| Arc::new(AtomicUsize::new(0))).collect();
        let (results, counters) = batch(
            &conn,
            vec![
                inserting(&["a"], &runs[0]),
                // Inserts "b", then fails on "a": its "b" must not stay.
                inserting(&["b", "a"], &runs[1]),
                inserting(&["c"], &runs[2]),
            ],
        );
        assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
        assert!(results[1].is_err(), "{results:?}");
        assert_eq!(keys(&conn), ["a", "c"]);
        // The first run was rolled back whole; the second, isolated, is the one that counts.
        let counts: Vec<_> = runs.iter().map(|r| r.load(Ordering::Relaxed)).collect();
        assert_eq!(counts, [2, 2, 1]);
        assert_eq!(counters.transactions.load(Ordering::Relaxed), 1);
        assert_eq!(counters.writes.load(Ordering::Relaxed), 3);
        assert!(conn.is_autocommit());
    }

    #[test]
    fn a_write_failing_before_it_changed_rows_costs_the_others_nothing() {
        let conn = table();
        conn.execute("INSERT INTO t (k) VALUES ('a')", []).unwrap();
        let runs: Vec<_> = (0..3).map(|_| Arc::new(AtomicUsize::new(0))).collect();
        let (results, counters) = batch(
            &conn,
            vec![
                inserting(&["b"], &runs[0]),
                inserting(&["a"], &runs[1]),
                inserting(&["c"], &runs[2]),
            ],
        );
        assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
        assert!(results[1].is_err(), "{results:?}");
        assert_eq!(keys(&conn), ["a", "b", "c"]);
        let counts: Vec<_> = runs.iter().map(|r| r.load(Ordering::Relaxed)).collect();
        assert_eq!(counts, [1, 1, 1], "each write ran once");
        assert_eq!(counters.transactions.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn what_runs_before_the_commit_sees_every_write_and_its_failure_fails_them_all() {
        let conn = table();
        let runs = Arc::new(AtomicUsize::new(0));
        let (results, counters) = batch_settled_by(
            &conn,
            vec![inserting(&["a"], &runs), inserting(&["b"], &runs)],
            |conn| {
                let n: i64 = conn
                    .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                Err(StoreError::Unavailable(format!("{n} rows")))
            },
        );
        for r in &results {
            assert!(
                matches!(r, Err(StoreError::Unavailable(why)) if why.contains("2 rows")),
                "{r:?}"
            );
        }
        assert!(keys(&conn).is_empty());
        assert_eq!(counters.transactions.load(Ordering::Relaxed), 0);
        assert!(conn.is_autocommit());
    }

    #[test]
    fn a_lone_write_failing_after_it_changed_rows_leaves_nothing() {
        let conn = table();
        let runs = Arc::new(AtomicUsize::new(0));
        let (results, counters) = batch(&conn, vec![inserting(&["b", "b"], &runs)]);
        assert!(results[0].is_err());
        assert!(keys(&conn).is_empty());
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        assert_eq!(counters.transactions.load(Ordering::Relaxed), 0);
    }
}
