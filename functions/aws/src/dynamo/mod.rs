//! The DynamoDB store: one table behind every store port of the core ([`CandidateRead`],
//! [`CandidateWrite`], [`TaskStore`], [`Directory`], [`RuleStore`]).
//!
//! Records are kept as the same JSON documents every adapter stores (attribute `doc`), with
//! the few attributes the keys and indexes need beside them; [`keys`] describes the layout.
//!
//! [`CandidateRead`]: reclaim_workflow::ports::CandidateRead
//! [`CandidateWrite`]: reclaim_workflow::ports::CandidateWrite
//! [`TaskStore`]: reclaim_workflow::ports::TaskStore
//! [`Directory`]: reclaim_workflow::ports::Directory
//! [`RuleStore`]: reclaim_workflow::ports::RuleStore

pub mod batch;
mod candidates;
pub mod capacity;
mod catalog;
mod directory;
pub mod keys;
mod list;
mod runs;
pub use runs::PublishedSources;
mod sessions;
pub mod table;
mod tasks;
mod totals;
mod trail;

use crate::calls::Recording;
use crate::error::store_error;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use reclaim_workflow::ports::StoreError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// The store over one table. Cheap to clone: the SDK client is shared.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: Arc<str>,
    stats: Arc<CallStats>,
    /// A filtered, sorted list with at most this many matches is cut from them in memory
    /// (one read of the filter's own index); more are read in order from `by-order`.
    sort_in_memory_up_to: usize,
    /// What one page read from `by-order` may cost: index reads, candidates examined.
    sorted_page_budget: (usize, usize),
}

/// DynamoDB calls made and capacity consumed, for the benchmark and for logs: the design
/// target is one write call per transition and at most one read. Every call on the
/// transition path asks for `ReturnConsumedCapacity` and is counted here with what the service
/// reported and what [`capacity`] computes from the items' sizes.
#[derive(Debug, Default)]
pub struct CallStats {
    reads: AtomicU64,
    writes: AtomicU64,
    /// Capacity units times 1000 (atomics hold integers): reported, then computed.
    rcu_milli: AtomicU64,
    wcu_milli: AtomicU64,
    computed_rcu_milli: AtomicU64,
    computed_wcu_milli: AtomicU64,
    /// Every call, kept only while [`DynamoStore::record_calls`] is on (the benchmark).
    log: Recording<CallRecord>,
}

/// One DynamoDB call, as [`DynamoStore::take_calls`] returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct CallRecord {
    /// The API action (`GetItem`, `TransactWriteItems`, ...).
    pub op: &'static str,
    pub write: bool,
    /// What the response's `ConsumedCapacity` said; `None` when it had none.
    pub reported: Option<f64>,
    /// What the documented rules give for the items involved ([`capacity`]).
    pub computed: f64,
    /// The keys (`pk`/`sk`) and sizes of the items written or read.
    pub items: Vec<(String, usize)>,
    /// False when the service refused the call (a failed condition still costs capacity).
    pub ok: bool,
}

/// A copy of [`CallStats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CallCounts {
    pub reads: u64,
    pub writes: u64,
    /// Capacity the service reported.
    pub read_units: f64,
    pub write_units: f64,
    /// Capacity computed from item sizes.
    pub computed_read_units: f64,
    pub computed_write_units: f64,
}

impl CallCounts {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &CallCounts) -> CallCounts {
        CallCounts {
            reads: self.reads - earlier.reads,
            writes: self.writes - earlier.writes,
            read_units: self.read_units - earlier.read_units,
            write_units: self.write_units - earlier.write_units,
            computed_read_units: self.computed_read_units - earlier.computed_read_units,
            computed_write_units: self.computed_write_units - earlier.computed_write_units,
        }
    }
}

fn milli(units: f64) -> u64 {
    if units.is_finite() && units > 0.0 {
        (units * 1000.0).round() as u64
    } else {
        0
    }
}

fn units_of(milli: &AtomicU64) -> f64 {
    milli.load(Ordering::Relaxed) as f64 / 1000.0
}

impl CallStats {
    /// A write whose items are unknown here: counted with the reported capacity only.
    pub(crate) fn write(&self, consumed: f64) {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.wcu_milli.fetch_add(milli(consumed), Ordering::Relaxed);
    }

    fn record(&self, rec: CallRecord) {
        let (count, reported, computed) = if rec.write {
            (&self.writes, &self.wcu_milli, &self.computed_wcu_milli)
        } else {
            (&self.reads, &self.rcu_milli, &self.computed_rcu_milli)
        };
        count.fetch_add(1, Ordering::Relaxed);
        reported.fetch_add(milli(rec.reported.unwrap_or_default()), Ordering::Relaxed);
        computed.fetch_add(milli(rec.computed), Ordering::Relaxed);
        self.log.push(rec);
    }

    pub fn snapshot(&self) -> CallCounts {
        CallCounts {
            reads: self.reads.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            read_units: units_of(&self.rcu_milli),
            write_units: units_of(&self.wcu_milli),
            computed_read_units: units_of(&self.computed_rcu_milli),
            computed_write_units: units_of(&self.computed_wcu_milli),
        }
    }
}

/// Sums the capacity of a response's `ConsumedCapacity` entries.
pub(crate) fn units<'a>(
    consumed: impl IntoIterator<Item = &'a aws_sdk_dynamodb::types::ConsumedCapacity>,
) -> f64 {
    reported(consumed).unwrap_or_default()
}

/// The capacity a response reports, or `None` when it carries no `ConsumedCapacity` at all
/// (the emulator answers `TransactWriteItems` so).
pub(crate) fn reported<'a>(
    consumed: impl IntoIterator<Item = &'a aws_sdk_dynamodb::types::ConsumedCapacity>,
) -> Option<f64> {
    let mut any = false;
    let total = consumed
        .into_iter()
        .map(|c| {
            any = true;
            c.capacity_units().unwrap_or_default()
        })
        .sum();
    any.then_some(total)
}

fn item_key(item: &Item) -> String {
    format!(
        "{}/{}",
        str_attr(item, keys::PK).unwrap_or_default(),
        str_attr(item, keys::SK).unwrap_or_default()
    )
}

/// How a read is charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadKind {
    /// `GetItem` / `BatchGetItem`: each item rounded on its own.
    PerItem { consistent: bool },
    /// `Query` / `Scan`: the sum of the items read, rounded once.
    Together { consistent: bool },
}

impl DynamoStore {
    /// A store over `table`, which must exist (see [`table::create`] for its definition).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: Arc::from(table.into()),
            stats: Arc::new(CallStats::default()),
            sort_in_memory_up_to: list::SORT_UP_TO,
            sorted_page_budget: list::SORTED_PAGE_BUDGET,
        }
    }

    /// Changes what one page read from `by-order` may cost (index reads, candidates
    /// examined) before it ends early with a cursor from where it stopped; tests use it to
    /// cut pages short with a few candidates.
    pub fn with_sorted_page_budget(mut self, reads: usize, examined: usize) -> Self {
        self.sorted_page_budget = (reads.max(1), examined.max(1));
        self
    }

    /// Changes how many matches a filtered, sorted list sorts in memory before it reads the
    /// order's index instead (0: always the index). Both give the same pages; tests use it to
    /// reach the index path with a few candidates.
    pub fn with_sort_in_memory_up_to(mut self, n: usize) -> Self {
        self.sort_in_memory_up_to = n;
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Calls and capacity so far (all clones of this store share the counters).
    pub fn stats(&self) -> CallCounts {
        self.stats.snapshot()
    }

    /// Starts keeping every call for [`DynamoStore::take_calls`] (off by default, so a
    /// long-lived function does not accumulate a log).
    pub fn record_calls(&self) {
        self.stats.log.start();
    }

    /// The calls kept since the last take.
    pub fn take_calls(&self) -> Vec<CallRecord> {
        self.stats.log.take()
    }

    /// Counts a read call and the items it returned.
    pub(crate) fn note_read(
        &self,
        op: &'static str,
        reported: Option<f64>,
        items: &[Item],
        kind: ReadKind,
    ) {
        let sizes: Vec<(String, usize)> = items
            .iter()
            .map(|i| (item_key(i), capacity::item_bytes(i)))
            .collect();
        let computed = match kind {
            ReadKind::PerItem { consistent } if !sizes.is_empty() => sizes
                .iter()
                .map(|(_, b)| capacity::read_units(*b, consistent))
                .sum(),
            ReadKind::PerItem { consistent } => capacity::read_units(0, consistent),
            ReadKind::Together { consistent } => {
                capacity::read_units(sizes.iter().map(|(_, b)| b).sum(), consistent)
            }
        };
        self.stats.record(CallRecord {
            op,
            write: false,
            reported,
            computed,
            items: sizes,
            ok: true,
        });
    }

    /// Counts a write call and the items it wrote (or tried to: `ok` false).
    pub(crate) fn note_write(
        &self,
        op: &'static str,
        reported: Option<f64>,
        items: &[&Item],
        transactional: bool,
        ok: bool,
    ) {
        let sizes: Vec<(String, usize)> = items
            .iter()
            .map(|i| (item_key(i), capacity::item_bytes(i)))
            .collect();
        let computed = sizes
            .iter()
            .map(|(_, b)| capacity::write_units(*b, transactional))
            .sum();
        self.stats.record(CallRecord {
            op,
            write: true,
            reported,
            computed,
            items: sizes,
            ok,
        });
    }

    /// Sends one eventually consistent index query and records it: its items, and where a
    /// next read of the same range starts (`None` once the range is read to its end). The
    /// listings send several at once, each through this.
    pub(crate) async fn index_read(
        &self,
        query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let mut r = query.send().await.map_err(|e| store_error("Query", &e))?;
        let items = r.items.take().unwrap_or_default();
        self.note_read(
            "Query",
            reported(r.consumed_capacity()),
            &items,
            ReadKind::Together { consistent: false },
        );
        Ok((items, r.last_evaluated_key.filter(|k| !k.is_empty())))
    }

    /// A consistent read of one item.
    pub(crate) async fn get_item(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&*self.table)
            .key(keys::PK, s(pk))
            .key(keys::SK, s(sk))
            .consistent_read(true)
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| store_error("GetItem", &e))?;
        self.note_read(
            "GetItem",
            reported(out.consumed_capacity()),
            out.item.as_slice(),
            ReadKind::PerItem { consistent: true },
        );
        Ok(out.item)
    }

    /// Every item of a partition whose sort key starts with `prefix`, following pages.
    pub(crate) async fn query_prefix(
        &self,
        pk: &str,
        prefix: &str,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut resp = self
                .client
                .query()
                .table_name(&*self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", keys::PK)
                .expression_attribute_names("#sk", keys::SK)
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":prefix", s(prefix))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| store_error("Query", &e))?;
            let items = resp.items.take().unwrap_or_default();
            self.note_read(
                "Query",
                reported(resp.consumed_capacity()),
                &items,
                ReadKind::Together { consistent: true },
            );
            out.extend(items);
            match resp.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The record of an item, decoded from its `doc`.
pub(crate) fn decode<T: DeserializeOwned>(what: &str, item: &Item) -> Result<T, StoreError> {
    let doc = str_attr(item, keys::DOC)
        .ok_or_else(|| StoreError::Corrupt(format!("{what} item without a document")))?;
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

pub(crate) fn encode<T: Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

pub(crate) fn str_attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

pub(crate) fn num_attr(item: &Item, name: &str) -> Option<u64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}
