//! Sign-in with an identity provider through the workspace's handlers.
//!
//! Against the real OpenID Provider (oidc-provider under Node, `reclaim_tests::oidc`): a
//! person the directory knows gets a session and lands where they were going; a replayed
//! `state`, a `state` this browser did not start, a wrong `nonce`, an expired ID token and a
//! person the directory does not know are each refused with a page and no session.
//!
//! A token the real provider would never issue (a tampered signature, another audience) comes
//! from a small issuer in this file that signs what the test asks with a test key: it checks
//! Reclaim's verification, not a provider.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::{Method, StatusCode};
use openidconnect::core::{
    CoreIdToken, CoreIdTokenClaims, CoreJwsSigningAlgorithm, CoreRsaPrivateSigningKey,
};
use openidconnect::{
    Audience, EmptyAdditionalClaims, EndUserEmail, IssuerUrl, Nonce, PrivateSigningKey,
    StandardClaims, SubjectIdentifier,
};
use reclaim_api::http::ui::oidc::{MatchClaim, OidcConfig};
use reclaim_tests::oidc::{query_param, OidcAccount, OidcClient, OidcOptions, OidcProvider};
use reclaim_tests::*;
use serde_json::json;

const CLIENT_ID: &str = "reclaim-workspace";
const CLIENT_SECRET: &str = "client-secret-of-the-tests";

fn redirect_uri() -> String {
    OidcConfig::redirect_for(PUBLIC_URL)
}

fn config(issuer: &str) -> OidcConfig {
    OidcConfig {
        issuer: issuer.to_string(),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        redirect_url: redirect_uri(),
        claim: MatchClaim::Email,
        display_name: "Example ID".into(),
    }
}

fn accounts() -> Vec<OidcAccount> {
    vec![
        // Known to the harness's directory by email.
        OidcAccount::new("00u-ada", "ada", "ada@example.com", "Ada", "ada-pass-1"),
        // Not in the directory.
        OidcAccount::new("00u-zed", "zed", "zed@example.com", "Zed", "zed-pass-1"),
    ]
}

fn provider(ttl: Option<u64>) -> OidcProvider {
    let redirect = redirect_uri();
    let client = OidcClient::new(CLIENT_ID, CLIENT_SECRET, &[&redirect]);
    OidcProvider::start_with(
        &client,
        &accounts(),
        &OidcOptions {
            id_token_ttl: ttl,
            ..OidcOptions::default()
        },
    )
}

/// Starts a sign-in through Reclaim: the provider URL it redirects to and the binding cookie.
async fn start(h: &Harness, next: &str) -> (String, UiSession) {
    let r = h
        .ui(
            Method::GET,
            &format!("/ui/sign-in/oidc?next={}", encode(next)),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let to = r.header("location").unwrap().to_string();
    let cookie = set_cookie_value(&r, "reclaim_oidc").expect("a binding cookie");
    assert!(
        set_cookies(&r)
            .iter()
            .any(|c| c.starts_with("reclaim_oidc=") && c.contains("SameSite=Lax")),
        "{:?}",
        set_cookies(&r)
    );
    (
        to,
        UiSession {
            cookie,
            csrf: String::new(),
        },
    )
}

fn encode(s: &str) -> String {
    reclaim_api::http::outbox::encode_segment(s)
}

/// Logs in at the provider (blocking HTTP, off the runtime) and returns the callback path.
async fn log_in(authorize: &str, user: &str, password: &str) -> String {
    let (authorize, user, password) = (
        authorize.to_string(),
        user.to_string(),
        password.to_string(),
    );
    let back = tokio::task::spawn_blocking(move || {
        reclaim_tests::oidc::log_in(&authorize, &user, &password)
    })
    .await
    .unwrap();
    back.strip_prefix(PUBLIC_URL)
        .unwrap_or_else(|| panic!("{back} is not under {PUBLIC_URL}"))
        .to_string()
}

/// The callback, as the browser that started the sign-in calls it.
async fn callback(h: &Harness, path: &str, binding: &UiSession) -> Resp {
    h.ui(Method::GET, path, Some(binding), None).await
}

fn assert_no_session(r: &Resp) {
    assert!(
        set_cookie_value(r, "reclaim_session").is_none_or(|c| c == "reclaim_session="),
        "no session: {:?}",
        set_cookies(r)
    );
}

#[tokio::test]
async fn a_known_person_signs_in_with_the_provider_and_lands_where_they_were_going() {
    let op = provider(None);
    let h = Harness::with_oidc(config(op.issuer())).await;
    // The sign-in page offers the provider and no person picker.
    let page = h.ui(Method::GET, "/ui/sign-in", None, None).await;
    assert!(
        page.text().contains("Sign in with Example ID"),
        "{}",
        page.text()
    );
    assert!(!page.text().contains("name=\"user\""));

    let (authorize, binding) = start(&h, "/ui/approvals").await;
    assert!(authorize.starts_with(op.issuer()), "{authorize}");
    for p in ["code_challenge", "state", "nonce"] {
        assert!(query_param(&authorize, p).is_some(), "{p} in {authorize}");
    }
    assert_eq!(
        query_param(&authorize, "code_challenge_method").as_deref(),
        Some("S256")
    );
    let back = log_in(&authorize, "ada", "ada-pass-1").await;
    let r = callback(&h, &back, &binding).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.page().contains("url=/ui/approvals"), "{}", r.text());
    let cookie = set_cookie_value(&r, "reclaim_session").expect("a session");
    let s = UiSession {
        cookie,
        csrf: String::new(),
    };
    let home = h.ui(Method::GET, "/ui", Some(&s), None).await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.text());
    assert!(home.text().contains("Signed in as ada"), "{}", home.text());

    // The same answer again is a replay: refused, no second session.
    let again = callback(&h, &back, &binding).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "{}", again.text());
    assert!(again.text().contains("already used"), "{}", again.text());
    assert_no_session(&again);
}

#[tokio::test]
async fn an_answer_this_browser_did_not_start_is_refused() {
    let op = provider(None);
    let h = Harness::with_oidc(config(op.issuer())).await;
    let (authorize, _binding) = start(&h, "/ui").await;
    let back = log_in(&authorize, "ada", "ada-pass-1").await;
    // Another browser (an attacker's page making the victim's browser finish the attacker's
    // sign-in): no binding cookie, or another sign-in's.
    let (_, other) = start(&h, "/ui").await;
    for binding in [
        UiSession {
            cookie: "x=1".into(),
            csrf: String::new(),
        },
        other,
    ] {
        let r = callback(&h, &back, &binding).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
        assert!(
            r.text().contains("not started in this browser"),
            "{}",
            r.text()
        );
        assert_no_session(&r);
    }
}

#[tokio::test]
async fn a_wrong_nonce_is_refused() {
    let op = provider(None);
    let h = Harness::with_oidc(config(op.issuer())).await;
    let (authorize, binding) = start(&h, "/ui").await;
    let back = log_in(&authorize, "ada", "ada-pass-1").await;
    // Swap the nonce Reclaim expects for another one.
    let state = query_param(&back, "state").unwrap();
    let id = reclaim_api::http::ui::session::session_id(&state);
    let sessions = h.embedded.app.ports.sessions.clone();
    let mut pending = sessions
        .take_sign_in(&id, chrono::Utc::now())
        .await
        .unwrap()
        .unwrap();
    pending.nonce = "another-nonce".into();
    sessions.put_sign_in(&pending).await.unwrap();
    let r = callback(&h, &back, &binding).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert!(r.text().to_lowercase().contains("nonce"), "{}", r.text());
    assert_no_session(&r);
}

#[tokio::test]
async fn an_id_token_expired_by_reclaims_clock_is_refused() {
    let op = provider(Some(300));
    // Reclaim's clock runs an hour ahead: the provider's five-minute token arrives expired.
    let h = Harness::with_oidc_at(
        config(op.issuer()),
        std::sync::Arc::new(ShiftedClock(chrono::Duration::hours(1))),
    )
    .await;
    let (authorize, binding) = start(&h, "/ui").await;
    let back = log_in(&authorize, "ada", "ada-pass-1").await;
    let r = callback(&h, &back, &binding).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert!(r.text().to_lowercase().contains("expired"), "{}", r.text());
    assert_no_session(&r);
}

#[tokio::test]
async fn a_person_the_directory_does_not_know_gets_a_page_not_a_session() {
    let op = provider(None);
    let h = Harness::with_oidc(config(op.issuer())).await;
    let (authorize, binding) = start(&h, "/ui").await;
    let back = log_in(&authorize, "zed", "zed-pass-1").await;
    let r = callback(&h, &back, &binding).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(r.text().contains("zed@example.com"), "{}", r.text());
    assert!(
        r.page()
            .contains("nobody with that email is in Reclaim's directory"),
        "{}",
        r.text()
    );
    assert_no_session(&r);
}

// ---------------------------------------------------------------------------------------------
// Tokens no real provider issues, from an issuer of the test's own.

struct Crafting {
    issuer: String,
    key: CoreRsaPrivateSigningKey,
    /// What the token endpoint answers next.
    next: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

async fn crafting_issuer() -> Crafting {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let pem = include_str!("../../fixtures/oidc-test-rsa.pem");
    let key = CoreRsaPrivateSigningKey::from_pem(pem, None).unwrap();
    let jwks = json!({ "keys": [key.as_verification_key()] });
    let discovery = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    });
    let next: std::sync::Arc<std::sync::Mutex<Option<String>>> = Default::default();
    let answer = next.clone();
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || {
                let d = discovery.clone();
                async move { axum::Json(d) }
            }),
        )
        .route(
            "/jwks",
            axum::routing::get(move || {
                let j = jwks.clone();
                async move { axum::Json(j) }
            }),
        )
        .route(
            "/token",
            axum::routing::post(move || {
                let id_token = answer.lock().unwrap().take().unwrap_or_default();
                async move {
                    axum::Json(json!({
                        "access_token": "at", "token_type": "Bearer", "expires_in": 60,
                        "id_token": id_token,
                    }))
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Crafting {
        issuer,
        key: CoreRsaPrivateSigningKey::from_pem(pem, None).unwrap(),
        next,
    }
}

impl Crafting {
    fn token(&self, aud: &str, nonce: &str, exp_in: chrono::Duration) -> String {
        let now = chrono::Utc::now();
        let claims = CoreIdTokenClaims::new(
            IssuerUrl::new(self.issuer.clone()).unwrap(),
            vec![Audience::new(aud.into())],
            now + exp_in,
            now,
            StandardClaims::new(SubjectIdentifier::new("00u-ada".into()))
                .set_email(Some(EndUserEmail::new("ada@example.com".into()))),
            EmptyAdditionalClaims {},
        )
        .set_nonce(Some(Nonce::new(nonce.into())));
        CoreIdToken::new(
            claims,
            &self.key,
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            None,
            None,
        )
        .unwrap()
        .to_string()
    }
}

/// Starts a sign-in at the crafting issuer and returns the callback path, the binding and the
/// nonce Reclaim expects.
async fn crafted_start(h: &Harness) -> (String, UiSession, String) {
    let (authorize, binding) = start(h, "/ui").await;
    let state = query_param(&authorize, "state").unwrap();
    let nonce = query_param(&authorize, "nonce").unwrap();
    (
        format!("/ui/oidc/callback?code=c1&state={}", encode(&state)),
        binding,
        nonce,
    )
}

#[tokio::test]
async fn a_token_crafted_right_signs_in_so_the_refusals_below_are_the_tokens_fault() {
    let c = crafting_issuer().await;
    let h = Harness::with_oidc(config(&c.issuer)).await;
    let (back, binding, nonce) = crafted_start(&h).await;
    *c.next.lock().unwrap() = Some(c.token(CLIENT_ID, &nonce, chrono::Duration::minutes(5)));
    let r = callback(&h, &back, &binding).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(set_cookie_value(&r, "reclaim_session").is_some());
}

#[tokio::test]
async fn a_tampered_id_token_is_refused() {
    let c = crafting_issuer().await;
    let h = Harness::with_oidc(config(&c.issuer)).await;
    let (back, binding, nonce) = crafted_start(&h).await;
    let token = c.token(CLIENT_ID, &nonce, chrono::Duration::minutes(5));
    // Change the payload (another person's email) and keep the signature.
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = String::from_utf8(b64.decode(&parts[1]).unwrap()).unwrap();
    parts[1] = b64.encode(payload.replace("ada@example.com", "sam@example.com"));
    *c.next.lock().unwrap() = Some(parts.join("."));
    let r = callback(&h, &back, &binding).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert!(r.text().contains("refused"), "{}", r.text());
    assert_no_session(&r);
}

#[tokio::test]
async fn an_id_token_for_another_client_is_refused() {
    let c = crafting_issuer().await;
    let h = Harness::with_oidc(config(&c.issuer)).await;
    let (back, binding, nonce) = crafted_start(&h).await;
    *c.next.lock().unwrap() = Some(c.token("another-app", &nonce, chrono::Duration::minutes(5)));
    let r = callback(&h, &back, &binding).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert!(r.text().to_lowercase().contains("aud"), "{}", r.text());
    assert_no_session(&r);
}

#[tokio::test]
async fn an_id_token_past_its_expiry_is_refused() {
    let c = crafting_issuer().await;
    let h = Harness::with_oidc(config(&c.issuer)).await;
    let (back, binding, nonce) = crafted_start(&h).await;
    *c.next.lock().unwrap() = Some(c.token(CLIENT_ID, &nonce, chrono::Duration::seconds(-30)));
    let r = callback(&h, &back, &binding).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert!(r.text().to_lowercase().contains("expired"), "{}", r.text());
    assert_no_session(&r);
}

#[tokio::test]
async fn without_a_provider_the_sign_in_routes_do_not_exist() {
    let h = Harness::new().await;
    let r = h.ui(Method::GET, "/ui/sign-in/oidc", None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .ui(Method::GET, "/ui/oidc/callback?code=x&state=y", None, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
