//! Workspace sessions, sign-ins in progress and API token digests. Sessions and sign-ins
//! carry a TTL (`exp`); TTL deletion lags by up to days, so every read checks the expiry too.

use super::batch::delete;
use super::keys::*;
use super::{decode, encode, n, s, str_attr, units, DynamoStore, Item};
use crate::error::{store_error, ConditionFailed};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, ReturnValue};
use reclaim_workflow::ports::{PendingSignIn, SessionRecord, SessionStore, StoreError, TokenStore};
use reclaim_workflow::Timestamp;

fn session_item(session: &SessionRecord) -> Result<Item, StoreError> {
    let mut item = Item::new();
    item.insert(PK.into(), s(SESSION_PK));
    item.insert(SK.into(), s(session_sk(&session.id)));
    item.insert(TYPE.into(), s("s"));
    item.insert(DOC.into(), s(encode("session", session)?));
    item.insert(EXPIRES.into(), n(session.expires_at.timestamp()));
    Ok(item)
}

impl DynamoStore {
    async fn put_conditional(
        &self,
        item: Item,
        condition: Option<&str>,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_string))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.stats.write(units(out.consumed_capacity()));
                Ok(true)
            }
            Err(e) if e.is_condition_failed() => Ok(false),
            Err(e) => Err(store_error("PutItem", &e)),
        }
    }

    /// Deletes one item; returns it as it was, if there was one.
    async fn delete_returning(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(self.table())
            .key(PK, s(pk))
            .key(SK, s(sk))
            .return_values(ReturnValue::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| store_error("DeleteItem", &e))?;
        self.stats.write(units(out.consumed_capacity()));
        Ok(out.attributes.filter(|a| !a.is_empty()))
    }
}

#[async_trait]
impl SessionStore for DynamoStore {
    async fn put_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        self.put_conditional(session_item(session)?, None).await?;
        Ok(())
    }

    async fn session(&self, id: &str, now: Timestamp) -> Result<Option<SessionRecord>, StoreError> {
        let found: Option<SessionRecord> = self
            .get_item(SESSION_PK, &session_sk(id))
            .await?
            .map(|i| decode("session", &i))
            .transpose()?;
        Ok(found.filter(|s| now < s.expires_at))
    }

    async fn touch_session(&self, session: &SessionRecord) -> Result<bool, StoreError> {
        self.put_conditional(session_item(session)?, Some("attribute_exists(pk)"))
            .await
    }

    async fn end_session(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .delete_returning(SESSION_PK, &session_sk(id))
            .await?
            .is_some())
    }

    async fn end_all_sessions(&self) -> Result<u64, StoreError> {
        let items = self.query_prefix(SESSION_PK, "S#").await?;
        let count = items.len() as u64;
        let requests = items
            .iter()
            .map(|i| {
                let mut key = Item::new();
                key.insert(PK.into(), s(SESSION_PK));
                key.insert(SK.into(), s(str_attr(i, SK).unwrap_or_default()));
                delete(key)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_write(requests).await.map_err(|f| f.error)?;
        Ok(count)
    }

    async fn put_sign_in(&self, pending: &PendingSignIn) -> Result<(), StoreError> {
        let mut item = Item::new();
        item.insert(PK.into(), s(sign_in_pk(&pending.id)));
        item.insert(SK.into(), s(SIGN_IN_SK));
        item.insert(TYPE.into(), s("p"));
        item.insert(DOC.into(), s(encode("sign-in", pending)?));
        item.insert(EXPIRES.into(), n(pending.expires_at.timestamp()));
        self.put_conditional(item, None).await?;
        Ok(())
    }

    async fn take_sign_in(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<PendingSignIn>, StoreError> {
        let taken: Option<PendingSignIn> = self
            .delete_returning(&sign_in_pk(id), SIGN_IN_SK)
            .await?
            .map(|i| decode("sign-in", &i))
            .transpose()?;
        Ok(taken.filter(|p| now < p.expires_at))
    }
}

#[async_trait]
impl TokenStore for DynamoStore {
    async fn put_token(&self, digest: &str, user_id: &str) -> Result<(), StoreError> {
        let mut item = Item::new();
        item.insert(PK.into(), s(DIR_PK));
        item.insert(SK.into(), s(token_sk(digest)));
        item.insert(TYPE.into(), s("k"));
        item.insert(DOC.into(), s(encode("token", &user_id)?));
        self.put_conditional(item, None).await?;
        Ok(())
    }

    async fn token_user(&self, digest: &str) -> Result<Option<String>, StoreError> {
        self.get_item(DIR_PK, &token_sk(digest))
            .await?
            .map(|i| decode("token", &i))
            .transpose()
    }
}
