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
mod directory;
pub mod keys;
mod list;
pub mod table;
mod tasks;

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
}

/// DynamoDB calls made and capacity consumed (`ReturnConsumedCapacity`), for the benchmark
/// and for logs: the design target is one write call per transition and at most one read.
#[derive(Debug, Default)]
pub struct CallStats {
    reads: AtomicU64,
    writes: AtomicU64,
    /// Capacity units times 1000 (atomics hold integers).
    rcu_milli: AtomicU64,
    wcu_milli: AtomicU64,
}

/// A copy of [`CallStats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CallCounts {
    pub reads: u64,
    pub writes: u64,
    pub read_units: f64,
    pub write_units: f64,
}

impl CallCounts {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &CallCounts) -> CallCounts {
        CallCounts {
            reads: self.reads - earlier.reads,
            writes: self.writes - earlier.writes,
            read_units: self.read_units - earlier.read_units,
            write_units: self.write_units - earlier.write_units,
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

impl CallStats {
    pub(crate) fn read(&self, consumed: f64) {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.rcu_milli.fetch_add(milli(consumed), Ordering::Relaxed);
    }

    pub(crate) fn write(&self, consumed: f64) {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.wcu_milli.fetch_add(milli(consumed), Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> CallCounts {
        CallCounts {
            reads: self.reads.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            read_units: self.rcu_milli.load(Ordering::Relaxed) as f64 / 1000.0,
            write_units: self.wcu_milli.load(Ordering::Relaxed) as f64 / 1000.0,
        }
    }
}

/// Sums the capacity of a response's `ConsumedCapacity` entries.
pub(crate) fn units<'a>(
    consumed: impl IntoIterator<Item = &'a aws_sdk_dynamodb::types::ConsumedCapacity>,
) -> f64 {
    consumed
        .into_iter()
        .map(|c| c.capacity_units().unwrap_or_default())
        .sum()
}

impl DynamoStore {
    /// A store over `table`, which must exist (see [`table::create`] for its definition).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: Arc::from(table.into()),
            stats: Arc::new(CallStats::default()),
        }
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
        self.stats.read(units(out.consumed_capacity()));
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
            let resp = self
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
            self.stats.read(units(resp.consumed_capacity()));
            out.extend(resp.items.unwrap_or_default());
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
