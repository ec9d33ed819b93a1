//! # reclaim-tests
//!
//! Support for the end-to-end tests: [`Harness`] opens a fresh local deployment (SQLite file
//! in a temporary directory, outbox mailer, the application, the manual-task revoker), seeds a
//! small directory, and sends requests through the one Router with `Router::oneshot`.
//!
//! The people: `sam` (sam admin), `ada` (approver, group `desktop`), `bob` (approver, group
//! `saas`), `uma` (ITIL user), `nia` (non-ITIL user), `noe` (user without an email), `eve`
//! (a user with no candidates and no groups). Rules: `notify` (ask the user, 14 days,
//! group `desktop`) and `silent` (no notification).
//!
//! [`oidc`]: a real OpenID Provider (oidc-provider under Node) started per test, and a small
//! cookie-keeping HTTP client that signs in through it.

// Test support: a failed setup step should stop the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use reclaim_api::{
    token_digest, ApiState, HmacLinkSigner, ManualTaskRevoker, Settings, StoredTokens,
};
use reclaim_local::{Embedded, StoredMessage};
use reclaim_workflow::ports::{CandidateRead, Clock, Revoker, SystemClock};
use reclaim_workflow::{Candidate, Group, HistoryEntry, Rule, State, User};
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

pub mod connectors;
pub mod fuzz;
pub mod oidc;
pub mod verification;

/// The link-signing key of every harness (tests sign their own tokens with it).
pub const LINK_KEY: [u8; 32] = [42u8; 32];
/// Where links in emails point.
pub const PUBLIC_URL: &str = "http://reclaim.test";

pub const SAM: &str = "token-sam-admin-0001";
pub const ADA: &str = "token-ada-approver-01";
pub const BOB: &str = "token-bob-approver-01";
pub const UMA: &str = "token-uma-itil-user-01";
pub const NIA: &str = "token-nia-plain-user-01";
pub const NOE: &str = "token-noe-no-email-01";
pub const EVE: &str = "token-eve-no-groups-01";

/// A fresh local deployment and its Router.
#[derive(Debug)]
pub struct Harness {
    _dir: tempfile::TempDir,
    pub embedded: Embedded,
    pub router: Router,
    /// Candidates made by [`Harness::create_one`], so each is a seat of its own.
    made: std::sync::atomic::AtomicU32,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// An HTML body with the template engine's entity escapes decoded, so tests can look for
    /// URLs as a browser would read them.
    pub fn page(&self) -> String {
        self.text()
            .replace("&#x2f;", "/")
            .replace("&quot;", "\"")
            .replace("&#x27;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    }

    /// The error code of a JSON error body.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {}", self.text()))
            .to_string()
    }

    /// The field names of a JSON error body.
    pub fn fields(&self) -> Vec<String> {
        self.json()["error"]["fields"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f["field"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

fn user(id: &str, email: Option<&str>, itil: bool, sam_admin: bool) -> User {
    User {
        id: id.into(),
        display_name: format!("{}{}", id[..1].to_uppercase(), &id[1..]),
        email: email.map(str::to_string),
        upn: None,
        itil,
        vip: false,
        sam_admin,
    }
}

/// What the stored candidate looks like, for "nothing changed" checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub version: u64,
    pub state: State,
    pub history: usize,
}

impl Harness {
    pub async fn new() -> Harness {
        Harness::build(false, Arc::new(SystemClock), Arc::new(ManualTaskRevoker)).await
    }

    /// A harness whose Router takes client addresses from `X-Forwarded-For`.
    pub async fn trusting_proxy() -> Harness {
        Harness::build(true, Arc::new(SystemClock), Arc::new(ManualTaskRevoker)).await
    }

    /// A harness on an injected clock (time travel) and revoker (scripted plugin outcomes).
    pub async fn with_clock_and_revoker(
        clock: Arc<dyn Clock>,
        revoker: Arc<dyn Revoker>,
    ) -> Harness {
        Harness::build(false, clock, revoker).await
    }

    /// A harness that also signs people in with an identity provider.
    pub async fn with_oidc(config: reclaim_api::http::ui::oidc::OidcConfig) -> Harness {
        Harness::with_oidc_at(config, Arc::new(SystemClock)).await
    }

    /// The same, with Reclaim's clock injected (a clock ahead of the provider's sees its
    /// tokens expired).
    pub async fn with_oidc_at(
        config: reclaim_api::http::ui::oidc::OidcConfig,
        clock: Arc<dyn Clock>,
    ) -> Harness {
        let h = Harness::build(false, clock, Arc::new(ManualTaskRevoker)).await;
        let oidc = reclaim_api::http::ui::oidc::Oidc::new(config).expect("OpenID Connect client");
        let state = ApiState::new(
            h.embedded.app.clone(),
            Arc::new(StoredTokens::new(h.embedded.app.ports.tokens.clone())),
        )
        .with_oidc(Arc::new(oidc));
        Harness {
            router: reclaim_api::router(state),
            ..h
        }
    }

    async fn build(
        trust_forwarded_for: bool,
        clock: Arc<dyn Clock>,
        revoker: Arc<dyn Revoker>,
    ) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = Settings {
            public_url: PUBLIC_URL.into(),
            ..Settings::default()
        };
        let embedded = Embedded::open(
            &dir.path().join("reclaim.db"),
            settings,
            Arc::new(HmacLinkSigner::new(LINK_KEY).expect("key")),
            revoker,
            clock,
        )
        .expect("open the store");
        let dirx = embedded.app.ports.directory.clone();
        for u in [
            user("sam", Some("sam@example.com"), true, true),
            user("ada", Some("ada@example.com"), true, false),
            user("bob", Some("bob@example.com"), true, false),
            user("uma", Some("uma@example.com"), true, false),
            user("nia", Some("nia@example.com"), false, false),
            user("noe", None, false, false),
            user("eve", Some("eve@example.com"), false, false),
        ] {
            dirx.put_user(&u).await.expect("user");
        }
        for (id, member) in [("desktop", "ada"), ("saas", "bob")] {
            dirx.put_group(&Group {
                id: id.into(),
                name: format!("{id} approvers"),
                email: None,
                members: vec![member.into()],
            })
            .await
            .expect("group");
        }
        let rules = embedded.app.ports.rules.clone();
        for rule in [
            json!({"id": "notify", "name": "Ask the user", "notify_user": true,
                   "days_before_auto_reclamation": 14, "reminder_days": [3, 7],
                   "assignment_group": "desktop"}),
            json!({"id": "silent", "name": "Remove without asking", "notify_user": false,
                   "days_before_auto_reclamation": 0, "assignment_group": "desktop"}),
        ] {
            let rule: Rule = serde_json::from_value(rule).expect("rule");
            rules.put_rule(&rule).await.expect("rule");
        }
        for (token, user) in [
            (SAM, "sam"),
            (ADA, "ada"),
            (BOB, "bob"),
            (UMA, "uma"),
            (NIA, "nia"),
            (NOE, "noe"),
            (EVE, "eve"),
        ] {
            embedded
                .app
                .ports
                .tokens
                .put_token(&token_digest(token), user)
                .await
                .expect("token");
        }
        let router = demo_router(&embedded, trust_forwarded_for);
        Harness {
            made: std::sync::atomic::AtomicU32::new(0),
            _dir: dir,
            embedded,
            router,
        }
    }

    /// A harness whose deployment has these usage connectors.
    pub async fn with_sources(sources: Arc<dyn reclaim_workflow::ports::UsageSources>) -> Harness {
        let mut h = Harness::new().await;
        h.embedded.app.ports.sources = sources;
        h.router = demo_router(&h.embedded, false);
        h
    }

    /// Sends one request through the Router.
    pub async fn send(&self, req: Request<Body>) -> Resp {
        let res = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("the router is infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let body = res
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        Resp {
            status,
            headers,
            body,
        }
    }

    /// A JSON request (`body` as JSON) with an optional bearer token.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut b = from_our_pages(Request::builder().method(method).uri(path));
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(v) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string())),
            None => b.body(Body::empty()),
        }
        .expect("request");
        self.send(req).await
    }

    /// A request with a raw body and content type.
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: impl Into<Body>,
    ) -> Resp {
        let mut b = from_our_pages(Request::builder().method(method).uri(path));
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(ct) = content_type {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        self.send(b.body(body.into()).expect("request")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// Creates candidates through `POST /api/v1/candidates`; returns their numbers.
    pub async fn create(&self, rows: Vec<Value>) -> Vec<String> {
        let r = self
            .post("/api/v1/candidates", SAM, json!({ "candidates": rows }))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        r.json()["created"]
            .as_array()
            .expect("created")
            .iter()
            .map(|n| n.as_str().expect("number").to_string())
            .collect()
    }

    /// Creates one candidate from a base row with `extra` fields merged in. Each call is
    /// another device (`LAPTOP-042`, `LAPTOP-043`, …) unless `extra` names one, since one seat
    /// has at most one open candidate.
    pub async fn create_one(&self, extra: Value) -> String {
        let n = self.made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut row = json!({
            "publisher": "Adobe", "product": "Acrobat Pro", "version": "24.1",
            "device": format!("LAPTOP-{:03}", 42 + n), "justification": "unused", "inactive_days": 120,
            "price_per_right": "239.88", "rule": "notify",
            "user_id": "uma", "user_name": "Uma Itil", "user_email": "uma@example.com",
            "user_itil": true,
        });
        if let (Some(base), Some(extra)) = (row.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                base.insert(k.clone(), v.clone());
            }
        }
        self.create(vec![row]).await.remove(0)
    }

    pub async fn candidate(&self, id: &str) -> Candidate {
        self.embedded
            .store
            .get(id)
            .await
            .expect("read")
            .expect("exists")
    }

    pub async fn history(&self, id: &str) -> Vec<HistoryEntry> {
        let c = self.candidate(id).await;
        self.embedded.store.history(&c.id).await.expect("history")
    }

    /// Version, state and history length, as stored.
    pub async fn snapshot(&self, id: &str) -> Snapshot {
        let c = self.candidate(id).await;
        Snapshot {
            version: c.version,
            state: c.state,
            history: self.history(id).await.len(),
        }
    }

    /// Runs every effect that is due (mail, tasks, revocation) until none is left.
    pub async fn drain(&self) {
        let stats = self.embedded.drain().await.expect("drain");
        assert_eq!(stats.failed, 0, "an effect failed: {stats:?}");
    }

    /// Messages the outbox kept for an address, oldest first.
    pub async fn mail_to(&self, address: &str) -> Vec<StoredMessage> {
        self.embedded
            .mailer
            .messages_to(address)
            .await
            .expect("outbox")
    }
}

/// The wall clock moved by a fixed amount.
#[derive(Debug)]
pub struct ShiftedClock(pub chrono::Duration);

impl Clock for ShiftedClock {
    fn now(&self) -> reclaim_workflow::Timestamp {
        chrono::Utc::now() + self.0
    }
}

/// Adds `Origin: PUBLIC_URL` to a state-changing request, as a browser does on a form of our
/// own pages (requests without it are refused on pages; tests of that build their own).
pub fn from_our_pages(b: axum::http::request::Builder) -> axum::http::request::Builder {
    let changes = b
        .method_ref()
        .is_some_and(|m| !matches!(*m, Method::GET | Method::HEAD));
    if changes {
        b.header(header::ORIGIN, PUBLIC_URL)
    } else {
        b
    }
}

/// The `/respond/...` path of the link after `label` in a plain-text email.
pub fn link_path(text: &str, label: &str) -> String {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no line starting with {label:?} in:\n{text}"));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http"))
        .unwrap_or_else(|| panic!("no link on {line:?}"));
    url.strip_prefix(PUBLIC_URL)
        .unwrap_or_else(|| panic!("{url} is not under {PUBLIC_URL}"))
        .to_string()
}

/// A signed-in browser of the web workspace: its session cookie and the token its forms carry.
#[derive(Clone, Debug)]
pub struct UiSession {
    pub cookie: String,
    pub csrf: String,
}

/// Percent-encodes a form field (everything but unreserved characters).
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                reclaim_api::http::outbox::encode_segment(k),
                reclaim_api::http::outbox::encode_segment(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The value of the first hidden `csrf` field of a page.
pub fn csrf_of(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let at = page
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf field in:\n{page}"));
    let rest = &page[at + marker.len()..];
    rest[..rest.find('"').expect("end of value")].to_string()
}

/// The `name=value` part of a `Set-Cookie` header for `name`.
pub fn set_cookie_value(r: &Resp, name: &str) -> Option<String> {
    r.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
}

/// Every `Set-Cookie` header of a response.
pub fn set_cookies(r: &Resp) -> Vec<String> {
    r.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect()
}

impl Harness {
    /// A workspace request with an optional session cookie and form body.
    pub async fn ui(
        &self,
        method: Method,
        path: &str,
        session: Option<&UiSession>,
        form: Option<&[(&str, &str)]>,
    ) -> Resp {
        let mut b = from_our_pages(Request::builder().method(method).uri(path));
        if let Some(s) = session {
            b = b.header(header::COOKIE, &s.cookie);
        }
        let req = match form {
            Some(f) => b
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form_encode(f))),
            None => b.body(Body::empty()),
        }
        .expect("request");
        self.send(req).await
    }

    /// Signs in to the workspace as `user` by picking them (local mode), as a browser would.
    pub async fn ui_sign_in(&self, user: &str) -> UiSession {
        let r = self.ui(Method::GET, "/ui/sign-in", None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let pre = set_cookie_value(&r, "reclaim_sign_in").expect("sign-in cookie");
        let csrf = csrf_of(&r.text());
        let pre_session = UiSession {
            cookie: pre,
            csrf: csrf.clone(),
        };
        let r = self
            .ui(
                Method::POST,
                "/ui/sign-in",
                Some(&pre_session),
                Some(&[("csrf", &csrf), ("user", user), ("next", "/ui")]),
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let cookie = set_cookie_value(&r, "reclaim_session").expect("session cookie");
        let mut s = UiSession {
            cookie,
            csrf: String::new(),
        };
        let home = self.ui(Method::GET, "/ui", Some(&s), None).await;
        assert_eq!(home.status, StatusCode::OK, "{}", home.text());
        s.csrf = csrf_of(&home.text());
        s
    }
}

/// The demo's state: the outbox page and the person picker, which the workspace tests sign in
/// with. Production's doors are tested against the real binary.
fn demo_router(embedded: &Embedded, trust_forwarded_for: bool) -> Router {
    let tokens = StoredTokens::new(embedded.app.ports.tokens.clone());
    let state = ApiState::new(embedded.app.clone(), Arc::new(tokens))
        .demo(Arc::new(embedded.mailer.clone()))
        .trusting_forwarded_for(trust_forwarded_for);
    reclaim_api::router(state)
}
