//! # reclaim-local
//!
//! Reclaim on one machine: the adapters behind `reclaim serve`.
//!
//! - [`SqliteStore`] — one SQLite file (WAL) implementing every store port of
//!   [`reclaim_workflow::ports`]: candidates with their history, tasks, the directory and the
//!   rules. A transition's [`commit`](reclaim_workflow::ports::CandidateWrite::commit) writes the
//!   candidate conditionally on its old version, its history entry and its effects (the
//!   outbox) in one transaction. Concurrent writes are group-committed by one writer thread.
//! - [`OutboxMailer`] — the local [`Mailer`](reclaim_workflow::ports::Mailer): every rendered
//!   message is kept in the same file, for the outbox page.
//! - [`SmtpMailer`] — the real [`Mailer`](reclaim_workflow::ports::Mailer): SMTP (STARTTLS or
//!   implicit TLS, optional login) through lettre, at most once per effect key, with its
//!   send records in the same file.
//! - [`Worker`] — runs the outbox's effects after commit, at least once and in order per
//!   candidate, through an [`EffectRunner`] the application provides; it also carries the
//!   scheduler tick.
//!
//! ```no_run
//! # async fn demo(runner: std::sync::Arc<dyn reclaim_local::EffectRunner>) -> Result<(), Box<dyn std::error::Error>> {
//! use reclaim_local::{OutboxMailer, SqliteStore, Worker, WorkerConfig};
//! use reclaim_workflow::ports::CandidateRead;
//!
//! let store = SqliteStore::open("reclaim.db")?;
//! let mailer = OutboxMailer::new(store.clone());
//! let worker = Worker::start(store.clone(), runner, WorkerConfig::default());
//! let first = store.get("RC0000001").await?;
//! # let _ = (mailer, first);
//! worker.shutdown().await;
//! # Ok(()) }
//! ```

pub mod allocator;
pub mod embedded;
pub mod files;
pub mod outbox;
pub mod seed;
pub mod smtp;
pub mod sqlite;
pub mod worker;

pub use embedded::{AppRunner, Embedded, EmbeddedError, MailChoice};
pub use outbox::{EffectState, OutboxCounts, OutboxEntry, OutboxMailer, StoredMessage};
pub use smtp::{Password, Security, SmtpAuth, SmtpConfigError, SmtpMailer, SmtpSettings};
pub use sqlite::{Durability, OpenError, Options, SqliteStore, WriteStats, SCHEMA_VERSION};
pub use worker::{run_due, DrainStats, EffectRunner, RunError, Tick, Worker, WorkerConfig};
