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
use aws_sdk_dynamodb::types::CancellationReason;
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

/// Whether DynamoDB's words for a refusal are about size: an item over 400 KB, or a
/// transaction or item collection over its limit. DynamoDB has no error code of its own for
/// these (a `ValidationException`, or a cancellation reason `ValidationError`), only the
/// message, e.g. "Item size has exceeded the maximum allowed size".
pub fn mentions_size(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("size") && (m.contains("exceed") || m.contains("too large") || m.contains("larger"))
}

/// A DynamoDB failure as the store port reports it. A write refused for its size is
/// [`StoreError::TooLarge`], so the API answers 422 instead of a server fault: trying the
/// same write again cannot succeed.
pub fn store_error<E>(operation: &str, err: &SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let what = format!("DynamoDB {operation}: {}", describe(err));
    if let SdkError::ServiceError(se) = err {
        let e = se.err();
        if e.code() == Some("ValidationException") && mentions_size(e.message().unwrap_or("")) {
            return StoreError::TooLarge(what);
        }
    }
    match classify(err) {
        Class::Transient => StoreError::Unavailable(what),
        Class::Permanent => StoreError::Refused(what),
    }
}

/// What a `TransactionCanceledException` means, from its cancellation reasons (one per
/// action of the transaction, in order). Every transaction of the store decides with
/// [`canceled`], so a reason means the same wherever it comes back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Canceled {
    /// The action at this position failed its condition: the caller knows what that means
    /// (a duplicate, a lost optimistic race, an item in an older layout).
    ConditionFailed(usize),
    /// Another transaction wrote one of the items at the same moment: a lost race, which a
    /// fresh read and a new attempt may win.
    LostRace,
    /// An item or the item collection would exceed DynamoDB's size limits: permanent.
    TooLarge(String),
    /// The service refused an action for another reason it calls invalid: permanent.
    Refused(String),
    /// Throttled, or no reason given: try again later.
    Busy(String),
}

/// Classifies the cancellation reasons of a transaction, one by one: a failed condition
/// outranks everything (it names the item at fault), then what cannot succeed on retry
/// (`ValidationError`, `ItemCollectionSizeLimitExceeded`), then a lost race
/// (`TransactionConflict`), then throttling (`ProvisionedThroughputExceeded`,
/// `ThrottlingError`, `RequestLimitExceeded`). `None` is the code of the actions that were
/// fine and says nothing. An unknown code is treated as transient, like the service's own
/// unexplained failures.
pub fn canceled(reasons: &[CancellationReason]) -> Canceled {
    let text = |r: &CancellationReason| {
        format!(
            "{}: {}",
            r.code().unwrap_or("unknown"),
            r.message().unwrap_or("(no message)")
        )
    };
    if let Some(i) = reasons
        .iter()
        .position(|r| r.code() == Some("ConditionalCheckFailed"))
    {
        return Canceled::ConditionFailed(i);
    }
    let mut lost = false;
    let mut busy = None;
    for r in reasons {
        match r.code() {
            None | Some("None") => {}
            Some("ItemCollectionSizeLimitExceeded") => return Canceled::TooLarge(text(r)),
            Some("ValidationError") if mentions_size(r.message().unwrap_or("")) => {
                return Canceled::TooLarge(text(r))
            }
            Some("ValidationError") => return Canceled::Refused(text(r)),
            Some("TransactionConflict") => lost = true,
            Some(_) => busy = busy.or_else(|| Some(text(r))),
        }
    }
    if lost {
        return Canceled::LostRace;
    }
    Canceled::Busy(busy.unwrap_or_else(|| "canceled without a reason".to_string()))
}

impl Canceled {
    /// The store error for a cancellation the caller gives no meaning of its own: a lost race
    /// is worth trying again (a fresh attempt sees the winner), a failed condition is not.
    pub fn into_store_error(self, operation: &str) -> StoreError {
        let what = |why: String| format!("DynamoDB {operation} canceled: {why}");
        match self {
            Canceled::ConditionFailed(i) => {
                StoreError::Refused(what(format!("action {i} failed its condition")))
            }
            Canceled::LostRace => {
                StoreError::Unavailable(what("another transaction wrote first".to_string()))
            }
            Canceled::TooLarge(why) => StoreError::TooLarge(what(why)),
            Canceled::Refused(why) => StoreError::Refused(what(why)),
            Canceled::Busy(why) => StoreError::Unavailable(what(why)),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(codes: &[(&str, &str)]) -> Vec<CancellationReason> {
        codes
            .iter()
            .map(|(code, message)| {
                CancellationReason::builder()
                    .code(*code)
                    .message(*message)
                    .build()
            })
            .collect()
    }

    #[test]
    fn a_failed_condition_names_its_action_whatever_else_failed() {
        let r = reasons(&[
            ("None", ""),
            ("ConditionalCheckFailed", "The conditional request failed"),
            ("TransactionConflict", "Transaction is ongoing for the item"),
        ]);
        assert_eq!(canceled(&r), Canceled::ConditionFailed(1));
    }

    #[test]
    fn a_transaction_conflict_is_a_lost_race() {
        let r = reasons(&[
            ("TransactionConflict", "Transaction is ongoing"),
            ("None", ""),
        ]);
        assert_eq!(canceled(&r), Canceled::LostRace);
        assert!(Canceled::LostRace
            .into_store_error("TransactWriteItems")
            .is_retryable());
    }

    #[test]
    fn an_item_too_large_is_permanent_not_busy() {
        let r = reasons(&[
            ("None", ""),
            (
                "ValidationError",
                "Item size has exceeded the maximum allowed size",
            ),
        ]);
        let c = canceled(&r);
        assert!(matches!(c, Canceled::TooLarge(_)), "{c:?}");
        let e = c.into_store_error("TransactWriteItems");
        assert!(matches!(e, StoreError::TooLarge(_)), "{e:?}");
        assert!(!e.is_retryable());
    }

    #[test]
    fn an_item_collection_over_its_limit_is_too_large() {
        let r = reasons(&[(
            "ItemCollectionSizeLimitExceeded",
            "Collection size exceeded",
        )]);
        assert!(matches!(canceled(&r), Canceled::TooLarge(_)));
    }

    #[test]
    fn another_validation_error_is_refused_and_permanent() {
        let r = reasons(&[(
            "ValidationError",
            "One or more parameter values were invalid",
        )]);
        let c = canceled(&r);
        assert!(matches!(c, Canceled::Refused(_)), "{c:?}");
        assert!(!c.into_store_error("TransactWriteItems").is_retryable());
    }

    #[test]
    fn throttling_is_retryable() {
        for code in [
            "ProvisionedThroughputExceeded",
            "ThrottlingError",
            "RequestLimitExceeded",
        ] {
            let c = canceled(&reasons(&[("None", ""), (code, "slow down")]));
            assert!(matches!(c, Canceled::Busy(_)), "{code}: {c:?}");
            assert!(c.into_store_error("TransactWriteItems").is_retryable());
        }
    }

    #[test]
    fn reasons_of_none_say_nothing() {
        let c = canceled(&reasons(&[("None", ""), ("None", "")]));
        assert!(matches!(c, Canceled::Busy(_)), "{c:?}");
        assert!(matches!(canceled(&[]), Canceled::Busy(_)));
    }

    #[test]
    fn size_messages_are_recognised() {
        assert!(mentions_size(
            "Item size has exceeded the maximum allowed size"
        ));
        assert!(mentions_size(
            "Item size to update has exceeded the maximum allowed size"
        ));
        assert!(!mentions_size("The conditional request failed"));
        assert!(!mentions_size("One or more parameter values were invalid"));
    }
}
