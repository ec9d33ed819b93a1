//! Sign-in with the organisation's identity provider: OpenID Connect, authorization code flow
//! with PKCE, `state` and `nonce`, through the maintained `openidconnect` crate.
//!
//! 1. `GET /ui/sign-in/oidc` makes a random `state`, `nonce` and PKCE verifier, keeps them as a
//!    [`PendingSignIn`] (taken once, ten minutes) under the SHA-256 of `state`, binds the
//!    `state` to this browser with a signed cookie, and sends the browser to the provider.
//! 2. `GET /ui/oidc/callback` refuses a `state` this browser did not start, takes the pending
//!    sign-in (a replayed `state` finds nothing), exchanges the code with the PKCE verifier,
//!    and has the crate verify the ID token against the issuer's published keys: signature,
//!    `iss`, `aud`, `exp` and the `nonce`.
//! 3. The person is matched to the directory by the configured claim; someone the directory
//!    does not know gets a page saying so, never a session.
//!
//! Discovery (the issuer's metadata and keys) is fetched on first use and again after an hour,
//! or at once when a token is signed with a key the cached set does not have (key rotation).

use super::session::{self, cookie, secure_cookies};
use crate::http::ApiState;
use axum::http::request::Parts;
use axum::http::HeaderValue;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenVerifier, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use reclaim_workflow::ports::{PendingSignIn, StoreError};
use reclaim_workflow::User;
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

/// The cookie that binds a sign-in in progress to the browser that started it. `Lax`, not
/// `Strict`: the provider sends the browser back with a cross-site navigation.
pub const OIDC_COOKIE: &str = "reclaim_oidc";
/// How long a person may take at the provider.
const PENDING_SECS: i64 = 600;
/// The provider's metadata and keys are fetched again after this long.
const METADATA_TTL: Duration = Duration::from_secs(3600);

/// Which ID token claim names the person, and what in the directory it is compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchClaim {
    /// `email`, compared with the user's email (case-insensitively). The default: every
    /// provider sends it. An `email_verified` of `false` is refused.
    Email,
    /// `sub`, compared with the user's id (for directories loaded with the provider's ids).
    Sub,
    /// `preferred_username`, compared with the user's UPN, then their email.
    PreferredUsername,
    /// `upn` (Microsoft Entra ID), compared with the user's UPN, then their email.
    Upn,
}

impl MatchClaim {
    pub fn parse(s: &str) -> Option<MatchClaim> {
        match s {
            "email" => Some(MatchClaim::Email),
            "sub" => Some(MatchClaim::Sub),
            "preferred_username" => Some(MatchClaim::PreferredUsername),
            "upn" => Some(MatchClaim::Upn),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MatchClaim::Email => "email",
            MatchClaim::Sub => "sub",
            MatchClaim::PreferredUsername => "preferred_username",
            MatchClaim::Upn => "upn",
        }
    }

    /// Whether `value` (the claim) names `user`.
    pub fn names(self, value: &str, user: &User) -> bool {
        let eq = |x: Option<&str>| x.is_some_and(|x| x.trim().eq_ignore_ascii_case(value.trim()));
        match self {
            MatchClaim::Email => eq(user.email.as_deref()),
            MatchClaim::Sub => user.id == value,
            MatchClaim::PreferredUsername | MatchClaim::Upn => {
                eq(user.upn.as_deref()) || eq(user.email.as_deref())
            }
        }
    }
}

/// What a deployment configures.
#[derive(Clone)]
pub struct OidcConfig {
    /// The issuer URL; discovery reads `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// Where the provider sends people back: `<public URL>/ui/oidc/callback`.
    pub redirect_url: String,
    pub claim: MatchClaim,
    /// What the sign-in button says, e.g. "Microsoft Entra ID".
    pub display_name: String,
}

impl std::fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("redirect_url", &self.redirect_url)
            .field("claim", &self.claim)
            .finish()
    }
}

impl OidcConfig {
    /// The redirect URL under a public URL.
    pub fn redirect_for(public_url: &str) -> String {
        format!("{}/ui/oidc/callback", public_url.trim_end_matches('/'))
    }
}

/// Why a sign-in with the provider did not give a session.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider could not be reached or answered nonsense: try again later.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
    /// The answer was refused (not started here, replayed, a token that fails verification).
    #[error("{0}")]
    Refused(String),
    /// A valid sign-in of someone the directory does not know.
    #[error("{0}")]
    UnknownPerson(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The relying party: configuration, an HTTP client that never follows redirects (a redirect
/// from the provider's endpoints would let it point us anywhere), and the cached metadata.
pub struct Oidc {
    config: OidcConfig,
    http: openidconnect::reqwest::Client,
    metadata: RwLock<Option<(CoreProviderMetadata, Instant)>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The verified result of a sign-in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedIn {
    pub user_id: String,
    /// Where to go next (a workspace path).
    pub next: String,
}

impl Oidc {
    pub fn new(config: OidcConfig) -> Result<Oidc, OidcError> {
        IssuerUrl::new(config.issuer.clone())
            .map_err(|e| OidcError::Refused(format!("issuer URL: {e}")))?;
        RedirectUrl::new(config.redirect_url.clone())
            .map_err(|e| OidcError::Refused(format!("redirect URL: {e}")))?;
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| OidcError::Unavailable(format!("HTTP client: {e}")))?;
        Ok(Oidc {
            config,
            http,
            metadata: RwLock::new(None),
        })
    }

    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    async fn metadata(&self, refresh: bool) -> Result<CoreProviderMetadata, OidcError> {
        if !refresh {
            if let Some((m, at)) = self.metadata.read().await.as_ref() {
                if at.elapsed() < METADATA_TTL {
                    return Ok(m.clone());
                }
            }
        }
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| OidcError::Refused(format!("issuer URL: {e}")))?;
        let m = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| OidcError::Unavailable(format!("discovery: {}", chain(&e))))?;
        *self.metadata.write().await = Some((m.clone(), Instant::now()));
        Ok(m)
    }

    fn client(
        &self,
        m: CoreProviderMetadata,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        OidcError,
    > {
        let redirect = RedirectUrl::new(self.config.redirect_url.clone())
            .map_err(|e| OidcError::Refused(format!("redirect URL: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            m,
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(self.config.client_secret.clone())),
        )
        .set_redirect_uri(redirect))
    }

    /// Starts a sign-in: the provider's URL to send the browser to, and the cookie that binds
    /// this sign-in to the browser.
    pub async fn start(
        &self,
        state: &ApiState,
        parts: &Parts,
        next: &str,
    ) -> Result<(String, HeaderValue), OidcError> {
        let client = self.client(self.metadata(false).await?)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, csrf, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge)
            .url();
        let now = state.app.now();
        state
            .app
            .ports
            .sessions
            .put_sign_in(&PendingSignIn {
                id: session::session_id(csrf.secret()),
                nonce: nonce.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
                next: next.to_string(),
                expires_at: now + chrono::Duration::seconds(PENDING_SECS),
            })
            .await?;
        let cookie = binding_cookie(
            &state.session_key.seal(csrf.secret()),
            PENDING_SECS,
            secure_cookies(parts, state),
        );
        Ok((url.to_string(), cookie))
    }

    /// Finishes a sign-in from the provider's answer.
    pub async fn finish(
        &self,
        state: &ApiState,
        parts: &Parts,
        code: &str,
        returned_state: &str,
    ) -> Result<SignedIn, OidcError> {
        let started_here = cookie(&parts.headers, OIDC_COOKIE)
            .and_then(|v| state.session_key.open(v))
            .is_some_and(|s| constant_eq(&s, returned_state));
        if !started_here {
            return Err(OidcError::Refused(
                "this sign-in was not started in this browser (or it took too long): \
                 start again from the sign-in page"
                    .into(),
            ));
        }
        let now = state.app.now();
        let Some(pending) = state
            .app
            .ports
            .sessions
            .take_sign_in(&session::session_id(returned_state), now)
            .await?
        else {
            return Err(OidcError::Refused(
                "this sign-in answer was already used or has expired: start again from the \
                 sign-in page"
                    .into(),
            ));
        };
        let client = self.client(self.metadata(false).await?)?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| OidcError::Unavailable(format!("token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::Refused(format!("the code was refused: {}", chain(&e))))?;
        let token = response
            .id_token()
            .ok_or_else(|| OidcError::Refused("the provider sent no ID token".into()))?;
        let nonce = Nonce::new(pending.nonce.clone());
        let verify = |client: &CoreClient<_, _, _, _, _, _>| {
            let verifier: CoreIdTokenVerifier<'_> =
                client.id_token_verifier().set_time_fn(move || now);
            token.claims(&verifier, &nonce).cloned()
        };
        let claims = match verify(&client) {
            Ok(c) => c,
            // Signed with a key we have not seen: the provider may have rotated its keys.
            Err(ClaimsVerificationError::SignatureVerification(_)) => {
                let fresh = self.client(self.metadata(true).await?)?;
                verify(&fresh).map_err(refused)?
            }
            Err(e) => return Err(refused(e)),
        };
        let value = match self.config.claim {
            MatchClaim::Email => {
                if claims.email_verified() == Some(false) {
                    return Err(OidcError::Refused(
                        "the provider says this email address is not verified".into(),
                    ));
                }
                claims.email().map(|e| e.to_string())
            }
            MatchClaim::Sub => Some(claims.subject().to_string()),
            MatchClaim::PreferredUsername => claims.preferred_username().map(|u| u.to_string()),
            // Not a standard claim: read from the token the crate has just verified.
            MatchClaim::Upn => payload_claim(&token.to_string(), "upn"),
        };
        let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
            return Err(OidcError::Refused(format!(
                "the provider's ID token has no '{}' claim to find you by",
                self.config.claim.as_str()
            )));
        };
        let users = state
            .app
            .ports
            .directory
            .users()
            .await
            .map_err(OidcError::Store)?;
        let matches: Vec<&User> = users
            .iter()
            .filter(|u| self.config.claim.names(&value, u))
            .collect();
        match matches.as_slice() {
            [one] => Ok(SignedIn {
                user_id: one.id.clone(),
                next: pending.next,
            }),
            [] => Err(OidcError::UnknownPerson(format!(
                "You signed in as {value} at your identity provider, but nobody with that {} \
                 is in Reclaim's directory. Ask a sam admin to add you.",
                self.config.claim.as_str()
            ))),
            _ => Err(OidcError::UnknownPerson(format!(
                "Several people in Reclaim's directory have the {} {value}: ask a sam admin \
                 to fix the directory.",
                self.config.claim.as_str()
            ))),
        }
    }
}

fn refused(e: ClaimsVerificationError) -> OidcError {
    OidcError::Refused(format!("the ID token was refused: {e}"))
}

/// An error with its causes, for the log and the page.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

fn constant_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The binding cookie: like the session's, but `SameSite=Lax` so the provider's redirect back
/// (a cross-site top-level GET) carries it.
pub fn binding_cookie(value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{OIDC_COOKIE}={value}; Path=/ui/oidc; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A string claim of a JWT's payload. Only for a token that was verified already.
fn payload_claim(jwt: &str, name: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get(name)?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, email: Option<&str>, upn: Option<&str>) -> User {
        User {
            id: id.into(),
            display_name: id.into(),
            email: email.map(str::to_string),
            upn: upn.map(str::to_string),
            itil: false,
            vip: false,
            sam_admin: false,
        }
    }

    #[test]
    fn each_claim_is_compared_with_its_own_directory_field() {
        let ada = user("ada", Some("Ada@Example.com"), Some("ada@corp.example"));
        assert!(MatchClaim::Email.names("ada@example.com", &ada));
        assert!(!MatchClaim::Email.names("ada@corp.example", &ada));
        assert!(MatchClaim::Sub.names("ada", &ada));
        assert!(!MatchClaim::Sub.names("ADA", &ada), "ids are exact");
        assert!(MatchClaim::Upn.names("ADA@corp.example", &ada));
        assert!(MatchClaim::PreferredUsername.names("ada@example.com", &ada));
        let nobody = user("x", None, None);
        assert!(!MatchClaim::Email.names("", &nobody));
        for c in ["email", "sub", "preferred_username", "upn"] {
            assert_eq!(MatchClaim::parse(c).map(MatchClaim::as_str), Some(c));
        }
        assert_eq!(MatchClaim::parse("name"), None);
    }

    #[test]
    fn a_payload_claim_is_read_from_the_middle_part() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"upn":"ada@corp.example","n":1}"#);
        let jwt = format!("e30.{payload}.sig");
        assert_eq!(
            payload_claim(&jwt, "upn").as_deref(),
            Some("ada@corp.example")
        );
        assert_eq!(payload_claim(&jwt, "n"), None);
        assert_eq!(payload_claim("garbage", "upn"), None);
    }

    #[test]
    fn the_binding_cookie_survives_the_providers_redirect_but_not_scripts() {
        let c = binding_cookie("v", 600, true);
        let c = c.to_str().unwrap();
        for part in ["SameSite=Lax", "HttpOnly", "Secure", "Path=/ui/oidc"] {
            assert!(c.contains(part), "{c}");
        }
    }
}
