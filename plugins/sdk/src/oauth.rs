//! OAuth 2.0 client-credentials tokens (RFC 6749 4.4), as Microsoft identity and most SaaS
//! admin APIs issue them.
//!
//! A token is fetched per call: plugin instances are fresh for every call, so there is nowhere
//! to cache one, and a token request is cheap next to the vendor call it authorises.
//!
//! A token can still expire between the token request and a later vendor call of the same
//! plugin call (the vendor's clock, a long throttled call, a token revoked meanwhile).
//! [`ClientCredentials`] fetches its token on first use and, when the vendor refuses it as
//! expired or invalid, fetches a new one once and repeats the request: that is the only
//! failure a new token can fix, so every other refusal, and a second one, reaches the plugin as
//! the vendor sent it and maps to `misconfigured` as usual.

use crate::error::{misconfigured, transient};
use crate::http::{Request, Response};
use crate::{log, PluginError};
use serde::Deserialize;
use std::cell::{Cell, RefCell};
use std::fmt;

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
}

/// A bearer token from `token_url` for this client. The secret goes only into the form body.
pub fn client_credentials(
    token_url: &str,
    client_id: &str,
    client_secret: &str,
    scope: &str,
) -> Result<String, PluginError> {
    let response = Request::post(token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", client_secret),
            ("scope", scope),
        ])
        .send()?;
    match response.status {
        200..=299 => {
            let answer: TokenAnswer = response.json()?;
            if answer.access_token.is_empty() {
                return Err(transient(
                    "token endpoint returned an empty access_token",
                    None,
                ));
            }
            Ok(answer.access_token)
        }
        // invalid_client, unauthorized_client, invalid_scope...: the credentials or tenant in
        // config are wrong; the request itself is always the same.
        400 | 401 | 403 | 404 => Err(misconfigured(format!(
            "token request for client `{client_id}` refused (HTTP {}): {}",
            response.status,
            response.vendor_message().unwrap_or_default()
        ))),
        _ => Err(response.error("token request")),
    }
}

/// A client-credentials client that signs vendor requests with its bearer token and renews the
/// token once when the vendor refuses it as expired or invalid (see [`token_rejected`]).
///
/// The token lives only as long as this value, i.e. one plugin call. Methods take `&self` so a
/// plugin can keep the client inside the struct its helpers borrow.
pub struct ClientCredentials {
    token_url: String,
    client_id: String,
    client_secret: String,
    scope: String,
    token: RefCell<Option<String>>,
    /// At most one renewal per call: a vendor that refuses a token minted a moment ago is
    /// refusing the client, which another token cannot fix.
    renewed: Cell<bool>,
}

impl fmt::Debug for ClientCredentials {
    // The secret and the token never appear in a log line or an error message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .field("has_token", &self.token.borrow().is_some())
            .field("renewed", &self.renewed.get())
            .finish_non_exhaustive()
    }
}

impl ClientCredentials {
    /// A client for `token_url`; nothing is requested until the first [`send`](Self::send) or
    /// [`token`](Self::token).
    pub fn new(
        token_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        scope: impl Into<String>,
    ) -> ClientCredentials {
        ClientCredentials {
            token_url: token_url.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scope: scope.into(),
            token: RefCell::new(None),
            renewed: Cell::new(false),
        }
    }

    /// The current token, fetched now if there is none yet.
    pub fn token(&self) -> Result<String, PluginError> {
        if let Some(token) = self.token.borrow().as_ref() {
            return Ok(token.clone());
        }
        self.fetch()
    }

    /// Whether the token was renewed during this call (for a plugin's own log lines).
    pub fn renewed(&self) -> bool {
        self.renewed.get()
    }

    /// Sends `request` with `Authorization: Bearer <token>`. When the vendor answers that the
    /// token is expired or invalid, a new token is fetched and the request repeated, once per
    /// client; any other answer, and the answer to the repeat, is returned as the vendor sent
    /// it. Repeating is safe for writes too: a vendor checks the token before it acts.
    pub fn send(&self, request: Request) -> Result<Response, PluginError> {
        let response = request.clone().bearer(&self.token()?).send()?;
        if self.renewed.get() || !response_rejects_token(&response) {
            return Ok(response);
        }
        log::info(&format!(
            "{}: the vendor refused the access token as expired or invalid; fetching a new one and repeating the request once",
            response.request
        ));
        self.renewed.set(true);
        let token = self.fetch()?;
        request.bearer(&token).send()
    }

    fn fetch(&self) -> Result<String, PluginError> {
        let token = client_credentials(
            &self.token_url,
            &self.client_id,
            &self.client_secret,
            &self.scope,
        )?;
        *self.token.borrow_mut() = Some(token.clone());
        Ok(token)
    }
}

fn response_rejects_token(response: &Response) -> bool {
    let challenges: Vec<&str> = response.header_values("www-authenticate").collect();
    token_rejected(response.status, &challenges, &response.body)
}

/// Whether a vendor's answer says the bearer token itself is expired or invalid, so that a new
/// token may succeed where this one failed.
///
/// Only a 401 qualifies (a 403 means the client lacks a permission, which a new token does not
/// add), and only with positive evidence that the token is the problem: a `Bearer` challenge
/// with `error="invalid_token"` (RFC 6750 3.1), or an error code in the body that vendors use
/// for refused tokens (Microsoft Graph's `InvalidAuthenticationToken`, the OAuth
/// `invalid_token`). A bare 401, or one about something else (`insufficient_scope`, a denied
/// client), is not renewed: the credentials need a person.
pub fn token_rejected(status: u16, www_authenticate: &[&str], body: &[u8]) -> bool {
    if status != 401 {
        return false;
    }
    www_authenticate
        .iter()
        .any(|challenge| bearer_error(challenge).is_some_and(|e| e == "invalid_token"))
        || body_error_code(body).is_some_and(|code| {
            ["InvalidAuthenticationToken", "invalid_token"]
                .iter()
                .any(|known| code.eq_ignore_ascii_case(known))
        })
}

/// The error code of a JSON error body: Graph's `error.code`, or OAuth's `error` string.
fn body_error_code(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let error = value.get("error")?;
    error
        .as_str()
        .or_else(|| error.get("code").and_then(serde_json::Value::as_str))
        .map(str::to_owned)
}

/// The `error` parameter of the `Bearer` challenge in a `WWW-Authenticate` value (RFC 9110
/// 11.6.1: comma-separated challenges, each a scheme followed by `name=value` parameters,
/// values as tokens or quoted strings).
fn bearer_error(header: &str) -> Option<String> {
    let mut rest = header;
    let mut in_bearer = false;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        if rest.is_empty() {
            return None;
        }
        let end = rest
            .find(|c: char| c == ',' || c == '=' || c.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let (name, after) = rest.split_at(end);
        let after = after.trim_start_matches([' ', '\t']);
        match after.strip_prefix('=') {
            Some(value) => {
                let (value, remainder) = parameter_value(value.trim_start_matches([' ', '\t']));
                if in_bearer && name.eq_ignore_ascii_case("error") {
                    return Some(value);
                }
                rest = remainder;
            }
            None if name.is_empty() => return None,
            None => {
                // A token not followed by `=` starts a new challenge.
                in_bearer = name.eq_ignore_ascii_case("bearer");
                rest = after;
            }
        }
    }
}

/// A parameter value (quoted string with `\` escapes, or a token) and the text after it.
fn parameter_value(text: &str) -> (String, &str) {
    let Some(quoted) = text.strip_prefix('"') else {
        let end = text
            .find(|c: char| c == ',' || c.is_ascii_whitespace())
            .unwrap_or(text.len());
        return (text[..end].to_owned(), &text[end..]);
    };
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (value, &quoted[i + 1..]),
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            c => value.push(c),
        }
    }
    // An unterminated quote: take what there is.
    (value, "")
}

/// Microsoft identity's sign-in: where a Microsoft tenant's tokens come from unless the
/// plugin's `login-base` says otherwise.
pub const MICROSOFT_LOGIN: &str = "https://login.microsoftonline.com";
/// The scope of Microsoft Graph's application permissions.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

impl ClientCredentials {
    /// The client of an app registration in the Microsoft tenant `tenant`, from the plugin's
    /// config: `client-id`, `login-base` (default [`MICROSOFT_LOGIN`]), `scope` (default
    /// [`GRAPH_SCOPE`]) and the secret `client-secret`. Every plugin that signs in to a
    /// Microsoft tenant reads the same keys, so a deployment configures them alike.
    pub fn microsoft(tenant: &str) -> Result<ClientCredentials, PluginError> {
        let login = crate::config::base_url("login-base", Some(MICROSOFT_LOGIN))?;
        let client_id = crate::config::require("client-id")?;
        let secret = crate::config::secret("client-secret")?;
        let scope = crate::config::get_or("scope", GRAPH_SCOPE);
        let url = format!("{login}/{}/oauth2/v2.0/token", crate::url::segment(tenant));
        Ok(ClientCredentials::new(url, client_id, secret, scope))
    }
}

/// How a vendor's requests are signed when the vendor takes either: a fixed API token, or a
/// Microsoft tenant's client credentials (an Intune-style service).
pub enum Auth {
    /// The secret `api-token`: a refused one stays refused, so there is nothing to renew.
    Static(String),
    /// With `tenant-id` configured: [`ClientCredentials::microsoft`], renewed once if the
    /// vendor says the token expired.
    OAuth(ClientCredentials),
}

impl fmt::Debug for Auth {
    // The token never appears in a log line or an error message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Static(_) => f.write_str("Auth::Static(..)"),
            Auth::OAuth(c) => f.debug_tuple("Auth::OAuth").field(c).finish(),
        }
    }
}

impl Auth {
    /// Client credentials when `tenant-id` is configured, else the secret `api-token`.
    pub fn from_config() -> Result<Auth, PluginError> {
        match crate::config::get("tenant-id") {
            Some(tenant) => Ok(Auth::OAuth(ClientCredentials::microsoft(&tenant)?)),
            None => Ok(Auth::Static(crate::config::secret("api-token")?)),
        }
    }

    /// Sends `request` signed.
    pub fn send(&self, request: Request) -> Result<Response, PluginError> {
        match self {
            Auth::Static(token) => request.bearer(token).send(),
            Auth::OAuth(client) => client.send(request),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRAPH_EXPIRED: &[u8] = br#"{"error":{"code":"InvalidAuthenticationToken","message":"Lifetime validation failed, the token is expired.","innerError":{"request-id":"6f0c1d2e-0000-4000-8000-000000000001"}}}"#;

    #[test]
    fn graph_expired_token_body_asks_for_a_new_token() {
        assert!(token_rejected(401, &[], GRAPH_EXPIRED));
        let graph_challenge = r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000""#;
        assert!(token_rejected(401, &[graph_challenge], GRAPH_EXPIRED));
    }

    #[test]
    fn bearer_invalid_token_challenge_asks_for_a_new_token() {
        assert!(token_rejected(
            401,
            &[
                r#"Bearer realm="example", error="invalid_token", error_description="The access token expired""#
            ],
            b"",
        ));
        assert!(token_rejected(
            401,
            &[r#"bearer error=invalid_token"#],
            b"not json"
        ));
        // Another scheme's parameters do not count, a later Bearer challenge does.
        assert!(!token_rejected(
            401,
            &[r#"Basic realm="x", error="invalid_token""#],
            b""
        ));
        assert!(token_rejected(
            401,
            &[r#"Basic realm="a, b", Bearer realm="x", error = "invalid_token""#],
            b""
        ));
        assert!(token_rejected(
            401,
            &[r#"Basic realm="x""#, r#"Bearer error="invalid_token""#],
            b""
        ));
        // An oauth-style JSON body.
        assert!(token_rejected(
            401,
            &[],
            br#"{"error":"invalid_token","error_description":"expired"}"#
        ));
    }

    #[test]
    fn a_401_not_about_the_token_is_not_renewed() {
        assert!(!token_rejected(401, &[], b""));
        assert!(!token_rejected(401, &[r#"Bearer realm="example""#], b""));
        assert!(!token_rejected(
            401,
            &[r#"Bearer error="insufficient_scope", scope="User.Read.All""#],
            b""
        ));
        assert!(!token_rejected(
            401,
            &[r#"Bearer error_description="invalid_token", error="invalid_request""#],
            b""
        ));
        assert!(!token_rejected(
            401,
            &[],
            br#"{"error":{"code":"Authorization_IdentityNotFound","message":"The identity of the calling application could not be established."}}"#
        ));
        assert!(!token_rejected(
            401,
            &[],
            br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"detail":"Authorization failure: bearer token invalid.","status":"401"}"#
        ));
        assert!(!token_rejected(401, &[r#"Bearer error=""#], b""));
        assert!(!token_rejected(401, &["=,=,\"", ",,,", ""], b"{"));
    }

    #[test]
    fn only_a_401_is_renewed() {
        let challenge = [r#"Bearer error="invalid_token""#];
        assert!(!token_rejected(403, &challenge, GRAPH_EXPIRED));
        assert!(!token_rejected(400, &challenge, GRAPH_EXPIRED));
        assert!(!token_rejected(200, &challenge, GRAPH_EXPIRED));
        assert!(!token_rejected(429, &challenge, GRAPH_EXPIRED));
    }

    #[test]
    fn challenge_parameters_are_read_with_quotes_and_escapes() {
        assert_eq!(
            bearer_error(r#"Bearer realm="a \"quoted\", value", error="invalid_token""#).as_deref(),
            Some("invalid_token")
        );
        assert_eq!(
            bearer_error(r#"Bearer error="unterminated"#).as_deref(),
            Some("unterminated")
        );
        assert_eq!(bearer_error("Bearer"), None);
        assert_eq!(bearer_error(""), None);
    }

    #[test]
    fn debug_never_shows_the_secret_or_the_token() {
        let client = ClientCredentials::new("https://login.example/t", "client", "s3cret", "x");
        *client.token.borrow_mut() = Some("tok-123".into());
        let shown = format!("{client:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains("tok-123"), "{shown}");
        assert!(shown.contains("client"), "{shown}");
    }
}
