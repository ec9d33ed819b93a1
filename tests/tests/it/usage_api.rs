//! Usage imports, rule checks, stale alerts and the savings export through the Router, on the
//! real SQLite store.

// Test code: helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use chrono::{Duration, Utc};
use reclaim_api::App;
use reclaim_local::SqliteStore;
use reclaim_tests::*;
use reclaim_workflow::ports::{
    CandidateFilter, CandidateRead, CandidateWrite, Change, Count, Page, PageRequest, StoreError,
    TrailEntry,
};
use reclaim_workflow::savings::Savings;
use reclaim_workflow::{Candidate, HistoryEntry, Timestamp};
use reclaim_workflow::{Justification, State};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn days_ago(d: i64) -> String {
    (Utc::now() - Duration::days(d)).to_rfc3339()
}

async fn put_rule(h: &Harness, rule: Value) -> Resp {
    let id = rule["id"].as_str().unwrap().to_string();
    h.call(
        Method::PUT,
        &format!("/api/v1/rules/{id}"),
        Some(SAM),
        Some(rule),
    )
    .await
}

/// Two rules with criteria: unused Adobe software (excluding nia and VIPs) creates
/// candidates; never-used Zoom seats are report-only.
async fn with_rules() -> Harness {
    let h = Harness::new().await;
    for rule in [
        json!({"id": "adobe-unused", "name": "Adobe unused 90 days", "notify_user": true,
               "days_before_auto_reclamation": 14, "reminder_days": [3, 7],
               "assignment_group": "desktop",
               "software": [{"publisher": "Adobe"}],
               "criteria": {"kind": "last-used-before", "days": 90},
               "exclusions": {"users": ["nia"], "vips": true}}),
        json!({"id": "zoom-never", "name": "Zoom never used (dry run)",
               "assignment_group": "saas", "create_candidates": false,
               "software": [{"publisher": "Zoom"}],
               "criteria": {"kind": "never-used"}}),
    ] {
        let r = put_rule(&h, rule).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    h
}

fn rows() -> Value {
    json!([
        {"user_id": "uma", "user_email": "uma@example.com", "device": "PC-1",
         "publisher": "Adobe", "product": "Acrobat Pro", "last_used_at": days_ago(200),
         "price_per_right": "239.88"},
        {"user_id": "nia", "user_email": "nia@example.com", "device": "PC-2",
         "publisher": "Adobe", "product": "Photoshop", "last_used_at": days_ago(200)},
        {"user_id": "eve", "user_email": "eve@example.com", "user_vip": true, "device": "PC-3",
         "publisher": "Adobe", "product": "Acrobat Pro", "last_used_at": days_ago(200)},
        {"user_id": "uma", "user_email": "uma@example.com", "device": "PC-1",
         "publisher": "Adobe", "product": "Illustrator", "last_used_at": days_ago(5)},
        {"user_id": "bob", "user_email": "bob@example.com", "applies_to": "subscription",
         "publisher": "Zoom", "product": "Zoom Pro", "price_per_right": 14.99},
    ])
}

async fn all_candidates(h: &Harness) -> Vec<Value> {
    let r = h.get("/api/v1/candidates?limit=500", SAM).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["items"].as_array().unwrap().clone()
}

fn decisions(report: &Value) -> Vec<(u64, String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["line"].as_u64().unwrap(),
                f["decision"]["outcome"].as_str().unwrap().to_string(),
                f["decision"]["detail"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn usage_creates_candidates_by_the_rules_and_reports_every_decision() {
    let h = with_rules().await;
    let r = h.post("/api/v1/usage", SAM, json!({"usage": rows()})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let report = r.json();
    assert_eq!(report["rows"], 5);
    assert_eq!(report["created"].as_array().unwrap().len(), 1);
    let d = decisions(&report);
    assert_eq!(d.len(), 4, "{d:?}");
    assert_eq!((d[0].0, d[0].1.as_str()), (1, "create"));
    assert_eq!((d[1].0, d[1].1.as_str()), (2, "excluded"));
    assert!(d[1].2.contains("nia"), "{d:?}");
    assert_eq!((d[2].0, d[2].1.as_str()), (3, "excluded"));
    assert!(d[2].2.contains("VIP"), "{d:?}");
    // Row 4 was used 5 days ago: no rule selects it. Row 5's rule is report-only.
    assert_eq!((d[3].0, d[3].1.as_str()), (5, "would-create"));
    assert_eq!(report["findings"][3]["rule"], "zoom-never");

    let all = all_candidates(&h).await;
    assert_eq!(all.len(), 1, "report-only rules create nothing: {all:?}");
    let n = report["created"][0].as_str().unwrap();
    let c = h.candidate(n).await;
    assert_eq!(c.state, State::Ready);
    assert_eq!(c.justification, Justification::Unused);
    assert_eq!(c.rule.id, "adobe-unused");
    assert_eq!(c.assignment_group.as_deref(), Some("desktop"));
    assert_eq!(c.price_per_right_cents, 23_988);
    assert!(c.inactive_days.is_some_and(|d| (199..=200).contains(&d)));
}

#[tokio::test]
async fn importing_the_same_usage_again_creates_nothing_new() {
    let h = with_rules().await;
    let first = h.post("/api/v1/usage", SAM, json!({"usage": rows()})).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    let number = first.json()["created"][0].as_str().unwrap().to_string();
    let again = h.post("/api/v1/usage", SAM, json!({"usage": rows()})).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());
    let report = again.json();
    assert_eq!(report["created"], json!([]));
    let d = decisions(&report);
    assert_eq!(d[0], (1, "already-open".to_string(), number));
    assert_eq!(all_candidates(&h).await.len(), 1);
}

#[tokio::test]
async fn bad_usage_rows_are_named_by_line_and_field_and_nothing_is_stored() {
    let h = with_rules().await;
    let mut usage = rows().as_array().unwrap().clone();
    usage.push(
        json!({"user_id": "uma", "user_email": "not-an-email", "device": "PC-9",
                      "publisher": "Adobe", "product": "Acrobat", "last_used_at": "last year"}),
    );
    usage.push(
        json!({"user_id": "uma", "device": "PC-9", "product": "Acrobat",
                      "hours": 3}),
    );
    usage.push(
        json!({"user_id": "uma", "device": "PC-9", "publisher": "Adobe",
                      "product": {"name": "Acrobat"}}),
    );
    let r = h
        .post("/api/v1/usage", SAM, json!({"usage": usage.clone()}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.code(), "invalid_rows");
    let rows = r.json()["error"]["rows"].as_array().unwrap().clone();
    let named: Vec<(u64, Vec<String>)> = rows
        .iter()
        .map(|row| {
            (
                row["line"].as_u64().unwrap(),
                row["errors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["field"].as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        named,
        vec![
            (6, vec!["user_email".into(), "last_used_at".into()]),
            (7, vec!["hours".into(), "publisher".into()]),
            (8, vec!["product".into()]),
        ],
        "{}",
        r.text()
    );
    assert!(all_candidates(&h).await.is_empty(), "nothing stored");

    // With skip_invalid the good rows go in and the bad ones are reported.
    let r = h
        .post(
            "/api/v1/usage?skip_invalid=true",
            SAM,
            json!({"usage": usage}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let report = r.json();
    assert_eq!(report["rows"], 8);
    assert_eq!(report["created"].as_array().unwrap().len(), 1);
    let lines: Vec<u64> = report["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![6, 7, 8]);
    assert_eq!(all_candidates(&h).await.len(), 1);
}

const CSV_HEADER: &str = "user_id,user_email,device,publisher,product,last_used_at,price_per_right";

#[tokio::test]
async fn csv_bodies_import_like_json_with_lines_counting_the_header() {
    let h = with_rules().await;
    let old = days_ago(365);
    let body = format!(
        "{CSV_HEADER}\n\
         uma,uma@example.com,PC-1,Adobe,Acrobat Pro,{old},239.88\n\
         uma,uma@example.com,PC-1,Adobe,Photoshop,yesterday,10.00\n\
         ada,ada@example.com,PC-7,Adobe,Acrobat Pro,{old},ten\n"
    );
    let r = h
        .call_raw(
            Method::POST,
            "/api/v1/usage",
            Some(SAM),
            Some("text/csv; charset=utf-8"),
            body.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    let rows = r.json()["error"]["rows"].clone();
    assert_eq!(rows[0]["line"], 3);
    assert_eq!(rows[0]["errors"][0]["field"], "last_used_at");
    assert_eq!(rows[1]["line"], 4);
    assert_eq!(rows[1]["errors"][0]["field"], "price_per_right");
    assert!(all_candidates(&h).await.is_empty());

    let r = h
        .call_raw(
            Method::POST,
            "/api/v1/usage?skip_invalid=true",
            Some(SAM),
            Some("text/csv"),
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["findings"][0]["line"], 2);
    assert_eq!(all_candidates(&h).await.len(), 1);
}

#[tokio::test]
async fn usage_import_is_for_sam_admins_and_refuses_what_it_cannot_read() {
    let h = with_rules().await;
    let r = h.post("/api/v1/usage", UMA, json!({"usage": rows()})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = h
        .call_raw(
            Method::POST,
            "/api/v1/usage",
            Some(SAM),
            Some("text/plain"),
            "user_id\numa\n",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.text());
    let r = h.post("/api/v1/usage", SAM, json!({"usage": []})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.fields(), vec!["usage"]);
    let r = h
        .post("/api/v1/usage", SAM, json!({"usage": rows(), "dry": true}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.fields(), vec!["dry"]);
    let r = h
        .call_raw(
            Method::POST,
            "/api/v1/usage",
            Some(SAM),
            Some("text/csv"),
            format!("{CSV_HEADER}\numa,uma@example.com\n"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(r.code(), "malformed_csv");
    let r = h
        .post(
            "/api/v1/usage?skip_invalid=maybe",
            SAM,
            json!({"usage": rows()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(all_candidates(&h).await.is_empty());
}

#[tokio::test]
async fn rules_are_checked_before_they_are_stored_and_errors_name_the_field() {
    let h = Harness::new().await;
    let base = json!({"id": "r1", "name": "Rule one", "assignment_group": "desktop",
                      "days_before_auto_reclamation": 14,
                      "criteria": {"kind": "last-used-before", "days": 90}});
    let with = |patch: Value| {
        let mut rule = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            rule[k] = v.clone();
        }
        rule
    };
    for (patch, field) in [
        (json!({"assignment_group": "nobody"}), "assignment_group"),
        (json!({"criteria": {"kind": "rarely-used"}}), "criteria"),
        (
            json!({"criteria": {"kind": "last-used-before"}}),
            "criteria",
        ),
        (
            json!({"criteria": {"kind": "last-used-before", "days": -3}}),
            "criteria",
        ),
        (
            json!({"criteria": {"kind": "last-used-before", "days": 0}}),
            "criteria.days",
        ),
        (
            json!({"criteria": {"kind": "usage-below", "hours": 0}}),
            "criteria.hours",
        ),
        (
            json!({"criteria": {"kind": "overlapping", "products": [{"publisher": "Zoom"}]}}),
            "criteria.products",
        ),
        (
            json!({"criteria": {"kind": "consolidation", "from": [{"publisher": ""}]}}),
            "criteria.from[0].publisher",
        ),
        (json!({"reminder_days": [3, 14]}), "reminder_days"),
        (json!({"exclusions": {"vip": true}}), "exclusions"),
        (json!({"software": [{"product": "Acrobat"}]}), "software"),
        (
            json!({"max_revocation_attempts": 0}),
            "max_revocation_attempts",
        ),
        (json!({"colour": "blue"}), "colour"),
        (json!({"verify_within_days": 0}), "verify_within_days"),
        (json!({"verify_within_days": 91}), "verify_within_days"),
        (
            json!({"verify_within_days": "a week"}),
            "verify_within_days",
        ),
        (json!({"recheck_days": [0]}), "recheck_days"),
        (json!({"recheck_days": [7, 5000]}), "recheck_days"),
        (json!({"recheck_days": "7, 30"}), "recheck_days"),
    ] {
        let r = put_rule(&h, with(patch.clone())).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{patch}: {}",
            r.text()
        );
        assert!(
            r.fields().iter().any(|f| f == field),
            "{patch}: expected field {field} in {}",
            r.text()
        );
        let got = h.get("/api/v1/rules/r1", SAM).await;
        assert_eq!(got.status, StatusCode::NOT_FOUND, "{patch}: nothing stored");
    }
    let r = put_rule(&h, base.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let got = h.get("/api/v1/rules/r1", SAM).await.json();
    assert_eq!(
        got["criteria"],
        json!({"kind": "last-used-before", "days": 90})
    );
    let r = h
        .call(Method::PUT, "/api/v1/rules/r1", Some(UMA), Some(base))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_savings_export_is_csv_of_the_same_totals_in_the_callers_scope() {
    let h = Harness::new().await;
    h.create_one(json!({})).await; // uma, Adobe Acrobat Pro, 239.88
    h.create_one(
        json!({"user_id": "nia", "user_name": "Nia", "user_email": "nia@example.com",
                        "user_itil": false, "publisher": "Zoom, Inc.", "product": "Zoom Pro",
                        "price_per_right": "14.99", "justification": "low-usage",
                        "assignment_group": "saas"}),
    )
    .await;
    let json_totals = h.get("/api/v1/savings", SAM).await.json();
    assert_eq!(json_totals["potential_cents"], 25_487);
    assert_eq!(
        json_totals["by_publisher"]["Zoom, Inc."]["potential_cents"],
        1_499
    );
    assert_eq!(
        json_totals["by_justification"]["low-usage"]["candidates"],
        1
    );

    let r = h.get("/api/v1/savings.csv", SAM).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.header("content-type").unwrap().starts_with("text/csv"));
    let csv = r.text();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "dimension,key,basis,potential,actual,verified,unverified,reappeared,candidates"
    );
    assert_eq!(lines[1], "total,all,per year,254.87,0.00,0.00,0.00,0.00,2");
    assert_eq!(lines[2], "total,all,one-time,0.00,0.00,0.00,0.00,0.00,0");
    assert!(
        lines.contains(&"publisher,\"Zoom, Inc.\",per year,14.99,0.00,0.00,0.00,0.00,1"),
        "{csv}"
    );
    assert!(
        lines.contains(&"justification,unused,per year,239.88,0.00,0.00,0.00,0.00,1"),
        "{csv}"
    );

    // uma sees only her own candidate; a filter narrows further.
    let mine = h.get("/api/v1/savings.csv", UMA).await.text();
    assert!(
        mine.contains("total,all,per year,239.88,0.00,0.00,0.00,0.00,1"),
        "{mine}"
    );
    assert!(!mine.contains("Zoom"), "{mine}");
    let zoom = h
        .get("/api/v1/savings.csv?publisher=Zoom,%20Inc.", SAM)
        .await
        .text();
    assert!(
        zoom.contains("total,all,per year,14.99,0.00,0.00,0.00,0.00,1"),
        "{zoom}"
    );
    let r = h.get("/api/v1/savings.csv?colour=blue", SAM).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

/// `rows` users, each with an Adobe seat unused for a year: one candidate each, as the import
/// reads them (line numbers counting a header).
fn unused_seat_rows(rows: usize) -> Vec<reclaim_workflow::intake::Row> {
    let old = days_ago(365);
    (0..rows)
        .map(|i| {
            let fields = [
                ("user_id", format!("u{i:05}")),
                ("user_email", format!("u{i:05}@example.com")),
                ("device", format!("PC-{i}")),
                ("publisher", "Adobe".to_string()),
                ("product", "Acrobat Pro".to_string()),
                ("last_used_at", old.clone()),
            ];
            let row = fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            (i + 2, row)
        })
        .collect()
}

/// The same rows as a CSV body.
fn unused_seats_csv(rows: usize) -> String {
    const COLUMNS: [&str; 6] = [
        "user_id",
        "user_email",
        "device",
        "publisher",
        "product",
        "last_used_at",
    ];
    let mut body = COLUMNS.join(",") + "\n";
    for (_, row) in unused_seat_rows(rows) {
        let cells: Vec<&str> = COLUMNS.iter().map(|c| row[*c].as_str()).collect();
        body.push_str(&cells.join(","));
        body.push('\n');
    }
    body
}

/// Every stored candidate's number, and how many seats (users) they are for.
async fn stored_numbers_and_seats(h: &Harness) -> (std::collections::BTreeSet<String>, usize) {
    let stored = h
        .embedded
        .app
        .list_all(&CandidateFilter::default())
        .await
        .unwrap();
    let seats: std::collections::BTreeSet<&str> = stored
        .iter()
        .map(|c| c.user.as_ref().unwrap().id.as_str())
        .collect();
    let seats = seats.len();
    (stored.into_iter().map(|c| c.number).collect(), seats)
}

#[tokio::test]
async fn an_import_of_several_store_chunks_creates_and_reports_every_candidate_once() {
    // More than two of the chunks the import stores at a time (1,000), the last one partial.
    let h = with_rules().await;
    let post = |body: String| {
        h.call_raw(
            Method::POST,
            "/api/v1/usage",
            Some(SAM),
            Some("text/csv"),
            body,
        )
    };
    let r = post(unused_seats_csv(2_345)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let created: std::collections::BTreeSet<String> = r.json()["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    assert_eq!(created.len(), 2_345, "every candidate reported once");
    let (numbers, seats) = stored_numbers_and_seats(&h).await;
    assert_eq!(numbers, created, "what was reported is what was stored");
    assert_eq!(seats, 2_345, "one candidate per seat");

    // Every chunk's candidates count as open for the next import.
    let again = post(unused_seats_csv(2_345)).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());
    assert_eq!(again.json()["created"], json!([]));
}

/// The SQLite store, except that one insert call (counted from 1) fails.
struct FailingInsert {
    store: SqliteStore,
    fail_at: usize,
    calls: AtomicUsize,
    /// Insert calls started and not yet finished.
    running: AtomicUsize,
}

#[async_trait]
impl CandidateRead for FailingInsert {
    async fn get(&self, id: &str) -> Result<Option<Candidate>, StoreError> {
        self.store.get(id).await
    }
    async fn list(
        &self,
        filter: &CandidateFilter,
        page: &PageRequest,
    ) -> Result<Page<Candidate>, StoreError> {
        self.store.list(filter, page).await
    }
    async fn count(&self, filter: &CandidateFilter, up_to: u64) -> Result<Count, StoreError> {
        self.store.count(filter, up_to).await
    }
    async fn savings(&self, scope: &str) -> Result<Option<Savings>, StoreError> {
        self.store.savings(scope).await
    }
    async fn history(&self, id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        self.store.history(id).await
    }
    async fn history_between(
        &self,
        from: Timestamp,
        to: Timestamp,
        page: &PageRequest,
    ) -> Result<Page<TrailEntry>, StoreError> {
        self.store.history_between(from, to, page).await
    }
}

#[async_trait]
impl CandidateWrite for FailingInsert {
    async fn insert(&self, candidates: &[Candidate]) -> Result<(), StoreError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if call == self.fail_at {
            return Err(StoreError::Unavailable("the disk is full".into()));
        }
        self.running.fetch_add(1, Ordering::SeqCst);
        let stored = self.store.insert(candidates).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        stored
    }
    async fn allocate_numbers(&self, count: u32) -> Result<u64, StoreError> {
        self.store.allocate_numbers(count).await
    }
    async fn commit(&self, change: &Change) -> Result<(), StoreError> {
        self.store.commit(change).await
    }
}

#[tokio::test]
async fn when_the_store_fails_part_way_the_import_says_so_once_every_chunk_handed_over_is_settled()
{
    let h = with_rules().await;
    let failing = Arc::new(FailingInsert {
        store: h.embedded.store.clone(),
        fail_at: 2,
        calls: AtomicUsize::new(0),
        running: AtomicUsize::new(0),
    });
    let mut ports = h.embedded.app.ports.clone();
    ports.candidates = failing.clone();
    let app = App::new(ports, (*h.embedded.app.settings).clone());

    let e = app
        .import_usage(unused_seat_rows(3_500), false)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("the disk is full"), "{e}");
    // The second chunk failed while the third was already handed over; the error comes once
    // that one is settled, and no later chunk was started.
    assert_eq!(
        failing.running.load(Ordering::SeqCst),
        0,
        "nothing still writing"
    );
    assert_eq!(failing.calls.load(Ordering::SeqCst), 3);
    let (numbers, _) = stored_numbers_and_seats(&h).await;
    assert_eq!(
        numbers.len(),
        2_000,
        "each chunk is stored whole or not at all"
    );

    // Imported again on a healthy store, the seats left out are created, and only those.
    let again = h
        .embedded
        .app
        .import_usage(unused_seat_rows(3_500), false)
        .await
        .unwrap();
    assert_eq!(again.created.len(), 1_500);
    let (numbers, seats) = stored_numbers_and_seats(&h).await;
    assert_eq!((numbers.len(), seats), (3_500, 3_500));
}
