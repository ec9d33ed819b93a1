//! The one error shape every API route answers with, and extractors whose rejections use it.
//!
//! Clients get `{"error": {"code": "...", "message": "...", "fields": [...]}}` for every 4xx
//! and 5xx: axum's own rejections (bad JSON, wrong content type, body too large, bad path or
//! query) are turned into that shape here, so no route leaks a plain-text error.

use crate::app::{AppError, RowError};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FormRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use reclaim_workflow::intake::FieldError;
use reclaim_workflow::ports::StoreError;
use reclaim_workflow::RefusalReason;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// What a client is told when the store refuses a write for its size: the same change will
/// be refused again, so it is the client's to shorten, not a server fault to retry.
pub const TOO_LARGE_MESSAGE: &str =
    "this change would make the stored candidate larger than the store allows";

/// An error as the API reports it: a status, a stable machine-readable code, and a message
/// people can act on.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The fields at fault, for validation errors.
    pub fields: Vec<FieldError>,
    /// The rows at fault, for imports.
    pub rows: Vec<RowError>,
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    fields: &'a [FieldError],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    rows: &'a [RowError],
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
            rows: Vec::new(),
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 422 with the fields at fault named one by one.
    pub fn invalid(fields: Vec<FieldError>) -> Self {
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        let message = if names.is_empty() {
            "invalid input".to_string()
        } else {
            format!("invalid input in: {}", names.join(", "))
        };
        ApiError {
            fields,
            ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
        }
    }

    /// One invalid field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        ApiError::invalid(vec![FieldError {
            field: field.to_string(),
            message: message.into(),
        }])
    }

    /// The request matched no route.
    pub fn no_route() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "no_such_route", "no such route")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorEnvelope {
            error: ErrorBody {
                code: self.code,
                message: &self.message,
                fields: &self.fields,
                rows: &self.rows,
            },
        };
        let mut res = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::from(AppError::from(e))
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        let message = e.to_string();
        match e {
            // The store reports an unreadable cursor as a missing one; to the client it is a
            // bad parameter, not a missing resource.
            AppError::NotFound { kind: "cursor", .. } => ApiError {
                fields: vec![FieldError {
                    field: "cursor".into(),
                    message: "is not a cursor this API returned".into(),
                }],
                ..ApiError::new(StatusCode::BAD_REQUEST, "bad_cursor", message)
            },
            AppError::NotFound { .. } => ApiError::not_found(message),
            AppError::Refused(r) => match &r.reason {
                RefusalReason::Forbidden { .. } => ApiError::forbidden(message),
                RefusalReason::NotAllowedInState => {
                    ApiError::new(StatusCode::CONFLICT, "not_allowed_in_state", message)
                }
                RefusalReason::NotDue => ApiError::new(StatusCode::CONFLICT, "not_due", message),
                RefusalReason::Invalid(_) => {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
                }
                RefusalReason::InvalidField(f) => ApiError::invalid(vec![f.clone()]),
            },
            AppError::Stale { .. } => ApiError::new(StatusCode::CONFLICT, "stale_version", message),
            AppError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            AppError::Excluded { .. } => ApiError::new(StatusCode::CONFLICT, "excluded", message),
            AppError::BadRequest(_) => ApiError::bad_request(message),
            AppError::Invalid(fields) => ApiError::invalid(fields),
            AppError::Forbidden(_) => ApiError::forbidden(message),
            AppError::Store(StoreError::Unavailable(_)) => {
                tracing::warn!(error = %message, "store unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the store is busy or unreachable; try again shortly",
                )
            }
            AppError::Store(StoreError::TooLarge(_)) => {
                tracing::warn!(error = %message, "write too large for the store");
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "too_large",
                    TOO_LARGE_MESSAGE,
                )
            }
            AppError::Store(e) => {
                tracing::error!(error = %e, "store error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "stored data could not be read; the error has been logged",
                )
            }
        }
    }
}

/// Names the fields serde complains about (`unknown field `x``, `missing field `y``), so a
/// client sees which field to fix without parsing the message.
fn serde_fields(message: &str) -> Vec<FieldError> {
    for prefix in ["unknown field `", "missing field `", "duplicate field `"] {
        if let Some(rest) = message.split(prefix).nth(1) {
            if let Some(name) = rest.split('`').next() {
                let what = prefix.trim_end_matches(" `");
                return vec![FieldError {
                    field: name.to_string(),
                    message: what.to_string(),
                }];
            }
        }
    }
    Vec::new()
}

pub(crate) fn is_json(parts_content_type: Option<&HeaderValue>) -> bool {
    let Some(ct) = parts_content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

pub(crate) fn bytes_rejection(r: BytesRejection) -> ApiError {
    let status = r.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(status, "body_too_large", "the request body is too large")
    } else {
        ApiError::new(status, "bad_body", r.body_text())
    }
}

/// Parses JSON from bytes with the API's error classification.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        let array = bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'[');
        match e.classify() {
            // serde reads a struct from an array positionally, and then complains about the
            // first element ("invalid type: map, expected a sequence"): say what is wrong.
            Category::Data if array => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                "the JSON body is an array, but this route takes an object (for example \
                 {\"candidates\": [...]}; see /api/v1/openapi.json)",
            ),
            Category::Data => ApiError {
                fields: serde_fields(&e.to_string()),
                ..ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_body",
                    format!("the JSON body does not fit this route: {e}"),
                )
            },
            Category::Syntax | Category::Eof | Category::Io => ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the body is not valid JSON: {e}"),
            ),
        }
    })
}

/// A JSON request body (`application/json` required) or a JSON response. Rejections are
/// [`ApiError`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers().get(CONTENT_TYPE)) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(bytes_rejection)?;
        parse_json(&bytes).map(Json)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A JSON body whose fields are all optional: an empty body (no content type) means the
/// defaults, so `POST /candidates/{id}/reclaim` works without a body.
#[derive(Debug, Clone, Copy, Default)]
pub struct OptionalJson<T>(pub T);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let has_type = req.headers().contains_key(CONTENT_TYPE);
        let json = is_json(req.headers().get(CONTENT_TYPE));
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(bytes_rejection)?;
        if bytes.is_empty() && !has_type {
            return Ok(OptionalJson(T::default()));
        }
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        parse_json(&bytes).map(OptionalJson)
    }
}

/// Query parameters; unknown or malformed ones are a 400 naming the parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|r: QueryRejection| {
                let text = r.body_text();
                ApiError {
                    fields: serde_fields(&text),
                    ..ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", text)
                }
            })
    }
}

/// Path parameters, with rejections as [`ApiError`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|r: PathRejection| {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", r.body_text())
            })
    }
}

/// A form body (the link pages' buttons), with rejections as [`ApiError`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct Form<T>(pub T);

impl<T, S> FromRequest<S> for Form<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Form::<T>::from_request(req, state)
            .await
            .map(|f| Form(f.0))
            .map_err(|r: FormRejection| {
                let status = r.status();
                ApiError::new(status, "invalid_form", r.body_text())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_name_their_field() {
        let f = serde_fields("unknown field `colour`, expected one of `a`, `b` at line 1");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].field, "colour");
        assert_eq!(f[0].message, "unknown field");
        assert!(serde_fields("invalid type: string").is_empty());
    }

    #[test]
    fn json_content_types_are_recognised() {
        let ok = |s: &'static str| is_json(Some(&HeaderValue::from_static(s)));
        assert!(ok("application/json"));
        assert!(ok("application/json; charset=utf-8"));
        assert!(ok("application/merge-patch+json"));
        assert!(!ok("text/plain"));
        assert!(!is_json(None));
    }

    #[test]
    fn a_stale_version_is_a_conflict() {
        let e = ApiError::from(AppError::Stale {
            id: "RC1".into(),
            expected: 1,
            actual: 2,
        });
        assert_eq!(e.status, StatusCode::CONFLICT);
        assert_eq!(e.code, "stale_version");
    }

    #[test]
    fn a_write_too_large_for_the_store_is_unprocessable_not_a_server_fault() {
        let e = ApiError::from(StoreError::TooLarge(
            "DynamoDB PutItem: ValidationException: Item size has exceeded the maximum allowed size"
                .into(),
        ));
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.code, "too_large");
        assert_eq!(e.message, TOO_LARGE_MESSAGE);
        assert!(!StoreError::TooLarge(String::new()).is_retryable());
    }
}
