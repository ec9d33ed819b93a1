//! Who is using the workspace, and proof that a form came from one of our pages.
//!
//! A session is a record on the server ([`SessionRecord`], through the
//! [`SessionStore`](reclaim_workflow::ports::SessionStore) port: a SQLite table locally, a
//! DynamoDB item with a TTL on AWS). The browser's cookie holds only a random secret, signed
//! with the [`SessionKey`] so that garbage is refused without a read; the server stores the
//! secret's SHA-256, so a copy of the store cannot be replayed as cookies. Signing out deletes
//! the record, and a sam admin can delete them all: either ends the session at once, on every
//! instance. A session ends when it has been idle, or has lasted, longer than the
//! [`SessionPolicy`] allows.
//!
//! The cookie is `HttpOnly`, `SameSite=Strict`, and `Secure` whenever the public URL is https
//! or the server was told it sits behind a TLS proxy.
//!
//! Every state-changing form carries a token derived from the session's id with the same key
//! (a signed per-session token): another site can neither read it nor compute it. The sign-in
//! form, used before there is a session, pairs a random cookie with a token derived from it.
//!
//! Where a gateway has authenticated the browser already
//! ([`Authenticate::browser_user_id`](crate::Authenticate::browser_user_id)), that identity is
//! used instead of the cookie, and the form token is derived from it.

use crate::http::error::ApiError;
use crate::http::ApiState;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use reclaim_workflow::ports::{SessionRecord, StoreError};
use reclaim_workflow::Timestamp;
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "reclaim_session";
/// The sign-in form's cookie (pairs with the form's token before a session exists).
pub const SIGN_IN_COOKIE: &str = "reclaim_sign_in";
/// How long sessions may last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A session unused this long ends.
    pub idle: chrono::Duration,
    /// No session lasts longer than this, however busy.
    pub absolute: chrono::Duration,
}

impl Default for SessionPolicy {
    /// An hour idle, a working day in all.
    fn default() -> Self {
        SessionPolicy {
            idle: chrono::Duration::hours(1),
            absolute: chrono::Duration::hours(12),
        }
    }
}

impl SessionPolicy {
    /// When a session last seen at `seen` ends.
    pub fn expiry(&self, created: Timestamp, seen: Timestamp) -> Timestamp {
        (created + self.absolute).min(seen + self.idle)
    }
}

/// A session's last-seen time is written at most this often (a page view is a read, not a
/// write, most of the time).
const TOUCH_EVERY_SECS: i64 = 60;
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

    /// The session key of a deployment, derived from its link-signing key: every instance
    /// (each Lambda, a restarted `reclaim serve`) accepts the cookies and form tokens another
    /// one made, without a second secret to provision. HMAC-SHA256 of a fixed label under the
    /// link key: knowing the session key gives nothing about the link key.
    pub fn derive(link_key: &[u8]) -> [u8; 32] {
        let mut mac = match HmacSha256::new_from_slice(link_key) {
            Ok(m) => m,
            Err(_) => unreachable_key(),
        };
        mac.update(b"reclaim workspace session key v1");
        mac.finalize().into_bytes().into()
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

    /// The cookie value for a session's secret.
    pub fn seal(&self, secret: &str) -> String {
        let tag = self
            .tag("session", secret.as_bytes())
            .finalize()
            .into_bytes();
        format!("{secret}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The secret a cookie value holds, if we signed it.
    pub fn open(&self, value: &str) -> Option<String> {
        if value.len() > MAX_COOKIE_LEN {
            return None;
        }
        let (secret, tag) = value.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.tag("session", secret.as_bytes())
            .verify_slice(&tag)
            .ok()?;
        Some(secret.to_string())
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

/// The stored id of a session secret: its SHA-256 in hex.
pub fn session_id(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether cookies get `Secure`: the public URL is https, the server sits behind a TLS proxy
/// it was told to trust, or this request itself came over TLS.
pub fn secure_cookies(parts: &Parts, state: &ApiState) -> bool {
    state.secure_cookies || over_tls(parts, state)
}

/// Opens a session for `user_id` signed in by `method`; returns the `Set-Cookie` value.
pub async fn start(
    state: &ApiState,
    parts: &Parts,
    user_id: &str,
    method: &str,
) -> Result<HeaderValue, StoreError> {
    let secret = random_text(2);
    let now = state.app.now();
    let policy = state.session_policy;
    let record = SessionRecord {
        id: session_id(&secret),
        user_id: user_id.to_string(),
        method: method.to_string(),
        created_at: now,
        last_seen_at: now,
        expires_at: policy.expiry(now, now),
    };
    state.app.ports.sessions.put_session(&record).await?;
    let max_age = (record.expires_at - now).num_seconds().max(1);
    Ok(set_cookie(
        SESSION_COOKIE,
        &state.session_key.seal(&secret),
        // The browser keeps it for the absolute lifetime; the server decides before that.
        policy.absolute.num_seconds().max(max_age),
        secure_cookies(parts, state),
    ))
}

/// The live session the request's cookie names, moving its idle expiry on.
pub async fn current(
    state: &ApiState,
    headers: &HeaderMap,
) -> Result<Option<SessionRecord>, StoreError> {
    let Some(secret) = cookie(headers, SESSION_COOKIE).and_then(|v| state.session_key.open(v))
    else {
        return Ok(None);
    };
    let now = state.app.now();
    let Some(mut record) = state
        .app
        .ports
        .sessions
        .session(&session_id(&secret), now)
        .await?
    else {
        return Ok(None);
    };
    if (now - record.last_seen_at).num_seconds() >= TOUCH_EVERY_SECS {
        record.last_seen_at = now;
        record.expires_at = state.session_policy.expiry(record.created_at, now);
        if !state.app.ports.sessions.touch_session(&record).await? {
            return Ok(None);
        }
    }
    Ok(Some(record))
}

/// Ends the session the request's cookie names, if any.
pub async fn end(state: &ApiState, headers: &HeaderMap) -> Result<(), StoreError> {
    if let Some(secret) = cookie(headers, SESSION_COOKIE).and_then(|v| state.session_key.open(v)) {
        state
            .app
            .ports
            .sessions
            .end_session(&session_id(&secret))
            .await?;
    }
    Ok(())
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

    #[test]
    fn a_sealed_secret_opens_only_under_its_key() {
        let v = key().seal("secret-1");
        assert_eq!(key().open(&v).as_deref(), Some("secret-1"));
        assert_eq!(SessionKey::random().open(&v), None);
    }

    #[test]
    fn any_altered_byte_is_refused() {
        let v = key().seal("secret-1");
        for i in 0..v.len() {
            let mut b = v.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(b).unwrap();
            if altered != v {
                assert_eq!(key().open(&altered), None, "byte {i}");
            }
        }
        assert_eq!(key().open(&"A".repeat(5000)), None);
    }

    #[test]
    fn a_session_ends_when_idle_or_at_its_absolute_end() {
        let p = SessionPolicy {
            idle: Duration::minutes(30),
            absolute: Duration::hours(8),
        };
        let t0 = Utc::now();
        assert_eq!(p.expiry(t0, t0), t0 + Duration::minutes(30));
        assert_eq!(
            p.expiry(t0, t0 + Duration::hours(2)),
            t0 + Duration::hours(2) + Duration::minutes(30)
        );
        assert_eq!(
            p.expiry(t0, t0 + Duration::hours(7) + Duration::minutes(50)),
            t0 + Duration::hours(8)
        );
    }

    #[test]
    fn the_stored_id_is_not_the_secret() {
        let id = session_id("secret-1");
        assert_eq!(id.len(), 64);
        assert!(!id.contains("secret"));
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
