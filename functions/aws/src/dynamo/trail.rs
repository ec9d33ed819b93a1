//! An auditor's export of a period: every history entry made in it, in time order, read from
//! GSI3 a day at a time. Each day's entries are spread over [`SHARDS`] partitions; a page
//! reads each of a day's partitions once (from where the last page stopped) and merges them,
//! so a page costs four queries per day it touches, whatever is stored outside the period.

use super::keys::*;
use super::{s, str_attr, DynamoStore};
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reclaim_workflow::ports::{Page, PageRequest, StoreError, TrailEntry};
use reclaim_workflow::{HistoryEntry, Timestamp};

/// A page holds this many entries when the request does not say.
const DEFAULT_PAGE: u32 = 50;
/// No page holds more (a day's partition answers at most this many in one call, well under
/// DynamoDB's 1 MB a call).
const MAX_PAGE: u32 = 1000;

fn bad_cursor(cursor: &str) -> StoreError {
    StoreError::NotFound {
        kind: "cursor",
        id: cursor.chars().take(64).collect(),
    }
}

/// The cursor is the last entry's GSI3 sort key, which says its day too.
fn decode_cursor(cursor: &str) -> Result<String, StoreError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad_cursor(cursor))?;
    let text = String::from_utf8(bytes).map_err(|_| bad_cursor(cursor))?;
    let key = text.strip_prefix("t1:").ok_or_else(|| bad_cursor(cursor))?;
    // It must start with a time this store wrote.
    let at = key.split('#').next().unwrap_or_default();
    chrono::DateTime::parse_from_rfc3339(at).map_err(|_| bad_cursor(cursor))?;
    Ok(key.to_string())
}

fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("t1:{key}"))
}

pub(super) async fn between(
    store: &DynamoStore,
    from: Timestamp,
    to: Timestamp,
    page: &PageRequest,
) -> Result<Page<TrailEntry>, StoreError> {
    let limit = match page.limit {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    } as usize;
    let after = page.cursor.as_deref().map(decode_cursor).transpose()?;
    let low = time_text(from);
    let high = time_text(to);
    let mut day = match &after {
        Some(key) => {
            chrono::DateTime::parse_from_rfc3339(key.split('#').next().unwrap_or_default())
                .map(|t| t.with_timezone(&chrono::Utc).date_naive())
                .map_err(|_| StoreError::Corrupt("trail cursor".into()))?
        }
        None => from.date_naive(),
    };
    let last_day = to.date_naive();
    let mut found: Vec<(String, TrailEntry)> = Vec::new();
    while day <= last_day && found.len() <= limit {
        let mut today: Vec<(String, TrailEntry)> = Vec::new();
        let mut reads = tokio::task::JoinSet::new();
        for shard_no in 0..SHARDS {
            let q = store
                .client
                .query()
                .table_name(store.table())
                .index_name(GSI3)
                .expression_attribute_names("#pk", G3PK)
                .expression_attribute_names("#sk", G3SK)
                .expression_attribute_values(":pk", s(time_pk(day, shard_no)))
                .expression_attribute_values(":high", s(&high))
                .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
                .return_consumed_capacity(ReturnConsumedCapacity::Total);
            // Just past the cursor's entry ("\0" is the smallest text after it), never
            // before the period.
            let start = match &after {
                Some(key) => format!("{key}\u{0}").max(low.clone()),
                None => low.clone(),
            };
            let q = q
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :low AND :high")
                .expression_attribute_values(":low", s(start));
            let store = store.clone();
            reads.spawn(async move { store.index_read(q).await });
        }
        // A partition that stopped early (DynamoDB's 1 MB a call) has been read only up to its
        // last key: nothing after the lowest such key is certain yet.
        let mut cut: Option<String> = None;
        while let Some(joined) = reads.join_next().await {
            let (items, next) =
                joined.map_err(|e| StoreError::Unavailable(format!("query task: {e}")))??;
            if next.is_some() {
                if let Some(last) = items.last().and_then(|i| str_attr(i, G3SK)) {
                    if cut.as_deref().is_none_or(|c| last < c) {
                        cut = Some(last.to_string());
                    }
                }
            }
            for item in items {
                let key = str_attr(&item, G3SK)
                    .ok_or_else(|| StoreError::Corrupt("history entry without a time key".into()))?
                    .to_string();
                // BETWEEN takes `to` itself; the period ends before it.
                if key.as_str() >= high.as_str() {
                    continue;
                }
                let entry: HistoryEntry = super::decode("history entry", &item)?;
                let number = str_attr(&item, NUMBER)
                    .map_or_else(|| entry.candidate_id.clone(), str::to_string);
                today.push((key, TrailEntry { number, entry }));
            }
        }
        today.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(cut) = &cut {
            today.retain(|(k, _)| k <= cut);
            found.extend(today);
            // Stop here; the next page starts after the last entry kept.
            if found.len() <= limit {
                let next = found.last().map(|(k, _)| encode_cursor(k));
                return Ok(Page {
                    items: found.into_iter().map(|(_, e)| e).collect(),
                    next,
                    prev: None,
                });
            }
            break;
        }
        found.extend(today);
        day = match day.succ_opt() {
            Some(d) => d,
            None => break,
        };
    }
    let more = found.len() > limit;
    found.truncate(limit);
    let next = if more {
        found.last().map(|(k, _)| encode_cursor(k))
    } else {
        None
    };
    Ok(Page {
        items: found.into_iter().map(|(_, e)| e).collect(),
        next,
        prev: None,
    })
}
