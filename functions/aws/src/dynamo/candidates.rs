//! Candidates: reads, imports and the one conditional write of each transition.

use super::batch::{delete, put};
use super::keys::{self, *};
use super::{decode, encode, n, num_attr, reported, s, str_attr, DynamoStore, Item};
use crate::error::{canceled, store_error, Canceled, ConditionFailed};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnConsumedCapacity, ReturnValue, TransactWriteItem,
};
use reclaim_workflow::intake::looks_like_number;
use reclaim_workflow::ports::{
    CandidateFilter, CandidateRead, CandidateWrite, Change, Count, Page, PageRequest, SortKey,
    StoreError, TrailEntry,
};
use reclaim_workflow::{Candidate, Effect, Event, HistoryEntry, Timestamp, WorkNote};
use std::collections::HashSet;

/// Why a transaction wrote nothing.
enum Transact {
    Canceled(Canceled),
    Failed(StoreError),
}

/// Inserts of at most this many candidates are one transaction (atomic, and race-free against
/// another insert of the same id); larger imports go through `BatchWriteItem` (half the write
/// capacity) after checking that no id or number exists yet.
pub const TRANSACT_INSERT_MAX: usize = 10;

/// The history event of a transition that changes the candidate's user.
const USER_UPDATED: &str = "update-user";

/// DynamoDB's limit on actions in one `TransactWriteItems`.
pub const MAX_TRANSACT_ITEMS: usize = 100;

/// The candidate item: the document (without its work notes, which are items of their own),
/// its version, the index keys derived from it (never set separately, so they cannot disagree
/// with it) and the effects of the transition that produced this version.
pub(crate) fn candidate_item(c: &Candidate, effects: &[Effect]) -> Result<Item, StoreError> {
    let mut bare = c.clone();
    bare.work_notes.clear();
    let mut item = item_with_doc(&bare, effects)?;
    item.insert(NOTES_APART.into(), AttributeValue::Bool(true));
    Ok(item)
}

/// The item an import writes: notes apart as a transition writes it, unless the candidate
/// arrives with notes (imports never do today); then they stay in its document, the layout of
/// items written before notes moved, until its first transition moves them. That keeps an
/// import's write one item per candidate.
fn inserted_item(c: &Candidate) -> Result<Item, StoreError> {
    if c.work_notes.is_empty() {
        candidate_item(c, &[])
    } else {
        item_with_doc(c, &[])
    }
}

fn item_with_doc(c: &Candidate, effects: &[Effect]) -> Result<Item, StoreError> {
    let mut item = Item::new();
    item.insert(PK.into(), s(candidate_pk(&c.id)));
    item.insert(SK.into(), s(CANDIDATE_SK));
    item.insert(TYPE.into(), s("c"));
    item.insert(DOC.into(), s(encode("candidate", c)?));
    item.insert(VERSION.into(), n(c.version));
    item.insert(NUMBER.into(), s(&c.number));
    item.insert(G1PK.into(), s(state_pk(c.state, shard(&c.id))));
    item.insert(G1SK.into(), s(state_sk(c.due_at, &c.id)));
    if c.due_at.is_some() {
        item.insert(G3PK.into(), s(due_pk(shard(&c.id))));
        item.insert(G3SK.into(), s(state_sk(c.due_at, &c.id)));
    }
    if let Some(g) = &c.assignment_group {
        item.insert(G2PK.into(), s(group_pk(g)));
        item.insert(G2SK.into(), s(format!("C#{}", c.id)));
    }
    if let Some(u) = &c.user {
        item.insert(G4PK.into(), s(user_pk(&u.id)));
        item.insert(G4SK.into(), s(format!("C#{}", c.id)));
    }
    item.insert(G5PK.into(), s(publisher_pk(&c.software.publisher)));
    item.insert(G5SK.into(), s(software_sk(&c.software.product, &c.id)));
    if let Some(at) = reclaim_workflow::usage::alert_from(c) {
        item.insert(G6PK.into(), s(alert_pk(shard(&c.id))));
        item.insert(G6SK.into(), s(state_sk(Some(at), &c.id)));
    }
    if !effects.is_empty() {
        item.insert(EFFECTS.into(), s(encode("effects", &effects)?));
    }
    Ok(item)
}

/// A candidate's items in GSI7, one per order a list can be sorted by, written beside every
/// write of its candidate item (so a transition that moves it in an order moves its item).
/// Each carries the candidate's version, so a rewrite from an older read can be refused.
pub(crate) fn order_items(c: &Candidate) -> Vec<Item> {
    SortKey::ALL
        .iter()
        .map(|key| {
            let mut item = Item::new();
            item.insert(PK.into(), s(candidate_pk(&c.id)));
            item.insert(SK.into(), s(order_sk(*key)));
            item.insert(TYPE.into(), s("o"));
            item.insert(VERSION.into(), n(c.version));
            item.insert(G7PK.into(), s(order_pk(*key, c.state)));
            item.insert(G7SK.into(), s(order_key(&key.value(c), &c.number)));
            item
        })
        .collect()
}

/// Order items per candidate ([`order_items`]).
pub const ORDERS: usize = SortKey::ALL.len();

// An insert's transaction holds each candidate, its number alias and its order items.
const _: () = assert!(TRANSACT_INSERT_MAX * (2 + ORDERS) <= MAX_TRANSACT_ITEMS);

/// Candidates whose order items a rebuild writes at once.
const REINDEX_IN_FLIGHT: usize = 16;

fn order_sk_of(item: &Item) -> Result<String, StoreError> {
    str_attr(item, SK)
        .map(String::from)
        .ok_or_else(|| StoreError::Corrupt("order item without a sort key".into()))
}

fn notes_apart(item: &Item) -> bool {
    matches!(item.get(NOTES_APART), Some(AttributeValue::Bool(true)))
}

fn note_item(candidate_id: &str, sk: String, note: &WorkNote) -> Result<Item, StoreError> {
    let mut item = Item::new();
    item.insert(PK.into(), s(candidate_pk(candidate_id)));
    item.insert(SK.into(), s(sk));
    item.insert(TYPE.into(), s("w"));
    item.insert(DOC.into(), s(encode("work note", note)?));
    Ok(item)
}

/// The candidate of a partition read with `begins_with(sk, "C")`: its item, then its note
/// items in key order (the order they were added). Note items count only while the candidate
/// item says its notes are apart: an item in the older layout holds its notes in its document,
/// and notes written ahead of moving them (see `commit`) are not yet its notes.
fn assemble(items: &[Item]) -> Result<Option<Candidate>, StoreError> {
    let Some(head) = items.iter().find(|i| str_attr(i, SK) == Some(CANDIDATE_SK)) else {
        return Ok(None);
    };
    let mut c: Candidate = decode("candidate", head)?;
    if notes_apart(head) {
        for item in items {
            if str_attr(item, SK).is_some_and(|k| k.starts_with(NOTE_PREFIX)) {
                c.work_notes.push(decode("work note", item)?);
            }
        }
    }
    Ok(Some(c))
}

/// The notes a transition added: the last ones of the new candidate. Notes are append-only
/// and only a work note event adds one (`reclaim_workflow::apply`), so the count follows from
/// the history entry, and the notes before them are never written again, whether the
/// candidate was read with them (`get`) or without (`list`).
fn added_notes(change: &Change) -> &[WorkNote] {
    let added = usize::from(is_work_note(change));
    let notes = &change.candidate.work_notes;
    &notes[notes.len().saturating_sub(added)..]
}

fn is_work_note(change: &Change) -> bool {
    let work_note = Event::WorkNote {
        text: String::new(),
    }
    .name();
    change.entry.event == work_note
}

/// Why a transition's transaction did not write.
enum NotWritten {
    /// A condition failed (the candidate's version or layout, or the history entry exists)
    /// or another transaction wrote first: the caller reads to learn which.
    Lost,
    Failed(StoreError),
}

fn history_item(e: &HistoryEntry, number: &str) -> Result<Item, StoreError> {
    let mut item = Item::new();
    item.insert(PK.into(), s(candidate_pk(&e.candidate_id)));
    item.insert(SK.into(), s(history_sk(e.version)));
    item.insert(TYPE.into(), s("h"));
    item.insert(DOC.into(), s(encode("history entry", e)?));
    item.insert(NUMBER.into(), s(number));
    item.insert(
        G3PK.into(),
        s(time_pk(e.at.date_naive(), shard(&e.candidate_id))),
    );
    item.insert(G3SK.into(), s(time_sk(e.at, &e.candidate_id, e.version)));
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
    /// A candidate with its work notes: one query of its partition (more only when its notes
    /// pass a query page's 1 MB).
    async fn read_partition(&self, id: &str) -> Result<Option<Candidate>, StoreError> {
        let items = self.query_prefix(&candidate_pk(id), CANDIDATE_SK).await?;
        assemble(&items)
    }

    /// The candidate an id or a number names, reading the alias only when needed: one call
    /// by id, two by number.
    async fn read_candidate(&self, id_or_number: &str) -> Result<Option<Candidate>, StoreError> {
        if !looks_like_number(id_or_number) {
            return self.read_partition(id_or_number).await;
        }
        // Both possible keys in one round trip; an id match wins over a number match.
        let found = self
            .batch_get(vec![
                key(candidate_pk(id_or_number), CANDIDATE_SK),
                key(alias_pk(id_or_number), ALIAS_SK),
            ])
            .await?;
        if found.iter().any(|i| str_attr(i, TYPE) == Some("c")) {
            return self.read_partition(id_or_number).await;
        }
        let Some(target) = found.iter().find_map(|i| str_attr(i, TARGET)) else {
            return Ok(None);
        };
        self.read_partition(target).await
    }

    /// One transition as one `TransactWriteItems`: the candidate item on the condition that
    /// its version is still the one read and its notes are in the layout expected, the
    /// history entry on the condition that it is new, and the notes the transition added.
    /// `moved`: the notes of an item in the older layout, written apart by this transaction
    /// (those that do not fit in it were written before, see `commit`).
    async fn write_transition(
        &self,
        change: &Change,
        moved: Option<&[WorkNote]>,
    ) -> Result<(), NotWritten> {
        let fail = NotWritten::Failed;
        let c = &change.candidate;
        let candidate_item = candidate_item(c, &change.effects).map_err(fail)?;
        let layout = if moved.is_some() {
            "attribute_not_exists(#apart)"
        } else {
            "#apart = :yes"
        };
        let mut candidate = Put::builder()
            .table_name(&*self.table)
            .set_item(Some(candidate_item.clone()))
            .condition_expression(format!("#v = :expected AND {layout}"))
            .expression_attribute_names("#v", VERSION)
            .expression_attribute_names("#apart", NOTES_APART)
            .expression_attribute_values(":expected", n(change.expected_version));
        if moved.is_none() {
            candidate = candidate.expression_attribute_values(":yes", AttributeValue::Bool(true));
        }
        let candidate = candidate
            .build()
            .map_err(|e| fail(StoreError::Refused(format!("put: {e}"))))?;
        let mut entry = history_item(&change.entry, &c.number).map_err(fail)?;
        // The history item's key is its version: a repeat of the same write cannot add it twice.
        entry.insert(keys::VERSION.into(), n(change.entry.version));
        let history = Put::builder()
            .table_name(&*self.table)
            .set_item(Some(entry.clone()))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(|e| fail(StoreError::Refused(format!("put: {e}"))))?;
        let mut notes = Vec::new();
        for (i, note) in moved.unwrap_or_default().iter().enumerate() {
            notes.push(note_item(&c.id, note_sk(0, i), note).map_err(fail)?);
        }
        for (i, note) in added_notes(change).iter().enumerate() {
            notes.push(note_item(&c.id, note_sk(c.version, i), note).map_err(fail)?);
        }
        let mut actions = vec![
            TransactWriteItem::builder().put(candidate).build(),
            TransactWriteItem::builder().put(history).build(),
        ];
        // A work note moves the candidate in no order; anything else may.
        let orders = if is_work_note(change) {
            Vec::new()
        } else {
            order_items(c)
        };
        for item in notes.iter().chain(&orders) {
            let put = Put::builder()
                .table_name(&*self.table)
                .set_item(Some(item.clone()))
                .build()
                .map_err(|e| fail(StoreError::Refused(format!("put: {e}"))))?;
            actions.push(TransactWriteItem::builder().put(put).build());
        }
        // A new user (or a new name or email for one) goes into the people catalog, in the
        // same write, so a search by person finds the candidate under who it is now.
        let mut person = Vec::new();
        if change.entry.event == USER_UPDATED {
            person = super::catalog::items(std::slice::from_ref(c));
            person.retain(|item| str_attr(item, PK) == Some(PEOPLE_PK));
        }
        for item in &person {
            let put = Put::builder()
                .table_name(&*self.table)
                .set_item(Some(item.clone()))
                .build()
                .map_err(|e| fail(StoreError::Refused(format!("put: {e}"))))?;
            actions.push(TransactWriteItem::builder().put(put).build());
        }
        if actions.len() > MAX_TRANSACT_ITEMS {
            return Err(fail(StoreError::TooLarge(format!(
                "a transition of {} writing {} work notes at once",
                c.id,
                notes.len()
            ))));
        }
        let mut written = vec![&candidate_item, &entry];
        written.extend(notes.iter());
        written.extend(orders.iter());
        written.extend(person.iter());
        match self.transact(actions, &written).await {
            Ok(()) => Ok(()),
            Err(Transact::Canceled(Canceled::ConditionFailed(_) | Canceled::LostRace)) => {
                Err(NotWritten::Lost)
            }
            Err(Transact::Canceled(other)) => {
                Err(fail(other.into_store_error("TransactWriteItems")))
            }
            Err(Transact::Failed(e)) => Err(fail(e)),
        }
    }

    /// Sends one transaction and counts what it wrote. A cancellation comes back classified
    /// (what a failed condition means is the caller's to say); any other failure as the store
    /// error it is.
    async fn transact(
        &self,
        actions: Vec<TransactWriteItem>,
        written: &[&Item],
    ) -> Result<(), Transact> {
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
            written,
            true,
            out.is_ok(),
        );
        match out {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(tc)) => {
                    Err(Transact::Canceled(canceled(tc.cancellation_reasons())))
                }
                _ => Err(Transact::Failed(store_error("TransactWriteItems", &e))),
            },
        }
    }

    /// Writes notes of an older item ahead of its transition, one `PutItem` each, when they
    /// are too many for the transition's transaction. Safe to do before the transaction and
    /// to repeat: until the candidate item says its notes are apart, readers take its notes
    /// from its document and ignore these.
    async fn write_notes_ahead(&self, id: &str, notes: &[WorkNote]) -> Result<(), StoreError> {
        for (i, note) in notes.iter().enumerate() {
            let item = note_item(id, note_sk(0, i), note)?;
            let out = self
                .client
                .put_item()
                .table_name(&*self.table)
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
            out.map_err(|e| store_error("PutItem", &e))?;
        }
        Ok(())
    }

    async fn insert_transaction(&self, candidates: &[Candidate]) -> Result<(), StoreError> {
        let mut actions = Vec::with_capacity(candidates.len() * (2 + ORDERS));
        let mut items = Vec::with_capacity(candidates.len() * 2);
        for c in candidates {
            items.push(inserted_item(c)?);
            items.push(alias_item(c));
        }
        for item in &items {
            actions.push(put_if_absent(&self.table, item.clone())?);
        }
        // After the conditional puts, so a failed condition's position still names its
        // candidate.
        let orders: Vec<Item> = candidates.iter().flat_map(order_items).collect();
        for item in &orders {
            let put = Put::builder()
                .table_name(&*self.table)
                .set_item(Some(item.clone()))
                .build()
                .map_err(|e| StoreError::Refused(format!("put: {e}")))?;
            actions.push(TransactWriteItem::builder().put(put).build());
        }
        let written: Vec<&Item> = items.iter().chain(&orders).collect();
        match self.transact(actions, &written).await {
            Ok(()) => Ok(()),
            Err(Transact::Canceled(Canceled::ConditionFailed(i))) => {
                let c = candidates
                    .get(i / 2)
                    .ok_or_else(|| StoreError::Corrupt(format!("insert canceled at action {i}")))?;
                Err(StoreError::Duplicate {
                    kind: "candidate",
                    id: if i % 2 == 0 {
                        c.id.clone()
                    } else {
                        c.number.clone()
                    },
                })
            }
            Err(Transact::Canceled(other)) => Err(other.into_store_error("TransactWriteItems")),
            Err(Transact::Failed(e)) => Err(e),
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
            requests.push(put(inserted_item(c)?)?);
            requests.push(put(alias_item(c))?);
            undo.push(delete(key(candidate_pk(&c.id), CANDIDATE_SK))?);
            undo.push(delete(key(alias_pk(&c.number), ALIAS_SK))?);
            for item in order_items(c) {
                undo.push(delete(key(candidate_pk(&c.id), &order_sk_of(&item)?))?);
                requests.push(put(item)?);
            }
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

    /// A candidate's order items as of the version read, in one transaction, each on the
    /// condition that no later version wrote it (a transition writes all of them, so one
    /// refused means all are newer; a work note writes none, and moves nothing). Returns
    /// whether they were written.
    async fn write_orders(&self, c: &Candidate) -> Result<bool, StoreError> {
        let items = order_items(c);
        let mut actions = Vec::with_capacity(items.len());
        for item in &items {
            let put = Put::builder()
                .table_name(&*self.table)
                .set_item(Some(item.clone()))
                .condition_expression("attribute_not_exists(#v) OR #v <= :v")
                .expression_attribute_names("#v", VERSION)
                .expression_attribute_values(":v", n(c.version))
                .build()
                .map_err(|e| StoreError::Refused(format!("put: {e}")))?;
            actions.push(TransactWriteItem::builder().put(put).build());
        }
        let written: Vec<&Item> = items.iter().collect();
        match self.transact(actions, &written).await {
            Ok(()) => Ok(true),
            Err(Transact::Canceled(Canceled::ConditionFailed(_) | Canceled::LostRace)) => Ok(false),
            Err(Transact::Canceled(other)) => Err(other.into_store_error("TransactWriteItems")),
            Err(Transact::Failed(e)) => Err(e),
        }
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
        self.read_candidate(id).await
    }

    async fn list(
        &self,
        filter: &CandidateFilter,
        page: &PageRequest,
    ) -> Result<Page<Candidate>, StoreError> {
        super::list::list(self, filter, page).await
    }

    async fn every(&self, page: &PageRequest) -> Result<Page<Candidate>, StoreError> {
        super::list::every(self, page).await
    }

    async fn count(&self, filter: &CandidateFilter, up_to: u64) -> Result<Count, StoreError> {
        super::list::count(self, filter, up_to).await
    }

    async fn savings(
        &self,
        scope: &str,
    ) -> Result<Option<reclaim_workflow::savings::Savings>, StoreError> {
        super::totals::read(self, scope).await.map(Some)
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

    async fn history_between(
        &self,
        from: Timestamp,
        to: Timestamp,
        page: &PageRequest,
    ) -> Result<Page<TrailEntry>, StoreError> {
        super::trail::between(self, from, to, page).await
    }
}

#[async_trait]
impl CandidateWrite for DynamoStore {
    async fn record_savings(
        &self,
        changes: &[reclaim_workflow::ports::SavingsChange],
    ) -> Result<(), StoreError> {
        super::totals::record(self, changes).await
    }

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
        // The catalogs first: a search must find every candidate that exists.
        self.write_catalog(candidates).await?;
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

    async fn reindex(&self, candidates: &[Candidate]) -> Result<u64, StoreError> {
        let mut written = 0;
        for chunk in candidates.chunks(REINDEX_IN_FLIGHT) {
            let mut calls = tokio::task::JoinSet::new();
            for c in chunk {
                let (store, c) = (self.clone(), c.clone());
                calls.spawn(async move { store.write_orders(&c).await });
            }
            while let Some(joined) = calls.join_next().await {
                let wrote =
                    joined.map_err(|e| StoreError::Unavailable(format!("reindex task: {e}")))??;
                written += u64::from(wrote);
            }
        }
        Ok(written)
    }

    async fn commit(&self, change: &Change) -> Result<(), StoreError> {
        let c = &change.candidate;
        let conflict = || StoreError::Conflict {
            id: c.id.clone(),
            expected: change.expected_version,
        };
        match self.write_transition(change, None).await {
            Ok(()) => return Ok(()),
            Err(NotWritten::Failed(e)) => return Err(e),
            Err(NotWritten::Lost) => {}
        }
        // Only on the losing path: tell a missing candidate and a lost race from an item in
        // the older layout, whose notes this transition moves apart.
        let Some(stored) = self.get_item(&candidate_pk(&c.id), CANDIDATE_SK).await? else {
            return Err(StoreError::NotFound {
                kind: "candidate",
                id: c.id.clone(),
            });
        };
        if num_attr(&stored, VERSION) != Some(change.expected_version) || notes_apart(&stored) {
            return Err(conflict());
        }
        let older: Candidate = decode("candidate", &stored)?;
        // The candidate, its history entry, its order items and a person for the catalog.
        let fixed = 3 + ORDERS;
        let room =
            MAX_TRANSACT_ITEMS - fixed - added_notes(change).len().min(MAX_TRANSACT_ITEMS - fixed);
        if older.work_notes.len() > room {
            self.write_notes_ahead(&c.id, &older.work_notes).await?;
        }
        let moved = if older.work_notes.len() > room {
            &[][..]
        } else {
            &older.work_notes[..]
        };
        match self.write_transition(change, Some(moved)).await {
            Ok(()) => Ok(()),
            Err(NotWritten::Failed(e)) => Err(e),
            Err(NotWritten::Lost) => Err(conflict()),
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

    fn note(text: &str) -> WorkNote {
        WorkNote {
            at: reclaim_workflow::testing::candidate().opened_at,
            author: "person:admin".into(),
            text: text.into(),
        }
    }

    #[test]
    fn the_candidate_item_leaves_its_notes_to_note_items() {
        let mut c = reclaim_workflow::testing::candidate();
        c.work_notes = vec![note("first"), note("second")];
        let item = candidate_item(&c, &[]).unwrap();
        assert!(notes_apart(&item));
        let doc: Candidate = decode("candidate", &item).unwrap();
        assert!(doc.work_notes.is_empty());
        let items = vec![
            item,
            note_item(&c.id, note_sk(2, 0), &c.work_notes[0]).unwrap(),
            note_item(&c.id, note_sk(3, 0), &c.work_notes[1]).unwrap(),
        ];
        assert_eq!(assemble(&items).unwrap(), Some(c));
    }

    #[test]
    fn an_item_of_the_older_layout_reads_its_notes_from_its_document() {
        let mut c = reclaim_workflow::testing::candidate();
        c.work_notes = vec![note("kept in the document")];
        let older = inserted_item(&c).unwrap();
        assert!(!notes_apart(&older));
        // A note written ahead of moving the notes is not yet one of its notes.
        let ahead = note_item(&c.id, note_sk(0, 0), &c.work_notes[0]).unwrap();
        assert_eq!(assemble(&[older, ahead]).unwrap(), Some(c));
    }

    #[test]
    fn only_a_work_note_event_adds_a_note() {
        use reclaim_workflow::{apply, Actor, Principal};
        let admin = Actor::Person(Principal {
            sam_admin: true,
            ..Principal::user("admin")
        });
        let c = reclaim_workflow::testing::candidate();
        let now = c.opened_at;
        let noted = apply(
            &c,
            &Event::WorkNote {
                text: "called the user".into(),
            },
            &admin,
            now,
        )
        .unwrap();
        let change = Change {
            expected_version: c.version,
            candidate: noted.candidate.clone(),
            entry: noted.entry,
            effects: noted.effects,
        };
        assert_eq!(added_notes(&change).len(), 1);
        assert_eq!(added_notes(&change)[0].text, "called the user");
        let reclaimed = apply(&noted.candidate, &Event::Reclaim, &admin, now).unwrap();
        let change = Change {
            expected_version: noted.candidate.version,
            candidate: reclaimed.candidate,
            entry: reclaimed.entry,
            effects: reclaimed.effects,
        };
        assert!(added_notes(&change).is_empty());
    }
}
