//! The public link pages: what a user or approver sees after clicking Yes/No (or
//! Approve/Reject) in an email.
//!
//! GET only shows a confirmation page and never changes anything: mail scanners (Outlook
//! Safe Links, Proofpoint) fetch every link before people do. The page's button POSTs the
//! same token, and the POST answers through [`App::link_answer`](crate::App::link_answer).
//! Pages are rendered from templates with HTML autoescaping and carry no scripts.

use super::error::{ApiError, Form, Path};
use super::{ApiState, ClientInfo};
use crate::app::{LinkAnswer, LinkProblem, LinkView};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{context, Environment, Value};
use reclaim_workflow::ports::{LinkAction, LinkError};
use reclaim_workflow::{Candidate, HistoryEntry, Timestamp, Via};
use serde::Deserialize;
use std::sync::OnceLock;

/// Longest comment a link page accepts.
pub const MAX_COMMENT: usize = 2000;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/pages/base.html")),
    (
        "respond.html",
        include_str!("../../templates/pages/respond.html"),
    ),
    (
        "answered.html",
        include_str!("../../templates/pages/answered.html"),
    ),
    (
        "problem.html",
        include_str!("../../templates/pages/problem.html"),
    ),
    (
        "outbox.html",
        include_str!("../../templates/pages/outbox.html"),
    ),
    (
        "outbox_message.html",
        include_str!("../../templates/pages/outbox_message.html"),
    ),
    (
        "ui_base.html",
        include_str!("../../templates/pages/ui_base.html"),
    ),
    (
        "ui_sign_in.html",
        include_str!("../../templates/pages/ui_sign_in.html"),
    ),
    (
        "ui_signed_in.html",
        include_str!("../../templates/pages/ui_signed_in.html"),
    ),
    (
        "ui_home.html",
        include_str!("../../templates/pages/ui_home.html"),
    ),
    (
        "ui_candidates.html",
        include_str!("../../templates/pages/ui_candidates.html"),
    ),
    (
        "ui_bulk.html",
        include_str!("../../templates/pages/ui_bulk.html"),
    ),
    (
        "ui_bulk_preview.html",
        include_str!("../../templates/pages/ui_bulk_preview.html"),
    ),
    (
        "ui_candidate.html",
        include_str!("../../templates/pages/ui_candidate.html"),
    ),
    (
        "ui_approvals.html",
        include_str!("../../templates/pages/ui_approvals.html"),
    ),
    (
        "ui_tasks.html",
        include_str!("../../templates/pages/ui_tasks.html"),
    ),
    (
        "ui_savings.html",
        include_str!("../../templates/pages/ui_savings.html"),
    ),
    (
        "ui_rules.html",
        include_str!("../../templates/pages/ui_rules.html"),
    ),
    (
        "ui_rule.html",
        include_str!("../../templates/pages/ui_rule.html"),
    ),
    (
        "ui_alerts.html",
        include_str!("../../templates/pages/ui_alerts.html"),
    ),
    (
        "ui_connectors.html",
        include_str!("../../templates/pages/ui_connectors.html"),
    ),
];

/// The names of every page template (a test renders each one).
pub fn template_names() -> impl Iterator<Item = &'static str> {
    TEMPLATES.iter().map(|(n, _)| *n)
}

const STYLESHEET: &str = include_str!("../../assets/reclaim.css");

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        // `.html` names turn autoescaping on.
        let mut env = Environment::new();
        for (name, src) in TEMPLATES {
            if let Err(e) = env.add_template(name, src) {
                tracing::error!(template = name, error = %e, "page template does not parse");
            }
        }
        env
    })
}

/// Renders a page template; a template defect becomes a plain 500 rather than a panic.
pub fn render(status: StatusCode, name: &str, ctx: Value) -> Response {
    match render_text(name, ctx) {
        Some(html) => (status, Html(html)).into_response(),
        None => (StatusCode::INTERNAL_SERVER_ERROR, Html(RENDER_FAILED)).into_response(),
    }
}

/// What a visitor sees when a page cannot be rendered (the cause is logged).
pub const RENDER_FAILED: &str =
    "<!doctype html><title>Error</title><p>This page could not be shown.</p>";

/// A page as text, for a response sent in parts; `None` (logged) when it cannot be rendered.
pub fn render_text(name: &str, ctx: Value) -> Option<String> {
    match env().get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => Some(html),
        Err(e) => {
            tracing::error!(template = name, error = %e, "page rendering failed");
            None
        }
    }
}

fn problem(status: StatusCode, heading: &str, message: &str, hint: Option<&str>) -> Response {
    render(status, "problem.html", context! { heading, message, hint })
}

pub async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

pub async fn stylesheet() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        STYLESHEET,
    )
        .into_response()
}

fn when(t: Timestamp) -> String {
    t.format("%-d %B %Y at %H:%M UTC").to_string()
}

/// What the person is about to do, in their words.
fn describe(
    action: LinkAction,
    c: &Candidate,
) -> (
    &'static str,
    &'static str,
    String,
    &'static str,
    &'static str,
) {
    let sw = c.software.label_with_version();
    let holder = c
        .user
        .as_ref()
        .map_or("The user".to_string(), |u| u.display_name.clone());
    match action {
        LinkAction::Keep => (
            "Do you still need it?",
            "Yes, keep it",
            format!("You still need {sw}. Your request to keep it goes to an approver."),
            "keep",
            "Why do you need it",
        ),
        LinkAction::Remove => (
            "Do you still need it?",
            "No, remove it",
            format!("You no longer need {sw}. It will be removed and its license reused."),
            "remove",
            "Anything we should know",
        ),
        LinkAction::Approve => (
            "Keep request",
            "Approve: they keep it",
            format!("{holder} keeps {sw}; the candidate is closed as skipped."),
            "keep",
            "Comment",
        ),
        LinkAction::Reject => (
            "Keep request",
            "Reject: remove it",
            format!("{holder} asked to keep {sw}; rejecting has it removed."),
            "remove",
            "Comment for the user",
        ),
    }
}

/// An audit-trail event in people's words.
/// Who did it, as the person holding the link may read it: themselves, or a role, never
/// another person's account name.
fn who(h: &HistoryEntry, link_user: &str) -> Option<&'static str> {
    match &h.actor {
        reclaim_workflow::ActorRef::Person(id) if id == link_user => Some("you"),
        reclaim_workflow::ActorRef::Person(_) => Some("the IT team"),
        reclaim_workflow::ActorRef::Scheduler => Some("Reclaim, on schedule"),
        reclaim_workflow::ActorRef::Revocation | reclaim_workflow::ActorRef::Mail => None,
    }
}

fn answered_page(
    status: StatusCode,
    heading: &str,
    message: &str,
    v: &LinkView,
    h: &HistoryEntry,
) -> Response {
    let c = &v.candidate;
    render(
        status,
        "answered.html",
        context! {
            heading,
            message,
            software => c.software.label_with_version(),
            device => c.device,
            number => c.number,
            what => reclaim_workflow::history::words(&h.event, h.from, h.to),
            who => who(h, &v.claims.user_id),
            when => when(h.at),
            state => reclaim_workflow::history::for_the_user(c.state),
        },
    )
}

fn link_problem(p: LinkProblem) -> Response {
    match p {
        LinkProblem::Link(LinkError::Invalid) => problem(
            StatusCode::BAD_REQUEST,
            "This link is not valid",
            "The link is incomplete or has been altered, so it cannot be used.",
            Some("Open the link from the email again, or copy the whole address."),
        ),
        LinkProblem::Link(LinkError::Expired(at)) => problem(
            StatusCode::GONE,
            "This link has expired",
            &format!("The link expired on {}.", when(at)),
            Some("If you still need to answer, contact your IT service desk."),
        ),
        LinkProblem::Gone => problem(
            StatusCode::NOT_FOUND,
            "Nothing to answer",
            "This link is for a record that no longer exists.",
            None,
        ),
        LinkProblem::App(e) => {
            let e = ApiError::from(e);
            let message = if e.status.is_server_error() {
                "Something went wrong on our side. Please try again in a few minutes.".to_string()
            } else {
                e.message.clone()
            };
            problem(e.status, "This answer cannot be recorded", &message, None)
        }
    }
}

fn confirm_page(token: &str, v: &LinkView) -> Response {
    let c = &v.candidate;
    let (heading, choice, explanation, tone, comment_label) = describe(v.claims.action, c);
    render(
        StatusCode::OK,
        "respond.html",
        context! {
            heading,
            choice,
            explanation,
            tone,
            comment_label,
            software => c.software.label_with_version(),
            device => c.device,
            holder => c.user.as_ref().map(|u| u.display_name.clone()),
            number => c.number,
            reason => c.reason(),
            deadline => c.deadline_at.map(when),
            expires => when(v.claims.expires_at),
            action_url => format!("/respond/{token}"),
        },
    )
}

/// GET: the confirmation page. Never changes anything.
pub async fn respond_page(State(s): State<ApiState>, Path(token): Path<String>) -> Response {
    match s.app.link_view(&token).await {
        Ok(v) => match &v.already {
            None => confirm_page(&token, &v),
            Some(h) => answered_page(
                StatusCode::OK,
                "Already answered",
                "This link has already been used; nothing more to do.",
                &v,
                h,
            ),
        },
        Err(p) => link_problem(p),
    }
}

/// The confirmation form.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerForm {
    #[serde(default)]
    comment: Option<String>,
}

/// POST: records the answer once, then shows what was recorded.
pub async fn respond_answer(
    State(s): State<ApiState>,
    client: ClientInfo,
    Path(token): Path<String>,
    form: Result<Form<AnswerForm>, ApiError>,
) -> Response {
    let comment = match form {
        Ok(Form(f)) => f
            .comment
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty()),
        Err(e) => {
            return problem(
                e.status,
                "This answer cannot be recorded",
                "The form was not sent as expected. Go back and press the button again.",
                None,
            )
        }
    };
    if comment
        .as_ref()
        .is_some_and(|c| c.chars().count() > MAX_COMMENT)
    {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Comment too long",
            &format!("Please keep the comment under {MAX_COMMENT} characters."),
            None,
        );
    }
    let via = Via {
        channel: "link".into(),
        ip: client.ip,
        user_agent: client.user_agent,
    };
    match s.app.link_answer(&token, via, comment).await {
        // Seen as already answered before we tried: say so; nothing was recorded.
        Ok(LinkAnswer {
            view: v,
            used_before: true,
        }) => match &v.already {
            Some(h) => answered_page(
                StatusCode::CONFLICT,
                "Already answered",
                "This link has already been used; nothing was changed.",
                &v,
                h,
            ),
            None => confirm_page(&token, &v),
        },
        Ok(LinkAnswer { view: v, .. }) => match &v.already {
            Some(h) if is_this_answer(&v, h) => answered_page(
                StatusCode::OK,
                "Thank you",
                "Your answer has been recorded.",
                &v,
                h,
            ),
            // Someone else got there between our look and our write.
            Some(h) => answered_page(
                StatusCode::CONFLICT,
                "Already answered",
                "This was answered a moment before you; nothing was changed.",
                &v,
                h,
            ),
            // Nothing moved (should not happen after a successful answer): show the form again.
            None => confirm_page(&token, &v),
        },
        Err(p) => link_problem(p),
    }
}

/// Whether the recorded entry is the answer this link gives, by this link's person.
fn is_this_answer(v: &LinkView, h: &HistoryEntry) -> bool {
    let event = match v.claims.action {
        LinkAction::Keep => "answer-keep",
        LinkAction::Remove => "answer-remove",
        LinkAction::Approve => "approve",
        LinkAction::Reject => "reject",
    };
    h.event == event && h.actor == reclaim_workflow::ActorRef::Person(v.claims.user_id.clone())
}

/// [`super::PAGE_CSP`] plus frames from our own origin (the outbox's message preview).
pub const PAGE_CSP_FRAMES: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
