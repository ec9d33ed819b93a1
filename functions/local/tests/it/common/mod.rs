//! Shared fixtures: a store in a temporary directory that lives as long as the fixture.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use reclaim_local::SqliteStore;
use std::ops::Deref;
use std::path::PathBuf;
use tempfile::TempDir;

pub struct TestDb {
    pub store: SqliteStore,
    pub dir: TempDir,
}

impl TestDb {
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("reclaim.db")
    }

    /// Closes the store and opens the same file again, as a restarted process would.
    pub fn reopen(self) -> TestDb {
        let TestDb { store, dir } = self;
        drop(store);
        let store = SqliteStore::open(dir.path().join("reclaim.db")).expect("reopen");
        TestDb { store, dir }
    }
}

impl Deref for TestDb {
    type Target = SqliteStore;
    fn deref(&self) -> &SqliteStore {
        &self.store
    }
}

pub fn test_db() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("reclaim.db")).expect("open store");
    TestDb { store, dir }
}

pub async fn fresh() -> TestDb {
    test_db()
}

use reclaim_workflow::ports::Change;
use reclaim_workflow::{apply, Actor, Candidate, Event, Principal};

pub fn admin() -> Actor {
    Actor::Person(Principal {
        sam_admin: true,
        ..Principal::user("admin")
    })
}

/// Applies `event` to `c` and packages it as the change to commit.
pub fn change(c: &Candidate, event: &Event, actor: &Actor) -> Change {
    let t = apply(c, event, actor, c.updated_at).expect("the event is allowed");
    Change {
        expected_version: c.version,
        candidate: t.candidate,
        entry: t.entry,
        effects: t.effects,
    }
}

/// A Ready candidate with its own id and number.
pub fn candidate(n: u64) -> Candidate {
    let mut c = reclaim_workflow::testing::candidate();
    c.id = format!("c-{n}");
    c.number = reclaim_workflow::intake::format_number(n);
    c
}
