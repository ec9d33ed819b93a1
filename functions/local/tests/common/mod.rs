//! Shared fixtures: a store in a temporary directory that lives as long as the fixture.

#![allow(dead_code)]

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
