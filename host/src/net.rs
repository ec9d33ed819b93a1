//! Outbound HTTP policy: which `scheme://host:port` a plugin may reach, and the refusal of
//! private and loopback addresses (SSRF) unless the host's config allows them.
//!
//! The check runs inside `wasi:http`'s send hook, so it covers every request a guest can
//! make; a refused request is an `http-request-denied` (or `destination-ip-prohibited`) error
//! code returned to the guest, and a `warn` event in the host's log.
//!
//! The host name is resolved here and every address it resolves to is checked, so a granted
//! name that points at 10.0.0.5 or 169.254.169.254 is refused too. Plain-HTTP requests are
//! then sent to the checked address itself (the `Host` header keeps the name), so DNS cannot
//! change the answer between check and connect. HTTPS requests are sent to the name (the TLS
//! certificate is verified against it); the remaining window there needs a granted name whose
//! DNS an attacker controls and a certificate for it.

use http_body_util::{BodyExt, Limited};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// URL scheme of a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `http://`
    Http,
    /// `https://`
    Https,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    Exact(String),
    /// `*.example.com`: any name ending in `.example.com` (not the bare domain).
    Subdomain(String),
}

/// One `allowed_outbound_hosts` entry, e.g. `https://graph.microsoft.com:443` or
/// `http://127.0.0.1:*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    scheme: Scheme,
    host: HostMatch,
    /// `None` = any port.
    port: Option<u16>,
    text: String,
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn normalize_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

impl HostPattern {
    /// Parses `scheme://host[:port]`; the error names what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (scheme, rest) = if let Some(rest) = text.strip_prefix("https://") {
            (Scheme::Https, rest)
        } else if let Some(rest) = text.strip_prefix("http://") {
            (Scheme::Http, rest)
        } else {
            return Err(format!("`{text}`: must start with http:// or https://"));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') || rest.contains('@') || rest.contains('?') {
            return Err(format!(
                "`{text}`: only scheme://host:port, no path or user"
            ));
        }
        // Split the port off, minding bracketed IPv6 literals.
        let (host, port) = if let Some(after) = rest.strip_prefix('[') {
            let (h, tail) = after
                .split_once(']')
                .ok_or_else(|| format!("`{text}`: unclosed `[`"))?;
            (h, tail.strip_prefix(':'))
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        let port = match port {
            None => Some(scheme.default_port()),
            Some("*") => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| format!("`{text}`: port `{p}` is not a number or `*`"))?,
            ),
        };
        let host = normalize_host(host);
        let host = if host == "*" {
            HostMatch::Any
        } else if let Some(domain) = host.strip_prefix("*.") {
            if domain.is_empty() || domain.contains('*') {
                return Err(format!("`{text}`: bad wildcard"));
            }
            HostMatch::Subdomain(domain.to_string())
        } else if host.is_empty() || host.contains('*') {
            return Err(format!("`{text}`: bad host"));
        } else {
            HostMatch::Exact(host)
        };
        Ok(HostPattern {
            scheme,
            host,
            port,
            text: text.to_string(),
        })
    }

    /// Whether a request to `scheme://host:port` is covered by this grant.
    pub fn matches(&self, scheme: Scheme, host: &str, port: u16) -> bool {
        if scheme != self.scheme || self.port.is_some_and(|p| p != port) {
            return false;
        }
        let host = normalize_host(host);
        match &self.host {
            HostMatch::Any => true,
            HostMatch::Exact(h) => *h == host,
            HostMatch::Subdomain(d) => host
                .strip_suffix(d.as_str())
                .is_some_and(|prefix| prefix.ends_with('.') && prefix.len() > 1),
        }
    }
}

/// Whether an address is anything but a public unicast address: loopback, private ranges,
/// link-local (cloud metadata lives there), CGNAT, multicast, unspecified, documentation.
pub fn is_non_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_non_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_non_public_v4(v4);
            }
            let seg0 = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg0 & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (seg0 & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (seg0 == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
                || (seg0 == 0x0064 && v6.segments()[1] == 0xff9b) // NAT64 can reach v4 private
        }
    }
}

fn is_non_public_v4(v4: Ipv4Addr) -> bool {
    let o = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || o[0] == 0 // "this network"
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // CGNAT 100.64/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18/15
        || o[0] >= 240 // reserved
}

/// What the send hook needs; one per plugin, shared by all its calls.
#[derive(Debug)]
pub(crate) struct OutboundGrants {
    pub(crate) plugin: Arc<str>,
    pub(crate) patterns: Vec<HostPattern>,
    pub(crate) allow_private_addresses: bool,
    pub(crate) max_response_bytes: usize,
}

/// The `wasi:http` hooks of one call: the grant check, address check and response cap.
#[derive(Debug, Clone)]
pub(crate) struct OutboundPolicy {
    pub(crate) grants: Arc<OutboundGrants>,
}

impl OutboundPolicy {
    /// Checks a request against the grants; `Err` carries the reason for the log.
    fn granted(&self, uri: &http::Uri) -> Result<(Scheme, String, u16), String> {
        let scheme = match uri.scheme_str() {
            Some("https") => Scheme::Https,
            Some("http") => Scheme::Http,
            other => return Err(format!("scheme {other:?} is not http or https")),
        };
        let host = uri
            .host()
            .map(normalize_host)
            .filter(|h| !h.is_empty())
            .ok_or_else(|| "request has no host".to_string())?;
        let port = uri.port_u16().unwrap_or(scheme.default_port());
        if self
            .grants
            .patterns
            .iter()
            .any(|p| p.matches(scheme, &host, port))
        {
            Ok((scheme, host, port))
        } else {
            Err(format!(
                "{}://{host}:{port} is not in allowed_outbound_hosts",
                if scheme == Scheme::Https {
                    "https"
                } else {
                    "http"
                }
            ))
        }
    }
}

/// The future a send hook returns, spelled once.
type SendFuture = Box<
    dyn std::future::Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

fn limit_error(err: Box<dyn std::error::Error + Send + Sync>, max: usize) -> HttpError {
    if err.is::<http_body_util::LengthLimitError>() {
        return HttpError::HttpResponseBodySize(Some(max as u64));
    }
    match err.downcast::<HttpError>() {
        Ok(e) => *e,
        Err(other) => HttpError::InternalError(Some(other.to_string())),
    }
}

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        drop(fut);
        let grants = Arc::clone(&self.grants);
        let decision = self.granted(request.uri());
        let method = request.method().clone();
        // Path only: queries may carry tokens, and logs must not.
        let shown = format!(
            "{}://{}{}",
            request.uri().scheme_str().unwrap_or("?"),
            request.uri().authority().map_or("?", |a| a.as_str()),
            request.uri().path()
        );
        Box::new(async move {
            let (scheme, host, port) = match decision {
                Ok(t) => t,
                Err(reason) => {
                    tracing::warn!(plugin = %grants.plugin, %method, url = %shown, %reason, "outbound request refused");
                    return Err(HttpError::HttpRequestDenied);
                }
            };
            let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((host.as_str(), port)).await
            {
                Ok(it) => it.collect(),
                Err(e) => {
                    tracing::warn!(plugin = %grants.plugin, url = %shown, error = %e, "outbound request: name lookup failed");
                    return Err(HttpError::DnsError {
                        rcode: Some(e.to_string()),
                        info_code: None,
                    });
                }
            };
            let Some(first) = addrs.first().copied() else {
                return Err(HttpError::DestinationNotFound);
            };
            if !grants.allow_private_addresses {
                if let Some(bad) = addrs.iter().find(|a| is_non_public(a.ip())) {
                    tracing::warn!(plugin = %grants.plugin, %method, url = %shown, address = %bad.ip(),
                        "outbound request refused: private or loopback address");
                    return Err(HttpError::DestinationIpProhibited);
                }
            }
            if scheme == Scheme::Http {
                // Pin the connection to the address just checked.
                let mut parts = request.uri().clone().into_parts();
                parts.authority = first.to_string().parse().ok();
                if let Ok(uri) = http::Uri::from_parts(parts) {
                    *request.uri_mut() = uri;
                }
            }
            tracing::debug!(plugin = %grants.plugin, %method, url = %shown, "outbound request");
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            let max = grants.max_response_bytes;
            let response = response.map(|body| {
                Limited::new(body, max)
                    .map_err(move |e| limit_error(e, max))
                    .boxed_unsync()
            });
            Ok((
                response,
                Box::new(io) as Box<dyn std::future::Future<Output = _> + Send>,
            ))
        })
    }
}

/// Links `wasi:http/outgoing-handler`: the grant check at the moment the guest hands the
/// request over, then wasmtime-wasi-http's own `handle`.
///
/// Checking in the send hook alone raced with the guest: the hook runs in a task spawned after
/// `handle` has returned, and refusing there drops the request body's receiving end, so a
/// guest still writing its body saw the write fail (`StreamError::Closed`, which the SDK
/// reports as a transient transport error) before it ever read the refusal from the response
/// future. Refused here, `handle` itself answers `http-request-denied`, before a byte of the
/// body is streamed, whatever the guest does next. The send hook still checks (a granted name
/// can resolve to a private address, which only the hook sees).
pub(crate) fn add_guarded_handler(
    linker: &mut wasmtime::component::Linker<crate::state::CallState>,
) -> wasmtime::Result<()> {
    use wasmtime::component::Resource;
    use wasmtime_wasi_http::p2::bindings::http::outgoing_handler::Host as _;
    use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
    use wasmtime_wasi_http::p2::types::{HostFutureIncomingResponse, HostOutgoingRequest};
    type Answer = Result<Resource<HostFutureIncomingResponse>, ErrorCode>;

    let mut instance = linker.instance("wasi:http/outgoing-handler@0.2.12")?;
    instance.func_wrap(
        "handle",
        |mut store: wasmtime::StoreContextMut<'_, crate::state::CallState>,
         (request, options): (
            Resource<HostOutgoingRequest>,
            Option<Resource<wasmtime_wasi_http::RequestOptions>>,
        )|
         -> wasmtime::Result<(Answer,)> {
            let state = store.data_mut();
            if let Some(reason) = refusal(&state.policy, state.table.get(&request)?) {
                // `handle` owns the request: drop it (and its body's receiving end) now.
                state.table.delete(request)?;
                tracing::warn!(plugin = %state.policy.grants.plugin, %reason, "outbound request refused");
                return Ok((Err(ErrorCode::HttpRequestDenied),));
            }
            let mut http = wasmtime_wasi_http::WasiHttpView::http(state);
            match http.handle(request, options) {
                Ok(future) => Ok((Ok(future),)),
                Err(e) => Ok((Err(e.downcast()?),)),
            }
        },
    )
}

/// Why the request may not be made (its destination is not granted), with the URL shown
/// without its query; `None` when it may.
fn refusal(
    policy: &OutboundPolicy,
    req: &wasmtime_wasi_http::p2::types::HostOutgoingRequest,
) -> Option<String> {
    use wasmtime_wasi_http::p2::bindings::http::types::Scheme as WasiScheme;
    let scheme = match &req.scheme {
        None | Some(WasiScheme::Https) => "https",
        Some(WasiScheme::Http) => "http",
        Some(WasiScheme::Other(other)) => other.as_str(),
    };
    let authority = req.authority.as_deref().unwrap_or_default();
    let path = req.path_with_query.as_deref().unwrap_or("/");
    let path = path.split('?').next().unwrap_or(path);
    let decision = http::Uri::builder()
        .scheme(scheme)
        .authority(authority)
        .path_and_query("/")
        .build()
        .map_err(|e| format!("not a valid destination: {e}"))
        .and_then(|uri| policy.granted(&uri).map(|_| ()));
    decision
        .err()
        .map(|reason| format!("{scheme}://{authority}{path}: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_scheme_host_and_port() {
        let p = HostPattern::parse("https://graph.microsoft.com:443").unwrap();
        assert!(p.matches(Scheme::Https, "graph.microsoft.com", 443));
        assert!(p.matches(Scheme::Https, "Graph.Microsoft.com.", 443));
        assert!(!p.matches(Scheme::Http, "graph.microsoft.com", 443));
        assert!(!p.matches(Scheme::Https, "graph.microsoft.com", 8443));
        assert!(!p.matches(Scheme::Https, "evil-graph.microsoft.com", 443));

        let any_port = HostPattern::parse("http://127.0.0.1:*").unwrap();
        assert!(any_port.matches(Scheme::Http, "127.0.0.1", 5555));
        assert!(!any_port.matches(Scheme::Http, "127.0.0.2", 5555));

        let default_port = HostPattern::parse("https://login.microsoftonline.com").unwrap();
        assert!(default_port.matches(Scheme::Https, "login.microsoftonline.com", 443));
        assert!(!default_port.matches(Scheme::Https, "login.microsoftonline.com", 444));

        let sub = HostPattern::parse("https://*.example.com").unwrap();
        assert!(sub.matches(Scheme::Https, "api.example.com", 443));
        assert!(!sub.matches(Scheme::Https, "example.com", 443));
        assert!(!sub.matches(Scheme::Https, "badexample.com", 443));

        let v6 = HostPattern::parse("http://[::1]:8080").unwrap();
        assert!(v6.matches(Scheme::Http, "[::1]", 8080));
    }

    #[test]
    fn bad_patterns_are_rejected() {
        for bad in [
            "graph.microsoft.com",
            "ftp://x",
            "https://x/path",
            "https://u@x",
            "https://x:port",
            "https://a*.b",
            "https://",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn private_and_special_addresses_are_non_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_non_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["20.190.128.1", "8.8.8.8", "2620:1ec:21::14"] {
            assert!(!is_non_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
