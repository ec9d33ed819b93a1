//! Candidates: reads, imports and the one conditional write of each transition.

use super::batch::{delete, put};
use super::keys::{self, *};
use super::{decode, encode, n, num_attr, reported, s, str_attr, DynamoStore, Item};
use crate::error::{store_error, ConditionFailed};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, ReturnConsumedCapacity, ReturnValue, TransactWriteItem};
use reclaim_workflow::ports::{
    CandidateFilter, CandidateRead, CandidateWrite, Change, Page, PageRequest, StoreError,
};
use reclaim_workflow::{Candidate, Effect, HistoryEntry};
use std::collections::HashSet;

/// Inserts of at most this many candidates are one transaction (atomic, and race-free against
/// another insert of the same id); larger imports go through `BatchWriteItem` (half the write
/// capacity) after checking that no id or number exists yet.
pub const TRANSACT_INSERT_MAX: usize = 10;

/// The candidate item: the document, its version, the index keys derived from it (never set
/// separately, so they cannot disagree with it) and the effects of the transition that
/// produced this version.
pub(crate) fn candidate_item(c: &Candidate, effects: &[Effect]) -> Result<Item, StoreError> {
    let mut item = Item::new();
    item.insert(PK.into(), s(candidate_pk(&c.id)));
    item.insert(SK.into(), s(CANDIDATE_SK));
    item.insert(TYPE.into(), s("c"));
    item.insert(DOC.into(), s(encode("candidate", c)?));
    item.insert(VERSION.into(), n(c.version));
    item.insert(NUMBER.into(), s(&c.number));
    item.insert(G1PK.into(), s(state_pk(c.state, shard(&c.id))));
    item.insert(G1SK.into(), s(state_sk(c.due_at, &c.id)));
    if let Some(g) = &c.assignment_group {
        item.insert(G2PK.into(), s(group_pk(g)));
        item.insert(G2SK.into(), s(format!("C#{}", c.id)));
    }
    if !effects.is_empty() {
        item.insert(EFFECTS.into(), s(encode("effects", &effects)?));
    }
    Ok(item)
}

fn history_item(e: &HistoryEntry) -> Result<Item, StoreError> {
    let mut item = Item::new();
    item.insert(PK.into(), s(candidate_pk(&e.candidate_id)));
    item.insert(SK.into(), s(history_sk(e.version)));
    item.insert(TYPE.into(), s("h"));
    item.insert(DOC.into(), s(encode("history entry", e)?));
    Ok(item)
}

fn alias_item(c: &Candidate) -> Item {
    let mut item = Item::new();
    item.insert(PK.into(), s(alias_pk(&c.number)));
    item.insert(SK.into(), s(ALIAS_SK));
    item.insert(TYPE.into(), s("n"));
    item.insert(TARGET.into(), s(&c.id));
    item
}

/// The number counter as it stands after a write (for counting its size).
fn counter_item(last: u64) -> Item {
    let mut item = key(META_PK.to_string(), COUNTER_SK);
    item.insert(LAST.into(), n(last));
    item
}

fn key(pk: String, sk: &str) -> Item {
    Item::from([(PK.into(), s(pk)), (SK.into(), s(sk))])
}

/// `RC0000042` and the like: letters then digits. Only these can be numbers, so only these
/// cost the alias lookup.
fn looks_like_number(x: &str) -> bool {
    let digits = x.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    digits.len() < x.len() && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The numeric part of a number, so inserted numbers keep the counter ahead of them.
fn number_value(number: &str) -> Option<u64> {
    let digits = number.trim_start_matches(|c: char| !c.is_ascii_digit());
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn put_if_absent(table: &str, item: Item) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .set_item(Some(item))
        .table_name(table)
        .condition_expression("attribute_not_exists(#pk)")
        .expression_attribute_names("#pk", PK)
        .build()
        .map_err(|e| StoreError::Refused(format!("put: {e}")))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

impl DynamoStore {
    /// The candidate id a number (or an id) names, reading the alias only when needed.
    async fn resolve(&self, id_or_number: &str) -> Result<Option<Item>, StoreError> {
        if !looks_like_number(id_or_number) {
            return self
                .get_item(&candidate_pk(id_or_number), CANDIDATE_SK)
                .await;
        }
        // Both possible keys in one round trip; an id match wins over a number match.
        let found = self
            .batch_get(vec![
                key(candidate_pk(id_or_number), CANDIDATE_SK),
                key(alias_pk(id_or_number), ALIAS_SK),
            ])
            .await?;
        if let Some(c) = found
            .iter()
            .find(|i| str_attr(i, TYPE) == Some("c"))
            .cloned()
        {
            return Ok(Some(c));
        }
        let Some(target) = found.iter().find_map(|i| str_attr(i, TARGET)) else {
            return Ok(None);
        };
        self.get_item(&candidate_pk(target), CANDIDATE_SK).await
    }

    async fn insert_transaction(&self, candidates: &[Candidate]) -> Result<(), StoreError> {
        let mut actions = Vec::with_capacity(candidates.len() * 2);
        let mut items = Vec::with_capacity(candidates.len() * 2);
        for c in candidates {
            items.push(candidate_item(c, &[])?);
            items.push(alias_item(c));
        }
        for item in &items {
            actions.push(put_if_absent(&self.table, item.clone())?);
        }
        let written: Vec<&Item> = items.iter().collect();
        let out = self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        self.note_write(
            "TransactWriteItems",
            out.as_ref()
                .ok()
                .and_then(|o| reported(o.consumed_capacity())),
            &written,
            true,
            out.is_ok(),
        );
        match out {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(tc)) => {
                    let failed = tc
                        .cancellation_reasons()
                        .iter()
                        .position(|r| r.code() == Some("ConditionalCheckFailed"));
                    match failed {
                        Some(i) => {
                            let c = &candidates[i / 2];
                            Err(StoreError::Duplicate {
                                kind: "candidate",
                                id: if i % 2 == 0 {
                                    c.id.clone()
                                } else {
                                    c.number.clone()
                                },
                            })
                        }
                        None => Err(StoreError::Unavailable(format!(
                            "insert canceled: {:?}",
                            tc.cancellation_reasons()
                        ))),
                    }
                }
                _ => Err(store_error("TransactWriteItems", &e)),
            },
        }
    }

    async fn insert_batch(&self, candidates: &[Candidate]) -> Result<(), StoreError> {
        // BatchWriteItem has no conditions: check first that no id or number exists yet.
        let mut probe = Vec::with_capacity(candidates.len() * 2);
        for c in candidates {
            probe.push(key(candidate_pk(&c.id), CANDIDATE_SK));
            probe.push(key(alias_pk(&c.number), ALIAS_SK));
        }
        if let Some(existing) = self.batch_get(probe).await?.first() {
            let id = str_attr(existing, TARGET)
                .or_else(|| str_attr(existing, NUMBER))
                .unwrap_or_default()
                .to_string();
            return Err(StoreError::Duplicate {
                kind: "candidate",
                id,
            });
        }
        let mut requests = Vec::with_capacity(candidates.len() * 2);
        let mut undo = Vec::with_capacity(candidates.len() * 2);
        for c in candidates {
            requests.push(put(candidate_item(c, &[])?)?);
            requests.push(put(alias_item(c))?);
            undo.push(delete(key(candidate_pk(&c.id), CANDIDATE_SK))?);
            undo.push(delete(key(alias_pk(&c.number), ALIAS_SK))?);
        }
        if let Err(failed) = self.batch_write(requests).await {
            // All or nothing: take back the chunks that were written (best effort; a
            // failure here is logged, and the error returned is the original one).
            let written: Vec<_> = undo.into_iter().take(failed.written).collect();
            if !written.is_empty() {
                if let Err(undo_failed) = self.batch_write(written).await {
                    tracing::error!(error = %undo_failed.error, "could not undo a partial import");
                }
            }
            return Err(failed.error);
        }
        Ok(())
    }

    /// Keeps the number counter at or above the highest inserted number.
    async fn counter_at_least(&self, value: u64) -> Result<(), StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&*self.table)
            .key(PK, s(META_PK))
            .key(SK, s(COUNTER_SK))
            .update_expression("SET #last = :v")
            .condition_expression("attribute_not_exists(#last) OR #last < :v")
            .expression_attribute_names("#last", LAST)
            .expression_attribute_values(":v", n(value))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        let counter = counter_item(value);
        self.note_write(
            "UpdateItem",
            out.as_ref()
                .ok()
                .and_then(|o| reported(o.consumed_capacity())),
            &[&counter],
            false,
            out.is_ok(),
        );
        match out {
            Ok(_) => Ok(()),
            Err(e) if e.is_condition_failed() => Ok(()),
            Err(e) => Err(store_error("UpdateItem", &e)),
        }
    }
}

#[async_trait]
impl CandidateRead for DynamoStore {
    async fn get(&self, id: &str) -> Result<Option<Candidate>, StoreError> {
        self.resolve(id)
            .await?
            .map(|item| decode("candidate", &item))
            .transpose()
    }

    async fn list(
        &self,
        filter: &CandidateFilter,
        page: &PageRequest,
    ) -> Result<Page<Candidate>, StoreError> {
        super::list::list(self, filter, page).await
    }

    async fn history(&self, id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        let mut items = self.query_prefix(&candidate_pk(id), "H#").await?;
        if items.is_empty() && looks_like_number(id) {
            if let Some(alias) = self.get_item(&alias_pk(id), ALIAS_SK).await? {
                if let Some(target) = str_attr(&alias, TARGET) {
                    items = self.query_prefix(&candidate_pk(target), "H#").await?;
                }
            }
        }
        items.iter().map(|i| decode("history entry", i)).collect()
    }
}

#[async_trait]
impl CandidateWrite for DynamoStore {
    async fn insert(&self, candidates: &[Candidate]) -> Result<(), StoreError> {
        let mut ids = HashSet::new();
        let mut numbers = HashSet::new();
        for c in candidates {
            if !ids.insert(c.id.as_str()) {
                return Err(StoreError::Duplicate {
                    kind: "candidate",
                    id: c.id.clone(),
                });
            }
            if !numbers.insert(c.number.as_str()) {
                return Err(StoreError::Duplicate {
                    kind: "candidate number",
                    id: c.number.clone(),
                });
            }
        }
        if candidates.is_empty() {
            return Ok(());
        }
        if candidates.len() <= TRANSACT_INSERT_MAX {
            self.insert_transaction(candidates).await?;
        } else {
            self.insert_batch(candidates).await?;
        }
        if let Some(highest) = candidates
            .iter()
            .filter_map(|c| number_value(&c.number))
            .max()
        {
            self.counter_at_least(highest).await?;
        }
        Ok(())
    }

    async fn allocate_numbers(&self, count: u32) -> Result<u64, StoreError> {
        let count = count.max(1);
        let out = self
            .client
            .update_item()
            .table_name(&*self.table)
            .key(PK, s(META_PK))
            .key(SK, s(COUNTER_SK))
            .update_expression("ADD #last :n")
            .expression_attribute_names("#last", LAST)
            .expression_attribute_values(":n", n(count))
            .return_values(ReturnValue::UpdatedNew)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| store_error("UpdateItem", &e))?;
        let last = out
            .attributes
            .as_ref()
            .and_then(|a| num_attr(a, LAST))
            .ok_or_else(|| StoreError::Corrupt("the number counter returned no value".into()))?;
        self.note_write(
            "UpdateItem",
            reported(out.consumed_capacity()),
            &[&counter_item(last)],
            false,
            true,
        );
        Ok(last + 1 - u64::from(count))
    }

    async fn commit(&self, change: &Change) -> Result<(), StoreError> {
        let c = &change.candidate;
        let candidate_item = candidate_item(c, &change.effects)?;
        let candidate = Put::builder()
            .table_name(&*self.table)
            .set_item(Some(candidate_item.clone()))
            .condition_expression("#v = :expected")
            .expression_attribute_names("#v", VERSION)
            .expression_attribute_values(":expected", n(change.expected_version))
            .build()
            .map_err(|e| StoreError::Refused(format!("put: {e}")))?;
        let mut entry = history_item(&change.entry)?;
        // The history item's key is its version: a repeat of the same write cannot add it twice.
        entry.insert(keys::VERSION.into(), n(change.entry.version));
        let history = Put::builder()
            .table_name(&*self.table)
            .set_item(Some(entry.clone()))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(|e| StoreError::Refused(format!("put: {e}")))?;
        let out = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(candidate).build())
            .transact_items(TransactWriteItem::builder().put(history).build())
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        self.note_write(
            "TransactWriteItems",
            out.as_ref()
                .ok()
                .and_then(|o| reported(o.consumed_capacity())),
            &[&candidate_item, &entry],
            true,
            out.is_ok(),
        );
        match out {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(tc)) => {
                    let lost = tc.cancellation_reasons().iter().any(|r| {
                        matches!(
                            r.code(),
                            Some("ConditionalCheckFailed") | Some("TransactionConflict")
                        )
                    });
                    if !lost {
                        return Err(StoreError::Unavailable(format!(
                            "transition canceled: {:?}",
                            tc.cancellation_reasons()
                        )));
                    }
                    // Only on the losing path: tell a missing candidate from a lost race.
                    match self.get_item(&candidate_pk(&c.id), CANDIDATE_SK).await? {
                        None => Err(StoreError::NotFound {
                            kind: "candidate",
                            id: c.id.clone(),
                        }),
                        Some(_) => Err(StoreError::Conflict {
                            id: c.id.clone(),
                            expected: change.expected_version,
                        }),
                    }
                }
                _ => Err(store_error("TransactWriteItems", &e)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_told_from_ids() {
        assert!(looks_like_number("RC0000042"));
        assert!(!looks_like_number("c-1"));
        assert!(!looks_like_number("0000042"));
        assert!(!looks_like_number("RC"));
        assert!(!looks_like_number("5f0e9a1c-3b1d-4e2a-9c1f-0d5a9b7e6c21"));
        assert_eq!(number_value("RC0000042"), Some(42));
        assert_eq!(number_value("x"), None);
    }

    #[test]
    fn the_candidate_item_carries_index_keys_and_effects() {
        let mut c = reclaim_workflow::testing::candidate();
        c.due_at = Some(c.opened_at);
        let item = candidate_item(&c, &[]).unwrap();
        assert_eq!(str_attr(&item, PK), Some("C#c-1"));
        assert_eq!(
            str_attr(&item, G1PK).map(String::from),
            Some(state_pk(c.state, shard("c-1")))
        );
        assert!(str_attr(&item, G1SK).is_some_and(|k| k.ends_with("#c-1")));
        assert_eq!(str_attr(&item, G2PK), Some("G#approvers"));
        assert!(!item.contains_key(EFFECTS), "no effects, no attribute");
        let back: Candidate = decode("candidate", &item).unwrap();
        assert_eq!(back, c);
    }
}
