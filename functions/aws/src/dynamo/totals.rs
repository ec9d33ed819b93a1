//! Running savings totals, kept from the table's stream so a transition stays one write.
//!
//! A scope's totals are numbered cells (`savings::Contribution::cells`) on items
//! `SAV#<scope>` / `F#<family>#<shard>`, one per family of cells (the totals, the months, each
//! publisher, product and reason), so a large catalogue spreads over many small items. Each
//! candidate adds to its own shard's items of the scope (everything, and its group), so a burst
//! of closings spreads over [`SHARDS`] items instead of heating one. A report queries the
//! scope's partition and sums what it reads.
//!
//! Each candidate's marker (`C#<id>` / `SAV`) records the version and the contribution it
//! last added, and every change to the totals is one transaction: the cells' difference
//! between the recorded contribution and the new one, with the marker updated on condition
//! that it still holds the version read. So the totals always equal the sum of the markers:
//! a redelivered record finds its version recorded and changes nothing, a record lost to a
//! permanent error is made good by the candidate's next one, and a rebuild
//! ([`DynamoStore::rebuild_savings`]) brings every marker up to date. A batch's markers are
//! read in one `BatchGetItem`, so a redelivered batch costs that read and no write.

use super::keys::*;
use super::{n, s, DynamoStore, Item};
use crate::error::{canceled, store_error, Canceled};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity, TransactWriteItem, Update};
use reclaim_workflow::ports::{SavingsChange, SavingsPart, ScopeCells, StoreError};
use reclaim_workflow::savings::Savings;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The sort key of the marker recording what a candidate adds to the totals.
pub const SAVINGS_MARKER_SK: &str = "SAV";
/// The marker's attribute holding the recorded contribution (JSON; absent when it adds nothing).
const ADDS: &str = "adds";

/// The sort keys of a scope's cells: `F#<family>#<shard>`.
const CELLS_PREFIX: &str = "F#";

/// The family a cell belongs to (`t`, `M`, `P|<publisher>`, `R|<product>`, `J|<reason>`):
/// its name without the basis and the field (or the month) at its end.
fn family(cell: &str) -> &str {
    cell.rsplitn(3, '|').nth(2).unwrap_or(cell)
}

pub fn totals_pk(scope: &str) -> String {
    format!("SAV#{scope}")
}

/// What a marker says was added, as of which version.
struct Recorded {
    version: u64,
    adds: Option<SavingsPart>,
}

pub(super) async fn record(
    store: &DynamoStore,
    changes: &[SavingsChange],
) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut asked = HashSet::new();
    let ids: Vec<&str> = changes
        .iter()
        .map(|c| c.candidate_id.as_str())
        .filter(|id| asked.insert(*id))
        .collect();
    let mut recorded = markers(store, &ids).await?;
    for change in changes {
        // Another writer can move a marker between the read and the write (a rebuild beside
        // the stream): read it again and work the difference out anew.
        let mut attempts = 0;
        loop {
            let before = recorded.get(&change.candidate_id);
            if let Some(r) = before {
                // A version the marker has passed, or the one it holds with the same contribution.
                if r.version > change.version
                    || (r.version == change.version && r.adds == change.adds)
                {
                    break;
                }
            }
            let deltas = change.deltas(before.and_then(|r| r.adds.as_ref()));
            if deltas.is_empty() {
                break;
            }
            match apply(store, change, before.map(|r| r.version), &deltas).await {
                Ok(()) => {
                    recorded.insert(
                        change.candidate_id.clone(),
                        Recorded {
                            version: change.version,
                            adds: change.adds.clone(),
                        },
                    );
                    break;
                }
                Err(StoreError::Conflict { .. }) if attempts < 3 => {
                    attempts += 1;
                    recorded.remove(&change.candidate_id);
                    recorded.extend(markers(store, &[change.candidate_id.as_str()]).await?);
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// The markers of `ids`, by candidate id (none for a candidate that adds nothing yet).
async fn markers(
    store: &DynamoStore,
    ids: &[&str],
) -> Result<HashMap<String, Recorded>, StoreError> {
    let keys: Vec<Item> = ids
        .iter()
        .map(|id| {
            Item::from([
                (PK.to_string(), s(candidate_pk(id))),
                (SK.to_string(), s(SAVINGS_MARKER_SK)),
            ])
        })
        .collect();
    let mut recorded = HashMap::new();
    for item in store.batch_get(keys).await? {
        let Some(AttributeValue::S(pk)) = item.get(PK) else {
            continue;
        };
        let Some(id) = pk.strip_prefix("C#") else {
            continue;
        };
        let corrupt = |what: &str| StoreError::Corrupt(format!("savings marker of {id}: {what}"));
        let version = match item.get(VERSION) {
            Some(AttributeValue::N(v)) => v.parse::<u64>().map_err(|_| corrupt(v))?,
            _ => return Err(corrupt("no version")),
        };
        let adds = match item.get(ADDS) {
            Some(AttributeValue::S(doc)) => {
                Some(serde_json::from_str(doc).map_err(|e| corrupt(&e.to_string()))?)
            }
            _ => None,
        };
        recorded.insert(id.to_string(), Recorded { version, adds });
    }
    Ok(recorded)
}

/// The cells' difference and the new marker, in one transaction that holds only while the
/// marker still says `was` (`None`: no marker yet).
async fn apply(
    store: &DynamoStore,
    change: &SavingsChange,
    was: Option<u64>,
    deltas: &ScopeCells,
) -> Result<(), StoreError> {
    let fail = |e: String| StoreError::Refused(format!("savings totals: {e}"));
    let mut marker = Update::builder()
        .table_name(store.table())
        .key(PK, s(candidate_pk(&change.candidate_id)))
        .key(SK, s(SAVINGS_MARKER_SK))
        .expression_attribute_names("#v", VERSION)
        .expression_attribute_names("#a", ADDS)
        .expression_attribute_values(":v", n(change.version));
    marker = match &change.adds {
        Some(adds) => marker
            .update_expression("SET #v = :v, #a = :a")
            .expression_attribute_values(
                ":a",
                s(serde_json::to_string(adds).map_err(|e| fail(e.to_string()))?),
            ),
        None => marker.update_expression("SET #v = :v REMOVE #a"),
    };
    marker = match was {
        Some(was) => marker
            .condition_expression("#v = :was")
            .expression_attribute_values(":was", n(was)),
        None => marker.condition_expression("attribute_not_exists(#v)"),
    };
    let marker = marker.build().map_err(|e| fail(e.to_string()))?;
    let mut actions = vec![TransactWriteItem::builder().update(marker).build()];
    let shard_key = shard(&change.candidate_id);
    for (scope, cells) in deltas {
        // One item per family of cells, so a large catalogue spreads over many small items
        // instead of outgrowing DynamoDB's 400 KB per item.
        let mut families: BTreeMap<&str, Vec<(&String, &i64)>> = BTreeMap::new();
        for (name, v) in cells {
            families.entry(family(name)).or_default().push((name, v));
        }
        for (family, cells) in families {
            let mut update = Update::builder()
                .table_name(store.table())
                .key(PK, s(totals_pk(scope)))
                .key(SK, s(format!("{CELLS_PREFIX}{family}#{shard_key}")));
            let mut adds = Vec::new();
            for (i, (name, v)) in cells.iter().enumerate() {
                adds.push(format!("#c{i} :c{i}"));
                update = update
                    .expression_attribute_names(format!("#c{i}"), *name)
                    .expression_attribute_values(format!(":c{i}"), n(v));
            }
            let update = update
                .update_expression(format!("ADD {}", adds.join(", ")))
                .build()
                .map_err(|e| fail(e.to_string()))?;
            actions.push(TransactWriteItem::builder().update(update).build());
        }
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
                    // Another reader moved the marker since it was read (a rebuild beside the
                    // stream): the batch is read again.
                    Canceled::ConditionFailed(0) => Err(StoreError::Conflict {
                        id: change.candidate_id.clone(),
                        expected: was.unwrap_or(0),
                    }),
                    other => Err(other.into_store_error("TransactWriteItems")),
                }
            }
            _ => Err(store_error("TransactWriteItems", &e)),
        },
    }
}

pub(super) async fn read(store: &DynamoStore, scope: &str) -> Result<Savings, StoreError> {
    // A few items per family of cells and shard: bounded by the catalogue, not the candidates.
    let items = store.query_prefix(&totals_pk(scope), CELLS_PREFIX).await?;
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

#[cfg(test)]
mod tests {
    use super::family;

    #[test]
    fn a_cell_belongs_to_the_family_before_its_basis_and_field() {
        assert_eq!(family("t|y|p"), "t");
        assert_eq!(family("M|y|2026-03"), "M");
        assert_eq!(family("P|Adobe|o|a"), "P|Adobe");
        assert_eq!(
            family("R|Adobe / Acrobat | Pro|y|c"),
            "R|Adobe / Acrobat | Pro"
        );
    }
}
