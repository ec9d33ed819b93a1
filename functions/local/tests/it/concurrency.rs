//! Optimistic concurrency under real contention on the SQLite store.

// Test support code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{admin, candidate, change, test_db};
use reclaim_workflow::ports::{CandidateRead, CandidateWrite, StoreError};
use reclaim_workflow::{Effect, EffectKind, Event, MailKind, Recipient};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_conflicting_writes_one_wins_and_only_its_effects_are_queued() {
    let db = test_db();
    let c = candidate(1);
    db.insert(std::slice::from_ref(&c)).await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let mut writers = Vec::new();
    for i in 0..50 {
        let store = db.store.clone();
        let barrier = barrier.clone();
        let c = c.clone();
        writers.push(tokio::spawn(async move {
            // Each writer's transition is distinguishable: its own note and its own effect.
            let text = format!("writer {i}");
            let mut ch = change(&c, &Event::WorkNote { text: text.clone() }, &admin());
            ch.effects = vec![Effect::new(
                &c.id,
                ch.candidate.version,
                EffectKind::Email {
                    mail: MailKind::Reminder,
                    recipient: Recipient::Person(format!("writer-{i}")),
                },
            )];
            barrier.wait().await;
            (i, store.commit(&ch).await)
        }));
    }
    let mut winners = Vec::new();
    let mut conflicts = 0;
    for w in writers {
        match w.await.unwrap() {
            (i, Ok(())) => winners.push(i),
            (_, Err(StoreError::Conflict { expected, .. })) => {
                assert_eq!(expected, 0);
                conflicts += 1;
            }
            (_, Err(e)) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one writer wins");
    assert_eq!(conflicts, 49, "every other writer gets a conflict");
    let winner = winners[0];

    let stored = db.get(&c.id).await.unwrap().unwrap();
    assert_eq!(stored.version, 1);
    assert_eq!(stored.work_notes.len(), 1);
    assert_eq!(stored.work_notes[0].text, format!("writer {winner}"));

    let history = db.history(&c.id).await.unwrap();
    assert_eq!(history.len(), 1, "one history entry");
    assert_eq!(
        history[0].reason.as_deref(),
        Some(&*format!("writer {winner}"))
    );

    let queued = db.effects_for(&c.id).await.unwrap();
    assert_eq!(
        queued.len(),
        1,
        "only the winner's effects are in the outbox"
    );
    assert!(queued[0].key.ends_with(&format!("person-writer-{winner}")));
    assert_eq!(
        queued[0].candidate, stored,
        "the effect carries the winner's snapshot"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_to_different_candidates_all_commit() {
    let db = test_db();
    let all: Vec<_> = (1..=200).map(candidate).collect();
    db.insert(&all).await.unwrap();
    let mut writers = Vec::new();
    for c in all.clone() {
        let store = db.store.clone();
        writers.push(tokio::spawn(async move {
            store.commit(&change(&c, &Event::Reclaim, &admin())).await
        }));
    }
    for w in writers {
        w.await.unwrap().unwrap();
    }
    for c in &all {
        assert_eq!(db.get(&c.id).await.unwrap().unwrap().version, 1);
        assert_eq!(db.history(&c.id).await.unwrap().len(), 1);
    }
    let counts = db.outbox_counts().await.unwrap();
    // Reclaim of the sample (ITIL user, notify on): an email and a user task each.
    assert_eq!(counts.pending, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_write_in_a_group_commit_does_not_undo_the_others() {
    let db = test_db();
    let all: Vec<_> = (1..=50).map(candidate).collect();
    db.insert(&all).await.unwrap();
    let mut writers = Vec::new();
    for (i, c) in all.iter().cloned().enumerate() {
        let store = db.store.clone();
        writers.push(tokio::spawn(async move {
            let mut ch = change(&c, &Event::Reclaim, &admin());
            if i % 2 == 1 {
                // A stale write: loses its race whatever batch it lands in.
                ch.expected_version = 7;
            }
            (i, store.commit(&ch).await)
        }));
    }
    for w in writers {
        let (i, r) = w.await.unwrap();
        if i % 2 == 1 {
            assert!(matches!(r, Err(StoreError::Conflict { .. })), "{i}: {r:?}");
        } else {
            r.unwrap();
        }
    }
    for (i, c) in all.iter().enumerate() {
        let stored = db.get(&c.id).await.unwrap().unwrap();
        assert_eq!(stored.version, if i % 2 == 1 { 0 } else { 1 }, "{i}");
        let effects = db.effects_for(&c.id).await.unwrap().len();
        assert_eq!(effects, if i % 2 == 1 { 0 } else { 2 }, "{i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_failing_after_it_changed_rows_leaves_no_trace_and_the_others_commit() {
    let db = test_db();
    let all: Vec<_> = (1..=50).map(candidate).collect();
    db.insert(&all).await.unwrap();
    let mut writers = Vec::new();
    for (i, c) in all.iter().cloned().enumerate() {
        let store = db.store.clone();
        writers.push(tokio::spawn(async move {
            let mut ch = change(&c, &Event::Reclaim, &admin());
            if i % 3 == 1 {
                // The same effect twice: the candidate and its history are written, then the
                // second outbox row is refused.
                let again = ch.effects[0].clone();
                ch.effects.push(again);
            }
            (i, store.commit(&ch).await)
        }));
    }
    for w in writers {
        let (i, r) = w.await.unwrap();
        if i % 3 == 1 {
            assert!(matches!(r, Err(StoreError::Duplicate { .. })), "{i}: {r:?}");
        } else {
            r.unwrap();
        }
    }
    for (i, c) in all.iter().enumerate() {
        let failed = i % 3 == 1;
        let stored = db.get(&c.id).await.unwrap().unwrap();
        assert_eq!(stored.version, if failed { 0 } else { 1 }, "{i}");
        let history = db.history(&c.id).await.unwrap().len();
        assert_eq!(history, if failed { 0 } else { 1 }, "{i}");
        let effects = db.effects_for(&c.id).await.unwrap().len();
        assert_eq!(effects, if failed { 0 } else { 2 }, "{i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn savings_totals_count_the_committed_writes_of_a_group_commit_and_none_that_failed() {
    use reclaim_workflow::savings::{Savings, ALL_SCOPE};
    let db = test_db();
    let all: Vec<_> = (1..=60)
        .map(|n| {
            let mut c = candidate(n);
            c.assignment_group = Some(format!("group-{}", n % 2));
            c
        })
        .collect();
    db.insert(&all).await.unwrap();
    let mut writers = Vec::new();
    for (i, c) in all.iter().cloned().enumerate() {
        let store = db.store.clone();
        writers.push(tokio::spawn(async move {
            // Skipping takes the candidate's potential savings out of the totals.
            let mut ch = change(&c, &Event::CloseSkipped { reason: None }, &admin());
            if i % 3 == 1 {
                // Fails after its candidate, history and savings move were written.
                let mail = Effect::new(
                    &c.id,
                    ch.candidate.version,
                    EffectKind::Email {
                        mail: MailKind::Reminder,
                        recipient: Recipient::Person("someone".into()),
                    },
                );
                ch.effects = vec![mail.clone(), mail];
            }
            (i, store.commit(&ch).await)
        }));
    }
    for w in writers {
        let (i, r) = w.await.unwrap();
        assert_eq!(r.is_err(), i % 3 == 1, "{i}: {r:?}");
    }
    let mut fresh = Savings::default();
    let mut kept = 0;
    for c in &all {
        let stored = db.get(&c.id).await.unwrap().unwrap();
        if stored.version == 0 {
            kept += 1;
        }
        fresh.add(&stored);
    }
    assert_eq!(kept, 20);
    assert_eq!(db.savings(ALL_SCOPE).await.unwrap().unwrap(), fresh);
    assert_ne!(fresh, Savings::default(), "the failed ones still count");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_number_allocations_never_overlap() {
    let db = test_db();
    let mut tasks = Vec::new();
    for i in 0..40u32 {
        let store = db.store.clone();
        let n = 1 + i % 5;
        tasks.push(tokio::spawn(async move {
            (store.allocate_numbers(n).await.unwrap(), n)
        }));
    }
    let mut taken = std::collections::BTreeSet::new();
    for t in tasks {
        let (first, n) = t.await.unwrap();
        for k in first..first + u64::from(n) {
            assert!(taken.insert(k), "number {k} handed out twice");
        }
    }
}

#[tokio::test]
async fn inserting_numbered_candidates_keeps_the_counter_ahead() {
    let db = test_db();
    db.insert(&[candidate(41)]).await.unwrap();
    let next = db.allocate_numbers(1).await.unwrap();
    assert!(next > 41, "got {next}");
}
