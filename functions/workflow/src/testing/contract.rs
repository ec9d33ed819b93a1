//! The store contract: what every store adapter must do, written once against the ports.
//!
//! Each check is an async function over any [`ContractStore`]; it expects an **empty** store
//! and panics (fails the test) on the first broken promise. Adapters run the whole suite with
//! [`store_contract_tests!`](crate::store_contract_tests), so SQLite and DynamoDB are held to
//! the same behaviour:
//!
//! ```ignore
//! // In an adapter's tests (needs tokio with `macros` and `rt`):
//! async fn fresh() -> MyFixture { /* an empty store; MyFixture: Deref<Target = MyStore> */ }
//! reclaim_workflow::store_contract_tests!(fresh);
//! ```
//!
//! Nothing here needs a runtime or I/O of its own; the adapter's test harness provides both.

// A failed expectation is a failed test: this module exists to panic on broken promises.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::actor::{Actor, Principal};
use crate::event::{Event, Via};
use crate::intake::format_number;
use crate::model::{
    AppliesTo, Candidate, Exclusions, Group, Justification, Rule, State, Task, TaskKind, User,
};
use crate::ports::{
    CandidateFilter, CandidateStore, Change, Directory, PageRequest, PendingSignIn, RuleStore,
    SessionRecord, SessionStore, StoreError, TaskStore, TokenStore,
};
use crate::transition::apply;
use chrono::Duration;
use std::collections::{BTreeSet, HashSet};

/// Every port a full store implements.
pub trait ContractStore:
    CandidateStore + TaskStore + Directory + RuleStore + SessionStore + TokenStore
{
}
impl<
        T: CandidateStore + TaskStore + Directory + RuleStore + SessionStore + TokenStore + ?Sized,
    > ContractStore for T
{
}

/// The names of every check, in the order the macro runs them.
pub const CHECKS: &[&str] = &[
    "get_by_id_and_by_number",
    "insert_refuses_duplicates_and_stores_nothing",
    "list_applies_each_filter_field",
    "list_pages_cover_every_row_exactly_once",
    "list_order_is_stable",
    "malformed_cursor_is_refused",
    "commit_updates_candidate_history_and_filters",
    "commit_moves_group_and_user_filters",
    "conditional_write_wins_once",
    "commit_to_unknown_candidate_is_not_found",
    "history_is_oldest_first",
    "work_notes_of_any_number_and_size_are_kept",
    "tasks_create_is_idempotent_and_close_by_kind",
    "directory_round_trip",
    "rules_round_trip",
    "numbers_are_unique_and_increasing",
    "sessions_end_at_once_and_expire",
    "sign_ins_are_taken_once",
    "tokens_are_found_by_digest",
    "sorted_pages_follow_each_order_forwards_and_back",
    "sorted_pages_hold_exactly_the_matches_in_order",
    "counts_stop_at_their_bound",
    "searches_find_parts_of_words_ignoring_case",
    "a_cursor_belongs_to_its_order",
    "a_period_of_trails_comes_in_time_order_a_page_at_a_time",
    "savings_totals_equal_a_fresh_sum_after_every_kind_of_change",
    "the_alert_filter_finds_exactly_the_alerts_at_each_time",
    "searches_page_through_many_people_and_products",
];

/// Generates one `#[tokio::test]` per contract check. `$fresh` is an async fn returning a
/// fixture that derefs to an empty store.
#[macro_export]
macro_rules! store_contract_tests {
    ($fresh:path) => {
        $crate::store_contract_tests!(@each $fresh;
            get_by_id_and_by_number,
            insert_refuses_duplicates_and_stores_nothing,
            list_applies_each_filter_field,
            list_pages_cover_every_row_exactly_once,
            list_order_is_stable,
            malformed_cursor_is_refused,
            commit_updates_candidate_history_and_filters,
            commit_moves_group_and_user_filters,
            conditional_write_wins_once,
            commit_to_unknown_candidate_is_not_found,
            history_is_oldest_first,
            work_notes_of_any_number_and_size_are_kept,
            tasks_create_is_idempotent_and_close_by_kind,
            directory_round_trip,
            rules_round_trip,
            numbers_are_unique_and_increasing,
            sessions_end_at_once_and_expire,
            sign_ins_are_taken_once,
            tokens_are_found_by_digest,
            sorted_pages_follow_each_order_forwards_and_back,
            sorted_pages_hold_exactly_the_matches_in_order,
            counts_stop_at_their_bound,
            searches_find_parts_of_words_ignoring_case,
            a_cursor_belongs_to_its_order,
            a_period_of_trails_comes_in_time_order_a_page_at_a_time,
            savings_totals_equal_a_fresh_sum_after_every_kind_of_change,
            the_alert_filter_finds_exactly_the_alerts_at_each_time,
            searches_page_through_many_people_and_products
        );
    };
    (@each $fresh:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let fixture = $fresh().await;
                $crate::testing::contract::$check(&*fixture).await;
            }
        )*
    };
}

fn admin() -> Actor {
    Actor::Person(Principal {
        sam_admin: true,
        ..Principal::user("admin")
    })
}

/// A candidate whose filterable fields vary with `n`, so every filter value has matches and
/// non-matches in a set of a few dozen.
pub fn varied(n: u64) -> Candidate {
    let mut c = super::candidate();
    let i = n as usize;
    c.id = format!("cand-{n:04}");
    c.number = format_number(n);
    c.state = State::ALL[i % State::ALL.len()];
    c.justification = Justification::ALL[i % Justification::ALL.len()];
    c.applies_to = AppliesTo::ALL[i % 2];
    c.software.publisher = ["Adobe", "Microsoft", "Autodesk"][i % 3].to_string();
    c.software.product = ["Acrobat Pro", "Visio", "AutoCAD", "Project"][i % 4].to_string();
    // The candidate read back by id and number (n = 2) has a period other than the default.
    c.price_period = crate::PricePeriod::ALL[(i + 1) % 3];
    c.assignment_group = [Some("approvers"), Some("desktop"), None][(i / 3) % 3].map(String::from);
    if matches!(i % 5, 0) {
        c.user = None;
    } else if let Some(u) = c.user.as_mut() {
        u.id = format!("u-{}", i % 4);
        u.display_name = ["Uma Ux", "Ben Builder", "Carla Cole", "Dan Dev"][i % 4].to_string();
        u.email = Some(format!("user{}@example.com", i % 4));
    }
    c.due_at = matches!(i % 2, 0).then(|| c.opened_at + Duration::hours(n as i64));
    c.inactive_days = (!i.is_multiple_of(6)).then_some(((n * 7) % 50) as u32);
    c.deadline_at = (i % 3 == 1).then(|| c.opened_at + Duration::days((n % 9) as i64));
    c.price_per_right_cents = ((n * 1237) % 9000) as i64;
    c.unused_rights = 1 + (i % 2) as u32;
    c
}

async fn seed(store: &(impl ContractStore + ?Sized), count: u64) -> Vec<Candidate> {
    let all: Vec<Candidate> = (1..=count).map(varied).collect();
    store
        .insert(&all)
        .await
        .expect("insert the seed candidates");
    all
}

/// Every page of a listing, following `next` to the end.
async fn all_pages(
    store: &(impl ContractStore + ?Sized),
    filter: &CandidateFilter,
    limit: u32,
) -> Vec<Candidate> {
    every_page(store, filter, None, limit).await
}

/// Every page of a listing in `sort` (the store's own order when `None`), following `next`
/// to the end; each page holds at most `limit`.
pub async fn every_page(
    store: &(impl ContractStore + ?Sized),
    filter: &CandidateFilter,
    sort: Option<crate::ports::Sort>,
    limit: u32,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    let mut cursor = None;
    for _ in 0..10_000 {
        let page = store
            .list(
                filter,
                &PageRequest {
                    limit,
                    cursor,
                    sort,
                },
            )
            .await
            .expect("list a page");
        assert!(
            limit == 0 || page.items.len() <= limit as usize,
            "a page holds at most `limit` items"
        );
        out.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return out,
        }
    }
    panic!("pagination never ended");
}

fn ids(cs: &[Candidate]) -> Vec<String> {
    cs.iter().map(|c| c.id.clone()).collect()
}

fn sorted_ids(cs: &[Candidate]) -> BTreeSet<String> {
    cs.iter().map(|c| c.id.clone()).collect()
}

pub async fn get_by_id_and_by_number(store: &(impl ContractStore + ?Sized)) {
    let all = seed(store, 3).await;
    let c = &all[1];
    assert_eq!(c.price_period, crate::PricePeriod::Monthly);
    assert_eq!(store.get(&c.id).await.unwrap().as_ref(), Some(c));
    assert_eq!(store.get(&c.number).await.unwrap().as_ref(), Some(c));
    assert_eq!(store.get("no-such-candidate").await.unwrap(), None);
    assert_eq!(store.get("RC9999999").await.unwrap(), None);
}

pub async fn insert_refuses_duplicates_and_stores_nothing(store: &(impl ContractStore + ?Sized)) {
    let all = seed(store, 2).await;
    let fresh = varied(10);
    let mut again = varied(11);
    again.id = all[0].id.clone();
    match store.insert(&[fresh.clone(), again]).await {
        Err(StoreError::Duplicate { .. }) => {}
        other => panic!("a duplicate id must be refused, got {other:?}"),
    }
    assert_eq!(
        store.get(&fresh.id).await.unwrap(),
        None,
        "a refused insert stores none of its candidates"
    );
    let twice = varied(12);
    match store.insert(&[twice.clone(), twice.clone()]).await {
        Err(StoreError::Duplicate { .. }) => {}
        other => panic!("a duplicate within one insert must be refused, got {other:?}"),
    }
    assert_eq!(store.get(&twice.id).await.unwrap(), None);
    assert_eq!(
        store.get(&all[0].id).await.unwrap().as_ref(),
        Some(&all[0]),
        "the existing candidate is untouched"
    );
}

pub async fn list_applies_each_filter_field(store: &(impl ContractStore + ?Sized)) {
    let all = seed(store, 40).await;
    let t0 = all[0].opened_at;
    let mut filters = vec![CandidateFilter::default()];
    for s in State::ALL {
        filters.push(CandidateFilter {
            state: Some(s),
            ..Default::default()
        });
    }
    for j in Justification::ALL {
        filters.push(CandidateFilter {
            justification: Some(j),
            ..Default::default()
        });
    }
    for a in AppliesTo::ALL {
        filters.push(CandidateFilter {
            applies_to: Some(a),
            ..Default::default()
        });
    }
    for p in ["Adobe", "microsoft", "AUTODESK", "Nobody"] {
        filters.push(CandidateFilter {
            publisher: Some(p.into()),
            ..Default::default()
        });
    }
    for p in ["Visio", "acrobat pro", "Nothing"] {
        filters.push(CandidateFilter {
            product: Some(p.into()),
            ..Default::default()
        });
    }
    for g in ["approvers", "desktop", "nobody"] {
        filters.push(CandidateFilter {
            group: Some(g.into()),
            ..Default::default()
        });
    }
    for u in ["u-1", "u-2", "u-9"] {
        filters.push(CandidateFilter {
            user: Some(u.into()),
            ..Default::default()
        });
    }
    for h in [0, 7, 20, 1000] {
        filters.push(CandidateFilter {
            due_before: Some(t0 + Duration::hours(h)),
            ..Default::default()
        });
    }
    filters.push(CandidateFilter {
        publisher: Some("Adobe".into()),
        applies_to: Some(AppliesTo::InstalledSoftware),
        group: Some("approvers".into()),
        ..Default::default()
    });
    for f in filters {
        let want: BTreeSet<String> = all
            .iter()
            .filter(|c| f.matches(c))
            .map(|c| c.id.clone())
            .collect();
        let got = all_pages(store, &f, 1000).await;
        assert_eq!(got.len(), want.len(), "no duplicates for {f:?}");
        assert_eq!(sorted_ids(&got), want, "filter {f:?}");
    }
}

pub async fn list_pages_cover_every_row_exactly_once(store: &(impl ContractStore + ?Sized)) {
    let all = seed(store, 23).await;
    for limit in [1, 2, 5, 7, 22, 23, 24, 100] {
        let got = all_pages(store, &CandidateFilter::default(), limit).await;
        assert_eq!(got.len(), all.len(), "limit {limit}: every row once");
        assert_eq!(sorted_ids(&got), sorted_ids(&all), "limit {limit}");
    }
    let filter = CandidateFilter {
        applies_to: Some(AppliesTo::Subscription),
        ..Default::default()
    };
    let want: Vec<&Candidate> = all.iter().filter(|c| filter.matches(c)).collect();
    let got = all_pages(store, &filter, 3).await;
    assert_eq!(got.len(), want.len());
    assert!(got.iter().all(|c| filter.matches(c)));
    // The default page size still pages.
    let first = store
        .list(&CandidateFilter::default(), &PageRequest::default())
        .await
        .unwrap();
    assert!(!first.items.is_empty());
}

pub async fn list_order_is_stable(store: &(impl ContractStore + ?Sized)) {
    seed(store, 12).await;
    let a = all_pages(store, &CandidateFilter::default(), 5).await;
    let b = all_pages(store, &CandidateFilter::default(), 5).await;
    let c = all_pages(store, &CandidateFilter::default(), 1000).await;
    assert_eq!(
        ids(&a),
        ids(&b),
        "the same listing twice gives the same order"
    );
    assert_eq!(ids(&a), ids(&c), "page size does not change the order");
}

pub async fn malformed_cursor_is_refused(store: &(impl ContractStore + ?Sized)) {
    seed(store, 3).await;
    for cursor in ["%%%", "not a cursor", "AAAA"] {
        let r = store
            .list(
                &CandidateFilter::default(),
                &PageRequest {
                    limit: 2,
                    cursor: Some(cursor.into()),
                    sort: None,
                },
            )
            .await;
        match r {
            Err(e) => assert!(!e.is_retryable(), "a bad cursor is not worth retrying"),
            Ok(p) => panic!(
                "cursor {cursor:?} should be refused, got {} items",
                p.items.len()
            ),
        }
    }
}

fn reclaim_change(c: &Candidate) -> Change {
    let t = apply(c, &Event::Reclaim, &admin(), c.opened_at).expect("Ready → Reclaim is allowed");
    Change {
        expected_version: c.version,
        candidate: t.candidate,
        entry: t.entry,
        effects: t.effects,
    }
}

pub async fn commit_updates_candidate_history_and_filters(store: &(impl ContractStore + ?Sized)) {
    let mut c = super::candidate();
    c.due_at = None;
    store.insert(std::slice::from_ref(&c)).await.unwrap();
    let change = reclaim_change(&c);
    store.commit(&change).await.unwrap();
    let stored = store.get(&c.id).await.unwrap().unwrap();
    assert_eq!(stored, change.candidate);
    assert_eq!(stored.state, State::AwaitingUser);
    assert_eq!(stored.version, 1);
    assert_eq!(
        store.history(&c.id).await.unwrap(),
        vec![change.entry.clone()]
    );
    let by_state = |s| CandidateFilter {
        state: Some(s),
        ..Default::default()
    };
    assert_eq!(
        ids(&all_pages(store, &by_state(State::AwaitingUser), 10).await),
        vec![c.id.clone()],
        "the filter sees the new state"
    );
    assert!(all_pages(store, &by_state(State::Ready), 10)
        .await
        .is_empty());
    let due = change
        .candidate
        .due_at
        .expect("awaiting user has a due time");
    let due_filter = CandidateFilter {
        due_before: Some(due),
        ..Default::default()
    };
    assert_eq!(
        ids(&all_pages(store, &due_filter, 10).await),
        vec![c.id.clone()]
    );
    let early = CandidateFilter {
        due_before: Some(due - Duration::seconds(1)),
        ..Default::default()
    };
    assert!(all_pages(store, &early, 10).await.is_empty());
}

pub async fn commit_moves_group_and_user_filters(store: &(impl ContractStore + ?Sized)) {
    let c = super::candidate();
    store.insert(std::slice::from_ref(&c)).await.unwrap();
    let mut user = c.user.clone().unwrap();
    user.id = "u-9".into();
    user.display_name = "Nina Newname".into();
    let t = apply(&c, &Event::UpdateUser { user }, &admin(), c.opened_at).unwrap();
    store
        .commit(&Change {
            expected_version: 0,
            candidate: t.candidate.clone(),
            entry: t.entry,
            effects: t.effects,
        })
        .await
        .unwrap();
    let assign = Event::Assign {
        group: Some("desktop".into()),
        assigned_to: Some("tech".into()),
    };
    let t2 = apply(&t.candidate, &assign, &admin(), c.opened_at).unwrap();
    store
        .commit(&Change {
            expected_version: 1,
            candidate: t2.candidate,
            entry: t2.entry,
            effects: t2.effects,
        })
        .await
        .unwrap();
    let count = |f: CandidateFilter| async move { all_pages(store, &f, 10).await.len() };
    let user_is = |u: &str| CandidateFilter {
        user: Some(u.into()),
        ..Default::default()
    };
    let group_is = |g: &str| CandidateFilter {
        group: Some(g.into()),
        ..Default::default()
    };
    assert_eq!(count(user_is("u-9")).await, 1, "the new user finds it");
    let search = CandidateFilter {
        user_text: Some("newname".into()),
        ..Default::default()
    };
    assert_eq!(count(search).await, 1, "a search finds it by the new name");
    assert_eq!(count(user_is("u-1")).await, 0, "the old user does not");
    assert_eq!(
        count(group_is("desktop")).await,
        1,
        "the new group finds it"
    );
    assert_eq!(
        count(group_is("approvers")).await,
        0,
        "the old group does not"
    );
}

pub async fn conditional_write_wins_once(store: &(impl ContractStore + ?Sized)) {
    let c = super::candidate();
    store.insert(std::slice::from_ref(&c)).await.unwrap();
    let first = reclaim_change(&c);
    let skip = apply(
        &c,
        &Event::CloseSkipped {
            reason: Some("second writer".into()),
        },
        &admin(),
        c.opened_at,
    )
    .unwrap();
    let second = Change {
        expected_version: 0,
        candidate: skip.candidate,
        entry: skip.entry,
        effects: skip.effects,
    };
    store.commit(&first).await.unwrap();
    match store.commit(&second).await {
        Err(StoreError::Conflict { id, expected }) => {
            assert_eq!(id, c.id);
            assert_eq!(expected, 0);
        }
        other => panic!("a stale write must conflict, got {other:?}"),
    }
    match store.commit(&first).await {
        Err(StoreError::Conflict { .. }) => {}
        other => panic!("the same write twice must conflict, got {other:?}"),
    }
    let stored = store.get(&c.id).await.unwrap().unwrap();
    assert_eq!(stored, first.candidate, "the winner's write stands");
    assert_eq!(store.history(&c.id).await.unwrap(), vec![first.entry]);
}

pub async fn commit_to_unknown_candidate_is_not_found(store: &(impl ContractStore + ?Sized)) {
    let c = super::candidate();
    match store.commit(&reclaim_change(&c)).await {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("committing to a missing candidate is NotFound, got {other:?}"),
    }
    assert_eq!(store.get(&c.id).await.unwrap(), None, "nothing was created");
    assert!(store.history(&c.id).await.unwrap().is_empty());
}

pub async fn history_is_oldest_first(store: &(impl ContractStore + ?Sized)) {
    let mut c = super::candidate();
    store.insert(std::slice::from_ref(&c)).await.unwrap();
    let user = Actor::Person(Principal::user("u-1"));
    let steps = [
        (Event::Reclaim, admin()),
        (
            Event::WorkNote {
                text: "called the user".into(),
            },
            admin(),
        ),
        (
            Event::Answer {
                keep: false,
                comment: None,
                via: Via::api(),
            },
            user,
        ),
        (Event::CloseComplete { note: None }, admin()),
    ];
    let mut entries = Vec::new();
    for (i, (event, actor)) in steps.iter().enumerate() {
        let at = c.opened_at + Duration::minutes(i as i64);
        let t = apply(&c, event, actor, at).expect("each step is allowed");
        store
            .commit(&Change {
                expected_version: c.version,
                candidate: t.candidate.clone(),
                entry: t.entry.clone(),
                effects: t.effects,
            })
            .await
            .unwrap();
        entries.push(t.entry);
        c = t.candidate;
    }
    let history = store.history(&c.id).await.unwrap();
    assert_eq!(history, entries);
    assert_eq!(
        history.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(
        store.get(&c.id).await.unwrap().unwrap().state,
        State::ClosedComplete
    );
}

/// Sixty notes of the longest text the API takes (10,000 characters), each character four
/// bytes in UTF-8: 2.4 MB of notes on one candidate, six times DynamoDB's item limit. Every
/// note is kept and read back in order, by id and by number, and a transition committed from a
/// listed candidate (as the scheduler and bulk Reclaim do) loses none of them.
pub async fn work_notes_of_any_number_and_size_are_kept(store: &(impl ContractStore + ?Sized)) {
    const NOTES: usize = 60;
    let c = super::candidate();
    store.insert(std::slice::from_ref(&c)).await.unwrap();
    let text = |i: usize| format!("{i:02}{}", "\u{1D11E}".repeat(9_998));
    assert_eq!(text(0).chars().count(), 10_000);
    let mut at = c.opened_at;
    for i in 0..NOTES {
        let current = store.get(&c.id).await.unwrap().unwrap();
        assert_eq!(current.work_notes.len(), i);
        at += Duration::minutes(1);
        let t = apply(&current, &Event::WorkNote { text: text(i) }, &admin(), at).unwrap();
        store
            .commit(&Change {
                expected_version: current.version,
                candidate: t.candidate,
                entry: t.entry,
                effects: t.effects,
            })
            .await
            .unwrap_or_else(|e| panic!("note {} of {NOTES}: {e}", i + 1));
    }
    let stored = store.get(&c.id).await.unwrap().unwrap();
    let texts: Vec<String> = stored.work_notes.iter().map(|n| n.text.clone()).collect();
    assert_eq!(texts, (0..NOTES).map(text).collect::<Vec<_>>());
    assert_eq!(store.get(&c.number).await.unwrap().unwrap(), stored);

    // A transition from the candidate as a list gives it back.
    let listed = all_pages(store, &CandidateFilter::default(), 10).await;
    let listed = listed.iter().find(|l| l.id == c.id).unwrap();
    assert_eq!(listed.version, stored.version);
    store.commit(&reclaim_change(listed)).await.unwrap();
    let after = store.get(&c.id).await.unwrap().unwrap();
    assert_eq!(after.state, State::AwaitingUser);
    assert_eq!(after.work_notes, stored.work_notes, "no note lost");
}

fn task(
    id: &str,
    candidate: &str,
    kind: TaskKind,
    assignee: Option<&str>,
    group: Option<&str>,
) -> Task {
    let c = super::candidate();
    Task {
        id: id.into(),
        candidate_id: candidate.into(),
        candidate_number: c.number,
        kind,
        assignee: assignee.map(String::from),
        group: group.map(String::from),
        title: format!("task {id}"),
        instructions: "do it".into(),
        open: true,
        created_at: c.opened_at,
        closed_at: None,
    }
}

pub async fn tasks_create_is_idempotent_and_close_by_kind(store: &(impl ContractStore + ?Sized)) {
    let answer = task("t-answer", "c-1", TaskKind::UserAnswer, Some("u-1"), None);
    let approval = task(
        "t-approve",
        "c-1",
        TaskKind::Approval,
        None,
        Some("approvers"),
    );
    let manual = task(
        "t-manual",
        "c-1",
        TaskKind::ManualRemoval,
        Some("tech"),
        Some("desktop"),
    );
    let other = task(
        "t-other",
        "c-2",
        TaskKind::Approval,
        None,
        Some("approvers"),
    );
    for t in [&answer, &approval, &manual, &other] {
        store.create_task(t).await.unwrap();
    }
    let mut changed = answer.clone();
    changed.title = "a second run with another title".into();
    store.create_task(&changed).await.unwrap();
    let for_c1 = store.tasks_for("c-1").await.unwrap();
    assert_eq!(for_c1.len(), 3, "creating a task twice keeps one");
    assert!(for_c1.contains(&answer), "the first creation stands");

    let ids_of = |ts: Vec<Task>| ts.into_iter().map(|t| t.id).collect::<BTreeSet<_>>();
    let set = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        ids_of(store.open_tasks("u-1", &[]).await.unwrap()),
        set(&["t-answer"])
    );
    assert_eq!(
        ids_of(
            store
                .open_tasks("nobody", &["approvers".into()])
                .await
                .unwrap()
        ),
        set(&["t-approve", "t-other"])
    );
    assert_eq!(
        ids_of(
            store
                .open_tasks("tech", &["approvers".into(), "desktop".into()])
                .await
                .unwrap()
        ),
        set(&["t-approve", "t-other", "t-manual"])
    );

    let at = answer.created_at + Duration::hours(1);
    store
        .close_tasks("c-1", &[TaskKind::UserAnswer, TaskKind::Approval], at)
        .await
        .unwrap();
    let after = store.tasks_for("c-1").await.unwrap();
    for t in &after {
        let should_be_open = t.kind == TaskKind::ManualRemoval;
        assert_eq!(t.open, should_be_open, "task {}", t.id);
        assert_eq!(
            t.closed_at,
            (!should_be_open).then_some(at),
            "task {}",
            t.id
        );
    }
    assert!(store.open_tasks("u-1", &[]).await.unwrap().is_empty());
    assert_eq!(
        ids_of(
            store
                .open_tasks("nobody", &["approvers".into()])
                .await
                .unwrap()
        ),
        set(&["t-other"]),
        "another candidate's tasks stay open"
    );
    // Closing again (an effect that runs twice) changes nothing.
    store
        .close_tasks(
            "c-1",
            &[TaskKind::UserAnswer, TaskKind::Approval],
            at + Duration::hours(1),
        )
        .await
        .unwrap();
    assert_eq!(store.tasks_for("c-1").await.unwrap(), after);
}

pub async fn directory_round_trip(store: &(impl ContractStore + ?Sized)) {
    assert_eq!(store.user("ada").await.unwrap(), None);
    assert!(store.users().await.unwrap().is_empty());
    let mut ada = User {
        id: "ada".into(),
        display_name: "Ada Admin".into(),
        email: Some("ada@example.com".into()),
        upn: None,
        itil: true,
        vip: false,
        sam_admin: true,
    };
    let bob = User {
        id: "bob".into(),
        display_name: "Bob".into(),
        email: None,
        upn: Some("bob@corp".into()),
        itil: false,
        vip: true,
        sam_admin: false,
    };
    store.put_user(&ada).await.unwrap();
    store.put_user(&bob).await.unwrap();
    ada.display_name = "Ada Lovelace".into();
    store.put_user(&ada).await.unwrap();
    assert_eq!(
        store.user("ada").await.unwrap(),
        Some(ada.clone()),
        "put replaces"
    );
    let users: HashSet<String> = store
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(
        users,
        ["ada", "bob"].into_iter().map(String::from).collect()
    );

    assert_eq!(store.group("approvers").await.unwrap(), None);
    let mut g = Group {
        id: "approvers".into(),
        name: "Approvers".into(),
        email: Some("approvers@example.com".into()),
        members: vec!["ada".into()],
    };
    store.put_group(&g).await.unwrap();
    g.members.push("bob".into());
    store.put_group(&g).await.unwrap();
    store
        .put_group(&Group {
            id: "desktop".into(),
            name: "Desktop".into(),
            email: None,
            members: vec![],
        })
        .await
        .unwrap();
    assert_eq!(store.group("approvers").await.unwrap(), Some(g));
    assert_eq!(store.groups().await.unwrap().len(), 2);
}

pub async fn rules_round_trip(store: &(impl ContractStore + ?Sized)) {
    assert_eq!(store.rule("r-1").await.unwrap(), None);
    let mut rule = Rule {
        id: "r-1".into(),
        name: "Unused desktop software".into(),
        applies_to: Some(AppliesTo::InstalledSoftware),
        justification: Some(Justification::Unused),
        notify_user: true,
        days_before_auto_reclamation: 14,
        reminder_days: vec![3, 7],
        assignment_group: Some("approvers".into()),
        create_candidates: true,
        exclusions: Exclusions {
            users: vec!["ceo".into()],
            groups: vec![],
            vips: true,
            provisioned_within_days: Some(30),
        },
        plugin: Some("csd-uninstall".into()),
        max_revocation_attempts: 5,
        software: vec![],
        criteria: None,
        verify_within_days: 7,
        recheck_days: vec![7, 30],
        price_period: Some(crate::PricePeriod::Monthly),
    };
    store.put_rule(&rule).await.unwrap();
    rule.days_before_auto_reclamation = 0;
    store.put_rule(&rule).await.unwrap();
    let mut other = rule.clone();
    other.id = "r-2".into();
    other.plugin = None;
    store.put_rule(&other).await.unwrap();
    assert_eq!(store.rule("r-1").await.unwrap(), Some(rule));
    assert_eq!(store.rules().await.unwrap().len(), 2);

    assert!(store.delete_rule("r-2").await.unwrap(), "r-2 was there");
    assert!(!store.delete_rule("r-2").await.unwrap(), "and is gone");
    assert_eq!(store.rule("r-2").await.unwrap(), None);
    assert_eq!(store.rules().await.unwrap().len(), 1);
}

pub async fn numbers_are_unique_and_increasing(store: &(impl ContractStore + ?Sized)) {
    let a = store.allocate_numbers(3).await.unwrap();
    let b = store.allocate_numbers(1).await.unwrap();
    let c = store.allocate_numbers(10).await.unwrap();
    assert!(a >= 1, "numbers start at 1");
    assert!(b >= a + 3, "a range is reserved whole");
    assert!(c > b);
    let d = store.allocate_numbers(1).await.unwrap();
    assert!(d >= c + 10);
}

fn session(id: &str, user: &str, now: crate::model::Timestamp) -> SessionRecord {
    SessionRecord {
        id: id.into(),
        user_id: user.into(),
        method: "token".into(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + Duration::hours(1),
    }
}

pub async fn sessions_end_at_once_and_expire(store: &(impl ContractStore + ?Sized)) {
    let now = chrono::Utc::now();
    assert_eq!(store.session("s-1", now).await.unwrap(), None);
    let mut one = session("s-1", "ada", now);
    store.put_session(&one).await.unwrap();
    store
        .put_session(&session("s-2", "bob", now))
        .await
        .unwrap();
    store
        .put_session(&session("s-3", "ada", now))
        .await
        .unwrap();
    assert_eq!(store.session("s-1", now).await.unwrap(), Some(one.clone()));

    one.last_seen_at = now + Duration::minutes(30);
    one.expires_at = now + Duration::minutes(90);
    assert!(store.touch_session(&one).await.unwrap(), "s-1 exists");
    assert_eq!(
        store
            .session("s-1", now + Duration::minutes(70))
            .await
            .unwrap(),
        Some(one.clone()),
        "a touch moves the expiry"
    );
    assert_eq!(
        store
            .session("s-1", now + Duration::minutes(90))
            .await
            .unwrap(),
        None,
        "an expired session is gone whatever the store still holds"
    );

    assert!(store.end_session("s-1").await.unwrap());
    assert!(!store.end_session("s-1").await.unwrap(), "ended once");
    assert_eq!(store.session("s-1", now).await.unwrap(), None);
    assert!(
        !store.touch_session(&one).await.unwrap(),
        "a touch does not bring an ended session back"
    );
    assert_eq!(store.session("s-1", now).await.unwrap(), None);

    assert_eq!(store.end_all_sessions().await.unwrap(), 2);
    assert_eq!(store.session("s-2", now).await.unwrap(), None);
    assert_eq!(store.session("s-3", now).await.unwrap(), None);
    assert_eq!(store.end_all_sessions().await.unwrap(), 0);
}

pub async fn sign_ins_are_taken_once(store: &(impl ContractStore + ?Sized)) {
    let now = chrono::Utc::now();
    let pending = PendingSignIn {
        id: "state-1".into(),
        nonce: "nonce-1".into(),
        pkce_verifier: "verifier-1".into(),
        next: "/ui/approvals".into(),
        expires_at: now + Duration::minutes(10),
    };
    store.put_sign_in(&pending).await.unwrap();
    let mut late = pending.clone();
    late.id = "state-2".into();
    store.put_sign_in(&late).await.unwrap();
    assert_eq!(
        store.take_sign_in("state-1", now).await.unwrap(),
        Some(pending)
    );
    assert_eq!(
        store.take_sign_in("state-1", now).await.unwrap(),
        None,
        "a replayed state finds nothing"
    );
    assert_eq!(
        store
            .take_sign_in("state-2", now + Duration::minutes(11))
            .await
            .unwrap(),
        None,
        "an expired sign-in is refused"
    );
    assert_eq!(store.take_sign_in("state-2", now).await.unwrap(), None);
    assert_eq!(store.take_sign_in("never", now).await.unwrap(), None);
}

pub async fn tokens_are_found_by_digest(store: &(impl ContractStore + ?Sized)) {
    let d = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    assert_eq!(store.token_user(d).await.unwrap(), None);
    store.put_token(d, "ada").await.unwrap();
    assert_eq!(store.token_user(d).await.unwrap().as_deref(), Some("ada"));
    store.put_token(d, "bob").await.unwrap();
    assert_eq!(
        store.token_user(d).await.unwrap().as_deref(),
        Some("bob"),
        "a token has one holder"
    );
}

/// Every page of a sorted listing, following `next`; also checks each page's `prev` leads
/// back to the page before.
async fn sorted_pages(
    store: &(impl ContractStore + ?Sized),
    filter: &CandidateFilter,
    sort: crate::ports::Sort,
    limit: u32,
) -> Vec<Candidate> {
    let mut pages: Vec<Vec<Candidate>> = Vec::new();
    let mut cursor = None;
    for _ in 0..1000 {
        let page = store
            .list(
                filter,
                &PageRequest {
                    limit,
                    cursor: cursor.clone(),
                    sort: Some(sort),
                },
            )
            .await
            .expect("list a sorted page");
        assert!(page.items.len() <= limit as usize);
        if let Some(prev) = &page.prev {
            let back = store
                .list(
                    filter,
                    &PageRequest {
                        limit,
                        cursor: Some(prev.clone()),
                        sort: Some(sort),
                    },
                )
                .await
                .expect("go back a page");
            let before = pages.last().expect("a previous page exists");
            assert_eq!(
                ids(&back.items),
                ids(before),
                "{sort:?}: prev gives the page before"
            );
            assert!(
                back.next.is_some(),
                "{sort:?}: going back, the way forward stays"
            );
        } else {
            assert!(
                pages.is_empty(),
                "{sort:?}: only the first page has no prev"
            );
        }
        pages.push(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return pages.concat(),
        }
    }
    panic!("pagination never ended");
}

pub async fn sorted_pages_follow_each_order_forwards_and_back(
    store: &(impl ContractStore + ?Sized),
) {
    use crate::ports::{Sort, SortKey};
    let all = seed(store, 23).await;
    for key in SortKey::ALL {
        for descending in [false, true] {
            let sort = Sort { key, descending };
            let got = sorted_pages(store, &CandidateFilter::default(), sort, 4).await;
            assert_eq!(
                sorted_ids(&got),
                sorted_ids(&all),
                "{sort:?}: every row once"
            );
            assert_eq!(got.len(), all.len(), "{sort:?}: no row twice");
            for pair in got.windows(2) {
                let (a, b) = (key.value(&pair[0]), key.value(&pair[1]));
                assert!(
                    if descending { a >= b } else { a <= b },
                    "{sort:?}: {} ({a:?}) before {} ({b:?})",
                    pair[0].number,
                    pair[1].number
                );
            }
        }
    }
    // Filters and orders combine.
    let filter = CandidateFilter {
        publisher: Some("adobe".into()),
        ..Default::default()
    };
    let sort = Sort {
        key: SortKey::Savings,
        descending: true,
    };
    let got = sorted_pages(store, &filter, sort, 3).await;
    let want: Vec<&Candidate> = all.iter().filter(|c| filter.matches(c)).collect();
    assert_eq!(got.len(), want.len());
    assert!(got
        .windows(2)
        .all(|p| p[0].saving().cents >= p[1].saving().cents));
}

/// With each filter, in each order both ways, the pages hold exactly the matching candidates
/// in [`crate::ports::Sort::compare`]'s order, after transitions moved some of them in their
/// orders (stage, deadline, due time): whichever way a store reads a sorted list (its own
/// index for the order, or the matches sorted in memory), the answer is the same.
pub async fn sorted_pages_hold_exactly_the_matches_in_order(store: &(impl ContractStore + ?Sized)) {
    use crate::ports::{Sort, SortKey};
    let mut all = seed(store, 30).await;
    for c in all.iter_mut().filter(|c| c.state == State::Ready) {
        let t = apply(c, &Event::Reclaim, &admin(), c.opened_at).expect("Ready → Reclaim");
        store
            .commit(&Change {
                expected_version: c.version,
                candidate: t.candidate.clone(),
                entry: t.entry,
                effects: t.effects,
            })
            .await
            .expect("commit a Reclaim");
        *c = t.candidate;
    }
    let filters = [
        CandidateFilter::default(),
        CandidateFilter {
            state: Some(State::AwaitingUser),
            ..Default::default()
        },
        CandidateFilter {
            publisher: Some("Adobe".into()),
            ..Default::default()
        },
        CandidateFilter {
            group: Some("desktop".into()),
            ..Default::default()
        },
        CandidateFilter {
            state: Some(State::ClosedComplete),
            product: Some("Visio".into()),
            ..Default::default()
        },
    ];
    for filter in &filters {
        for key in SortKey::ALL {
            for descending in [false, true] {
                let sort = Sort { key, descending };
                let got = sorted_pages(store, filter, sort, 4).await;
                let mut want: Vec<&Candidate> = all.iter().filter(|c| filter.matches(c)).collect();
                want.sort_by(|a, b| sort.compare(a, b));
                let want: Vec<String> = want.iter().map(|c| c.id.clone()).collect();
                assert_eq!(ids(&got), want, "{filter:?}, {sort:?}");
            }
        }
    }
}

pub async fn counts_stop_at_their_bound(store: &(impl ContractStore + ?Sized)) {
    let all = seed(store, 23).await;
    let every = store
        .count(&CandidateFilter::default(), 1000)
        .await
        .expect("count");
    assert_eq!(every, crate::ports::Count { n: 23, more: false });
    let bounded = store
        .count(&CandidateFilter::default(), 5)
        .await
        .expect("count");
    assert_eq!(bounded, crate::ports::Count { n: 5, more: true });
    let filter = CandidateFilter {
        state: Some(State::Ready),
        ..Default::default()
    };
    let ready = all.iter().filter(|c| filter.matches(c)).count() as u64;
    let got = store.count(&filter, 1000).await.expect("count");
    assert_eq!(
        got,
        crate::ports::Count {
            n: ready,
            more: false
        }
    );
    // A stage's count stops at its bound too, and a bound it just reaches is no "more".
    assert!(ready > 1, "the seed has several Ready candidates");
    assert_eq!(
        store.count(&filter, ready - 1).await.expect("count"),
        crate::ports::Count {
            n: ready - 1,
            more: true
        }
    );
    assert_eq!(
        store.count(&filter, ready).await.expect("count"),
        crate::ports::Count {
            n: ready,
            more: false
        }
    );
    let none = CandidateFilter {
        software_text: Some("no such software".into()),
        ..Default::default()
    };
    assert_eq!(
        store.count(&none, 1000).await.expect("count"),
        crate::ports::Count { n: 0, more: false }
    );
}

pub async fn searches_find_parts_of_words_ignoring_case(store: &(impl ContractStore + ?Sized)) {
    let all = seed(store, 23).await;
    let check = |filter: CandidateFilter, label: &'static str| {
        let want: BTreeSet<String> = all
            .iter()
            .filter(|c| filter.matches(c))
            .map(|c| c.id.clone())
            .collect();
        (filter, want, label)
    };
    let cases = [
        check(
            CandidateFilter {
                software_text: Some("acro".into()),
                ..Default::default()
            },
            "part of a product",
        ),
        check(
            CandidateFilter {
                software_text: Some("DESK".into()),
                ..Default::default()
            },
            "part of a publisher, other case",
        ),
        check(
            CandidateFilter {
                software_text: Some("soft vis".into()),
                ..Default::default()
            },
            "across publisher and product",
        ),
        check(
            CandidateFilter {
                user_text: Some("carla".into()),
                ..Default::default()
            },
            "part of a name",
        ),
        check(
            CandidateFilter {
                user_text: Some("USER3@".into()),
                ..Default::default()
            },
            "part of an email",
        ),
        check(
            CandidateFilter {
                user_text: Some("u-1".into()),
                software_text: Some("pro".into()),
                state: Some(State::Ready),
                ..Default::default()
            },
            "with other filters",
        ),
        check(
            CandidateFilter {
                software_text: Some("%".into()),
                ..Default::default()
            },
            "a pattern character is literal",
        ),
    ];
    for (filter, want, label) in cases {
        let got = sorted_ids(&all_pages(store, &filter, 5).await);
        assert_eq!(got, want, "{label}");
    }
    // The first two find something, the last nothing.
    assert!(all.iter().any(|c| c.software.product.contains("Acrobat")));
    let acro = CandidateFilter {
        software_text: Some("acro".into()),
        ..Default::default()
    };
    assert!(!all_pages(store, &acro, 50).await.is_empty());
}

pub async fn a_cursor_belongs_to_its_order(store: &(impl ContractStore + ?Sized)) {
    use crate::ports::{Sort, SortKey};
    seed(store, 9).await;
    let by = |key, descending| Some(Sort { key, descending });
    let first = store
        .list(
            &CandidateFilter::default(),
            &PageRequest {
                limit: 2,
                cursor: None,
                sort: by(SortKey::Savings, false),
            },
        )
        .await
        .expect("list");
    let cursor = first.next.expect("more than one page");
    for other in [None, by(SortKey::Savings, true), by(SortKey::User, false)] {
        let r = store
            .list(
                &CandidateFilter::default(),
                &PageRequest {
                    limit: 2,
                    cursor: Some(cursor.clone()),
                    sort: other,
                },
            )
            .await;
        assert!(r.is_err(), "a {other:?} listing refuses a savings cursor");
    }
}

pub async fn a_period_of_trails_comes_in_time_order_a_page_at_a_time(
    store: &(impl ContractStore + ?Sized),
) {
    // Three candidates moved in turns over three days, several entries a day, some at the
    // same instant.
    let start = super::candidate().opened_at;
    let mut cs: Vec<Candidate> = (1..=3).map(varied).collect();
    for c in &mut cs {
        c.state = State::Ready;
        c.version = 1;
    }
    store.insert(&cs).await.expect("insert");
    let mut made = Vec::new();
    for step in 0..6i64 {
        for c in cs.iter_mut() {
            let at = start + Duration::hours(step * 13);
            let event = Event::WorkNote {
                text: format!("step {step}"),
            };
            let t = apply(c, &event, &admin(), at).expect("a work note is always allowed");
            store
                .commit(&Change {
                    expected_version: c.version,
                    candidate: t.candidate.clone(),
                    entry: t.entry.clone(),
                    effects: t.effects,
                })
                .await
                .expect("commit");
            made.push((t.entry.clone(), c.number.clone()));
            *c = t.candidate;
        }
    }
    let from = start + Duration::hours(13);
    let to = start + Duration::hours(52);
    let mut want: Vec<(crate::model::HistoryEntry, String)> = made
        .into_iter()
        .filter(|(e, _)| e.at >= from && e.at < to)
        .collect();
    want.sort_by(|a, b| {
        (a.0.at, &a.0.candidate_id, a.0.version).cmp(&(b.0.at, &b.0.candidate_id, b.0.version))
    });
    assert_eq!(want.len(), 9, "steps 1, 2 and 3 of each candidate");
    for limit in [1, 2, 4, 9, 50] {
        let mut got = Vec::new();
        let mut cursor = None;
        for _ in 0..100 {
            let page = store
                .history_between(
                    from,
                    to,
                    &PageRequest {
                        limit,
                        cursor,
                        sort: None,
                    },
                )
                .await
                .expect("a page of the period");
            assert!(page.items.len() <= limit as usize);
            got.extend(page.items);
            match page.next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        let got: Vec<(crate::model::HistoryEntry, String)> =
            got.into_iter().map(|t| (t.entry, t.number)).collect();
        assert_eq!(got, want, "limit {limit}");
    }
    let nothing = store
        .history_between(
            start + Duration::hours(66),
            start + Duration::days(30),
            &PageRequest::default(),
        )
        .await
        .expect("an empty period");
    assert!(nothing.items.is_empty() && nothing.next.is_none());
}

pub async fn savings_totals_equal_a_fresh_sum_after_every_kind_of_change(
    store: &(impl ContractStore + ?Sized),
) {
    use crate::ports::SavingsChange;
    use crate::savings::{group_scope, Savings, ALL_SCOPE};
    let mut all = seed(store, 23).await;
    let Some(_) = store.savings(ALL_SCOPE).await.expect("read totals") else {
        // This store sums candidates on every report; nothing to keep equal.
        return;
    };
    // What a store's change stream reports (a store that keeps its totals in the commit
    // itself ignores it); each twice, as a redelivery would.
    let inserts: Vec<SavingsChange> = all.iter().map(SavingsChange::of).collect();
    for _ in 0..2 {
        store
            .record_savings(&inserts)
            .await
            .expect("record the inserts");
    }
    // Move some on: each kind of change, on the first candidate it applies to (closing
    // complete, skipping, canceling by usage, moving to another group).
    let mut moves = 0;
    let events = [
        Event::CloseComplete { note: None },
        Event::CloseSkipped { reason: None },
        Event::UsageDetected {
            last_used_at: super::candidate().opened_at,
        },
        Event::Assign {
            group: Some("desktop".into()),
            assigned_to: None,
        },
        Event::Assign {
            group: Some("approvers".into()),
            assigned_to: None,
        },
    ];
    let mut moved = HashSet::new();
    for event in &events {
        for c in all.iter_mut() {
            if moved.contains(&c.id) {
                continue;
            }
            let Ok(t) = apply(c, event, &admin(), c.updated_at + Duration::minutes(1)) else {
                continue;
            };
            store
                .commit(&Change {
                    expected_version: c.version,
                    candidate: t.candidate.clone(),
                    entry: t.entry,
                    effects: t.effects,
                })
                .await
                .expect("commit");
            // Twice in one batch and once more on its own, then the version before it late
            // (which changes nothing); the last move's record is lost on the way.
            let change = SavingsChange::of(&t.candidate);
            if moves + 1 < events.len() {
                store
                    .record_savings(&[change.clone(), change.clone()])
                    .await
                    .expect("record a transition");
                store
                    .record_savings(&[change, SavingsChange::of(c)])
                    .await
                    .expect("record a transition again");
            }
            moved.insert(c.id.clone());
            *c = t.candidate;
            moves += 1;
            break;
        }
    }
    assert_eq!(
        moves,
        events.len(),
        "the seed has candidates for each change"
    );
    let fresh: Vec<Candidate> = {
        let mut out = Vec::new();
        for c in &all {
            out.push(store.get(&c.id).await.unwrap().unwrap());
        }
        out
    };
    // A store that follows a stream missed the lost record; recording every candidate as it
    // stands (the rebuild) makes its totals exact again.
    let now: Vec<SavingsChange> = fresh.iter().map(SavingsChange::of).collect();
    store.record_savings(&now).await.expect("rebuild");
    assert_eq!(
        store.savings(ALL_SCOPE).await.unwrap().unwrap(),
        Savings::of(&fresh),
        "everything"
    );
    for group in [Some("approvers"), Some("desktop"), None] {
        let want = Savings::of(
            fresh
                .iter()
                .filter(|c| c.assignment_group.as_deref() == group),
        );
        assert_eq!(
            store.savings(&group_scope(group)).await.unwrap().unwrap(),
            want,
            "group {group:?}"
        );
    }
}

pub async fn the_alert_filter_finds_exactly_the_alerts_at_each_time(
    store: &(impl ContractStore + ?Sized),
) {
    let mut all: Vec<Candidate> = (1..=23).map(varied).collect();
    for (i, c) in all.iter_mut().enumerate() {
        c.opened_at -= Duration::days(i as i64 * 3);
        c.state_since = Some(c.opened_at);
    }
    store.insert(&all).await.expect("insert");
    let now = super::candidate().opened_at;
    for days in [0, 20, 40, 70] {
        let at = now + Duration::days(days);
        let filter = CandidateFilter {
            alert_before: Some(at),
            ..Default::default()
        };
        let want: BTreeSet<String> = all
            .iter()
            .filter(|c| crate::usage::stale_alert(c, at).is_some())
            .map(|c| c.id.clone())
            .collect();
        assert_eq!(
            sorted_ids(&all_pages(store, &filter, 4).await),
            want,
            "day {days}"
        );
    }
}

/// A search that matches more people (or products) than one page of them reads still lists
/// every match exactly once, alone and with other filters, at any page size.
pub async fn searches_page_through_many_people_and_products(store: &(impl ContractStore + ?Sized)) {
    let all: Vec<Candidate> = (1..=260u64)
        .map(|n| {
            let mut c = varied(n);
            let i = n as usize;
            if let Some(u) = c.user.as_mut() {
                // 130 people match "person"; the rest of the users do not.
                if i.is_multiple_of(2) {
                    u.id = format!("p-{:03}", i % 130);
                    u.display_name = format!("Person {}", i % 130);
                    u.email = None;
                }
            }
            c.software.publisher = ["Vendor", "Other"][(i / 2) % 2].to_string();
            c.software.product = format!("Tool {}", i % 9);
            c
        })
        .collect();
    store.insert(&all).await.expect("insert");
    let filters = [
        CandidateFilter {
            user_text: Some("PERSON".into()),
            ..Default::default()
        },
        CandidateFilter {
            user_text: Some("person 1".into()),
            state: Some(State::Ready),
            ..Default::default()
        },
        CandidateFilter {
            user: Some("p-004".into()),
            ..Default::default()
        },
        CandidateFilter {
            software_text: Some("tool".into()),
            ..Default::default()
        },
        CandidateFilter {
            software_text: Some("vendor tool".into()),
            applies_to: Some(AppliesTo::Subscription),
            ..Default::default()
        },
        CandidateFilter {
            publisher: Some("vendor".into()),
            ..Default::default()
        },
        CandidateFilter {
            product: Some("TOOL 3".into()),
            ..Default::default()
        },
        CandidateFilter {
            publisher: Some("Other".into()),
            product: Some("Tool 4".into()),
            user_text: Some("person".into()),
            ..Default::default()
        },
    ];
    for filter in filters {
        let want: BTreeSet<String> = all
            .iter()
            .filter(|c| filter.matches(c))
            .map(|c| c.id.clone())
            .collect();
        assert!(!want.is_empty(), "{filter:?} matches something");
        for limit in [7, 50, 1000] {
            let got = all_pages(store, &filter, limit).await;
            assert_eq!(
                got.len(),
                want.len(),
                "{filter:?}, {limit} a page: each once"
            );
            assert_eq!(sorted_ids(&got), want, "{filter:?}, {limit} a page");
        }
    }
}
