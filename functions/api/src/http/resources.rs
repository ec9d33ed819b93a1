//! `/api/v1` beyond candidates: who am I, my tasks, rules, groups, savings, the bare graph.

use super::auth::Caller;
use super::candidates::{can_see, FilterBody};
use super::error::{ApiError, Json, Path, Query};
use super::ApiState;
use crate::app::AppError;
use axum::extract::State;
use axum::http::StatusCode;
use reclaim_workflow::intake::FieldError;
use reclaim_workflow::ports::PageRequest;
use reclaim_workflow::savings::Savings;
use reclaim_workflow::{workflow_graph, Group, Principal, Rule, Task, User, WorkflowGraph};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Me {
    pub user: Option<User>,
    pub principal: Principal,
}

/// The caller, with the roles and groups the API will use.
pub async fn me(State(s): State<ApiState>, caller: Caller) -> Result<Json<Me>, ApiError> {
    let user = s.app.ports.directory.user(&caller.0.user_id).await?;
    Ok(Json(Me {
        user,
        principal: caller.0,
    }))
}

/// The workflow graph without a candidate: every state and edge.
pub async fn bare_workflow(_caller: Caller) -> Json<WorkflowGraph> {
    Json(workflow_graph(None, &[]))
}

/// Open tasks assigned to me or to any of my groups.
pub async fn my_tasks(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<Task>>, ApiError> {
    Ok(Json(s.app.my_tasks(&caller.0).await?))
}

pub async fn rules(State(s): State<ApiState>, caller: Caller) -> Result<Json<Vec<Rule>>, ApiError> {
    caller.require_sam_admin("reading rules")?;
    Ok(Json(s.app.ports.rules.rules().await?))
}

pub async fn rule(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Rule>, ApiError> {
    caller.require_sam_admin("reading rules")?;
    s.app
        .ports
        .rules
        .rule(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("rule '{id}' not found")))
}

fn check_id(path_id: &str, body_id: &str, errors: &mut Vec<FieldError>) {
    if body_id != path_id {
        errors.push(FieldError {
            field: "id".into(),
            message: format!("must equal the id in the path ('{path_id}')"),
        });
    }
}

fn required(value: &str, field: &str, errors: &mut Vec<FieldError>) {
    if value.trim().is_empty() {
        errors.push(FieldError {
            field: field.into(),
            message: "is required".into(),
        });
    }
}

/// Creates or replaces a rule, checked by [`App::check_rule`](crate::App::check_rule): an unknown
/// assignment group, bad criteria or a mistyped field is a 422 naming the field, and nothing is
/// stored. Open candidates keep the snapshot they were created with.
pub async fn put_rule(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<serde_json::Value>,
) -> Result<Json<Rule>, ApiError> {
    caller.require_sam_admin("changing rules")?;
    let mut errors = Vec::new();
    let body_id = body.get("id").and_then(|v| v.as_str()).unwrap_or_default();
    check_id(&id, body_id, &mut errors);
    if !errors.is_empty() {
        // Name every problem in one answer, not only the id (the rule check says what an
        // id may look like).
        if let Err(AppError::Invalid(more)) = s.app.check_rule(&body).await {
            errors.extend(more);
        }
        return Err(ApiError::invalid(errors));
    }
    Ok(Json(s.app.put_rule(&body).await?))
}

/// Deletes a rule: 204, or 404 when there is none.
pub async fn delete_rule(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_sam_admin("deleting rules")?;
    s.app.delete_rule(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Assignment groups are readable by anyone signed in: approvers need to know their groups.
pub async fn groups(
    State(s): State<ApiState>,
    _caller: Caller,
) -> Result<Json<Vec<Group>>, ApiError> {
    Ok(Json(s.app.ports.directory.groups().await?))
}

pub async fn group(
    State(s): State<ApiState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Group>, ApiError> {
    s.app
        .ports
        .directory
        .group(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("group '{id}' not found")))
}

/// Creates or replaces a group; every member must be a known user.
pub async fn put_group(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(group): Json<Group>,
) -> Result<Json<Group>, ApiError> {
    caller.require_sam_admin("changing groups")?;
    let mut errors = Vec::new();
    check_id(&id, &group.id, &mut errors);
    required(&group.name, "name", &mut errors);
    if let Err(e) = group.check_text() {
        errors.push(e);
    }
    for m in &group.members {
        if s.app.ports.directory.user(m).await?.is_none() {
            errors.push(FieldError {
                field: "members".into(),
                message: format!("unknown user '{m}'"),
            });
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    s.app.ports.directory.put_group(&group).await?;
    Ok(Json(group))
}

/// Potential and actual savings over the candidates the caller may see (and the filter
/// selects).
pub async fn savings(
    State(s): State<ApiState>,
    caller: Caller,
    Query(q): Query<FilterBody>,
) -> Result<Json<Savings>, ApiError> {
    Ok(Json(
        savings_in_scope(&s, &caller.0, &q.into_filter()).await?,
    ))
}

/// The savings of the candidates a person may see (the API and the dashboard share it).
pub(crate) async fn savings_in_scope(
    s: &ApiState,
    p: &Principal,
    filter: &reclaim_workflow::ports::CandidateFilter,
) -> Result<Savings, ApiError> {
    if let Some(t) = savings_from_totals(s, p, filter).await? {
        return Ok(t);
    }
    let mut total = Savings::default();
    let mut page = PageRequest {
        limit: 500,
        cursor: None,
        sort: None,
    };
    loop {
        let got = s.app.ports.candidates.list(filter, &page).await?;
        for c in got.items.iter().filter(|c| can_see(p, c)) {
            total.add(c);
        }
        match got.next {
            Some(n) => page.cursor = Some(n),
            None => break,
        }
    }
    Ok(total)
}

/// The savings from the store's running totals, when the store keeps them and the question is
/// one they answer: everything (a sam admin), one group, or a person's groups plus their own
/// candidates outside those groups. `None` sends the caller to sum the candidates.
async fn savings_from_totals(
    s: &ApiState,
    p: &Principal,
    filter: &reclaim_workflow::ports::CandidateFilter,
) -> Result<Option<Savings>, ApiError> {
    use reclaim_workflow::ports::CandidateFilter;
    use reclaim_workflow::savings::{group_scope, ALL_SCOPE};
    let only_group = *filter
        == CandidateFilter {
            group: filter.group.clone(),
            ..CandidateFilter::default()
        };
    if !only_group {
        return Ok(None);
    }
    let store = &s.app.ports.candidates;
    let scopes: Vec<String> = match (&filter.group, p.sam_admin) {
        (None, true) => vec![ALL_SCOPE.to_string()],
        (Some(g), admin) if admin || p.groups.contains(g) => vec![group_scope(Some(g))],
        (Some(_), _) => return Ok(None),
        (None, false) => p.groups.iter().map(|g| group_scope(Some(g))).collect(),
    };
    let mut total = Savings::default();
    for scope in scopes {
        match store.savings(&scope).await? {
            Some(t) => total.merge(&t),
            None => return Ok(None),
        }
    }
    if filter.group.is_none() && !p.sam_admin {
        // A person's own candidates count too, where their groups did not count them already.
        let mine = CandidateFilter {
            user: Some(p.user_id.clone()),
            ..CandidateFilter::default()
        };
        let mut page = PageRequest {
            limit: 500,
            cursor: None,
            sort: None,
        };
        loop {
            let got = store.list(&mine, &page).await?;
            for c in got.items.iter().filter(|c| {
                !c.assignment_group
                    .as_ref()
                    .is_some_and(|g| p.groups.contains(g))
            }) {
                total.add(c);
            }
            match got.next {
                Some(n) => page.cursor = Some(n),
                None => break,
            }
        }
    }
    Ok(Some(total))
}
