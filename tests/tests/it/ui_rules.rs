//! Rules in the web workspace: a sam admin lists, creates and edits reclamation rules through
//! forms, over the one Router and the real SQLite store. A refused form stores nothing and
//! names each problem by its field; a save never silently overwrites someone else's change.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::{Method, StatusCode};
use reclaim_tests::*;
use serde_json::{json, Value};

/// A complete form for a new rule; tests change single fields.
fn new_rule_form() -> Vec<(&'static str, String)> {
    [
        ("id", "adobe-unused"),
        ("name", "Adobe unused for 90 days"),
        ("applies_to", "installed-software"),
        ("create_candidates", "on"),
        ("software", "Adobe / Acrobat Pro\r\nCorel"),
        ("criteria", "last-used-before"),
        ("criteria_days", "90"),
        ("criteria_hours", ""),
        ("criteria_products", ""),
        ("justification", ""),
        ("exclude_users", "ceo, cfo"),
        ("exclude_groups", ""),
        ("exclude_vips", "on"),
        ("exclude_provisioned_within_days", "30"),
        ("notify_user", "on"),
        ("days_before_auto_reclamation", "21"),
        ("reminder_days", "5, 14"),
        ("assignment_group", "desktop"),
        ("plugin", "csd-uninstall"),
        ("max_revocation_attempts", "4"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect()
}

fn with(
    form: &[(&'static str, String)],
    changes: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let mut f: Vec<_> = form
        .iter()
        .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
        .cloned()
        .collect();
    f.extend(changes.iter().map(|(k, v)| (*k, v.to_string())));
    f
}

async fn post_form(
    h: &Harness,
    s: &UiSession,
    path: &str,
    form: &[(&'static str, String)],
) -> Resp {
    let mut pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    pairs.push(("csrf", &s.csrf));
    h.ui(Method::POST, path, Some(s), Some(&pairs)).await
}

fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = page.find(&marker).map(|i| i + marker.len()).unwrap();
    page[at..].split('"').next().unwrap().to_string()
}

async fn rule_json(h: &Harness, id: &str) -> Resp {
    h.get(&format!("/api/v1/rules/{id}"), SAM).await
}

#[tokio::test]
async fn a_sam_admin_creates_a_rule_from_the_form_and_the_api_reads_it_back() {
    let h = Harness::new().await;
    let sam = h.ui_sign_in("sam").await;
    let page = h.ui(Method::GET, "/ui/rules/new", Some(&sam), None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("id=\"f-software\""));

    let r = post_form(&h, &sam, "/ui/rules", &new_rule_form()).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(r.header("location"), Some("/ui/rules?saved=adobe-unused"));

    let r = rule_json(&h, "adobe-unused").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json(),
        json!({
            "id": "adobe-unused", "name": "Adobe unused for 90 days",
            "applies_to": "installed-software", "justification": null, "notify_user": true,
            "days_before_auto_reclamation": 21, "reminder_days": [5, 14],
            "assignment_group": "desktop", "create_candidates": true,
            "exclusions": {"users": ["ceo", "cfo"], "groups": [], "vips": true,
                           "provisioned_within_days": 30},
            "plugin": "csd-uninstall", "max_revocation_attempts": 4,
            "software": [{"publisher": "Adobe", "product": "Acrobat Pro"},
                         {"publisher": "Corel", "product": null}],
            "criteria": {"kind": "last-used-before", "days": 90},
            "verify_within_days": 7, "recheck_days": [7, 30]
        })
    );

    let list = h
        .ui(
            Method::GET,
            "/ui/rules?saved=adobe-unused",
            Some(&sam),
            None,
        )
        .await;
    let text = list.text();
    assert_eq!(list.status, StatusCode::OK);
    assert!(text.contains("id=\"done\""), "{text}");
    assert!(text.contains("data-rule=\"adobe-unused\""));
    assert!(text.contains("Last used more than 90 days ago"));
    assert!(text.contains("Adobe Acrobat Pro, all Corel"));
    // (Autoescaping writes '/' as an entity inside attributes.)
    assert!(
        text.contains("rules&#x2f;adobe-unused&#x2f;edit\""),
        "{text}"
    );
    // The rules from the seed are listed too, and report-only shows as such.
    assert!(text.contains("data-rule=\"notify\"") && text.contains("data-rule=\"silent\""));

    // Unticked boxes are "off": a report-only rule that does not notify.
    let form: Vec<_> = with(&new_rule_form(), &[("id", "report")])
        .into_iter()
        .filter(|(k, _)| *k != "create_candidates" && *k != "notify_user")
        .collect();
    let r = post_form(&h, &sam, "/ui/rules", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let rule = rule_json(&h, "report").await.json();
    assert_eq!(rule["create_candidates"], false);
    assert_eq!(rule["notify_user"], false);
    let list = h
        .ui(Method::GET, "/ui/rules", Some(&sam), None)
        .await
        .text();
    assert!(list.contains("Report only"));
}

#[tokio::test]
async fn a_refused_form_comes_back_as_typed_with_each_problem_by_its_field_and_stores_nothing() {
    let h = Harness::new().await;
    let sam = h.ui_sign_in("sam").await;
    let before = h.get("/api/v1/rules", SAM).await.json();
    let form = with(
        &new_rule_form(),
        &[
            ("assignment_group", "no-such-group"),
            ("reminder_days", "5, 30"),
            ("max_revocation_attempts", "many"),
            ("software", "Adobe / Acrobat Pro\n / Photoshop"),
            ("name", "Adobe <b>unused</b>"),
        ],
    );
    // Every problem on the first submit, each at its box: the number the form cannot read
    // and what the rule check finds in the rest.
    let r = post_form(&h, &sam, "/ui/rules", &form).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let text = r.text();
    for expected in [
        "id=\"max_revocation_attempts-error\"",
        "&#x27;many&#x27; is not a whole number",
        "id=\"assignment_group-error\"",
        "unknown assignment group",
        "id=\"reminder_days-error\"",
        "a reminder on day 30",
        "the removal day is day 21",
        "id=\"software-error\"",
        "line 2: publisher is required",
        "href=\"#f-software\"",
        "aria-invalid=\"true\"",
        // What was typed comes back, escaped.
        "value=\"Adobe &lt;b&gt;unused&lt;&#x2f;b&gt;\"",
        "no-such-group (unknown)",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    assert!(
        !text.contains("days_before_auto_reclamation ="),
        "no internal names in messages"
    );
    // One message per box: the attempts box says only what the form found.
    assert_eq!(
        text.matches("id=\"max_revocation_attempts-error\"").count(),
        1
    );
    assert!(!text.contains("<b>unused</b>"));
    assert_eq!(
        rule_json(&h, "adobe-unused").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(h.get("/api/v1/rules", SAM).await.json(), before);
}

#[tokio::test]
async fn the_price_period_goes_through_the_form_both_ways_and_a_bad_one_stores_nothing() {
    let h = Harness::new().await;
    let sam = h.ui_sign_in("sam").await;
    let page = h
        .ui(Method::GET, "/ui/rules/new", Some(&sam), None)
        .await
        .text();
    assert!(
        page.contains("<option value=\"\">As the deployment's default (yearly)</option>"),
        "{page}"
    );

    let form = with(&new_rule_form(), &[("price_period", "weekly")]);
    let r = post_form(&h, &sam, "/ui/rules", &form).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let text = r.text();
    assert!(text.contains("id=\"price_period-error\""), "{text}");
    assert!(text.contains("weekly (unknown)"), "{text}");
    assert_eq!(
        rule_json(&h, "adobe-unused").await.status,
        StatusCode::NOT_FOUND
    );

    let form = with(&new_rule_form(), &[("price_period", "monthly")]);
    let r = post_form(&h, &sam, "/ui/rules", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(
        rule_json(&h, "adobe-unused").await.json()["price_period"],
        "monthly"
    );
    let edit = h
        .ui(Method::GET, "/ui/rules/adobe-unused/edit", Some(&sam), None)
        .await
        .text();
    assert!(
        edit.contains("<option value=\"monthly\" selected>"),
        "{edit}"
    );

    // Back to the deployment's default: the rule no longer names a period.
    let form = with(
        &new_rule_form(),
        &[("loaded", &hidden(&edit, "loaded")), ("price_period", "")],
    );
    let r = post_form(&h, &sam, "/ui/rules/adobe-unused/edit", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let rule = rule_json(&h, "adobe-unused").await.json();
    assert!(rule.get("price_period").is_none(), "{rule}");
}

#[tokio::test]
async fn an_id_in_use_is_refused_on_create_and_the_existing_rule_is_unchanged() {
    let h = Harness::new().await;
    let sam = h.ui_sign_in("sam").await;
    let before = rule_json(&h, "notify").await.json();
    let form = with(&new_rule_form(), &[("id", "notify")]);
    let r = post_form(&h, &sam, "/ui/rules", &form).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("exists already"), "{}", r.text());
    assert_eq!(rule_json(&h, "notify").await.json(), before);
}

#[tokio::test]
async fn editing_a_rule_keeps_its_id_and_open_candidates_keep_their_snapshot() {
    let h = Harness::new().await;
    let n = h.create_one(json!({})).await; // rule `notify`: 14 days
    let sam = h.ui_sign_in("sam").await;
    let page = h
        .ui(Method::GET, "/ui/rules/notify/edit", Some(&sam), None)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let text = page.text();
    assert!(text.contains("value=\"14\""), "{text}");
    assert!(text.contains("value=\"3, 7\""));
    let loaded = hidden(&text, "loaded");

    // The form as the browser sends it: every field as shown, one changed; an `id` field in the
    // body is ignored (the id input is read-only and the path names the rule).
    let form: Vec<(&'static str, String)> = vec![
        ("loaded", loaded),
        ("id", "renamed".into()),
        ("name", "Ask the user, three weeks".into()),
        ("applies_to", String::new()),
        ("create_candidates", "on".into()),
        ("software", String::new()),
        ("criteria", String::new()),
        ("justification", String::new()),
        ("notify_user", "on".into()),
        ("days_before_auto_reclamation", "21".into()),
        ("reminder_days", "3, 7".into()),
        ("assignment_group", "desktop".into()),
        ("max_revocation_attempts", "5".into()),
    ];
    let r = post_form(&h, &sam, "/ui/rules/notify/edit", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let rule = rule_json(&h, "notify").await.json();
    assert_eq!(rule["days_before_auto_reclamation"], 21);
    assert_eq!(rule["name"], "Ask the user, three weeks");
    assert_eq!(rule_json(&h, "renamed").await.status, StatusCode::NOT_FOUND);
    let c = h.candidate(&n).await;
    assert_eq!(
        c.rule.days_before_auto_reclamation, 14,
        "the snapshot stays"
    );

    let r = h
        .ui(Method::GET, "/ui/rules/nothing/edit", Some(&sam), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_save_over_someone_elses_newer_change_is_refused_once_and_then_goes_through() {
    let h = Harness::new().await;
    let sam = h.ui_sign_in("sam").await;
    let page = h
        .ui(Method::GET, "/ui/rules/notify/edit", Some(&sam), None)
        .await;
    let loaded = hidden(&page.text(), "loaded");

    // Someone else changes the rule through the API meanwhile.
    let mut theirs: Value = rule_json(&h, "notify").await.json();
    theirs["reminder_days"] = json!([2]);
    let r = h
        .call(
            Method::PUT,
            "/api/v1/rules/notify",
            Some(SAM),
            Some(theirs.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    let mine: Vec<(&'static str, String)> = vec![
        ("loaded", loaded),
        ("name", "Mine".into()),
        ("create_candidates", "on".into()),
        ("notify_user", "on".into()),
        ("days_before_auto_reclamation", "10".into()),
        ("reminder_days", "4".into()),
        ("max_revocation_attempts", "5".into()),
    ];
    let r = post_form(&h, &sam, "/ui/rules/notify/edit", &mine).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let text = r.text();
    assert!(text.contains("id=\"conflict\""), "{text}");
    assert!(text.contains("value=\"Mine\""), "what was typed is kept");
    assert_eq!(rule_json(&h, "notify").await.json(), theirs);

    // Sent again from that page (which carries the newer digest), it replaces theirs.
    let again = with(&mine, &[("loaded", &hidden(&text, "loaded"))]);
    let r = post_form(&h, &sam, "/ui/rules/notify/edit", &again).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(rule_json(&h, "notify").await.json()["name"], "Mine");
}

#[tokio::test]
async fn rule_forms_without_the_form_token_or_from_a_non_admin_change_nothing() {
    let h = Harness::new().await;
    let before = h.get("/api/v1/rules", SAM).await.json();
    let sam = h.ui_sign_in("sam").await;
    let form = new_rule_form();
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = h
        .ui(Method::POST, "/ui/rules", Some(&sam), Some(&pairs))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let ada = h.ui_sign_in("ada").await;
    let r = post_form(&h, &ada, "/ui/rules", &new_rule_form()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(h.get("/api/v1/rules", SAM).await.json(), before);
    // Only sam admins see the Rules link.
    let home = h.ui(Method::GET, "/ui", Some(&ada), None).await.text();
    assert!(!home.contains("href=\"/ui/rules\""), "{home}");
    let home = h.ui(Method::GET, "/ui", Some(&sam), None).await.text();
    assert!(home.contains("href=\"/ui/rules\""));
}

#[tokio::test]
async fn a_rule_is_deleted_from_its_page_only_when_confirmed_and_candidates_keep_their_copy() {
    let h = Harness::new().await;
    let n = h.create_one(json!({})).await; // rule `notify`
    let sam = h.ui_sign_in("sam").await;
    let page = h
        .ui(Method::GET, "/ui/rules/notify/edit", Some(&sam), None)
        .await;
    assert!(page.text().contains("id=\"delete-rule\""));

    let r = post_form(&h, &sam, "/ui/rules/notify/delete", &[]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("id=\"confirm-error\""), "{}", r.text());
    assert_eq!(rule_json(&h, "notify").await.status, StatusCode::OK);

    let r = post_form(
        &h,
        &sam,
        "/ui/rules/notify/delete",
        &[("confirm", "yes".into())],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(r.header("location"), Some("/ui/rules?deleted=notify"));
    assert_eq!(rule_json(&h, "notify").await.status, StatusCode::NOT_FOUND);
    let list = h
        .ui(Method::GET, "/ui/rules?deleted=notify", Some(&sam), None)
        .await
        .text();
    assert!(list.contains("Rule notify deleted"), "{list}");
    assert!(!list.contains("data-rule=\"notify\""));

    // The candidate goes on with its copy of the rule: Reclaim still asks the user.
    let c = h.candidate(&n).await;
    assert_eq!(c.rule.id, "notify");
    let r = h
        .post(&format!("/api/v1/candidates/{n}/reclaim"), SAM, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["state"], "awaiting-user");

    let r = post_form(
        &h,
        &sam,
        "/ui/rules/notify/delete",
        &[("confirm", "yes".into())],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_api_deletes_a_rule_with_204_and_answers_404_for_one_that_is_not_there() {
    let h = Harness::new().await;
    let r = h
        .call(Method::DELETE, "/api/v1/rules/silent", Some(SAM), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(rule_json(&h, "silent").await.status, StatusCode::NOT_FOUND);
    let r = h
        .call(Method::DELETE, "/api/v1/rules/silent", Some(SAM), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"]["code"], "not_found", "{}", r.text());
    let r = h
        .call(Method::DELETE, "/api/v1/rules/notify", Some(ADA), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(rule_json(&h, "notify").await.status, StatusCode::OK);
}
