//! The single-table layout: every key and attribute name in one place, so the store, the
//! stream handler, the table definition and `infra/template.yaml` cannot disagree.
//!
//! | item | `pk` | `sk` | GSI1 (`g1pk` / `g1sk`) | GSI2 (`g2pk` / `g2sk`) | GSI3 (`g3pk` / `g3sk`) |
//! |---|---|---|---|---|---|
//! | candidate | `C#<id>` | `C` | `S#<state>#<shard>` / `<due or ~>#<id>` | `G#<group>` / `C#<id>` | with a due time: `D#<shard>` / `<due>#<id>` |
//! | candidate (keys only) | | | GSI4 `by-user`: `U#<user>` / `C#<id>` | GSI5 `by-software`: `P#<publisher>` / `<product>␟<id>` (lower case) | GSI6 `by-alert`, open or reappeared: `L#<shard>` / `<alert time>#<id>` |
//! | a candidate's place in one order (one per [`SortKey`]) | `C#<id>` | `O#<order>` | GSI7 `by-order` (keys only): `O#<order>#<state>` / `<value>␟<number>` | | |
//! | person in the people catalog | `PEOPLE` | `U#<user id>` | | |
//! | usage connector run | `RUN#<connector>` | `<number, 20 digits>` | | |
//! | the connectors loaded (published by `connectors`) | `CONN` | `LIST` | | |
//! | software in the software catalog | `SOFTWARE` | `<publisher>␟<product>` (lower case) | | |
//! | work note | `C#<id>` | `CW#<version that added it, 20 digits>#<n, 5 digits>` | | |
//! | history entry | `C#<id>` | `H#<version, 20 digits>` | | | `T#<day>#<shard>` / `<time>#<id>#<version, 20 digits>` |
//! | task | `C#<candidate id>` | `T#<task id>` | open with assignee: `A#<user>` / `T#<task id>` | open with group: `G#<group>` / `T#<task id>` |
//! | number alias | `N#<number>` | `N` | | |
//! | user / group | `DIR` | `U#<id>` / `G#<id>` | | |
//! | rule | `RULE` | `R#<id>` | | |
//! | number counter | `META` | `NUMBERS` | | |
//! | mail idempotency | `M#<effect key>` | `M` | | |
//! | workspace session | `SESSION` | `S#<sha-256 of the cookie's secret>` | | |
//! | sign-in in progress | `SIGNIN#<sha-256 of state>` | `P` | | |
//! | API token | `DIR` | `K#<sha-256 of the token>` | | |
//! | what a candidate adds to the savings totals | `C#<id>` | `SAV` | | |
//! | savings totals of a scope (`*`, `g:<group>`) | `SAV#<scope>` | `<shard>` | | |
//!
//! A candidate, its work notes, its history and its tasks share one partition, so one query
//! reads them together and one transaction writes a transition. The candidate item's sort key
//! `C` is a prefix of its notes' (`CW#…`) and of nothing else, so `begins_with(sk, "C")` reads
//! the candidate with its notes, oldest first, and never its history or tasks. GSI1 spreads each state over
//! [`SHARDS`] partitions so a bulk Reclaim or the scheduler's scan never heats one key.
//!
//! GSI4–6 project keys only: a candidate's user and software never change, so a transition
//! writes nothing to GSI4 and GSI5 (DynamoDB writes an index only when its projected
//! attributes change), and to GSI6 only when the alert time moves. A listing through them
//! reads the keys, then the candidates in one `BatchGetItem` per 100. The catalogs are what a
//! search by text reads first (a few small items per person or software, never a candidate).
//!
//! GSI7 holds every order a list can be sorted by: one small item per candidate and order
//! (the table can index an item only once per index, and CloudFormation adds one index per
//! deployment, so the orders share one index rather than take one each), partitioned by stage.
//! They are written in the same write as the candidate item, from the same document, so they
//! cannot disagree.

use chrono::SecondsFormat;
use reclaim_workflow::ports::{SortKey, SortValue};
use reclaim_workflow::{State, Timestamp};

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const G1PK: &str = "g1pk";
pub const G1SK: &str = "g1sk";
pub const G2PK: &str = "g2pk";
pub const G2SK: &str = "g2sk";
pub const G3PK: &str = "g3pk";
pub const G3SK: &str = "g3sk";
pub const G4PK: &str = "g4pk";
pub const G4SK: &str = "g4sk";
pub const G5PK: &str = "g5pk";
pub const G5SK: &str = "g5sk";
pub const G6PK: &str = "g6pk";
pub const G6SK: &str = "g6sk";
pub const G7PK: &str = "g7pk";
pub const G7SK: &str = "g7sk";
/// A catalog item's text as a search compares it (ASCII lower case).
pub const TEXT: &str = "q";
/// A person's name and email in the people catalog.
pub const NAME: &str = "name";
pub const EMAIL: &str = "email";
/// Item type: `c` candidate, `w` work note, `h` history, `t` task, `n` alias, `u`/`g`
/// directory, `r` rule, `m` mail record.
pub const TYPE: &str = "t";
/// The record itself, as the JSON every adapter stores.
pub const DOC: &str = "doc";
/// The candidate's version: every transition is conditional on it.
pub const VERSION: &str = "ver";
/// The effects of the candidate's latest transition (JSON), carried to the `effects` function
/// by the stream record of the same write: the table's stream is the outbox.
pub const EFFECTS: &str = "fx";
pub const NUMBER: &str = "num";
/// Set (true) on a candidate item whose work notes are note items of their own, so notes never
/// bring the candidate item near DynamoDB's 400 KB limit. An item without it (written before
/// notes moved, or inserted with notes) keeps its notes in `doc`; its next transition moves
/// them into note items.
pub const NOTES_APART: &str = "wa";
/// Open tasks only; closing a task removes its index keys.
pub const OPEN: &str = "open";
/// Candidate id of a number alias.
pub const TARGET: &str = "id";
/// Epoch seconds after which an item may be deleted by DynamoDB's TTL (mail records,
/// sessions, sign-ins in progress).
/// Deletion lags, so readers check it too.
pub const EXPIRES: &str = "exp";
/// The number counter's last allocated value.
pub const LAST: &str = "last";

pub const GSI1: &str = "by-state-due";
pub const GSI2: &str = "by-group";
/// Things by time: history entries by day (each day over [`SHARDS`] partitions, so a bulk
/// action's burst of entries heats no key), for an auditor's export of a period; and the
/// candidates that have a due time, by it (`D#<shard>`), for the scheduler.
pub const GSI3: &str = "by-time";
/// Candidates by their user: a search by person reads that person's candidates only.
pub const GSI4: &str = "by-user";
/// Candidates by software: a publisher's, or one product's.
pub const GSI5: &str = "by-software";
/// Candidates that are (or will be) an alert, by the time they become one, over [`SHARDS`]
/// partitions.
pub const GSI6: &str = "by-alert";
/// Candidates in each order a list can be sorted by, a partition per order and stage.
pub const GSI7: &str = "by-order";
/// The indexes that project keys only (a listing through them reads the candidates after).
pub const KEYS_ONLY: [&str; 4] = [GSI4, GSI5, GSI6, GSI7];

pub const PEOPLE_PK: &str = "PEOPLE";
pub const SOFTWARE_PK: &str = "SOFTWARE";
/// Between the parts of a key made of several texts: sorts before every printable character,
/// so a product's candidates are one contiguous range under their publisher.
pub const SEP: char = '\u{1f}';

pub fn user_pk(user: &str) -> String {
    format!("U#{user}")
}

/// The people catalog's sort key of a person (the same text as their GSI4 partition).
pub fn person_sk(user: &str) -> String {
    user_pk(user)
}

pub fn publisher_pk(publisher: &str) -> String {
    format!("P#{}", publisher.to_ascii_lowercase())
}

/// The range of one product's candidates under its publisher in GSI5.
pub fn product_prefix(product: &str) -> String {
    format!("{}{SEP}", product.to_ascii_lowercase())
}

pub fn software_sk(product: &str, id: &str) -> String {
    format!("{}{id}", product_prefix(product))
}

/// The software catalog's sort key: publisher and product, lower case, as GSI5 keys them.
pub fn catalog_software_sk(publisher: &str, product: &str) -> String {
    format!(
        "{}{SEP}{}",
        publisher.to_ascii_lowercase(),
        product.to_ascii_lowercase()
    )
}

/// The connectors the `connectors` function loaded, as it last published them.
pub const CONNECTORS_PK: &str = "CONN";
pub const CONNECTORS_SK: &str = "LIST";

pub fn run_pk(connector: &str) -> String {
    format!("RUN#{connector}")
}

pub fn run_sk(seq: u64) -> String {
    format!("{seq:020}")
}

pub fn alert_pk(shard: u32) -> String {
    format!("L#{shard}")
}

/// Partitions per state in GSI1. Changing it re-indexes nothing already stored: a table keeps
/// the value it was created with.
pub const SHARDS: u32 = 4;

pub const CANDIDATE_SK: &str = "C";

/// Sort key prefix of a candidate's order items (never a prefix of `C`, `H#` or `T#`).
pub const ORDER_PREFIX: &str = "O#";

/// The sort key of a candidate's item for one order.
pub fn order_sk(key: SortKey) -> String {
    format!("{ORDER_PREFIX}{}", key.as_str())
}

/// GSI7 partition of a stage's candidates in an order: a stage's sorted list reads one
/// partition, and a list of every stage merges one per stage (a fixed few). Not sharded: a
/// shard count would multiply the partitions an unfiltered list merges. One partition takes
/// about 1,000 writes a second; an import faster than that into one stage is slowed by the
/// index, not refused (the SDK retries).
pub fn order_pk(key: SortKey, state: State) -> String {
    format!("{ORDER_PREFIX}{}#{}", key.as_str(), state.as_str())
}

/// Longest value text kept in an order key (DynamoDB allows 1,024 bytes in a sort key);
/// values that share this much are ordered by number.
const ORDER_TEXT_MAX: usize = 512;

/// GSI7 sort key: the candidate's place in the order as text that sorts as
/// [`reclaim_workflow::ports::Sort::compare`] does (value, then number). Numbers are fixed
/// width with the sign bit flipped, so text order is numeric order; the separator sorts below
/// every character a value keeps (control characters become spaces), so a value that is a
/// prefix of another sorts first, as it does in the comparison.
pub fn order_key(value: &SortValue, number: &str) -> String {
    match value {
        SortValue::Int(i) => format!("{:016x}{SEP}{number}", (*i as u64) ^ (1 << 63)),
        SortValue::Text(t) => {
            let mut text: String = t.chars().map(|c| if c < ' ' { ' ' } else { c }).collect();
            if text.len() > ORDER_TEXT_MAX {
                let mut end = ORDER_TEXT_MAX;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
            }
            format!("{text}{SEP}{number}")
        }
    }
}

pub fn candidate_pk(id: &str) -> String {
    format!("C#{id}")
}

/// Sort key prefix of a candidate's work notes; the candidate's own `C` is a prefix of it.
pub const NOTE_PREFIX: &str = "CW#";

/// The `n`-th note added by the transition that produced `version`, so a transition writes its
/// notes without knowing how many are stored, and notes sort in the order they were added.
/// Notes moved out of an older item's document are keyed under version 0, in their order.
pub fn note_sk(version: u64, n: usize) -> String {
    format!("{NOTE_PREFIX}{version:020}#{n:05}")
}

/// GSI3 partition of a candidate that has a due time (the scheduler's), by its shard; its
/// sort key is [`state_sk`] (due time, then id). Candidates without one are not in GSI3.
pub fn due_pk(shard: u32) -> String {
    format!("D#{shard}")
}

/// GSI3 partition of a history entry: its UTC day and its candidate's shard.
pub fn time_pk(day: chrono::NaiveDate, shard: u32) -> String {
    format!("T#{}#{shard}", day.format("%Y-%m-%d"))
}

/// GSI3 sort key: the time (fixed width, so text order is time order), then candidate and
/// version, so entries at the same instant still have one order.
pub fn time_sk(at: Timestamp, candidate_id: &str, version: u64) -> String {
    format!("{}#{candidate_id}#{version:020}", time_text(at))
}

/// A time as fixed-width UTC text (nanoseconds), which sorts as time does.
pub fn time_text(at: Timestamp) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub fn history_sk(version: u64) -> String {
    format!("H#{version:020}")
}

pub fn task_sk(task_id: &str) -> String {
    format!("T#{task_id}")
}

pub fn alias_pk(number: &str) -> String {
    format!("N#{number}")
}

pub const ALIAS_SK: &str = "N";
pub const DIR_PK: &str = "DIR";
pub const RULE_PK: &str = "RULE";
pub const META_PK: &str = "META";
pub const COUNTER_SK: &str = "NUMBERS";
pub const MAIL_SK: &str = "M";

pub fn mail_pk(key: &str) -> String {
    format!("M#{key}")
}

/// Every session in one partition, so signing everyone out is one query; a session is read
/// once per page view, far below a partition's limits.
pub const SESSION_PK: &str = "SESSION";
pub const SIGN_IN_SK: &str = "P";

pub fn session_sk(id: &str) -> String {
    format!("S#{id}")
}

pub fn sign_in_pk(id: &str) -> String {
    format!("SIGNIN#{id}")
}

pub fn token_sk(digest: &str) -> String {
    format!("K#{digest}")
}

/// FNV-1a: stable across processes and releases (unlike `std`'s hasher), which a stored
/// shard number needs.
pub fn shard(id: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % SHARDS
}

pub fn state_pk(state: State, shard: u32) -> String {
    format!("S#{}#{shard}", state.as_str())
}

/// Sorts chronologically as text: fixed width, nanoseconds, `Z`. A candidate without a due
/// time sorts after every time (`~`).
pub fn due_key(due: Option<Timestamp>) -> String {
    match due {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Nanos, true),
        None => "~".to_string(),
    }
}

pub fn state_sk(due: Option<Timestamp>, id: &str) -> String {
    format!("{}#{id}", due_key(due))
}

/// The exclusive upper bound of GSI1 sort keys due at or before `t` (`$` sorts right after
/// the `#` that ends the time).
pub fn due_bound(t: Timestamp) -> String {
    format!("{}$", due_key(Some(t)))
}

pub fn group_pk(group: &str) -> String {
    format!("G#{group}")
}

pub fn assignee_pk(user: &str) -> String {
    format!("A#{user}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    #[test]
    fn due_keys_sort_like_times_and_undated_last() {
        let t = Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap();
        let times = [
            t,
            t + Duration::nanoseconds(1),
            t + Duration::milliseconds(1),
            t + Duration::hours(30),
        ];
        let keys: Vec<String> = times.iter().map(|x| state_sk(Some(*x), "zz")).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert!(state_sk(None, "a") > keys[3]);
        // The bound includes everything due at t, whatever the id, and nothing later.
        assert!(state_sk(Some(t), "~~~~") < due_bound(t));
        assert!(state_sk(Some(t + Duration::nanoseconds(1)), "a") > due_bound(t));
    }

    #[test]
    fn notes_sort_after_their_candidate_in_the_order_they_were_added() {
        let keys = [
            CANDIDATE_SK.to_string(),
            note_sk(0, 0),
            note_sk(0, 1),
            note_sk(0, 10),
            note_sk(3, 0),
            note_sk(12, 0),
        ];
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        for k in &keys {
            assert!(k.starts_with(CANDIDATE_SK));
        }
        // Neither history nor tasks share the candidate's prefix.
        assert!(!history_sk(1).starts_with(CANDIDATE_SK));
        assert!(!task_sk("t-1").starts_with(CANDIDATE_SK));
    }

    #[test]
    fn order_keys_sort_as_the_comparison_does() {
        let ints = [i64::MIN, -5, -1, 0, 1, 12, 1 << 40, i64::MAX];
        let keys: Vec<String> = ints
            .iter()
            .map(|i| order_key(&SortValue::Int(*i), "RC0000001"))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        // Value first, then number; a value that is a prefix of another sorts first.
        let texts = [
            ("ab", "RC0000009"),
            ("ab", "RC0000010"),
            ("ab c", "RC0000001"),
        ];
        let keys: Vec<String> = texts
            .iter()
            .map(|(t, n)| order_key(&SortValue::Text(t.to_string()), n))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert!(
            order_key(&SortValue::Text("\u{10FFFF}".into()), "RC0000001")
                > order_key(&SortValue::Text("zzz".into()), "RC0000002"),
            "no user sorts after every name"
        );
        let long = "é".repeat(1000);
        assert!(order_key(&SortValue::Text(long), "RC0000001").len() < 1024);
        assert!(!order_sk(SortKey::Number).starts_with(CANDIDATE_SK));
    }

    #[test]
    fn shards_are_stable_and_in_range() {
        assert_eq!(shard("c-1"), shard("c-1"));
        let used: std::collections::BTreeSet<u32> =
            (0..100).map(|i| shard(&format!("cand-{i}"))).collect();
        assert_eq!(used.len() as u32, SHARDS, "ids spread over every shard");
    }
}
