//! Running savings totals, kept from the table's stream so a transition stays one write.
//!
//! A scope's totals are numbered cells (`savings::Contribution::cells`) on items
//! `SAV#<scope>` / `<shard>`: each candidate adds to its own shard's item of the scope
//! (everything, and its group), so a burst of closings spreads over [`SHARDS`] items instead
//! of heating one. A report queries the scope's partition (at most four items) and sums them.
//!
//! Once per candidate version: the stream's reader applies a version in one transaction with
//! a marker item (`C#<id>` / `SAV`) that must hold an older version, so a redelivered record
//! fails the condition and changes nothing.

use super::keys::*;
use super::{n, s, DynamoStore, Item, ReadKind};
use crate::error::{canceled, store_error, Canceled};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity, TransactWriteItem, Update};
use reclaim_workflow::ports::{SavingsChange, StoreError};
use reclaim_workflow::savings::Savings;

/// The sort key of the marker recording the last version applied to the totals.
pub const SAVINGS_MARKER_SK: &str = "SAV";

pub fn totals_pk(scope: &str) -> String {
    format!("SAV#{scope}")
}

pub(super) async fn record(store: &DynamoStore, change: &SavingsChange) -> Result<(), StoreError> {
    let deltas = change.deltas();
    if deltas.is_empty() {
        return Ok(());
    }
    let fail = |e: String| StoreError::Refused(format!("savings totals: {e}"));
    let marker = Update::builder()
        .table_name(store.table())
        .key(PK, s(candidate_pk(&change.candidate_id)))
        .key(SK, s(SAVINGS_MARKER_SK))
        .update_expression("SET #v = :v")
        .condition_expression("attribute_not_exists(#v) OR #v < :v")
        .expression_attribute_names("#v", VERSION)
        .expression_attribute_values(":v", n(change.version))
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let mut actions = vec![TransactWriteItem::builder().update(marker).build()];
    let shard_key = shard(&change.candidate_id).to_string();
    for (scope, cells) in &deltas {
        let mut update = Update::builder()
            .table_name(store.table())
            .key(PK, s(totals_pk(scope)))
            .key(SK, s(&shard_key));
        let mut adds = Vec::new();
        for (i, (name, v)) in cells.iter().enumerate() {
            adds.push(format!("#c{i} :c{i}"));
            update = update
                .expression_attribute_names(format!("#c{i}"), name)
                .expression_attribute_values(format!(":c{i}"), n(v));
        }
        let update = update
            .update_expression(format!("ADD {}", adds.join(", ")))
            .build()
            .map_err(|e| fail(e.to_string()))?;
        actions.push(TransactWriteItem::builder().update(update).build());
    }
    let out = store
        .client
        .transact_write_items()
        .set_transact_items(Some(actions))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await;
    store.note_write(
        "TransactWriteItems",
        out.as_ref()
            .ok()
            .and_then(|o| super::reported(o.consumed_capacity())),
        &[],
        true,
        out.is_ok(),
    );
    match out {
        Ok(_) => Ok(()),
        Err(e) => match e.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(tc)) => {
                match canceled(tc.cancellation_reasons()) {
                    // This version (or a later one) was applied already: a redelivery.
                    Canceled::ConditionFailed(0) => Ok(()),
                    other => Err(other.into_store_error("TransactWriteItems")),
                }
            }
            _ => Err(store_error("TransactWriteItems", &e)),
        },
    }
}

pub(super) async fn read(store: &DynamoStore, scope: &str) -> Result<Savings, StoreError> {
    let mut r = store
        .client
        .query()
        .table_name(store.table())
        .key_condition_expression("#pk = :pk")
        .expression_attribute_names("#pk", PK)
        .expression_attribute_values(":pk", s(totals_pk(scope)))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .map_err(|e| store_error("Query", &e))?;
    // At most one item per shard, far below a page.
    let items: Vec<Item> = r.items.take().unwrap_or_default();
    store.note_read(
        "Query",
        super::reported(r.consumed_capacity()),
        &items,
        ReadKind::Together { consistent: false },
    );
    let mut cells: Vec<(String, i64)> = Vec::new();
    for item in &items {
        for (name, v) in item {
            if name == PK || name == SK {
                continue;
            }
            if let AttributeValue::N(text) = v {
                let v = text
                    .parse::<i64>()
                    .map_err(|_| StoreError::Corrupt(format!("savings cell {name}: {text}")))?;
                cells.push((name.clone(), v));
            }
        }
    }
    Ok(Savings::from_cells(
        cells.iter().map(|(k, v)| (k.as_str(), *v)),
    ))
}
