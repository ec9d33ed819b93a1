//! The database file across restarts, migrations and damage.

// Test support code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{admin, candidate, change, test_db};
use reclaim_local::{EffectState, OpenError, OutboxMailer, SqliteStore, SCHEMA_VERSION};
use reclaim_workflow::ports::{
    CandidateFilter, CandidateRead, CandidateWrite, Directory, Mailer, OutgoingMail, PageRequest,
    RuleStore, StoreError, TaskStore,
};
use reclaim_workflow::{Event, Group, Rule, Task, TaskKind, User};

fn mail(key: &str) -> OutgoingMail {
    OutgoingMail {
        key: key.into(),
        to: vec!["uma@example.com".into()],
        subject: format!("subject {key}"),
        text: "text".into(),
        html: "<p>html</p>".into(),
    }
}

#[tokio::test]
async fn the_database_survives_a_restart_with_nothing_lost() {
    let db = test_db();
    let all: Vec<_> = (1..=5).map(candidate).collect();
    db.insert(&all).await.unwrap();
    let first = change(&all[0], &Event::Reclaim, &admin());
    db.commit(&first).await.unwrap();
    let note = change(
        &first.candidate,
        &Event::WorkNote {
            text: "spoke to Uma".into(),
        },
        &admin(),
    );
    db.commit(&note).await.unwrap();
    let done_key = first.effects[0].key.clone();
    assert!(db
        .complete_effect(&done_key, chrono::Utc::now())
        .await
        .unwrap());
    let task = Task {
        id: "task-1".into(),
        candidate_id: all[0].id.clone(),
        candidate_number: all[0].number.clone(),
        kind: TaskKind::UserAnswer,
        assignee: Some("u-1".into()),
        group: None,
        title: "Do you still need it?".into(),
        instructions: "Answer".into(),
        open: true,
        created_at: all[0].opened_at,
        closed_at: None,
    };
    db.create_task(&task).await.unwrap();
    let user = User {
        id: "u-1".into(),
        display_name: "Uma".into(),
        email: Some("uma@example.com".into()),
        upn: None,
        itil: true,
        vip: false,
        sam_admin: false,
    };
    db.put_user(&user).await.unwrap();
    let group = Group {
        id: "approvers".into(),
        name: "Approvers".into(),
        email: None,
        members: vec!["u-1".into()],
    };
    db.put_group(&group).await.unwrap();
    let rule: Rule = serde_json::from_value(serde_json::json!({
        "id": "r-1", "name": "Unused", "days_before_auto_reclamation": 14
    }))
    .unwrap();
    db.put_rule(&rule).await.unwrap();
    let mailer = OutboxMailer::new(db.store.clone());
    mailer.send(&mail(&done_key)).await.unwrap();
    let number = db.allocate_numbers(1).await.unwrap();
    let listed = db
        .list(&CandidateFilter::default(), &PageRequest::default())
        .await
        .unwrap();
    drop(mailer);

    let db = db.reopen();
    let mailer = OutboxMailer::new(db.store.clone());
    for c in &all[1..] {
        assert_eq!(db.get(&c.id).await.unwrap().as_ref(), Some(c));
    }
    assert_eq!(
        db.get(&all[0].id).await.unwrap(),
        Some(note.candidate.clone())
    );
    assert_eq!(
        db.list(&CandidateFilter::default(), &PageRequest::default())
            .await
            .unwrap()
            .items
            .len(),
        listed.items.len()
    );
    assert_eq!(
        db.history(&all[0].id).await.unwrap(),
        vec![first.entry.clone(), note.entry.clone()]
    );
    let effects = db.effects_for(&all[0].id).await.unwrap();
    assert_eq!(effects.len(), first.effects.len());
    assert_eq!(effects[0].state, EffectState::Done);
    assert_eq!(effects[1].state, EffectState::Pending);
    assert_eq!(effects[1].effect, first.effects[1]);
    assert_eq!(effects[1].candidate, first.candidate);
    assert_eq!(db.tasks_for(&all[0].id).await.unwrap(), vec![task]);
    assert_eq!(db.user("u-1").await.unwrap(), Some(user));
    assert_eq!(db.group("approvers").await.unwrap(), Some(group));
    assert_eq!(db.rule("r-1").await.unwrap(), Some(rule));
    let messages = mailer.list_messages().await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].key, done_key);
    assert!(
        db.allocate_numbers(1).await.unwrap() > number,
        "the number counter survives"
    );
}

#[tokio::test]
async fn a_fresh_file_gets_the_current_schema_and_reopens() {
    let db = test_db();
    let path = db.path();
    drop(db.store);
    let raw = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = raw
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    let mode: String = raw
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    drop(raw);
    SqliteStore::open(&path).unwrap();
}

#[tokio::test]
async fn a_file_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(raw);
    match SqliteStore::open(&path) {
        Err(OpenError::NewerSchema {
            found, supported, ..
        }) => {
            assert_eq!(found, SCHEMA_VERSION + 1);
            assert_eq!(supported, SCHEMA_VERSION);
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
}

#[tokio::test]
async fn corrupt_stored_json_is_an_error_not_a_panic() {
    let db = test_db();
    let good = candidate(1);
    let bad = candidate(2);
    db.insert(&[good.clone(), bad.clone()]).await.unwrap();
    db.commit(&change(&good, &Event::Reclaim, &admin()))
        .await
        .unwrap();
    let raw = rusqlite::Connection::open(db.path()).unwrap();
    raw.execute(
        "UPDATE candidates SET body = '{\"id\": 3' WHERE id = ?1",
        [&bad.id],
    )
    .unwrap();
    raw.execute("UPDATE history SET entry = 'nope'", [])
        .unwrap();
    raw.execute("UPDATE users SET body = 'x'", []).unwrap();
    raw.execute(
        "UPDATE outbox SET effect = '[]' WHERE seq = (SELECT MIN(seq) FROM outbox)",
        [],
    )
    .unwrap();
    drop(raw);

    assert!(matches!(db.get(&bad.id).await, Err(StoreError::Corrupt(_))));
    assert!(db.get(&good.id).await.unwrap().is_some());
    assert!(matches!(
        db.list(&CandidateFilter::default(), &PageRequest::default())
            .await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        db.history(&good.id).await,
        Err(StoreError::Corrupt(_))
    ));

    // An unreadable outbox row is set aside as failed; the rest of the queue still runs.
    let claimed = db
        .claim_effects(chrono::Utc::now(), 10, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let failed = db.failed_effects().await;
    assert!(
        matches!(failed, Err(StoreError::Corrupt(_))),
        "the failed row itself is unreadable"
    );
    assert_eq!(db.outbox_counts().await.unwrap().failed, 1);
}

#[tokio::test]
async fn the_outbox_mailer_keeps_one_message_per_key() {
    let db = test_db();
    let mailer = OutboxMailer::new(db.store.clone());
    mailer
        .send(&mail("c-1:1:email-ask-user-user"))
        .await
        .unwrap();
    let mut again = mail("c-1:1:email-ask-user-user");
    again.subject = "a second send".into();
    mailer.send(&again).await.unwrap();
    mailer
        .send(&mail("c-1:4:email-removed-user"))
        .await
        .unwrap();
    let mut other = mail("c-10:1:email-ask-user-user");
    other.to = vec!["Bob@Example.com".into()];
    mailer.send(&other).await.unwrap();

    let all = mailer.list_messages().await.unwrap();
    assert_eq!(all.len(), 3, "a repeat with the same key is a no-op");
    assert_eq!(all[0].key, "c-10:1:email-ask-user-user", "newest first");
    let first = mailer.message(all[2].id).await.unwrap().unwrap();
    assert_eq!(
        first.subject, "subject c-1:1:email-ask-user-user",
        "the first send stands"
    );
    assert_eq!(first.to, vec!["uma@example.com".to_string()]);
    assert_eq!(first.html, "<p>html</p>");
    assert_eq!(mailer.message(9999).await.unwrap(), None);

    let for_c1: Vec<_> = mailer
        .messages_for("c-1")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(
        for_c1,
        vec!["c-1:1:email-ask-user-user", "c-1:4:email-removed-user"]
    );
    assert_eq!(
        mailer.messages_to("bob@example.com").await.unwrap().len(),
        1
    );

    let mut nobody = mail("c-2:1:email-ask-user-user");
    nobody.to.clear();
    assert!(matches!(
        mailer.send(&nobody).await,
        Err(reclaim_workflow::ports::MailError::Rejected(_))
    ));
}

#[tokio::test]
async fn commits_reach_the_database_file_without_any_caller_checkpointing() {
    let db = test_db();
    let all: Vec<_> = (1..=50).map(candidate).collect();
    db.insert(&all).await.unwrap();
    // The database file alone (no WAL beside it) holds the rows once a checkpoint copied
    // them there; nobody here asks for one, and no commit waits for one.
    let copy = db.dir.path().join("copy.db");
    let mut found = 0;
    for _ in 0..100 {
        std::fs::copy(db.path(), &copy).unwrap();
        let conn = rusqlite::Connection::open(&copy).unwrap();
        found = conn
            .query_row("SELECT count(*) FROM candidates", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap_or(0);
        drop(conn);
        let _ = std::fs::remove_file(&copy);
        if found == 50 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(found, 50, "the background checkpoint copied the commits");
}
