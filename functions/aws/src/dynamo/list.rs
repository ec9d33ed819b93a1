//! Listing candidates with filters and cursor pagination.
//!
//! Each path, chosen by the filter, reads an index rather than the whole table:
//! - a user → query GSI4 (`U#<user>`): that person's candidates only;
//! - a search by person → the people catalog, then GSI4 for each person who matches, in id
//!   order;
//! - a group → query GSI2 (`G#<group>`);
//! - a publisher, a product or a search by software → GSI5 (`P#<publisher>`, the product's
//!   range), through the software catalog when the publisher is not given;
//! - a state (with or without a due time) → query GSI1: the state's shards, merged in
//!   (due, id) order;
//! - a due time alone (the scheduler) → query GSI3's due partitions (`D#<shard>`), which hold
//!   only candidates that have a due time, merged in (due, id) order: a tick reads what is due
//!   and nothing else, whatever the number of states;
//! - alerts alone → query GSI6's partitions (`L#<shard>`) below the time, merged;
//! - otherwise (no filter, or a kind or justification alone) → the candidates in number order
//!   from `by-order`, every stage's partition merged, as a sorted list is read: a page is
//!   bounded by the sorted page budget, and nothing scans the table.
//!
//! GSI4–6 hold keys only, so those paths read the candidates after, 100 to a `BatchGetItem`.
//! Every other filter field is applied in code with [`CandidateFilter::matches`], the same
//! predicate every backend uses. A cursor records where the last page ended, in terms of the
//! path that produced it; a cursor from elsewhere is refused, not guessed at.
//! GSIs are eventually consistent: a listing may lag a write by a moment, which the callers
//! (lists, the scheduler) tolerate; every write re-checks the version.

use super::batch::MAX_BATCH_GET;
use super::keys::*;
use super::{decode, reported, s, str_attr, DynamoStore, Item, ReadKind};
use crate::error::store_error;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity, Select};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reclaim_workflow::ports::{
    page_in_memory, CandidateFilter, Count, Keyset, Page, PageRequest, Sort, SortKey, StoreError,
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

/// Items to ask an index call for: a page and one more when the index's own key is the whole
/// filter (nothing read is thrown away), else [`READ_AHEAD`], since code drops some.
fn read_size(limit: usize, residue: &CandidateFilter) -> i32 {
    if *residue == CandidateFilter::default() {
        i32::try_from(limit + 1).unwrap_or(READ_AHEAD)
    } else {
        READ_AHEAD
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "m", deny_unknown_fields)]
enum Cursor {
    /// After this index key (a query of GSI2).
    #[serde(rename = "k")]
    Key { k: BTreeMap<String, String> },
    /// After this (state position, GSI1 sort key) in the merged GSI1 order.
    #[serde(rename = "s")]
    Merge { i: usize, k: String },
    /// After (or before) a candidate's place in a sorted list.
    #[serde(rename = "o")]
    Sorted { o: Sort, at: Keyset },
    /// After (or, `b`, before) an index key of `by-order`, in a sorted list read from it.
    #[serde(rename = "r")]
    Ordered { o: Sort, k: String, b: bool },
    /// Every slice (one person's or one software's range of a keys-only index) before `s` is
    /// done; slice `s` resumes after index key `k`, or from its start.
    #[serde(rename = "l")]
    Slice {
        s: String,
        k: Option<BTreeMap<String, String>>,
    },
}

/// People read from the catalog for one page of a search by person: a fragment that matches
/// more people pages through them.
const PEOPLE_PER_PAGE: usize = 100;
/// Index reads in one page of a sliced listing; past it the page ends early, with a cursor.
const SLICE_READS_PER_PAGE: usize = 64;
/// Slices read at once.
const SLICE_WINDOW: usize = 8;

/// A filtered, sorted list with at most this many matches is cut from them in memory (the
/// filter's own index reads them); more are read in order from `by-order`.
pub const SORT_UP_TO: usize = 2_000;
/// What one page of a list read from `by-order` may cost: index reads, and candidates
/// examined against the filter.
pub const SORTED_PAGE_BUDGET: (usize, usize) = (32, 2_000);

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
            // A page read from the order's index: the next ones are too.
            Cursor::Ordered { o, k, b } if o == sort => {
                return ordered(store, filter, sort, limit, Some(OrderAt { k, back: b })).await;
            }
            _ => return Err(bad_cursor(raw)),
        },
    };
    let up_to = store.sort_in_memory_up_to;
    // Without a filter, or with a stage alone, the index's partitions hold exactly the
    // matches: straight to the index.
    let stage_alone = CandidateFilter {
        state: None,
        ..filter.clone()
    } == CandidateFilter::default();
    if stage_alone || up_to == 0 {
        return ordered(store, filter, sort, limit, at.map(OrderAt::of)).await;
    }
    let all = matching(store, filter, up_to).await?;
    if all.len() > up_to {
        return ordered(store, filter, sort, limit, at.map(OrderAt::of)).await;
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

/// Where a page read from `by-order` starts: after (or, going back, before) an index key.
struct OrderAt {
    k: String,
    back: bool,
}

impl OrderAt {
    /// The same place as a cursor of a list sorted in memory.
    fn of(at: Keyset) -> OrderAt {
        match at {
            Keyset::After(v, n) => OrderAt {
                k: order_key(&v, &n),
                back: false,
            },
            Keyset::Before(v, n) => OrderAt {
                k: order_key(&v, &n),
                back: true,
            },
        }
    }
}

/// One stage's partition of an order in `by-order`, read in the direction of the page.
struct Lane {
    pk: String,
    resume: Option<Item>,
    /// Index key of the last item read (or examined by a filtered read): everything up to it
    /// in this lane has been seen.
    seen_to: Option<String>,
    started: bool,
    done: bool,
}

/// A sorted list read in order from `by-order`: the order's partition of the stage asked
/// for, or of every stage merged, only as far as the page needs; the candidates after,
/// checked against the rest of the filter and against the index (which may lag a
/// transition: a candidate whose place moved is left to its new place). At most
/// [`SORTED_PAGE_BUDGET`] index reads and candidates examined a page; a page cut short by
/// them ends with a cursor from where the reading stopped.
async fn ordered(
    store: &DynamoStore,
    filter: &CandidateFilter,
    sort: Sort,
    limit: usize,
    at: Option<OrderAt>,
) -> Result<Page<Candidate>, StoreError> {
    let (max_reads, max_examined) = store.sorted_page_budget;
    let back = at.as_ref().is_some_and(|a| a.back);
    // Reading the index upwards (ascending values), or downwards.
    let up = sort.descending == back;
    // `a` comes no later than `b` in the reading direction.
    let no_later = |a: &str, b: &str| if up { a <= b } else { a >= b };
    // A stage's partition, or every stage's.
    let states = match filter.state {
        Some(state) => vec![state],
        None => State::ALL.to_vec(),
    };
    let mut lanes: Vec<Lane> = states
        .into_iter()
        .map(|state| Lane {
            pk: order_pk(sort.key, state),
            resume: None,
            seen_to: None,
            started: false,
            done: false,
        })
        .collect();
    // The stage is decided by the partitions read; the rest in code.
    let residue = CandidateFilter {
        state: None,
        ..filter.clone()
    };
    let size = read_size(limit, &residue);
    // Index keys read and not examined yet, with their candidate's key.
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    let mut out: Vec<(String, Candidate)> = Vec::new();
    let mut reads = 0;
    let mut examined = 0;
    let mut last_examined: Option<String> = None;
    // Where a page cut short by its budget stopped: the next page goes on after it.
    let mut stop: Option<String> = None;
    let mut cut = false;
    loop {
        // What no lane can still put ahead of: the least advanced point of the unfinished.
        let open: Vec<&Lane> = lanes.iter().filter(|l| !l.done).collect();
        let frontier: Option<Option<&str>> = if open.iter().any(|l| !l.started) {
            Some(None)
        } else {
            open.iter()
                .filter_map(|l| l.seen_to.as_deref())
                .reduce(|a, b| if no_later(a, b) { a } else { b })
                .map(Some)
        };
        let settled: Vec<String> = {
            let keys: Box<dyn Iterator<Item = &String>> = if up {
                Box::new(found.keys())
            } else {
                Box::new(found.keys().rev())
            };
            keys.take_while(|k| match frontier {
                None => true,
                Some(None) => false,
                Some(Some(f)) => no_later(k, f),
            })
            .cloned()
            .collect()
        };
        // Examine what is settled in order, a batch at a time, until the page and one more
        // are found (without a filter in code, each batch is what the page still lacks).
        let mut next = 0;
        while next < settled.len() && out.len() <= limit {
            if examined >= max_examined {
                // Everything up to the last key examined is done.
                stop = last_examined.clone();
                cut = true;
                break;
            }
            let step = if residue == CandidateFilter::default() {
                limit + 1 - out.len()
            } else {
                MAX_BATCH_GET
            }
            .min(MAX_BATCH_GET)
            .min(max_examined - examined);
            let want = &settled[next..(next + step).min(settled.len())];
            next += want.len();
            let keys: Vec<Item> = want
                .iter()
                .filter_map(|k| found.get(k))
                .map(|pk| Item::from([(PK.to_string(), s(pk)), (SK.to_string(), s(CANDIDATE_SK))]))
                .collect();
            let mut docs = std::collections::HashMap::new();
            for item in store.batch_get(keys).await? {
                let c: Candidate = decode("candidate", &item)?;
                docs.insert(candidate_pk(&c.id), c);
            }
            for k in want {
                examined += 1;
                let Some(pk) = found.remove(k) else { continue };
                last_examined = Some(k.clone());
                let Some(c) = docs.remove(&pk) else { continue };
                if filter.matches(&c) && order_key(&sort.key.value(&c), &c.number) == *k {
                    out.push((k.clone(), c));
                    if out.len() > limit {
                        break;
                    }
                }
            }
        }
        if out.len() > limit || cut || frontier.is_none() {
            break;
        }
        if reads >= max_reads {
            // Everything up to the frontier is examined.
            stop = frontier.flatten().map(String::from);
            cut = true;
            break;
        }
        // Read on in every lane that holds the frontier back (all of them at first).
        let frontier = frontier.flatten().map(String::from);
        let behind: Vec<usize> = lanes
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.done && (!l.started || l.seen_to == frontier))
            .map(|(i, _)| i)
            .collect();
        let mut calls = tokio::task::JoinSet::new();
        for i in behind {
            reads += 1;
            let lane = &mut lanes[i];
            lane.started = true;
            let mut q = store
                .client
                .query()
                .table_name(store.table())
                .index_name(GSI7)
                .expression_attribute_names("#pk", G7PK)
                .expression_attribute_values(":pk", s(&lane.pk))
                .scan_index_forward(up)
                .limit(size)
                .set_exclusive_start_key(lane.resume.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total);
            q = match &at {
                Some(a) => q
                    .key_condition_expression(if up {
                        "#pk = :pk AND #sk > :at"
                    } else {
                        "#pk = :pk AND #sk < :at"
                    })
                    .expression_attribute_names("#sk", G7SK)
                    .expression_attribute_values(":at", s(&a.k)),
                None => q.key_condition_expression("#pk = :pk"),
            };
            let store = store.clone();
            calls.spawn(async move { (i, store.index_read(q).await) });
        }
        while let Some(joined) = calls.join_next().await {
            let (i, read) =
                joined.map_err(|e| StoreError::Unavailable(format!("query task: {e}")))?;
            let (items, next) = read?;
            let lane = &mut lanes[i];
            for item in &items {
                let (Some(k), Some(pk)) = (str_attr(item, G7SK), str_attr(item, PK)) else {
                    return Err(StoreError::Corrupt(format!("{GSI7} item without its keys")));
                };
                found.insert(k.to_string(), pk.to_string());
                lane.seen_to = Some(k.to_string());
            }
            match next {
                Some(k) => {
                    if let Some(AttributeValue::S(sk)) = k.get(G7SK) {
                        lane.seen_to = Some(sk.clone());
                    }
                    lane.resume = Some(k);
                }
                _ => lane.done = true,
            }
        }
    }
    let more = out.len() > limit;
    out.truncate(limit);
    let stopped = (cut && !more).then_some(stop).flatten();
    let ordered_cursor = |k: &str, b: bool| {
        encode_cursor(&Cursor::Ordered {
            o: sort,
            k: k.to_string(),
            b,
        })
    };
    let first_key = out.first().map(|(k, _)| k.clone());
    let last_key = out.last().map(|(k, _)| k.clone());
    let (next, prev) = if back {
        // Read backwards: the first found is the nearest to the cursor.
        let further = if more {
            last_key.clone()
        } else {
            stopped.clone()
        };
        (
            first_key.map(|k| ordered_cursor(&k, false)).transpose()?,
            further.map(|k| ordered_cursor(&k, true)).transpose()?,
        )
    } else {
        let further = if more {
            last_key.clone()
        } else {
            stopped.clone()
        };
        let start = first_key.or_else(|| at.as_ref().map(|a| a.k.clone()));
        (
            further.map(|k| ordered_cursor(&k, false)).transpose()?,
            start
                .filter(|_| at.is_some())
                .map(|k| ordered_cursor(&k, true))
                .transpose()?,
        )
    };
    let mut items: Vec<Candidate> = out.into_iter().map(|(_, c)| c).collect();
    if back {
        items.reverse();
    }
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
    let stage_alone = CandidateFilter {
        state: None,
        ..filter.clone()
    } == CandidateFilter::default();
    if stage_alone {
        // Every stage's partitions together hold every candidate: no filter is counted the
        // same way, stage after stage.
        let states = match filter.state {
            Some(state) => vec![state],
            None => State::ALL.to_vec(),
        };
        return count_stages(store, &states, bound).await;
    }
    let found = matching(store, filter, usize::try_from(bound).unwrap_or(usize::MAX)).await?;
    let n = found.len() as u64;
    Ok(Count {
        n: n.min(bound),
        more: n > bound,
    })
}

/// The stages' count from their partitions of `by-state-due`, which hold their candidates and
/// nothing else: no order is needed, so each shard is counted in turn (`Select=COUNT`, the
/// service counts, nothing is sent back) until more than `bound` are found. It reads about
/// `bound` items, where counting the matches of a merged listing read up to a page per shard
/// for every page it handed out.
async fn count_stages(
    store: &DynamoStore,
    states: &[State],
    bound: u64,
) -> Result<Count, StoreError> {
    let mut n: u64 = 0;
    for (&state, shard) in states
        .iter()
        .flat_map(|s| (0..SHARDS).map(move |shard| (s, shard)))
    {
        let mut start = None;
        loop {
            let want = i32::try_from(bound + 1 - n).unwrap_or(i32::MAX);
            let r = store
                .client
                .query()
                .table_name(store.table())
                .index_name(GSI1)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", G1PK)
                .expression_attribute_values(":pk", s(state_pk(state, shard)))
                .select(Select::Count)
                .limit(want)
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| store_error("Query", &e))?;
            // Nothing comes back to size: the capacity on record is what the service reported.
            store.note_read(
                "Query",
                reported(r.consumed_capacity()),
                &[],
                ReadKind::Together { consistent: false },
            );
            n += u64::try_from(r.count).unwrap_or(0);
            if n > bound {
                return Ok(Count {
                    n: bound,
                    more: true,
                });
            }
            match r.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
    }
    Ok(Count { n, more: false })
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
    let slice_cursor = |cursor: Option<(&str, Cursor)>| match cursor {
        None => Ok(None),
        Some((_, Cursor::Slice { s, k })) => Ok(Some((s, k))),
        Some((raw, _)) => Err(bad_cursor(raw)),
    };
    if let Some(user) = &filter.user {
        let slices = vec![Slice::user(user)];
        return sliced(store, filter, limit, slices, None, slice_cursor(cursor)?).await;
    }
    if let Some(text) = filter.user_text.as_deref().filter(|t| !t.trim().is_empty()) {
        let resume = slice_cursor(cursor)?;
        let from = resume.as_ref().map(|(s, _)| s.as_str());
        if from.is_some_and(|s| !s.starts_with("U#")) {
            return Err(bad_cursor(page.cursor.as_deref().unwrap_or_default()));
        }
        let from = from.map(|s| s.trim_start_matches("U#"));
        let (mut people, _) = store
            .people_matching(text, from.map(person_sk).as_deref(), PEOPLE_PER_PAGE + 1)
            .await?;
        let then = (people.len() > PEOPLE_PER_PAGE)
            .then(|| people.pop().map(|u| Slice::user(&u).id()))
            .flatten();
        let slices = people.iter().map(|u| Slice::user(u)).collect();
        return sliced(store, filter, limit, slices, then, resume).await;
    }
    if let Some(group) = &filter.group {
        let names = [G2PK, G2SK, PK, SK];
        let start = match cursor {
            None => None,
            Some((raw, Cursor::Key { k })) => Some(start_key(k, names, raw)?),
            Some((raw, _)) => return Err(bad_cursor(raw)),
        };
        return keyed(store, filter, limit, start, names, Source::Group(group)).await;
    }
    let software_text = filter
        .software_text
        .as_deref()
        .filter(|t| !t.trim().is_empty());
    if filter.publisher.is_some() || filter.product.is_some() || software_text.is_some() {
        let slices = match (&filter.publisher, &filter.product, software_text) {
            (Some(p), None, None) => vec![Slice::software(publisher_pk(p), None)],
            (Some(p), Some(product), None) => {
                vec![Slice::software(
                    publisher_pk(p),
                    Some(product_prefix(product)),
                )]
            }
            (publisher, product, text) => store
                .software_matching(publisher.as_deref(), product.as_deref(), text)
                .await?
                .into_iter()
                .map(|e| Slice::software(e.publisher_pk, Some(e.product_prefix)))
                .collect(),
        };
        return sliced(store, filter, limit, slices, None, slice_cursor(cursor)?).await;
    }
    if filter.state.is_some() || filter.due_before.is_some() || filter.alert_before.is_some() {
        let after = match cursor {
            None => None,
            Some((_, Cursor::Merge { i, k })) if i < State::ALL.len() => Some((i, k)),
            Some((raw, _)) => return Err(bad_cursor(raw)),
        };
        return merged(store, filter, limit, after).await;
    }
    // Nothing narrows the list to an index of its own (no filter, or a kind or justification
    // alone): the candidates in the order of their numbers, from `by-order`, every stage's
    // partition merged, a bounded page at a time, never a scan of the table.
    let at = match cursor {
        None => None,
        Some((_, Cursor::Ordered { o, k, b })) if o == NUMBER_ORDER => Some(OrderAt { k, back: b }),
        Some((raw, _)) => return Err(bad_cursor(raw)),
    };
    ordered(store, filter, NUMBER_ORDER, limit, at).await
}

/// Every candidate, a page of `by-state-due` at a time (it holds only candidates and open
/// assigned tasks, which are skipped): the one scan left, for the operator's rebuild, which
/// must also find candidates that have no order items yet.
pub(super) async fn every(
    store: &DynamoStore,
    page: &PageRequest,
) -> Result<Page<Candidate>, StoreError> {
    let limit = match page.limit {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    } as usize;
    let names = [G1PK, G1SK, PK, SK];
    let start = match page.cursor.as_deref() {
        None => None,
        Some(raw) => match decode_cursor(raw)? {
            Cursor::Key { k } => Some(start_key(k, names, raw)?),
            _ => return Err(bad_cursor(raw)),
        },
    };
    keyed(
        store,
        &CandidateFilter::default(),
        limit,
        start,
        names,
        Source::Scan,
    )
    .await
}

/// The order of a list that asks for none and has no index of its own: oldest number first.
const NUMBER_ORDER: Sort = Sort {
    key: SortKey::Number,
    descending: false,
};

enum Source<'a> {
    /// Every candidate: a scan of GSI1 (the rebuild's read, [`every`]).
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
    let residue = match source {
        Source::Scan => filter.clone(),
        Source::Group(_) => CandidateFilter {
            group: None,
            ..filter.clone()
        },
    };
    let size = read_size(limit, &residue);
    let mut out: Vec<(Item, Candidate)> = Vec::new();
    loop {
        let (op, items, last, consumed) = match source {
            Source::Scan => {
                let r = store
                    .client
                    .scan()
                    .table_name(store.table())
                    .index_name(GSI1)
                    .filter_expression("#t = :c")
                    .expression_attribute_names("#t", TYPE)
                    .expression_attribute_values(":c", s("c"))
                    .limit(size)
                    .set_exclusive_start_key(start.take())
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(|e| store_error("Scan", &e))?;
                let consumed = reported(r.consumed_capacity());
                ("Scan", r.items, r.last_evaluated_key, consumed)
            }
            Source::Group(group) => {
                let r = store
                    .client
                    .query()
                    .table_name(store.table())
                    .index_name(GSI2)
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :c)")
                    .expression_attribute_names("#pk", G2PK)
                    .expression_attribute_names("#sk", G2SK)
                    .expression_attribute_values(":pk", s(group_pk(group)))
                    .expression_attribute_values(":c", s("C#"))
                    .limit(size)
                    .set_exclusive_start_key(start.take())
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(|e| store_error("Query", &e))?;
                let consumed = reported(r.consumed_capacity());
                ("Query", r.items, r.last_evaluated_key, consumed)
            }
        };
        let items = items.unwrap_or_default();
        store.note_read(
            op,
            consumed,
            &items,
            ReadKind::Together { consistent: false },
        );
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

/// One partition of a keys-only index (or a range of one), read in sort-key order.
struct Slice {
    index: &'static str,
    names: [&'static str; 4],
    pk: String,
    prefix: Option<String>,
}

impl Slice {
    fn user(user: &str) -> Slice {
        Slice {
            index: GSI4,
            names: [G4PK, G4SK, PK, SK],
            pk: user_pk(user),
            prefix: None,
        }
    }

    fn software(publisher_pk: String, product_prefix: Option<String>) -> Slice {
        Slice {
            index: GSI5,
            names: [G5PK, G5SK, PK, SK],
            pk: publisher_pk,
            prefix: product_prefix,
        }
    }

    /// Where the slice stands in the listing's order: people by id, software by publisher
    /// and product (the separator sorts below any text, so the order is that of the pairs).
    fn id(&self) -> String {
        match &self.prefix {
            Some(p) => format!("{}{SEP}{p}", self.pk),
            None => self.pk.clone(),
        }
    }
}

/// A slice being read: where its next read starts, and what its last read returned that is
/// not handed out yet.
struct Reading {
    slice: Slice,
    start: Option<Item>,
    read: Option<(std::collections::VecDeque<Item>, Option<Item>)>,
}

/// Reads `slices` one after the other (a few at once) from a keys-only index, then the
/// candidates their keys name, filtered in code, until the page is full. `then` is the slice
/// after the last of `slices`, when there are more than one page's worth of slices.
async fn sliced(
    store: &DynamoStore,
    filter: &CandidateFilter,
    limit: usize,
    slices: Vec<Slice>,
    then: Option<String>,
    resume: Option<(String, Option<BTreeMap<String, String>>)>,
) -> Result<Page<Candidate>, StoreError> {
    let mut queue = std::collections::VecDeque::new();
    for slice in slices {
        let id = slice.id();
        let start = match &resume {
            Some((s, _)) if id < *s => continue,
            Some((s, Some(k))) if id == *s => Some(start_key(k.clone(), slice.names, s)?),
            _ => None,
        };
        queue.push_back(Reading {
            slice,
            start,
            read: None,
        });
    }
    let mut out: Vec<Candidate> = Vec::new();
    // Where the page ends: the slice and the index key of its last candidate handed out.
    let mut last: Option<(String, BTreeMap<String, String>)> = None;
    let mut docs: std::collections::HashMap<String, Option<Candidate>> =
        std::collections::HashMap::new();
    let mut reads = 0;
    let mut cut = false;
    'page: while out.len() <= limit {
        let Some(front) = queue.front() else { break };
        if front.read.is_none() {
            if reads >= SLICE_READS_PER_PAGE {
                cut = true;
                break;
            }
            // The next few slices at once: one person's candidates are usually one read.
            let want = i32::try_from(limit + 1 - out.len())
                .unwrap_or(READ_AHEAD)
                .clamp(25, READ_AHEAD);
            let mut calls = tokio::task::JoinSet::new();
            for (i, r) in queue.iter_mut().enumerate().take(SLICE_WINDOW) {
                if r.read.is_some() || reads >= SLICE_READS_PER_PAGE {
                    continue;
                }
                reads += 1;
                let [pk_name, sk_name, _, _] = r.slice.names;
                let mut q = store
                    .client
                    .query()
                    .table_name(store.table())
                    .index_name(r.slice.index)
                    .expression_attribute_names("#pk", pk_name)
                    .expression_attribute_values(":pk", s(&r.slice.pk))
                    .limit(want)
                    .set_exclusive_start_key(r.start.take())
                    .return_consumed_capacity(ReturnConsumedCapacity::Total);
                q = match &r.slice.prefix {
                    Some(p) => q
                        .key_condition_expression("#pk = :pk AND begins_with(#sk, :p)")
                        .expression_attribute_names("#sk", sk_name)
                        .expression_attribute_values(":p", s(p)),
                    None => q.key_condition_expression("#pk = :pk"),
                };
                let store = store.clone();
                calls.spawn(async move { (i, store.index_read(q).await) });
            }
            while let Some(joined) = calls.join_next().await {
                let (i, read) =
                    joined.map_err(|e| StoreError::Unavailable(format!("query task: {e}")))?;
                let (items, more) = read?;
                if let Some(reading) = queue.get_mut(i) {
                    reading.read = Some((items.into(), more));
                }
            }
        }
        // Hand out what the front slice read, fetching the candidates a batch ahead.
        loop {
            let Some(front) = queue.front_mut() else {
                break 'page;
            };
            let Some((items, _)) = &front.read else {
                continue 'page;
            };
            let Some(item) = items.front() else {
                // This read is used up: read on in the slice, or go to the next one.
                match front.read.take().and_then(|(_, more)| more) {
                    Some(k) => {
                        front.start = Some(k);
                        continue 'page;
                    }
                    None => {
                        queue.pop_front();
                        continue;
                    }
                }
            };
            let pk = str_attr(item, PK)
                .ok_or_else(|| StoreError::Corrupt("index item without pk".into()))?
                .to_string();
            if !docs.contains_key(&pk) {
                let ahead = (limit + 1 - out.len()).clamp(25, MAX_BATCH_GET);
                let wanted: Vec<String> = queue
                    .iter()
                    .filter_map(|r| r.read.as_ref())
                    .flat_map(|(items, _)| items.iter())
                    .filter_map(|i| str_attr(i, PK))
                    .filter(|pk| !docs.contains_key(*pk))
                    .take(ahead)
                    .map(String::from)
                    .collect();
                let keys = wanted
                    .iter()
                    .map(|pk| {
                        Item::from([(PK.to_string(), s(pk)), (SK.to_string(), s(CANDIDATE_SK))])
                    })
                    .collect();
                for found in store.batch_get(keys).await? {
                    let c: Candidate = decode("candidate", &found)?;
                    docs.insert(candidate_pk(&c.id), Some(c));
                }
                // Gone since the index was read: remembered as absent.
                for pk in wanted {
                    docs.entry(pk).or_insert(None);
                }
            }
            let Some(front) = queue.front_mut() else {
                break 'page;
            };
            let Some(item) = front.read.as_mut().and_then(|(items, _)| items.pop_front()) else {
                continue;
            };
            if let Some(Some(c)) = docs.remove(&pk) {
                if filter.matches(&c) {
                    if out.len() == limit {
                        // One more than the page: there is a next page.
                        out.push(c);
                        break 'page;
                    }
                    last = Some((front.slice.id(), index_key(&item, front.slice.names)?));
                    out.push(c);
                }
            }
        }
    }
    let next = if out.len() > limit {
        out.truncate(limit);
        last.map(|(s, k)| Cursor::Slice { s, k: Some(k) })
    } else if cut {
        // Out of reads for this page: resume where the reading stopped.
        match queue.front() {
            Some(r) => Some(Cursor::Slice {
                s: r.slice.id(),
                k: match &r.start {
                    Some(k) => Some(index_key(k, r.slice.names)?),
                    None => last
                        .as_ref()
                        .filter(|(s, _)| *s == r.slice.id())
                        .map(|(_, k)| k.clone()),
                },
            }),
            None => then.map(|s| Cursor::Slice { s, k: None }),
        }
    } else {
        then.map(|s| Cursor::Slice { s, k: None })
    };
    Ok(Page {
        items: out,
        next: next.map(|c| encode_cursor(&c)).transpose()?,
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
    let mut bound = filter.due_before.map(due_bound);
    // (position in the merged order, partition): a state's shards share its position.
    let (index, pk_name, sk_name, sources): (&str, &str, &str, Vec<(usize, String)>) =
        match filter.state {
            None if filter.due_before.is_some() => (
                GSI3,
                G3PK,
                G3SK,
                (0..SHARDS).map(|shard| (0, due_pk(shard))).collect(),
            ),
            None => {
                bound = filter.alert_before.map(due_bound);
                (
                    GSI6,
                    G6PK,
                    G6SK,
                    (0..SHARDS).map(|shard| (0, alert_pk(shard))).collect(),
                )
            }
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
    let keys_only = KEYS_ONLY.contains(&index);
    // What the index's key does not already decide (the bound is in the key condition).
    let residue = CandidateFilter {
        state: None,
        due_before: None,
        alert_before: if index == GSI6 {
            None
        } else {
            filter.alert_before
        },
        ..filter.clone()
    };
    let size = read_size(limit, &residue);
    // Matching candidates read so far (or, from a keys-only index, their keys), by their
    // merged position.
    let mut found: BTreeMap<(usize, String), Found> = BTreeMap::new();
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
                .limit(size)
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
            let store = store.clone();
            reads.spawn(async move { (i, store.index_read(q).await) });
        }
        while let Some(joined) = reads.join_next().await {
            let (i, read) =
                joined.map_err(|e| StoreError::Unavailable(format!("query task: {e}")))?;
            let (items, next) = read?;
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
                if keys_only {
                    let pk = str_attr(&item, PK)
                        .ok_or_else(|| StoreError::Corrupt(format!("{index} item without pk")))?;
                    found.insert((p.state, sk.clone()), Found::Key(pk.to_string()));
                } else {
                    let c: Candidate = decode("candidate", &item)?;
                    if filter.matches(&c) {
                        found.insert((p.state, sk.clone()), Found::Doc(Box::new(c)));
                    }
                }
                p.seen_to = Some(sk);
            }
            match next {
                Some(k) if !p.done => {
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
    let page: Vec<((usize, String), Found)> = found.into_iter().take(limit).collect();
    let next = match (more, page.last()) {
        (true, Some(((i, k), _))) => Some(encode_cursor(&Cursor::Merge {
            i: *i,
            k: k.clone(),
        })?),
        _ => None,
    };
    // From a keys-only index: the candidates now, checked against the whole filter (the
    // index may lag them); one that no longer matches leaves the page a little short.
    let keys: Vec<Item> = page
        .iter()
        .filter_map(|(_, f)| match f {
            Found::Key(pk) => Some(Item::from([
                (PK.to_string(), s(pk)),
                (SK.to_string(), s(CANDIDATE_SK)),
            ])),
            Found::Doc(_) => None,
        })
        .collect();
    let mut docs = std::collections::HashMap::new();
    if !keys.is_empty() {
        for item in store.batch_get(keys).await? {
            let c: Candidate = decode("candidate", &item)?;
            docs.insert(candidate_pk(&c.id), c);
        }
    }
    let items = page
        .into_iter()
        .filter_map(|(_, f)| match f {
            Found::Doc(c) => Some(*c),
            Found::Key(pk) => docs.remove(&pk).filter(|c| filter.matches(c)),
        })
        .collect();
    Ok(Page {
        items,
        next,
        prev: None,
    })
}

/// What a merged read found at a place in its order.
enum Found {
    Doc(Box<Candidate>),
    Key(String),
}
