//! The `effects` function's work: DynamoDB stream records → [`App::run_effect`].
//!
//! The table's stream is the outbox. A transition's single conditional write puts the new
//! candidate item with the effects of that version (attribute `fx`); its stream record
//! carries both the candidate snapshot and the effects, so nothing is written twice and
//! nothing can commit without its effects.
//!
//! Per record:
//! - not a candidate transition (a history entry, a task, a mail record, an import, a
//!   removal), or a modification that did not move the version forward (an already-advanced
//!   or unknown version): **skipped**, never re-applied;
//! - a record that cannot be decoded, or an effect that fails permanently: **logged and
//!   skipped**, so one bad record cannot block the shard;
//! - an effect that fails retryably (after the SDK's own retries): the record is reported in
//!   `batchItemFailures` and processing stops. Lambda re-delivers from that record on, so the
//!   records before it are not replayed and the ones after it have not run yet. Effects are
//!   idempotent by key (one mail per key, task ids are keys, a revocation runs only while it
//!   is still wanted), so the effects of the failed record that did run do nothing again.

use crate::dynamo::keys::{CANDIDATE_SK, DOC, EFFECTS, SK, TYPE, VERSION};
use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use reclaim_api::App;
use reclaim_workflow::ports::SavingsChange;
use reclaim_workflow::{Candidate, Effect};
use serde_dynamo::AttributeValue;

/// What a stream record asks for.
#[derive(Debug, PartialEq)]
pub enum Work {
    /// Run these effects of this candidate version.
    Run {
        candidate: Box<Candidate>,
        effects: Vec<Effect>,
    },
    /// Nothing to do, and why (logged at debug level).
    Skip(&'static str),
}

/// Why a record could not be read: permanent, logged and skipped.
#[derive(Debug, thiserror::Error)]
#[error("stream record {event_id}: {why}")]
pub struct BadRecord {
    pub event_id: String,
    pub why: String,
}

fn text<'a>(image: &'a serde_dynamo::Item, name: &str) -> Option<&'a str> {
    match image.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

fn number(image: &serde_dynamo::Item, name: &str) -> Option<u64> {
    match image.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

/// Reads one record.
pub fn decode_record(rec: &EventRecord) -> Result<Work, BadRecord> {
    let bad = |why: String| BadRecord {
        event_id: rec.event_id.clone(),
        why,
    };
    if rec.event_name != "INSERT" && rec.event_name != "MODIFY" {
        return Ok(Work::Skip("not a write"));
    }
    let new = &rec.change.new_image;
    if text(new, TYPE) != Some("c") || text(new, SK) != Some(CANDIDATE_SK) {
        return Ok(Work::Skip("not a candidate"));
    }
    let Some(fx) = text(new, EFFECTS) else {
        return Ok(Work::Skip("no effects"));
    };
    let version = number(new, VERSION).ok_or_else(|| bad("candidate without a version".into()))?;
    if rec.event_name == "MODIFY" {
        match number(&rec.change.old_image, VERSION) {
            Some(old) if old >= version => return Ok(Work::Skip("version did not advance")),
            _ => {}
        }
    }
    let doc = text(new, DOC).ok_or_else(|| bad("candidate without a document".into()))?;
    let candidate: Candidate =
        serde_json::from_str(doc).map_err(|e| bad(format!("candidate: {e}")))?;
    let effects: Vec<Effect> =
        serde_json::from_str(fx).map_err(|e| bad(format!("effects: {e}")))?;
    if candidate.version != version
        || effects
            .iter()
            .any(|e| e.version != version || e.candidate_id != candidate.id)
    {
        return Ok(Work::Skip("effects of an unknown version"));
    }
    Ok(Work::Run {
        candidate: Box::new(candidate),
        effects,
    })
}

/// What a candidate record's new version adds to the savings (an import's insert too, which
/// has no effects).
pub fn savings_change(rec: &EventRecord) -> Result<Option<SavingsChange>, BadRecord> {
    if rec.event_name != "INSERT" && rec.event_name != "MODIFY" {
        return Ok(None);
    }
    let new = &rec.change.new_image;
    if text(new, TYPE) != Some("c") || text(new, SK) != Some(CANDIDATE_SK) {
        return Ok(None);
    }
    let bad = |why: String| BadRecord {
        event_id: rec.event_id.clone(),
        why,
    };
    let doc = text(new, DOC).ok_or_else(|| bad("candidate without a document".into()))?;
    let candidate: Candidate =
        serde_json::from_str(doc).map_err(|e| bad(format!("candidate: {e}")))?;
    Ok(Some(SavingsChange::of(&candidate)))
}

/// The record to resume from, as Lambda wants it.
fn resume_at(rec: &EventRecord) -> DynamoDbBatchItemFailure {
    let mut failure = DynamoDbBatchItemFailure::default();
    failure.item_identifier = rec
        .change
        .sequence_number
        .clone()
        .or_else(|| Some(rec.event_id.clone()));
    failure
}

/// Runs one batch in order and reports the record to resume from, if any.
pub async fn handle(app: &App, event: &Event) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    // The savings totals first, for the whole batch: a retry finds them applied and skips them.
    // Every record with work of either kind is a candidate's, so the first one with a savings
    // change is where a retry must begin.
    let mut changes = Vec::new();
    let mut first = None;
    for rec in &event.records {
        match savings_change(rec) {
            Ok(Some(change)) => {
                changes.push(change);
                first.get_or_insert(rec);
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "undecodable stream record: no savings"),
        }
    }
    if let Err(e) = app.ports.candidates.record_savings(&changes).await {
        if let Some(first) = first.filter(|_| e.is_retryable()) {
            tracing::warn!(error = %e, "savings totals not updated; the batch resumes at its first candidate");
            response.batch_item_failures.push(resume_at(first));
            return response;
        }
        tracing::error!(error = %e, "savings totals not updated; skipped (reclaim savings --rebuild repairs them)");
    }
    for rec in &event.records {
        let (candidate, effects) = match decode_record(rec) {
            Ok(Work::Run { candidate, effects }) => (candidate, effects),
            Ok(Work::Skip(why)) => {
                tracing::debug!(event_id = %rec.event_id, why, "record skipped");
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "undecodable stream record skipped");
                continue;
            }
        };
        for effect in &effects {
            match app.run_effect(&candidate, effect).await {
                Ok(()) => tracing::debug!(key = %effect.key, "effect done"),
                Err(e) if e.is_retryable() => {
                    tracing::warn!(key = %effect.key, error = %e, "effect failed; the batch resumes here");
                    response.batch_item_failures.push(resume_at(rec));
                    return response;
                }
                Err(e) => {
                    tracing::error!(key = %effect.key, candidate = %candidate.number, error = %e, "effect failed permanently; skipped");
                }
            }
        }
    }
    response
}
