//! Turning AWS SDK failures into the core's classified errors, so the effects runner and the
//! Router decide about retries the same way for DynamoDB and SES as for SQLite.
//!
//! The SDK has already retried throttling and transient failures with backoff (see
//! [`crate::config`]) by the time an error reaches here: what is left is either still
//! transient (the caller may try again later: `Unavailable`) or permanent (a person must fix
//! the deployment or the request: `Refused` / `Rejected`).

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use reclaim_workflow::ports::{MailError, StoreError};
use std::fmt::Debug;

/// Error codes that mean "busy, try again later", whichever service says them.
const TRANSIENT_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "LimitExceededException",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "TransactionInProgressException",
];

/// How a failed SDK call should be treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Throttling, a 5xx, a timeout or a broken connection: try again later.
    Transient,
    /// The service refused the request: trying again will not help.
    Permanent,
}

/// Classifies any SDK error by its kind, HTTP status and error code.
pub fn classify<E>(err: &SdkError<E, HttpResponse>) -> Class
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Class::Transient
        }
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = se.err().code().unwrap_or_default();
            if status >= 500 || status == 429 || TRANSIENT_CODES.contains(&code) {
                Class::Transient
            } else {
                Class::Permanent
            }
        }
        // A request the SDK could not even build is our bug, not the network's.
        _ => Class::Permanent,
    }
}

/// The service's own words for an error, for logs and error messages.
pub fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: Debug,
{
    match err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            format!(
                "{}: {}",
                e.code().unwrap_or("unknown error"),
                e.message().unwrap_or("(no message)")
            )
        }
        other => {
            // The SDK's Display is terse ("dispatch failure"); the source says why.
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    }
}

/// A DynamoDB failure as the store port reports it.
pub fn store_error<E>(operation: &str, err: &SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let what = format!("DynamoDB {operation}: {}", describe(err));
    match classify(err) {
        Class::Transient => StoreError::Unavailable(what),
        Class::Permanent => StoreError::Refused(what),
    }
}

/// An SES failure as the mailer port reports it.
pub fn mail_error<E>(err: &SdkError<E, HttpResponse>) -> MailError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let what = format!("SES SendEmail: {}", describe(err));
    match classify(err) {
        Class::Transient => MailError::Unavailable(what),
        Class::Permanent => MailError::Rejected(what),
    }
}

/// Whether a DynamoDB error is a failed condition (someone else wrote first, or the item
/// already exists), which the store turns into a conflict or a duplicate instead of an error.
pub trait ConditionFailed {
    fn is_condition_failed(&self) -> bool;
}

macro_rules! condition_failed {
    ($($op:ty),*) => {$(
        impl<R> ConditionFailed for SdkError<$op, R> {
            fn is_condition_failed(&self) -> bool {
                matches!(self, SdkError::ServiceError(se)
                    if se.err().code() == Some("ConditionalCheckFailedException"))
            }
        }
    )*};
}

condition_failed!(PutItemError, UpdateItemError, DeleteItemError);
