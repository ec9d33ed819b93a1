//! Who is using the workspace, and proof that a form came from one of our pages.
//!
//! A session is a cookie holding `base64url(claims JSON) "." base64url(HMAC-SHA256)`: the user
//! id, a random nonce and an expiry, signed with the [`SessionKey`]. Nothing is stored on the
//! server, so every instance that shares the key accepts it. The cookie is `HttpOnly`,
//! `SameSite=Strict`, and `Secure` when the request came over TLS.
//!
//! Every state-changing form carries a token derived from the session's nonce with the same
//! key (a signed per-session token): another site can neither read it nor compute it. The
//! sign-in form, used before there is a session, pairs a random cookie with a token derived
//! from it.
//!
//! Where a gateway has authenticated the browser already
//! ([`Authenticate::browser_user_id`](crate::Authenticate::browser_user_id), the JWT authorizer
//! on AWS), that identity is used instead of the cookie, and the form token is derived from it.

use crate::http::error::ApiError;
use crate::http::ApiState;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use reclaim_workflow::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "reclaim_session";
/// The sign-in form's cookie (pairs with the form's token before a session exists).
pub const SIGN_IN_COOKIE: &str = "reclaim_sign_in";
/// How long a session lasts, in seconds: a working day.
pub const SESSION_SECS: i64 = 12 * 3600;
/// Cookies longer than this are not even parsed.
const MAX_COOKIE_LEN: usize = 2048;

/// The key that signs sessions and form tokens.
#[derive(Clone)]
pub struct SessionKey {
    mac: HmacSha256,
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey { key: <redacted> }")
    }
}

/// What a session cookie says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    #[serde(rename = "u")]
    pub user_id: String,
    /// Random per sign-in; form tokens are derived from it, so signing out and in again
    /// retires the old forms.
    #[serde(rename = "n")]
    pub nonce: String,
    /// Unix seconds.
    #[serde(rename = "e")]
    pub expires_at: i64,
}

/// Random text from the operating system's generator (through UUID v4), `n` UUIDs long.
pub fn random_text(n: usize) -> String {
    (0..n)
        .map(|_| uuid::Uuid::new_v4().simple().to_string())
        .collect()
}

impl SessionKey {
    /// Keys shorter than 32 bytes are refused: they make forgery practical.
    pub fn new(key: &[u8]) -> Result<Self, String> {
        if key.len() < 32 {
            return Err(format!(
                "the session key must be at least 32 bytes (got {})",
                key.len()
            ));
        }
        let mac = HmacSha256::new_from_slice(key).map_err(|e| e.to_string())?;
        Ok(SessionKey { mac })
    }

    /// A key from the operating system's generator, for one process.
    pub fn random() -> Self {
        let text = random_text(4);
        // 4 × 122 random bits; HMAC accepts any key length, so this cannot fail.
        SessionKey {
            mac: HmacSha256::new_from_slice(text.as_bytes()).unwrap_or_else(|_| unreachable_key()),
        }
    }

    fn tag(&self, domain: &str, body: &[u8]) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(body);
        mac
    }

    /// The cookie value of a session.
    pub fn seal(&self, s: &Session) -> String {
        let body = serde_json::to_vec(s).unwrap_or_default();
        let tag = self.tag("session", &body).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&body),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The session a cookie value holds, if it is ours, intact and not expired.
    pub fn open(&self, value: &str, now: Timestamp) -> Option<Session> {
        if value.len() > MAX_COOKIE_LEN {
            return None;
        }
        let (body, tag) = value.split_once('.')?;
        let body = URL_SAFE_NO_PAD.decode(body).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.tag("session", &body).verify_slice(&tag).ok()?;
        let s: Session = serde_json::from_slice(&body).ok()?;
        (now.timestamp() < s.expires_at).then_some(s)
    }

    /// The form token of a session nonce (or of a sign-in cookie, or a gateway identity).
    pub fn form_token(&self, purpose: &str, nonce: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.tag(purpose, nonce.as_bytes()).finalize().into_bytes())
    }

    /// Whether `presented` is the form token of `nonce`; compared in constant time.
    pub fn check_form_token(&self, purpose: &str, nonce: &str, presented: &str) -> bool {
        if presented.len() > 128 {
            return false;
        }
        match URL_SAFE_NO_PAD.decode(presented) {
            Ok(tag) => self
                .tag(purpose, nonce.as_bytes())
                .verify_slice(&tag)
                .is_ok(),
            Err(_) => false,
        }
    }
}

// `Hmac::new_from_slice` only fails for fixed-size-key MACs; HMAC takes any length.
fn unreachable_key() -> HmacSha256 {
    unreachable!("HMAC accepts keys of any length")
}

/// A cookie of the request, by name.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Whether the request reached us over TLS: the URI says `https`, or a trusted proxy says so
/// in `X-Forwarded-Proto`.
pub fn over_tls(parts: &Parts, state: &ApiState) -> bool {
    if parts.uri.scheme_str() == Some("https") {
        return true;
    }
    state.trust_forwarded_proto
        && parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value with the workspace's attributes; `max_age` 0 deletes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text =
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Adds a `Set-Cookie` header.
pub fn add_cookie(headers: &mut HeaderMap, value: HeaderValue) {
    if !value.is_empty() {
        headers.append(SET_COOKIE, value);
    }
}

/// A form's token did not match: the form did not come from our page (or is too old).
pub fn bad_form_token() -> ApiError {
    ApiError::forbidden(
        "this form has expired or did not come from Reclaim; reload the page and try again",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};

    fn key() -> SessionKey {
        SessionKey::new(&[9u8; 32]).unwrap()
    }

    fn session() -> Session {
        Session {
            user_id: "ada".into(),
            nonce: "n1".into(),
            expires_at: (Utc::now() + Duration::hours(1)).timestamp(),
        }
    }

    #[test]
    fn a_sealed_session_opens_until_it_expires() {
        let v = key().seal(&session());
        assert_eq!(key().open(&v, Utc::now()), Some(session()));
        assert_eq!(key().open(&v, Utc::now() + Duration::hours(2)), None);
        assert_eq!(SessionKey::random().open(&v, Utc::now()), None);
    }

    #[test]
    fn any_altered_byte_is_refused() {
        let v = key().seal(&session());
        for i in 0..v.len() {
            let mut b = v.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(b).unwrap();
            if altered != v {
                assert_eq!(key().open(&altered, Utc::now()), None, "byte {i}");
            }
        }
        assert_eq!(key().open(&"A".repeat(5000), Utc::now()), None);
    }

    #[test]
    fn form_tokens_are_bound_to_their_nonce_and_purpose() {
        let k = key();
        let t = k.form_token("form", "n1");
        assert!(k.check_form_token("form", "n1", &t));
        assert!(!k.check_form_token("form", "n2", &t));
        assert!(!k.check_form_token("sign-in", "n1", &t));
        assert!(!k.check_form_token("form", "n1", ""));
        assert!(!k.check_form_token("form", "n1", &t[..t.len() - 1]));
    }

    #[test]
    fn cookies_are_found_by_name_and_set_with_every_attribute() {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_static("a=1; reclaim_session=xyz"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "b"), None);
        let v = set_cookie(SESSION_COOKIE, "v", 60, true);
        let v = v.to_str().unwrap();
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Path=/",
            "Max-Age=60",
        ] {
            assert!(v.contains(part), "{v}");
        }
        assert!(!set_cookie("x", "v", 0, false)
            .to_str()
            .unwrap()
            .contains("Secure"));
    }
}
