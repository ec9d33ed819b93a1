//! Prices with their period through the one Router on the real SQLite store: an import row
//! names it (or its rule, or the deployment, does), a bad one is refused by line and field
//! with nothing stored, and every place that shows savings puts monthly and yearly prices on
//! one yearly basis, with one-time prices apart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::{Method, StatusCode};
use chrono::{Duration, Utc};
use reclaim_tests::*;
use reclaim_workflow::PricePeriod;
use serde_json::{json, Value};

fn row(device: &str, extra: Value) -> Value {
    let mut row = json!({
        "publisher": "Adobe", "product": "Acrobat Pro", "device": device,
        "justification": "unused", "price_per_right": "100.00", "rule": "notify",
        "user_id": "uma", "user_name": "Uma Itil", "user_email": "uma@example.com",
    });
    for (k, v) in extra.as_object().unwrap() {
        row[k] = v.clone();
    }
    row
}

async fn candidates(h: &Harness) -> Vec<Value> {
    let r = h.get("/api/v1/candidates?limit=500", SAM).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_candidate_import_row_names_its_price_period_and_a_bad_one_stores_nothing() {
    let h = Harness::new().await;
    let rows = vec![
        row("PC-1", json!({"price_period": "monthly"})),
        row("PC-2", json!({})),
        row("PC-3", json!({"price_period": "weekly"})),
    ];
    let r = h
        .post("/api/v1/candidates", SAM, json!({ "candidates": rows }))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    let bad = &r.json()["error"]["rows"];
    assert_eq!(bad.as_array().unwrap().len(), 1, "{bad}");
    assert_eq!(bad[0]["line"], 3);
    assert_eq!(bad[0]["errors"][0]["field"], "price_period");
    assert_eq!(
        bad[0]["errors"][0]["message"],
        "'weekly' is not one of monthly, yearly, one-time"
    );
    assert!(candidates(&h).await.is_empty(), "nothing stored");

    let created = h.create(rows[..2].to_vec()).await;
    let monthly = h.candidate(&created[0]).await;
    assert_eq!(monthly.price_period, PricePeriod::Monthly);
    // Neither the row nor the rule says: the deployment's default.
    let plain = h.candidate(&created[1]).await;
    assert_eq!(plain.price_period, PricePeriod::Yearly);
    let api = h
        .get(&format!("/api/v1/candidates/{}", created[0]), SAM)
        .await
        .json();
    assert_eq!(api["candidate"]["price_period"], "monthly");
}

#[tokio::test]
async fn a_usage_csv_names_its_price_period_else_the_rule_does_with_lines_counting_the_header() {
    let h = Harness::new().await;
    let r = h
        .call(
            Method::PUT,
            "/api/v1/rules/adobe-unused",
            Some(SAM),
            Some(json!({"id": "adobe-unused", "name": "Adobe unused 90 days",
                        "software": [{"publisher": "Adobe"}],
                        "criteria": {"kind": "last-used-before", "days": 90},
                        "price_period": "monthly"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["price_period"], "monthly");
    let old = (Utc::now() - Duration::days(365)).to_rfc3339();
    let header =
        "user_id,user_email,device,publisher,product,last_used_at,price_per_right,price_period";
    let good = format!(
        "uma,uma@example.com,PC-1,Adobe,Acrobat Pro,{old},579.99,one-time\n\
         uma,uma@example.com,PC-1,Adobe,Photoshop,{old},20.00,\n"
    );
    let body =
        format!("{header}\n{good}ada,ada@example.com,PC-7,Adobe,Acrobat Pro,{old},1,yearly?\n");
    let r = h
        .call_raw(
            Method::POST,
            "/api/v1/usage",
            Some(SAM),
            Some("text/csv"),
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    let bad = &r.json()["error"]["rows"];
    assert_eq!(bad[0]["line"], 4, "{bad}");
    assert_eq!(bad[0]["errors"][0]["field"], "price_period");
    assert!(candidates(&h).await.is_empty(), "nothing stored");

    let r = h
        .call_raw(
            Method::POST,
            "/api/v1/usage",
            Some(SAM),
            Some("text/csv"),
            format!("{header}\n{good}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let created = r.json()["created"].clone();
    let perpetual = h.candidate(created[0].as_str().unwrap()).await;
    assert_eq!(perpetual.price_period, PricePeriod::OneTime);
    let from_rule = h.candidate(created[1].as_str().unwrap()).await;
    assert_eq!(from_rule.price_period, PricePeriod::Monthly);

    // A JSON body takes the same field and the same refusal.
    let r = h
        .post(
            "/api/v1/usage",
            SAM,
            json!({"usage": [{"user_id": "ada", "user_email": "ada@example.com",
                              "device": "PC-9", "publisher": "Adobe", "product": "Acrobat Pro",
                              "price_period": "quarterly"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.json()["error"]["rows"][0]["line"], 1);
    assert_eq!(
        r.json()["error"]["rows"][0]["errors"][0]["field"],
        "price_period"
    );
}

#[tokio::test]
async fn savings_put_a_monthly_and_a_yearly_candidate_on_one_yearly_basis_everywhere() {
    let h = Harness::new().await;
    let monthly = h
        .create_one(json!({"price_per_right": "100.00", "price_period": "monthly"}))
        .await;
    h.create_one(json!({"price_per_right": "239.88", "price_period": "yearly"}))
        .await;
    h.create_one(json!({"price_per_right": "500.00", "price_period": "one-time"}))
        .await;

    let s = h.get("/api/v1/savings", SAM).await.json();
    assert_eq!(s["potential_cents"], 12 * 10_000 + 23_988, "{s}");
    assert_eq!(s["candidates"], 2);
    assert_eq!(s["one_time"]["potential_cents"], 50_000);
    assert_eq!(s["by_publisher"]["Adobe"]["potential_cents"], 143_988);
    assert_eq!(s["by_publisher"]["Adobe"]["one_time"]["candidates"], 1);

    let csv = h.get("/api/v1/savings.csv", SAM).await.text();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "dimension,key,basis,potential,actual,verified,unverified,reappeared,candidates",
            "total,all,per year,1439.88,0.00,0.00,0.00,0.00,2",
            "total,all,one-time,500.00,0.00,0.00,0.00,0.00,1",
        ],
        "{csv}"
    );

    let detail = h
        .get(&format!("/api/v1/candidates/{monthly}"), SAM)
        .await
        .json();
    assert_eq!(detail["potential_savings_cents"], 10_000);
    assert_eq!(
        detail["savings"],
        json!({"cents": 120_000, "basis": "yearly"})
    );

    let sam = h.ui_sign_in("sam").await;
    let page = h
        .ui(Method::GET, "/ui/savings", Some(&sam), None)
        .await
        .page();
    assert!(page.contains(">Yearly savings<"), "{page}");
    assert!(page.contains("id=\"potential\">USD 1,439.88<"), "{page}");
    assert!(page.contains(">One-time savings<"), "{page}");
    assert!(
        page.contains("id=\"one-time-potential\">USD 500.00<"),
        "{page}"
    );

    let id = h.candidate(&monthly).await.id;
    let page = h
        .ui(
            Method::GET,
            &format!("/ui/candidates/{id}"),
            Some(&sam),
            None,
        )
        .await
        .page();
    assert!(
        page.contains("id=\"price\">USD 100.00 per seat per month<"),
        "{page}"
    );
    assert!(
        page.contains("id=\"savings\">USD 1,200.00 per year<"),
        "{page}"
    );

    let list = h
        .ui(Method::GET, "/ui/candidates", Some(&sam), None)
        .await
        .page();
    for cell in [
        "USD 1,200.00 per year",
        "USD 239.88 per year",
        "USD 500.00 one-time",
    ] {
        assert!(list.contains(cell), "lacks {cell}: {list}");
    }
}
