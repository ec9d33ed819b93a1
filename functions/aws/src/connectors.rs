//! The `connectors` function's work: on every scheduled event, run the usage connectors that
//! are due (their own schedules, hourly to monthly) or whose run was left unfinished, through
//! the application's one runner ([`App::run_due_connectors`]), and stop starting pages in
//! time to save where each run stands. A run longer than one invocation is saved after every
//! page with its cursor; the runner releases it when the time is up, so the next scheduled
//! invocation resumes it at once from that cursor.
//!
//! Two invocations never run at once (the function's reserved concurrency is 1), and the
//! runner's lease on a run would keep a second one off it anyway. A run cut off mid-page (the
//! invocation was killed) keeps its lease until it expires, then the next invocation resumes
//! it from the last page saved.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use reclaim_api::App;
use reclaim_workflow::ports::ConnectorRun;
use serde::Serialize;
use std::time::{Duration, Instant, SystemTime};

/// Left free at the end of an invocation besides the longest page: saving the run, logging
/// and answering the runtime.
pub const SAFETY_MARGIN: Duration = Duration::from_secs(30);

/// The least time an invocation gives the connectors, whatever the margins say, so that a
/// short timeout still collects a page per invocation rather than none (a page that then
/// outlives the invocation is resumed once its lease expires).
pub const MIN_BUDGET: Duration = Duration::from_secs(10);

/// What one invocation did: each run it worked on, as last saved (counts are the run's so
/// far, across invocations).
#[derive(Debug, Default, Serialize)]
pub struct ConnectorsReport {
    pub runs: Vec<ConnectorRun>,
}

/// Why an invocation did nothing.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorsError {
    /// Only the schedule invokes this function; anything else is refused rather than acted on.
    #[error("not a scheduled event: {from} / {detail_type}")]
    NotScheduled { from: String, detail_type: String },
    /// The store failed (a run's own failures are recorded on the run instead): the next
    /// scheduled invocation tries again, resuming what was saved.
    #[error("connectors failed: {0}")]
    Run(#[from] reclaim_api::AppError),
}

impl From<ConnectorsError> for lambda_runtime::Diagnostic {
    /// Names the kind of failure in the Lambda error report (and so in the metrics and the
    /// failure queue), not only in the message.
    fn from(e: ConnectorsError) -> Self {
        let kind = match &e {
            ConnectorsError::NotScheduled { .. } => "NotScheduled",
            ConnectorsError::Run(_) => "ConnectorsFailed",
        };
        lambda_runtime::Diagnostic {
            error_type: kind.to_string(),
            error_message: e.to_string(),
        }
    }
}

/// When the runner must stop starting pages: the invocation's deadline (`deadline_ms`, as
/// the runtime gives it, milliseconds since the epoch) less the longest page and
/// [`SAFETY_MARGIN`], but never less than [`MIN_BUDGET`] from `now` (nor past the deadline).
pub fn until(
    deadline_ms: u64,
    longest_page: Duration,
    now: SystemTime,
    now_instant: Instant,
) -> Instant {
    let deadline = SystemTime::UNIX_EPOCH + Duration::from_millis(deadline_ms);
    let left = deadline.duration_since(now).unwrap_or_default();
    let budget = left
        .saturating_sub(longest_page.saturating_add(SAFETY_MARGIN))
        .max(MIN_BUDGET.min(left));
    now_instant + budget
}

/// Runs the due connectors for a scheduled event, each until `until`. With no connector
/// loaded it returns at once, without a call to the store.
pub async fn handle(
    app: &App,
    event: &EventBridgeEvent<serde_json::Value>,
    until: Instant,
) -> Result<ConnectorsReport, ConnectorsError> {
    if event.source != "aws.events" || event.detail_type != "Scheduled Event" {
        return Err(ConnectorsError::NotScheduled {
            from: event.source.clone(),
            detail_type: event.detail_type.clone(),
        });
    }
    let loaded = app
        .ports
        .sources
        .connectors()
        .await
        .map_err(reclaim_api::AppError::from)?;
    // What the workspace lists and starts runs of (the `api` function loads no plugins).
    if !loaded.is_empty() {
        app.ports
            .runs
            .publish_connectors(&loaded)
            .await
            .map_err(reclaim_api::AppError::from)?;
    }
    let loaded = loaded.len();
    if loaded == 0 {
        tracing::info!("no usage connectors loaded: nothing to run");
        return Ok(ConnectorsReport::default());
    }
    let started = Instant::now();
    let runs = app.run_due_connectors(Some(until)).await?;
    for run in &runs {
        tracing::info!(
            connector = %run.connector,
            run = run.seq,
            state = run.state.as_str(),
            pages = run.pages,
            rows = run.rows,
            created = run.created,
            canceled = run.canceled,
            report_only = run.report_only,
            retries = run.retries,
            error = run.error.as_deref().unwrap_or(""),
            "connector run"
        );
    }
    let unfinished = runs
        .iter()
        .filter(|r| r.state == reclaim_workflow::ports::RunState::Running)
        .count();
    tracing::info!(
        loaded,
        runs = runs.len(),
        unfinished,
        pages = runs.iter().map(|r| u64::from(r.pages)).sum::<u64>(),
        rows = runs.iter().map(|r| r.rows).sum::<u64>(),
        created = runs.iter().map(|r| r.created).sum::<u64>(),
        ms = started.elapsed().as_millis(),
        "connectors"
    );
    Ok(ConnectorsReport { runs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runner_stops_a_page_and_a_margin_before_the_invocation_ends() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let at = Instant::now();
        let ms = |s: u64| (1_000_000 + s) * 1000;
        // 15 minutes left, pages of up to a minute: stop starting pages after 810 s.
        assert_eq!(
            until(ms(900), Duration::from_secs(60), now, at) - at,
            Duration::from_secs(810)
        );
        // Little left: at least the minimum, never past the deadline.
        assert_eq!(
            until(ms(70), Duration::from_secs(60), now, at) - at,
            MIN_BUDGET
        );
        assert_eq!(
            until(ms(4), Duration::from_secs(60), now, at) - at,
            Duration::from_secs(4)
        );
        // A deadline already past: stop at once.
        assert_eq!(until(0, Duration::ZERO, now, at), at);
    }
}
