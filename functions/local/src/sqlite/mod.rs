//! The SQLite store: one database file in WAL mode, one writer thread that group-commits, and
//! a small pool of reader connections.
//!
//! Why this shape: SQLite allows one writer at a time, so every write goes to a dedicated
//! thread over a channel. That thread takes every write that is waiting, runs them in one
//! transaction and commits once: a conditional write that loses still loses alone (see
//! [`writer`] for how without a savepoint each), but a busy server pays for one commit per batch
//! instead of one per request.
//! Reads never wait for the writer (WAL gives them a snapshot); they run on pooled connections
//! in `spawn_blocking` so the async runtime never blocks on disk.

mod candidates;
mod checkpoint;
mod codec;
mod directory;
mod runs;
mod schema;
mod sessions;
mod tasks;
mod writer;

use reclaim_workflow::ports::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};

pub use schema::SCHEMA_VERSION;

pub(crate) use codec::{from_json, from_millis, millis, sql_error};
pub(crate) use writer::WriteOutcome;
pub use writer::WriteStats;

/// When a commit is durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous = NORMAL`: a commit is written to the WAL but not fsynced; a power cut may
    /// lose the last commits, never corrupt the file. SQLite's recommended setting for WAL.
    #[default]
    Normal,
    /// `synchronous = FULL`: every commit waits for an fsync of the WAL. Group commit pays
    /// one fsync for all the writes it batches.
    Full,
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        }
    }
}

/// Tuning knobs; the defaults suit `reclaim serve` on a laptop.
#[derive(Clone, Debug)]
pub struct Options {
    pub durability: Durability,
    /// How long a connection waits for another process's lock (e.g. a CLI import while
    /// `reclaim serve` runs) before the call fails as `Unavailable`.
    pub busy_timeout: Duration,
    /// At most this many waiting writes share one transaction (group commit).
    pub max_batch: usize,
    /// Reads that run at once, each on its own pooled connection. More callers wait for a
    /// connection rather than open and close extra ones.
    pub max_readers: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Normal,
            busy_timeout: Duration::from_secs(5),
            max_batch: 256,
            max_readers: std::thread::available_parallelism()
                .map_or(4, |n| n.get() * 2)
                .clamp(2, 16),
        }
    }
}

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer build: opening it could lose data, so we refuse.
    #[error("database {path} has schema version {found}; this build knows up to {supported}")]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("cannot start the database writer: {0}")]
    Writer(#[source] std::io::Error),
}

/// The embedded store: candidates, history, tasks, directory, rules, the effects outbox and the
/// mail outbox, all in one file. Cheap to clone; every clone shares the same writer and pool.
#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    path: PathBuf,
    options: Options,
    readers: Mutex<Vec<Connection>>,
    reader_permits: Arc<Semaphore>,
    writer: writer::Writer,
    /// Dropped after the writer (fields drop in order): its connection closes last, and
    /// closing the last connection checkpoints whatever is left.
    _checkpointer: checkpoint::Checkpointer,
    /// Poked after every commit that queued effects, so the worker wakes without polling.
    pub(crate) outbox_ready: Arc<Notify>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

/// WAL pages after which a commit copies the WAL back into the database (a checkpoint, the
/// only step that fsyncs under `Durability::Normal`). Larger than SQLite's 1000 so that pages
/// written many times between checkpoints are copied once and fsyncs are rarer; the WAL stays
/// under about 40 MB. The store's writer leaves checkpoints to a thread of its own
/// ([`checkpoint`]) and keeps [`WAL_BACKSTOP_PAGES`] instead.
pub const WAL_AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// The store writer's automatic checkpoint threshold: reached only when the background
/// checkpoints cannot keep up (a reader holding an old snapshot for long); about 400 MB.
pub const WAL_BACKSTOP_PAGES: u32 = 100_000;

/// Opens a connection with the pragmas every connection of the store shares (and that the
/// benchmark's raw-rate connection uses, so the comparison is fair).
///
/// `synchronous = NORMAL` (the default [`Durability`]) is safe in WAL mode: a power cut can
/// lose the last commits that were not yet checkpointed, but never corrupts the file; in
/// exchange a commit does not wait for an fsync. That is the trade SQLite itself recommends
/// for WAL.
pub fn connect(path: &Path, options: &Options) -> Result<Connection, rusqlite::Error> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(options.busy_timeout)?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "journal_mode stayed {mode}: WAL is required"
        )));
    }
    conn.pragma_update(None, "synchronous", options.durability.pragma())?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
    // 16 MB of page cache per connection (negative = KiB): the hot part of the candidates
    // table and its indexes stays in memory.
    conn.pragma_update(None, "cache_size", -16_384)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl SqliteStore {
    /// Opens (or creates) the database at `path` and brings its schema up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, OpenError> {
        SqliteStore::open_with(path, Options::default())
    }

    pub fn open_with(path: impl AsRef<Path>, options: Options) -> Result<SqliteStore, OpenError> {
        let path = path.as_ref().to_path_buf();
        let sqlite = |source| OpenError::Sqlite {
            path: path.clone(),
            source,
        };
        let mut conn = connect(&path, &options).map_err(sqlite)?;
        conn.execute_batch(candidates::SAVINGS_MOVES)
            .map_err(sqlite)?;
        schema::migrate(&mut conn, &path)?;
        conn.pragma_update(None, "wal_autocheckpoint", WAL_BACKSTOP_PAGES)
            .map_err(sqlite)?;
        let checkpoints = connect(&path, &options).map_err(sqlite)?;
        let outbox_ready = Arc::new(Notify::new());
        let reader_permits = Arc::new(Semaphore::new(options.max_readers.max(1)));
        let writer = writer::Writer::start(
            conn,
            options.max_batch.max(1),
            outbox_ready.clone(),
            candidates::settle_savings,
        )
        .map_err(OpenError::Writer)?;
        let checkpointer = checkpoint::Checkpointer::start(checkpoints, writer.commits())
            .map_err(OpenError::Writer)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                options,
                readers: Mutex::new(Vec::new()),
                reader_permits,
                writer,
                _checkpointer: checkpointer,
                outbox_ready,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Copies the database to a new file with SQLite's online backup, while others keep
    /// reading and writing: the copy is the database as of one moment (every page is copied
    /// in one step under one read snapshot, which WAL lets writers go on beside). Returns the
    /// number of pages copied. The copy is written beside its final name and renamed, so a
    /// failed backup leaves no half file behind.
    pub async fn backup_to(&self, to: &Path) -> Result<u64, StoreError> {
        let (from, to) = (self.inner.path.clone(), to.to_path_buf());
        let options = self.inner.options.clone();
        tokio::task::spawn_blocking(move || {
            let mut partial = to.clone().into_os_string();
            partial.push(".partial");
            let partial = PathBuf::from(partial);
            let _ = std::fs::remove_file(&partial);
            let src = connect(&from, &options).map_err(codec::sql_error)?;
            let mut dst = Connection::open(&partial).map_err(codec::sql_error)?;
            let pages = {
                let backup =
                    rusqlite::backup::Backup::new(&src, &mut dst).map_err(codec::sql_error)?;
                match backup.step(-1).map_err(codec::sql_error)? {
                    rusqlite::backup::StepResult::Done => {}
                    other => {
                        return Err(StoreError::Unavailable(format!(
                            "the backup could not finish ({other:?}); try again"
                        )))
                    }
                }
                backup.progress().pagecount
            };
            drop(dst);
            std::fs::rename(&partial, &to).map_err(|e| {
                StoreError::Unavailable(format!("cannot write {}: {e}", to.display()))
            })?;
            Ok(u64::try_from(pages).unwrap_or(0))
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("backup task: {e}")))?
    }

    /// How many writes shared each transaction so far (group commit at work).
    pub fn write_stats(&self) -> WriteStats {
        self.inner.writer.stats()
    }

    /// Notified after each commit that queued effects; the worker waits on it.
    pub fn outbox_notify(&self) -> Arc<Notify> {
        self.inner.outbox_ready.clone()
    }

    /// Runs `f` on a pooled reader connection off the async threads.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        let permit = inner
            .reader_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable("the store is closing".into()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = inner.take_reader()?;
            let result = f(&conn);
            inner.put_reader(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("read task failed: {e}")))?
    }

    /// Runs a read of one row by its key on the calling thread when a pooled connection is
    /// idle, else as [`read`](Self::read) does. Such a read takes microseconds when its pages
    /// are cached; handing it to the blocking pool and back takes two thread switches, which
    /// cost more than the read and, with 64 transitions in flight, a quarter of their
    /// throughput (BENCHMARKS.md, "Embedded store"). Only a connection already open is used
    /// here: opening one touches the file's locks, and that waits on the pool.
    pub(crate) async fn read_point<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if let Ok(permit) = self.inner.reader_permits.clone().try_acquire_owned() {
            if let Some(conn) = self.inner.idle_reader() {
                let result = f(&conn);
                self.inner.put_reader(conn);
                drop(permit);
                return result;
            }
        }
        self.read(f).await
    }

    /// Queues `f` for the writer thread; it runs in a (possibly shared) transaction, and its
    /// result is delivered only after that transaction commits. `f` may run more than once (see
    /// [`writer`]): it must only read what it captured, never move it out.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<WriteOutcome<T>, StoreError> + Send + 'static,
    {
        self.inner.writer.submit(f).await
    }
}

impl Inner {
    fn idle_reader(&self) -> Option<Connection> {
        self.readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop()
    }

    fn take_reader(&self) -> Result<Connection, StoreError> {
        match self.idle_reader() {
            Some(conn) => Ok(conn),
            None => {
                let conn = connect(&self.path, &self.options).map_err(sql_error)?;
                conn.pragma_update(None, "query_only", "ON")
                    .map_err(sql_error)?;
                Ok(conn)
            }
        }
    }

    fn put_reader(&self, conn: Connection) {
        let mut idle = self
            .readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < self.options.max_readers {
            idle.push(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn reading_thread(store: &SqliteStore) -> std::thread::ThreadId {
        store
            .read_point(|_| Ok(std::thread::current().id()))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_point_read_runs_in_place_on_an_idle_connection_and_in_the_pool_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_with(
            dir.path().join("points.db"),
            Options {
                max_readers: 1,
                ..Options::default()
            },
        )
        .unwrap();
        let here = std::thread::current().id();
        // No connection is open yet: the pool opens one, off this thread.
        assert_ne!(reading_thread(&store).await, here);
        // It is idle now: the next read runs here.
        assert_eq!(reading_thread(&store).await, here);
        // The only reader is busy: the read waits for it in the pool, never opens one here.
        let held = store
            .inner
            .reader_permits
            .clone()
            .acquire_owned()
            .await
            .unwrap();
        let waiting = tokio::spawn({
            let store = store.clone();
            async move { reading_thread(&store).await }
        });
        tokio::task::yield_now().await;
        drop(held);
        assert_ne!(waiting.await.unwrap(), here);
    }
}
