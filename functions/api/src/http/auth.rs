//! Who is calling: an [`Authenticate`] turns a request into a user id, and the directory
//! (through [`App::principal`](crate::App::principal)) gives that user's roles and groups.
//!
//! API clients present bearer tokens kept in the store as digests ([`StoredTokens`]); on AWS
//! the API Gateway JWT authorizer has already checked the token, and an `Authenticate` reading
//! its claims plugs in instead.

use super::error::ApiError;
use super::ApiState;
use async_trait::async_trait;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use reclaim_workflow::ports::TokenStore;
use reclaim_workflow::Principal;
use sha2::{Digest, Sha256};
use std::sync::Arc;

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
/// The JSON API asks [`user_id`](Authenticate::user_id). The web workspace never trusts a
/// request's credentials: people sign in there (the identity provider, or a pasted token that
/// [`token_user_id`](Authenticate::token_user_id) checks) and get a session.
#[async_trait]
pub trait Authenticate: Send + Sync {
    async fn user_id(&self, parts: &Parts) -> Result<Option<String>, AuthError>;

    /// The user a pasted credential belongs to, for the workspace's sign-in form. The default
    /// accepts none: deployments whose API callers a gateway identifies take no tokens there.
    async fn token_user_id(&self, _token: &str) -> Result<Option<String>, AuthError> {
        Ok(None)
    }

    /// Whether the sign-in page offers pasting a token at all.
    fn takes_pasted_tokens(&self) -> bool {
        false
    }
}

/// Shortest token accepted: anything shorter is guessable.
pub const MIN_TOKEN_LEN: usize = 16;

/// The SHA-256 (hex) under which a token is stored: a copy of the store holds no usable token.
pub fn token_digest(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Bearer tokens kept in the store as digests (`reclaim seed`, `serve --seed`).
///
/// The presented token is hashed and looked up by its digest: no stored secret is ever
/// compared with what the caller sent, so the lookup's timing depends on the digest, never on
/// how many leading characters of a real token the caller guessed.
#[derive(Clone)]
pub struct StoredTokens {
    store: Arc<dyn TokenStore>,
}

impl std::fmt::Debug for StoredTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredTokens { .. }")
    }
}

impl StoredTokens {
    pub fn new(store: Arc<dyn TokenStore>) -> Self {
        StoredTokens { store }
    }

    /// The user a token belongs to.
    pub async fn lookup(&self, token: &str) -> Result<Option<String>, AuthError> {
        if token.len() < MIN_TOKEN_LEN || token.len() > 512 {
            return Ok(None);
        }
        self.store
            .token_user(&token_digest(token))
            .await
            .map_err(|e| AuthError::Unavailable(e.to_string()))
    }
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
impl Authenticate for StoredTokens {
    async fn user_id(&self, parts: &Parts) -> Result<Option<String>, AuthError> {
        match bearer_token(parts) {
            Some(t) => self.lookup(t).await,
            None => Ok(None),
        }
    }

    async fn token_user_id(&self, token: &str) -> Result<Option<String>, AuthError> {
        self.lookup(token.trim()).await
    }

    fn takes_pasted_tokens(&self) -> bool {
        true
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
    use reclaim_workflow::ports::StoreError;
    use std::collections::HashMap;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Memory(Mutex<HashMap<String, String>>);

    #[async_trait]
    impl TokenStore for Memory {
        async fn put_token(&self, digest: &str, user_id: &str) -> Result<(), StoreError> {
            self.0.lock().unwrap().insert(digest.into(), user_id.into());
            Ok(())
        }
        async fn token_user(&self, digest: &str) -> Result<Option<String>, StoreError> {
            Ok(self.0.lock().unwrap().get(digest).cloned())
        }
    }

    fn parts(auth: Option<&str>) -> Parts {
        let mut b = Request::builder().uri("/");
        if let Some(a) = auth {
            b = b.header(AUTHORIZATION, a);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[tokio::test]
    async fn a_stored_token_names_its_user_and_others_name_nobody() {
        let store = Arc::new(Memory::default());
        store
            .put_token(&token_digest("0123456789abcdef-ada"), "ada")
            .await
            .unwrap();
        let t = StoredTokens::new(store.clone());
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
        assert!(
            store
                .0
                .lock()
                .unwrap()
                .keys()
                .all(|k| !k.contains("0123456789abcdef")),
            "only the digest is stored"
        );
    }

    #[test]
    fn the_digest_is_sha_256_in_hex() {
        assert_eq!(
            token_digest("test"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }
}
