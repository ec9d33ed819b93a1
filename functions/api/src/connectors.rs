//! The usage connectors' runner: one copy for every deployment. A run collects a connector's
//! pages one at a time, evaluates each page's rows exactly as a file import evaluates its rows
//! ([`App::apply_usage`]), and saves the run after every page, so it resumes from its cursor
//! after a crash, a timeout or the end of a Lambda invocation.

use crate::app::{App, AppError, UsageReport};
use reclaim_workflow::ports::{CollectFailure, ConnectorInfo, ConnectorRun, RunState, StoreError};
use reclaim_workflow::usage::Decision;
use reclaim_workflow::Timestamp;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a run stays its runner's without a word from it; after that (the runner crashed)
/// another runner resumes it.
pub const LEASE: chrono::Duration = chrono::Duration::minutes(10);
/// Transient errors in a row on one page before the run gives up on it and fails.
pub const PAGE_ATTEMPTS: u32 = 4;
/// The longest wait between attempts at a page, whatever the vendor asks.
const LONGEST_WAIT: Duration = Duration::from_secs(60);
/// Runs listed per connector.
pub const RUNS_SHOWN: u32 = 10;

/// Skip reasons as the run report counts them.
pub const SKIPPED_INVALID: &str = "invalid row";
pub const SKIPPED_EXCLUDED: &str = "excluded by the rule";
pub const SKIPPED_ALREADY_OPEN: &str = "a candidate is already open";
pub const SKIPPED_NO_RULE: &str = "no rule applies";

/// A connector with its latest runs, as the Connectors page and the API show it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ConnectorStatus {
    #[serde(flatten)]
    pub info: ConnectorInfo,
    /// When its next scheduled run is due (now, if it never ran).
    pub next_run_at: Timestamp,
    pub runs: Vec<ConnectorRun>,
}

impl App {
    /// Every loaded connector with its latest runs.
    pub async fn connectors(&self) -> Result<Vec<ConnectorStatus>, AppError> {
        let mut out = Vec::new();
        for info in self.ports.sources.connectors().await? {
            let runs = self.ports.runs.runs(&info.id, RUNS_SHOWN).await?;
            let next_run_at = next_run_at(&info, runs.first(), self.now());
            out.push(ConnectorStatus {
                info,
                next_run_at,
                runs,
            });
        }
        Ok(out)
    }

    /// The connectors whose latest runs created candidates by this rule, with how many
    /// (over the runs the Connectors page shows).
    pub async fn rule_sources(&self, rule_id: &str) -> Result<Vec<(ConnectorInfo, u64)>, AppError> {
        Ok(self
            .connectors()
            .await?
            .into_iter()
            .filter_map(|c| {
                let n: u64 = c
                    .runs
                    .iter()
                    .filter_map(|r| r.created_by_rule.get(rule_id))
                    .sum();
                (n > 0).then_some((c.info, n))
            })
            .collect())
    }

    /// One connector with its latest runs; not found when no connector has that id.
    pub async fn connector_status(&self, id: &str) -> Result<ConnectorStatus, AppError> {
        let info = self.connector_info(id).await?;
        let runs = self.ports.runs.runs(id, RUNS_SHOWN).await?;
        Ok(ConnectorStatus {
            next_run_at: next_run_at(&info, runs.first(), self.now()),
            info,
            runs,
        })
    }

    async fn connector_info(&self, id: &str) -> Result<ConnectorInfo, AppError> {
        self.ports
            .sources
            .connectors()
            .await?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| AppError::NotFound {
                kind: "connector",
                id: id.to_string(),
            })
    }

    /// Runs the connectors whose schedule says so (or whose run was left unfinished), each
    /// until `until`; returns the runs it worked on. One connector's failure is recorded on
    /// its run and does not stop the others.
    pub async fn run_due_connectors(
        &self,
        until: Option<Instant>,
    ) -> Result<Vec<ConnectorRun>, AppError> {
        let mut done = Vec::new();
        for info in self.ports.sources.connectors().await? {
            if until.is_some_and(|u| Instant::now() >= u) {
                break;
            }
            let latest = self.ports.runs.runs(&info.id, 1).await?;
            let now = self.now();
            let due = match latest.first() {
                Some(r) if r.state == RunState::Running => r.lease_until <= now,
                last => next_run_at(&info, last, now) <= now,
            };
            if !due {
                continue;
            }
            match self.run_connector(&info.id, "schedule", until).await {
                Ok(run) => done.push(run),
                // Someone else took it first: theirs to finish.
                Err(AppError::Conflict(why)) => {
                    tracing::info!(connector = %info.id, %why, "not run")
                }
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// Runs one connector: resumes its unfinished run when that run's runner is gone, else
    /// starts a new one; collects until the connector says it is finished, fails, or `until`
    /// comes (then the run is left for the next runner, resumable at once). Returns the run
    /// as it was last saved. A run already in progress elsewhere is a conflict.
    pub async fn run_connector(
        &self,
        id: &str,
        trigger: &str,
        until: Option<Instant>,
    ) -> Result<ConnectorRun, AppError> {
        let info = self.connector_info(id).await?;
        let mut run = self.claim_run(&info, trigger).await?;
        let mut known = self.usage_context().await?;
        let mut people = People::default();
        let mut attempts = 0;
        loop {
            if until.is_some_and(|u| Instant::now() >= u) {
                // Out of time: the next runner may resume at once.
                run.lease_until = self.now();
                self.save_run(&mut run).await?;
                return Ok(run);
            }
            let asked = Instant::now();
            match self
                .ports
                .sources
                .collect(id, run.cursor.as_deref(), run.pages)
                .await
            {
                Ok(page) => {
                    let collected = asked.elapsed();
                    attempts = 0;
                    let mut report = UsageReport::default();
                    let mut records = Vec::with_capacity(page.rows.len());
                    for (i, row) in page.rows.into_iter().enumerate() {
                        let line = usize::try_from(run.rows).unwrap_or(usize::MAX) + i + 1;
                        report.rows += 1;
                        match row {
                            Ok(r) => records.push((line, r)),
                            Err(_) => *run.skipped.entry(SKIPPED_INVALID.into()).or_default() += 1,
                        }
                    }
                    let applying = Instant::now();
                    people.flag(self, &mut records).await?;
                    self.apply_usage(records, &mut known, &mut report).await?;
                    let applied = applying.elapsed();
                    count(&mut run, &report);
                    for (reason, n) in page.notes {
                        *run.notes
                            .entry(note_reason(&run.notes, reason))
                            .or_default() += n;
                    }
                    run.pages += 1;
                    run.cursor = page.next_cursor;
                    if run.cursor.is_none() {
                        run.state = RunState::Finished;
                        run.finished_at = Some(self.now());
                    }
                    run.lease_until = self.now() + LEASE;
                    self.save_run(&mut run).await?;
                    // Where a page's time went: the connector (vendor, sandbox) or the rules
                    // and the store.
                    tracing::debug!(
                        connector = id,
                        page = run.pages,
                        rows = report.rows,
                        collect_ms = collected.as_millis(),
                        apply_ms = applied.as_millis(),
                        "connector page"
                    );
                    if run.state == RunState::Finished {
                        tracing::info!(
                            connector = id,
                            pages = run.pages,
                            rows = run.rows,
                            created = run.created,
                            "connector run finished"
                        );
                        return Ok(run);
                    }
                }
                Err(CollectFailure::Transient {
                    message,
                    retry_after_secs,
                }) => {
                    attempts += 1;
                    run.retries += 1;
                    tracing::warn!(connector = id, attempts, %message, "page failed; trying again");
                    if attempts >= PAGE_ATTEMPTS {
                        return self
                            .end_run(
                                run,
                                format!("{message} (the same page failed {attempts} times)"),
                            )
                            .await;
                    }
                    let wait = retry_after_secs
                        .map(Duration::from_secs)
                        .unwrap_or(Duration::from_secs(1 << attempts))
                        .min(LONGEST_WAIT);
                    if until.is_some_and(|u| Instant::now() + wait >= u) {
                        // Not enough time left to wait: the next runner tries the page again.
                        run.lease_until = self.now();
                        self.save_run(&mut run).await?;
                        return Ok(run);
                    }
                    tokio::time::sleep(wait).await;
                }
                Err(CollectFailure::Permanent(message)) => {
                    return self.end_run(run, message).await;
                }
            }
        }
    }

    /// *Run now*: a new run that any runner may take at once (the local worker within
    /// seconds, on AWS the `connectors` function's next invocation). A run in progress is a
    /// conflict.
    pub async fn request_connector_run(
        &self,
        id: &str,
        who: &str,
    ) -> Result<ConnectorRun, AppError> {
        let info = self.connector_info(id).await?;
        if let Some(r) = self.ports.runs.runs(id, 1).await?.first() {
            if r.state == RunState::Running {
                return Err(AppError::Conflict(format!(
                    "connector {id} is already running or about to (run {}, asked for by {})",
                    r.seq, r.trigger
                )));
            }
        }
        let mut run = self.claim_run(&info, who).await?;
        run.lease_until = self.now();
        self.save_run(&mut run).await?;
        Ok(run)
    }

    /// The run this runner works on: the connector's unfinished run if its runner is gone,
    /// else a new one numbered after the latest. Both writes are conditional, so two runners
    /// never work on runs of one connector at once.
    async fn claim_run(
        &self,
        info: &ConnectorInfo,
        trigger: &str,
    ) -> Result<ConnectorRun, AppError> {
        let now = self.now();
        let latest = self.ports.runs.runs(&info.id, 1).await?.into_iter().next();
        if let Some(mut run) = latest.clone().filter(|r| r.state == RunState::Running) {
            if run.lease_until > now {
                return Err(AppError::Conflict(format!(
                    "connector {} is running (run {}, started {})",
                    info.id,
                    run.seq,
                    run.started_at.format("%Y-%m-%d %H:%M UTC")
                )));
            }
            tracing::info!(connector = %info.id, run = run.seq, pages = run.pages, "resuming a connector run");
            run.lease_until = now + LEASE;
            self.save_run(&mut run).await.map_err(busy(&info.id))?;
            return Ok(run);
        }
        let run = ConnectorRun {
            connector: info.id.clone(),
            seq: latest.map_or(1, |r| r.seq + 1),
            version: 1,
            state: RunState::Running,
            trigger: trigger.to_string(),
            started_at: now,
            finished_at: None,
            lease_until: now + LEASE,
            cursor: None,
            pages: 0,
            rows: 0,
            created: 0,
            report_only: 0,
            canceled: 0,
            skipped: BTreeMap::new(),
            notes: BTreeMap::new(),
            created_by_rule: BTreeMap::new(),
            error: None,
            retries: 0,
        };
        self.ports
            .runs
            .put_run(&run, None)
            .await
            .map_err(|e| busy(&info.id)(e.into()))?;
        Ok(run)
    }

    /// Saves the run over the version this runner last saved.
    async fn save_run(&self, run: &mut ConnectorRun) -> Result<(), AppError> {
        let expected = run.version;
        run.version += 1;
        self.ports
            .runs
            .put_run(run, Some(expected))
            .await
            .map_err(AppError::from)
    }

    async fn end_run(
        &self,
        mut run: ConnectorRun,
        error: String,
    ) -> Result<ConnectorRun, AppError> {
        tracing::warn!(connector = %run.connector, %error, "connector run failed");
        run.state = RunState::Failed;
        run.error = Some(error);
        run.finished_at = Some(self.now());
        self.save_run(&mut run).await?;
        Ok(run)
    }
}

/// A lost race for a run, said as a conflict.
fn busy(connector: &str) -> impl Fn(AppError) -> AppError + '_ {
    move |e| match e {
        AppError::Conflict(_) | AppError::Store(StoreError::Conflict { .. }) => {
            AppError::Conflict(format!("connector {connector} was started by someone else"))
        }
        other => other,
    }
}

/// When the connector's next scheduled run is due: its schedule after the last run started,
/// or now if it never ran.
pub fn next_run_at(info: &ConnectorInfo, last: Option<&ConnectorRun>, now: Timestamp) -> Timestamp {
    match last {
        None => now,
        Some(r) => {
            r.started_at
                + chrono::Duration::seconds(i64::try_from(info.every_secs).unwrap_or(i64::MAX / 2))
        }
    }
}

/// Distinct reasons a run keeps from its connector, and their longest length: a connector's
/// text must not grow the run past what a store keeps in one record.
/// Directory reads in flight at once while a page's new people are looked up.
const PEOPLE_READS: usize = 16;

/// Whether each person a run has met is an ITIL user, as the directory says: a vendor cannot
/// tell (a usage file has a column for it), and an ITIL user is asked with a task beside the
/// email. Each person is read once per run. (VIP needs no such step: a rule's VIP exclusion
/// looks the person up in the directory at Reclaim, so a VIP's seat is held there.)
#[derive(Default)]
struct People(std::collections::HashMap<String, Option<bool>>);

impl People {
    /// Sets each row's ITIL flag from the directory, for the people it knows; a person it
    /// does not know keeps what the connector reported.
    async fn flag(
        &mut self,
        app: &App,
        records: &mut [(usize, reclaim_workflow::usage::UsageRecord)],
    ) -> Result<(), AppError> {
        use futures_util::StreamExt;
        let mut new: Vec<String> = records
            .iter()
            .map(|(_, r)| &r.user.id)
            .filter(|id| !self.0.contains_key(id.as_str()))
            .cloned()
            .collect();
        new.sort_unstable();
        new.dedup();
        let directory = &app.ports.directory;
        let read: Vec<(String, Result<Option<reclaim_workflow::User>, StoreError>)> =
            futures_util::stream::iter(new)
                .map(|id| async move {
                    let user = directory.user(&id).await;
                    (id, user)
                })
                .buffer_unordered(PEOPLE_READS)
                .collect()
                .await;
        for (id, user) in read {
            self.0.insert(id, user?.map(|u| u.itil));
        }
        for (_, r) in records.iter_mut() {
            if let Some(Some(itil)) = self.0.get(&r.user.id) {
                r.user.itil = *itil;
            }
        }
        Ok(())
    }
}

const NOTE_REASONS: usize = 50;
const NOTE_CHARS: usize = 300;
/// Where reasons past [`NOTE_REASONS`] are counted.
pub const OTHER_NOTES: &str = "other reasons";

/// The reason a connector's note is counted under: its own text, cut to [`NOTE_CHARS`], unless
/// the run already holds [`NOTE_REASONS`] others.
fn note_reason(kept: &BTreeMap<String, u64>, reason: String) -> String {
    let reason: String = reason.chars().take(NOTE_CHARS).collect();
    if kept.contains_key(&reason) || kept.len() < NOTE_REASONS {
        reason
    } else {
        OTHER_NOTES.to_string()
    }
}

/// Adds one page's report to the run's counts.
fn count(run: &mut ConnectorRun, report: &UsageReport) {
    let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
    run.rows += n(report.rows);
    run.created += n(report.created.len());
    run.canceled += n(report.canceled.len());
    for f in &report.findings {
        let reason = match f.decision {
            Decision::Create => {
                *run.created_by_rule.entry(f.rule.clone()).or_default() += 1;
                continue;
            }
            Decision::WouldCreate => {
                run.report_only += 1;
                continue;
            }
            Decision::Excluded(_) => SKIPPED_EXCLUDED,
            Decision::AlreadyOpen(_) => SKIPPED_ALREADY_OPEN,
        };
        *run.skipped.entry(reason.into()).or_default() += 1;
    }
    if !report.unmatched.is_empty() {
        *run.skipped.entry(SKIPPED_NO_RULE.into()).or_default() += n(report.unmatched.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connectors_notes_stay_few_and_short() {
        let mut kept = BTreeMap::new();
        for i in 0..NOTE_REASONS + 20 {
            let reason = note_reason(&kept, format!("reason {i} {}", "x".repeat(1000)));
            *kept.entry(reason).or_insert(0) += 1;
        }
        assert_eq!(kept.len(), NOTE_REASONS + 1);
        assert_eq!(kept.get(OTHER_NOTES), Some(&20));
        assert!(kept.keys().all(|k| k.chars().count() <= NOTE_CHARS));
        // A reason already kept is still counted under itself.
        let first = kept
            .keys()
            .find(|k| k.starts_with("reason 0 "))
            .cloned()
            .unwrap();
        assert_eq!(note_reason(&kept, first.clone()), first);
    }
}
