//! Listing candidates with filters and cursor pagination.
//!
//! Three paths, chosen by the filter, each reading an index rather than the whole table:
//! - a group → query GSI2 (`G#<group>`);
//! - a state (with or without a due time) → query GSI1: the state's shards, merged in
//!   (due, id) order;
//! - a due time alone (the scheduler) → query GSI3's due partitions (`D#<shard>`), which hold
//!   only candidates that have a due time, merged in (due, id) order: a tick reads what is due
//!   and nothing else, whatever the number of states;
//! - otherwise → scan GSI1, which holds only candidates (and open assigned tasks, skipped).
//!
//! Every other filter field is applied in code with [`CandidateFilter::matches`], the same
//! predicate every backend uses. A cursor records where the last page ended, in terms of the
//! path that produced it; a cursor from elsewhere is refused, not guessed at.
//! GSIs are eventually consistent: a listing may lag a write by a moment, which the callers
//! (lists, the scheduler) tolerate; every write re-checks the version.

use super::keys::*;
use super::{decode, reported, s, str_attr, DynamoStore, Item, ReadKind};
use crate::error::store_error;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reclaim_workflow::ports::{
    page_in_memory, CandidateFilter, Count, Keyset, Page, PageRequest, Sort, StoreError,
};
use reclaim_workflow::{Candidate, State};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A page holds this many candidates when the request does not say (as in local mode).
pub const DEFAULT_PAGE: u32 = 50;
/// No page holds more than this.
pub const MAX_PAGE: u32 = 1000;
/// Items read per index call when the page is filtered in code.
const READ_AHEAD: i32 = 200;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "m", deny_unknown_fields)]
enum Cursor {
    /// After this index key (scan of GSI1, or query of GSI2).
    #[serde(rename = "k")]
    Key { k: BTreeMap<String, String> },
    /// After this (state position, GSI1 sort key) in the merged GSI1 order.
    #[serde(rename = "s")]
    Merge { i: usize, k: String },
    /// After (or before) a candidate's place in a sorted list.
    #[serde(rename = "o")]
    Sorted { o: Sort, at: Keyset },
}

/// A sorted list is cut from all its matches in memory (the table has no index per column):
/// at most this many, so a sorted page costs a bounded read; more asks the person to narrow.
pub const SORT_UP_TO: usize = 2_000;
/// Counting reads the matches themselves, so it stops here ("more than 2,000").
pub const COUNT_UP_TO: u64 = 2_000;

fn bad_cursor(cursor: &str) -> StoreError {
    StoreError::NotFound {
        kind: "cursor",
        id: cursor.chars().take(64).collect(),
    }
}

fn encode_cursor(c: &Cursor) -> Result<String, StoreError> {
    let json = serde_json::to_vec(c).map_err(|e| StoreError::Corrupt(format!("cursor: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

fn decode_cursor(cursor: &str) -> Result<Cursor, StoreError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad_cursor(cursor))?;
    serde_json::from_slice(&bytes).map_err(|_| bad_cursor(cursor))
}

/// The index key of an item as `ExclusiveStartKey` wants it.
fn index_key(item: &Item, names: [&str; 4]) -> Result<BTreeMap<String, String>, StoreError> {
    names
        .iter()
        .map(|n| {
            str_attr(item, n)
                .map(|v| (n.to_string(), v.to_string()))
                .ok_or_else(|| StoreError::Corrupt(format!("index item without {n}")))
        })
        .collect()
}

/// Rebuilds a start key from a cursor, refusing keys that do not belong to `names`.
fn start_key(
    k: BTreeMap<String, String>,
    names: [&str; 4],
    cursor: &str,
) -> Result<Item, StoreError> {
    if k.len() != names.len() || !names.iter().all(|n| k.contains_key(*n)) {
        return Err(bad_cursor(cursor));
    }
    Ok(k.into_iter().map(|(n, v)| (n, s(v))).collect())
}

pub(super) async fn list(
    store: &DynamoStore,
    filter: &CandidateFilter,
    page: &PageRequest,
) -> Result<Page<Candidate>, StoreError> {
    let Some(sort) = page.sort else {
        return natural(store, filter, page).await;
    };
    let limit = match page.limit {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    } as usize;
    let at = match page.cursor.as_deref() {
        None => None,
        Some(raw) => match decode_cursor(raw)? {
            Cursor::Sorted { o, at } if o == sort => Some(at),
            _ => return Err(bad_cursor(raw)),
        },
    };
    let all = matching(store, filter, SORT_UP_TO).await?;
    if all.len() > SORT_UP_TO {
        return Err(StoreError::TooBroad(format!(
            "more than {SORT_UP_TO} candidates match: narrow the filters (a stage, a group, \
             software or a user) to sort them"
        )));
    }
    let (items, after, before) = page_in_memory(all, sort, at.as_ref(), limit);
    let cursor = |c: &Candidate, before: bool| {
        let place = (sort.key.value(c), c.number.clone());
        encode_cursor(&Cursor::Sorted {
            o: sort,
            at: if before {
                Keyset::Before(place.0, place.1)
            } else {
                Keyset::After(place.0, place.1)
            },
        })
    };
    let next = items
        .last()
        .filter(|_| after)
        .map(|c| cursor(c, false))
        .transpose()?;
    let prev = items
        .first()
        .filter(|_| before)
        .map(|c| cursor(c, true))
        .transpose()?;
    Ok(Page { items, next, prev })
}

/// Every match in the store's own order, reading on until more than `up_to` are found.
async fn matching(
    store: &DynamoStore,
    filter: &CandidateFilter,
    up_to: usize,
) -> Result<Vec<Candidate>, StoreError> {
    let mut all = Vec::new();
    let mut request = PageRequest {
        limit: MAX_PAGE,
        cursor: None,
        sort: None,
    };
    loop {
        let page = natural(store, filter, &request).await?;
        all.extend(page.items);
        match page.next {
            Some(next) if all.len() <= up_to => request.cursor = Some(next),
            _ => return Ok(all),
        }
    }
}

/// Counts by reading the matches, so at most [`COUNT_UP_TO`] of them.
pub(super) async fn count(
    store: &DynamoStore,
    filter: &CandidateFilter,
    up_to: u64,
) -> Result<Count, StoreError> {
    let bound = up_to.min(COUNT_UP_TO);
    let found = matching(store, filter, usize::try_from(bound).unwrap_or(usize::MAX)).await?;
    let n = found.len() as u64;
    Ok(Count {
        n: n.min(bound),
        more: n > bound,
    })
}

/// The store's own order: the index the filter picks, resumed from a key.
async fn natural(
    store: &DynamoStore,
    filter: &CandidateFilter,
    page: &PageRequest,
) -> Result<Page<Candidate>, StoreError> {
    let limit = match page.limit {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    } as usize;
    let cursor = page
        .cursor
        .as_deref()
        .map(|c| decode_cursor(c).map(|d| (c, d)))
        .transpose()?;
    if let Some(group) = &filter.group {
        let names = [G2PK, G2SK, PK, SK];
        let start = match cursor {
            None => None,
            Some((raw, Cursor::Key { k })) => Some(start_key(k, names, raw)?),
            Some((raw, _)) => return Err(bad_cursor(raw)),
        };
        return keyed(store, filter, limit, start, names, Source::Group(group)).await;
    }
    if filter.state.is_some() || filter.due_before.is_some() {
        let after = match cursor {
            None => None,
            Some((_, Cursor::Merge { i, k })) if i < State::ALL.len() => Some((i, k)),
            Some((raw, _)) => return Err(bad_cursor(raw)),
        };
        return merged(store, filter, limit, after).await;
    }
    let names = [G1PK, G1SK, PK, SK];
    let start = match cursor {
        None => None,
        Some((raw, Cursor::Key { k })) => Some(start_key(k, names, raw)?),
        Some((raw, _)) => return Err(bad_cursor(raw)),
    };
    keyed(store, filter, limit, start, names, Source::Scan).await
}

enum Source<'a> {
    Scan,
    Group(&'a str),
}

/// One index read in index order (a GSI1 scan or a GSI2 query), filtered in code, resumed
/// after the last item handed out.
async fn keyed(
    store: &DynamoStore,
    filter: &CandidateFilter,
    limit: usize,
    mut start: Option<Item>,
    names: [&str; 4],
    source: Source<'_>,
) -> Result<Page<Candidate>, StoreError> {
    let mut out: Vec<(Item, Candidate)> = Vec::new();
    loop {
        let (items, last) = match source {
            Source::Scan => {
                let mut r = store
                    .client
                    .scan()
                    .table_name(store.table())
                    .index_name(GSI1)
                    .filter_expression("#t = :c")
                    .expression_attribute_names("#t", TYPE)
                    .expression_attribute_values(":c", s("c"))
                    .limit(READ_AHEAD)
                    .set_exclusive_start_key(start.take())
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(|e| store_error("Scan", &e))?;
                let items = r.items.take().unwrap_or_default();
                store.note_read(
                    "Scan",
                    reported(r.consumed_capacity()),
                    &items,
                    ReadKind::Together { consistent: false },
                );
                (items, r.last_evaluated_key)
            }
            Source::Group(g) => {
                let mut r = store
                    .client
                    .query()
                    .table_name(store.table())
                    .index_name(GSI2)
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :c)")
                    .expression_attribute_names("#pk", G2PK)
                    .expression_attribute_names("#sk", G2SK)
                    .expression_attribute_values(":pk", s(group_pk(g)))
                    .expression_attribute_values(":c", s("C#"))
                    .limit(READ_AHEAD)
                    .set_exclusive_start_key(start.take())
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(|e| store_error("Query", &e))?;
                let items = r.items.take().unwrap_or_default();
                store.note_read(
                    "Query",
                    reported(r.consumed_capacity()),
                    &items,
                    ReadKind::Together { consistent: false },
                );
                (items, r.last_evaluated_key)
            }
        };
        for item in items {
            let c: Candidate = decode("candidate", &item)?;
            if filter.matches(&c) {
                out.push((item, c));
                if out.len() > limit {
                    break;
                }
            }
        }
        if out.len() > limit {
            break;
        }
        match last {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => break,
        }
    }
    let next = if out.len() > limit {
        out.truncate(limit);
        match out.last() {
            Some((item, _)) => Some(encode_cursor(&Cursor::Key {
                k: index_key(item, names)?,
            })?),
            None => None,
        }
    } else {
        None
    };
    Ok(Page {
        items: out.into_iter().map(|(_, c)| c).collect(),
        next,
        prev: None,
    })
}

/// One index partition (a state's shard, or a due partition) being read in sort-key order.
struct Part {
    state: usize,
    pk: String,
    /// Exclusive lower bound from the cursor.
    after: Option<String>,
    /// Where the previous call of this listing stopped.
    resume: Option<Item>,
    /// Sort key of the last item read: everything at or below it has been seen.
    seen_to: Option<String>,
    started: bool,
    done: bool,
}

/// Merges a state's shards (or the due partitions) in (position, index sort key) order,
/// reading each only as far as the page needs.
async fn merged(
    store: &DynamoStore,
    filter: &CandidateFilter,
    limit: usize,
    after: Option<(usize, String)>,
) -> Result<Page<Candidate>, StoreError> {
    let bound = filter.due_before.map(due_bound);
    // (position in the merged order, partition): a state's shards share its position.
    let (index, pk_name, sk_name, sources): (&str, &str, &str, Vec<(usize, String)>) =
        match filter.state {
            None => (
                GSI3,
                G3PK,
                G3SK,
                (0..SHARDS).map(|shard| (0, due_pk(shard))).collect(),
            ),
            Some(state) => (
                GSI1,
                G1PK,
                G1SK,
                State::ALL
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| **s == state)
                    .flat_map(|(i, s)| (0..SHARDS).map(move |shard| (i, state_pk(*s, shard))))
                    .collect(),
            ),
        };
    let mut parts = Vec::new();
    for (i, pk) in sources {
        if after.as_ref().is_some_and(|(ai, _)| i < *ai) {
            continue;
        }
        parts.push(Part {
            state: i,
            pk,
            after: after
                .as_ref()
                .filter(|(ai, _)| *ai == i)
                .map(|(_, k)| k.clone()),
            resume: None,
            seen_to: None,
            started: false,
            done: false,
        });
    }
    // Matching candidates read so far, by their merged position.
    let mut found: BTreeMap<(usize, String), Candidate> = BTreeMap::new();
    loop {
        // The merged order is settled up to the lowest point any unfinished part has reached.
        let frontier = parts
            .iter()
            .filter(|p| !p.done)
            .map(|p| (p.state, p.seen_to.clone()))
            .min();
        let settled = match &frontier {
            None => found.len(),
            Some((st, None)) => found.keys().take_while(|(i, _)| i < st).count(),
            Some((st, Some(k))) => found
                .keys()
                .take_while(|(i, sk)| (i, sk) <= (st, k))
                .count(),
        };
        if settled > limit || frontier.is_none() {
            break;
        }
        // Read on in every part that holds the frontier back (all unstarted ones at first).
        let behind: Vec<usize> = parts
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                !p.done && (!p.started || frontier.as_ref() == Some(&(p.state, p.seen_to.clone())))
            })
            .map(|(i, _)| i)
            .collect();
        let mut reads = tokio::task::JoinSet::new();
        for i in behind {
            let p = &mut parts[i];
            p.started = true;
            let mut q = store
                .client
                .query()
                .table_name(store.table())
                .index_name(index)
                .expression_attribute_names("#pk", pk_name)
                .expression_attribute_values(":pk", s(&p.pk))
                .limit(READ_AHEAD)
                .set_exclusive_start_key(p.resume.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total);
            q = match (&p.after, &bound) {
                (Some(a), _) => q
                    .key_condition_expression("#pk = :pk AND #sk > :after")
                    .expression_attribute_names("#sk", sk_name)
                    .expression_attribute_values(":after", s(a)),
                (None, Some(b)) => q
                    .key_condition_expression("#pk = :pk AND #sk < :bound")
                    .expression_attribute_names("#sk", sk_name)
                    .expression_attribute_values(":bound", s(b)),
                (None, None) => q.key_condition_expression("#pk = :pk"),
            };
            reads.spawn(async move { (i, q.send().await) });
        }
        while let Some(joined) = reads.join_next().await {
            let (i, result) =
                joined.map_err(|e| StoreError::Unavailable(format!("query task: {e}")))?;
            let mut r = result.map_err(|e| store_error("Query", &e))?;
            let items = r.items.take().unwrap_or_default();
            store.note_read(
                "Query",
                reported(r.consumed_capacity()),
                &items,
                ReadKind::Together { consistent: false },
            );
            let p = &mut parts[i];
            for item in items {
                let Some(sk) = str_attr(&item, sk_name).map(String::from) else {
                    return Err(StoreError::Corrupt(format!(
                        "{index} item without a sort key"
                    )));
                };
                if bound.as_ref().is_some_and(|b| sk >= *b) {
                    p.done = true;
                    break;
                }
                let c: Candidate = decode("candidate", &item)?;
                if filter.matches(&c) {
                    found.insert((p.state, sk.clone()), c);
                }
                p.seen_to = Some(sk);
            }
            match r.last_evaluated_key {
                Some(k) if !k.is_empty() && !p.done => {
                    if let Some(AttributeValue::S(sk)) = k.get(sk_name) {
                        p.seen_to = Some(sk.clone());
                    }
                    p.resume = Some(k);
                }
                _ => p.done = true,
            }
        }
    }
    let more = found.len() > limit;
    let page: Vec<((usize, String), Candidate)> = found.into_iter().take(limit).collect();
    let next = match (more, page.last()) {
        (true, Some(((i, k), _))) => Some(encode_cursor(&Cursor::Merge {
            i: *i,
            k: k.clone(),
        })?),
        _ => None,
    };
    Ok(Page {
        items: page.into_iter().map(|(_, c)| c).collect(),
        next,
        prev: None,
    })
}
