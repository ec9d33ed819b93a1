//! The `sweep` function's work: one scheduler tick per scheduled event, and the savings
//! totals' rebuild when an operator asks for it.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use reclaim_api::app::TickReport;
use reclaim_api::App;
use reclaim_workflow::ports::{PageRequest, SavingsChange};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// The event source an operator's invocation carries (`aws lambda invoke`), apart from the
/// schedule's.
pub const OPERATOR_SOURCE: &str = "reclaim.operator";
/// The detail type asking for the savings totals to be rebuilt.
pub const REBUILD_SAVINGS: &str = "Rebuild Savings";

/// Where a rebuild starts: the `next` of the previous invocation's answer, or the beginning.
#[derive(Debug, Default, Deserialize)]
pub struct RebuildRequest {
    #[serde(default)]
    pub cursor: Option<String>,
}

/// What one invocation did: a tick, or a stretch of the rebuild.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum SweepReport {
    Tick(TickReport),
    Rebuild(RebuildReport),
}

/// How far a rebuild got; `next` is set when the invocation's time ran out first, and the
/// operator invokes again with it.
#[derive(Debug, Default, Serialize)]
pub struct RebuildReport {
    pub examined: usize,
    /// Candidates whose places in the list orders were written again (fewer than examined
    /// where a transition wrote them meanwhile).
    pub reindexed: u64,
    pub next: Option<String>,
}

/// Why a tick did not run.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// Only the schedule invokes this function; anything else is refused rather than acted on.
    #[error("not a scheduled event: {from} / {detail_type}")]
    NotScheduled { from: String, detail_type: String },
    /// The tick failed (the store is unavailable): the next scheduled tick tries again.
    #[error("tick failed: {0}")]
    Tick(#[from] reclaim_api::AppError),
    /// The rebuild stopped; invoking again with the same cursor goes on (it is idempotent).
    #[error("savings rebuild failed: {0}")]
    Rebuild(#[from] reclaim_workflow::ports::StoreError),
    /// An operator's invocation whose detail is not a rebuild request.
    #[error("bad rebuild request: {0}")]
    BadRequest(String),
}

/// Runs one tick for a scheduled event, or a stretch of the savings rebuild for an
/// operator's, stopping before `until`.
pub async fn handle(
    app: &App,
    event: &EventBridgeEvent<serde_json::Value>,
    until: Instant,
) -> Result<SweepReport, SweepError> {
    if event.source == OPERATOR_SOURCE && event.detail_type == REBUILD_SAVINGS {
        let request: RebuildRequest = if event.detail.is_null() {
            RebuildRequest::default()
        } else {
            serde_json::from_value(event.detail.clone())
                .map_err(|e| SweepError::BadRequest(e.to_string()))?
        };
        return Ok(SweepReport::Rebuild(
            rebuild_savings(app, request.cursor, until).await?,
        ));
    }
    if event.source != "aws.events" || event.detail_type != "Scheduled Event" {
        return Err(SweepError::NotScheduled {
            from: event.source.clone(),
            detail_type: event.detail_type.clone(),
        });
    }
    let report = app.tick().await?;
    tracing::info!(
        examined = report.examined,
        applied = report.applied.len(),
        "scheduler tick"
    );
    Ok(SweepReport::Tick(report))
}

/// Brings every candidate's recorded savings and its places in the list orders up to date,
/// a page at a time, from `cursor` until done or `until`. The totals equal the sum of what is
/// recorded per candidate (each change is one transaction), so this makes them exact; it runs
/// safely beside the stream and beside transitions (an order item is never set back to an
/// older version).
pub async fn rebuild_savings(
    app: &App,
    mut cursor: Option<String>,
    until: Instant,
) -> Result<RebuildReport, reclaim_workflow::ports::StoreError> {
    let mut report = RebuildReport::default();
    loop {
        let page = app
            .ports
            .candidates
            .every(&PageRequest {
                limit: 100,
                cursor: cursor.take(),
                sort: None,
            })
            .await?;
        let changes: Vec<SavingsChange> = page.items.iter().map(SavingsChange::of).collect();
        app.ports.candidates.record_savings(&changes).await?;
        report.reindexed += app.ports.candidates.reindex(&page.items).await?;
        report.examined += page.items.len();
        match page.next {
            None => break,
            Some(next) if Instant::now() >= until => {
                report.next = Some(next);
                break;
            }
            Some(next) => cursor = Some(next),
        }
    }
    tracing::info!(
        examined = report.examined,
        reindexed = report.reindexed,
        done = report.next.is_none(),
        "savings rebuild"
    );
    Ok(report)
}

impl From<SweepError> for lambda_runtime::Diagnostic {
    /// Names the kind of failure in the Lambda error report (and so in the metrics and the
    /// on-failure destination), not only in the message.
    fn from(e: SweepError) -> Self {
        let kind = match &e {
            SweepError::NotScheduled { .. } => "NotScheduled",
            SweepError::Tick(_) => "TickFailed",
            SweepError::Rebuild(_) => "RebuildFailed",
            SweepError::BadRequest(_) => "BadRequest",
        };
        lambda_runtime::Diagnostic {
            error_type: kind.to_string(),
            error_message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operators_payload_in_the_readme_asks_for_a_rebuild() {
        let readme = include_str!("../../../README.md");
        let payload = readme
            .split("--payload '")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .expect("README shows the rebuild payload");
        let event: EventBridgeEvent<serde_json::Value> =
            serde_json::from_str(payload).expect("the payload is an event");
        assert_eq!(event.source, OPERATOR_SOURCE);
        assert_eq!(event.detail_type, REBUILD_SAVINGS);
        let request: RebuildRequest = serde_json::from_value(event.detail).unwrap();
        assert_eq!(request.cursor, None);
        let next: RebuildRequest =
            serde_json::from_value(serde_json::json!({"cursor": "abc"})).unwrap();
        assert_eq!(next.cursor.as_deref(), Some("abc"));
    }
}
