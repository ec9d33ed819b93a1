//! The `sweep` function's work: one scheduler tick per scheduled event.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use reclaim_api::app::TickReport;
use reclaim_api::App;

/// Why a tick did not run.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// Only the schedule invokes this function; anything else is refused rather than acted on.
    #[error("not a scheduled event: {from} / {detail_type}")]
    NotScheduled { from: String, detail_type: String },
    /// The tick failed (the store is unavailable): the next scheduled tick tries again.
    #[error("tick failed: {0}")]
    Tick(#[from] reclaim_api::AppError),
}

/// Runs one tick for a scheduled event.
pub async fn handle(
    app: &App,
    event: &EventBridgeEvent<serde_json::Value>,
) -> Result<TickReport, SweepError> {
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
    Ok(report)
}

impl From<SweepError> for lambda_runtime::Diagnostic {
    /// Names the kind of failure in the Lambda error report (and so in the metrics and the
    /// on-failure destination), not only in the message.
    fn from(e: SweepError) -> Self {
        let kind = match &e {
            SweepError::NotScheduled { .. } => "NotScheduled",
            SweepError::Tick(_) => "TickFailed",
        };
        lambda_runtime::Diagnostic {
            error_type: kind.to_string(),
            error_message: e.to_string(),
        }
    }
}
