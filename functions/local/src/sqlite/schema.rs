//! The schema and its migrations, numbered by SQLite's `user_version`.
//!
//! Each step runs once, in its own transaction, in order; a file from an older build is brought
//! forward on open, and a file from a newer build is refused rather than misread. Steps are
//! append-only: never edit a released step, add the next one.

use super::OpenError;
use rusqlite::Connection;
use std::path::Path;

/// Step 1: the first release.
const V1: &str = r#"
CREATE TABLE candidates (
    seq           INTEGER PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    number        TEXT NOT NULL UNIQUE,
    state         TEXT NOT NULL,
    justification TEXT NOT NULL,
    applies_to    TEXT NOT NULL,
    publisher     TEXT NOT NULL COLLATE NOCASE,
    product       TEXT NOT NULL COLLATE NOCASE,
    group_id      TEXT,
    user_id       TEXT,
    due_at        INTEGER,
    version       INTEGER NOT NULL,
    body          TEXT NOT NULL
);
CREATE INDEX candidates_state ON candidates (state, seq);
CREATE INDEX candidates_justification ON candidates (justification, seq);
CREATE INDEX candidates_applies_to ON candidates (applies_to, seq);
CREATE INDEX candidates_publisher ON candidates (publisher, product, seq);
CREATE INDEX candidates_product ON candidates (product, seq);
CREATE INDEX candidates_group ON candidates (group_id, seq);
CREATE INDEX candidates_user ON candidates (user_id, seq);
CREATE INDEX candidates_due ON candidates (due_at) WHERE due_at IS NOT NULL;

CREATE TABLE history (
    candidate_id TEXT NOT NULL,
    version      INTEGER NOT NULL,
    entry        TEXT NOT NULL,
    PRIMARY KEY (candidate_id, version)
) WITHOUT ROWID;

CREATE TABLE tasks (
    id           TEXT PRIMARY KEY,
    candidate_id TEXT NOT NULL,
    kind         TEXT NOT NULL,
    assignee     TEXT,
    group_id     TEXT,
    open         INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    body         TEXT NOT NULL
);
CREATE INDEX tasks_candidate ON tasks (candidate_id);
CREATE INDEX tasks_open_assignee ON tasks (assignee) WHERE open = 1;
CREATE INDEX tasks_open_group ON tasks (group_id) WHERE open = 1;

CREATE TABLE users (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE assignment_groups (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE rules (id TEXT PRIMARY KEY, body TEXT NOT NULL);

CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO counters (name, value) VALUES ('candidate_number', 1);

-- Effects to run after commit. `seq` orders them (commit order); `key` is the effect's
-- idempotency key. A row stays 'pending' until a run returns; `claimed_until` is the lease a
-- running worker holds on it.
CREATE TABLE outbox (
    seq             INTEGER PRIMARY KEY,
    key             TEXT NOT NULL UNIQUE,
    candidate_id    TEXT NOT NULL,
    version         INTEGER NOT NULL,
    effect          TEXT NOT NULL,
    candidate       TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'done', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claimed_until   INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    finished_at     INTEGER
);
CREATE INDEX outbox_due ON outbox (next_attempt_at, seq) WHERE state = 'pending';
CREATE INDEX outbox_pending_candidate ON outbox (candidate_id, seq) WHERE state = 'pending';
CREATE INDEX outbox_failed ON outbox (seq) WHERE state = 'failed';

-- Every rendered message (the local mode's mail outbox), at most one per effect key.
CREATE TABLE messages (
    id         INTEGER PRIMARY KEY,
    key        TEXT NOT NULL UNIQUE,
    recipients TEXT NOT NULL,
    subject    TEXT NOT NULL,
    text       TEXT NOT NULL,
    html       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
"#;

/// Step 2: fewer outbox indexes, so a commit dirties fewer pages. The per-candidate order check
/// uses the key index instead (keys start with the candidate id), and the claim walks pending
/// rows in commit order through one partial index.
const V2: &str = r#"
DROP INDEX outbox_due;
DROP INDEX outbox_pending_candidate;
CREATE INDEX outbox_pending ON outbox (seq) WHERE state = 'pending';
"#;

/// Step 3: what signing in needs kept on the server: workspace sessions (so signing out ends
/// them), sign-ins waiting for the identity provider (each taken once), and API tokens as
/// SHA-256 digests.
const V3: &str = r#"
CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    body       TEXT NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);
CREATE TABLE sign_ins (
    id         TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL,
    body       TEXT NOT NULL
);
CREATE TABLE api_tokens (
    digest  TEXT PRIMARY KEY,
    user_id TEXT NOT NULL
);
"#;

/// Step 4: the SMTP
/// mailer's sends, at most one per effect key. 'sending' is written before the server is
/// contacted and stays when the outcome is unknown (never sent again); 'sent' after the
/// server's 250 to the message.
const V4: &str = r#"
CREATE TABLE mail_sends (
    key        TEXT PRIMARY KEY,
    state      TEXT NOT NULL CHECK (state IN ('sending', 'sent')),
    at         INTEGER NOT NULL,
    sent_at    INTEGER,
    message_id TEXT
) WITHOUT ROWID;
"#;

/// Step 5: what the list needs at scale: a column per order (each with its index, the row's
/// `seq` breaking ties), and small catalogs of the software and people on candidates, which a
/// part-of-a-word search reads instead of every candidate; and each history entry's time, so a
/// period's trails are read in time order. The rows already there get their
/// values from their documents ([`super::candidates::backfill_sync`]).
const V5: &str = r#"
ALTER TABLE candidates ADD COLUMN software_key TEXT NOT NULL DEFAULT '';
ALTER TABLE candidates ADD COLUMN user_key TEXT NOT NULL DEFAULT '';
ALTER TABLE candidates ADD COLUMN inactive_key INTEGER NOT NULL DEFAULT -1;
ALTER TABLE candidates ADD COLUMN deadline_key INTEGER NOT NULL DEFAULT 9223372036854775807;
ALTER TABLE candidates ADD COLUMN savings_key INTEGER NOT NULL DEFAULT 0;
CREATE INDEX candidates_software_key ON candidates (software_key);
CREATE INDEX candidates_user_key ON candidates (user_key);
CREATE INDEX candidates_inactive_key ON candidates (inactive_key);
CREATE INDEX candidates_deadline_key ON candidates (deadline_key);
CREATE INDEX candidates_savings_key ON candidates (savings_key);
CREATE TABLE software_catalog (
    publisher TEXT NOT NULL COLLATE NOCASE,
    product   TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (publisher, product)
) WITHOUT ROWID;
CREATE TABLE people (
    user_id TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    email   TEXT
) WITHOUT ROWID;
-- An auditor's export of a period reads the history in time order.
ALTER TABLE history ADD COLUMN at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX history_at ON history (at, candidate_id, version);
"#;

/// Step 6: running savings totals, so a report reads one row instead of every candidate. Each
/// candidate keeps what it adds (`contribution`, JSON; none for skipped and canceled ones), and
/// `savings_totals` holds the sum per scope (everything, and each assignment group), changed by
/// the difference in the same transaction as the transition that changes it. The rows already
/// there are summed once ([`super::candidates::rebuild_savings_sync`]).
const V6: &str = r#"
ALTER TABLE candidates ADD COLUMN contribution TEXT;
CREATE TABLE savings_totals (
    scope TEXT PRIMARY KEY,
    body  TEXT NOT NULL
) WITHOUT ROWID;
"#;

/// Step 7: when each candidate becomes an alert (`reclaim_workflow::usage::alert_from`), with
/// an index of the ones that do, so the alerts read those candidates only.
const V7: &str = r#"
ALTER TABLE candidates ADD COLUMN alert_at INTEGER;
CREATE INDEX candidates_alert ON candidates (alert_at) WHERE alert_at IS NOT NULL;
"#;

/// Step 8: a stage's candidates by answer-by date. Only candidates waiting on someone have a
/// date, so a stage without one (Ready) sits after every dated candidate in the date's own
/// index, and walking that index to it read most of the table.
const V8: &str = r#"
CREATE INDEX candidates_state_deadline ON candidates (state, deadline_key);
"#;

/// Step 9: usage connectors' runs, a connector's newest first by their number.
const V9: &str = r#"
CREATE TABLE connector_runs (
    connector TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    version   INTEGER NOT NULL,
    body      TEXT NOT NULL,
    PRIMARY KEY (connector, seq)
) WITHOUT ROWID;
"#;

/// Step 10: the outbox's state check without a list. SQLite checks `state IN (three values)`
/// by building a temporary table of the values on every insert and every state change, which
/// cost the writer a twelfth of its time per transition. A check cannot be altered, so the
/// table is copied into one with the new check, row for row, and its indexes made again.
const V10: &str = r#"
CREATE TABLE outbox_next (
    seq             INTEGER PRIMARY KEY,
    key             TEXT NOT NULL UNIQUE,
    candidate_id    TEXT NOT NULL,
    version         INTEGER NOT NULL,
    effect          TEXT NOT NULL,
    candidate       TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state = 'pending' OR state = 'done' OR state = 'failed'),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claimed_until   INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    finished_at     INTEGER
);
INSERT INTO outbox_next (seq, key, candidate_id, version, effect, candidate, state, attempts,
                         next_attempt_at, claimed_until, last_error, created_at, finished_at)
    SELECT seq, key, candidate_id, version, effect, candidate, state, attempts,
           next_attempt_at, claimed_until, last_error, created_at, finished_at
    FROM outbox ORDER BY seq;
DROP TABLE outbox;
ALTER TABLE outbox_next RENAME TO outbox;
CREATE INDEX outbox_pending ON outbox (seq) WHERE state = 'pending';
CREATE INDEX outbox_failed ON outbox (seq) WHERE state = 'failed';
"#;

/// Every step, in order; the schema version is the number of steps applied.
const STEPS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7, V8, V9, V10];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = STEPS.len() as i64;

pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), OpenError> {
    let sqlite = |source| OpenError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    loop {
        // The version is read inside the write transaction, so two processes opening a new
        // file at once apply each step once.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        let found: i64 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(sqlite)?;
        if found > SCHEMA_VERSION {
            return Err(OpenError::NewerSchema {
                path: path.to_path_buf(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        let Some(step) = usize::try_from(found).ok().and_then(|i| STEPS.get(i)) else {
            return Ok(());
        };
        tx.execute_batch(step).map_err(sqlite)?;
        // The step adding the order columns fills them for the rows already there.
        if found == 4 {
            super::candidates::backfill_sync(&tx).map_err(sqlite)?;
        }
        if found == 6 {
            super::candidates::backfill_alerts_sync(&tx).map_err(sqlite)?;
        }
        // The step adding running savings totals sums the rows already there.
        if found == 5 {
            super::candidates::rebuild_savings_sync(&tx).map_err(|e| OpenError::Sqlite {
                path: path.to_path_buf(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(std::io::Error::other(
                    e.to_string(),
                ))),
            })?;
        }
        tx.pragma_update(None, "user_version", found + 1)
            .map_err(sqlite)?;
        tx.commit().map_err(sqlite)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_file_is_brought_forward_with_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        let mut conn = Connection::open(&path).unwrap();
        conn.execute_batch(V1).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO outbox (key, candidate_id, version, effect, candidate, next_attempt_at, \
             created_at) VALUES ('c:1:revoke', 'c', 1, '{}', '{}', 0, 0)",
            [],
        )
        .unwrap();
        migrate(&mut conn, &path).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1);
        let indexes: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'outbox'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(indexes.contains(&"outbox_pending".to_string()));
        assert!(indexes.contains(&"outbox_failed".to_string()));
        assert!(!indexes.contains(&"outbox_due".to_string()));
        // The row came through the copy whole, with its number, and the state is still checked.
        let (seq, key, state): (i64, String, String) = conn
            .query_row("SELECT seq, key, state FROM outbox", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(
            (seq, key.as_str(), state.as_str()),
            (1, "c:1:revoke", "pending")
        );
        assert!(conn
            .execute("UPDATE outbox SET state = 'lost'", [])
            .is_err());
        assert!(conn
            .execute(
                "INSERT INTO outbox (key, candidate_id, version, effect, candidate, \
                 next_attempt_at, created_at) VALUES ('c:1:revoke', 'c', 1, '{}', '{}', 0, 0)",
                [],
            )
            .is_err());
        // Running it again is a no-op.
        migrate(&mut conn, &path).unwrap();
    }

    #[test]
    fn a_file_without_the_mail_sends_table_gets_it_with_its_rows_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.db");
        let mut conn = Connection::open(&path).unwrap();
        conn.execute_batch(V1).unwrap();
        conn.execute_batch(V2).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute(
            "INSERT INTO messages (key, recipients, subject, text, html, created_at) \
             VALUES ('c:1:email', '[]', 's', 't', 'h', 0)",
            [],
        )
        .unwrap();
        migrate(&mut conn, &path).unwrap();
        conn.execute(
            "INSERT INTO mail_sends (key, state, at) VALUES ('c:1:email', 'sending', 0)",
            [],
        )
        .unwrap();
        assert!(conn
            .execute(
                "INSERT INTO mail_sends (key, state, at) VALUES ('c:2:email', 'lost', 0)",
                [],
            )
            .is_err());
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1);
    }

    #[test]
    fn queuing_an_effect_builds_no_temporary_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("insert.db");
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn, &path).unwrap();
        for sql in [
            "INSERT INTO outbox (key, candidate_id, version, effect, candidate, state, attempts, \
             next_attempt_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?6)",
            "UPDATE outbox SET state = ?1 WHERE seq = ?2",
        ] {
            let mut explain = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
            let nulls = vec![rusqlite::types::Null; explain.parameter_count()];
            let ops: Vec<String> = explain
                .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(1))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(
                !ops.iter().any(|op| op == "OpenEphemeral"),
                "{sql}: {ops:?}"
            );
        }
    }

    #[test]
    fn the_claim_walks_the_pending_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.db");
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn, &path).unwrap();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", crate::outbox::CLAIM_SQL))
            .unwrap()
            .query_map([0i64, 10], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains("outbox_pending"), "{plan}");
        assert!(plan.contains("sqlite_autoindex_outbox_1"), "{plan}");
        assert!(!plan.contains("SCAN p"), "{plan}");
    }
}
