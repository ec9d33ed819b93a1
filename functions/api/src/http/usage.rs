//! `/api/v1` for rules, time and money: usage imports (`POST /usage`, JSON or CSV), stale
//! alerts (`GET /alerts`) and the savings export (`GET /savings.csv`).
//!
//! The handlers only translate HTTP: rule evaluation, dedupe and cancel happen in
//! [`App::import_usage`](crate::App::import_usage), which the CLI calls too.

use super::auth::Caller;
use super::candidates::FilterBody;
use super::error::{bytes_rejection, is_json, parse_json, ApiError, Json, Query};
use super::ApiState;
use crate::app::{RowError, UsageReport};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use reclaim_workflow::intake;
use reclaim_workflow::usage::{StaleAlert, UsageBatch};
use serde::Deserialize;

/// Rows one usage call may carry; larger exports go through `reclaim usage import` or several
/// calls (the body limit applies too).
pub const MAX_USAGE_ROWS: usize = 100_000;

/// A JSON usage upload: rows with the columns of [`reclaim_workflow::usage::USAGE_FIELDS`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageBody {
    usage: Vec<serde_json::Value>,
    /// Import the good rows and report the bad ones, instead of importing nothing.
    #[serde(default)]
    skip_invalid: bool,
}

/// `?skip_invalid=true` works for both body kinds (a CSV body has nowhere else to say it).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    #[serde(default)]
    skip_invalid: bool,
}

fn is_csv(content_type: Option<&HeaderValue>) -> bool {
    let mime = content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    matches!(mime.as_str(), "text/csv" | "application/csv")
}

/// JSON items into the batch one at a time, so that with `skip_invalid` a nested value in one
/// item does not throw away the others.
fn json_rows(items: Vec<serde_json::Value>, batch: &mut UsageBatch) {
    for (i, item) in items.into_iter().enumerate() {
        let line = i + 1;
        match intake::rows_from_json(&serde_json::Value::Array(vec![item])) {
            Ok(rows) => {
                for (_, row) in &rows {
                    batch.push(line, row);
                }
            }
            Err(errors) => batch.reject(line, errors.into_iter().map(|(_, e)| e).collect()),
        }
    }
}

fn too_many() -> ApiError {
    ApiError::invalid_field("usage", format!("at most {MAX_USAGE_ROWS} rows per call"))
}

fn rows_error(rows: Vec<RowError>) -> ApiError {
    let lines: Vec<String> = rows.iter().map(|r| r.line.to_string()).collect();
    ApiError {
        rows,
        ..ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_rows",
            format!(
                "nothing was imported: rows {} are invalid (send skip_invalid=true to import the rest)",
                lines.join(", ")
            ),
        )
    }
}

/// Imports usage and evaluates the rules. 201 when candidates were created, 200 otherwise (a
/// report-only run, or everything already open); 422 naming each bad row by line and field
/// when any row is bad and `skip_invalid` is not set, and then nothing is stored.
pub async fn import(
    State(s): State<ApiState>,
    caller: Caller,
    Query(q): Query<UsageQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    caller.require_sam_admin("importing usage")?;
    let bytes = body.map_err(bytes_rejection)?;
    let content_type = headers.get(CONTENT_TYPE);
    let mut batch = UsageBatch::default();
    let skip_invalid = if is_csv(content_type) {
        crate::rows::for_each_csv_row(&bytes, |_| {}, |line, row| batch.push(line, row)).map_err(
            |message| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_csv",
                    format!("the body is not CSV with a header line: {message}"),
                )
            },
        )?;
        q.skip_invalid
    } else if is_json(content_type) {
        let body: UsageBody = parse_json(&bytes)?;
        if body.usage.len() > MAX_USAGE_ROWS {
            return Err(too_many());
        }
        json_rows(body.usage, &mut batch);
        q.skip_invalid || body.skip_invalid
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send usage as JSON (`Content-Type: application/json`, {\"usage\": [...]}) \
             or as CSV with a header line (`Content-Type: text/csv`)",
        ));
    };
    if batch.rows == 0 {
        return Err(ApiError::invalid_field("usage", "give at least one row"));
    }
    if batch.rows > MAX_USAGE_ROWS {
        return Err(too_many());
    }
    let report: UsageReport = s.app.import_usage_batch(batch, skip_invalid).await?;
    if report.rejected {
        return Err(rows_error(report.invalid));
    }
    let status = if report.created.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(report)).into_response())
}

/// Where a page of alerts starts.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Alerts a page answers when the client does not say: a page like the candidate list's, so
/// one answer stays a few milliseconds of work however many alerts there are.
pub const ALERTS_PAGE: u32 = 100;

/// Open candidates that need a look (open more than 30 days, Awaiting Revocation more than 60),
/// longest first within a page: all of them for a sam admin, those of their groups (or
/// assigned to them) for anyone else. A page at a time (`limit`, at most 1,000); a
/// `Link: <…>; rel="next"` header names the next page.
pub async fn alerts(
    State(s): State<ApiState>,
    caller: Caller,
    Query(q): Query<AlertsQuery>,
) -> Result<Response, ApiError> {
    let limit = match q.limit {
        None => ALERTS_PAGE,
        Some(l) if (1..=1000).contains(&l) => l,
        Some(_) => {
            return Err(ApiError::invalid_field(
                "limit",
                "must be between 1 and 1000",
            ))
        }
    };
    let (alerts, next): (Vec<StaleAlert>, Option<String>) =
        s.app.stale_alerts_page(&caller.0, limit, q.cursor).await?;
    let mut res = Json(alerts).into_response();
    if let Some(next) = next {
        let link = format!(
            "</api/v1/alerts?limit={limit}&cursor={}>; rel=\"next\"",
            super::outbox::encode_segment(&next)
        );
        if let Ok(v) = HeaderValue::from_str(&link) {
            res.headers_mut().insert(axum::http::header::LINK, v);
        }
    }
    Ok(res)
}

/// The savings the caller may see, as CSV (one line per publisher, product, justification and
/// month), for spreadsheets. Same filters and scope as `GET /api/v1/savings`.
pub async fn savings_csv(
    state: State<ApiState>,
    caller: Caller,
    query: Query<FilterBody>,
) -> Result<Response, ApiError> {
    let Json(savings) = super::resources::savings(state, caller, query).await?;
    Ok((
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8"),
            (CONTENT_DISPOSITION, "attachment; filename=\"savings.csv\""),
        ],
        savings.to_csv(),
    )
        .into_response())
}
