//! What the DynamoDB store promises beyond the shared contract: the bulk-import path, the
//! cost of a transition, and the stream as the outbox.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use reclaim_aws::stream::{decode_record, Work};
use reclaim_workflow::intake::format_number;
use reclaim_workflow::ports::{
    CandidateFilter, CandidateRead, CandidateWrite, Change, PageRequest, StoreError,
};
use reclaim_workflow::testing::contract::varied;
use reclaim_workflow::{apply, Actor, Event, Principal, State};

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
    // documented rules: a consistent read of one item, a transaction of two puts (2x).
    let calls = store.take_calls();
    let ops: Vec<&str> = calls.iter().map(|c| c.op).collect();
    assert_eq!(ops, ["GetItem", "TransactWriteItems"], "{calls:?}");
    assert_eq!(calls[0].items.len(), 1);
    assert_eq!(calls[0].computed, 1.0, "{calls:?}");
    let written: Vec<&str> = calls[1].items.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(written[0], format!("C#{}/C", c.id));
    assert!(
        written[1].starts_with(&format!("C#{}/H#", c.id)),
        "{written:?}"
    );
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
            },
        )
        .await;
    assert!(matches!(r, Err(ref e) if !e.is_retryable()), "{r:?}");
}
