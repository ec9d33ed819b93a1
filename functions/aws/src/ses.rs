//! The SES v2 mailer: HTML and text parts, an optional configuration set, and at most one
//! message per effect key.
//!
//! SES has no idempotency token, and effects run at least once, so before sending the mailer
//! writes an idempotency record (`M#<key>`) on the condition that none exists. A second run
//! with the same key finds the record and sends nothing. If SES refuses or cannot be reached,
//! the record is removed again so a retry can send; if the process dies between the record and
//! the send, the message is not sent (at most once wins over at least once for email: a
//! duplicate "your software will be removed" is worse than a logged gap). Records expire after
//! [`RECORD_DAYS`] through DynamoDB's TTL; since TTL deletion lags by up to two days, an
//! expired record is treated as absent in the condition itself.

use crate::dynamo::keys::{EXPIRES, MAIL_SK, PK, SK, TYPE};
use crate::dynamo::{reported, s, DynamoStore, Item};
use crate::error::{mail_error, store_error, ConditionFailed};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity, ReturnValue};
use aws_sdk_sesv2::error::SdkError;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use reclaim_workflow::ports::{Clock, MailError, Mailer, OutgoingMail};
use std::sync::Arc;

/// How long an idempotency record keeps a key from being sent again: far longer than any
/// retry of the stream (24 hours of stream retention).
pub const RECORD_DAYS: i64 = 7;

/// Sends through SES v2, once per key.
#[derive(Clone)]
pub struct SesMailer {
    ses: aws_sdk_sesv2::Client,
    records: DynamoStore,
    sender: String,
    configuration_set: Option<String>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SesMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SesMailer")
            .field("sender", &self.sender)
            .field("configuration_set", &self.configuration_set)
            .finish_non_exhaustive()
    }
}

impl SesMailer {
    /// `records` is the store whose table keeps the idempotency records.
    pub fn new(
        ses: aws_sdk_sesv2::Client,
        records: DynamoStore,
        sender: impl Into<String>,
        configuration_set: Option<String>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        SesMailer {
            ses,
            records,
            sender: sender.into(),
            configuration_set,
            clock,
        }
    }

    /// Claims `key`; `false` when it was already claimed (sent, or being sent).
    async fn claim(&self, key: &str) -> Result<bool, MailError> {
        let now = self.clock.now().timestamp();
        let expires = now + RECORD_DAYS * 86_400;
        let record = Item::from([
            (PK.to_string(), s(crate::dynamo::keys::mail_pk(key))),
            (SK.to_string(), s(MAIL_SK)),
            (TYPE.to_string(), s("m")),
            ("st".to_string(), s("sending")),
            ("at".to_string(), s(self.clock.now().to_rfc3339())),
            (EXPIRES.to_string(), AttributeValue::N(expires.to_string())),
        ]);
        let out = self
            .records
            .client()
            .put_item()
            .table_name(self.records.table())
            .set_item(Some(record.clone()))
            .condition_expression("attribute_not_exists(#pk) OR #exp < :now")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#exp", EXPIRES)
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        self.records.note_write(
            "PutItem",
            out.as_ref()
                .ok()
                .and_then(|o| reported(o.consumed_capacity())),
            &[&record],
            false,
            out.is_ok(),
        );
        match out {
            Ok(_) => Ok(true),
            Err(e) if e.is_condition_failed() => Ok(false),
            Err(e) => Err(store_to_mail(store_error("PutItem", &e))),
        }
    }

    /// Gives the key back after a send that certainly did not happen.
    async fn release(&self, key: &str) {
        let record = Item::from([
            (PK.to_string(), s(crate::dynamo::keys::mail_pk(key))),
            (SK.to_string(), s(MAIL_SK)),
        ]);
        let out = self
            .records
            .client()
            .delete_item()
            .table_name(self.records.table())
            .set_key(Some(record.clone()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        self.records.note_write(
            "DeleteItem",
            out.as_ref()
                .ok()
                .and_then(|o| reported(o.consumed_capacity())),
            &[&record],
            false,
            out.is_ok(),
        );
        if let Err(e) = out {
            tracing::error!(key, error = %crate::error::describe(&e), "could not release a mail record; the message will not be retried");
        }
    }

    async fn mark_sent(&self, key: &str, message_id: Option<&str>) {
        let mut record = Item::from([
            (PK.to_string(), s(crate::dynamo::keys::mail_pk(key))),
            (SK.to_string(), s(MAIL_SK)),
        ]);
        let out = self
            .records
            .client()
            .update_item()
            .table_name(self.records.table())
            .set_key(Some(record.clone()))
            .update_expression("SET st = :sent, mid = :mid")
            .expression_attribute_values(":sent", s("sent"))
            .expression_attribute_values(":mid", s(message_id.unwrap_or_default()))
            .return_values(ReturnValue::AllNew)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        if let Some(after) = out.as_ref().ok().and_then(|o| o.attributes()) {
            record = after.clone();
        }
        self.records.note_write(
            "UpdateItem",
            out.as_ref()
                .ok()
                .and_then(|o| reported(o.consumed_capacity())),
            &[&record],
            false,
            out.is_ok(),
        );
        // Only bookkeeping: the claim already keeps the key from being sent again.
        if let Err(e) = out {
            tracing::warn!(key, error = %crate::error::describe(&e), "could not mark a mail record sent");
        }
    }

    fn content(mail: &OutgoingMail) -> Result<EmailContent, MailError> {
        let part = |text: &str| {
            Content::builder()
                .data(text)
                .charset("UTF-8")
                .build()
                .map_err(|e| MailError::Rejected(format!("message: {e}")))
        };
        let message = Message::builder()
            .subject(part(&mail.subject)?)
            .body(
                Body::builder()
                    .text(part(&mail.text)?)
                    .html(part(&mail.html)?)
                    .build(),
            )
            .build();
        Ok(EmailContent::builder().simple(message).build())
    }
}

fn store_to_mail(e: reclaim_workflow::ports::StoreError) -> MailError {
    if e.is_retryable() {
        MailError::Unavailable(e.to_string())
    } else {
        MailError::Rejected(e.to_string())
    }
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        if mail.to.is_empty() {
            return Err(MailError::Rejected(format!(
                "message {} has no recipient",
                mail.key
            )));
        }
        // SES takes at most 50 recipients per message; the application sends one per person.
        if mail.to.len() > 50 {
            return Err(MailError::Rejected(format!(
                "message {} has {} recipients; SES takes 50",
                mail.key,
                mail.to.len()
            )));
        }
        let content = Self::content(mail)?;
        if !self.claim(&mail.key).await? {
            tracing::info!(key = %mail.key, "already sent; skipped");
            return Ok(());
        }
        let sent = self
            .ses
            .send_email()
            .from_email_address(&self.sender)
            .destination(
                Destination::builder()
                    .set_to_addresses(Some(mail.to.clone()))
                    .build(),
            )
            .content(content)
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await;
        match sent {
            Ok(out) => {
                tracing::info!(key = %mail.key, message_id = out.message_id().unwrap_or_default(), "sent");
                self.mark_sent(&mail.key, out.message_id()).await;
                Ok(())
            }
            Err(e @ (SdkError::ServiceError(_) | SdkError::ConstructionFailure(_))) => {
                // SES answered with an error, or the request was never built: nothing went
                // out, so a retry may send.
                self.release(&mail.key).await;
                Err(mail_error(&e))
            }
            Err(e) => {
                // A timeout or a lost answer: SES may have sent it. Keep the claim, so no
                // retry sends it a second time.
                tracing::warn!(key = %mail.key, error = %crate::error::describe(&e), "outcome of the send is unknown; not retried");
                Ok(())
            }
        }
    }
}
