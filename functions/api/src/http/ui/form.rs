//! Form bodies of the workspace (`application/x-www-form-urlencoded`), with repeated fields
//! kept (the candidate list's ticked boxes all share the name `id`).

use crate::http::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;

/// More fields than this in one form is not something our pages send.
pub const MAX_FIELDS: usize = 2000;

/// The fields of a form, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FormFields(Vec<(String, String)>);

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes one name or value: `+` is a space, `%XX` a byte; the result must be UTF-8.
fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = hex(*b.get(i + 1)?)?;
                let lo = hex(*b.get(i + 2)?)?;
                out.push(hi * 16 + lo);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

impl FormFields {
    /// Parses a body; a broken escape, text that is not UTF-8 or too many fields is an error
    /// naming the problem.
    pub fn parse(body: &[u8]) -> Result<FormFields, ApiError> {
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::bad_request("the form is not UTF-8 text"))?;
        let mut fields = Vec::new();
        for pair in text.split('&').filter(|p| !p.is_empty()) {
            if fields.len() >= MAX_FIELDS {
                return Err(ApiError::bad_request(format!(
                    "a form may have at most {MAX_FIELDS} fields"
                )));
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match (decode(k), decode(v)) {
                (Some(k), Some(v)) => fields.push((k, v)),
                _ => return Err(ApiError::bad_request("the form has a broken %-escape")),
            }
        }
        Ok(FormFields(fields))
    }

    /// The first value of a field.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a field, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A workspace form body. Rejections are pages, like every other workspace error.
#[derive(Clone, Debug)]
pub struct UiForm(pub FormFields);

impl<S: Send + Sync> FromRequest<S> for UiForm {
    type Rejection = super::UiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_form = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the form as application/x-www-form-urlencoded",
            )
            .into());
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            let status = r.status();
            ApiError::new(status, "bad_body", "the form could not be read")
        })?;
        Ok(UiForm(FormFields::parse(&bytes)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_decoded_and_repeats_kept() {
        let f = FormFields::parse(b"id=a&id=b%2Fc&comment=still+need+it&csrf=&x").unwrap();
        assert_eq!(f.all("id"), vec!["a", "b/c"]);
        assert_eq!(f.get("comment"), Some("still need it"));
        assert_eq!(f.get("csrf"), Some(""));
        assert_eq!(f.get("x"), Some(""));
        assert_eq!(f.get("missing"), None);
        assert_eq!(FormFields::parse(b"").unwrap(), FormFields::default());
    }

    #[test]
    fn broken_forms_are_refused() {
        assert!(FormFields::parse(b"a=%zz").is_err());
        assert!(FormFields::parse(b"a=%4").is_err());
        assert!(FormFields::parse(b"a=%ff%fe").is_err());
        assert!(FormFields::parse(&[0xff, b'=', b'1']).is_err());
        let many = "a=1&".repeat(MAX_FIELDS + 1);
        assert!(FormFields::parse(many.as_bytes()).is_err());
    }
}
