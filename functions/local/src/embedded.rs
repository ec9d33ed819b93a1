//! Local mode wired in one place: the SQLite store, the mailer (the outbox, or SMTP), the
//! application and its worker. `reclaim serve`, the CLI commands and the end-to-end tests all
//! build it this way.

use crate::smtp::{SmtpConfigError, SmtpMailer, SmtpSettings};
use crate::worker::EffectRunner;
use crate::{OutboxMailer, RunError, SqliteStore, Tick, Worker, WorkerConfig};
use async_trait::async_trait;
use reclaim_api::{App, EffectError, Ports, Settings};
use reclaim_workflow::effect::Effect;
use reclaim_workflow::ports::{Clock, LinkSigner, Mailer, Revoker};
use reclaim_workflow::Candidate;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Everything local mode runs, sharing one database file.
#[derive(Clone, Debug)]
pub struct Embedded {
    pub store: SqliteStore,
    /// The outbox: the application's mailer unless `smtp` is set (then it stays empty).
    pub mailer: OutboxMailer,
    /// The SMTP mailer, when mail goes to a real server.
    pub smtp: Option<SmtpMailer>,
    pub app: App,
}

/// Where the application's mail goes.
#[derive(Clone, Debug, Default)]
pub enum MailChoice {
    /// Kept in the database for the outbox page (the demo, tests).
    #[default]
    Outbox,
    /// Sent to an SMTP server.
    Smtp(SmtpSettings),
}

/// Why [`Embedded::open_with_mail`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(transparent)]
    Open(#[from] crate::OpenError),
    #[error(transparent)]
    Mail(#[from] SmtpConfigError),
}

/// The application as the worker's effect runner.
#[derive(Clone, Debug)]
pub struct AppRunner(pub App);

#[async_trait]
impl EffectRunner for AppRunner {
    async fn run(&self, candidate: &Candidate, effect: &Effect) -> Result<(), RunError> {
        self.0
            .run_effect(candidate, effect)
            .await
            .map_err(|e| match e {
                EffectError::Retryable(m) => RunError::retryable(m),
                EffectError::Permanent(m) => RunError::permanent(m),
            })
    }
}

/// How often `serve` looks for usage connectors due to run: a *Run now* starts within this.
pub const CONNECTORS_POLL: Duration = Duration::from_secs(3);

impl Embedded {
    /// Opens (or creates) the database and builds the application over it.
    pub fn open(
        db: &Path,
        settings: Settings,
        signer: Arc<dyn LinkSigner>,
        revoker: Arc<dyn Revoker>,
        clock: Arc<dyn Clock>,
    ) -> Result<Embedded, crate::OpenError> {
        let store = SqliteStore::open(db)?;
        Ok(Embedded::build(
            store, settings, signer, revoker, clock, None,
        ))
    }

    /// As [`Embedded::open`], sending mail the way `mail` says.
    pub fn open_with_mail(
        db: &Path,
        settings: Settings,
        signer: Arc<dyn LinkSigner>,
        revoker: Arc<dyn Revoker>,
        clock: Arc<dyn Clock>,
        mail: MailChoice,
    ) -> Result<Embedded, EmbeddedError> {
        let store = SqliteStore::open(db)?;
        let smtp = match mail {
            MailChoice::Outbox => None,
            MailChoice::Smtp(s) => Some(SmtpMailer::with_clock(store.clone(), s, clock.clone())?),
        };
        Ok(Embedded::build(
            store, settings, signer, revoker, clock, smtp,
        ))
    }

    fn build(
        store: SqliteStore,
        settings: Settings,
        signer: Arc<dyn LinkSigner>,
        revoker: Arc<dyn Revoker>,
        clock: Arc<dyn Clock>,
        smtp: Option<SmtpMailer>,
    ) -> Embedded {
        let mailer = OutboxMailer::with_clock(store.clone(), clock.clone());
        let sender: Arc<dyn Mailer> = match &smtp {
            Some(smtp) => Arc::new(smtp.clone()),
            None => Arc::new(mailer.clone()),
        };
        let shared = Arc::new(store.clone());
        let ports = Ports {
            candidates: shared.clone(),
            tasks: shared.clone(),
            directory: shared.clone(),
            rules: shared.clone(),
            sessions: shared.clone(),
            tokens: shared.clone(),
            mailer: sender,
            revoker,
            clock,
            signer,
            sources: Arc::new(reclaim_workflow::ports::NoSources),
            runs: shared,
        };
        Embedded {
            store,
            mailer,
            smtp,
            app: App::new(ports, settings),
        }
    }

    /// The usage connectors this deployment runs (the plugins that collect usage).
    pub fn with_sources(mut self, sources: Arc<dyn reclaim_workflow::ports::UsageSources>) -> Self {
        self.app.ports.sources = sources;
        self
    }

    /// Starts the effects worker; with `tick_every`, it also runs the scheduler that often,
    /// and looks every few seconds for usage connectors due to run (their schedule, a *Run
    /// now*, a run left unfinished), running them in the background so a long collection
    /// never holds up the scheduler.
    pub fn start_worker(&self, tick_every: Option<Duration>) -> Worker {
        let tick = tick_every.map(|every| {
            let app = self.app.clone();
            Tick::new(every, move |_now| {
                let app = app.clone();
                async move {
                    match app.tick().await {
                        Ok(r) if !r.applied.is_empty() => {
                            tracing::info!(applied = r.applied.len(), "scheduler tick")
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "scheduler tick failed"),
                    }
                }
            })
        });
        let mut also = Vec::new();
        if tick_every.is_some() {
            let app = self.app.clone();
            let collecting = Arc::new(std::sync::atomic::AtomicBool::new(false));
            also.push(Tick::new(CONNECTORS_POLL, move |_now| {
                let app = app.clone();
                let collecting = collecting.clone();
                async move {
                    if collecting.swap(true, std::sync::atomic::Ordering::SeqCst) {
                        return;
                    }
                    tokio::spawn(async move {
                        if let Err(e) = app.run_due_connectors(None).await {
                            tracing::warn!(error = %e, "usage connectors failed");
                        }
                        collecting.store(false, std::sync::atomic::Ordering::SeqCst);
                    });
                }
            }));
        }
        let config = WorkerConfig {
            tick,
            also,
            clock: self.app.ports.clock.clone(),
            ..WorkerConfig::default()
        };
        Worker::start(
            self.store.clone(),
            Arc::new(AppRunner(self.app.clone())),
            config,
        )
    }

    /// Runs every effect that is due now, including the effects those runs cause, then
    /// returns (one-shot CLI commands and tests use this instead of a background worker).
    pub async fn drain(&self) -> Result<crate::DrainStats, reclaim_workflow::ports::StoreError> {
        let runner: Arc<dyn EffectRunner> = Arc::new(AppRunner(self.app.clone()));
        let config = WorkerConfig {
            clock: self.app.ports.clock.clone(),
            ..WorkerConfig::default()
        };
        crate::run_due(&self.store, &runner, &config).await
    }
}

fn to_mail(m: crate::StoredMessage) -> reclaim_api::StoredMail {
    reclaim_api::StoredMail {
        key: m.key,
        to: m.to,
        subject: m.subject,
        text: m.text,
        html: m.html,
        created_at: m.created_at,
    }
}

#[async_trait]
impl reclaim_api::OutboxView for OutboxMailer {
    async fn messages(
        &self,
    ) -> Result<Vec<reclaim_api::StoredMail>, reclaim_workflow::ports::StoreError> {
        Ok(self
            .list_messages()
            .await?
            .into_iter()
            .map(to_mail)
            .collect())
    }

    async fn message(
        &self,
        key: &str,
    ) -> Result<Option<reclaim_api::StoredMail>, reclaim_workflow::ports::StoreError> {
        Ok(self
            .list_messages()
            .await?
            .into_iter()
            .find(|m| m.key == key)
            .map(to_mail))
    }
}
