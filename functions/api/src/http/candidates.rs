//! `/api/v1/candidates…`: list, get, import, and every person-driven transition.
//!
//! Reading is scoped by role: a sam admin sees every candidate; anyone else sees the
//! candidates they hold, the ones assigned to them, and those of their assignment groups.
//! Transitions go through [`App::transition`](crate::App::transition), where the core checks
//! the actor's right and the (state, event) pair; the routes that only a sam admin may call at
//! all are refused here first so that a 403 does not depend on the candidate's state.

use super::auth::Caller;
use super::error::{ApiError, Json, OptionalJson, Path, Query};
use super::{ApiState, ClientInfo};
use crate::app::ImportReport;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use reclaim_workflow::intake::FieldError;
use reclaim_workflow::ports::{CandidateFilter, Count, PageRequest, Sort, SortKey};
use reclaim_workflow::{
    apply, workflow_graph, Actor, AppliesTo, Candidate, Event, HistoryEntry, Justification,
    Principal, State as WfState, Task, UserRef, Via, WorkflowGraph,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Page size when the client gives none.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page a client may ask for.
pub const MAX_LIMIT: u32 = 500;
/// Rows one import call may carry.
pub const MAX_IMPORT_ROWS: usize = 10_000;
/// Store pages read to fill one page for a caller who sees few candidates; past this the
/// page comes back short, with `next` to continue.
const MAX_SCAN_PAGES: usize = 20;

/// Whether a person may read a candidate.
pub fn can_see(p: &Principal, c: &Candidate) -> bool {
    p.sam_admin
        || c.user.as_ref().is_some_and(|u| u.id == p.user_id)
        || c.assigned_to.as_deref() == Some(p.user_id.as_str())
        || c.assignment_group
            .as_deref()
            .is_some_and(|g| p.groups.iter().any(|x| x == g))
}

/// The list filters, as query parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    state: Option<WfState>,
    justification: Option<Justification>,
    applies_to: Option<AppliesTo>,
    publisher: Option<String>,
    product: Option<String>,
    group: Option<String>,
    user: Option<String>,
    software: Option<String>,
    person: Option<String>,
    /// A column, `-` in front for descending: `savings`, `-inactive-days`.
    sort: Option<String>,
    /// Also count the matches (up to a bound).
    #[serde(default)]
    count: bool,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// The filter of Reclaim All (and of the list, without paging).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterBody {
    state: Option<WfState>,
    justification: Option<Justification>,
    applies_to: Option<AppliesTo>,
    publisher: Option<String>,
    product: Option<String>,
    group: Option<String>,
    user: Option<String>,
    /// Part of a word of the publisher or product.
    software: Option<String>,
    /// Part of the user's id, name or email.
    person: Option<String>,
}

impl FilterBody {
    pub(crate) fn into_filter(self) -> CandidateFilter {
        CandidateFilter {
            state: self.state,
            justification: self.justification,
            applies_to: self.applies_to,
            publisher: self.publisher,
            product: self.product,
            group: self.group,
            user: self.user,
            due_before: None,
            software_text: self.software.filter(|t| !t.trim().is_empty()),
            user_text: self.person.filter(|t| !t.trim().is_empty()),
            alert_before: None,
        }
    }
}

/// Reads `sort=savings` / `sort=-savings`.
pub(crate) fn parse_sort(text: Option<&str>) -> Result<Option<Sort>, ApiError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let (descending, name) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let key = SortKey::parse(name).ok_or_else(|| {
        let known: Vec<&str> = SortKey::ALL.iter().map(|k| k.as_str()).collect();
        ApiError {
            fields: vec![FieldError {
                field: "sort".into(),
                message: format!(
                    "must be one of {}, with - in front for descending",
                    known.join(", ")
                ),
            }],
            ..ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("cannot sort by '{name}'"),
            )
        }
    })?;
    Ok(Some(Sort { key, descending }))
}

impl ListQuery {
    fn split(self) -> (FilterBody, Option<u32>, Option<String>) {
        (
            FilterBody {
                state: self.state,
                justification: self.justification,
                applies_to: self.applies_to,
                publisher: self.publisher,
                product: self.product,
                group: self.group,
                user: self.user,
                software: self.software,
                person: self.person,
            },
            self.limit,
            self.cursor,
        )
    }
}

/// Counts stop here: a bounded read however large the estate ("more than 10,000").
pub const COUNT_UP_TO: u64 = 10_000;

/// One page of candidates.
#[derive(Debug, Serialize)]
pub struct CandidatePage {
    pub items: Vec<Candidate>,
    /// Pass back as `cursor` for the next page; absent on the last one.
    pub next: Option<String>,
    /// Pass back as `cursor` for the page before; absent on the first one (and where the store
    /// cannot go back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
    /// How many match, when asked for (`count=true`) and the caller sees everything the filter
    /// matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<Count>,
}

/// Narrows a filter to what a non-admin may list, or refuses a filter that asks for more.
/// Returns whether rows must still be checked one by one.
fn scope_filter(p: &Principal, filter: &mut CandidateFilter) -> Result<bool, ApiError> {
    if p.sam_admin {
        return Ok(false);
    }
    if let Some(g) = &filter.group {
        if !p.groups.contains(g) {
            return Err(ApiError::forbidden(format!(
                "you are not a member of assignment group '{g}'"
            )));
        }
        // Everything in one of my groups is visible.
        return Ok(false);
    }
    if p.groups.is_empty() {
        match filter.user.as_deref() {
            None => filter.user = Some(p.user_id.clone()),
            Some(u) if u == p.user_id => {}
            Some(_) => return Err(ApiError::forbidden("you may only list your own candidates")),
        }
    }
    Ok(true)
}

/// Lists candidates with cursor pagination, scoped to what the caller may see.
pub async fn list(
    State(s): State<ApiState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<CandidatePage>, ApiError> {
    let sort = parse_sort(q.sort.as_deref())?;
    let count = q.count;
    let (filter, limit, cursor) = q.split();
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(l) if (1..=MAX_LIMIT).contains(&l) => l,
        Some(_) => {
            return Err(ApiError {
                fields: vec![FieldError {
                    field: "limit".into(),
                    message: format!("must be between 1 and {MAX_LIMIT}"),
                }],
                ..ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_query",
                    format!("limit must be between 1 and {MAX_LIMIT}"),
                )
            })
        }
    };
    let page = scoped_page(
        &s,
        &caller.0,
        filter.into_filter(),
        PageRequest {
            limit,
            cursor,
            sort,
        },
        count,
    )
    .await?;
    Ok(Json(page))
}

/// One page of the candidates a person may see (the API list and the workspace list share
/// it): a filter asking for more than they may see is refused, not silently narrowed.
pub(crate) async fn scoped_page(
    s: &ApiState,
    p: &Principal,
    mut filter: CandidateFilter,
    mut page: PageRequest,
    count: bool,
) -> Result<CandidatePage, ApiError> {
    let check_each = scope_filter(p, &mut filter)?;
    let store = &s.app.ports.candidates;
    let limit = page.limit;
    let mut items = Vec::new();
    if !check_each {
        // The store's page is the caller's page: it can go back and be counted.
        let total = if count {
            Some(store.count(&filter, COUNT_UP_TO).await?)
        } else {
            None
        };
        let got = store.list(&filter, &page).await?;
        return Ok(CandidatePage {
            items: got.items,
            next: got.next,
            prev: got.prev,
            total,
        });
    }
    for _ in 0..MAX_SCAN_PAGES {
        let got = store.list(&filter, &page).await?;
        items.extend(
            got.items
                .into_iter()
                .filter(|c| !check_each || can_see(p, c)),
        );
        page.cursor = got.next;
        let want = limit.saturating_sub(u32::try_from(items.len()).unwrap_or(u32::MAX));
        if want == 0 || page.cursor.is_none() {
            break;
        }
        // Ask for exactly what is missing, so no row is read past the cursor we hand back.
        page.limit = want;
    }
    Ok(CandidatePage {
        items,
        next: page.cursor,
        prev: None,
        total: None,
    })
}

/// A candidate with everything its page shows.
#[derive(Debug, Serialize)]
pub struct CandidateDetail {
    pub candidate: Candidate,
    /// Unused rights × price, per the candidate's own `price_period`.
    pub potential_savings_cents: i64,
    /// The same on the basis the savings report counts it: per year (a monthly price × 12),
    /// or one-time for a perpetual licence.
    pub savings: reclaim_workflow::Saving,
    pub history: Vec<HistoryEntry>,
    pub tasks: Vec<Task>,
    pub workflow: WorkflowGraph,
    /// The events this caller may send now (`reclaim`, `answer-keep`, ...).
    pub actions: Vec<&'static str>,
    pub links: BTreeMap<&'static str, String>,
}

/// Reads a candidate the caller may see: 404 if it does not exist, 403 if it is not theirs.
pub(crate) async fn visible(s: &ApiState, p: &Principal, id: &str) -> Result<Candidate, ApiError> {
    let c = s.app.candidate(id).await?;
    if can_see(p, &c) {
        Ok(c)
    } else {
        Err(ApiError::forbidden(format!(
            "you may not see candidate {}",
            c.number
        )))
    }
}

/// What this person could do to the candidate now, by asking the core (pure, no write): the
/// API's `actions` and the workspace's buttons both come from here, never from a second copy
/// of the rights table.
pub(crate) fn actions(
    p: &Principal,
    c: &Candidate,
    now: reclaim_workflow::Timestamp,
) -> Vec<&'static str> {
    let actor = Actor::Person(p.clone());
    let via = Via::api();
    let user = c.user.clone().unwrap_or(UserRef {
        id: "probe".into(),
        display_name: String::new(),
        email: None,
        upn: None,
        itil: false,
        vip: false,
    });
    let probes = [
        Event::Reclaim,
        Event::Answer {
            keep: true,
            comment: None,
            via: via.clone(),
        },
        Event::Answer {
            keep: false,
            comment: None,
            via: via.clone(),
        },
        Event::Approve {
            comment: None,
            via: via.clone(),
        },
        Event::Reject { comment: None, via },
        Event::CloseComplete { note: None },
        Event::CloseSkipped { reason: None },
        Event::Resume,
        Event::Assign {
            group: None,
            assigned_to: None,
        },
        Event::WorkNote {
            text: "probe".into(),
        },
        Event::UpdateUser { user },
        Event::Reopen {
            candidate_id: "probe".into(),
            candidate_number: "probe".into(),
        },
        Event::AcceptReappeared {
            reason: "probe".into(),
        },
        Event::CheckNow,
        Event::OverrideExclusion {
            comment: "probe".into(),
        },
    ];
    probes
        .iter()
        .filter(|e| apply(c, e, &actor, now).is_ok())
        .map(Event::name)
        .collect()
}

/// A candidate's trail for an auditor: one CSV line per transition, in words and as recorded.
pub async fn history_csv(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let c = visible(&s, &caller.0, &id).await?;
    let entries = s.app.ports.candidates.history(&c.id).await?;
    Ok(super::ui::csv_download(
        reclaim_workflow::history::to_csv(&c.number, &entries),
        &format!("{}-history.csv", c.number),
    ))
}

/// One candidate by id or number, with history, tasks, savings and the workflow graph.
pub async fn get(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CandidateDetail>, ApiError> {
    let c = visible(&s, &caller.0, &id).await?;
    // Independent reads: one round trip to the store instead of two.
    let (history, tasks) = tokio::join!(
        s.app.ports.candidates.history(&c.id),
        s.app.ports.tasks.tasks_for(&c.id)
    );
    let (history, tasks) = (history?, tasks?);
    let workflow = workflow_graph(Some(c.state), &history);
    let base = format!("/api/v1/candidates/{}", c.id);
    let links = BTreeMap::from([
        ("self", base.clone()),
        ("workflow", format!("{base}/workflow")),
    ]);
    Ok(Json(CandidateDetail {
        potential_savings_cents: c.potential_savings_cents(),
        savings: c.saving(),
        actions: actions(&caller.0, &c, s.app.now()),
        candidate: c,
        history,
        tasks,
        workflow,
        links,
    }))
}

/// "Show Workflow" for one candidate: the graph, its current stage and the path taken.
pub async fn workflow(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WorkflowGraph>, ApiError> {
    let c = visible(&s, &caller.0, &id).await?;
    let history = s.app.ports.candidates.history(&c.id).await?;
    Ok(Json(workflow_graph(Some(c.state), &history)))
}

/// Candidates to create, as rows of the import format (the same fields as the CSV columns).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    candidates: Vec<serde_json::Map<String, serde_json::Value>>,
    /// Store the good rows and report the bad ones, instead of storing nothing.
    #[serde(default)]
    skip_invalid: bool,
}

/// Creates candidates through [`App::import`](crate::App::import): nothing is stored when any
/// row is bad (422 naming each row and field) unless `skip_invalid`.
pub async fn import(
    State(s): State<ApiState>,
    caller: Caller,
    Json(body): Json<ImportBody>,
) -> Result<Response, ApiError> {
    caller.require_sam_admin("creating candidates")?;
    if body.candidates.is_empty() {
        return Err(ApiError::invalid_field("candidates", "give at least one"));
    }
    if body.candidates.len() > MAX_IMPORT_ROWS {
        return Err(ApiError::invalid_field(
            "candidates",
            format!("at most {MAX_IMPORT_ROWS} rows per call"),
        ));
    }
    let mut rows = Vec::with_capacity(body.candidates.len());
    let mut shape_errors = Vec::new();
    for (i, obj) in body.candidates.into_iter().enumerate() {
        let mut row = BTreeMap::new();
        let mut errors = Vec::new();
        for (k, v) in obj {
            let text = match v {
                serde_json::Value::Null => continue,
                serde_json::Value::String(t) => t,
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => {
                    errors.push(FieldError {
                        field: k,
                        message: "must be text, a number or true/false".into(),
                    });
                    continue;
                }
            };
            row.insert(k, text);
        }
        if errors.is_empty() {
            rows.push((i + 1, row));
        } else {
            shape_errors.push(crate::app::RowError {
                line: i + 1,
                errors,
            });
        }
    }
    if !shape_errors.is_empty() && !body.skip_invalid {
        return Err(rows_error(shape_errors));
    }
    let mut report: ImportReport = s.app.import(rows, body.skip_invalid).await?;
    if report.rejected {
        return Err(rows_error(report.invalid));
    }
    report.invalid.extend(shape_errors);
    report.invalid.sort_by_key(|r| r.line);
    let status = if report.created.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(report)).into_response())
}

fn rows_error(rows: Vec<crate::app::RowError>) -> ApiError {
    let lines: Vec<String> = rows.iter().map(|r| r.line.to_string()).collect();
    ApiError {
        rows,
        ..ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_rows",
            format!(
                "nothing was created: rows {} are invalid (send skip_invalid to store the rest)",
                lines.join(", ")
            ),
        )
    }
}

/// `?dry_run=true`: say what would happen, change nothing.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRun {
    #[serde(default)]
    dry_run: bool,
}

/// The most candidates one preview lists.
const MAX_PREVIEW: usize = 10_000;

/// Reclaim every Ready candidate the filter selects; with `?dry_run=true`, the preview of what
/// each would do (ask the user, remove at once, need attention, excluded) and nothing else.
pub async fn reclaim_all(
    State(s): State<ApiState>,
    caller: Caller,
    Query(q): Query<DryRun>,
    OptionalJson(body): OptionalJson<FilterBody>,
) -> Result<Response, ApiError> {
    caller.require_sam_admin("Reclaim All")?;
    if body.state.is_some_and(|st| st != WfState::Ready) {
        return Err(ApiError::invalid_field(
            "state",
            "Reclaim All only takes Ready candidates; leave state out or give 'ready'",
        ));
    }
    let filter = body.into_filter();
    let actor = Actor::Person(caller.0);
    if q.dry_run {
        let ready = s.app.ready_matching(&filter, MAX_PREVIEW).await?;
        let preview = s.app.reclaim_preview(&ready, &actor).await?;
        return Ok(Json(preview).into_response());
    }
    Ok(Json(s.app.reclaim_all(&filter, &actor, &|_| {}).await?).into_response())
}

async fn run(
    s: &ApiState,
    caller: Caller,
    id: &str,
    event: Event,
    expected_version: Option<u64>,
) -> Result<Json<Candidate>, ApiError> {
    let actor = Actor::Person(caller.0);
    let c = s
        .app
        .transition(id, &event, &actor, expected_version)
        .await?;
    Ok(Json(c))
}

fn via(client: ClientInfo) -> Via {
    Via {
        channel: "api".into(),
        ip: client.ip,
        user_agent: client.user_agent,
    }
}

/// A transition body with nothing but the optional version guard.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionBody {
    /// The version the client last saw; if the candidate moved since, 409 and nothing changes.
    expected_version: Option<u64>,
}

pub async fn reclaim(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJson(b): OptionalJson<VersionBody>,
) -> Result<Json<Candidate>, ApiError> {
    caller.require_sam_admin("Reclaim")?;
    run(&s, caller, &id, Event::Reclaim, b.expected_version).await
}

pub async fn resume(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJson(b): OptionalJson<VersionBody>,
) -> Result<Json<Candidate>, ApiError> {
    caller.require_sam_admin("Resume")?;
    run(&s, caller, &id, Event::Resume, b.expected_version).await
}

/// The user's own answer (keep = Yes, remove = No), for users working in the API or a task.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerBody {
    keep: bool,
    comment: Option<String>,
    expected_version: Option<u64>,
}

pub async fn answer(
    State(s): State<ApiState>,
    caller: Caller,
    client: ClientInfo,
    Path(id): Path<String>,
    Json(b): Json<AnswerBody>,
) -> Result<Json<Candidate>, ApiError> {
    let event = Event::Answer {
        keep: b.keep,
        comment: b.comment,
        via: via(client),
    };
    run(&s, caller, &id, event, b.expected_version).await
}

/// An approver's decision with an optional comment.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    comment: Option<String>,
    expected_version: Option<u64>,
}

pub async fn approve(
    State(s): State<ApiState>,
    caller: Caller,
    client: ClientInfo,
    Path(id): Path<String>,
    OptionalJson(b): OptionalJson<CommentBody>,
) -> Result<Json<Candidate>, ApiError> {
    let event = Event::Approve {
        comment: b.comment,
        via: via(client),
    };
    run(&s, caller, &id, event, b.expected_version).await
}

pub async fn reject(
    State(s): State<ApiState>,
    caller: Caller,
    client: ClientInfo,
    Path(id): Path<String>,
    OptionalJson(b): OptionalJson<CommentBody>,
) -> Result<Json<Candidate>, ApiError> {
    let event = Event::Reject {
        comment: b.comment,
        via: via(client),
    };
    run(&s, caller, &id, event, b.expected_version).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseCompleteBody {
    note: Option<String>,
    expected_version: Option<u64>,
}

/// Close Complete: a sam admin, or the assignee of the manual removal (the core decides).
pub async fn close_complete(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJson(b): OptionalJson<CloseCompleteBody>,
) -> Result<Json<Candidate>, ApiError> {
    let event = Event::CloseComplete { note: b.note };
    run(&s, caller, &id, event, b.expected_version).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseSkippedBody {
    reason: Option<String>,
    expected_version: Option<u64>,
}

pub async fn close_skipped(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJson(b): OptionalJson<CloseSkippedBody>,
) -> Result<Json<Candidate>, ApiError> {
    caller.require_sam_admin("Close Skipped")?;
    let event = Event::CloseSkipped { reason: b.reason };
    run(&s, caller, &id, event, b.expected_version).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideBody {
    /// Why this candidate goes on although its rule excludes its user; kept on the record.
    comment: String,
    expected_version: Option<u64>,
}

/// Reclaim this candidate although its rule excludes its user (a VIP, an excluded group): the
/// next Reclaim, and the removal, go ahead.
pub async fn override_exclusion(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(b): Json<OverrideBody>,
) -> Result<Json<Candidate>, ApiError> {
    caller.require_sam_admin("Override the exclusion")?;
    let event = Event::OverrideExclusion { comment: b.comment };
    run(&s, caller, &id, event, b.expected_version).await
}

/// Ask the vendor now whether the right is gone, instead of waiting for the next check.
pub async fn check_now(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJson(b): OptionalJson<VersionBody>,
) -> Result<Json<Candidate>, ApiError> {
    caller.require_sam_admin("Check now")?;
    run(&s, caller, &id, Event::CheckNow, b.expected_version).await
}

/// Reclaim again a right that came back after closing: answers the new candidate (Ready,
/// `reopened_from` naming this one), 201.
pub async fn reopen(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJson(_): OptionalJson<VersionBody>,
) -> Result<(axum::http::StatusCode, Json<Candidate>), ApiError> {
    caller.require_sam_admin("Reopen")?;
    let again = s.app.reopen(&id, &Actor::Person(caller.0)).await?;
    Ok((axum::http::StatusCode::CREATED, Json(again)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptBody {
    /// Why the user keeps the right that came back; kept on the record.
    reason: String,
    expected_version: Option<u64>,
}

/// Leave a right that came back with its user, with a reason.
pub async fn accept_reappeared(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(b): Json<AcceptBody>,
) -> Result<Json<Candidate>, ApiError> {
    caller.require_sam_admin("Accept")?;
    let event = Event::AcceptReappeared { reason: b.reason };
    run(&s, caller, &id, event, b.expected_version).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    group: Option<String>,
    assigned_to: Option<String>,
    expected_version: Option<u64>,
}

/// Assign to a group and/or a person; both must exist in the directory.
pub async fn assign(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(b): Json<AssignBody>,
) -> Result<Json<Candidate>, ApiError> {
    caller.require_sam_admin("Assign")?;
    let event = s.app.assignment(b.group, b.assigned_to).await?;
    run(&s, caller, &id, event, b.expected_version).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkNoteBody {
    text: String,
    expected_version: Option<u64>,
}

/// Largest work note, in characters (the core's limit for every note and comment).
pub const MAX_NOTE: usize = reclaim_workflow::event::MAX_NOTE_CHARS;

pub async fn work_note(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(b): Json<WorkNoteBody>,
) -> Result<Json<Candidate>, ApiError> {
    if b.text.trim().is_empty() {
        return Err(ApiError::invalid_field("text", "a work note needs text"));
    }
    let event = Event::WorkNote { text: b.text };
    run(&s, caller, &id, event, b.expected_version).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserBody {
    user: UserRef,
    expected_version: Option<u64>,
}

/// Fix the candidate's user (e.g. the missing email) before Resume.
pub async fn update_user(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(b): Json<UserBody>,
) -> Result<Json<Candidate>, ApiError> {
    caller.require_sam_admin("fixing the user")?;
    let event = crate::App::user_update(b.user)?;
    run(&s, caller, &id, event, b.expected_version).await
}
