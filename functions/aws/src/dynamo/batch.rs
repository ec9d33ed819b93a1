//! Bulk writes and reads within DynamoDB's limits, enforced here rather than trusted to the
//! service (emulators accept oversized batches that AWS refuses): at most
//! [`MAX_BATCH_WRITE`] requests per `BatchWriteItem` and [`MAX_BATCH_GET`] keys per
//! `BatchGetItem`, with unprocessed items retried with exponential backoff and jitter.

use super::{reported, DynamoStore, Item, ReadKind};
use crate::error::store_error;
use aws_sdk_dynamodb::types::{
    DeleteRequest, KeysAndAttributes, PutRequest, ReturnConsumedCapacity, WriteRequest,
};
use rand::Rng;
use reclaim_workflow::ports::StoreError;
use std::collections::HashMap;
use std::time::Duration;

/// DynamoDB's limit on requests in one `BatchWriteItem`.
pub const MAX_BATCH_WRITE: usize = 25;
/// DynamoDB's limit on keys in one `BatchGetItem`.
pub const MAX_BATCH_GET: usize = 100;
/// Rounds of retrying unprocessed items before the batch is reported as unavailable.
pub const MAX_ROUNDS: u32 = 8;

/// Splits `items` into consecutive chunks of at most `size` (the last one may be shorter);
/// never an empty chunk.
pub fn chunks<T: Clone>(items: &[T], size: usize) -> Vec<Vec<T>> {
    items.chunks(size.max(1)).map(<[T]>::to_vec).collect()
}

/// The delay before retry round `round` (1-based): 50 ms doubling, capped at 3.2 s, with
/// full jitter so many writers that were throttled together do not retry together.
pub fn backoff(round: u32) -> Duration {
    let cap_ms = 50u64.saturating_mul(1 << round.min(6));
    let ms = rand::thread_rng().gen_range(cap_ms / 2..=cap_ms);
    Duration::from_millis(ms)
}

pub fn put(item: Item) -> Result<WriteRequest, StoreError> {
    let put = PutRequest::builder()
        .set_item(Some(item))
        .build()
        .map_err(|e| StoreError::Refused(format!("put request: {e}")))?;
    Ok(WriteRequest::builder().put_request(put).build())
}

pub fn delete(key: Item) -> Result<WriteRequest, StoreError> {
    let del = DeleteRequest::builder()
        .set_key(Some(key))
        .build()
        .map_err(|e| StoreError::Refused(format!("delete request: {e}")))?;
    Ok(WriteRequest::builder().delete_request(del).build())
}

impl DynamoStore {
    /// Writes every request, [`MAX_BATCH_WRITE`] at a time, retrying what the service left
    /// unprocessed. Returns how many chunks were fully written before a failure, so the
    /// caller can undo them.
    pub(crate) async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), BatchFailed> {
        for (done, chunk) in chunks(&requests, MAX_BATCH_WRITE).into_iter().enumerate() {
            self.write_chunk(chunk).await.map_err(|error| BatchFailed {
                written: done * MAX_BATCH_WRITE,
                error,
            })?;
        }
        Ok(())
    }

    async fn write_chunk(&self, chunk: Vec<WriteRequest>) -> Result<(), StoreError> {
        let mut pending = chunk;
        for round in 0..=MAX_ROUNDS {
            if round > 0 {
                tokio::time::sleep(backoff(round)).await;
            }
            let out = self
                .client
                .batch_write_item()
                .request_items(&*self.table, pending.clone())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| store_error("BatchWriteItem", &e))?;
            let written: Vec<&Item> = pending
                .iter()
                .filter_map(|r| {
                    r.put_request()
                        .map(|p| p.item())
                        .or_else(|| r.delete_request().map(|d| d.key()))
                })
                .collect();
            self.note_write(
                "BatchWriteItem",
                reported(out.consumed_capacity()),
                &written,
                false,
                true,
            );
            let left = out
                .unprocessed_items
                .and_then(|mut m| m.remove(&*self.table))
                .unwrap_or_default();
            if left.is_empty() {
                return Ok(());
            }
            tracing::debug!(left = left.len(), round, "unprocessed items; retrying");
            pending = left;
        }
        Err(StoreError::Unavailable(format!(
            "BatchWriteItem: {} items still unprocessed after {MAX_ROUNDS} retries",
            pending.len()
        )))
    }

    /// Consistent reads of many keys, [`MAX_BATCH_GET`] at a time; returns the items found
    /// (in no particular order).
    pub(crate) async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        for chunk in chunks(&keys, MAX_BATCH_GET) {
            let mut pending = Some(chunk);
            let mut round = 0;
            while let Some(keys) = pending.take().filter(|k| !k.is_empty()) {
                if round > MAX_ROUNDS {
                    return Err(StoreError::Unavailable(
                        "BatchGetItem: keys still unprocessed after retries".into(),
                    ));
                }
                if round > 0 {
                    tokio::time::sleep(backoff(round)).await;
                }
                round += 1;
                let ka = KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Refused(format!("batch get: {e}")))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&*self.table, ka)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(|e| store_error("BatchGetItem", &e))?;
                let items = out
                    .responses
                    .and_then(|mut r: HashMap<String, Vec<Item>>| r.remove(&*self.table))
                    .unwrap_or_default();
                self.note_read(
                    "BatchGetItem",
                    reported(out.consumed_capacity.as_deref().unwrap_or_default()),
                    &items,
                    ReadKind::PerItem { consistent: true },
                );
                found.extend(items);
                pending = out
                    .unprocessed_keys
                    .and_then(|mut m| m.remove(&*self.table))
                    .map(|ka| ka.keys);
            }
        }
        Ok(found)
    }
}

/// A bulk write stopped part way.
#[derive(Debug)]
pub(crate) struct BatchFailed {
    /// Requests written (whole chunks) before the failure.
    pub written: usize,
    pub error: StoreError,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_never_exceed_the_limit_and_keep_every_item_in_order() {
        for n in [0usize, 1, 24, 25, 26, 49, 50, 51, 1000] {
            let items: Vec<usize> = (0..n).collect();
            let cs = chunks(&items, MAX_BATCH_WRITE);
            assert!(cs
                .iter()
                .all(|c| !c.is_empty() && c.len() <= MAX_BATCH_WRITE));
            assert_eq!(cs.len(), n.div_ceil(MAX_BATCH_WRITE));
            assert_eq!(cs.concat(), items, "n = {n}");
        }
        assert_eq!(chunks(&[1, 2, 3], 0), vec![vec![1], vec![2], vec![3]]);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for round in 1..20 {
            let d = backoff(round);
            let cap = 50 * (1u64 << round.min(6));
            assert!(d.as_millis() as u64 <= cap && d.as_millis() as u64 >= cap / 2);
        }
        assert!(backoff(20) <= Duration::from_millis(3200));
    }
}
