//! The two outboxes in the database file.
//!
//! **Effects**: every effect of a committed transition is a row written in the same
//! transaction as the candidate, so an effect exists if and only if its transition does. The
//! [`worker`](crate::worker) claims due rows, runs them, and marks them done, reschedules them or
//! marks them failed. A row is only marked done after its run returns: at least once.
//!
//! **Mail**: [`OutboxMailer`] is the local mode's [`Mailer`]. It keeps every rendered message
//! (at most one per effect key) so the outbox page can show them with their links clickable.

use crate::sqlite::{from_json, from_millis, millis, sql_error, SqliteStore, WriteOutcome};
use async_trait::async_trait;
use reclaim_workflow::ports::{Clock, MailError, Mailer, OutgoingMail, StoreError, SystemClock};
use reclaim_workflow::{Candidate, Effect, Timestamp};
use rusqlite::{params, Connection, Row};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Where an effect stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EffectState {
    /// Not run yet, running, or waiting for its next attempt.
    Pending,
    Done,
    /// Gave up: a permanent error, or out of attempts. A person looks, then may retry it.
    Failed,
}

impl EffectState {
    fn parse(s: &str) -> Result<EffectState, StoreError> {
        match s {
            "pending" => Ok(EffectState::Pending),
            "done" => Ok(EffectState::Done),
            "failed" => Ok(EffectState::Failed),
            other => Err(StoreError::Corrupt(format!("outbox state '{other}'"))),
        }
    }
}

/// One row of the effects outbox: the effect and the candidate as its transition left it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutboxEntry {
    pub key: String,
    pub candidate_id: String,
    pub version: u64,
    pub effect: Effect,
    /// The candidate at the version the effect belongs to (what the email talks about).
    pub candidate: Candidate,
    pub state: EffectState,
    /// Runs that returned (or panicked) so far.
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

/// How many effects are in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OutboxCounts {
    pub pending: u64,
    pub done: u64,
    pub failed: u64,
}

const ENTRY_COLUMNS: &str = "key, candidate_id, version, effect, candidate, state, attempts, \
                             next_attempt_at, last_error, created_at, finished_at";

/// Decodes the entry columns starting at column `base`; the outer `Result` is SQLite's, the
/// inner one says whether the stored JSON still parses.
fn decode_entry_at(
    row: &Row<'_>,
    base: usize,
) -> Result<Result<OutboxEntry, StoreError>, rusqlite::Error> {
    let key: String = row.get(base)?;
    let candidate_id: String = row.get(base + 1)?;
    let version: i64 = row.get(base + 2)?;
    let effect: String = row.get(base + 3)?;
    let candidate: String = row.get(base + 4)?;
    let state: String = row.get(base + 5)?;
    let attempts: i64 = row.get(base + 6)?;
    let next_attempt_at: i64 = row.get(base + 7)?;
    let last_error: Option<String> = row.get(base + 8)?;
    let created_at: i64 = row.get(base + 9)?;
    let finished_at: Option<i64> = row.get(base + 10)?;
    let decoded = (|| {
        Ok(OutboxEntry {
            effect: from_json(&format!("outbox effect {key}"), &effect)?,
            candidate: from_json(&format!("outbox candidate {key}"), &candidate)?,
            version: u64::try_from(version)
                .map_err(|_| StoreError::Corrupt(format!("outbox version {version}")))?,
            state: EffectState::parse(&state)?,
            key,
            candidate_id,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            next_attempt_at: from_millis(next_attempt_at),
            last_error,
            created_at: from_millis(created_at),
            finished_at: finished_at.map(from_millis),
        })
    })();
    Ok(decoded)
}

fn select_entries(
    conn: &Connection,
    where_clause: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<OutboxEntry>, StoreError> {
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM outbox WHERE {where_clause}");
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_error)?;
    let rows = stmt
        .query_map(args, |row| decode_entry_at(row, 0))
        .map_err(sql_error)?;
    rows.map(|r| r.map_err(sql_error).and_then(|e| e)).collect()
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Due pending rows in commit order, except those held back by an earlier pending row of the
/// same candidate that is not due or is claimed (keys start with `{candidate id}:`, so the
/// key index finds a candidate's rows).
pub(crate) const CLAIM_SQL: &str =
    "SELECT seq, key, candidate_id, version, effect, candidate, state, attempts, \
                    next_attempt_at, last_error, created_at, finished_at
             FROM outbox AS o
             WHERE state = 'pending' AND next_attempt_at <= ?1
               AND (claimed_until IS NULL OR claimed_until <= ?1)
               AND NOT EXISTS (
                   SELECT 1 FROM outbox AS p
                   WHERE p.key >= o.candidate_id || ':' AND p.key < o.candidate_id || ';'
                     AND p.candidate_id = o.candidate_id AND p.state = 'pending'
                     AND p.seq < o.seq
                     AND (p.next_attempt_at > ?1
                          OR (p.claimed_until IS NOT NULL AND p.claimed_until > ?1)))
             ORDER BY seq LIMIT ?2";

/// Claims due effects in commit order. A row is due when it is pending, its time has come, no
/// live lease holds it, and every earlier pending effect of the same candidate is due too: the
/// effects of one candidate run in the order their transitions committed (a task is created
/// before a later transition closes it). A row whose stored JSON is unreadable is marked failed
/// rather than blocking the queue.
fn claim_sync(
    conn: &Connection,
    now: i64,
    limit: u32,
    lease_ms: i64,
) -> Result<Vec<OutboxEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(CLAIM_SQL).map_err(sql_error)?;
    let rows = stmt
        .query_map(params![now, i64::from(limit)], |row| {
            let seq: i64 = row.get(0)?;
            let key: String = row.get(1)?;
            Ok((seq, key, decode_entry_at(row, 1)?))
        })
        .map_err(sql_error)?;
    let mut claimed = Vec::new();
    let mut broken = Vec::new();
    for row in rows {
        let (seq, key, entry) = row.map_err(sql_error)?;
        match entry {
            Ok(e) => claimed.push((seq, e)),
            Err(e) => broken.push((key, e.to_string())),
        }
    }
    drop(stmt);
    let mut lease = conn
        .prepare_cached("UPDATE outbox SET claimed_until = ?2 WHERE seq = ?1")
        .map_err(sql_error)?;
    for (seq, _) in &claimed {
        lease
            .execute(params![seq, now.saturating_add(lease_ms)])
            .map_err(sql_error)?;
    }
    for (key, why) in broken {
        finish_sync(conn, &key, "failed", now, Some(&why), false)?;
    }
    Ok(claimed.into_iter().map(|(_, e)| e).collect())
}

/// Settles a pending row: done, failed, or back to pending at a later time.
fn finish_sync(
    conn: &Connection,
    key: &str,
    state: &str,
    at: i64,
    error: Option<&str>,
    count_attempt: bool,
) -> Result<bool, StoreError> {
    let finished = (state != "pending").then_some(at);
    let n = conn
        .prepare_cached(
            "UPDATE outbox SET state = ?2, attempts = attempts + ?3, claimed_until = NULL, \
             last_error = COALESCE(?4, last_error), finished_at = ?5, \
             next_attempt_at = CASE WHEN ?2 = 'pending' THEN ?6 ELSE next_attempt_at END \
             WHERE key = ?1 AND state = 'pending'",
        )
        .and_then(|mut st| {
            st.execute(params![
                key,
                state,
                i64::from(count_attempt),
                error,
                finished,
                at
            ])
        })
        .map_err(sql_error)?;
    Ok(n > 0)
}

impl SqliteStore {
    /// Claims up to `limit` due effects for `lease`; a claim that is not settled within the
    /// lease (the worker died) becomes due again.
    pub async fn claim_effects(
        &self,
        now: Timestamp,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let (now, lease) = (millis(now), duration_ms(lease));
        self.write(move |conn| claim_sync(conn, now, limit, lease).map(WriteOutcome::new))
            .await
    }

    /// The run returned: never run this effect again. `false` if it was not pending.
    pub async fn complete_effect(&self, key: &str, at: Timestamp) -> Result<bool, StoreError> {
        let key = key.to_string();
        self.write(move |conn| {
            finish_sync(conn, &key, "done", millis(at), None, true).map(WriteOutcome::new)
        })
        .await
    }

    /// The run failed but may succeed later: count the attempt and wait until `at`.
    pub async fn retry_effect(
        &self,
        key: &str,
        at: Timestamp,
        error: &str,
    ) -> Result<bool, StoreError> {
        let (key, error) = (key.to_string(), error.to_string());
        self.write(move |conn| {
            finish_sync(conn, &key, "pending", millis(at), Some(&error), true)
                .map(WriteOutcome::new)
        })
        .await
    }

    /// Give up on the effect; it stays listed in [`SqliteStore::failed_effects`].
    pub async fn fail_effect(
        &self,
        key: &str,
        at: Timestamp,
        error: &str,
    ) -> Result<bool, StoreError> {
        let (key, error) = (key.to_string(), error.to_string());
        self.write(move |conn| {
            finish_sync(conn, &key, "failed", millis(at), Some(&error), true).map(WriteOutcome::new)
        })
        .await
    }

    /// Drops the claim without counting an attempt (the effect was claimed but not run).
    pub async fn release_effect(&self, key: &str) -> Result<bool, StoreError> {
        let key = key.to_string();
        self.write(move |conn| {
            let n = conn
                .prepare_cached(
                    "UPDATE outbox SET claimed_until = NULL WHERE key = ?1 AND state = 'pending'",
                )
                .and_then(|mut st| st.execute([&key]))
                .map_err(sql_error)?;
            Ok(WriteOutcome::new(n > 0))
        })
        .await
    }

    /// Drops every claim, so effects a previous worker was running when it stopped run now.
    /// Called when a worker starts: local mode runs one worker per database file.
    pub async fn release_all_claims(&self) -> Result<u64, StoreError> {
        self.write(|conn| {
            let n = conn
                .execute(
                    "UPDATE outbox SET claimed_until = NULL \
                     WHERE state = 'pending' AND claimed_until IS NOT NULL",
                    [],
                )
                .map_err(sql_error)?;
            Ok(WriteOutcome::waking(n as u64, n > 0))
        })
        .await
    }

    /// Puts a failed effect back in the queue with a fresh set of attempts (after a person
    /// fixed the cause).
    pub async fn retry_failed_effect(&self, key: &str, now: Timestamp) -> Result<bool, StoreError> {
        let key = key.to_string();
        self.write(move |conn| {
            let n = conn
                .prepare_cached(
                    "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?2, \
                     claimed_until = NULL, finished_at = NULL WHERE key = ?1 AND state = 'failed'",
                )
                .and_then(|mut st| st.execute(params![key, millis(now)]))
                .map_err(sql_error)?;
            Ok(WriteOutcome::waking(n > 0, n > 0))
        })
        .await
    }

    /// One effect by key, in any state.
    pub async fn effect(&self, key: &str) -> Result<Option<OutboxEntry>, StoreError> {
        let key = key.to_string();
        self.read(move |conn| Ok(select_entries(conn, "key = ?1", [key])?.into_iter().next()))
            .await
    }

    /// Effects that gave up, oldest first: what a person must look at.
    pub async fn failed_effects(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        self.read(|conn| select_entries(conn, "state = 'failed' ORDER BY seq", []))
            .await
    }

    /// Effects not yet done, in commit order.
    pub async fn pending_effects(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        self.read(|conn| select_entries(conn, "state = 'pending' ORDER BY seq", []))
            .await
    }

    /// Every effect of one candidate, in commit order.
    pub async fn effects_for(&self, candidate_id: &str) -> Result<Vec<OutboxEntry>, StoreError> {
        let id = candidate_id.to_string();
        self.read(move |conn| select_entries(conn, "candidate_id = ?1 ORDER BY seq", [id]))
            .await
    }

    pub async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT state, COUNT(*) FROM outbox GROUP BY state")
                .map_err(sql_error)?;
            let rows = stmt
                .query_map([], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
                })
                .map_err(sql_error)?;
            let mut counts = OutboxCounts::default();
            for row in rows {
                let (state, n) = row.map_err(sql_error)?;
                let n = u64::try_from(n).unwrap_or(0);
                match EffectState::parse(&state)? {
                    EffectState::Pending => counts.pending = n,
                    EffectState::Done => counts.done = n,
                    EffectState::Failed => counts.failed = n,
                }
            }
            Ok(counts)
        })
        .await
    }

    /// When the earliest pending effect is due, so an idle worker can sleep until then.
    pub async fn next_effect_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.read(|conn| {
            let at: Option<i64> = conn
                .prepare_cached("SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'")
                .and_then(|mut st| st.query_row([], |row| row.get(0)))
                .map_err(sql_error)?;
            Ok(at.map(from_millis))
        })
        .await
    }
}

/// A message the outbox mailer kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredMessage {
    /// Small and stable: the outbox page links to `/outbox/{id}`.
    pub id: i64,
    /// The effect key the message was sent for.
    pub key: String,
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub created_at: Timestamp,
}

/// The local mode's mailer: "sending" is keeping the message in the database, where the outbox
/// page shows it. Sending the same key twice keeps the first message only.
#[derive(Clone)]
pub struct OutboxMailer {
    store: SqliteStore,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for OutboxMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxMailer").finish_non_exhaustive()
    }
}

/// The newest messages [`OutboxMailer::list_messages`] returns.
pub const MESSAGE_LIST_LIMIT: u32 = 1000;

const MESSAGE_COLUMNS: &str = "id, key, recipients, subject, text, html, created_at";

fn decode_message(row: &Row<'_>) -> Result<Result<StoredMessage, StoreError>, rusqlite::Error> {
    let id: i64 = row.get(0)?;
    let recipients: String = row.get(2)?;
    let message = StoredMessage {
        id,
        key: row.get(1)?,
        to: Vec::new(),
        subject: row.get(3)?,
        text: row.get(4)?,
        html: row.get(5)?,
        created_at: from_millis(row.get(6)?),
    };
    Ok(
        from_json::<Vec<String>>(&format!("message {id} recipients"), &recipients)
            .map(|to| StoredMessage { to, ..message }),
    )
}

fn select_messages(
    conn: &Connection,
    where_clause: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<StoredMessage>, StoreError> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE {where_clause}");
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_error)?;
    let rows = stmt.query_map(args, decode_message).map_err(sql_error)?;
    rows.map(|r| r.map_err(sql_error).and_then(|m| m)).collect()
}

impl OutboxMailer {
    /// A mailer that stamps messages with the wall clock.
    pub fn new(store: SqliteStore) -> OutboxMailer {
        OutboxMailer::with_clock(store, Arc::new(SystemClock))
    }

    /// A mailer that stamps messages with `clock`: the same clock as the workflow, so the
    /// outbox shows a message at the time its transition happened, also under time travel.
    pub fn with_clock(store: SqliteStore, clock: Arc<dyn Clock>) -> OutboxMailer {
        OutboxMailer { store, clock }
    }

    /// The newest messages first (at most [`MESSAGE_LIST_LIMIT`]).
    pub async fn list_messages(&self) -> Result<Vec<StoredMessage>, StoreError> {
        self.store
            .read(|conn| {
                select_messages(
                    conn,
                    "1 = 1 ORDER BY id DESC LIMIT ?1",
                    [i64::from(MESSAGE_LIST_LIMIT)],
                )
            })
            .await
    }

    pub async fn message(&self, id: i64) -> Result<Option<StoredMessage>, StoreError> {
        self.store
            .read(move |conn| Ok(select_messages(conn, "id = ?1", [id])?.into_iter().next()))
            .await
    }

    /// The messages sent for one candidate's effects, oldest first (effect keys start with
    /// the candidate id).
    pub async fn messages_for(&self, candidate_id: &str) -> Result<Vec<StoredMessage>, StoreError> {
        let prefix = format!("{candidate_id}:");
        self.store
            .read(move |conn| {
                select_messages(
                    conn,
                    "substr(key, 1, length(?1)) = ?1 ORDER BY id",
                    [prefix],
                )
            })
            .await
    }

    /// The messages whose recipients include `address`, oldest first.
    pub async fn messages_to(&self, address: &str) -> Result<Vec<StoredMessage>, StoreError> {
        let address = address.to_string();
        let all = self
            .store
            .read(|conn| select_messages(conn, "1 = 1 ORDER BY id", []))
            .await?;
        Ok(all
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(&address)))
            .collect())
    }
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        if mail.to.is_empty() {
            return Err(MailError::Rejected(format!(
                "message {} has no recipients",
                mail.key
            )));
        }
        let recipients = serde_json::to_string(&mail.to)
            .map_err(|e| MailError::Rejected(format!("cannot encode recipients: {e}")))?;
        let mail = mail.clone();
        let now = millis(self.clock.now());
        self.store
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO messages (key, recipients, subject, text, html, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (key) DO NOTHING",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        mail.key,
                        recipients,
                        mail.subject,
                        mail.text,
                        mail.html,
                        now
                    ])
                })
                .map_err(sql_error)?;
                Ok(WriteOutcome::new(()))
            })
            .await
            .map_err(|e| match e {
                e if e.is_retryable() => MailError::Unavailable(e.to_string()),
                e => MailError::Rejected(e.to_string()),
            })
    }
}

/// Groups claimed entries by candidate, keeping commit order inside each group.
pub(crate) fn by_candidate(entries: Vec<OutboxEntry>) -> Vec<Vec<OutboxEntry>> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<Vec<OutboxEntry>> = Vec::new();
    for e in entries {
        match index.get(&e.candidate_id) {
            Some(&i) => {
                if let Some(g) = groups.get_mut(i) {
                    g.push(e);
                }
            }
            None => {
                index.insert(e.candidate_id.clone(), groups.len());
                groups.push(vec![e]);
            }
        }
    }
    groups
}
