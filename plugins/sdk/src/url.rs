//! Just enough URL handling for vendor APIs, so guests stay small (no `url` crate).
//!
//! Base URLs come from config and paths from request data (user names, ids); the encoders here
//! make sure request data can never change which path or host a request goes to.

use std::fmt;

/// An absolute `http` or `https` URL split the way `wasi:http` wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    /// `host[:port]`, as sent in the request's authority.
    pub authority: String,
    /// Path and query, always starting with `/`.
    pub path_with_query: String,
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlError {
    NoScheme,
    UnsupportedScheme(String),
    NoHost,
    Fragment,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::NoScheme => write!(f, "URL must start with http:// or https://"),
            UrlError::UnsupportedScheme(s) => write!(f, "URL scheme `{s}` is not http or https"),
            UrlError::NoHost => write!(f, "URL has no host"),
            UrlError::Fragment => write!(f, "URL must not contain a fragment (#)"),
        }
    }
}

impl Url {
    pub fn parse(raw: &str) -> Result<Url, UrlError> {
        let raw = raw.trim();
        let (scheme, rest) = raw.split_once("://").ok_or(UrlError::NoScheme)?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            other => return Err(UrlError::UnsupportedScheme(other.to_owned())),
        };
        if rest.contains('#') {
            return Err(UrlError::Fragment);
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(split);
        // Userinfo in a configured URL would send credentials the manifest never granted.
        if authority.is_empty() || authority.contains('@') {
            return Err(UrlError::NoHost);
        }
        let path_with_query = match tail.chars().next() {
            None => "/".to_owned(),
            Some('?') => format!("/{tail}"),
            Some(_) => tail.to_owned(),
        };
        Ok(Url {
            https,
            authority: authority.to_owned(),
            path_with_query,
        })
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority, self.path_with_query)
    }
}

fn encode(input: &str, keep: impl Fn(u8) -> bool, space_as_plus: bool) -> String {
    let mut out = String::with_capacity(input.len());
    for &b in input.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') || keep(b) {
            out.push(char::from(b));
        } else if b == b' ' && space_as_plus {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One path segment from request data: `/`, `?`, `#` and `%` are escaped; `@` is kept because
/// UPNs are used as ids in paths (`/users/alice@example.com`).
pub fn segment(input: &str) -> String {
    encode(
        input,
        |b| {
            matches!(
                b,
                b'@' | b'!' | b'$' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' | b':'
            )
        },
        false,
    )
}

/// A query parameter value (or name).
pub fn query_value(input: &str) -> String {
    encode(
        input,
        |b| matches!(b, b'@' | b'$' | b'\'' | b':' | b'/'),
        false,
    )
}

/// `application/x-www-form-urlencoded` body from pairs.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                encode(k, |_| false, true),
                encode(v, |_| false, true)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Microsoft Graph, where a Microsoft plugin's `graph-base` points unless it says otherwise.
pub const GRAPH: &str = "https://graph.microsoft.com";

/// A Graph URL: `base` may name the API version itself (`…/v1.0`, `…/beta`); otherwise v1.0.
pub fn graph_url(base: &str, path: &str) -> String {
    if base.ends_with("/v1.0") || base.ends_with("/beta") {
        format!("{base}{path}")
    } else {
        format!("{base}/v1.0{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_base_urls() {
        let u = Url::parse("http://127.0.0.1:8080").unwrap();
        assert!(!u.https);
        assert_eq!(u.authority, "127.0.0.1:8080");
        assert_eq!(u.path_with_query, "/");
        let u = Url::parse("https://graph.microsoft.com/v1.0/users/a@b.c?$select=id").unwrap();
        assert!(u.https);
        assert_eq!(u.authority, "graph.microsoft.com");
        assert_eq!(u.path_with_query, "/v1.0/users/a@b.c?$select=id");
        assert_eq!(
            Url::parse("https://h?x=1").unwrap().path_with_query,
            "/?x=1"
        );
        assert_eq!(
            u.to_string(),
            "https://graph.microsoft.com/v1.0/users/a@b.c?$select=id"
        );
    }

    #[test]
    fn refuses_bad_urls() {
        assert_eq!(Url::parse("graph.microsoft.com"), Err(UrlError::NoScheme));
        assert!(matches!(
            Url::parse("ftp://x"),
            Err(UrlError::UnsupportedScheme(_))
        ));
        assert_eq!(Url::parse("https://"), Err(UrlError::NoHost));
        assert_eq!(Url::parse("https://user:pw@host/"), Err(UrlError::NoHost));
        assert_eq!(Url::parse("https://host/#x"), Err(UrlError::Fragment));
    }

    #[test]
    fn encodes_request_data() {
        assert_eq!(segment("alice@example.com"), "alice@example.com");
        assert_eq!(segment("../admin?x#y"), "..%2Fadmin%3Fx%23y");
        assert_eq!(segment("a b%"), "a%20b%25");
        assert_eq!(
            query_value("deviceName eq 'PC 1'"),
            "deviceName%20eq%20'PC%201'"
        );
        assert_eq!(
            form(&[
                ("grant_type", "client_credentials"),
                ("scope", "https://g/.default"),
                ("s", "a+b &=")
            ]),
            "grant_type=client_credentials&scope=https%3A%2F%2Fg%2F.default&s=a%2Bb+%26%3D"
        );
    }
}
