//! Candidates, their history, and the transactional write of a transition with its effects.

use super::codec::{from_json, is_unique_violation, millis, nanos, sql_error, to_json};
use super::{SqliteStore, WriteOutcome};
use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reclaim_workflow::ports::{
    CandidateFilter, CandidateRead, CandidateWrite, Change, Count, Page, PageRequest, Sort,
    SortKey, SortValue, StoreError, TrailEntry,
};
use reclaim_workflow::savings::{group_scope, Contribution, Savings, ALL_SCOPE};
use reclaim_workflow::{Candidate, HistoryEntry, Timestamp};
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// A page holds this many candidates when the request does not say.
pub const DEFAULT_PAGE: u32 = 50;
/// No page holds more than this.
pub const MAX_PAGE: u32 = 1000;

const CURSOR_PREFIX: &str = "c1:";
const SORTED_PREFIX: &str = "c2:";

/// Where a page starts: after (or before) a row, in the order the cursor was made in.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Cursor {
    /// The order: `None` for the store's own (by `seq`).
    o: Option<Sort>,
    /// Going back: the page ends just before this row.
    #[serde(default)]
    b: bool,
    /// The row's sort value (absent in the store's own order).
    #[serde(default)]
    v: Option<SortValue>,
    s: i64,
}

/// Opaque to clients: the position after (or before) which the next page starts.
fn encode_cursor(c: &Cursor) -> String {
    if c.o.is_none() && !c.b {
        return URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{}", c.s));
    }
    let json = serde_json::to_string(c).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(format!("{SORTED_PREFIX}{json}"))
}

/// A cursor we did not hand out, or one made in another order, is refused (the API answers
/// 400), never guessed at.
fn decode_cursor(cursor: &str, sort: Option<Sort>) -> Result<Cursor, StoreError> {
    let bad = || StoreError::NotFound {
        kind: "cursor",
        id: cursor.chars().take(64).collect(),
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let c = if let Some(seq) = text.strip_prefix(CURSOR_PREFIX) {
        Cursor {
            o: None,
            b: false,
            v: None,
            s: seq.parse::<i64>().map_err(|_| bad())?,
        }
    } else {
        let json = text.strip_prefix(SORTED_PREFIX).ok_or_else(bad)?;
        serde_json::from_str::<Cursor>(json).map_err(|_| bad())?
    };
    let value_fits = match (&c.o, &c.v) {
        (None, None) => true,
        (Some(o), Some(v)) => matches!(
            (o.key, v),
            (
                SortKey::Number | SortKey::Software | SortKey::User | SortKey::Stage,
                SortValue::Text(_)
            ) | (
                SortKey::InactiveDays | SortKey::Deadline | SortKey::Savings,
                SortValue::Int(_)
            )
        ),
        _ => false,
    };
    if c.s < 0 || c.o != sort || !value_fits {
        return Err(bad());
    }
    Ok(c)
}

/// The column holding each order's value (see [`SortKey::value`]).
fn sort_column(key: SortKey) -> &'static str {
    match key {
        SortKey::Number => "number",
        SortKey::Software => "software_key",
        SortKey::User => "user_key",
        SortKey::InactiveDays => "inactive_key",
        SortKey::Deadline => "deadline_key",
        SortKey::Stage => "state",
        SortKey::Savings => "savings_key",
    }
}

fn sort_value_sql(v: &SortValue) -> Value {
    match v {
        SortValue::Int(i) => Value::Integer(*i),
        SortValue::Text(t) => Value::Text(t.clone()),
    }
}

/// `LIKE` pattern for "contains", with the pattern characters in the text taken literally.
fn contains_pattern(text: &str) -> String {
    let mut p = String::from("%");
    for ch in text.trim().chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

/// The `WHERE` clause (after `WHERE 1 = 1`) and its arguments for a filter.
/// `walk_order`: the page is read through the order's own index, so the broad filters (stage,
/// justification, kind, group) are checked row by row (SQLite's unary `+` keeps it from
/// reading them through their indexes and sorting everything they match: a stage holds
/// hundreds of thousands of candidates, while a page needs the first fifty in order).
/// `by_stage_order`: the order has an index after the stage (the answer-by date), which the
/// stage must be read through.
fn filter_sql(
    filter: &CandidateFilter,
    sql: &mut String,
    args: &mut Vec<Value>,
    walk_order: bool,
    by_stage_order: bool,
) {
    let broad = if walk_order { "+" } else { "" };
    let mut clause = |sql_part: &str, value: Value| {
        args.push(value);
        sql.push_str(&format!(" AND {sql_part} ?{}", args.len()));
    };
    if let Some(s) = filter.state {
        let stage = if by_stage_order { "" } else { broad };
        clause(&format!("{stage}state ="), Value::Text(s.as_str().into()));
    }
    if let Some(j) = filter.justification {
        clause(
            &format!("{broad}justification ="),
            Value::Text(j.as_str().into()),
        );
    }
    if let Some(a) = filter.applies_to {
        clause(
            &format!("{broad}applies_to ="),
            Value::Text(a.as_str().into()),
        );
    }
    if let Some(p) = &filter.publisher {
        clause("publisher =", Value::Text(p.clone()));
    }
    if let Some(p) = &filter.product {
        clause("product =", Value::Text(p.clone()));
    }
    if let Some(g) = &filter.group {
        clause(&format!("{broad}group_id ="), Value::Text(g.clone()));
    }
    if let Some(u) = &filter.user {
        clause("user_id =", Value::Text(u.clone()));
    }
    if let Some(t) = filter.due_before {
        clause("due_at <=", Value::Integer(nanos(t)));
    }
    if let Some(t) = filter.alert_before {
        clause("alert_at <=", Value::Integer(nanos(t)));
    }
    // Searches go through the small catalogs of software and people (an index lookup per
    // match), never through a scan of every candidate.
    if let Some(t) = filter
        .software_text
        .as_deref()
        .filter(|t| !t.trim().is_empty())
    {
        clause(
            "(publisher, product) IN (SELECT publisher, product FROM software_catalog \
             WHERE publisher || ' ' || product LIKE",
            Value::Text(contains_pattern(t)),
        );
        sql.push_str(" ESCAPE '\\')");
    }
    if let Some(t) = filter.user_text.as_deref().filter(|t| !t.trim().is_empty()) {
        args.push(Value::Text(contains_pattern(t)));
        let n = args.len();
        sql.push_str(&format!(
            " AND user_id IN (SELECT user_id FROM people WHERE user_id LIKE ?{n} ESCAPE '\\' \
             OR name LIKE ?{n} ESCAPE '\\' OR email LIKE ?{n} ESCAPE '\\')"
        ));
    }
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
    let cursor = page
        .cursor
        .as_deref()
        .map(|c| decode_cursor(c, page.sort))
        .transpose()?;
    let backwards = cursor.as_ref().is_some_and(|c| c.b);
    let (sql, args) = list_sql(filter, page.sort, cursor.as_ref(), limit);
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_error)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, Value>(1)?,
                row.get::<_, String>(2)?,
            ))
        })
        .map_err(sql_error)?;
    let mut found = Vec::new();
    let mut more = false;
    for row in rows {
        let (seq, value, body) = row.map_err(sql_error)?;
        if found.len() == limit as usize {
            more = true;
            break;
        }
        let value = match value {
            Value::Integer(i) => Some(SortValue::Int(i)),
            Value::Text(t) => Some(SortValue::Text(t)),
            _ => None,
        };
        found.push((seq, value, decode_candidate(&body)?));
    }
    if backwards {
        found.reverse();
    }
    let at = |(seq, value, _): &(i64, Option<SortValue>, Candidate), b: bool| {
        encode_cursor(&Cursor {
            o: page.sort,
            b,
            v: value.clone(),
            s: *seq,
        })
    };
    // Going forwards there is a page before whenever we started after a row; going back,
    // there is a page after (the one we came from).
    let (more_after, more_before) = if backwards {
        (cursor.is_some(), more)
    } else {
        (more, cursor.is_some())
    };
    let next = found.last().filter(|_| more_after).map(|r| at(r, false));
    let prev = found.first().filter(|_| more_before).map(|r| at(r, true));
    Ok(Page {
        items: found.into_iter().map(|(_, _, c)| c).collect(),
        next,
        prev,
    })
}

/// The query for one page of a listing (one row more than the page, to know there is more).
fn list_sql(
    filter: &CandidateFilter,
    sort: Option<Sort>,
    cursor: Option<&Cursor>,
    limit: u32,
) -> (String, Vec<Value>) {
    let backwards = cursor.is_some_and(|c| c.b);
    let column = sort.map(|o| sort_column(o.key));
    let mut sql = match column {
        Some(col) => format!("SELECT seq, {col}, body FROM candidates WHERE 1 = 1"),
        None => String::from("SELECT seq, NULL, body FROM candidates WHERE 1 = 1"),
    };
    let mut args: Vec<Value> = Vec::new();
    // A sorted page walks its order's index unless a narrow filter (a person, a product, a
    // search, a due time) picks few enough rows to sort.
    let narrow = filter.user.is_some()
        || filter.product.is_some()
        || filter.publisher.is_some()
        || filter.due_before.is_some()
        || filter.alert_before.is_some()
        || filter.software_text.is_some()
        || filter.user_text.is_some();
    filter_sql(
        filter,
        &mut sql,
        &mut args,
        column.is_some() && !narrow,
        sort.is_some_and(|o| o.key == SortKey::Deadline),
    );
    // Reading backwards walks the order reversed and turns the page round afterwards.
    let descending = sort.is_some_and(|o| o.descending) != backwards;
    let (cmp, dir) = if descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    if let Some(c) = cursor {
        match (column, &c.v) {
            (Some(col), Some(v)) => {
                args.push(sort_value_sql(v));
                args.push(Value::Integer(c.s));
                sql.push_str(&format!(
                    " AND ({col}, seq) {cmp} (?{}, ?{})",
                    args.len() - 1,
                    args.len()
                ));
            }
            _ => {
                args.push(Value::Integer(c.s));
                sql.push_str(&format!(" AND seq {cmp} ?{}", args.len()));
            }
        }
    }
    args.push(Value::Integer(i64::from(limit) + 1));
    match column {
        Some(col) => sql.push_str(&format!(
            " ORDER BY {col} {dir}, seq {dir} LIMIT ?{}",
            args.len()
        )),
        None => sql.push_str(&format!(" ORDER BY seq {dir} LIMIT ?{}", args.len())),
    }

    (sql, args)
}

const TRAIL_PREFIX: &str = "h1:";

/// After this history entry (its time, candidate and version), in period exports.
fn encode_trail_cursor(at: i64, id: &str, version: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{TRAIL_PREFIX}{at}:{version}:{id}"))
}

fn decode_trail_cursor(cursor: &str) -> Result<(i64, String, i64), StoreError> {
    let bad = || StoreError::NotFound {
        kind: "cursor",
        id: cursor.chars().take(64).collect(),
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let rest = text.strip_prefix(TRAIL_PREFIX).ok_or_else(bad)?;
    let mut parts = rest.splitn(3, ':');
    let at = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let version = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let id = parts.next().ok_or_else(bad)?.to_string();
    Ok((at, id, version))
}

fn history_between_sync(
    conn: &Connection,
    from: Timestamp,
    to: Timestamp,
    page: &PageRequest,
) -> Result<Page<TrailEntry>, StoreError> {
    let limit = match page.limit {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    };
    let after = page
        .cursor
        .as_deref()
        .map(decode_trail_cursor)
        .transpose()?;
    let (a_at, a_id, a_v) = after.unwrap_or((i64::MIN, String::new(), -1));
    let mut stmt = conn
        .prepare_cached(
            "SELECT h.at, h.candidate_id, h.version, h.entry, c.number FROM history h \
             LEFT JOIN candidates c ON c.id = h.candidate_id \
             WHERE h.at >= ?1 AND h.at < ?2 AND (h.at, h.candidate_id, h.version) > (?3, ?4, ?5) \
             ORDER BY h.at, h.candidate_id, h.version LIMIT ?6",
        )
        .map_err(sql_error)?;
    let rows = stmt
        .query_map(
            params![
                nanos(from),
                nanos(to),
                a_at,
                a_id,
                a_v,
                i64::from(limit) + 1
            ],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, Option<String>>(4)?,
                ))
            },
        )
        .map_err(sql_error)?;
    let mut items = Vec::new();
    let mut last = None;
    let mut more = false;
    for row in rows {
        let (at, id, version, text, number) = row.map_err(sql_error)?;
        if items.len() == limit as usize {
            more = true;
            break;
        }
        let entry: HistoryEntry = from_json("history entry", &text)?;
        items.push(TrailEntry {
            number: number.unwrap_or_else(|| id.clone()),
            entry,
        });
        last = Some((at, id, version));
    }
    Ok(Page {
        items,
        next: last
            .filter(|_| more)
            .map(|(at, id, v)| encode_trail_cursor(at, &id, v)),
        prev: None,
    })
}

fn count_sync(
    conn: &Connection,
    filter: &CandidateFilter,
    up_to: u64,
) -> Result<Count, StoreError> {
    let mut inner = String::from("SELECT 1 FROM candidates WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    filter_sql(filter, &mut inner, &mut args, false, false);
    let bound = i64::try_from(up_to).unwrap_or(i64::MAX - 1);
    args.push(Value::Integer(bound.saturating_add(1)));
    let sql = format!("SELECT COUNT(*) FROM ({inner} LIMIT ?{})", args.len());
    let n: i64 = conn
        .prepare_cached(&sql)
        .and_then(|mut st| st.query_row(rusqlite::params_from_iter(args), |row| row.get(0)))
        .map_err(sql_error)?;
    let n = u64::try_from(n).unwrap_or(0);
    Ok(Count {
        n: n.min(up_to),
        more: n > up_to,
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
    alert_at: Option<i64>,
    /// Each order's value, from [`SortKey::value`] (number and stage have columns already).
    sort: [Value; 5],
}

/// The orders with a column of their own, in `Columns::sort` order.
const SORT_COLUMNS: [SortKey; 5] = [
    SortKey::Software,
    SortKey::User,
    SortKey::InactiveDays,
    SortKey::Deadline,
    SortKey::Savings,
];

fn columns(c: &Candidate) -> Columns {
    Columns {
        state: c.state.as_str(),
        justification: c.justification.as_str(),
        applies_to: c.applies_to.as_str(),
        due_at: c.due_at.map(nanos),
        alert_at: reclaim_workflow::usage::alert_from(c).map(nanos),
        sort: SORT_COLUMNS.map(|k| sort_value_sql(&k.value(c))),
    }
}

/// A candidate as its row holds it. Worked out by the caller before the write is queued, so
/// the one writer thread only runs SQL while the callers encode side by side; the writer gets
/// what it needs of the candidate ([`Identity`]), not a copy of the whole candidate.
struct Encoded {
    who: Identity,
    cols: Columns,
    body: String,
    contribution: Option<Contribution>,
    contribution_json: Option<String>,
}

impl Encoded {
    fn of(c: &Candidate) -> Result<Encoded, StoreError> {
        let contribution = Contribution::of(c);
        Ok(Encoded {
            who: Identity::of(c),
            cols: columns(c),
            body: to_json(c)?,
            contribution_json: contribution.as_ref().map(to_json).transpose()?,
            contribution,
        })
    }
}

/// The fields of a candidate that the writer reads outside its encoded columns: keys, the
/// version, and what the search catalogs and the savings scopes hold.
struct Identity {
    id: String,
    number: String,
    version: u64,
    publisher: String,
    product: String,
    group: Option<String>,
    user: Option<Person>,
}

/// A candidate's person as the people catalog holds them.
struct Person {
    id: String,
    name: String,
    email: Option<String>,
}

impl Identity {
    fn of(c: &Candidate) -> Identity {
        Identity {
            id: c.id.clone(),
            number: c.number.clone(),
            version: c.version,
            publisher: c.software.publisher.clone(),
            product: c.software.product.clone(),
            group: c.assignment_group.clone(),
            user: c.user.as_ref().map(|u| Person {
                id: u.id.clone(),
                name: u.display_name.clone(),
                email: u.email.clone(),
            }),
        }
    }
}

/// A transition encoded before it is queued for the writer (see [`Encoded`]).
struct EncodedChange {
    expected_version: u64,
    candidate: Encoded,
    entry_version: u64,
    entry_at: Timestamp,
    entry: String,
    /// Each effect's key, candidate and version, and its JSON.
    effects: Vec<(String, String, u64, String)>,
}

impl EncodedChange {
    fn of(change: &Change) -> Result<EncodedChange, StoreError> {
        Ok(EncodedChange {
            expected_version: change.expected_version,
            candidate: Encoded::of(&change.candidate)?,
            entry_version: change.entry.version,
            entry_at: change.entry.at,
            entry: to_json(&change.entry)?,
            effects: change
                .effects
                .iter()
                .map(|e| {
                    Ok((
                        e.key.clone(),
                        e.candidate_id.clone(),
                        e.version,
                        to_json(e)?,
                    ))
                })
                .collect::<Result<_, StoreError>>()?,
        })
    }
}

/// Keeps the search catalogs holding this candidate's software and person.
fn catalog_sync(conn: &Connection, c: &Identity) -> Result<(), StoreError> {
    software_catalog_sync(conn, c)?;
    people_sync(conn, c)
}

fn software_catalog_sync(conn: &Connection, c: &Identity) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO software_catalog (publisher, product) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    )
    .and_then(|mut st| st.execute(params![c.publisher, c.product]))
    .map_err(sql_error)?;
    Ok(())
}

fn people_sync(conn: &Connection, c: &Identity) -> Result<(), StoreError> {
    if let Some(u) = &c.user {
        conn.prepare_cached(
            "INSERT INTO people (user_id, name, email) VALUES (?1, ?2, ?3) \
             ON CONFLICT (user_id) DO UPDATE SET name = excluded.name, email = excluded.email \
             WHERE name IS NOT excluded.name OR email IS NOT excluded.email",
        )
        .and_then(|mut st| st.execute(params![u.id, u.name, u.email]))
        .map_err(sql_error)?;
    }
    Ok(())
}

/// Applies savings differences to the running totals: each `(scope, contribution, sign)` adds
/// (1) or takes back (-1) one candidate's part. One read and one write per scope touched.
fn adjust_totals(
    conn: &Connection,
    changes: &[(String, Contribution, i64)],
) -> Result<(), StoreError> {
    let mut scopes: std::collections::BTreeMap<&str, Vec<(&Contribution, i64)>> =
        std::collections::BTreeMap::new();
    for (scope, x, sign) in changes {
        scopes.entry(scope.as_str()).or_default().push((x, *sign));
    }
    for (scope, parts) in scopes {
        let body: Option<String> = conn
            .prepare_cached("SELECT body FROM savings_totals WHERE scope = ?1")
            .and_then(|mut st| st.query_row([scope], |row| row.get(0)).optional())
            .map_err(sql_error)?;
        let mut totals: Savings = match body {
            Some(b) => from_json("savings totals", &b)?,
            None => Savings::default(),
        };
        for (x, sign) in parts {
            totals.apply(x, sign);
        }
        let body = to_json(&totals)?;
        conn.prepare_cached(
            "INSERT INTO savings_totals (scope, body) VALUES (?1, ?2) \
             ON CONFLICT (scope) DO UPDATE SET body = excluded.body",
        )
        .and_then(|mut st| st.execute(params![scope, body]))
        .map_err(sql_error)?;
    }
    Ok(())
}

/// The writer connection's savings moves not yet in the totals: each transition that changes
/// what a candidate adds queues its difference here, and [`settle_savings`] applies them all
/// just before the transaction commits. A group commit then reads and writes each scope's
/// totals once instead of once per transition (the totals are a document that grows with the
/// publishers and products in scope). A temporary table rather than memory, so a write that
/// fails or is rolled back takes its moves with it.
pub(crate) const SAVINGS_MOVES: &str = "CREATE TEMP TABLE IF NOT EXISTS savings_moves (\
     scope TEXT NOT NULL, contribution TEXT NOT NULL, sign INTEGER NOT NULL)";

/// Queues `(scope, contribution JSON, sign)` moves for [`settle_savings`].
fn queue_savings_moves(conn: &Connection, moves: &[(String, &str, i64)]) -> Result<(), StoreError> {
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO temp.savings_moves (scope, contribution, sign) VALUES (?1, ?2, ?3)",
        )
        .map_err(sql_error)?;
    for (scope, x, sign) in moves {
        insert.execute(params![scope, x, sign]).map_err(sql_error)?;
    }
    Ok(())
}

/// Applies the queued savings moves to the running totals; the writer calls it before every
/// commit, inside the transaction, so readers never see a candidate without its savings.
pub(crate) fn settle_savings(conn: &Connection) -> Result<(), StoreError> {
    let moves: Vec<(String, String, i64)> = conn
        .prepare_cached("SELECT scope, contribution, sign FROM temp.savings_moves")
        .and_then(|mut st| {
            st.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                .collect::<Result<_, _>>()
        })
        .map_err(sql_error)?;
    if moves.is_empty() {
        return Ok(());
    }
    let changes = moves
        .into_iter()
        .map(|(scope, x, sign)| Ok((scope, from_json("savings contribution", &x)?, sign)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    adjust_totals(conn, &changes)?;
    conn.prepare_cached("DELETE FROM temp.savings_moves")
        .and_then(|mut st| st.execute([]))
        .map_err(sql_error)?;
    Ok(())
}

/// The scopes a candidate's savings count in: everything, and its group.
fn scopes_of(group: Option<&str>) -> [String; 2] {
    [ALL_SCOPE.to_string(), group_scope(group)]
}

/// Sums every candidate's savings again from the candidates themselves (the migration that
/// introduced the totals, and `reclaim savings --rebuild`): the totals and each candidate's
/// stored contribution are replaced.
pub(crate) fn rebuild_savings_sync(conn: &Connection) -> Result<u64, StoreError> {
    // Moves queued earlier in this transaction are already in the candidates summed below.
    // (The migration that sums the totals first runs on a connection without the table.)
    conn.execute_batch(SAVINGS_MOVES)
        .and_then(|()| {
            conn.execute_batch("DELETE FROM savings_totals; DELETE FROM temp.savings_moves")
        })
        .map_err(sql_error)?;
    let rows: Vec<(i64, String)> = conn
        .prepare("SELECT seq, body FROM candidates")
        .and_then(|mut st| {
            st.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<_, _>>()
        })
        .map_err(sql_error)?;
    let mut totals: std::collections::BTreeMap<String, Savings> = Default::default();
    let mut update = conn
        .prepare("UPDATE candidates SET contribution = ?1 WHERE seq = ?2")
        .map_err(sql_error)?;
    let count = rows.len() as u64;
    for (seq, body) in rows {
        let c = decode_candidate(&body)?;
        let x = Contribution::of(&c);
        update
            .execute(params![x.as_ref().map(to_json).transpose()?, seq])
            .map_err(sql_error)?;
        if let Some(x) = x {
            for scope in scopes_of(c.assignment_group.as_deref()) {
                totals.entry(scope).or_default().apply(&x, 1);
            }
        }
    }
    for (scope, t) in totals {
        conn.execute(
            "INSERT INTO savings_totals (scope, body) VALUES (?1, ?2)",
            params![scope, to_json(&t)?],
        )
        .map_err(sql_error)?;
    }
    Ok(count)
}

fn savings_sync(conn: &Connection, scope: &str) -> Result<Savings, StoreError> {
    let body: Option<String> = conn
        .prepare_cached("SELECT body FROM savings_totals WHERE scope = ?1")
        .and_then(|mut st| st.query_row([scope], |row| row.get(0)).optional())
        .map_err(sql_error)?;
    body.map_or_else(
        || Ok(Savings::default()),
        |b| from_json("savings totals", &b),
    )
}

/// Fills in when each stored candidate becomes an alert.
pub(crate) fn backfill_alerts_sync(conn: &Connection) -> rusqlite::Result<()> {
    let rows: Vec<(i64, String)> = conn
        .prepare("SELECT seq, body FROM candidates")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut update = conn.prepare("UPDATE candidates SET alert_at = ?1 WHERE seq = ?2")?;
    for (seq, body) in rows {
        if let Ok(c) = decode_candidate(&body) {
            update.execute(params![
                reclaim_workflow::usage::alert_from(&c).map(nanos),
                seq
            ])?;
        }
    }
    Ok(())
}

/// Fills the order columns and catalogs of rows written before they existed.
pub(crate) fn backfill_sync(conn: &Connection) -> rusqlite::Result<()> {
    let rows: Vec<(i64, String)> = conn
        .prepare("SELECT seq, body FROM candidates")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut update = conn.prepare(
        "UPDATE candidates SET software_key = ?1, user_key = ?2, inactive_key = ?3, \
         deadline_key = ?4, savings_key = ?5 WHERE seq = ?6",
    )?;
    for (seq, body) in rows {
        // A row that does not read keeps its defaults; reading it reports the problem.
        let Ok(c) = decode_candidate(&body) else {
            continue;
        };
        let [a, b, c2, d, e] = columns(&c).sort;
        update.execute(params![a, b, c2, d, e, seq])?;
        catalog_sync(conn, &Identity::of(&c)).map_err(|e| {
            rusqlite::Error::ToSqlConversionFailure(Box::new(std::io::Error::other(e.to_string())))
        })?;
    }
    let entries: Vec<(String, i64, String)> = conn
        .prepare("SELECT candidate_id, version, entry FROM history")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut update =
        conn.prepare("UPDATE history SET at = ?1 WHERE candidate_id = ?2 AND version = ?3")?;
    for (id, version, text) in entries {
        if let Ok(e) = from_json::<HistoryEntry>("history entry", &text) {
            update.execute(params![nanos(e.at), id, version])?;
        }
    }
    Ok(())
}

fn insert_sync(conn: &Connection, candidates: &[Encoded]) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO candidates (id, number, state, justification, applies_to, publisher, \
             product, group_id, user_id, due_at, version, body, software_key, user_key, \
             inactive_key, deadline_key, savings_key, contribution, alert_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
             ?18, ?19)",
        )
        .map_err(sql_error)?;
    let mut highest = None;
    let mut totals = Vec::new();
    // A batch names few products and people many times: each goes to its catalog once (a
    // person named twice alike; a new name or email for one still overwrites the old).
    let mut software = std::collections::HashSet::new();
    let mut people = std::collections::HashSet::new();
    for e in candidates {
        let c = &e.who;
        let cols = &e.cols;
        let [k1, k2, k3, k4, k5] = &cols.sort;
        let result = stmt.execute(params![
            c.id,
            c.number,
            cols.state,
            cols.justification,
            cols.applies_to,
            c.publisher,
            c.product,
            c.group,
            c.user.as_ref().map(|u| u.id.as_str()),
            cols.due_at,
            version_to_sql(c.version)?,
            e.body,
            k1,
            k2,
            k3,
            k4,
            k5,
            e.contribution_json,
            cols.alert_at,
        ]);
        if let Some(x) = &e.contribution {
            for scope in scopes_of(c.group.as_deref()) {
                totals.push((scope, x.clone(), 1));
            }
        }
        match result {
            Ok(_) => {
                if software.insert((c.publisher.as_str(), c.product.as_str())) {
                    software_catalog_sync(conn, c)?;
                }
                let person = c.user.as_ref().map(|u| (&u.id, &u.name, &u.email));
                if person.is_some() && people.insert(person) {
                    people_sync(conn, c)?;
                }
            }
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
    adjust_totals(conn, &totals)?;
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
const INDEXED: [&str; 14] = [
    "state",
    "justification",
    "applies_to",
    "publisher",
    "product",
    "group_id",
    "user_id",
    "due_at",
    "software_key",
    "user_key",
    "inactive_key",
    "deadline_key",
    "savings_key",
    "alert_at",
];

/// Returns whether effects were queued (the worker should wake).
fn commit_sync(conn: &Connection, encoded: &EncodedChange) -> Result<bool, StoreError> {
    let c = &encoded.candidate.who;
    let cols = &encoded.candidate.cols;
    let body = &encoded.candidate.body;
    let expected = version_to_sql(encoded.expected_version)?;
    let new_version = version_to_sql(c.version)?;
    let entry_version = version_to_sql(encoded.entry_version)?;
    // Read the stored row first (we hold the write lock, so nothing moves in between): a
    // stale write is refused without touching a page, and the UPDATE sets only the indexed
    // columns whose values change, so SQLite rewrites only those indexes. A transition
    // usually changes the state and a due time, not the publisher or the group.
    let stored = conn
        .prepare_cached(
            "SELECT seq, version, state, justification, applies_to, publisher, product, \
             group_id, user_id, due_at, software_key, user_key, inactive_key, deadline_key, \
             savings_key, alert_at, contribution FROM candidates WHERE id = ?1",
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
                        row.get::<_, Value>(10)?,
                        row.get::<_, Value>(11)?,
                        row.get::<_, Value>(12)?,
                        row.get::<_, Value>(13)?,
                        row.get::<_, Value>(14)?,
                        row.get::<_, Value>(15)?,
                    ],
                    row.get::<_, Option<String>>(16)?,
                ))
            })
            .optional()
        })
        .map_err(sql_error)?;
    let Some((seq, version, old, old_contribution)) = stored else {
        return Err(StoreError::NotFound {
            kind: "candidate",
            id: c.id.clone(),
        });
    };
    if version != expected {
        return Err(StoreError::Conflict {
            id: c.id.clone(),
            expected: encoded.expected_version,
        });
    }
    let text = |s: &str| Value::Text(s.to_string());
    let opt_text = |s: Option<&str>| s.map_or(Value::Null, text);
    // Savings: only a transition that changes what the candidate adds (closing, a re-check's
    // finding, a new group) touches the totals.
    let new_contribution = encoded.candidate.contribution_json.clone();
    let old_group = match &old[5] {
        Value::Text(g) => Some(g.clone()),
        _ => None,
    };
    let savings_moved =
        new_contribution != old_contribution || old_group.as_deref() != c.group.as_deref();
    // A new user (or a new name for one) goes into the people catalog for searches.
    let user_moved =
        old[6] != opt_text(c.user.as_ref().map(|u| u.id.as_str())) || old[9] != cols.sort[1];
    let [k1, k2, k3, k4, k5] = cols.sort.clone();
    let new = [
        text(cols.state),
        text(cols.justification),
        text(cols.applies_to),
        text(&c.publisher),
        text(&c.product),
        opt_text(c.group.as_deref()),
        opt_text(c.user.as_ref().map(|u| u.id.as_str())),
        cols.due_at.map_or(Value::Null, Value::Integer),
        k1,
        k2,
        k3,
        k4,
        k5,
        cols.alert_at.map_or(Value::Null, Value::Integer),
    ];
    let mut sql = String::from("UPDATE candidates SET version = ?1, body = ?2");
    let mut args = vec![Value::Integer(new_version), Value::Text(body.clone())];
    if savings_moved {
        args.push(new_contribution.clone().map_or(Value::Null, Value::Text));
        sql.push_str(&format!(", contribution = ?{}", args.len()));
    }
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
            expected: encoded.expected_version,
        });
    }
    if user_moved {
        catalog_sync(conn, c)?;
    }
    if savings_moved {
        let mut changes = Vec::new();
        if let Some(old) = old_contribution.as_deref() {
            for scope in scopes_of(old_group.as_deref()) {
                changes.push((scope, old, -1));
            }
        }
        if let Some(x) = new_contribution.as_deref() {
            for scope in scopes_of(c.group.as_deref()) {
                changes.push((scope, x, 1));
            }
        }
        queue_savings_moves(conn, &changes)?;
    }
    let entry = &encoded.entry;
    match conn
        .prepare_cached(
            "INSERT INTO history (candidate_id, version, entry, at) VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut st| st.execute(params![c.id, entry_version, entry, nanos(encoded.entry_at)]))
    {
        Ok(_) => {}
        // Two transitions claiming one version: the later one lost the race.
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::Conflict {
                id: c.id.clone(),
                expected: encoded.expected_version,
            })
        }
        Err(e) => return Err(sql_error(e)),
    }
    if encoded.effects.is_empty() {
        return Ok(false);
    }
    // The transition's own time (the injected clock), so a time-travelled run sees its effects
    // due when it expects them.
    let now = millis(encoded.entry_at);
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO outbox (key, candidate_id, version, effect, candidate, state, attempts, \
             next_attempt_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?6)",
        )
        .map_err(sql_error)?;
    for (key, candidate_id, version, json) in &encoded.effects {
        let version = version_to_sql(*version)?;
        match stmt.execute(params![key, candidate_id, version, json, body, now]) {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Duplicate {
                    kind: "effect",
                    id: key.clone(),
                })
            }
            Err(e) => return Err(sql_error(e)),
        }
    }
    Ok(true)
}

impl SqliteStore {
    /// Sums the savings again from every candidate (`reclaim savings --rebuild`), in one
    /// transaction; returns how many candidates were read. Running totals never drift, but
    /// this proves it and repairs a file edited by hand.
    pub async fn rebuild_savings(&self) -> Result<u64, StoreError> {
        self.write(|conn| rebuild_savings_sync(conn).map(WriteOutcome::new))
            .await
    }
}

#[async_trait]
impl CandidateRead for SqliteStore {
    async fn get(&self, id: &str) -> Result<Option<Candidate>, StoreError> {
        let id = id.to_string();
        self.read_point(move |conn| get_sync(conn, &id)).await
    }

    async fn list(
        &self,
        filter: &CandidateFilter,
        page: &PageRequest,
    ) -> Result<Page<Candidate>, StoreError> {
        let (filter, page) = (filter.clone(), page.clone());
        self.read(move |conn| list_sync(conn, &filter, &page)).await
    }

    async fn count(&self, filter: &CandidateFilter, up_to: u64) -> Result<Count, StoreError> {
        let filter = filter.clone();
        self.read(move |conn| count_sync(conn, &filter, up_to))
            .await
    }

    async fn history(&self, id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| history_sync(conn, &id)).await
    }

    async fn savings(&self, scope: &str) -> Result<Option<Savings>, StoreError> {
        let scope = scope.to_string();
        self.read(move |conn| savings_sync(conn, &scope).map(Some))
            .await
    }

    async fn history_between(
        &self,
        from: Timestamp,
        to: Timestamp,
        page: &PageRequest,
    ) -> Result<Page<TrailEntry>, StoreError> {
        let page = page.clone();
        self.read(move |conn| history_between_sync(conn, from, to, &page))
            .await
    }
}

#[async_trait]
impl CandidateWrite for SqliteStore {
    async fn insert(&self, candidates: &[Candidate]) -> Result<(), StoreError> {
        if candidates.is_empty() {
            return Ok(());
        }
        let encoded = candidates
            .iter()
            .map(Encoded::of)
            .collect::<Result<Vec<_>, _>>()?;
        self.write(move |conn| insert_sync(conn, &encoded).map(WriteOutcome::new))
            .await
    }

    async fn allocate_numbers(&self, count: u32) -> Result<u64, StoreError> {
        self.write(move |conn| allocate_sync(conn, count).map(WriteOutcome::new))
            .await
    }

    async fn commit(&self, change: &Change) -> Result<(), StoreError> {
        let encoded = EncodedChange::of(change)?;
        self.write(move |conn| {
            commit_sync(conn, &encoded).map(|wakes| WriteOutcome::waking((), wakes))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        let plain = Cursor {
            o: None,
            b: false,
            v: None,
            s: 42,
        };
        assert_eq!(decode_cursor(&encode_cursor(&plain), None).unwrap(), plain);
        let sort = Some(Sort {
            key: SortKey::Savings,
            descending: true,
        });
        let sorted = Cursor {
            o: sort,
            b: true,
            v: Some(SortValue::Int(1200)),
            s: 7,
        };
        let text = encode_cursor(&sorted);
        assert_eq!(decode_cursor(&text, sort).unwrap(), sorted);
        // A cursor from another order does not belong to this one.
        assert!(decode_cursor(&text, None).is_err());
        let wrong_value = Cursor {
            v: Some(SortValue::Text("x".into())),
            ..sorted
        };
        assert!(decode_cursor(&encode_cursor(&wrong_value), sort).is_err());
        for bad in ["", "!!", "YWJj", &URL_SAFE_NO_PAD.encode("c1:-4")] {
            assert!(matches!(
                decode_cursor(bad, None),
                Err(StoreError::NotFound { kind: "cursor", .. })
            ));
        }
    }

    /// What SQLite would do for one page of a listing.
    fn plan(conn: &Connection, filter: &CandidateFilter, sort: Option<Sort>) -> String {
        let (sql, args) = list_sql(filter, sort, None, 50);
        let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = st
            .query_map(rusqlite::params_from_iter(args), |row| {
                row.get::<_, String>(3)
            })
            .unwrap();
        rows.map(|r| r.unwrap()).collect::<Vec<_>>().join("; ")
    }

    #[test]
    fn a_page_of_the_common_listings_is_read_in_order_without_sorting_the_matches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plans.db");
        drop(super::super::SqliteStore::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        use reclaim_workflow::State;
        let stage = |s: State| CandidateFilter {
            state: Some(s),
            ..Default::default()
        };
        let by = |key, descending| Some(Sort { key, descending });
        let cases = [
            (CandidateFilter::default(), None),
            (stage(State::Ready), None),
            (CandidateFilter::default(), by(SortKey::Savings, true)),
            (stage(State::Ready), by(SortKey::Savings, true)),
            // Ready has no answer-by date: all of it sorts after every dated candidate.
            (stage(State::Ready), by(SortKey::Deadline, false)),
            (stage(State::AwaitingUser), by(SortKey::Deadline, true)),
            (
                CandidateFilter {
                    group: Some("desktop".into()),
                    ..Default::default()
                },
                by(SortKey::Software, false),
            ),
        ];
        for (filter, sort) in cases {
            let plan = plan(&conn, &filter, sort);
            assert!(!plan.contains("TEMP B-TREE"), "{filter:?} {sort:?}: {plan}");
            if filter.state.is_some() && sort.is_some_and(|o| o.key == SortKey::Deadline) {
                assert!(plan.contains("candidates_state_deadline"), "{plan}");
            }
        }
    }

    #[tokio::test]
    async fn a_batch_naming_a_person_twice_keeps_the_later_name_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("people.db");
        let store = super::super::SqliteStore::open(&path).unwrap();
        let first = reclaim_workflow::testing::candidate();
        let mut same = first.clone();
        same.id = "c-2".into();
        same.number = "RC0000002".into();
        let mut renamed = first.clone();
        renamed.id = "c-3".into();
        renamed.number = "RC0000003".into();
        if let Some(u) = renamed.user.as_mut() {
            u.display_name = "Renamed Person".into();
        }
        store.insert(&[first, same, renamed]).await.unwrap();
        drop(store);
        let conn = Connection::open(&path).unwrap();
        let people: Vec<String> = conn
            .prepare("SELECT name FROM people")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(people, ["Renamed Person"]);
    }

    #[test]
    fn numbers_parse_from_their_digits() {
        assert_eq!(number_value("RC0000042"), Some(42));
        assert_eq!(number_value("RC"), None);
        assert_eq!(number_value("RC12X"), None);
    }
}
