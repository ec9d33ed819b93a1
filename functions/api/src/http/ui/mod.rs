//! The web workspace under `/ui`: server-rendered pages for sam admins, approvers and users.
//!
//! Pages are minijinja templates with HTML autoescaping and no scripts (the CSP forbids them).
//! Handlers only read through [`App`](crate::App) and the same helpers as the JSON API, and
//! change things only through [`App::transition`](crate::App::transition) and
//! [`App::reclaim_all`](crate::App::reclaim_all): which buttons a person sees comes from asking
//! the core ([`super::candidates::actions`]), so the page never holds a second copy of the
//! rights table.
//!
//! Every state-changing form is a POST carrying a token bound to the session
//! ([`session`]); a page without a session sends the browser to the sign-in page. The pages
//! are listed in [`PAGES`] (not in the OpenAPI document, which describes the JSON API), and a
//! test checks that table against what the Router mounts.

pub mod connectors;
pub mod form;
pub mod oidc;
pub mod rules;
pub mod session;
pub mod svg;

use super::candidates::{actions, can_see, scoped_page, visible, DEFAULT_LIMIT, MAX_NOTE};
use super::error::{ApiError, Path, Query};
use super::openapi::{Access, RouteDoc};
use super::outbox::encode_segment;
use super::pages::{render, MAX_COMMENT};
use super::resources::savings_in_scope;
use super::{ApiState, ClientInfo, Method, Routes};
use crate::app::{AppError, PreviewOutcome};
use axum::extract::{FromRequestParts, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, LOCATION};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use form::UiForm;
use minijinja::{context, Value};
use reclaim_workflow::ports::{CandidateFilter, PageRequest, SortKey};
use reclaim_workflow::text;
use reclaim_workflow::{
    workflow_graph, Actor, Candidate, Event, Justification, Principal, State as WfState, Via,
};
use serde::{Deserialize, Serialize};
use session::{
    add_cookie, bad_form_token, cookie, random_text, secure_cookies, set_cookie, SessionKey,
    SESSION_COOKIE, SIGN_IN_COOKIE,
};
use std::sync::Arc;

const fn page(
    method: Method,
    path: &'static str,
    summary: &'static str,
    access: Access,
) -> RouteDoc {
    RouteDoc {
        method,
        path,
        summary,
        access,
        query: &[],
        body: None,
        body_optional: false,
        response: "html",
    }
}

/// Every workspace page. `Public` pages need no session; `User` pages need one (without it the
/// browser is sent to sign in); `SamAdmin` pages answer 403 to everyone else.
pub const PAGES: &[RouteDoc] = &[
    page(
        Method::Get,
        "/",
        "Sends a browser to the workspace",
        Access::Public,
    ),
    page(Method::Get, "/ui", "Workspace home", Access::User),
    page(Method::Get, "/ui/sign-in", "Sign in", Access::Public),
    page(
        Method::Post,
        "/ui/sign-in",
        "Sign in (form)",
        Access::Public,
    ),
    page(
        Method::Get,
        "/ui/sign-in/oidc",
        "Sign in with the identity provider (redirects there)",
        Access::Public,
    ),
    page(
        Method::Get,
        "/ui/oidc/callback",
        "Where the identity provider sends people back",
        Access::Public,
    ),
    page(Method::Post, "/ui/sign-out", "Sign out", Access::User),
    page(
        Method::Post,
        "/ui/sessions/end-all",
        "Sign everyone out",
        Access::SamAdmin,
    ),
    page(
        Method::Get,
        "/ui/candidates",
        "Candidates: filters, part-of-a-word search, sorting, counts and paging",
        Access::User,
    ),
    page(
        Method::Post,
        "/ui/candidates/reclaim",
        "Bulk Reclaim",
        Access::SamAdmin,
    ),
    page(
        Method::Post,
        "/ui/candidates/select",
        "Page or sort the list keeping the ticked candidates",
        Access::SamAdmin,
    ),
    page(
        Method::Get,
        "/ui/candidates/{id}",
        "One candidate, its history and Show Workflow",
        Access::User,
    ),
    page(
        Method::Post,
        "/ui/candidates/{id}/action",
        "Take an action on a candidate",
        Access::User,
    ),
    page(
        Method::Post,
        "/ui/candidates/{id}/assign",
        "Assign a candidate to a group or a person",
        Access::SamAdmin,
    ),
    page(
        Method::Post,
        "/ui/candidates/{id}/user",
        "Fix a candidate's user (e.g. the missing email)",
        Access::SamAdmin,
    ),
    page(
        Method::Post,
        "/ui/candidates/{id}/notes",
        "Add a work note",
        Access::User,
    ),
    page(
        Method::Get,
        "/ui/candidates/{id}/history.csv",
        "A candidate's history as CSV",
        Access::User,
    ),
    page(
        Method::Get,
        "/ui/approvals",
        "Keep requests waiting for my groups",
        Access::User,
    ),
    page(Method::Get, "/ui/tasks", "My open tasks", Access::User),
    page(
        Method::Get,
        "/ui/savings",
        "Savings dashboard",
        Access::User,
    ),
    page(
        Method::Get,
        "/ui/savings.csv",
        "Savings as CSV",
        Access::User,
    ),
    page(
        Method::Get,
        "/ui/history.csv",
        "Every candidate's audit trail over a period, as CSV",
        Access::SamAdmin,
    ),
    page(
        Method::Get,
        "/ui/rules",
        "Reclamation rules",
        Access::SamAdmin,
    ),
    page(
        Method::Get,
        "/ui/rules/new",
        "Form for a new rule",
        Access::SamAdmin,
    ),
    page(
        Method::Post,
        "/ui/rules",
        "Create a rule (form)",
        Access::SamAdmin,
    ),
    page(
        Method::Get,
        "/ui/rules/{id}/edit",
        "Form to edit a rule",
        Access::SamAdmin,
    ),
    page(
        Method::Post,
        "/ui/rules/{id}/edit",
        "Save a rule (form)",
        Access::SamAdmin,
    ),
    page(
        Method::Post,
        "/ui/rules/{id}/delete",
        "Delete a rule (form)",
        Access::SamAdmin,
    ),
    page(
        Method::Get,
        "/ui/alerts",
        "Stale candidates of my groups (all of them for a sam admin)",
        Access::User,
    ),
    page(
        Method::Get,
        "/ui/connectors",
        "Usage connectors: schedules, latest runs with their counts and errors",
        Access::SamAdmin,
    ),
    page(
        Method::Post,
        "/ui/connectors/{id}/run",
        "Run a usage connector now",
        Access::SamAdmin,
    ),
];

pub(super) fn routes() -> Routes {
    use Method::*;
    Routes::new()
        .add(Get, "/", to_workspace)
        .add(Get, "/ui", home)
        .add(Get, "/ui/sign-in", sign_in_page)
        .add(Post, "/ui/sign-in", sign_in)
        .add(Get, "/ui/sign-in/oidc", oidc_start)
        .add(Get, "/ui/oidc/callback", oidc_callback)
        .add(Post, "/ui/sign-out", sign_out)
        .add(Post, "/ui/sessions/end-all", end_all_sessions)
        .add(Get, "/ui/candidates", candidates_page)
        .add(Post, "/ui/candidates/reclaim", bulk_reclaim)
        .add(Post, "/ui/candidates/select", select_page)
        .add(Get, "/ui/candidates/{id}", candidate_page)
        .add(Post, "/ui/candidates/{id}/action", candidate_action)
        .add(Get, "/ui/candidates/{id}/history.csv", history_csv)
        .add(Post, "/ui/candidates/{id}/notes", add_note)
        .add(Post, "/ui/candidates/{id}/assign", assign)
        .add(Post, "/ui/candidates/{id}/user", fix_user)
        .add(Get, "/ui/approvals", approvals_page)
        .add(Get, "/ui/tasks", tasks_page)
        .add(Get, "/ui/savings", savings_page)
        .add(Get, "/ui/savings.csv", savings_csv)
        .add(Get, "/ui/history.csv", history_period_csv)
        .add(Get, "/ui/rules", rules::rules_page)
        .add(Get, "/ui/rules/new", rules::new_rule_page)
        .add(Post, "/ui/rules", rules::create_rule)
        .add(Get, "/ui/rules/{id}/edit", rules::edit_rule_page)
        .add(Post, "/ui/rules/{id}/edit", rules::save_rule)
        .add(Post, "/ui/rules/{id}/delete", rules::delete_rule)
        .add(Get, "/ui/alerts", alerts_page)
        .add(Get, "/ui/connectors", connectors::connectors_page)
        .add(Post, "/ui/connectors/{id}/run", connectors::run_now)
}

/// An error shown as a page (status, heading, what to do), never as JSON.
#[derive(Debug)]
pub struct UiError(pub ApiError);

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        UiError(e)
    }
}

impl From<AppError> for UiError {
    fn from(e: AppError) -> Self {
        UiError(ApiError::from(e))
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let heading = match e.status {
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::CONFLICT => "That cannot be done now",
            s if s.is_server_error() => "Something went wrong",
            _ => "That did not work",
        };
        let message = if e.status.is_server_error() {
            "Something went wrong on our side. Please try again in a few minutes.".to_string()
        } else if e.fields.is_empty() {
            e.message.clone()
        } else {
            // A message written as a sentence stands alone; a terse one keeps its field.
            e.fields
                .iter()
                .map(|f| {
                    if f.message.starts_with(char::is_uppercase) {
                        f.message.clone()
                    } else {
                        format!("{}: {}", f.field, f.message)
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        let hint = match e.status {
            StatusCode::FORBIDDEN => Some(
                "Ask a sam admin if you need to do this; the pages you may use are in the menu above.",
            ),
            StatusCode::CONFLICT => {
                Some("Someone changed it meanwhile: open it again to see where it stands now.")
            }
            s if s.is_server_error() => None,
            _ => Some("Go back, correct it and try again."),
        };
        render(
            e.status,
            "problem.html",
            context! { heading, message, hint, workspace => true },
        )
    }
}

type UiResult = Result<Response, UiError>;

fn see_other(to: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(LOCATION, v);
    }
    res
}

/// Only our own workspace paths may be a destination after signing in (no open redirect).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if (n == "/ui" || n.starts_with("/ui/") || n.starts_with("/ui?"))
                && !n.contains("//")
                && !n.contains('\\')
                && n.len() <= 512
                && n.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            n
        }
        _ => "/ui",
    }
}

/// The signed-in person looking at a page.
#[derive(Clone, Debug)]
pub struct Viewer {
    pub principal: Principal,
    pub name: String,
    /// The token every form on this person's pages carries.
    pub form_token: String,
    nonce: String,
    key: Arc<SessionKey>,
    demo: bool,
}

impl Viewer {
    async fn find(parts: &Parts, state: &ApiState) -> Result<Option<Viewer>, UiError> {
        let (user_id, nonce) = match session::current(state, &parts.headers)
            .await
            .map_err(AppError::from)?
        {
            Some(s) => (s.user_id, s.id),
            None => return Ok(None),
        };
        let Some(principal) = state.app.principal(&user_id).await? else {
            return Ok(None);
        };
        let name = state
            .app
            .ports
            .directory
            .user(&user_id)
            .await
            .map_err(AppError::from)?
            .map_or_else(|| user_id.clone(), |u| u.display_name);
        Ok(Some(Viewer {
            form_token: state.session_key.form_token("form", &nonce),
            principal,
            name,
            nonce,
            key: state.session_key.clone(),
            demo: state.demo,
        }))
    }

    /// Refuses a form that does not carry this session's token.
    pub fn check(&self, form: &form::FormFields) -> Result<(), UiError> {
        let presented = form.get("csrf").unwrap_or_default();
        if self.key.check_form_token("form", &self.nonce, presented) {
            Ok(())
        } else {
            Err(bad_form_token().into())
        }
    }

    fn actor(&self) -> Actor {
        Actor::Person(self.principal.clone())
    }

    fn require_sam_admin(&self, what: &str) -> Result<(), UiError> {
        if self.principal.sam_admin {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("{what} may only be done by a sam admin")).into())
        }
    }

    /// What every page's layout shows: who is signed in, the navigation, the form token.
    fn layout(&self, nav: &str) -> Value {
        let p = &self.principal;
        context! {
            me => context! {
                id => p.user_id,
                name => self.name,
                sam_admin => p.sam_admin,
                approver => !p.groups.is_empty(),
                itil => p.itil,
                groups => p.groups,
            },
            csrf => self.form_token,
            nav,
            demo => self.demo,
            workspace => true,
        }
    }

    fn render(&self, name: &str, nav: &str, ctx: Value) -> Response {
        render(StatusCode::OK, name, context! { ..self.layout(nav), ..ctx })
    }
}

impl FromRequestParts<ApiState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Response> {
        match Viewer::find(parts, state).await {
            Ok(Some(v)) => Ok(v),
            Ok(None) => {
                let next = if parts.method == axum::http::Method::GET {
                    parts
                        .uri
                        .path_and_query()
                        .map_or("/ui", |pq| pq.as_str())
                        .to_string()
                } else {
                    "/ui".to_string()
                };
                Err(see_other(&format!(
                    "/ui/sign-in?next={}",
                    encode_segment(safe_next(Some(&next)))
                )))
            }
            Err(e) => Err(e.into_response()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sign-in

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Serialize)]
struct PickUser {
    id: String,
    name: String,
    roles: String,
}

async fn sign_in_form(
    s: &ApiState,
    parts: &Parts,
    status: StatusCode,
    next: &str,
    error: Option<&str>,
) -> UiResult {
    let nonce = random_text(1);
    let users = if s.demo {
        let groups = s
            .app
            .ports
            .directory
            .groups()
            .await
            .map_err(AppError::from)?;
        let mut users = s
            .app
            .ports
            .directory
            .users()
            .await
            .map_err(AppError::from)?;
        users.sort_by(|a, b| a.display_name.cmp(&b.display_name));
        users
            .into_iter()
            .map(|u| {
                let mut roles = Vec::new();
                if u.sam_admin {
                    roles.push("sam admin".to_string());
                }
                for g in groups.iter().filter(|g| g.members.contains(&u.id)) {
                    roles.push(format!("approver: {}", g.name));
                }
                if u.itil {
                    roles.push("ITIL".to_string());
                }
                PickUser {
                    id: u.id,
                    name: u.display_name,
                    roles: roles.join(", "),
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut res = render(
        status,
        "ui_sign_in.html",
        context! {
            users,
            demo => s.demo,
            tokens => s.auth.takes_pasted_tokens(),
            oidc => s.oidc.as_ref().map(|o| o.config().display_name.clone()),
            oidc_href => format!("/ui/sign-in/oidc?next={}", encode_segment(next)),
            csrf => s.session_key.form_token("sign-in", &nonce),
            next,
            error,
        },
    );
    add_cookie(
        res.headers_mut(),
        set_cookie(SIGN_IN_COOKIE, &nonce, 3600, secure_cookies(parts, s)),
    );
    Ok(res)
}

/// The sign-in page; someone already signed in goes straight on.
pub async fn sign_in_page(
    State(s): State<ApiState>,
    parts: Parts,
    q: Result<Query<NextQuery>, ApiError>,
) -> UiResult {
    let next = q.ok().and_then(|Query(q)| q.next);
    let next = safe_next(next.as_deref()).to_string();
    if Viewer::find(&parts, &s).await?.is_some() {
        return Ok(see_other(&next));
    }
    sign_in_form(&s, &parts, StatusCode::OK, &next, None).await
}

/// Sends the browser to the identity provider (404 where none is configured).
pub async fn oidc_start(
    State(s): State<ApiState>,
    parts: Parts,
    q: Result<Query<NextQuery>, ApiError>,
) -> UiResult {
    let Some(oidc) = s.oidc.clone() else {
        return Err(ApiError::no_route().into());
    };
    let next = q.ok().and_then(|Query(q)| q.next);
    let next = safe_next(next.as_deref()).to_string();
    match oidc.start(&s, &parts, &next).await {
        Ok((url, cookie)) => {
            let mut res = see_other(&url);
            add_cookie(res.headers_mut(), cookie);
            Ok(res)
        }
        Err(e) => Err(oidc_problem(e)),
    }
}

/// What the identity provider sends back.
#[derive(Debug, Default, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    /// The issuer that answered (RFC 9207), where the provider says it.
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn oidc_problem(e: oidc::OidcError) -> UiError {
    use oidc::OidcError as E;
    tracing::warn!(error = %e, "sign-in with the identity provider refused");
    let status = match &e {
        E::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        E::Refused(_) => StatusCode::UNAUTHORIZED,
        E::UnknownPerson(_) => StatusCode::FORBIDDEN,
        E::Store(err) if err.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
        E::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let message = match &e {
        // The provider's own words can help a person; ours for the rest.
        E::Unavailable(_) => {
            "The identity provider could not be reached. Please try again in a few minutes."
                .to_string()
        }
        other => other.to_string(),
    };
    UiError(ApiError::new(status, "sign_in_refused", message))
}

/// Finishes a sign-in with the identity provider: a session for a person the directory knows,
/// a page saying why for anything else.
pub async fn oidc_callback(
    State(s): State<ApiState>,
    parts: Parts,
    q: Result<Query<CallbackQuery>, ApiError>,
) -> UiResult {
    let Some(oidc) = s.oidc.clone() else {
        return Err(ApiError::no_route().into());
    };
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let clear = oidc::binding_cookie("", 0, secure_cookies(&parts, &s));
    let issuer = oidc.config().issuer.trim_end_matches('/');
    let result = match (q.error.as_deref(), q.code.as_deref(), q.state.as_deref()) {
        _ if q
            .iss
            .as_deref()
            .is_some_and(|i| i.trim_end_matches('/') != issuer) =>
        {
            Err(oidc::OidcError::Refused(
                "the answer came from another identity provider than the one configured".into(),
            ))
        }
        (Some(error), _, _) => Err(oidc::OidcError::Refused(format!(
            "the identity provider did not sign you in: {}",
            q.error_description.as_deref().unwrap_or(error)
        ))),
        (None, Some(code), Some(state)) => oidc.finish(&s, &parts, code, state).await,
        _ => Err(oidc::OidcError::Refused(
            "the identity provider's answer had no code or state".into(),
        )),
    };
    let signed_in = match result {
        Ok(x) => x,
        Err(e) => {
            let mut res = oidc_problem(e).into_response();
            add_cookie(res.headers_mut(), clear);
            return Ok(res);
        }
    };
    let cookie = session::start(&s, &parts, &signed_in.user_id, "oidc")
        .await
        .map_err(AppError::from)?;
    tracing::info!(user = %signed_in.user_id, method = "oidc", "signed in");
    // A page, not a redirect: the browser arrived here from the provider (a cross-site
    // navigation), and a redirect would carry that on, so the `SameSite=Strict` session cookie
    // would not be sent with it. The page's own refresh is a same-site navigation.
    let next = safe_next(Some(&signed_in.next)).to_string();
    let mut res = render(
        StatusCode::OK,
        "ui_signed_in.html",
        context! { next, workspace => true },
    );
    add_cookie(res.headers_mut(), cookie);
    add_cookie(res.headers_mut(), clear);
    Ok(res)
}

/// Signs in with a pasted token, or (in a demo) as a picked person.
pub async fn sign_in(State(s): State<ApiState>, parts: Parts, UiForm(f): UiForm) -> UiResult {
    let next = safe_next(f.get("next")).to_string();
    let nonce = cookie(&parts.headers, SIGN_IN_COOKIE).unwrap_or_default();
    let presented = f.get("csrf").unwrap_or_default();
    if nonce.is_empty() || !s.session_key.check_form_token("sign-in", nonce, presented) {
        return sign_in_form(
            &s,
            &parts,
            StatusCode::FORBIDDEN,
            &next,
            Some("The sign-in form had expired. Please try again."),
        )
        .await;
    }
    let unavailable = |e: crate::AuthError| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        )
    };
    let token = f.get("token").map(str::trim).filter(|t| !t.is_empty());
    let picked = f.get("user").map(str::trim).filter(|u| !u.is_empty());
    let (user_id, method) = match (token, picked) {
        (Some(t), _) => (s.auth.token_user_id(t).await.map_err(unavailable)?, "token"),
        (None, Some(u)) if s.demo => (Some(u.to_string()), "demo"),
        _ => (None, "none"),
    };
    let known = match &user_id {
        Some(id) => s.app.principal(id).await?.is_some(),
        None => false,
    };
    let Some(user_id) = user_id.filter(|_| known) else {
        let why = match (token, s.demo) {
            (Some(_), _) => "That token is not valid.",
            (None, true) => "Choose a person or paste a token.",
            (None, false) => "Paste your access token.",
        };
        return sign_in_form(&s, &parts, StatusCode::UNAUTHORIZED, &next, Some(why)).await;
    };
    let cookie = session::start(&s, &parts, &user_id, method)
        .await
        .map_err(AppError::from)?;
    tracing::info!(user = %user_id, method, "signed in");
    let mut res = see_other(&next);
    add_cookie(res.headers_mut(), cookie);
    add_cookie(
        res.headers_mut(),
        set_cookie(SIGN_IN_COOKIE, "", 0, secure_cookies(&parts, &s)),
    );
    Ok(res)
}

pub async fn sign_out(
    State(s): State<ApiState>,
    parts: Parts,
    v: Viewer,
    UiForm(f): UiForm,
) -> UiResult {
    v.check(&f)?;
    session::end(&s, &parts.headers)
        .await
        .map_err(AppError::from)?;
    tracing::info!(user = %v.principal.user_id, "signed out");
    Ok(to_sign_in_without_cookie(&s, &parts))
}

/// To the sign-in page, deleting the browser's session cookie.
fn to_sign_in_without_cookie(s: &ApiState, parts: &Parts) -> Response {
    let mut res = see_other("/ui/sign-in");
    add_cookie(
        res.headers_mut(),
        set_cookie(SESSION_COOKIE, "", 0, secure_cookies(parts, s)),
    );
    res
}

/// Ends every workspace session, the admin's own included (a suspected stolen cookie, a
/// departed colleague). API tokens are not sessions and stay valid.
pub async fn end_all_sessions(
    State(s): State<ApiState>,
    parts: Parts,
    v: Viewer,
    UiForm(f): UiForm,
) -> UiResult {
    v.check(&f)?;
    v.require_sam_admin("signing everyone out")?;
    let ended = s
        .app
        .ports
        .sessions
        .end_all_sessions()
        .await
        .map_err(AppError::from)?;
    tracing::warn!(by = %v.principal.user_id, ended, "every workspace session ended");
    Ok(to_sign_in_without_cookie(&s, &parts))
}

// ---------------------------------------------------------------------------------------------
// Home, candidates

/// The address `reclaim serve` prints first: a browser opening it lands in the workspace
/// (which asks it to sign in first when needed).
pub async fn to_workspace() -> Response {
    see_other("/ui")
}

pub async fn home(State(s): State<ApiState>, v: Viewer) -> UiResult {
    let tasks = s.app.my_tasks(&v.principal).await?.len();
    let approvals = approvable(&s, &v).await?.len();
    Ok(v.render("ui_home.html", "home", context! { tasks, approvals }))
}

/// The list's filters, order and place as a form (or a link) sends them: empty means "any".
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListForm {
    state: Option<String>,
    justification: Option<String>,
    publisher: Option<String>,
    product: Option<String>,
    group: Option<String>,
    /// Part of a word of the publisher or product.
    software: Option<String>,
    /// Part of the user's id, name or email.
    person: Option<String>,
    /// A column, `-` in front for descending.
    sort: Option<String>,
    cursor: Option<String>,
    /// The page's number, counted by the links (1 when absent).
    p: Option<String>,
    limit: Option<String>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn bad_field(field: &str, message: String) -> UiError {
    ApiError::invalid_field(field, message).into()
}

/// The filter fields, in the order links repeat them.
const FILTER_FIELDS: [&str; 7] = [
    "state",
    "justification",
    "publisher",
    "product",
    "group",
    "software",
    "person",
];

impl ListForm {
    fn from_fields(f: &form::FormFields) -> ListForm {
        let get = |k: &str| f.get(k).map(str::to_string);
        ListForm {
            state: get("state"),
            justification: get("justification"),
            publisher: get("publisher"),
            product: get("product"),
            group: get("group"),
            software: get("software"),
            person: get("person"),
            sort: get("sort"),
            cursor: get("cursor"),
            p: get("p"),
            limit: get("limit"),
        }
    }

    fn field(&self, name: &str) -> Option<&str> {
        given(match name {
            "state" => &self.state,
            "justification" => &self.justification,
            "publisher" => &self.publisher,
            "product" => &self.product,
            "group" => &self.group,
            "software" => &self.software,
            "person" => &self.person,
            "sort" => &self.sort,
            "limit" => &self.limit,
            _ => &None,
        })
    }

    fn filter(&self) -> Result<CandidateFilter, UiError> {
        let state = match given(&self.state) {
            Some(x) => Some(
                WfState::parse(x)
                    .ok_or_else(|| bad_field("state", format!("'{x}' is not a state")))?,
            ),
            None => None,
        };
        let justification = match given(&self.justification) {
            Some(x) => Some(Justification::parse(x).ok_or_else(|| {
                bad_field("justification", format!("'{x}' is not a justification"))
            })?),
            None => None,
        };
        Ok(CandidateFilter {
            state,
            justification,
            publisher: given(&self.publisher).map(str::to_string),
            product: given(&self.product).map(str::to_string),
            group: given(&self.group).map(str::to_string),
            software_text: given(&self.software).map(str::to_string),
            user_text: given(&self.person).map(str::to_string),
            ..CandidateFilter::default()
        })
    }

    /// The query string of these filters with another order, place and page number (for the
    /// list's links); `None` leaves that part out.
    fn query_with(&self, sort: Option<&str>, cursor: Option<&str>, page: u64) -> String {
        let mut parts: Vec<String> = FILTER_FIELDS
            .iter()
            .chain(["limit"].iter())
            .filter_map(|k| self.field(k).map(|v| format!("{k}={}", encode_segment(v))))
            .collect();
        if let Some(o) = sort {
            parts.push(format!("sort={}", encode_segment(o)));
        }
        if let Some(c) = cursor {
            parts.push(format!("cursor={}", encode_segment(c)));
            parts.push(format!("p={page}"));
        }
        parts.join("&")
    }

    /// The query string that reproduces these filters (and order) on the first page.
    fn query(&self) -> String {
        self.query_with(self.field("sort"), None, 1)
    }

    fn page_number(&self) -> u64 {
        given(&self.p)
            .and_then(|p| p.parse::<u64>().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1)
    }
}

#[derive(Serialize)]
struct Row {
    id: String,
    href: String,
    number: String,
    software: String,
    user: Option<String>,
    device: Option<String>,
    justification: &'static str,
    inactive_days: Option<u32>,
    state: &'static str,
    state_id: &'static str,
    group: Option<String>,
    /// When the user must answer by (Awaiting User).
    deadline: Option<String>,
    savings: String,
    ready: bool,
    /// Ticked, kept from an earlier visit to this page.
    selected: bool,
}

fn row(app: &crate::App, c: &Candidate) -> Row {
    Row {
        id: c.id.clone(),
        href: href(c),
        number: c.number.clone(),
        software: c.software.label_with_version(),
        user: c.user.as_ref().map(|u| u.display_name.clone()),
        device: c.device.clone(),
        justification: c.justification.words(),
        inactive_days: c.inactive_days,
        deadline: c.deadline_at.map(|d| d.format("%Y-%m-%d").to_string()),
        state: c.state.label(),
        state_id: c.state.as_str(),
        group: c.assignment_group.clone(),
        savings: app.saving(c),
        ready: c.state == WfState::Ready,
        selected: false,
    }
}

/// The candidate's page (emails link here too).
fn href(c: &Candidate) -> String {
    format!("/ui/candidates/{}", encode_segment(&c.id))
}

fn choices() -> (Vec<Value>, Vec<&'static str>) {
    let states = WfState::ALL
        .iter()
        .map(|s| context! { id => s.as_str(), label => s.label() })
        .collect();
    let justifications = Justification::ALL.iter().map(|j| j.as_str()).collect();
    (states, justifications)
}

/// The columns a person can order the list by, with their headings.
const COLUMNS: [(&str, SortKey); 7] = [
    ("Number", SortKey::Number),
    ("Software", SortKey::Software),
    ("User", SortKey::User),
    ("Inactive days", SortKey::InactiveDays),
    ("Stage", SortKey::Stage),
    ("Answer by", SortKey::Deadline),
    ("Savings", SortKey::Savings),
];

pub async fn candidates_page(
    State(s): State<ApiState>,
    v: Viewer,
    q: Result<Query<ListForm>, ApiError>,
) -> UiResult {
    let Query(q) = q?;
    list_page(&s, &v, &q, &[]).await
}

/// Keeps the ticked candidates while a sam admin pages or re-orders the list: the boxes of
/// this page and the ones kept from other pages come in; the page asked for (`go`) goes out
/// with them kept in the form.
pub async fn select_page(State(s): State<ApiState>, v: Viewer, UiForm(f): UiForm) -> UiResult {
    v.check(&f)?;
    v.require_sam_admin("Selecting candidates")?;
    let mut kept: Vec<String> = Vec::new();
    if f.get("clear").is_none() {
        for id in f.all("id") {
            if !kept.iter().any(|k| k == id) {
                kept.push(id.to_string());
            }
        }
    }
    if kept.len() > MAX_BULK {
        return Err(bad_field(
            "id",
            format!("at most {MAX_BULK} candidates can be selected at once"),
        ));
    }
    let go = f.get("go").unwrap_or_default();
    let q = ListForm::from_fields(&form::FormFields::parse(go.as_bytes())?);
    list_page(&s, &v, &q, &kept).await
}

async fn list_page(s: &ApiState, v: &Viewer, q: &ListForm, kept: &[String]) -> UiResult {
    let filter = q.filter()?;
    let limit = match given(&q.limit) {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=super::candidates::MAX_LIMIT).contains(l))
            .ok_or_else(|| bad_field("limit", "must be a number from 1 to 500".into()))?,
    };
    let sort = super::candidates::parse_sort(given(&q.sort))?;
    let cursor = given(&q.cursor).map(str::to_string);
    let number = if cursor.is_some() { q.page_number() } else { 1 };
    let page = scoped_page(
        s,
        &v.principal,
        filter,
        PageRequest {
            limit,
            cursor,
            sort,
        },
        true,
    )
    .await?;
    let all_groups = s
        .app
        .ports
        .directory
        .groups()
        .await
        .map_err(AppError::from)?;
    let group_name = |id: &str| {
        all_groups
            .iter()
            .find(|g| g.id == id)
            .map_or_else(|| id.to_string(), |g| g.name.clone())
    };
    let groups: Vec<Value> = all_groups
        .iter()
        .filter(|g| v.principal.sam_admin || v.principal.groups.contains(&g.id))
        .map(|g| context! { id => g.id, name => g.name })
        .collect();
    let (states, justifications) = choices();
    let link = |query: String| {
        if query.is_empty() {
            "/ui/candidates".to_string()
        } else {
            format!("/ui/candidates?{query}")
        }
    };
    let sort_text = given(&q.sort);
    let next = page
        .next
        .as_ref()
        .map(|c| q.query_with(sort_text, Some(c), number.saturating_add(1)));
    let prev = page.prev.as_ref().map(|c| {
        if number <= 2 {
            q.query()
        } else {
            q.query_with(sort_text, Some(c), number - 1)
        }
    });
    let first = (number > 1 || given(&q.cursor).is_some()).then(|| q.query());
    let columns: Vec<Value> = COLUMNS
        .iter()
        .map(|(label, key)| {
            let current = sort.filter(|o| o.key == *key);
            // A click on the ordered column turns it round; on another, orders by it going
            // up (savings and inactivity start with the largest, which is why one sorts them).
            let descending = match current {
                Some(o) => !o.descending,
                None => matches!(key, SortKey::Savings | SortKey::InactiveDays),
            };
            let order = format!("{}{}", if descending { "-" } else { "" }, key.as_str());
            context! {
                label,
                key => key.as_str(),
                query => q.query_with(Some(&order), None, 1),
                aria => match current {
                    Some(o) if o.descending => "descending",
                    Some(_) => "ascending",
                    None => "none",
                },
                num => matches!(key, SortKey::InactiveDays | SortKey::Savings),
            }
        })
        .collect();
    let shown = page.items.len() as u64;
    // The page number comes from the address: a made-up one must not overflow.
    let from = (number - 1)
        .saturating_mul(u64::from(limit))
        .saturating_add(1);
    let rows: Vec<Row> = page
        .items
        .iter()
        .map(|c| {
            let mut r = row(&s.app, c);
            r.group = r.group.as_deref().map(group_name);
            r.selected = kept.contains(&r.id);
            r
        })
        .collect();
    let any_ready = rows.iter().any(|r| r.ready);
    // Kept from other pages: this page's boxes say for themselves.
    let kept_elsewhere: Vec<&String> = kept
        .iter()
        .filter(|id| !rows.iter().any(|r| &r.id == *id))
        .collect();
    let active = FILTER_FIELDS
        .iter()
        .filter(|k| q.field(k).is_some())
        .count();
    Ok(v.render(
        "ui_candidates.html",
        "candidates",
        context! {
            rows,
            any_ready,
            selecting => v.principal.sam_admin && (any_ready || !kept.is_empty()),
            kept => kept_elsewhere,
            selected => kept.len(),
            states,
            justifications,
            groups,
            columns,
            f => context! {
                state => given(&q.state),
                justification => given(&q.justification),
                publisher => given(&q.publisher),
                product => given(&q.product),
                group => given(&q.group),
                software => given(&q.software),
                person => given(&q.person),
                sort => sort_text,
            },
            active,
            here => q.query_with(sort_text, given(&q.cursor), number),
            total => page.total.map(|t| context! {
                n => text::thousands(t.n), more => t.more, one => t.n == 1 && !t.more,
            }),
            shown_from => text::thousands(from),
            shown_to => text::thousands(from.saturating_add(shown.saturating_sub(1))),
            number,
            pages => page.total.filter(|t| !t.more).map(|t| t.n.div_ceil(u64::from(limit)).max(1)),
            next,
            prev,
            first,
            list_href => link(q.query()),
        },
    ))
}

/// The most candidates one bulk action takes.
const MAX_BULK: usize = 10_000;
/// A preview lists at most this many candidates (those that need a look first); the counts
/// cover them all.
const PREVIEW_SHOWN: usize = 500;
/// A bulk result names at most this many candidates in each list; the counts cover them all.
const RESULT_SHOWN: usize = 200;
/// Where a bulk Reclaim's page is cut to send its progress while it runs.
const PROGRESS_MARK: &str = "<!--bulk-progress-->";
/// How long a preview may be confirmed: long enough to read it, short enough that it still
/// describes the candidates (each is also checked against its version when confirmed).
const PREVIEW_MINUTES: i64 = 15;

/// The signature a preview's confirmation must carry: this person's session, the candidates
/// at their versions, and the preview's end; anything changed refuses it.
fn preview_signature(v: &Viewer, picks: &str, expires: i64) -> String {
    v.key
        .form_token("bulk-reclaim", &format!("{}|{expires}|{picks}", v.nonce))
}

/// Reclaim the ticked candidates, or every Ready one the filters select: first a preview of
/// what each would do, then, on its signed confirmation, exactly those candidates.
pub async fn bulk_reclaim(State(s): State<ApiState>, v: Viewer, UiForm(f): UiForm) -> UiResult {
    v.check(&f)?;
    v.require_sam_admin("Reclaim")?;
    let actor = v.actor();
    if f.get("confirm").is_some() {
        return confirm_bulk(&s, &v, &f).await;
    }
    let candidates = if f.get("scope") == Some("filter") {
        let filter = ListForm::from_fields(&f).filter()?;
        if filter.state.is_some_and(|st| st != WfState::Ready) {
            return Err(bad_field(
                "state",
                "Reclaim only takes Ready candidates".into(),
            ));
        }
        let ready = s.app.ready_matching(&filter, MAX_BULK + 1).await?;
        if ready.len() > MAX_BULK {
            return Err(bad_field(
                "scope",
                format!(
                    "more than {MAX_BULK} Ready candidates match: narrow the filters and try again"
                ),
            ));
        }
        ready
    } else {
        let ids = f.all("id");
        if ids.is_empty() {
            return Err(bad_field(
                "id",
                "Tick the candidates to reclaim first, or use \"Reclaim all Ready matching the filters\"."
                    .into(),
            ));
        }
        if ids.len() > MAX_BULK {
            return Err(bad_field(
                "id",
                format!("at most {MAX_BULK} candidates at once"),
            ));
        }
        let mut out = Vec::new();
        for id in ids {
            out.push(visible(&s, &v.principal, id).await?);
        }
        out
    };
    let preview = s.app.reclaim_preview(&candidates, &actor).await?;
    let [ask, remove, attention, excluded, refused] = preview.counts();
    let picks: Vec<String> = preview
        .items
        .iter()
        .filter(|i| {
            matches!(
                i.outcome,
                PreviewOutcome::AskUser
                    | PreviewOutcome::RemoveNow
                    | PreviewOutcome::NeedsAttention(_)
            )
        })
        .map(|i| format!("{}:{}", i.number, i.version))
        .collect();
    let joined = picks.join(",");
    let expires = (s.app.now() + chrono::Duration::minutes(PREVIEW_MINUTES)).timestamp();
    let mut rules: std::collections::BTreeMap<&str, [usize; 3]> = Default::default();
    for i in &preview.items {
        let slot = match i.outcome {
            PreviewOutcome::AskUser => 0,
            PreviewOutcome::RemoveNow => 1,
            PreviewOutcome::NeedsAttention(_) => 2,
            _ => continue,
        };
        rules.entry(i.rule.as_str()).or_default()[slot] += 1;
    }
    // Those that need a look first (refused, excluded, needing attention), then the rest.
    let mut shown: Vec<&crate::app::PreviewItem> = preview.items.iter().collect();
    shown.sort_by_key(|i| match i.outcome {
        PreviewOutcome::Refused(_) => 0,
        PreviewOutcome::Excluded(_) => 1,
        PreviewOutcome::NeedsAttention(_) => 2,
        PreviewOutcome::RemoveNow => 3,
        PreviewOutcome::AskUser => 4,
    });
    shown.truncate(PREVIEW_SHOWN);
    let items: Vec<Value> = shown
        .iter()
        .map(|i| {
            let (outcome, words, why) = match &i.outcome {
                PreviewOutcome::AskUser => ("ask-user", "ask the user", None),
                PreviewOutcome::RemoveNow => ("remove-now", "remove it now, without asking", None),
                PreviewOutcome::NeedsAttention(w) => ("needs-attention", "need attention", Some(w)),
                PreviewOutcome::Excluded(w) => ("excluded", "be skipped", Some(w)),
                PreviewOutcome::Refused(w) => ("refused", "be refused", Some(w)),
            };
            context! {
                number => i.number, software => i.software, user => i.user, rule => i.rule,
                outcome, words, why,
            }
        })
        .collect();
    Ok(v.render(
        "ui_bulk_preview.html",
        "candidates",
        context! {
            total => preview.items.len(),
            shown => items.len(),
            acting => picks.len(),
            ask, remove, attention, excluded, refused,
            by_rule => rules.iter().map(|(name, n)| context! {
                name, ask => n[0], remove => n[1], attention => n[2],
            }).collect::<Vec<_>>(),
            items,
            picks => joined,
            expires,
            sig => preview_signature(&v, &joined, expires),
        },
    ))
}

/// Runs a confirmed preview: only with its signature, before it ends, and each candidate only
/// at the version the preview showed.
async fn confirm_bulk(s: &ApiState, v: &Viewer, f: &form::FormFields) -> UiResult {
    let picks = f.get("picks").unwrap_or_default();
    let expires: i64 = f
        .get("expires")
        .and_then(|e| e.parse().ok())
        .unwrap_or_default();
    let sig = f.get("sig").unwrap_or_default();
    let signed = v.key.check_form_token(
        "bulk-reclaim",
        &format!("{}|{expires}|{picks}", v.nonce),
        sig,
    );
    if !signed {
        return Err(bad_field(
            "confirm",
            "This confirmation does not match a preview shown to you. Start the bulk Reclaim again."
                .into(),
        ));
    }
    if s.app.now().timestamp() > expires {
        return Err(bad_field(
            "confirm",
            format!(
                "This preview is older than {PREVIEW_MINUTES} minutes. Start the bulk Reclaim again to see what it would do now."
            ),
        ));
    }
    let mut list = Vec::new();
    for p in picks.split(',').filter(|p| !p.is_empty()) {
        let Some((number, version)) = p.rsplit_once(':') else {
            return Err(bad_field("picks", "malformed".into()));
        };
        let version = version
            .parse()
            .map_err(|_| bad_field("picks", "malformed".into()))?;
        list.push((number.to_string(), version));
    }
    Ok(run_bulk(s.clone(), v.clone(), list))
}

/// Runs a confirmed bulk Reclaim while its page is sent: the page up to [`PROGRESS_MARK`]
/// first, then a progress line after each stretch (the stylesheet shows only the latest), then
/// the result. The pages run no scripts, so this is how a person watches ten thousand go; the
/// work goes on to the end even if the browser leaves.
fn run_bulk(s: ApiState, v: Viewer, list: Vec<(String, u64)>) -> Response {
    use axum::body::Body;
    use std::convert::Infallible;
    let layout = v.layout("candidates");
    let page = move |ctx: Value| {
        super::pages::render_text("ui_bulk.html", context! { ..layout.clone(), ..ctx })
    };
    let Some(running) = page(context! { running => true, total => list.len() }) else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::response::Html(super::pages::RENDER_FAILED),
        )
            .into_response();
    };
    let head = running
        .split_once(PROGRESS_MARK)
        .map_or(running.as_str(), |(head, _)| head)
        .to_string();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let _ = tx.send(head);
    tokio::spawn(async move {
        let progress_tx = tx.clone();
        let progress = move |p: crate::app::BulkProgress| {
            let _ = progress_tx.send(format!(
                "<div class=\"bulk-progress\" role=\"status\"><progress max=\"{total}\" value=\"{done}\"></progress> Reclaimed {done} of {total}</div>\n",
                done = p.done,
                total = p.total
            ));
        };
        let result = s.app.reclaim_confirmed(&list, &v.actor(), &progress).await;
        let ctx = match result {
            Ok(report) => {
                let first = |l: &[String]| l.iter().take(RESULT_SHOWN).cloned().collect::<Vec<_>>();
                context! {
                    count => report.reclaimed.len(),
                    reclaimed => first(&report.reclaimed),
                    asked => first(&report.asked), n_asked => report.asked.len(),
                    removing => first(&report.removing), n_removing => report.removing.len(),
                    attention => first(&report.attention), n_attention => report.attention.len(),
                    refused => report.refused, excluded => report.excluded,
                    shown => RESULT_SHOWN,
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "bulk Reclaim stopped");
                context! { failed => e.to_string() }
            }
        };
        let tail = page(ctx)
            .map(|full| {
                full.split_once(PROGRESS_MARK)
                    .map_or(String::new(), |(_, tail)| tail.to_string())
            })
            .unwrap_or_else(|| super::pages::RENDER_FAILED.to_string());
        let _ = tx.send(tail);
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), rx))
    });
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        Body::from_stream(body),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// One candidate

/// The buttons the workspace knows, in the order it shows them: (event, label, tone, needs a
/// comment box). Which of them a person sees is decided by the core.
const BUTTONS: &[(&str, &str, &str)] = &[
    ("reclaim", "Reclaim", "primary"),
    ("answer-keep", "Yes, keep it", "keep"),
    ("answer-remove", "No, remove it", "remove"),
    ("approve", "Approve: keep it", "keep"),
    ("reject", "Reject: remove it", "remove"),
    ("close-complete", "Close Complete", "primary"),
    ("resume", "Resume", "primary"),
    ("check-now", "Check at the vendor now", "quiet"),
    (
        "override-exclusion",
        "Override the exclusion (comment required)",
        "quiet",
    ),
    ("reopen", "Reopen: reclaim it again", "primary"),
    (
        "accept-reappeared",
        "Accept: the user keeps it (reason required)",
        "keep",
    ),
    ("close-skipped", "Close Skipped", "quiet"),
];

fn done_words(action: &str) -> Option<&'static str> {
    Some(match action {
        "reclaim" => "Reclamation started.",
        "answer-keep" => "Recorded: keep it. The request goes to an approver.",
        "answer-remove" => "Recorded: remove it.",
        "approve" => "Approved: the user keeps it.",
        "reject" => "Rejected: it will be removed.",
        "close-complete" => "Closed as complete.",
        "close-skipped" => "Closed as skipped.",
        "resume" => "Resumed.",
        "reopened" => "Reopened: this new candidate reclaims the right again.",
        "check-now" => "Asked the vendor; its answer appears in the history.",
        "override-exclusion" => "Exclusion overridden: Reclaim now goes ahead for this candidate.",
        "accept-reappeared" => "Accepted: the user keeps it.",
        "note" => "Work note added.",
        "assign" => "Assignment saved.",
        "user" => "User details saved. Resume the candidate to try again.",
        _ => return None,
    })
}

fn when(t: reclaim_workflow::Timestamp) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoneQuery {
    done: Option<String>,
}

pub async fn candidate_page(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
    q: Result<Query<DoneQuery>, ApiError>,
) -> UiResult {
    let done = q
        .ok()
        .and_then(|Query(q)| q.done)
        .and_then(|d| done_words(&d));
    let c = visible(&s, &v.principal, &id).await?;
    let history = s
        .app
        .ports
        .candidates
        .history(&c.id)
        .await
        .map_err(AppError::from)?;
    let tasks = s
        .app
        .ports
        .tasks
        .tasks_for(&c.id)
        .await
        .map_err(AppError::from)?;
    let graph = workflow_graph(Some(c.state), &history);
    let drawing = svg::workflow_drawing(&graph);
    let allowed = actions(&v.principal, &c, s.app.now());
    let excluded = if c.state.is_closed() {
        None
    } else {
        s.app.exclusion(&c).await?
    };
    let buttons: Vec<Value> = BUTTONS
        .iter()
        .filter(|(e, _, _)| allowed.contains(e))
        .filter(|(e, _, _)| *e != "override-exclusion" || excluded.is_some())
        .map(|(e, label, tone)| context! { action => e, label, tone })
        .collect();
    let can_note = allowed.contains(&"work-note");
    let can_assign = allowed.contains(&"assign");
    let can_fix_user = allowed.contains(&"update-user");
    let (groups, people) = if can_assign {
        let dir = &s.app.ports.directory;
        let groups: Vec<Value> = dir
            .groups()
            .await
            .map_err(AppError::from)?
            .into_iter()
            .map(|g| context! { id => g.id, name => g.name })
            .collect();
        let mut users = dir.users().await.map_err(AppError::from)?;
        users.sort_by(|a, b| a.display_name.cmp(&b.display_name));
        let people: Vec<Value> = users
            .into_iter()
            .take(MAX_PEOPLE_OFFERED)
            .map(|u| context! { id => u.id, name => u.display_name })
            .collect();
        (groups, people)
    } else {
        (Vec::new(), Vec::new())
    };
    let path: Vec<&str> = graph
        .path
        .iter()
        .filter_map(|id| {
            graph
                .states
                .iter()
                .find(|st| st.id == *id)
                .map(|st| st.label)
        })
        .collect();
    let history: Vec<Value> = history
        .iter()
        .map(|h| {
            use reclaim_workflow::history;
            context! {
                at => when(h.at),
                who => history::who(&h.actor),
                event => h.event,
                what => history::words(&h.event, h.from, h.to),
                stage => history::stage_change(h.from, h.to),
                reason => h.reason,
                ip => h.ip,
                browser => h.user_agent.as_deref().map(history::browser),
                user_agent => h.user_agent,
            }
        })
        .collect();
    let notes: Vec<Value> = c
        .work_notes
        .iter()
        .map(|n| context! { at => when(n.at), author => n.author, text => n.text })
        .collect();
    let tasks: Vec<Value> = tasks
        .iter()
        .map(|t| {
            context! {
                kind => t.kind.as_str(), title => t.title, open => t.open,
                assignee => t.assignee, group => t.group,
            }
        })
        .collect();
    let user = c.user.as_ref().map(|u| {
        context! {
            name => u.display_name, id => u.id, email => u.email, itil => u.itil, vip => u.vip,
        }
    });
    let verifying = c.revocation.verifying.as_ref().map(|x| {
        context! {
            since => when(x.since),
            pending => x.after == reclaim_workflow::VerifyAfter::Pending,
            calls => x.calls,
            next => c.due_at.map(when),
        }
    });
    let verification = c.verification.as_ref().map(|x| {
        let resolution = x.resolution.as_ref().map(|r| match r {
            reclaim_workflow::Reappearance::Reopened {
                candidate_id,
                candidate_number,
                by,
                at,
            } => context! {
                reopened => true, number => candidate_number,
                href => format!("/ui/candidates/{}", encode_segment(candidate_id)),
                by, at => when(*at),
            },
            reclaim_workflow::Reappearance::Accepted { reason, by, at } => context! {
                reopened => false, reason, by, at => when(*at),
            },
        });
        context! {
            status => x.status.as_str(),
            label => x.status.label(),
            at => when(x.at),
            rechecks_done => x.rechecks_done,
            rechecks => c.rule.recheck_days.len(),
            next => c.due_at.map(when),
            last_checked => x.last_checked_at.map(when),
            reappeared => x.reappeared_at.map(when),
            resolution,
        }
    });
    let reopened_from = match &c.reopened_from {
        Some(id) => s
            .app
            .ports
            .candidates
            .get(id)
            .await
            .map_err(AppError::from)?
            .map(|o| context! { number => o.number, href => href(&o) }),
        None => None,
    };
    Ok(v.render(
        "ui_candidate.html",
        "candidates",
        context! {
            done,
            c => context! {
                id => c.id,
                action_url => format!("{}/action", href(&c)),
                notes_url => format!("{}/notes", href(&c)),
                history_csv => format!("{}/history.csv", href(&c)),
                assign_url => format!("{}/assign", href(&c)),
                user_url => format!("{}/user", href(&c)),
                number => c.number,
                software => c.software.label_with_version(),
                applies_to => c.applies_to.as_str(),
                device => c.device,
                sku => c.software.sku,
                user,
                user_upn => c.user.as_ref().and_then(|u| u.upn.clone()),
                justification => c.justification.as_str(),
                reason => c.reason(),
                inactive_days => c.inactive_days,
                last_used_at => c.last_used_at.map(when),
                unused_rights => c.unused_rights,
                price => s.app.price(&c),
                savings => s.app.saving(&c),
                rule => c.rule.name,
                group => c.assignment_group,
                assigned_to => c.assigned_to,
                state => c.state.label(),
                state_id => c.state.as_str(),
                version => c.version,
                opened_at => when(c.opened_at),
                closed_at => c.closed_at.map(when),
                deadline => c.deadline_at.map(when),
                attention => c.attention,
                last_outcome => c.revocation.last_outcome,
                closed_complete => c.state == WfState::ClosedComplete,
                excluded,
                exclusion_override => c.exclusion_override.as_ref().map(|o| context! {
                    by => o.by, comment => o.comment, at => when(o.at),
                }),
                verifying,
                verification,
                reopened_from,
            },
            stand_in => c.state == WfState::AwaitingApproval && v.principal.stands_in_for(&c),
            buttons,
            can_note,
            can_assign,
            can_fix_user,
            groups,
            people,
            max_note => MAX_NOTE,
            max_comment => MAX_COMMENT,
            history,
            notes,
            tasks,
            graph => drawing,
            outline => svg::workflow_outline(&graph),
            current => graph.states.iter().find(|st| st.current).map(|st| st.label),
            path,
        },
    ))
}

fn text_field(f: &form::FormFields, name: &str, max: usize) -> Result<Option<String>, UiError> {
    let t = f.get(name).map(str::trim).filter(|t| !t.is_empty());
    match t {
        Some(t) if t.chars().count() > max => {
            Err(bad_field(name, format!("at most {max} characters")))
        }
        t => Ok(t.map(str::to_string)),
    }
}

/// People the assign form suggests (a longer directory still accepts any id typed).
const MAX_PEOPLE_OFFERED: usize = 500;

fn given_field(f: &form::FormFields, name: &str) -> Option<String> {
    f.get(name)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

fn expected_version(f: &form::FormFields) -> Result<Option<u64>, UiError> {
    match given_field(f, "expected_version") {
        Some(x) => x
            .parse::<u64>()
            .map(Some)
            .map_err(|_| bad_field("expected_version", "must be a whole number".into())),
        None => Ok(None),
    }
}

/// Assigns the candidate to a group and/or a person, checked as the API checks it.
pub async fn assign(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
    UiForm(f): UiForm,
) -> UiResult {
    v.check(&f)?;
    let c = visible(&s, &v.principal, &id).await?;
    let expected = expected_version(&f)?;
    let event = s
        .app
        .assignment(given_field(&f, "group"), given_field(&f, "assigned_to"))
        .await?;
    apply_and_show(&s, &v, &c, &event, expected, "assign").await
}

/// Applies a form's event as this person and sends the browser back to the candidate, where
/// `done` says what happened.
async fn apply_and_show(
    s: &ApiState,
    v: &Viewer,
    c: &Candidate,
    event: &Event,
    expected: Option<u64>,
    done: &str,
) -> UiResult {
    s.app.transition(&c.id, event, &v.actor(), expected).await?;
    Ok(see_other(&format!(
        "/ui/candidates/{}?done={done}",
        encode_segment(&c.id)
    )))
}

/// Corrects the candidate's user (the usual case: the email was missing, so the user could not
/// be asked), checked as the API checks it.
pub async fn fix_user(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
    UiForm(f): UiForm,
) -> UiResult {
    v.check(&f)?;
    let c = visible(&s, &v.principal, &id).await?;
    let expected = expected_version(&f)?;
    let mut user = c.user.clone().unwrap_or(reclaim_workflow::UserRef {
        id: String::new(),
        display_name: String::new(),
        email: None,
        upn: None,
        itil: false,
        vip: false,
    });
    if let Some(id) = given_field(&f, "user_id") {
        user.id = id;
    }
    if let Some(name) = given_field(&f, "display_name") {
        user.display_name = name;
    }
    user.email = given_field(&f, "email");
    user.upn = given_field(&f, "upn");
    let event = crate::App::user_update(user)?;
    apply_and_show(&s, &v, &c, &event, expected, "user").await
}

/// A candidate's trail for an auditor, as CSV (the same as the API's).
pub async fn history_csv(State(s): State<ApiState>, v: Viewer, Path(id): Path<String>) -> UiResult {
    let c = visible(&s, &v.principal, &id).await?;
    let entries = s
        .app
        .ports
        .candidates
        .history(&c.id)
        .await
        .map_err(AppError::from)?;
    Ok(csv_download(
        reclaim_workflow::history::to_csv(&c.number, &entries),
        &format!("{}-history.csv", c.number),
    ))
}

/// A CSV body as a download that is never cached.
pub(crate) fn csv_download(body: String, filename: &str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    // The name is a candidate number or a fixed word: nothing a header could choke on.
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(CONTENT_DISPOSITION, v);
    }
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// One button of the candidate page (or of the approver queue).
pub async fn candidate_action(
    State(s): State<ApiState>,
    v: Viewer,
    client: ClientInfo,
    Path(id): Path<String>,
    UiForm(f): UiForm,
) -> UiResult {
    v.check(&f)?;
    let c = visible(&s, &v.principal, &id).await?;
    let comment = text_field(&f, "comment", MAX_COMMENT)?;
    let expected = expected_version(&f)?;
    let via = Via {
        channel: "web".into(),
        ip: client.ip,
        user_agent: client.user_agent,
    };
    let action = f.get("action").unwrap_or_default();
    let event = match action {
        "reclaim" => Event::Reclaim,
        "answer-keep" | "answer-remove" => Event::Answer {
            keep: action == "answer-keep",
            comment,
            via,
        },
        "approve" => Event::Approve { comment, via },
        "reject" => Event::Reject { comment, via },
        "close-complete" => Event::CloseComplete { note: comment },
        "close-skipped" => Event::CloseSkipped { reason: comment },
        "resume" => Event::Resume,
        "check-now" => Event::CheckNow,
        "override-exclusion" => Event::OverrideExclusion {
            comment: comment.unwrap_or_default(),
        },
        "accept-reappeared" => Event::AcceptReappeared {
            reason: comment.unwrap_or_default(),
        },
        "reopen" => {
            let again = s.app.reopen(&c.id, &v.actor()).await?;
            return Ok(see_other(&format!("{}?done=reopened", href(&again))));
        }
        other => {
            return Err(bad_field(
                "action",
                format!("'{other}' is not an action of the workspace"),
            ))
        }
    };
    if f.get("return") != Some("approvals") {
        return apply_and_show(&s, &v, &c, &event, expected, action).await;
    }
    s.app
        .transition(&c.id, &event, &v.actor(), expected)
        .await?;
    Ok(see_other(&format!(
        "/ui/approvals?done={action}&number={}",
        encode_segment(&c.number)
    )))
}

pub async fn add_note(
    State(s): State<ApiState>,
    v: Viewer,
    Path(id): Path<String>,
    UiForm(f): UiForm,
) -> UiResult {
    v.check(&f)?;
    let c = visible(&s, &v.principal, &id).await?;
    let Some(text) = text_field(&f, "text", MAX_NOTE)? else {
        return Err(bad_field("text", "a work note needs text".into()));
    };
    apply_and_show(&s, &v, &c, &Event::WorkNote { text }, None, "note").await
}

// ---------------------------------------------------------------------------------------------
// Approver queue, tasks

/// Keep requests this person may decide now (the core says who may approve).
async fn approvable(s: &ApiState, v: &Viewer) -> Result<Vec<Candidate>, UiError> {
    let p = &v.principal;
    if !p.sam_admin && p.groups.is_empty() {
        return Ok(Vec::new());
    }
    let filter = CandidateFilter {
        state: Some(WfState::AwaitingApproval),
        ..CandidateFilter::default()
    };
    let now = s.app.now();
    Ok(s.app
        .list_all(&filter)
        .await?
        .into_iter()
        .filter(|c| can_see(p, c) && actions(p, c, now).contains(&"approve"))
        .collect())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueQuery {
    done: Option<String>,
    number: Option<String>,
}

pub async fn approvals_page(
    State(s): State<ApiState>,
    v: Viewer,
    q: Result<Query<QueueQuery>, ApiError>,
) -> UiResult {
    let (done, number) = match q {
        Ok(Query(q)) => (q.done.as_deref().and_then(done_words), q.number),
        Err(_) => (None, None),
    };
    let queue = approvable(&s, &v).await?;
    let mut items = Vec::new();
    for c in &queue {
        let history = s
            .app
            .ports
            .candidates
            .history(&c.id)
            .await
            .map_err(AppError::from)?;
        let asked = history.iter().rev().find(|h| h.event == "answer-keep");
        items.push(context! {
            row => row(&s.app, c),
            version => c.version,
            reason => asked.and_then(|h| h.reason.clone()),
            asked_at => asked.map(|h| when(h.at)),
            stand_in => v.principal.stands_in_for(c),
        });
    }
    Ok(v.render(
        "ui_approvals.html",
        "approvals",
        context! { items, done, number, max_comment => MAX_COMMENT },
    ))
}

pub async fn tasks_page(State(s): State<ApiState>, v: Viewer) -> UiResult {
    let tasks: Vec<Value> = s
        .app
        .my_tasks(&v.principal)
        .await?
        .into_iter()
        .map(|t| {
            context! {
                kind => t.kind.as_str(),
                title => t.title,
                instructions => t.instructions,
                candidate_id => t.candidate_id,
                number => t.candidate_number,
                created_at => when(t.created_at),
                group => t.group,
                assignee => t.assignee,
            }
        })
        .collect();
    Ok(v.render("ui_tasks.html", "tasks", context! { tasks }))
}

// ---------------------------------------------------------------------------------------------
// Savings, alerts

/// One basis' amounts of a slice, as the page shows them.
fn totals(app: &crate::App, t: &reclaim_workflow::savings::Totals) -> Value {
    context! {
        potential => app.money(t.potential_cents),
        actual => app.money(t.actual_cents),
        verified => app.money(t.verified_cents),
        unverified => app.money(t.unverified_cents),
        reappeared => app.money(t.reappeared_cents),
        candidates => t.candidates,
    }
}

fn slices(
    app: &crate::App,
    map: &std::collections::BTreeMap<String, reclaim_workflow::savings::Amounts>,
) -> Vec<Value> {
    let mut v: Vec<_> = map.iter().collect();
    // Largest first: yearly savings, then one-time ones (never added together).
    v.sort_by_key(|(_, a)| {
        std::cmp::Reverse((
            a.yearly.potential_cents + a.yearly.actual_cents,
            a.one_time.potential_cents + a.one_time.actual_cents,
        ))
    });
    v.into_iter()
        .map(|(k, a)| {
            context! {
                key => k,
                yearly => totals(app, &a.yearly),
                one_time => totals(app, &a.one_time),
                candidates => a.yearly.candidates + a.one_time.candidates,
            }
        })
        .collect()
}

pub async fn savings_page(State(s): State<ApiState>, v: Viewer) -> UiResult {
    let total = savings_in_scope(&s, &v.principal, &CandidateFilter::default()).await?;
    let chart = svg::month_bars(&total.actual_by_month, 12);
    let (yearly, one_time) = (total.yearly(), total.one_time());
    Ok(v.render(
        "ui_savings.html",
        "savings",
        context! {
            potential => s.app.money(yearly.potential_cents),
            actual => s.app.money(yearly.actual_cents),
            verified => s.app.money(yearly.verified_cents),
            unverified => s.app.money(yearly.unverified_cents),
            reappeared => s.app.money(yearly.reappeared_cents),
            one_time => totals(&s.app, one_time),
            any_one_time => one_time.candidates > 0,
            yearly_words => reclaim_workflow::PricePeriod::Yearly.words(),
            one_time_words => reclaim_workflow::PricePeriod::OneTime.words(),
            currency => s.app.settings.currency.clone(),
            any_reappeared => yearly.reappeared_cents != 0 || one_time.reappeared_cents != 0,
            chart,
            by_publisher => slices(&s.app, &total.by_publisher),
            by_product => slices(&s.app, &total.by_product),
            by_justification => slices(&s.app, &total.by_justification),
            // The last three months, as an auditor most often asks.
            audit_from => (s.app.now() - chrono::Duration::days(91)).format("%Y-%m-%d").to_string(),
            audit_to => s.app.now().format("%Y-%m-%d").to_string(),
        },
    ))
}

/// The audit trails of a period as a CSV download (sam admins): the API's file, signed in.
pub async fn history_period_csv(
    State(s): State<ApiState>,
    v: Viewer,
    q: Result<Query<PeriodForm>, ApiError>,
) -> UiResult {
    let Query(q) = q?;
    v.require_sam_admin("Exporting audit trails")?;
    let period = super::trails::PeriodQuery::from_parts(
        q.from.as_deref(),
        q.to.as_deref(),
        q.cursor.as_deref(),
    );
    let (body, next) = super::trails::period_csv(&s, &period).await?;
    Ok(super::trails::csv_file(
        body,
        next,
        "/ui/history.csv",
        &period,
    ))
}

/// The audit export's form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodForm {
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
}

pub async fn savings_csv(State(s): State<ApiState>, v: Viewer) -> UiResult {
    let total = savings_in_scope(&s, &v.principal, &CandidateFilter::default()).await?;
    Ok(csv_download(total.to_csv(), "reclaim-savings.csv"))
}

/// Where the alerts page starts.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsForm {
    cursor: Option<String>,
}

/// Alerts on one page of the workspace.
const ALERTS_ON_A_PAGE: u32 = 200;

pub async fn alerts_page(
    State(s): State<ApiState>,
    v: Viewer,
    q: Result<Query<AlertsForm>, ApiError>,
) -> UiResult {
    let Query(q) = q?;
    let cursor = given(&q.cursor).map(str::to_string);
    let first = cursor.is_none();
    let (page, next) = s
        .app
        .stale_alerts_page(&v.principal, ALERTS_ON_A_PAGE, cursor)
        .await?;
    // How many there are, for a sam admin (who sees them all): counted up to a bound.
    let total = if v.principal.sam_admin {
        let alerting = CandidateFilter {
            alert_before: Some(s.app.now()),
            ..CandidateFilter::default()
        };
        let t = s
            .app
            .ports
            .candidates
            .count(&alerting, super::candidates::COUNT_UP_TO)
            .await
            .map_err(AppError::from)?;
        Some(context! { n => text::thousands(t.n), more => t.more })
    } else {
        None
    };
    let next = next.map(|c| format!("/ui/alerts?cursor={}", encode_segment(&c)));
    let alerts: Vec<Value> = page
        .into_iter()
        .map(|a| {
            context! {
                id => a.candidate_id, number => a.number, state => a.state.label(),
                days => a.days, reason => a.reason, group => a.assignment_group,
                reappeared => a.reappeared_at.is_some(),
            }
        })
        .collect();
    Ok(v.render(
        "ui_alerts.html",
        "alerts",
        context! { alerts, total, next, first },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_workspace_paths_are_destinations_after_sign_in() {
        assert_eq!(
            safe_next(Some("/ui/candidates?state=ready")),
            "/ui/candidates?state=ready"
        );
        assert_eq!(safe_next(Some("/ui")), "/ui");
        for bad in [
            "https://evil.example/ui",
            "//evil.example",
            "/ui/..\\x",
            "/uix",
            "/api/v1/me",
            "/ui//evil",
        ] {
            assert_eq!(safe_next(Some(bad)), "/ui", "{bad}");
        }
        assert_eq!(safe_next(None), "/ui");
    }
}
