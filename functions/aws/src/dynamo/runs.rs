//! Usage connectors' runs: one item per run under its connector's partition (`RUN#<id>`),
//! sorted by number, so a connector's latest runs are one query read backwards.

use super::keys::*;
use super::{decode, encode, n, reported, s, DynamoStore, Item, ReadKind};
use crate::error::{store_error, ConditionFailed};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use reclaim_workflow::ports::{
    CollectFailure, CollectedPage, ConnectorInfo, ConnectorRun, RunStore, StoreError, UsageSources,
};

fn run_item(run: &ConnectorRun) -> Result<Item, StoreError> {
    let mut item = Item::new();
    item.insert(PK.into(), s(run_pk(&run.connector)));
    item.insert(SK.into(), s(run_sk(run.seq)));
    item.insert(TYPE.into(), s("x"));
    item.insert(DOC.into(), s(encode("connector run", run)?));
    item.insert(VERSION.into(), n(run.version));
    Ok(item)
}

#[async_trait]
impl RunStore for DynamoStore {
    async fn put_run(&self, run: &ConnectorRun, expected: Option<u64>) -> Result<(), StoreError> {
        let item = run_item(run)?;
        let mut put = self
            .client
            .put_item()
            .table_name(self.table())
            .set_item(Some(item.clone()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        put = match expected {
            None => put
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK),
            Some(v) => put
                .condition_expression("#v = :v")
                .expression_attribute_names("#v", VERSION)
                .expression_attribute_values(":v", n(v)),
        };
        let out = put.send().await;
        self.note_write(
            "PutItem",
            out.as_ref()
                .ok()
                .and_then(|o| reported(o.consumed_capacity())),
            &[&item],
            false,
            out.is_ok(),
        );
        match out {
            Ok(_) => Ok(()),
            Err(e) if e.is_condition_failed() => Err(match expected {
                None => StoreError::Duplicate {
                    kind: "connector run",
                    id: run.id(),
                },
                Some(v) => StoreError::Conflict {
                    id: run.id(),
                    expected: v,
                },
            }),
            Err(e) => Err(store_error("PutItem", &e)),
        }
    }

    async fn runs(&self, connector: &str, limit: u32) -> Result<Vec<ConnectorRun>, StoreError> {
        let mut r = self
            .client
            .query()
            .table_name(self.table())
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", s(run_pk(connector)))
            .scan_index_forward(false)
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| store_error("Query", &e))?;
        let items = r.items.take().unwrap_or_default();
        self.note_read(
            "Query",
            reported(r.consumed_capacity()),
            &items,
            ReadKind::Together { consistent: true },
        );
        items.iter().map(|i| decode("connector run", i)).collect()
    }

    async fn publish_connectors(&self, list: &[ConnectorInfo]) -> Result<(), StoreError> {
        let mut item = Item::new();
        item.insert(PK.into(), s(CONNECTORS_PK));
        item.insert(SK.into(), s(CONNECTORS_SK));
        item.insert(TYPE.into(), s("l"));
        item.insert(DOC.into(), s(encode("connectors", &list)?));
        let out = self
            .client
            .put_item()
            .table_name(self.table())
            .set_item(Some(item.clone()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        self.note_write(
            "PutItem",
            out.as_ref()
                .ok()
                .and_then(|o| reported(o.consumed_capacity())),
            &[&item],
            false,
            out.is_ok(),
        );
        out.map(|_| ()).map_err(|e| store_error("PutItem", &e))
    }

    async fn published_connectors(&self) -> Result<Vec<ConnectorInfo>, StoreError> {
        match self.get_item(CONNECTORS_PK, CONNECTORS_SK).await? {
            Some(item) => decode("connectors", &item),
            None => Ok(Vec::new()),
        }
    }
}

/// The connectors as the `connectors` function last published them: what the `api` function
/// lists and starts runs of. It collects nothing itself; *Run now* writes a run the
/// `connectors` function takes at its next invocation.
#[derive(Debug, Clone)]
pub struct PublishedSources(pub DynamoStore);

#[async_trait]
impl UsageSources for PublishedSources {
    async fn connectors(&self) -> Result<Vec<ConnectorInfo>, StoreError> {
        self.0.published_connectors().await
    }

    async fn collect(
        &self,
        connector: &str,
        _cursor: Option<&str>,
        _pages_done: u32,
    ) -> Result<CollectedPage, CollectFailure> {
        Err(CollectFailure::Permanent(format!(
            "connector {connector} is collected by the connectors function, not here"
        )))
    }
}
