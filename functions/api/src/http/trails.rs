//! Every candidate's audit trail over a period, for auditors: JSON a page at a time, or CSV in
//! files of at most [`FILE_ROWS`] lines, each naming where the next one starts. Sam admins
//! only: a period's trails name every user and what happened to their software.

use super::auth::Caller;
use super::error::{ApiError, Json, Query};
use super::ApiState;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, LINK};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use reclaim_workflow::intake::FieldError;
use reclaim_workflow::ports::{Page, PageRequest, TrailEntry};
use reclaim_workflow::{history, Timestamp};
use serde::Deserialize;

/// Lines in one CSV file; a longer period continues in the file its `Link` header names.
pub const FILE_ROWS: usize = 100_000;
/// Entries read from the store per call while a file is written.
const READ: u32 = 1000;

/// The period's query: `from` and `to` (dates or RFC 3339 times), and where to go on.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodQuery {
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

fn bad(field: &str, message: String) -> ApiError {
    ApiError {
        fields: vec![FieldError {
            field: field.into(),
            message: message.clone(),
        }],
        ..ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("{field}: {message}"),
        )
    }
}

impl PeriodQuery {
    /// The period, or a 400 naming what is missing or unreadable.
    pub fn period(&self) -> Result<(Timestamp, Timestamp), ApiError> {
        let from = self
            .from
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| bad("from", "is required, e.g. from=2026-01-01".into()))?;
        let to = self
            .to
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| bad("to", "is required, e.g. to=2026-12-31".into()))?;
        history::period(from, to).map_err(|(field, message)| bad(field, message))
    }

    pub fn from_parts(from: Option<&str>, to: Option<&str>, cursor: Option<&str>) -> Self {
        PeriodQuery {
            from: from.map(str::to_string),
            to: to.map(str::to_string),
            cursor: cursor.map(str::to_string),
            limit: None,
        }
    }
}

/// One page of a period's entries, oldest first.
pub async fn trails(
    State(s): State<ApiState>,
    caller: Caller,
    Query(q): Query<PeriodQuery>,
) -> Result<Json<Page<TrailEntry>>, ApiError> {
    caller.require_sam_admin("exporting audit trails")?;
    let (from, to) = q.period()?;
    let limit = match q.limit {
        None => super::candidates::DEFAULT_LIMIT,
        Some(l) if (1..=super::candidates::MAX_LIMIT).contains(&l) => l,
        Some(_) => {
            return Err(bad(
                "limit",
                format!("must be between 1 and {}", super::candidates::MAX_LIMIT),
            ))
        }
    };
    let page = s
        .app
        .ports
        .candidates
        .history_between(
            from,
            to,
            &PageRequest {
                limit,
                cursor: q.cursor.clone(),
                sort: None,
            },
        )
        .await?;
    Ok(Json(page))
}

/// A period's entries as one CSV file (at most [`FILE_ROWS`] lines), and the cursor of the
/// next file when there is more. The API and the workspace both send this.
pub(crate) async fn period_csv(
    s: &ApiState,
    q: &PeriodQuery,
) -> Result<(String, Option<String>), ApiError> {
    let (from, to) = q.period()?;
    let mut out = String::from(history::CSV_HEADER);
    let mut rows = 0;
    let mut cursor = q.cursor.clone();
    loop {
        let page = s
            .app
            .ports
            .candidates
            .history_between(
                from,
                to,
                &PageRequest {
                    limit: READ.min(u32::try_from(FILE_ROWS - rows).unwrap_or(READ)),
                    cursor,
                    sort: None,
                },
            )
            .await?;
        rows += page.items.len();
        for t in &page.items {
            out.push_str(&history::csv_line(&t.number, &t.entry));
        }
        match page.next {
            Some(next) if rows >= FILE_ROWS => return Ok((out, Some(next))),
            Some(next) => cursor = Some(next),
            None => return Ok((out, None)),
        }
    }
}

/// The CSV as a download; `Link: <…>; rel="next"` names the next file of a long period.
pub(crate) fn csv_file(
    body: String,
    next: Option<String>,
    base: &str,
    q: &PeriodQuery,
) -> Response {
    let name = format!(
        "attachment; filename=\"history-{}-{}.csv\"",
        file_part(q.from.as_deref()),
        file_part(q.to.as_deref())
    );
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&name) {
        headers.insert(CONTENT_DISPOSITION, v);
    }
    if let Some(next) = next {
        let link = format!(
            "<{base}?from={}&to={}&cursor={}>; rel=\"next\"",
            super::outbox::encode_segment(q.from.as_deref().unwrap_or_default()),
            super::outbox::encode_segment(q.to.as_deref().unwrap_or_default()),
            super::outbox::encode_segment(&next)
        );
        if let Ok(v) = HeaderValue::from_str(&link) {
            headers.insert(LINK, v);
        }
    }
    (headers, body).into_response()
}

/// A date for a file name: digits and dashes only.
fn file_part(text: Option<&str>) -> String {
    text.unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '-')
        .take(10)
        .collect()
}

/// The period's entries as CSV.
pub async fn trails_csv(
    State(s): State<ApiState>,
    caller: Caller,
    Query(q): Query<PeriodQuery>,
) -> Result<Response, ApiError> {
    caller.require_sam_admin("exporting audit trails")?;
    let (body, next) = period_csv(&s, &q).await?;
    Ok(csv_file(body, next, "/api/v1/history.csv", &q))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_of_a_longer_period_names_the_next_one() {
        let q = PeriodQuery::from_parts(Some("2026-01-01"), Some("2026-12-31"), None);
        let r = csv_file("x\n".into(), Some("abc=".into()), "/api/v1/history.csv", &q);
        assert_eq!(
            r.headers().get(LINK).and_then(|v| v.to_str().ok()),
            Some("</api/v1/history.csv?from=2026-01-01&to=2026-12-31&cursor=abc%3D>; rel=\"next\"")
        );
        assert_eq!(
            r.headers()
                .get(CONTENT_DISPOSITION)
                .and_then(|v| v.to_str().ok()),
            Some("attachment; filename=\"history-2026-01-01-2026-12-31.csv\"")
        );
        let last = csv_file("x\n".into(), None, "/api/v1/history.csv", &q);
        assert!(last.headers().get(LINK).is_none());
    }

    #[test]
    fn a_missing_date_is_named() {
        let q = PeriodQuery::from_parts(None, Some("2026-12-31"), None);
        let e = q.period().unwrap_err();
        assert_eq!(e.fields[0].field, "from");
    }
}
