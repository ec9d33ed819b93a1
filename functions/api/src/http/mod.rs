//! The one axum Router every deployment serves.
//!
//! Three route sets, so each AWS function mounts only what its IAM role should serve:
//! - [`public_routes`]: the email-link pages (`/respond/{token}`), unauthenticated: the signed
//!   token is the credential. The `respond` Lambda mounts these.
//! - [`admin_routes`]: the authenticated JSON API under `/api/v1`. The `api` Lambda mounts these.
//! - the outbox page (`/outbox`), local mode only, when [`ApiState::outbox`] is set.
//! - the web workspace under `/ui` ([`ui`]), server-rendered pages for sam admins, approvers
//!   and users; mounted with the admin routes, because the `api` function serves it on AWS.
//!
//! [`router`] merges them for `reclaim serve`. Every route is registered through one table
//! builder that also records what it mounted, and the OpenAPI document is built from
//! [`openapi::ROUTES`]; a test checks the two agree, so the document cannot drift.

pub mod auth;
pub mod candidates;
pub mod connectors;
pub mod error;
pub mod openapi;
pub mod outbox;
pub mod pages;
pub mod resources;
pub mod trails;
pub mod ui;
pub mod usage;

use crate::app::App;
use auth::Authenticate;
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{on, MethodFilter};
use axum::Router;
use error::ApiError;
use outbox::OutboxView;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Request bodies larger than this are refused with 413 (imports included: split big files).
pub const DEFAULT_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    pub app: App,
    pub auth: Arc<dyn Authenticate>,
    /// The local outbox; `Some` mounts the outbox page (local mode only).
    pub outbox: Option<Arc<dyn OutboxView>>,
    /// Take the client address from `X-Forwarded-For`'s first hop. Only behind a proxy that
    /// sets it (API Gateway, a local reverse proxy): otherwise clients could forge it.
    pub trust_forwarded_for: bool,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Signs the workspace's session cookies and form tokens.
    pub session_key: Arc<ui::session::SessionKey>,
    /// Believe `X-Forwarded-Proto: https` (cookies then get `Secure`). Only behind a proxy
    /// that sets it: otherwise a client could claim TLS it does not have.
    pub trust_forwarded_proto: bool,
    /// Cookies always get `Secure`: the public URL is https, or a TLS proxy is in front.
    pub secure_cookies: bool,
    /// How long workspace sessions last.
    pub session_policy: ui::session::SessionPolicy,
    /// A demo: the sign-in page lets anyone pick a person from the directory. Never in
    /// production, where the outbox page is not mounted either.
    pub demo: bool,
    /// Sign-in with the organisation's identity provider, when configured.
    pub oidc: Option<Arc<ui::oidc::Oidc>>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("outbox", &self.outbox.is_some())
            .field("trust_forwarded_for", &self.trust_forwarded_for)
            .field("body_limit", &self.body_limit)
            .field("trust_forwarded_proto", &self.trust_forwarded_proto)
            .field("secure_cookies", &self.secure_cookies)
            .field("session_policy", &self.session_policy)
            .field("demo", &self.demo)
            .field("oidc", &self.oidc)
            .finish_non_exhaustive()
    }
}

impl ApiState {
    /// Production defaults: no outbox page, no person picker, addresses from the socket, the
    /// default body limit, `Secure` cookies when the public URL is https, and a random key for
    /// cookies and form tokens (see [`ApiState::with_session_key`] for one that outlives the
    /// process).
    pub fn new(app: App, auth: Arc<dyn Authenticate>) -> Self {
        let secure_cookies = app.settings.public_url.starts_with("https://");
        ApiState {
            secure_cookies,
            session_policy: ui::session::SessionPolicy::default(),
            demo: false,
            oidc: None,
            app,
            auth,
            outbox: None,
            trust_forwarded_for: false,
            body_limit: DEFAULT_BODY_LIMIT,
            session_key: Arc::new(ui::session::SessionKey::random()),
            trust_forwarded_proto: false,
        }
    }

    /// A session key shared by every instance (several Lambdas, a restart that must keep
    /// people signed in); at least 32 bytes.
    pub fn with_session_key(mut self, key: &[u8]) -> Result<Self, String> {
        self.session_key = Arc::new(ui::session::SessionKey::new(key)?);
        Ok(self)
    }

    pub fn trusting_forwarded_proto(mut self, trust: bool) -> Self {
        self.trust_forwarded_proto = trust;
        self
    }

    /// Behind a TLS proxy that sets `X-Forwarded-For` and `X-Forwarded-Proto`: believe both,
    /// and give every cookie `Secure` (the browser reaches us over TLS).
    pub fn behind_proxy(mut self) -> Self {
        self.trust_forwarded_for = true;
        self.trust_forwarded_proto = true;
        self.secure_cookies = true;
        self
    }

    /// Offers sign-in with the organisation's identity provider.
    pub fn with_oidc(mut self, oidc: Arc<ui::oidc::Oidc>) -> Self {
        self.oidc = Some(oidc);
        self
    }

    pub fn with_session_policy(mut self, policy: ui::session::SessionPolicy) -> Self {
        self.session_policy = policy;
        self
    }

    /// The demo: mounts the outbox page over this outbox and lets the sign-in page offer every
    /// person in the directory. That gives nothing the outbox does not already give (it shows
    /// every link), and neither exists outside a demo.
    pub fn demo(mut self, outbox: Arc<dyn OutboxView>) -> Self {
        self.outbox = Some(outbox);
        self.demo = true;
        self
    }

    pub fn trusting_forwarded_for(mut self, trust: bool) -> Self {
        self.trust_forwarded_for = trust;
        self
    }
}

/// The HTTP methods the API uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Method::Get => MethodFilter::GET,
            Method::Post => MethodFilter::POST,
            Method::Put => MethodFilter::PUT,
            Method::Delete => MethodFilter::DELETE,
        }
    }
}

/// Registers routes and remembers each (method, path) it mounted, for the drift test.
pub(crate) struct Routes {
    router: Router<ApiState>,
    mounted: Vec<(Method, &'static str)>,
}

impl Routes {
    fn new() -> Self {
        Routes {
            router: Router::new(),
            mounted: Vec::new(),
        }
    }

    fn add<H, T>(mut self, method: Method, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, ApiState>,
        T: 'static,
    {
        self.router = self.router.route(path, on(method.filter(), handler));
        self.mounted.push((method, path));
        self
    }

    fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.mounted.extend(other.mounted);
        self
    }
}

fn public_part() -> Routes {
    use Method::*;
    Routes::new()
        .add(Get, "/healthz", pages::healthz)
        .add(Get, "/assets/reclaim.css", pages::stylesheet)
        .add(Get, "/respond/{token}", pages::respond_page)
        .add(Post, "/respond/{token}", pages::respond_answer)
}

fn admin_part() -> Routes {
    api_part().merge(ui::routes())
}

fn api_part() -> Routes {
    use candidates as c;
    use resources as r;
    use Method::*;
    Routes::new()
        .add(Get, "/api/v1/openapi.json", openapi::document)
        .add(Get, "/api/v1/me", r::me)
        .add(Get, "/api/v1/candidates", c::list)
        .add(Post, "/api/v1/candidates", c::import)
        .add(Post, "/api/v1/candidates/reclaim-all", c::reclaim_all)
        .add(Get, "/api/v1/candidates/{id}", c::get)
        .add(Get, "/api/v1/candidates/{id}/workflow", c::workflow)
        .add(Get, "/api/v1/candidates/{id}/history.csv", c::history_csv)
        .add(Post, "/api/v1/candidates/{id}/reclaim", c::reclaim)
        .add(Post, "/api/v1/candidates/{id}/answer", c::answer)
        .add(Post, "/api/v1/candidates/{id}/approve", c::approve)
        .add(Post, "/api/v1/candidates/{id}/reject", c::reject)
        .add(
            Post,
            "/api/v1/candidates/{id}/close-complete",
            c::close_complete,
        )
        .add(
            Post,
            "/api/v1/candidates/{id}/close-skipped",
            c::close_skipped,
        )
        .add(Post, "/api/v1/candidates/{id}/resume", c::resume)
        .add(Post, "/api/v1/candidates/{id}/check-now", c::check_now)
        .add(
            Post,
            "/api/v1/candidates/{id}/override-exclusion",
            c::override_exclusion,
        )
        .add(Post, "/api/v1/candidates/{id}/reopen", c::reopen)
        .add(Post, "/api/v1/candidates/{id}/accept", c::accept_reappeared)
        .add(Post, "/api/v1/candidates/{id}/assign", c::assign)
        .add(Post, "/api/v1/candidates/{id}/work-notes", c::work_note)
        .add(Put, "/api/v1/candidates/{id}/user", c::update_user)
        .add(Get, "/api/v1/workflow", r::bare_workflow)
        .add(Get, "/api/v1/tasks/mine", r::my_tasks)
        .add(Get, "/api/v1/rules", r::rules)
        .add(Get, "/api/v1/rules/{id}", r::rule)
        .add(Put, "/api/v1/rules/{id}", r::put_rule)
        .add(Delete, "/api/v1/rules/{id}", r::delete_rule)
        .add(Get, "/api/v1/groups", r::groups)
        .add(Get, "/api/v1/groups/{id}", r::group)
        .add(Put, "/api/v1/groups/{id}", r::put_group)
        .add(Get, "/api/v1/savings", r::savings)
        .add(Get, "/api/v1/savings.csv", usage::savings_csv)
        .add(Post, "/api/v1/usage", usage::import)
        .add(Get, "/api/v1/alerts", usage::alerts)
        .add(Get, "/api/v1/history", trails::trails)
        .add(Get, "/api/v1/history.csv", trails::trails_csv)
        .add(Get, "/api/v1/connectors", connectors::list)
        .add(Get, "/api/v1/connectors/{id}/runs", connectors::runs)
        .add(Post, "/api/v1/connectors/{id}/run", connectors::run)
}

// The outbox page is unauthenticated: it exists only in local mode, where the server listens
// on 127.0.0.1 for one developer, and its messages hold exactly the links it is there to show.
fn outbox_part() -> Routes {
    use Method::*;
    Routes::new()
        .add(Get, "/outbox", outbox::list_page)
        .add(Get, "/outbox/{key}", outbox::message_page)
        .add(Get, "/outbox/{key}/html", outbox::message_html)
}

/// Every (method, path) the Router mounts (with the outbox page when `outbox` is true).
/// The workspace pages are among them; [`openapi::ROUTES`] and [`ui::PAGES`] together describe
/// them all.
pub fn mounted_routes(outbox: bool) -> Vec<(Method, &'static str)> {
    let mut all = public_part().merge(admin_part());
    if outbox {
        all = all.merge(outbox_part());
    }
    all.mounted
}

fn finish(routes: Routes, state: ApiState) -> Router {
    let limit = state.body_limit;
    routes
        .router
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), same_origin))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// One log line per request, with an id the response carries as `X-Request-Id` (a person
/// reporting a problem can quote it). The route is logged as its template (`/respond/{token}`),
/// never the path itself, and never the query or a header: links, tokens and secrets stay out
/// of the logs.
async fn log_request(mut req: Request<axum::body::Body>, next: Next) -> Response {
    let started = std::time::Instant::now();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let id = id.get(..16).unwrap_or(&id).to_string();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "(no route)".to_string(), |m| m.as_str().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut res = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    tracing::info!(
        request_id = %id,
        method = %method,
        route = %route,
        status = res.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    res
}

/// The id [`log_request`] gave this request.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// `scheme://host[:port]` of a URL, lower-cased, as browsers send it in `Origin`.
pub fn origin_of(url: &str) -> String {
    let url = url.trim();
    let end = url
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| url[start..].find('/').map(|j| start + j))
        .unwrap_or(url.len());
    url[..end].to_ascii_lowercase()
}

/// Whether a request's `Origin` (or, without one, its `Referer`) is the public URL's origin.
/// `None`: the request carries neither header.
fn from_our_site(parts: &Parts, ours: &str) -> Option<bool> {
    let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(origin) = header(header::ORIGIN) {
        return Some(origin.trim().eq_ignore_ascii_case(ours));
    }
    header(header::REFERER).map(|r| {
        let r = r.trim();
        origin_of(r) == ours && (r.len() == ours.len() || r[ours.len()..].starts_with('/'))
    })
}

/// Refuses a state-changing request sent from another site. Pages (`/ui`, `/respond`) are
/// used with a cookie or a link token a browser attaches by itself, so their POSTs must say
/// they come from the public URL (`Origin`, or `Referer` where a browser sends no `Origin`);
/// the form token is a second, independent check. The JSON API authenticates with a bearer
/// token no browser sends by itself; it refuses only a request that names a foreign origin.
async fn same_origin(
    axum::extract::State(state): axum::extract::State<ApiState>,
    req: Request<axum::body::Body>,
    next: Next,
) -> Response {
    use axum::http::Method as M;
    use axum::response::IntoResponse;
    if matches!(*req.method(), M::GET | M::HEAD | M::OPTIONS) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let ours = origin_of(&state.app.settings.public_url);
    let page = parts.uri.path().starts_with("/ui") || parts.uri.path().starts_with("/respond");
    let allowed = match from_our_site(&parts, &ours) {
        Some(ok) => ok,
        None => !page,
    };
    if allowed {
        return next.run(Request::from_parts(parts, body)).await;
    }
    // The route's template, never the path: a link's token is in its path.
    let route = parts
        .extensions
        .get::<axum::extract::MatchedPath>()
        .map_or("(no route)", |m| m.as_str());
    tracing::warn!(
        route,
        origin = ?parts.headers.get(header::ORIGIN),
        "refused a request from another site"
    );
    let e = ApiError::forbidden(
        "this request did not come from a Reclaim page: open the page again and resubmit",
    );
    if page {
        ui::UiError(e).into_response()
    } else {
        e.into_response()
    }
}

/// The whole Router: link pages, the JSON API, and the outbox page when the state has one.
pub fn router(state: ApiState) -> Router {
    let mut all = public_part().merge(admin_part());
    if state.outbox.is_some() {
        all = all.merge(outbox_part());
    }
    finish(all, state)
}

/// Only the public link pages (the `respond` function).
pub fn public_routes(state: ApiState) -> Router {
    finish(public_part(), state)
}

/// Only the authenticated JSON API and the workspace (the `api` function).
pub fn admin_routes(state: ApiState) -> Router {
    finish(admin_part(), state)
}

async fn no_route() -> ApiError {
    ApiError::no_route()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}

/// The page policy: no scripts at all, styles from our own stylesheet, forms post only to us,
/// never framed.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Basic security headers on every response. A handler that set its own (the outbox's
/// sandboxed message preview) keeps them.
async fn security_headers(req: Request<axum::body::Body>, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let defaults = [
        (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // Our own forms' POSTs must carry our origin (checked by `same_origin`); under
        // `no-referrer` browsers send `Origin: null`. Other sites still get nothing.
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in defaults {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    res
}

/// Where a request came from and with what, for the audit trail of answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// User agents longer than this are cut: the audit trail is not a dump for headers.
const MAX_USER_AGENT: usize = 512;

impl FromRequestParts<ApiState> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let forwarded = state
            .trust_forwarded_for
            .then(|| {
                parts
                    .headers
                    .get("x-forwarded-for")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(',').next())
                    .and_then(|first| first.trim().parse::<IpAddr>().ok())
            })
            .flatten();
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT).collect::<String>());
        Ok(ClientInfo {
            ip: forwarded.or(peer).map(|ip| ip.to_string()),
            user_agent,
        })
    }
}
