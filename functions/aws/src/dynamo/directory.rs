//! Users, assignment groups and rules: small, read on most requests, each kind in one
//! partition so listing it is one query.

use super::keys::*;
use super::{decode, encode, s, units, DynamoStore, Item};
use crate::error::store_error;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, ReturnValue};
use reclaim_workflow::ports::{Directory, RuleStore, StoreError};
use reclaim_workflow::{Group, Rule, User};
use serde::de::DeserializeOwned;
use serde::Serialize;

impl DynamoStore {
    async fn put_doc<T: Serialize>(
        &self,
        what: &str,
        pk: &str,
        sk: String,
        kind: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let mut item = Item::new();
        item.insert(PK.into(), s(pk));
        item.insert(SK.into(), s(sk));
        item.insert(TYPE.into(), s(kind));
        item.insert(DOC.into(), s(encode(what, value)?));
        let out = self
            .client
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| store_error("PutItem", &e))?;
        self.stats.write(units(out.consumed_capacity()));
        Ok(())
    }

    async fn get_doc<T: DeserializeOwned>(
        &self,
        what: &str,
        pk: &str,
        sk: String,
    ) -> Result<Option<T>, StoreError> {
        self.get_item(pk, &sk)
            .await?
            .map(|i| decode(what, &i))
            .transpose()
    }

    async fn all_docs<T: DeserializeOwned>(
        &self,
        what: &str,
        pk: &str,
        prefix: &str,
    ) -> Result<Vec<T>, StoreError> {
        self.query_prefix(pk, prefix)
            .await?
            .iter()
            .map(|i| decode(what, i))
            .collect()
    }
}

#[async_trait]
impl Directory for DynamoStore {
    async fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.get_doc("user", DIR_PK, format!("U#{id}")).await
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        self.all_docs("user", DIR_PK, "U#").await
    }

    async fn put_user(&self, user: &User) -> Result<(), StoreError> {
        self.put_doc("user", DIR_PK, format!("U#{}", user.id), "u", user)
            .await
    }

    async fn group(&self, id: &str) -> Result<Option<Group>, StoreError> {
        self.get_doc("group", DIR_PK, format!("G#{id}")).await
    }

    async fn groups(&self) -> Result<Vec<Group>, StoreError> {
        self.all_docs("group", DIR_PK, "G#").await
    }

    async fn put_group(&self, group: &Group) -> Result<(), StoreError> {
        self.put_doc("group", DIR_PK, format!("G#{}", group.id), "g", group)
            .await
    }
}

#[async_trait]
impl RuleStore for DynamoStore {
    async fn rule(&self, id: &str) -> Result<Option<Rule>, StoreError> {
        self.get_doc("rule", RULE_PK, format!("R#{id}")).await
    }

    async fn rules(&self) -> Result<Vec<Rule>, StoreError> {
        self.all_docs("rule", RULE_PK, "R#").await
    }

    async fn put_rule(&self, rule: &Rule) -> Result<(), StoreError> {
        self.put_doc("rule", RULE_PK, format!("R#{}", rule.id), "r", rule)
            .await
    }

    async fn delete_rule(&self, id: &str) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(self.table())
            .key(PK, s(RULE_PK))
            .key(SK, s(format!("R#{id}")))
            .return_values(ReturnValue::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| store_error("DeleteItem", &e))?;
        self.stats.write(units(out.consumed_capacity()));
        Ok(out.attributes().is_some_and(|a| !a.is_empty()))
    }
}
