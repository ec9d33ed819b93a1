//! The auditors' export of every candidate's trail over a period: JSON pages, CSV files, the
//! workspace download, and the refusals.

use axum::http::{Method, StatusCode};
use reclaim_tests::*;
use serde_json::json;

async fn moved(h: &Harness, n: usize) -> Vec<String> {
    let mut numbers = Vec::new();
    for _ in 0..n {
        let number = h.create_one(json!({})).await;
        let r = h
            .post(
                &format!("/api/v1/candidates/{number}/reclaim"),
                SAM,
                json!({}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        numbers.push(number);
    }
    numbers
}

fn period() -> String {
    let today = chrono::Utc::now().format("%Y-%m-%d");
    format!("from=2020-01-01&to={today}")
}

#[tokio::test]
async fn a_period_comes_oldest_first_with_each_candidates_number_a_page_at_a_time() {
    let h = Harness::new().await;
    let numbers = moved(&h, 3).await;
    let r = h.get(&format!("/api/v1/history?{}", period()), SAM).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let all = r.json()["items"].as_array().unwrap().clone();
    let got: Vec<&str> = all.iter().map(|e| e["number"].as_str().unwrap()).collect();
    assert_eq!(got, numbers.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(all
        .iter()
        .all(|e| e["event"] == "reclaim" && e["to"] == "awaiting-user"));
    let times: Vec<&str> = all.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");

    // Pages of one give the same entries.
    let mut paged = Vec::new();
    let mut path = format!("/api/v1/history?{}&limit=1", period());
    loop {
        let r = h.get(&path, SAM).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let body = r.json();
        paged.extend(body["items"].as_array().unwrap().clone());
        match body["next"].as_str() {
            Some(next) => path = format!("/api/v1/history?{}&limit=1&cursor={next}", period()),
            None => break,
        }
    }
    assert_eq!(paged, all);

    // The CSV: the header, then one line each, in words.
    let r = h
        .get(&format!("/api/v1/history.csv?{}", period()), SAM)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(r.header("link").is_none(), "one file holds it all");
    let csv = r.text();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(lines[1].starts_with(&format!("{},", numbers[0])), "{csv}");
    assert!(lines[1].contains(",sam,"), "{csv}");
}

#[tokio::test]
async fn only_a_sam_admin_exports_and_a_bad_period_names_its_field() {
    let h = Harness::new().await;
    moved(&h, 1).await;
    for token in [ADA, UMA, NIA] {
        let r = h.get(&format!("/api/v1/history?{}", period()), token).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    for (query, field) in [
        ("to=2026-01-01", "from"),
        ("from=2026-01-01", "to"),
        ("from=yesterday&to=2026-01-01", "from"),
        ("from=2026-02-01&to=2026-01-01", "to"),
        ("from=2026-01-01&to=2026-13-01", "to"),
    ] {
        let r = h.get(&format!("/api/v1/history?{query}"), SAM).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.text());
        assert_eq!(r.fields(), [field], "{query}");
    }
    // A period's last day counts whole; a period with nothing in it is empty, not an error.
    let r = h
        .get("/api/v1/history?from=2020-01-01&to=2020-01-01", SAM)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json()["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn the_workspace_downloads_the_same_file_for_a_sam_admin_only() {
    let h = Harness::new().await;
    let numbers = moved(&h, 2).await;
    let sam = h.ui_sign_in("sam").await;
    let page = h
        .ui(Method::GET, "/ui/savings", Some(&sam), None)
        .await
        .page();
    assert!(page.contains("Audit trails for a period"), "{page}");
    let r = h
        .ui(
            Method::GET,
            &format!("/ui/history.csv?{}", period()),
            Some(&sam),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let api = h
        .get(&format!("/api/v1/history.csv?{}", period()), SAM)
        .await;
    assert_eq!(r.text(), api.text());
    assert!(r.text().contains(&numbers[1]));
    let uma = h.ui_sign_in("uma").await;
    let page = h
        .ui(Method::GET, "/ui/savings", Some(&uma), None)
        .await
        .page();
    assert!(!page.contains("Audit trails for a period"));
    let r = h
        .ui(
            Method::GET,
            &format!("/ui/history.csv?{}", period()),
            Some(&uma),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .ui(
            Method::GET,
            "/ui/history.csv?from=soon&to=2026-01-01",
            Some(&sam),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.page().contains("is not a date"), "{}", r.text());
}
