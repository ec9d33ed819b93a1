//! The OpenID Provider harness itself (`reclaim_tests::oidc`): the real oidc-provider under
//! Node, driven through discovery, the JWKS, an authorization request with PKCE S256, its own
//! login form, and the token endpoint with `client_secret_basic`. Needs RECLAIM_OIDC_PROVIDER
//! (./test.sh sets it); fails without it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reclaim_api::http::outbox::encode_segment;
use reclaim_tests::oidc::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};

const CLIENT_ID: &str = "reclaim-workspace";
const CLIENT_SECRET: &str = "client-secret-of-the-tests";
/// Never called: the tests read the code off the redirect.
const REDIRECT_URI: &str = "http://127.0.0.1:9/ui/oidc/callback";

fn client() -> OidcClient {
    OidcClient::new(CLIENT_ID, CLIENT_SECRET, &[REDIRECT_URI])
}

fn accounts() -> Vec<OidcAccount> {
    vec![
        OidcAccount::new(
            "00u-ada",
            "ada",
            "ada@example.org",
            "Ada Lovelace",
            "ada-pass-1",
        )
        .with_upn("ada@corp.example.org"),
        OidcAccount::new(
            "00u-bob",
            "bob",
            "bob@example.org",
            "Bob Baker",
            "bob-pass-1",
        ),
    ]
}

/// A fresh unguessable-enough value (64 hex characters) for verifiers, states and nonces.
fn random() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let seed = format!(
        "{:?}{}{}",
        std::time::SystemTime::now(),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    Sha256::digest(seed.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One authorization request: its URL and what the client keeps to finish it.
struct Request {
    url: String,
    state: String,
    nonce: String,
    verifier: String,
}

fn authorization_request(discovery: &Value) -> Request {
    let (state, nonce, verifier) = (random(), random(), random());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let url = format!(
        "{}?response_type=code&client_id={}&redirect_uri={}&scope={}&state={state}\
         &nonce={nonce}&code_challenge={challenge}&code_challenge_method=S256",
        discovery["authorization_endpoint"].as_str().unwrap(),
        encode_segment(CLIENT_ID),
        encode_segment(REDIRECT_URI),
        encode_segment("openid email profile"),
    );
    Request {
        url,
        state,
        nonce,
        verifier,
    }
}

/// POSTs the code to the token endpoint with client_secret_basic.
fn redeem(discovery: &Value, code: &str, verifier: &str) -> HttpResponse {
    let body = reclaim_tests::form_encode(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", verifier),
    ]);
    HttpClient::new().request(
        "POST",
        discovery["token_endpoint"].as_str().unwrap(),
        &[
            ("Authorization", &basic_auth(CLIENT_ID, CLIENT_SECRET)),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        body.as_bytes(),
    )
}

#[test]
fn code_flow_with_pkce_through_the_real_provider() {
    let op = OidcProvider::start(&client(), &accounts());
    let issuer = op.issuer().to_string();
    assert!(issuer.starts_with("http://127.0.0.1:"), "{issuer}");

    // Discovery.
    let mut browser = HttpClient::new();
    let discovery = browser
        .get(&format!("{issuer}/.well-known/openid-configuration"))
        .json();
    assert_eq!(discovery["issuer"], issuer.as_str());
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
    ] {
        let url = discovery[endpoint].as_str().unwrap();
        assert!(url.starts_with(&issuer), "{endpoint}: {url}");
    }
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        discovery["response_types_supported"],
        serde_json::json!(["code"])
    );
    assert_eq!(
        discovery["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic"])
    );

    // The JWKS: one public RS256 signing key.
    let jwks = browser.get(discovery["jwks_uri"].as_str().unwrap()).json();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    assert_eq!(keys[0]["kty"], "RSA");
    assert_eq!(keys[0]["alg"], "RS256");
    assert!(keys[0]["kid"].is_string(), "{jwks}");
    assert!(
        keys[0].get("d").is_none(),
        "a private key is published: {jwks}"
    );

    // Authorization: login form, automatic consent, redirect back with code and state.
    let req = authorization_request(&discovery);
    let back = browser.log_in(&req.url, "ada", "ada-pass-1");
    assert!(back.starts_with(&format!("{REDIRECT_URI}?")), "{back}");
    assert_eq!(
        query_param(&back, "state").as_deref(),
        Some(req.state.as_str())
    );
    assert_eq!(query_param(&back, "iss").as_deref(), Some(issuer.as_str()));
    let code = query_param(&back, "code").expect("a code");

    // The token endpoint.
    let tokens = redeem(&discovery, &code, &req.verifier);
    assert_eq!(tokens.status, 200, "{}", tokens.text());
    let tokens = tokens.json();
    assert_eq!(tokens["token_type"], "Bearer");
    let claims = jwt_payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["iss"], issuer.as_str());
    assert_eq!(claims["aud"], CLIENT_ID);
    assert_eq!(claims["nonce"], req.nonce.as_str());
    assert_eq!(claims["sub"], "00u-ada");
    assert_eq!(claims["email"], "ada@example.org");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["preferred_username"], "ada");
    assert_eq!(claims["name"], "Ada Lovelace");
    assert_eq!(claims["upn"], "ada@corp.example.org");
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 300, "the provider's default ID token lifetime");

    // A code is good once.
    let replay = redeem(&discovery, &code, &req.verifier);
    assert_eq!(replay.status, 400, "{}", replay.text());
    assert_eq!(replay.json()["error"], "invalid_grant");

    // The provider's session cookie works over plain http: a second request signs in at once.
    let again = authorization_request(&discovery);
    let back = browser
        .try_log_in(&again.url, "ada", "not-asked-for")
        .unwrap_or_else(|refused| panic!("no single sign-on: {refused}"));
    assert_eq!(
        query_param(&back, "state").as_deref(),
        Some(again.state.as_str())
    );
    let code = query_param(&back, "code").expect("a code");
    // ... and the verifier of that request, not another, redeems its code.
    let wrong = redeem(&discovery, &code, &req.verifier);
    assert_eq!(wrong.status, 400, "{}", wrong.text());
    assert_eq!(wrong.json()["error"], "invalid_grant");
}

#[test]
fn a_wrong_password_gets_the_form_again_and_no_code() {
    let op = OidcProvider::start(&client(), &accounts());
    let discovery = op.discovery();
    let req = authorization_request(&discovery);

    let mut browser = HttpClient::new();
    let refused = browser
        .try_log_in(&req.url, "bob", "ada-pass-1")
        .expect_err("a wrong password must not give a code");
    assert_eq!(refused.status, 200);
    assert!(
        refused.page.contains("Wrong username or password."),
        "{refused}"
    );
    assert!(refused.page.contains("name=\"password\""), "{refused}");
    assert!(!refused.url.contains("code="), "{refused}");

    let refused = browser
        .try_log_in(&req.url, "nobody", "bob-pass-1")
        .expect_err("an unknown user must not give a code");
    assert!(
        refused.page.contains("Wrong username or password."),
        "{refused}"
    );

    // Without PKCE the provider answers the client with an error, not a code.
    let no_pkce = req
        .url
        .split('&')
        .filter(|p| !p.starts_with("code_challenge"))
        .collect::<Vec<_>>()
        .join("&");
    let back = browser.log_in(&no_pkce, "bob", "bob-pass-1");
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(query_param(&back, "code"), None);

    // The right password, by email; bob has no upn.
    let back = browser.log_in(&req.url, "bob@example.org", "bob-pass-1");
    let code = query_param(&back, "code").expect("a code");
    let tokens = redeem(&discovery, &code, &req.verifier);
    assert_eq!(tokens.status, 200, "{}", tokens.text());
    let claims = jwt_payload(tokens.json()["id_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "00u-bob");
    assert_eq!(claims["email"], "bob@example.org");
    assert!(claims.get("upn").is_none(), "{claims}");
}

#[test]
fn the_id_token_lifetime_is_an_option() {
    let op = OidcProvider::start_with(
        &client(),
        &accounts(),
        &OidcOptions {
            id_token_ttl: Some(5),
            ..OidcOptions::default()
        },
    );
    let discovery = op.discovery();
    let req = authorization_request(&discovery);
    let back = log_in(&req.url, "ada", "ada-pass-1");
    let code = query_param(&back, "code").expect("a code");
    let tokens = redeem(&discovery, &code, &req.verifier);
    assert_eq!(tokens.status, 200, "{}", tokens.text());
    let claims = jwt_payload(tokens.json()["id_token"].as_str().unwrap());
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 5);
}
