//! Checkpoints off the commit path.
//!
//! In WAL mode a commit appends pages to the WAL; a checkpoint copies them back into the
//! database file and fsyncs it. Left to SQLite (`wal_autocheckpoint`), the commit that crosses
//! the threshold runs the whole checkpoint before it answers: tens of milliseconds for one
//! unlucky caller, the tail of every write's latency. Here a thread of its own, on its own
//! connection, runs a `PASSIVE` checkpoint shortly after commits happen (it never blocks the
//! writer or the readers), so the WAL stays short and no caller waits for the copy. The
//! writer keeps a much higher automatic threshold only as a backstop, for a WAL this thread
//! cannot keep up with.

use rusqlite::Connection;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the thread looks for new commits. Short enough that the WAL holds a fraction
/// of a second of writes; long enough that a busy writer's pages are copied once per round.
const ROUND: Duration = Duration::from_millis(200);

pub(crate) struct Checkpointer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing whenever `commits` (the writer's count of transactions) moved.
    pub fn start(conn: Connection, commits: Arc<AtomicU64>) -> std::io::Result<Checkpointer> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = stop.clone();
        // Nothing counts as checkpointed yet: the first round copies whatever the WAL holds
        // (the migrations just applied, the writes of a run that stopped abruptly). Reading
        // the count in the new thread instead let a thread that started late (a busy machine)
        // take the first commits as already copied and leave them in the WAL until the next.
        let seen = None;
        let thread = std::thread::Builder::new()
            .name("reclaim-sqlite-checkpoint".into())
            .spawn(move || run(&conn, &commits, seen, &flag))?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
        })
    }
}

fn run(
    conn: &Connection,
    commits: &AtomicU64,
    mut seen: Option<u64>,
    stop: &(Mutex<bool>, Condvar),
) {
    loop {
        {
            let (lock, wake) = stop;
            let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
            let (guard, _) = wake
                .wait_timeout_while(guard, ROUND, |stopped| !*stopped)
                .unwrap_or_else(|p| p.into_inner());
            if *guard {
                return;
            }
        }
        let now = commits.load(Ordering::Relaxed);
        if seen == Some(now) {
            continue;
        }
        // PASSIVE copies what no reader still needs and never waits for a lock; what it
        // cannot copy now (a reader's snapshot, a busy lock) is copied on a later round, even
        // if no commit comes in between: the round counts as done only once the whole WAL
        // was copied.
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
            ))
        }) {
            Ok((0, log, copied)) if copied >= log => seen = Some(now),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "background checkpoint failed; the next round tries again");
            }
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (lock, wake) = &*self.stop;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of table `t` in the database file alone, as a copy without its WAL reads them.
    fn rows_in_file(path: &std::path::Path) -> i64 {
        let copy = path.with_extension("copy");
        std::fs::copy(path, &copy).unwrap();
        let found = Connection::open(&copy)
            .and_then(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)))
            .unwrap_or(0);
        let _ = std::fs::remove_file(&copy);
        found
    }

    #[test]
    fn the_first_round_copies_what_the_wal_held_before_the_thread_started() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
            .unwrap();
        writer.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        writer
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1), (2);")
            .unwrap();
        assert_eq!(rows_in_file(&path), 0, "the rows are in the WAL only");
        // Those commits were counted before the checkpointer started, and no more come: a
        // thread that read the count late would take them as already copied.
        let commits = Arc::new(AtomicU64::new(7));
        let _checkpointer = Checkpointer::start(Connection::open(&path).unwrap(), commits).unwrap();
        let mut found = 0;
        for _ in 0..50 {
            std::thread::sleep(Duration::from_millis(100));
            found = rows_in_file(&path);
            if found == 2 {
                break;
            }
        }
        assert_eq!(found, 2, "the checkpointer copied them into the file");
        drop(writer);
    }
}
