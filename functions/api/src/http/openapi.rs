//! `GET /api/v1/openapi.json`: an OpenAPI 3.1 document built from [`ROUTES`].
//!
//! The table is the single description of the HTTP surface; the Router registers its routes
//! through a builder that records them ([`super::mounted_routes`]), and a test checks that
//! both lists are the same, so the document cannot drift from what is served.

use super::Method;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No credential (link pages carry a signed token; health; the document itself).
    Public,
    /// Any signed-in person; what they see is scoped by role.
    User,
    /// Sam admins only.
    SamAdmin,
    /// Local mode only, unauthenticated (the outbox).
    Local,
}

/// One documented route.
#[derive(Clone, Copy, Debug)]
pub struct RouteDoc {
    pub method: Method,
    pub path: &'static str,
    pub summary: &'static str,
    pub access: Access,
    /// Query parameters (all optional strings unless the schema below says otherwise).
    pub query: &'static [&'static str],
    /// The request body's schema (a name in `components.schemas`).
    pub body: Option<&'static str>,
    /// Whether the body may be left out (every field optional).
    pub body_optional: bool,
    /// The success response: a schema name, or `html` for pages.
    pub response: &'static str,
}

const fn r(
    method: Method,
    path: &'static str,
    summary: &'static str,
    access: Access,
    response: &'static str,
) -> RouteDoc {
    RouteDoc {
        method,
        path,
        summary,
        access,
        query: &[],
        body: None,
        body_optional: false,
        response,
    }
}

const fn with_body(mut d: RouteDoc, body: &'static str, optional: bool) -> RouteDoc {
    d.body = Some(body);
    d.body_optional = optional;
    d
}

const fn with_query(mut d: RouteDoc, query: &'static [&'static str]) -> RouteDoc {
    d.query = query;
    d
}

const FILTERS: &[&str] = &[
    "state",
    "justification",
    "applies_to",
    "publisher",
    "product",
    "group",
    "user",
    "software",
    "person",
];
const LIST_QUERY: &[&str] = &[
    "state",
    "justification",
    "applies_to",
    "publisher",
    "product",
    "group",
    "user",
    "software",
    "person",
    "sort",
    "count",
    "limit",
    "cursor",
];

use Access::*;
use Method::*;

/// Every route the Router serves.
pub const ROUTES: &[RouteDoc] = &[
    r(Get, "/healthz", "Liveness check", Public, "Health"),
    r(Get, "/assets/reclaim.css", "Stylesheet of the pages", Public, "css"),
    r(Get, "/respond/{token}", "Confirmation page of an email link (never changes anything)", Public, "html"),
    with_body(
        r(Post, "/respond/{token}", "Answer through an email link (form post from the confirmation page)", Public, "html"),
        "AnswerForm",
        true,
    ),
    r(Get, "/api/v1/openapi.json", "This document", Public, "OpenApi"),
    r(Get, "/api/v1/me", "The caller, with roles and groups", User, "Me"),
    with_query(
        r(Get, "/api/v1/candidates", "List candidates (scoped by role) with filters and cursor pagination", User, "CandidatePage"),
        LIST_QUERY,
    ),
    with_body(
        r(Post, "/api/v1/candidates", "Create candidates from import rows (nothing stored if a row is bad, unless skip_invalid)", SamAdmin, "ImportReport"),
        "ImportBody",
        false,
    ),
    with_body(
        r(Post, "/api/v1/candidates/reclaim-all", "Reclaim every Ready candidate the filter selects; ?dry_run=true answers the preview (BulkPreview: each candidate's outcome: ask-user, remove-now, needs-attention, excluded, refused) and changes nothing", SamAdmin, "BulkReport"),
        "FilterBody",
        true,
    ),
    r(Get, "/api/v1/candidates/{id}", "One candidate (by id or number) with history, tasks, savings, workflow and allowed actions", User, "CandidateDetail"),
    r(Get, "/api/v1/candidates/{id}/workflow", "Show Workflow: the graph, the current stage and the path taken", User, "WorkflowGraph"),
    r(Get, "/api/v1/candidates/{id}/history.csv", "The candidate's history as CSV for auditors: who, when, what in words, the event, the stages, the details, address and browser", User, "csv"),
    with_body(r(Post, "/api/v1/candidates/{id}/reclaim", "Reclaim", SamAdmin, "Candidate"), "VersionBody", true),
    with_body(r(Post, "/api/v1/candidates/{id}/answer", "The candidate's user answers: keep (Yes) or remove (No)", User, "Candidate"), "AnswerBody", false),
    with_body(r(Post, "/api/v1/candidates/{id}/approve", "Approve a keep request (assignment-group member)", User, "Candidate"), "CommentBody", true),
    with_body(r(Post, "/api/v1/candidates/{id}/reject", "Reject a keep request (assignment-group member)", User, "Candidate"), "CommentBody", true),
    with_body(r(Post, "/api/v1/candidates/{id}/close-complete", "Close Complete (sam admin or the assignee)", User, "Candidate"), "CloseCompleteBody", true),
    with_body(r(Post, "/api/v1/candidates/{id}/close-skipped", "Close Skipped", SamAdmin, "Candidate"), "CloseSkippedBody", true),
    with_body(r(Post, "/api/v1/candidates/{id}/resume", "Resume after Attention Required", SamAdmin, "Candidate"), "VersionBody", true),
    with_body(r(Post, "/api/v1/candidates/{id}/override-exclusion", "Reclaim this candidate although its rule excludes its user (a comment is required and kept)", SamAdmin, "Candidate"), "OverrideBody", false),
    with_body(r(Post, "/api/v1/candidates/{id}/check-now", "Ask the vendor now whether the right is gone (a closed candidate, or a removal being verified); the answer arrives as the next transition", SamAdmin, "Candidate"), "VersionBody", true),
    with_body(r(Post, "/api/v1/candidates/{id}/reopen", "Reclaim again a right a re-check found back at the vendor: a new linked candidate (201)", SamAdmin, "Candidate"), "VersionBody", true),
    with_body(r(Post, "/api/v1/candidates/{id}/accept", "Leave a right that came back with its user, with a reason", SamAdmin, "Candidate"), "AcceptBody", false),
    with_body(r(Post, "/api/v1/candidates/{id}/assign", "Assign to a group and/or a person", SamAdmin, "Candidate"), "AssignBody", false),
    with_body(r(Post, "/api/v1/candidates/{id}/work-notes", "Add a work note (sam admin, group member or assignee)", User, "Candidate"), "WorkNoteBody", false),
    with_body(r(Put, "/api/v1/candidates/{id}/user", "Fix the candidate's user (e.g. a missing email) before Resume", SamAdmin, "Candidate"), "UserBody", false),
    r(Get, "/api/v1/workflow", "The bare workflow graph", User, "WorkflowGraph"),
    r(Get, "/api/v1/tasks/mine", "Open tasks assigned to me or my groups", User, "TaskList"),
    r(Get, "/api/v1/rules", "Reclamation rules", SamAdmin, "RuleList"),
    r(Get, "/api/v1/rules/{id}", "One rule", SamAdmin, "Rule"),
    with_body(r(Put, "/api/v1/rules/{id}", "Create or replace a rule", SamAdmin, "Rule"), "Rule", false),
    r(Delete, "/api/v1/rules/{id}", "Delete a rule (open candidates keep their snapshot of it)", SamAdmin, "empty"),
    r(Get, "/api/v1/groups", "Assignment groups", User, "GroupList"),
    r(Get, "/api/v1/groups/{id}", "One assignment group", User, "Group"),
    with_body(r(Put, "/api/v1/groups/{id}", "Create or replace an assignment group", SamAdmin, "Group"), "Group", false),
    with_query(
        r(Get, "/api/v1/savings", "Potential and actual savings over the candidates I may see", User, "Savings"),
        FILTERS,
    ),
    with_query(
        r(Get, "/api/v1/savings.csv", "Savings as CSV (totals by publisher, product, justification and month of closing, each line on the basis its basis column names: per year or one-time) over the candidates I may see", User, "csv"),
        FILTERS,
    ),
    with_query(
        with_body(
            r(Post, "/api/v1/usage", "Import usage (JSON or text/csv) and evaluate the rules: creates candidates, reports what report-only rules would create, cancels candidates whose user is active again; nothing stored if a row is bad, unless skip_invalid", SamAdmin, "UsageReport"),
            "UsageBody",
            false,
        ),
        &["skip_invalid"],
    ),
    with_query(
        r(Get, "/api/v1/alerts", "Alerts: Attention Required, open more than 30 days, Awaiting Revocation more than 60 days, or closed and found at the vendor again; a sam admin sees all, others those of their groups or assigned to them. A page at a time (limit, default 100, at most 1,000); a Link header (rel=next) names the next page", User, "StaleAlertList"),
        &["limit", "cursor"],
    ),
    with_query(
        r(Get, "/api/v1/history", "Every candidate's audit trail over a period (from, to: dates, to counting its whole day, or RFC 3339 times), oldest first, a page at a time: for auditors", SamAdmin, "TrailPage"),
        &["from", "to", "limit", "cursor"],
    ),
    with_query(
        r(Get, "/api/v1/history.csv", "The same as CSV, at most 100,000 lines a file; a Link header (rel=next) names the next file of a longer period", SamAdmin, "csv"),
        &["from", "to", "cursor"],
    ),
    r(Get, "/api/v1/connectors", "The usage connectors (plugins that collect usage from the vendors), their schedules, when each next runs and their latest runs", SamAdmin, "ConnectorList"),
    with_query(
        r(Get, "/api/v1/connectors/{id}/runs", "A connector's runs, newest first: pages, rows, created, report-only, canceled, skipped by reason, the connector's notes, the error that ended a failed run (limit, default 20, at most 200)", SamAdmin, "ConnectorRunList"),
        &["limit"],
    ),
    r(Post, "/api/v1/connectors/{id}/run", "Run now: a run the next runner takes at once (202 with the run); 409 while one is running", SamAdmin, "ConnectorRun"),
    r(Get, "/outbox", "Local outbox: messages with their links (local mode only)", Local, "html"),
    r(Get, "/outbox/{key}", "One message of the local outbox", Local, "html"),
    r(Get, "/outbox/{key}/html", "A message's HTML part, for a sandboxed frame", Local, "html"),
];

fn opt_string() -> Value {
    json!({"type": ["string", "null"]})
}

fn object(props: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": props,
        "required": required,
    })
}

fn enum_of(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}

fn schemas() -> Map<String, Value> {
    use reclaim_workflow::{AppliesTo, Justification, State};
    let states: Vec<&str> = State::ALL.iter().map(|s| s.as_str()).collect();
    let justifications: Vec<&str> = Justification::ALL.iter().map(|j| j.as_str()).collect();
    let applies: Vec<&str> = AppliesTo::ALL.iter().map(|a| a.as_str()).collect();
    let version = json!({"type": ["integer", "null"], "minimum": 0,
        "description": "The version you last saw; if the candidate moved since, 409 stale_version and nothing changes."});
    let filter_props = json!({
        "state": enum_of(&states),
        "justification": enum_of(&justifications),
        "applies_to": enum_of(&applies),
        "publisher": opt_string(), "product": opt_string(),
        "group": opt_string(), "user": opt_string(),
        "software": {"type": "string", "description": "Part of a word of the publisher or product, any case"},
        "person": {"type": "string", "description": "Part of the user's id, name or email, any case"},
    });
    let loose = |d: &str| json!({"type": "object", "description": d});
    let list_of = |name: &str| json!({"type": "array", "items": {"$ref": format!("#/components/schemas/{name}")}});
    let user_ref = object(
        json!({
            "id": {"type": "string"}, "display_name": {"type": "string"},
            "email": opt_string(), "upn": opt_string(),
            "itil": {"type": "boolean"}, "vip": {"type": "boolean"},
        }),
        &["id"],
    );
    let pairs: Vec<(&str, Value)> = vec![
        ("Error", json!({
            "type": "object",
            "required": ["error"],
            "properties": {"error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "description": "Stable machine-readable code, e.g. stale_version, not_allowed_in_state, invalid, unauthorized."},
                    "message": {"type": "string"},
                    "fields": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}},
                    "rows": {"type": "array", "items": {"type": "object", "properties": {"line": {"type": "integer"}, "errors": {"type": "array"}}}}
                }
            }}
        })),
        ("VersionBody", object(json!({"expected_version": version}), &[])),
        ("AnswerBody", object(json!({"keep": {"type": "boolean", "description": "true = Yes, keep it; false = No, remove it"}, "comment": opt_string(), "expected_version": version}), &["keep"])),
        ("CommentBody", object(json!({"comment": opt_string(), "expected_version": version}), &[])),
        ("CloseCompleteBody", object(json!({"note": opt_string(), "expected_version": version}), &[])),
        ("CloseSkippedBody", object(json!({"reason": opt_string(), "expected_version": version}), &[])),
        ("BulkPreview", loose("items: each candidate's id, number, version, software, user, rule, outcome (ask-user | remove-now | needs-attention | excluded | refused) and why")),
        ("AcceptBody", object(json!({"reason": {"type": "string"}, "expected_version": version}), &["reason"])),
        ("OverrideBody", object(json!({"comment": {"type": "string"}, "expected_version": version}), &["comment"])),
        ("AssignBody", object(json!({"group": opt_string(), "assigned_to": opt_string(), "expected_version": version}), &[])),
        ("WorkNoteBody", object(json!({"text": {"type": "string", "minLength": 1}, "expected_version": version}), &["text"])),
        ("UserRef", user_ref),
        ("UserBody", object(json!({"user": {"$ref": "#/components/schemas/UserRef"}, "expected_version": version}), &["user"])),
        ("FilterBody", object(filter_props, &[])),
        ("ImportBody", object(json!({
            "candidates": {"type": "array", "items": {
                "type": "object",
                "description": "One row; the same fields as the CSV import columns. Values are text, numbers or booleans.",
                "propertyNames": {"enum": reclaim_workflow::intake::FIELDS},
            }},
            "skip_invalid": {"type": "boolean"},
        }), &["candidates"])),
        ("AnswerForm", json!({"type": "object", "properties": {"comment": {"type": "string", "maxLength": 2000}}})),
        ("Rule", loose("A reclamation rule (id, name, applies_to, justification, notify_user, days_before_auto_reclamation, reminder_days, assignment_group, create_candidates, exclusions {users, groups, vips, provisioned_within_days}, plugin, max_revocation_attempts, software [{publisher, product?}], criteria {kind: last-used-before (days) | usage-below (hours) | never-used | overlapping (products) | consolidation (from)}, verify_within_days, recheck_days, price_period (monthly | yearly | one-time: the period of its candidates' prices when an import row names none; left out, the deployment's default)); unknown fields are refused and every problem names its field.")),
        ("RuleList", list_of("Rule")),
        ("Group", loose("An assignment group (id, name, email, members); unknown fields are refused.")),
        ("GroupList", list_of("Group")),
        ("Candidate", loose("A removal candidate; price_per_right_cents is paid per price_period (monthly | yearly | one-time; candidates stored before periods existed read as yearly).")),
        ("CandidatePage", json!({"type": "object", "properties": {
            "items": list_of("Candidate"),
            "next": opt_string(),
            "prev": opt_string(),
            "total": {"type": "object", "description": "With count=true: how many match, counted up to a bound; more=true means more than n.",
                      "properties": {"n": {"type": "integer"}, "more": {"type": "boolean"}}},
        }})),
        ("CandidateDetail", loose("candidate, potential_savings_cents (unused rights × price, per the candidate's price_period), savings {cents, basis: yearly | one-time} (the same as the savings report counts it: a monthly price × 12), history, tasks, workflow, actions, links")),
        ("TrailPage", json!({"type": "object", "properties": {
            "items": {"type": "array", "items": {"type": "object", "description": "number (the candidate's), candidate_id, version, at, actor, event, from, to, reason, ip, user_agent"}},
            "next": opt_string(),
        }})),
        ("WorkflowGraph", loose("states (id, label, current, visited), edges (from, to, label, taken), current, path")),
        ("Task", loose("A task: approval, user-answer or manual-removal.")),
        ("TaskList", list_of("Task")),
        ("Me", loose("user and principal (user_id, sam_admin, itil, groups)")),
        ("Savings", loose("Yearly savings (monthly prices × 12, yearly prices as they are): potential_cents, actual_cents (verified + unverified), verified_cents, unverified_cents, reappeared_cents (not in actual), candidates; one_time: the same fields for perpetual licences (one-time prices), never added to the yearly ones; actual_by_month and one_time_by_month (YYYY-MM → cents; a reappeared amount is taken out in the month it came back); by_publisher, by_product, by_justification (each: the yearly fields and one_time)")),
        ("UsageBody", object(json!({
            "usage": {"type": "array", "items": {
                "type": "object",
                "description": "One usage row; the same fields as the CSV columns. Values are text, numbers or booleans.",
                "propertyNames": {"enum": reclaim_workflow::usage::USAGE_FIELDS},
            }},
            "skip_invalid": {"type": "boolean"},
        }), &["usage"])),
        ("UsageReport", loose("rows, created (numbers), unmatched (lines no rule applied to), findings (line, rule, user, publisher, product, justification, decision {outcome: create | would-create | excluded | already-open, detail}), canceled (numbers), invalid rows (line, errors), rejected")),
        ("StaleAlert", loose("candidate_id, number, state, days, reason, assignment_group, reappeared_at (set for a closed candidate found again at the vendor)")),
        ("StaleAlertList", list_of("StaleAlert")),
        ("BulkReport", loose("reclaimed (numbers), by what happened: asked, removing, attention; refused and excluded (number, error)")),
        ("ImportReport", loose("created (numbers), invalid rows (line, errors), rejected")),
        ("ConnectorRun", loose("connector, seq, version, state (running, finished, failed), trigger (schedule or who pressed Run now), started_at, finished_at, lease_until, cursor, pages, rows, created, report_only, canceled, skipped (reason: rows), notes (the connector's reason: rows), error, retries")),
        ("ConnectorRunList", list_of("ConnectorRun")),
        ("Connector", loose("id, name, vendor, version, description, schedule, every_secs, next_run_at, runs (the latest ConnectorRun first)")),
        ("ConnectorList", list_of("Connector")),
        ("Health", loose("status")),
        ("OpenApi", loose("This document.")),
    ];
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn operation(d: &RouteDoc) -> Value {
    let mut params: Vec<Value> = d
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    params.extend(d.query.iter().map(|q| {
        let schema = match *q {
            "limit" => {
                json!({"type": "integer", "minimum": 1, "maximum": super::candidates::MAX_LIMIT})
            }
            "skip_invalid" | "count" => json!({"type": "boolean"}),
            "sort" => json!({
                "type": "string",
                "description": "A column, '-' in front for descending",
                "enum": reclaim_workflow::ports::SortKey::ALL
                    .iter()
                    .flat_map(|k| [k.as_str().to_string(), format!("-{}", k.as_str())])
                    .collect::<Vec<_>>(),
            }),
            "software" => json!({"type": "string", "description": "Part of a word of the publisher or product, any case"}),
            "person" => json!({"type": "string", "description": "Part of the user's id, name or email, any case"}),
            _ => json!({"type": "string"}),
        };
        json!({"name": q, "in": "query", "required": false, "schema": schema})
    }));
    let ok = match d.response {
        "html" => json!({"description": "An HTML page", "content": {"text/html": {}}}),
        "css" => json!({"description": "A stylesheet", "content": {"text/css": {}}}),
        "csv" => json!({"description": "CSV with a header line", "content": {"text/csv": {}}}),
        "empty" => json!({"description": "Done; no content"}),
        name => json!({
            "description": "Success",
            "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}}
        }),
    };
    let mut responses = Map::new();
    let success = if d.method == Post && matches!(d.path, "/api/v1/candidates" | "/api/v1/usage") {
        "201"
    } else if d.response == "empty" {
        "204"
    } else {
        "200"
    };
    responses.insert(success.into(), ok);
    if d.path.starts_with("/api/") && d.access != Public {
        responses.insert("401".into(), error_response("No or unknown bearer token"));
        responses.insert("403".into(), error_response("The caller lacks the right"));
    }
    if d.body.is_some() && d.path.starts_with("/api/") {
        responses.insert("400".into(), error_response("Malformed JSON"));
        responses.insert("415".into(), error_response("Not sent as application/json"));
        responses.insert(
            "422".into(),
            error_response("Unknown or invalid fields (named in `fields`)"),
        );
    }
    if d.path.contains('{') && d.path.starts_with("/api/") {
        responses.insert("404".into(), error_response("No such record"));
    }
    if d.path.starts_with("/api/v1/candidates/{id}/") && d.method != Get {
        responses.insert(
            "409".into(),
            error_response("Not allowed in the candidate's state, or a stale expected_version"),
        );
    }
    let mut op = json!({
        "summary": d.summary,
        "operationId": format!("{} {}", d.method.as_str(), d.path),
        "parameters": params,
        "responses": responses,
    });
    if let Some(body) = d.body {
        let content = if d.path.starts_with("/respond/") {
            "application/x-www-form-urlencoded"
        } else {
            "application/json"
        };
        op["requestBody"] = json!({
            "required": !d.body_optional,
            "content": {content: {"schema": {"$ref": format!("#/components/schemas/{body}")}}}
        });
        if body == "UsageBody" {
            op["requestBody"]["content"]["text/csv"] = json!({
                "schema": {"type": "string", "description": "CSV with a header line of usage columns"}
            });
        }
    }
    if matches!(d.access, User | SamAdmin) {
        op["security"] = json!([{"bearer": []}]);
    } else {
        op["security"] = json!([]);
    }
    if d.access == SamAdmin {
        op["description"] = json!("Sam admins only.");
    } else if d.access == Local {
        op["description"] =
            json!("Local mode only; unauthenticated (a developer convenience on 127.0.0.1).");
    }
    op
}

/// The OpenAPI 3.1 document.
pub fn openapi() -> Value {
    let mut paths = Map::new();
    for d in ROUTES {
        let entry = paths.entry(d.path.to_string()).or_insert_with(|| json!({}));
        entry[d.method.as_str().to_ascii_lowercase()] = operation(d);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Reclaim",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Software-license reclamation: removal candidates move through the reclamation workflow. Every error is {\"error\": {\"code\", \"message\", \"fields\"?}}."
        },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
        }
    })
}

pub async fn document() -> Response {
    axum::Json(openapi()).into_response()
}
