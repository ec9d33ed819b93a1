//! The outbox page (local mode): every message the local mailer kept, with the links inside
//! each one clickable, so a developer can play the user and the approver from a browser.
//!
//! It is unauthenticated on purpose: it is mounted only in local mode (the server listens on
//! 127.0.0.1 for one developer) and shows exactly the links it exists to show. A message's
//! HTML part is shown only inside a sandboxed iframe under a CSP that allows no scripts.

use super::error::{ApiError, Path};
use super::pages::{render, PAGE_CSP_FRAMES};
use super::ApiState;
use async_trait::async_trait;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use reclaim_workflow::ports::StoreError;
use reclaim_workflow::Timestamp;
use serde::Serialize;

/// A message as the local mailer kept it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredMail {
    /// Identifies the message in URLs (`/outbox/{key}`); any text, it is percent-encoded.
    pub key: String,
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub created_at: Timestamp,
}

/// Read access to the local outbox; the SQLite outbox mailer implements it in local mode.
#[async_trait]
pub trait OutboxView: Send + Sync {
    /// Newest first.
    async fn messages(&self) -> Result<Vec<StoredMail>, StoreError>;
    async fn message(&self, key: &str) -> Result<Option<StoredMail>, StoreError>;
}

/// A link found in a message, with the words before it on its line ("Yes, keep it").
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FoundLink {
    pub label: Option<String>,
    pub href: String,
}

/// The links of a plain-text message that lead into this deployment (`own`, its public URL),
/// in order, each once. Only Reclaim's own answer and record links become clickable: a link
/// that arrived inside an imported name or a plugin's text stays plain text, and nothing but
/// `http://` and `https://` (never `javascript:`) is taken at all.
pub fn extract_links(text: &str, own: &str) -> Vec<FoundLink> {
    let own = format!("{}/", own.trim_end_matches('/'));
    let mut links = all_links(text);
    links.retain(|l| l.href.starts_with(&own));
    links
}

fn all_links(text: &str) -> Vec<FoundLink> {
    let mut out: Vec<FoundLink> = Vec::new();
    for line in text.lines() {
        let mut rest = line;
        let mut before_start = 0usize;
        loop {
            let at = match (rest.find("http://"), rest.find("https://")) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => break,
            };
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\'' | '`'))
                .unwrap_or(tail.len());
            let href = tail[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']']);
            let consumed = line.len() - rest.len();
            let label_text = line[before_start..consumed + at]
                .trim()
                .trim_end_matches(':')
                .trim();
            let is_url = href.split_once("://").is_some_and(|(_, r)| !r.is_empty());
            if is_url && !out.iter().any(|l| l.href == href) {
                out.push(FoundLink {
                    label: (!label_text.is_empty()).then(|| label_text.to_string()),
                    href: href.to_string(),
                });
            }
            let step = at + end.max(1);
            before_start = consumed + step;
            rest = &rest[step..];
        }
    }
    out
}

/// Percent-encodes one path segment (everything but RFC 3986 unreserved characters).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn outbox(s: &ApiState) -> Result<&dyn OutboxView, ApiError> {
    s.outbox
        .as_deref()
        .ok_or_else(|| ApiError::not_found("there is no outbox in this deployment"))
}

fn when(t: Timestamp) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub async fn list_page(State(s): State<ApiState>) -> Result<Response, ApiError> {
    let messages = outbox(&s)?.messages().await?;
    let items: Vec<_> = messages
        .iter()
        .map(|m| {
            context! {
                url => format!("/outbox/{}", encode_segment(&m.key)),
                subject => m.subject,
                to => m.to.join(", "),
                created_at => when(m.created_at),
                links => extract_links(&m.text, &s.app.settings.public_url),
            }
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        "outbox.html",
        context! { messages => items },
    ))
}

async fn find(s: &ApiState, key: &str) -> Result<StoredMail, ApiError> {
    outbox(s)?
        .message(key)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("message '{key}' not found")))
}

pub async fn message_page(
    State(s): State<ApiState>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let m = find(&s, &key).await?;
    let mut res = render(
        StatusCode::OK,
        "outbox_message.html",
        context! {
            key => m.key,
            subject => m.subject,
            to => m.to.join(", "),
            created_at => when(m.created_at),
            links => extract_links(&m.text, &s.app.settings.public_url),
            text => m.text,
            html_url => format!("/outbox/{}/html", encode_segment(&key)),
        },
    );
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP_FRAMES),
    );
    Ok(res)
}

/// The policy of a message's HTML part: inline styles (emails use them), nothing else; framed
/// only by our own page; sandboxed even if opened directly.
pub const MAIL_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
     frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox";

pub async fn message_html(
    State(s): State<ApiState>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let m = find(&s, &key).await?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(MAIL_CSP),
            ),
            (
                header::X_FRAME_OPTIONS,
                HeaderValue::from_static("SAMEORIGIN"),
            ),
        ],
        m.html,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_found_with_their_labels() {
        let text = "Hello,\n\nYes, keep it:   http://127.0.0.1:8080/respond/abc.def\n\
                    No, remove it:  https://x.test/respond/q-1_2.\n\
                    Record: http://h/ui/candidates/1 (see it)\nnot a link: javascript:alert(1)\n";
        let links = all_links(text);
        let hrefs: Vec<_> = links.iter().map(|l| l.href.as_str()).collect();
        assert_eq!(
            hrefs,
            [
                "http://127.0.0.1:8080/respond/abc.def",
                "https://x.test/respond/q-1_2",
                "http://h/ui/candidates/1"
            ]
        );
        assert_eq!(links[0].label.as_deref(), Some("Yes, keep it"));
        assert_eq!(links[1].label.as_deref(), Some("No, remove it"));
    }

    #[test]
    fn two_links_on_a_line_and_repeats() {
        let links = all_links("a http://a.test/1 b https://b.test/2 http://a.test/1");
        assert_eq!(links.len(), 2);
        assert_eq!(links[1].label.as_deref(), Some("b"));
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(encode_segment("c-1:3:email/x y"), "c-1%3A3%3Aemail%2Fx%20y");
    }

    #[test]
    fn only_links_into_this_deployment_become_clickable() {
        let text = "Yes, keep it:   http://127.0.0.1:8080/respond/abc\n\
                    Software: \"Acro Yes, keep it: http://evil.example/phish\"\n\
                    Looks close: http://127.0.0.1:80800/respond/x\n\
                    Record: http://127.0.0.1:8080/ui/candidates/c-1\n";
        let hrefs: Vec<_> = extract_links(text, "http://127.0.0.1:8080/")
            .into_iter()
            .map(|l| l.href)
            .collect();
        assert_eq!(
            hrefs,
            [
                "http://127.0.0.1:8080/respond/abc",
                "http://127.0.0.1:8080/ui/candidates/c-1"
            ]
        );
    }
}
