//! Who is calling: an [`Authenticate`] turns a request into a user id, and the directory
//! (through [`App::principal`](crate::App::principal)) gives that user's roles and groups.
//!
//! Local mode uses [`BearerTokens`] from the seed file; on AWS the API Gateway JWT authorizer
//! has already checked the token, and an `Authenticate` reading its claims plugs in instead.

use super::error::ApiError;
use super::ApiState;
use async_trait::async_trait;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use reclaim_workflow::Principal;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Why the caller could not be identified (as opposed to: identified as nobody).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The identity provider could not be asked; the client may retry.
    #[error("authentication is unavailable: {0}")]
    Unavailable(String),
}

/// Identifies the caller of a request. `Ok(None)` means anonymous or an unknown credential:
/// the route answers 401.
///
/// The JSON API asks [`user_id`](Authenticate::user_id) only. The web workspace asks
/// [`browser_user_id`](Authenticate::browser_user_id) first: where a gateway has already
/// authenticated the browser (the API Gateway JWT authorizer on AWS), that identity is used and
/// no session cookie is needed. Where it answers `None` (local mode), the workspace signs
/// people in itself, and [`token_user_id`](Authenticate::token_user_id) lets them paste a token.
#[async_trait]
pub trait Authenticate: Send + Sync {
    async fn user_id(&self, parts: &Parts) -> Result<Option<String>, AuthError>;

    /// The person a gateway vouches for on a browser request (e.g. JWT authorizer claims in
    /// the request context). The default trusts nothing, so the workspace's own sign-in is used.
    async fn browser_user_id(&self, _parts: &Parts) -> Result<Option<String>, AuthError> {
        Ok(None)
    }

    /// The user a pasted credential belongs to, for the workspace's sign-in form. The default
    /// accepts none: deployments whose identities come from a gateway never take tokens there.
    async fn token_user_id(&self, _token: &str) -> Result<Option<String>, AuthError> {
        Ok(None)
    }
}

/// Static bearer tokens (token → user id), as the local seed/config file lists them.
///
/// Tokens are kept only as SHA-256 digests and looked up by the digest of the presented token,
/// so the lookup's timing depends on the digest, never on how many leading characters of a
/// real token the caller guessed right.
#[derive(Clone, Default)]
pub struct BearerTokens {
    by_digest: HashMap<[u8; 32], String>,
}

impl std::fmt::Debug for BearerTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerTokens")
            .field("tokens", &self.by_digest.len())
            .finish_non_exhaustive()
    }
}

/// Shortest token accepted: anything shorter is guessable.
pub const MIN_TOKEN_LEN: usize = 16;

impl BearerTokens {
    /// Builds the table; refuses short tokens and tokens given to two users, which would make
    /// one person able to act as another.
    pub fn new<I, T, U>(pairs: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = (T, U)>,
        T: AsRef<str>,
        U: Into<String>,
    {
        let mut by_digest = HashMap::new();
        for (token, user) in pairs {
            let token = token.as_ref();
            let user = user.into();
            if token.len() < MIN_TOKEN_LEN {
                return Err(format!(
                    "the token of user {user} is shorter than {MIN_TOKEN_LEN} characters"
                ));
            }
            if let Some(other) = by_digest.insert(digest(token), user.clone()) {
                if other != user {
                    return Err(format!("users {other} and {user} share a token"));
                }
            }
        }
        Ok(BearerTokens { by_digest })
    }

    /// The user a token belongs to.
    pub fn lookup(&self, token: &str) -> Option<&str> {
        self.by_digest.get(&digest(token)).map(String::as_str)
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The token of an `Authorization: Bearer <token>` header, if there is one.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

#[async_trait]
impl Authenticate for BearerTokens {
    async fn user_id(&self, parts: &Parts) -> Result<Option<String>, AuthError> {
        Ok(bearer_token(parts)
            .and_then(|t| self.lookup(t))
            .map(str::to_string))
    }

    async fn token_user_id(&self, token: &str) -> Result<Option<String>, AuthError> {
        Ok(self.lookup(token.trim()).map(str::to_string))
    }
}

/// Nobody is ever authenticated: for a deployment that serves only the public link pages.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoAuthentication;

#[async_trait]
impl Authenticate for NoAuthentication {
    async fn user_id(&self, _parts: &Parts) -> Result<Option<String>, AuthError> {
        Ok(None)
    }
}

/// The authenticated caller, with roles and groups from the directory. Extracting it answers
/// 401 for a missing or unknown credential.
#[derive(Clone, Debug)]
pub struct Caller(pub Principal);

impl Caller {
    /// 403 unless the caller is a sam admin.
    pub fn require_sam_admin(&self, what: &str) -> Result<(), ApiError> {
        if self.0.sam_admin {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "{what} may only be done by a sam admin"
            )))
        }
    }
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let user_id = state.auth.user_id(parts).await.map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            )
        })?;
        let Some(user_id) = user_id else {
            let why = if parts.headers.contains_key(AUTHORIZATION) {
                "the bearer token is not valid"
            } else {
                "send `Authorization: Bearer <token>`"
            };
            return Err(ApiError::unauthorized(why));
        };
        match state.app.principal(&user_id).await? {
            Some(p) => Ok(Caller(p)),
            None => Err(ApiError::unauthorized(
                "the token's user is not in the directory",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(auth: Option<&str>) -> Parts {
        let mut b = Request::builder().uri("/");
        if let Some(a) = auth {
            b = b.header(AUTHORIZATION, a);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[tokio::test]
    async fn a_known_token_names_its_user_and_others_name_nobody() {
        let t = BearerTokens::new([("0123456789abcdef-ada", "ada")]).unwrap();
        let id = |h| {
            let t = t.clone();
            async move { t.user_id(&parts(h)).await.unwrap() }
        };
        assert_eq!(
            id(Some("Bearer 0123456789abcdef-ada")).await.as_deref(),
            Some("ada")
        );
        assert_eq!(
            id(Some("bearer 0123456789abcdef-ada")).await.as_deref(),
            Some("ada")
        );
        assert_eq!(id(Some("Bearer 0123456789abcdef-adb")).await, None);
        assert_eq!(id(Some("Basic 0123456789abcdef-ada")).await, None);
        assert_eq!(id(Some("Bearer ")).await, None);
        assert_eq!(id(None).await, None);
    }

    #[test]
    fn short_and_shared_tokens_are_refused() {
        assert!(BearerTokens::new([("short", "ada")]).is_err());
        assert!(
            BearerTokens::new([("0123456789abcdef", "ada"), ("0123456789abcdef", "bob")]).is_err()
        );
    }
}
