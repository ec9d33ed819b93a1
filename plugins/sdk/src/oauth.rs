//! OAuth 2.0 client-credentials tokens (RFC 6749 4.4), as Microsoft identity and most SaaS
//! admin APIs issue them.
//!
//! A token is fetched per call: plugin instances are fresh for every call, so there is nowhere
//! to cache one, and a token request is cheap next to the vendor call it authorises.

use crate::error::{misconfigured, transient};
use crate::http::Request;
use crate::PluginError;
use serde::Deserialize;

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
