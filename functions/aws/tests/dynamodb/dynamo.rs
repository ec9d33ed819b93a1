//! What the DynamoDB store promises beyond the shared contract: the bulk-import path, the
//! cost of a transition, the stream as the outbox, work notes in items of their own (and
//! candidates written before they were), and a write too large for an item.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use aws_sdk_dynamodb::types::AttributeValue;

use reclaim_aws::dynamo::keys;
use reclaim_aws::stream::{decode_record, Work};
use reclaim_workflow::intake::format_number;
use reclaim_workflow::ports::{
    CandidateFilter, CandidateRead, CandidateWrite, Change, PageRequest, Sort, SortKey, StoreError,
};
use reclaim_workflow::testing::contract::varied;
use reclaim_workflow::{apply, Actor, Candidate, Event, Principal, State, WorkNote};

fn admin() -> Actor {
    Actor::Person(Principal {
        sam_admin: true,
        ..Principal::user("admin")
    })
}

#[tokio::test]
async fn a_bulk_import_is_chunked_and_all_or_nothing() {
    let store = common::fresh_store("bulk").await;
    let first: Vec<_> = (1..=60).map(varied).collect();
    store.insert(&first).await.unwrap();
    let page = store
        .list(
            &CandidateFilter::default(),
            &PageRequest {
                limit: 1000,
                cursor: None,
                sort: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 60);
    assert!(page.next.is_none());

    // 40 new ones and one that exists: refused, and none of the 40 is stored.
    let mut second: Vec<_> = (100..140).map(varied).collect();
    second.push(varied(7));
    match store.insert(&second).await {
        Err(StoreError::Duplicate { .. }) => {}
        other => panic!("expected a duplicate, got {other:?}"),
    }
    for c in &second[..40] {
        assert_eq!(store.get(&c.id).await.unwrap(), None);
    }
    // A number already taken is a duplicate too.
    let mut renumbered: Vec<_> = (200..230).map(varied).collect();
    renumbered[29].number = format_number(3);
    assert!(matches!(
        store.insert(&renumbered).await,
        Err(StoreError::Duplicate { .. })
    ));
    // The counter stays ahead of inserted numbers.
    assert!(store.allocate_numbers(1).await.unwrap() > 60);
}

#[tokio::test]
async fn a_transition_is_one_write_and_its_effects_ride_the_stream() {
    let _turn = common::STREAM_TURN.lock().await;
    let store = common::fresh_store("outbox").await;
    let c = reclaim_workflow::testing::candidate();
    store.insert(std::slice::from_ref(&c)).await.unwrap();
    let mut stream = common::StreamReader::open(store.table()).await;
    let _ = stream.next_event().await; // the import

    store.record_calls();
    let before = store.stats();
    let read = store.get(&c.id).await.unwrap().unwrap();
    let t = apply(&read, &Event::Reclaim, &admin(), read.opened_at).unwrap();
    assert!(!t.effects.is_empty(), "Reclaim emails the user");
    store
        .commit(&Change {
            expected_version: read.version,
            candidate: t.candidate.clone(),
            entry: t.entry.clone(),
            effects: t.effects.clone(),
        })
        .await
        .unwrap();
    let cost = store.stats().since(&before);
    assert_eq!(
        (cost.reads, cost.writes),
        (1, 1),
        "one read, one write: {cost:?}"
    );
    // Each call is on record with the items it touched and the capacity they cost by the
    // documented rules: a consistent query of the candidate's item (and its notes: none), a
    // transaction (2x) of the candidate, its history entry and its place in each order.
    let calls = store.take_calls();
    let ops: Vec<&str> = calls.iter().map(|c| c.op).collect();
    assert_eq!(ops, ["Query", "TransactWriteItems"], "{calls:?}");
    assert_eq!(calls[0].items.len(), 1);
    assert_eq!(calls[0].computed, 1.0, "{calls:?}");
    let written: Vec<&str> = calls[1].items.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(written[0], format!("C#{}/C", c.id));
    assert!(
        written[1].starts_with(&format!("C#{}/H#", c.id)),
        "{written:?}"
    );
    let orders: Vec<&&str> = written[2..].iter().collect();
    assert_eq!(orders.len(), SortKey::ALL.len(), "{written:?}");
    assert!(orders
        .iter()
        .all(|k| k.starts_with(&format!("C#{}/O#", c.id))));
    assert!(
        calls[1].computed >= 4.0,
        "two items, transactional: {calls:?}"
    );
    assert_eq!(cost.computed_write_units, calls[1].computed);

    // The stream carries the candidate at its new version with exactly its effects; the
    // history item's record is not work.
    let event: aws_lambda_events::dynamodb::Event =
        serde_json::from_value(stream.next_event().await).unwrap();
    let work: Vec<Work> = event
        .records
        .iter()
        .map(|r| decode_record(r).unwrap())
        .filter(|w| matches!(w, Work::Run { .. }))
        .collect();
    assert_eq!(
        work,
        vec![Work::Run {
            candidate: Box::new(t.candidate.clone()),
            effects: t.effects.clone()
        }]
    );

    // A work note bumps the version with no effects: its record is skipped.
    let note = apply(
        &t.candidate,
        &Event::WorkNote {
            text: "called".into(),
        },
        &admin(),
        t.candidate.opened_at,
    )
    .unwrap();
    store
        .commit(&Change {
            expected_version: t.candidate.version,
            candidate: note.candidate.clone(),
            entry: note.entry,
            effects: note.effects.clone(),
        })
        .await
        .unwrap();
    let event: aws_lambda_events::dynamodb::Event =
        serde_json::from_value(stream.next_event().await).unwrap();
    let runs = event
        .records
        .iter()
        .filter(|r| matches!(decode_record(r), Ok(Work::Run { .. })))
        .count();
    assert_eq!(runs, usize::from(!note.effects.is_empty()));
}

#[tokio::test]
async fn numbers_find_candidates_and_cursors_belong_to_their_listing() {
    let store = common::fresh_store("lookups").await;
    let all: Vec<_> = (1..=12).map(varied).collect();
    store.insert(&all).await.unwrap();
    let c = &all[4];
    assert_eq!(store.get(&c.number).await.unwrap().as_ref(), Some(c));
    assert_eq!(
        store.history(&c.number).await.unwrap(),
        store.history(&c.id).await.unwrap()
    );

    let by_state = CandidateFilter {
        state: Some(State::Ready),
        ..Default::default()
    };
    let scan = store
        .list(
            &CandidateFilter::default(),
            &PageRequest {
                limit: 2,
                cursor: None,
                sort: None,
            },
        )
        .await
        .unwrap();
    let foreign = scan.next.expect("more than one page");
    // A scan cursor given to a state listing is refused, not reinterpreted.
    let r = store
        .list(
            &by_state,
            &PageRequest {
                limit: 2,
                cursor: Some(foreign),
                sort: None,
            },
        )
        .await;
    assert!(matches!(r, Err(ref e) if !e.is_retryable()), "{r:?}");
}

/// A work note through the store as `App::transition` does it: read, apply, commit.
async fn add_note(store: &reclaim_aws::DynamoStore, id: &str, text: &str) -> Candidate {
    let current = store.get(id).await.unwrap().unwrap();
    let t = apply(
        &current,
        &Event::WorkNote { text: text.into() },
        &admin(),
        current.opened_at,
    )
    .unwrap();
    store
        .commit(&Change {
            expected_version: current.version,
            candidate: t.candidate.clone(),
            entry: t.entry,
            effects: t.effects,
        })
        .await
        .unwrap();
    t.candidate
}

#[tokio::test]
async fn a_noted_candidate_is_still_one_read_and_one_write() {
    let store = common::fresh_store("notes").await;
    let c = reclaim_workflow::testing::candidate();
    store.insert(std::slice::from_ref(&c)).await.unwrap();
    for i in 0..3 {
        add_note(&store, &c.id, &format!("note {i}")).await;
    }
    store.record_calls();
    let noted = add_note(&store, &c.id, "the fourth").await;
    let calls = store.take_calls();
    let ops: Vec<&str> = calls.iter().map(|c| c.op).collect();
    assert_eq!(ops, ["Query", "TransactWriteItems"], "{calls:?}");
    assert_eq!(calls[0].items.len(), 4, "the candidate and its 3 notes");
    let written: Vec<&str> = calls[1].items.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(written.len(), 3, "candidate, history, the new note only");
    assert!(
        written[2].starts_with(&format!("C#{}/CW#", c.id)),
        "{written:?}"
    );
    assert_eq!(store.get(&c.id).await.unwrap().unwrap(), noted);

    // A list reads no notes; the candidate item carries none in its document.
    let listed = store
        .list(
            &CandidateFilter::default(),
            &PageRequest {
                limit: 10,
                cursor: None,
                sort: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert!(listed.items[0].work_notes.is_empty());
    assert_eq!(listed.items[0].version, noted.version);
}

/// A candidate item as the store wrote it before work notes had items of their own: the notes
/// in its document, no `wa` attribute.
async fn put_older_item(store: &reclaim_aws::DynamoStore, c: &Candidate) {
    use aws_sdk_dynamodb::types::AttributeValue::S;
    let mut put = store
        .client()
        .put_item()
        .table_name(store.table())
        .item(keys::PK, S(keys::candidate_pk(&c.id)))
        .item(keys::SK, S(keys::CANDIDATE_SK.into()))
        .item(keys::TYPE, S("c".into()))
        .item(keys::DOC, S(serde_json::to_string(c).unwrap()))
        .item(
            keys::VERSION,
            aws_sdk_dynamodb::types::AttributeValue::N(c.version.to_string()),
        )
        .item(keys::NUMBER, S(c.number.clone()))
        .item(keys::G1PK, S(keys::state_pk(c.state, keys::shard(&c.id))))
        .item(keys::G1SK, S(keys::state_sk(c.due_at, &c.id)));
    if let Some(g) = &c.assignment_group {
        put = put
            .item(keys::G2PK, S(keys::group_pk(g)))
            .item(keys::G2SK, S(format!("C#{}", c.id)));
    }
    put.send().await.unwrap();
    store
        .client()
        .put_item()
        .table_name(store.table())
        .item(keys::PK, S(keys::alias_pk(&c.number)))
        .item(keys::SK, S(keys::ALIAS_SK.into()))
        .item(keys::TYPE, S("n".into()))
        .item(keys::TARGET, S(c.id.clone()))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_candidate_written_with_notes_in_its_document_reads_alike_and_keeps_them() {
    let store = common::fresh_store("older").await;
    let mut c = reclaim_workflow::testing::candidate();
    c.version = 7;
    c.work_notes = (0..3)
        .map(|i| WorkNote {
            at: c.opened_at,
            author: "person:admin".into(),
            text: format!("written before notes moved, {i}"),
        })
        .collect();
    put_older_item(&store, &c).await;
    assert_eq!(store.get(&c.id).await.unwrap().as_ref(), Some(&c));
    assert_eq!(store.get(&c.number).await.unwrap().as_ref(), Some(&c));

    // Its next transition moves the notes into items; none is lost, none doubled.
    let noted = add_note(&store, &c.id, "the first note of the new layout").await;
    assert_eq!(noted.work_notes.len(), 4);
    assert_eq!(store.get(&c.id).await.unwrap().unwrap(), noted);
    let again = add_note(&store, &c.id, "and one more").await;
    assert_eq!(store.get(&c.id).await.unwrap().unwrap(), again);
    assert_eq!(again.work_notes[..4], noted.work_notes[..]);

    // A transition from a listed candidate of the older layout keeps its notes too.
    let mut older = reclaim_workflow::testing::candidate();
    older.id = "c-older".into();
    older.number = format_number(900);
    older.work_notes = c.work_notes.clone();
    put_older_item(&store, &older).await;
    let listed = store
        .list(
            &CandidateFilter {
                state: Some(older.state),
                ..Default::default()
            },
            &PageRequest {
                limit: 10,
                cursor: None,
                sort: None,
            },
        )
        .await
        .unwrap();
    let listed = listed.items.iter().find(|l| l.id == older.id).unwrap();
    let t = apply(listed, &Event::Reclaim, &admin(), listed.opened_at).unwrap();
    store
        .commit(&Change {
            expected_version: listed.version,
            candidate: t.candidate.clone(),
            entry: t.entry,
            effects: t.effects,
        })
        .await
        .unwrap();
    let after = store.get(&older.id).await.unwrap().unwrap();
    assert_eq!(after.state, State::AwaitingUser);
    assert_eq!(after.work_notes, older.work_notes);
}

#[tokio::test]
#[ignore = "needs DynamoDB Local (moto stores an item of any size): test.sh runs it there"]
async fn a_candidate_too_large_for_an_item_is_refused_as_too_large() {
    let store = common::fresh_store("too-large").await;
    let mut c = reclaim_workflow::testing::candidate();
    // Over DynamoDB's 400 KB item limit in one field of the document.
    c.device = Some("d".repeat(500_000));
    match store.insert(std::slice::from_ref(&c)).await {
        Err(e @ StoreError::TooLarge(_)) => assert!(!e.is_retryable()),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(store.get(&c.id).await.unwrap(), None, "nothing was stored");
}

#[tokio::test]
async fn the_schedulers_due_listing_reads_only_the_due_partitions() {
    let store = common::fresh_store("due").await;
    // Candidates in every state, half of them with a due time (some past, some future).
    let now = reclaim_workflow::testing::candidate().opened_at;
    let all: Vec<Candidate> = (1..=80)
        .map(|i| {
            let mut c = varied(i);
            c.state = State::ALL[i as usize % State::ALL.len()];
            c.due_at = match i % 4 {
                0 => Some(now - chrono::Duration::hours(i as i64)),
                1 => Some(now + chrono::Duration::days(3)),
                _ => None,
            };
            c
        })
        .collect();
    store.insert(&all).await.unwrap();
    let want: Vec<&str> = {
        let mut v: Vec<&Candidate> = all
            .iter()
            .filter(|c| c.due_at.is_some_and(|d| d <= now))
            .collect();
        v.sort_by_key(|c| (c.due_at, c.id.clone()));
        v.iter().map(|c| c.id.as_str()).collect()
    };
    assert_eq!(want.len(), 20);

    store.record_calls();
    let filter = CandidateFilter {
        due_before: Some(now),
        ..Default::default()
    };
    let mut got = Vec::new();
    let mut page = PageRequest {
        limit: 50,
        cursor: None,
        sort: None,
    };
    loop {
        let p = store.list(&filter, &page).await.unwrap();
        got.extend(p.items.into_iter().map(|c| c.id));
        match p.next {
            Some(n) => page.cursor = Some(n),
            None => break,
        }
    }
    let calls = store.take_calls();
    assert_eq!(got, want, "due candidates, in due order");
    // One query per due partition, however many states hold candidates; each read only
    // candidates that are due.
    assert_eq!(calls.len(), keys::SHARDS as usize, "{calls:?}");
    assert!(calls.iter().all(|c| c.op == "Query"), "{calls:?}");
    let read: usize = calls.iter().map(|c| c.items.len()).sum();
    assert_eq!(read, want.len(), "{calls:?}");
}

/// A page of a listing: the calls it made and the candidates it found.
async fn one_page(
    store: &reclaim_aws::DynamoStore,
    filter: &CandidateFilter,
) -> (Vec<Candidate>, Vec<reclaim_aws::dynamo::CallRecord>) {
    store.record_calls();
    let _ = store.take_calls();
    let page = PageRequest {
        limit: 50,
        cursor: None,
        sort: None,
    };
    let p = store.list(filter, &page).await.unwrap();
    (p.items, store.take_calls())
}

#[tokio::test]
async fn searches_and_alerts_read_what_matches_not_the_table() {
    let store = common::fresh_store("search").await;
    let now = reclaim_workflow::testing::candidate().opened_at;
    // 300 candidates of 100 people; one of them, Zed Zander, has three, one of them for the
    // only Blender seats; 60 are closed, the others alerts after 31 days.
    let all: Vec<Candidate> = (1..=300)
        .map(|i| {
            let mut c = varied(i);
            let person = i % 100;
            if let Some(u) = c.user.as_mut() {
                u.id = format!("person-{person:03}");
                u.display_name = if person == 7 {
                    "Zed Zander".into()
                } else {
                    format!("Person {person}")
                };
            }
            if i == 107 {
                c.software.publisher = "Blender Foundation".into();
                c.software.product = "Blender".into();
            }
            c.state = if i % 5 == 0 {
                State::ClosedComplete
            } else {
                State::Ready
            };
            c
        })
        .collect();
    store.insert(&all).await.unwrap();

    let zed = CandidateFilter {
        user_text: Some("zander".into()),
        ..Default::default()
    };
    let (found, calls) = one_page(&store, &zed).await;
    assert_eq!(found.len(), 3, "{calls:?}");
    // The people catalog, the person's keys, their candidates.
    let ops: Vec<&str> = calls.iter().map(|c| c.op).collect();
    assert_eq!(ops, ["Query", "Query", "BatchGetItem"], "{calls:?}");
    let read: usize = calls.iter().skip(1).map(|c| c.items.len()).sum();
    assert_eq!(read, 6, "three keys and three candidates: {calls:?}");

    let blender = CandidateFilter {
        software_text: Some("blend".into()),
        ..Default::default()
    };
    let (found, calls) = one_page(&store, &blender).await;
    assert_eq!(found.len(), 1, "{calls:?}");
    let ops: Vec<&str> = calls.iter().map(|c| c.op).collect();
    assert_eq!(ops, ["Query", "Query", "BatchGetItem"], "{calls:?}");

    let one = CandidateFilter {
        user: Some("person-007".into()),
        ..Default::default()
    };
    let (found, calls) = one_page(&store, &one).await;
    assert_eq!(found.len(), 3);
    assert_eq!(
        calls.len(),
        2,
        "the person's keys, their candidates: {calls:?}"
    );

    // Alerts: the alert index's four partitions below the time, then one page of candidates.
    let alerts = CandidateFilter {
        alert_before: Some(now + chrono::Duration::days(40)),
        ..Default::default()
    };
    let (found, calls) = one_page(&store, &alerts).await;
    assert_eq!(found.len(), 50);
    assert!(found.iter().all(|c| alerts.matches(c)));
    let queries = calls.iter().filter(|c| c.op == "Query").count();
    assert_eq!(queries, keys::SHARDS as usize, "{calls:?}");
    assert_eq!(calls.len(), queries + 1, "{calls:?}");
    let none_yet = CandidateFilter {
        alert_before: Some(now),
        ..Default::default()
    };
    let (found, _) = one_page(&store, &none_yet).await;
    assert!(found.is_empty(), "nothing is an alert on its first day");

    // No filter, or a kind alone: the order index in number order, never a scan.
    let kind = CandidateFilter {
        applies_to: Some(all[0].applies_to),
        ..Default::default()
    };
    for filter in [CandidateFilter::default(), kind] {
        let want: Vec<&str> = all
            .iter()
            .filter(|c| filter.matches(c))
            .map(|c| c.id.as_str())
            .collect();
        let (found, calls) = one_page(&store, &filter).await;
        assert!(
            calls.iter().all(|c| c.op != "Scan"),
            "{filter:?}: {calls:?}"
        );
        assert!(calls.len() <= State::ALL.len() + 2, "{filter:?}: {calls:?}");
        assert_eq!(found.len(), 50.min(want.len()), "{filter:?}");
        assert!(found.iter().all(|c| filter.matches(c)));
    }
}

#[tokio::test]
async fn every_sorted_list_read_from_the_order_index_holds_exactly_the_matches_in_order() {
    // No list sorted in memory: every filter goes through `by-order`, merged over its shards,
    // forwards and back, with the stage filtered in the index read.
    let store = common::fresh_store("orders")
        .await
        .with_sort_in_memory_up_to(0);
    reclaim_workflow::testing::contract::sorted_pages_hold_exactly_the_matches_in_order(&store)
        .await;
}

/// Every page of `sort`, following `next`.
async fn sorted_ids(store: &reclaim_aws::DynamoStore, sort: Sort) -> Vec<String> {
    filtered_sorted_ids(store, &CandidateFilter::default(), sort, 3).await
}

async fn filtered_sorted_ids(
    store: &reclaim_aws::DynamoStore,
    filter: &CandidateFilter,
    sort: Sort,
    limit: u32,
) -> Vec<String> {
    reclaim_workflow::testing::contract::every_page(store, filter, Some(sort), limit)
        .await
        .into_iter()
        .map(|c| c.id)
        .collect()
}

#[tokio::test]
async fn a_sorted_page_cut_short_by_its_budget_goes_on_where_it_stopped() {
    // Two index reads and three candidates examined a page: most pages end early, some
    // empty, and following them still gives every match once, in order.
    let store = common::fresh_store("cut")
        .await
        .with_sort_in_memory_up_to(0)
        .with_sorted_page_budget(2, 3);
    let all: Vec<Candidate> = (1..=40).map(varied).collect();
    store.insert(&all).await.unwrap();
    let filters = [
        CandidateFilter::default(),
        CandidateFilter {
            state: Some(State::Ready),
            ..Default::default()
        },
        CandidateFilter {
            publisher: Some("Autodesk".into()),
            ..Default::default()
        },
    ];
    for filter in &filters {
        for key in [SortKey::Savings, SortKey::User, SortKey::Number] {
            for descending in [false, true] {
                let sort = Sort { key, descending };
                let mut want: Vec<&Candidate> = all.iter().filter(|c| filter.matches(c)).collect();
                want.sort_by(|a, b| sort.compare(a, b));
                let want: Vec<String> = want.iter().map(|c| c.id.clone()).collect();
                let got = filtered_sorted_ids(&store, filter, sort, 4).await;
                assert_eq!(got, want, "{filter:?}, {sort:?}");
            }
        }
    }
}

#[tokio::test]
async fn the_rebuild_sorts_candidates_stored_before_the_orders_and_never_sets_one_back() {
    let store = common::fresh_store("reindex").await;
    let all: Vec<Candidate> = (1..=8).map(varied).collect();
    store.insert(&all).await.unwrap();
    let by_savings = Sort {
        key: SortKey::Savings,
        descending: true,
    };
    let mut want = all.clone();
    want.sort_by(|a, b| by_savings.compare(a, b));
    let want: Vec<String> = want.into_iter().map(|c| c.id).collect();
    assert_eq!(sorted_ids(&store, by_savings).await, want);

    // As a release before the order index left them: no order items.
    for c in &all {
        for key in SortKey::ALL {
            store
                .client()
                .delete_item()
                .table_name(store.table())
                .key(keys::PK, s(&keys::candidate_pk(&c.id)))
                .key(keys::SK, s(&keys::order_sk(key)))
                .send()
                .await
                .unwrap();
        }
    }
    assert!(sorted_ids(&store, by_savings).await.is_empty());
    // The rebuild reads the candidates themselves, so it finds them all the same.
    let mut every = Vec::new();
    let mut page = PageRequest {
        limit: 3,
        cursor: None,
        sort: None,
    };
    loop {
        let p = store.every(&page).await.unwrap();
        every.extend(p.items.into_iter().map(|c| c.id));
        match p.next {
            Some(n) => page.cursor = Some(n),
            None => break,
        }
    }
    every.sort();
    let mut ids: Vec<String> = all.iter().map(|c| c.id.clone()).collect();
    ids.sort();
    assert_eq!(every, ids);

    // One moves on after the rebuild read it: the rebuild leaves its newer places alone.
    let ready = all.iter().position(|c| c.state == State::Ready).unwrap();
    let stale = store.get(&all[ready].id).await.unwrap().unwrap();
    let t = apply(&stale, &Event::Reclaim, &admin(), stale.opened_at).unwrap();
    store
        .commit(&Change {
            expected_version: stale.version,
            candidate: t.candidate.clone(),
            entry: t.entry,
            effects: t.effects,
        })
        .await
        .unwrap();
    let written = store.reindex(&all).await.unwrap();
    assert_eq!(
        written,
        all.len() as u64 - 1,
        "all but the one that moved on"
    );
    let stage = store
        .client()
        .get_item()
        .table_name(store.table())
        .key(keys::PK, s(&keys::candidate_pk(&all[ready].id)))
        .key(keys::SK, s(&keys::order_sk(SortKey::Stage)))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(
        stage.get(keys::VERSION),
        Some(&AttributeValue::N(t.candidate.version.to_string()))
    );
    let mut now = all.clone();
    now[ready] = t.candidate;
    for key in SortKey::ALL {
        for descending in [false, true] {
            let sort = Sort { key, descending };
            let mut want = now.clone();
            want.sort_by(|a, b| sort.compare(a, b));
            let want: Vec<String> = want.into_iter().map(|c| c.id).collect();
            assert_eq!(sorted_ids(&store, sort).await, want, "{sort:?}");
        }
    }
    // Again: nothing is older than what is written, and nothing changes.
    assert_eq!(store.reindex(&now).await.unwrap(), now.len() as u64);
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}
