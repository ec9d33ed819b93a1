//! Candidates, their history, and the transactional write of a transition with its effects.

use super::codec::{from_json, is_unique_violation, millis, nanos, sql_error, to_json};
use super::{SqliteStore, WriteOutcome};
use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reclaim_workflow::ports::{
    CandidateFilter, CandidateRead, CandidateWrite, Change, Page, PageRequest, StoreError,
};
use reclaim_workflow::{Candidate, HistoryEntry};
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension};

/// A page holds this many candidates when the request does not say.
pub const DEFAULT_PAGE: u32 = 50;
/// No page holds more than this.
pub const MAX_PAGE: u32 = 1000;

const CURSOR_PREFIX: &str = "c1:";

/// Opaque to clients: the position after which the next page starts.
fn encode_cursor(seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{seq}"))
}

/// A cursor we did not hand out is refused (the API answers 400), never guessed at.
fn decode_cursor(cursor: &str) -> Result<i64, StoreError> {
    let bad = || StoreError::NotFound {
        kind: "cursor",
        id: cursor.chars().take(64).collect(),
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    text.strip_prefix(CURSOR_PREFIX)
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n >= 0)
        .ok_or_else(bad)
}

/// The numeric part of `RC0000042`, so inserted numbers keep the counter ahead of them.
fn number_value(number: &str) -> Option<i64> {
    let digits = number.trim_start_matches(|c: char| !c.is_ascii_digit());
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn decode_candidate(body: &str) -> Result<Candidate, StoreError> {
    from_json("candidate", body)
}

pub(crate) fn version_to_sql(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt(format!("version {v} is out of range")))
}

fn get_sync(conn: &Connection, id: &str) -> Result<Option<Candidate>, StoreError> {
    let body: Option<String> = conn
        .prepare_cached(
            "SELECT body FROM candidates WHERE id = ?1 OR number = ?1 \
             ORDER BY id = ?1 DESC LIMIT 1",
        )
        .and_then(|mut st| st.query_row([id], |row| row.get(0)).optional())
        .map_err(sql_error)?;
    body.as_deref().map(decode_candidate).transpose()
}

fn list_sync(
    conn: &Connection,
    filter: &CandidateFilter,
    page: &PageRequest,
) -> Result<Page<Candidate>, StoreError> {
    let limit = match page.limit {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    };
    let mut sql = String::from("SELECT seq, body FROM candidates WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    let mut clause = |sql_part: &str, value: Value| {
        args.push(value);
        sql.push_str(&format!(" AND {sql_part} ?{}", args.len()));
    };
    if let Some(s) = filter.state {
        clause("state =", Value::Text(s.as_str().into()));
    }
    if let Some(j) = filter.justification {
        clause("justification =", Value::Text(j.as_str().into()));
    }
    if let Some(a) = filter.applies_to {
        clause("applies_to =", Value::Text(a.as_str().into()));
    }
    if let Some(p) = &filter.publisher {
        clause("publisher =", Value::Text(p.clone()));
    }
    if let Some(p) = &filter.product {
        clause("product =", Value::Text(p.clone()));
    }
    if let Some(g) = &filter.group {
        clause("group_id =", Value::Text(g.clone()));
    }
    if let Some(u) = &filter.user {
        clause("user_id =", Value::Text(u.clone()));
    }
    if let Some(t) = filter.due_before {
        clause("due_at <=", Value::Integer(nanos(t)));
    }
    if let Some(cursor) = &page.cursor {
        clause("seq >", Value::Integer(decode_cursor(cursor)?));
    }
    args.push(Value::Integer(i64::from(limit) + 1));
    sql.push_str(&format!(" ORDER BY seq LIMIT ?{}", args.len()));

    let mut stmt = conn.prepare_cached(&sql).map_err(sql_error)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(sql_error)?;
    let mut items = Vec::new();
    let mut last_seq = None;
    let mut more = false;
    for row in rows {
        let (seq, body) = row.map_err(sql_error)?;
        if items.len() == limit as usize {
            more = true;
            break;
        }
        items.push(decode_candidate(&body)?);
        last_seq = Some(seq);
    }
    Ok(Page {
        items,
        next: if more {
            last_seq.map(encode_cursor)
        } else {
            None
        },
    })
}

fn history_sync(conn: &Connection, id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
    // Accept a number too, like `get`.
    let Some(cid) = conn
        .prepare_cached(
            "SELECT id FROM candidates WHERE id = ?1 OR number = ?1 \
             ORDER BY id = ?1 DESC LIMIT 1",
        )
        .and_then(|mut st| st.query_row([id], |row| row.get::<_, String>(0)).optional())
        .map_err(sql_error)?
    else {
        return Ok(Vec::new());
    };
    let mut stmt = conn
        .prepare_cached("SELECT entry FROM history WHERE candidate_id = ?1 ORDER BY version")
        .map_err(sql_error)?;
    let rows = stmt
        .query_map([cid], |row| row.get::<_, String>(0))
        .map_err(sql_error)?;
    rows.map(|r| {
        r.map_err(sql_error)
            .and_then(|text| from_json("history entry", &text))
    })
    .collect()
}

/// The indexed columns, derived from the document so they can never disagree with it.
struct Columns {
    state: &'static str,
    justification: &'static str,
    applies_to: &'static str,
    due_at: Option<i64>,
}

fn columns(c: &Candidate) -> Columns {
    Columns {
        state: c.state.as_str(),
        justification: c.justification.as_str(),
        applies_to: c.applies_to.as_str(),
        due_at: c.due_at.map(nanos),
    }
}

pub(crate) fn insert_sync(conn: &Connection, candidates: &[Candidate]) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO candidates (id, number, state, justification, applies_to, publisher, \
             product, group_id, user_id, due_at, version, body) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )
        .map_err(sql_error)?;
    let mut highest = None;
    for c in candidates {
        let cols = columns(c);
        let body = to_json(c)?;
        let result = stmt.execute(params![
            c.id,
            c.number,
            cols.state,
            cols.justification,
            cols.applies_to,
            c.software.publisher,
            c.software.product,
            c.assignment_group,
            c.user.as_ref().map(|u| u.id.as_str()),
            cols.due_at,
            version_to_sql(c.version)?,
            body,
        ]);
        match result {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                let id_taken: bool = conn
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM candidates WHERE id = ?1)")
                    .and_then(|mut st| st.query_row([&c.id], |row| row.get(0)))
                    .map_err(sql_error)?;
                return Err(if id_taken {
                    StoreError::Duplicate {
                        kind: "candidate",
                        id: c.id.clone(),
                    }
                } else {
                    StoreError::Duplicate {
                        kind: "candidate number",
                        id: c.number.clone(),
                    }
                });
            }
            Err(e) => return Err(sql_error(e)),
        }
        highest = highest.max(number_value(&c.number));
    }
    if let Some(n) = highest {
        conn.prepare_cached(
            "UPDATE counters SET value = MAX(value, ?1) WHERE name = 'candidate_number'",
        )
        .and_then(|mut st| st.execute([n.saturating_add(1)]))
        .map_err(sql_error)?;
    }
    Ok(())
}

fn allocate_sync(conn: &Connection, count: u32) -> Result<u64, StoreError> {
    let first: i64 = conn
        .prepare_cached(
            "UPDATE counters SET value = value + ?1 WHERE name = 'candidate_number' \
             RETURNING value - ?1",
        )
        .and_then(|mut st| st.query_row([i64::from(count)], |row| row.get(0)))
        .map_err(sql_error)?;
    u64::try_from(first).map_err(|_| StoreError::Corrupt(format!("number counter is {first}")))
}

/// The indexed columns, in the order `commit_sync` reads and compares them.
const INDEXED: [&str; 8] = [
    "state",
    "justification",
    "applies_to",
    "publisher",
    "product",
    "group_id",
    "user_id",
    "due_at",
];

/// Returns whether effects were queued (the worker should wake).
pub(crate) fn commit_sync(conn: &Connection, change: &Change) -> Result<bool, StoreError> {
    let c = &change.candidate;
    let cols = columns(c);
    let body = to_json(c)?;
    let expected = version_to_sql(change.expected_version)?;
    let new_version = version_to_sql(c.version)?;
    let entry_version = version_to_sql(change.entry.version)?;
    // Read the stored row first (we hold the write lock, so nothing moves in between): a
    // stale write is refused without touching a page, and the UPDATE sets only the indexed
    // columns whose values change, so SQLite rewrites only those indexes. A transition
    // usually changes the state and a due time, not the publisher or the group.
    let stored = conn
        .prepare_cached(
            "SELECT seq, version, state, justification, applies_to, publisher, product, \
             group_id, user_id, due_at FROM candidates WHERE id = ?1",
        )
        .and_then(|mut st| {
            st.query_row([&c.id], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    [
                        row.get::<_, Value>(2)?,
                        row.get::<_, Value>(3)?,
                        row.get::<_, Value>(4)?,
                        row.get::<_, Value>(5)?,
                        row.get::<_, Value>(6)?,
                        row.get::<_, Value>(7)?,
                        row.get::<_, Value>(8)?,
                        row.get::<_, Value>(9)?,
                    ],
                ))
            })
            .optional()
        })
        .map_err(sql_error)?;
    let Some((seq, version, old)) = stored else {
        return Err(StoreError::NotFound {
            kind: "candidate",
            id: c.id.clone(),
        });
    };
    if version != expected {
        return Err(StoreError::Conflict {
            id: c.id.clone(),
            expected: change.expected_version,
        });
    }
    let text = |s: &str| Value::Text(s.to_string());
    let opt_text = |s: Option<&str>| s.map_or(Value::Null, text);
    let new = [
        text(cols.state),
        text(cols.justification),
        text(cols.applies_to),
        text(&c.software.publisher),
        text(&c.software.product),
        opt_text(c.assignment_group.as_deref()),
        opt_text(c.user.as_ref().map(|u| u.id.as_str())),
        cols.due_at.map_or(Value::Null, Value::Integer),
    ];
    let mut sql = String::from("UPDATE candidates SET version = ?1, body = ?2");
    let mut args = vec![Value::Integer(new_version), Value::Text(body.clone())];
    for ((name, old), new) in INDEXED.iter().zip(old).zip(new) {
        // Exact comparison: publisher "adobe" → "Adobe" is a change even though NOCASE
        // would call them equal.
        if old != new {
            args.push(new);
            sql.push_str(&format!(", {name} = ?{}", args.len()));
        }
    }
    args.push(Value::Integer(seq));
    sql.push_str(&format!(" WHERE seq = ?{}", args.len()));
    args.push(Value::Integer(expected));
    sql.push_str(&format!(" AND version = ?{}", args.len()));
    let updated = conn
        .prepare_cached(&sql)
        .and_then(|mut st| st.execute(rusqlite::params_from_iter(args)))
        .map_err(sql_error)?;
    if updated != 1 {
        return Err(StoreError::Conflict {
            id: c.id.clone(),
            expected: change.expected_version,
        });
    }
    let entry = to_json(&change.entry)?;
    match conn
        .prepare_cached("INSERT INTO history (candidate_id, version, entry) VALUES (?1, ?2, ?3)")
        .and_then(|mut st| st.execute(params![c.id, entry_version, entry]))
    {
        Ok(_) => {}
        // Two transitions claiming one version: the later one lost the race.
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::Conflict {
                id: c.id.clone(),
                expected: change.expected_version,
            })
        }
        Err(e) => return Err(sql_error(e)),
    }
    if change.effects.is_empty() {
        return Ok(false);
    }
    // The transition's own time (the injected clock), so a time-travelled run sees its effects
    // due when it expects them.
    let now = millis(change.entry.at);
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO outbox (key, candidate_id, version, effect, candidate, state, attempts, \
             next_attempt_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?6)",
        )
        .map_err(sql_error)?;
    for effect in &change.effects {
        let json = to_json(effect)?;
        let version = version_to_sql(effect.version)?;
        match stmt.execute(params![
            effect.key,
            effect.candidate_id,
            version,
            json,
            body,
            now
        ]) {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Duplicate {
                    kind: "effect",
                    id: effect.key.clone(),
                })
            }
            Err(e) => return Err(sql_error(e)),
        }
    }
    Ok(true)
}

#[async_trait]
impl CandidateRead for SqliteStore {
    async fn get(&self, id: &str) -> Result<Option<Candidate>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| get_sync(conn, &id)).await
    }

    async fn list(
        &self,
        filter: &CandidateFilter,
        page: &PageRequest,
    ) -> Result<Page<Candidate>, StoreError> {
        let (filter, page) = (filter.clone(), page.clone());
        self.read(move |conn| list_sync(conn, &filter, &page)).await
    }

    async fn history(&self, id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| history_sync(conn, &id)).await
    }
}

#[async_trait]
impl CandidateWrite for SqliteStore {
    async fn insert(&self, candidates: &[Candidate]) -> Result<(), StoreError> {
        if candidates.is_empty() {
            return Ok(());
        }
        let candidates = candidates.to_vec();
        self.write(move |conn| insert_sync(conn, &candidates).map(WriteOutcome::new))
            .await
    }

    async fn allocate_numbers(&self, count: u32) -> Result<u64, StoreError> {
        self.write(move |conn| allocate_sync(conn, count).map(WriteOutcome::new))
            .await
    }

    async fn commit(&self, change: &Change) -> Result<(), StoreError> {
        let change = change.clone();
        self.write(move |conn| {
            commit_sync(conn, &change).map(|wakes| WriteOutcome::waking((), wakes))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        assert_eq!(decode_cursor(&encode_cursor(42)).unwrap(), 42);
        for bad in ["", "!!", "YWJj", &URL_SAFE_NO_PAD.encode("c1:-4")] {
            assert!(matches!(
                decode_cursor(bad),
                Err(StoreError::NotFound { kind: "cursor", .. })
            ));
        }
    }

    #[test]
    fn numbers_parse_from_their_digits() {
        assert_eq!(number_value("RC0000042"), Some(42));
        assert_eq!(number_value("RC"), None);
        assert_eq!(number_value("RC12X"), None);
    }
}
