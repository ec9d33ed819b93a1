//! Blocking HTTP over `wasi:http/outgoing-handler`, with JSON and form helpers.
//!
//! Blocking is right here: a plugin call does one thing at a time and the host bounds the whole
//! call with a deadline. Every way a call can fail ends as a [`PluginError`] of the right kind;
//! nothing a vendor sends can make the guest panic.

use crate::bindings::wasi::http::outgoing_handler;
use crate::bindings::wasi::http::types::{
    http_error_code, ErrorCode, Fields, IncomingBody, Method as WasiMethod, OutgoingBody,
    OutgoingRequest, Scheme,
};
use crate::bindings::wasi::io::streams::StreamError;
use crate::error::{self, for_status, misconfigured, permanent, transient};
use crate::url::Url;
use crate::PluginError;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Largest response body a plugin reads: the host's default cap on vendor bodies
/// (`HostConfig::max_response_bytes`, 1 MiB), which refuses a bigger one before it gets here.
/// Vendor answers we need are far smaller, and the cap keeps a misbehaving endpoint from
/// exhausting the guest's memory.
pub const MAX_BODY: usize = 1024 * 1024;

/// The most a single `wasi:io` stream write may carry.
const WRITE_CHUNK: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    fn to_wasi(self) -> WasiMethod {
        match self {
            Method::Get => WasiMethod::Get,
            Method::Post => WasiMethod::Post,
            Method::Put => WasiMethod::Put,
            Method::Patch => WasiMethod::Patch,
            Method::Delete => WasiMethod::Delete,
        }
    }
}

/// An outgoing request, built up and then [`sent`](Request::send).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn new(method: Method, url: impl Into<String>) -> Request {
        Request {
            method,
            url: url.into(),
            headers: vec![("accept".to_owned(), "application/json".to_owned())],
            body: Vec::new(),
        }
    }

    pub fn get(url: impl Into<String>) -> Request {
        Request::new(Method::Get, url)
    }

    pub fn post(url: impl Into<String>) -> Request {
        Request::new(Method::Post, url)
    }

    pub fn patch(url: impl Into<String>) -> Request {
        Request::new(Method::Patch, url)
    }

    pub fn delete(url: impl Into<String>) -> Request {
        Request::new(Method::Delete, url)
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Request {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// `Authorization: Bearer <token>`, replacing any earlier one, so a request repeated with
    /// a renewed token never carries two.
    pub fn bearer(mut self, token: &str) -> Request {
        self.headers.retain(|(name, _)| name != "authorization");
        self.header("authorization", format!("Bearer {token}"))
    }

    /// A JSON body with `content-type: application/json`.
    pub fn json<T: Serialize + ?Sized>(self, body: &T) -> Request {
        self.json_as("application/json", body)
    }

    /// A JSON body under another media type (SCIM wants `application/scim+json`).
    pub fn json_as<T: Serialize + ?Sized>(mut self, content_type: &str, body: &T) -> Request {
        // Serializing our own request types cannot fail; an empty body would be refused loudly
        // by the vendor rather than silently doing something else.
        self.body = serde_json::to_vec(body).unwrap_or_default();
        self.header("content-type", content_type)
    }

    /// An `application/x-www-form-urlencoded` body (OAuth token requests).
    pub fn form(mut self, pairs: &[(&str, &str)]) -> Request {
        self.body = crate::url::form(pairs).into_bytes();
        self.header("content-type", "application/x-www-form-urlencoded")
    }

    /// A short description for messages and logs: method and URL, never headers or body.
    pub fn describe(&self) -> String {
        format!("{} {}", self.method.as_str(), self.url)
    }

    /// Sends the request and reads the whole answer. Only transport failures are errors here;
    /// any HTTP status comes back as a [`Response`] for the plugin to interpret.
    pub fn send(self) -> Result<Response, PluginError> {
        let what = self.describe();
        let url = Url::parse(&self.url)
            .map_err(|why| misconfigured(format!("{what}: bad URL: {why}")))?;
        let mut entries = Vec::with_capacity(self.headers.len() + 1);
        for (name, value) in &self.headers {
            entries.push((name.clone(), value.clone().into_bytes()));
        }
        if !self.body.is_empty() {
            entries.push((
                "content-length".to_owned(),
                self.body.len().to_string().into_bytes(),
            ));
        }
        let headers = Fields::from_list(&entries)
            .map_err(|e| permanent(format!("{what}: header refused: {e:?}")))?;
        let request = OutgoingRequest::new(headers);
        let refused = |_| permanent(format!("{what}: request refused by the host"));
        request
            .set_method(&self.method.to_wasi())
            .map_err(refused)?;
        let scheme = if url.https {
            Scheme::Https
        } else {
            Scheme::Http
        };
        request.set_scheme(Some(&scheme)).map_err(refused)?;
        request
            .set_authority(Some(&url.authority))
            .map_err(refused)?;
        request
            .set_path_with_query(Some(&url.path_with_query))
            .map_err(refused)?;
        let body = request.body().map_err(refused)?;
        let pending = outgoing_handler::handle(request, None).map_err(|e| transport(&what, &e))?;
        write_body(&what, body, &self.body)?;

        pending.subscribe().block();
        let response = match pending.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(e))) => return Err(transport(&what, &e)),
            Some(Err(())) | None => {
                return Err(transient(
                    format!("{what}: no response from the host"),
                    None,
                ))
            }
        };
        let status = response.status();
        let headers = response.headers().entries();
        let incoming = response
            .consume()
            .map_err(|()| transient(format!("{what}: response body unavailable"), None))?;
        let body = read_body(&what, incoming)?;
        Ok(Response {
            request: what,
            status,
            headers,
            body,
        })
    }
}

fn write_body(what: &str, body: OutgoingBody, bytes: &[u8]) -> Result<(), PluginError> {
    {
        let stream = body
            .write()
            .map_err(|()| permanent(format!("{what}: request body unavailable")))?;
        for chunk in bytes.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| transient(format!("{what}: sending the body failed: {e:?}"), None))?;
        }
        // The stream must be dropped before the body is finished.
    }
    OutgoingBody::finish(body, None).map_err(|e| transport(what, &e))
}

fn read_body(what: &str, incoming: IncomingBody) -> Result<Vec<u8>, PluginError> {
    let mut body = Vec::new();
    {
        let stream = incoming
            .stream()
            .map_err(|()| transient(format!("{what}: response body unavailable"), None))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => {
                    if body.len() + chunk.len() > MAX_BODY {
                        return Err(permanent(format!(
                            "{what}: response larger than {MAX_BODY} bytes"
                        )));
                    }
                    body.extend_from_slice(&chunk);
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    // The host's cap on vendor bodies: the same answer will be as big next time.
                    if let Some(ErrorCode::HttpResponseBodySize(limit)) = http_error_code(&e) {
                        return Err(permanent(format!(
                            "{what}: response larger than the host accepts ({} bytes)",
                            limit.unwrap_or(MAX_BODY as u64)
                        )));
                    }
                    return Err(transient(
                        format!(
                            "{what}: reading the response failed: {}",
                            e.to_debug_string()
                        ),
                        None,
                    ));
                }
            }
        }
    }
    // Trailers are not used by any vendor we call; the future is dropped unread.
    drop(IncomingBody::finish(incoming));
    Ok(body)
}

/// A transport-level failure: refused by the sandbox, or no answer from the network.
fn transport(what: &str, e: &ErrorCode) -> PluginError {
    match e {
        // The manifest does not grant this host: retrying cannot help, the config must change.
        ErrorCode::HttpRequestDenied => misconfigured(format!(
            "{what}: the host refused the request (is the URL's host in allowed_outbound_hosts?)"
        )),
        ErrorCode::HttpRequestUriInvalid | ErrorCode::HttpProtocolError => {
            permanent(format!("{what}: {e:?}"))
        }
        ErrorCode::DnsError(_)
        | ErrorCode::TlsCertificateError
        | ErrorCode::TlsAlertReceived(_) => transient(
            format!("{what}: {e:?} (check the configured URL if this persists)"),
            None,
        ),
        _ => transient(format!("{what}: {e:?}"), None),
    }
}

/// A complete answer from a vendor.
#[derive(Debug, Clone)]
pub struct Response {
    /// `METHOD url` of the request, for messages.
    pub request: String,
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of a header, if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// Every text value of a header, in order (`WWW-Authenticate` may come once per challenge).
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
    }

    pub fn retry_after(&self) -> Option<u32> {
        let value = self.header("retry-after")?;
        error::parse_retry_after(value, self.header("date"))
    }

    /// The body as JSON of the expected shape; anything else is the vendor breaking its
    /// contract, which a retry will not fix.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            permanent(format!(
                "{}: unexpected answer (HTTP {}): {e}",
                self.request, self.status
            ))
        })
    }

    /// The vendor's own explanation of an error, from the common JSON error shapes (Graph's
    /// `error.message`, OAuth's `error_description`, SCIM's `detail`), else the body as text.
    pub fn vendor_message(&self) -> Option<String> {
        vendor_message(&self.body)
    }

    /// The error this answer means, with the vendor's explanation and Retry-After.
    pub fn error(&self, context: &str) -> PluginError {
        for_status(
            &format!("{context} ({})", self.request),
            self.status,
            self.vendor_message().as_deref(),
            self.retry_after(),
        )
    }
}

/// See [`Response::vendor_message`].
pub fn vendor_message(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let candidates = [
            v.pointer("/error/message"),
            v.get("error_description"),
            v.get("detail"),
            v.get("message"),
            v.get("error"),
        ];
        for c in candidates.into_iter().flatten() {
            if let Some(s) = c.as_str() {
                return Some(error::clip(s));
            }
        }
    }
    Some(error::clip(&String::from_utf8_lossy(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_vendor_messages() {
        let graph = br#"{"error":{"code":"Request_BadRequest","message":"inherited from group"}}"#;
        assert_eq!(
            vendor_message(graph).as_deref(),
            Some("inherited from group")
        );
        let oauth = br#"{"error":"invalid_client","error_description":"bad secret"}"#;
        assert_eq!(vendor_message(oauth).as_deref(), Some("bad secret"));
        let scim = br#"{"schemas":[],"detail":"Resource 2819c223 not found","status":"404"}"#;
        assert_eq!(
            vendor_message(scim).as_deref(),
            Some("Resource 2819c223 not found")
        );
        assert_eq!(vendor_message(b"plain text").as_deref(), Some("plain text"));
        assert_eq!(vendor_message(b""), None);
    }

    #[test]
    fn a_renewed_bearer_replaces_the_old_one() {
        let request = Request::get("https://graph.example/v1.0/me")
            .bearer("old")
            .bearer("new");
        let auth: Vec<&str> = request
            .headers
            .iter()
            .filter(|(n, _)| n == "authorization")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(auth, ["Bearer new"]);
    }

    #[test]
    fn every_value_of_a_repeated_header_is_readable() {
        let response = Response {
            request: "GET x".into(),
            status: 401,
            headers: vec![
                ("www-authenticate".into(), b"Basic realm=\"x\"".to_vec()),
                ("content-type".into(), b"application/json".to_vec()),
                (
                    "WWW-Authenticate".into(),
                    b"Bearer error=\"invalid_token\"".to_vec(),
                ),
            ],
            body: Vec::new(),
        };
        let values: Vec<&str> = response.header_values("www-authenticate").collect();
        assert_eq!(
            values,
            ["Basic realm=\"x\"", "Bearer error=\"invalid_token\""]
        );
    }
}
