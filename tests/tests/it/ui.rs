//! The web workspace through the one Router over the real SQLite store: signing in, the
//! session cookie, form tokens, the candidate list with filters, paging and bulk Reclaim, the
//! candidate page (only the allowed actions, Show Workflow, work notes), the approver queue,
//! tasks, savings and alerts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::{Method, StatusCode};
use reclaim_tests::*;
use reclaim_workflow::State;
use serde_json::json;

async fn reclaim(h: &Harness, n: &str) {
    let r = h
        .post(&format!("/api/v1/candidates/{n}/reclaim"), SAM, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    h.drain().await;
}

/// A candidate of uma's that waits for the desktop group's approval.
async fn awaiting_approval(h: &Harness) -> String {
    let n = h.create_one(json!({})).await;
    reclaim(h, &n).await;
    let r = h
        .post(
            &format!("/api/v1/candidates/{n}/answer"),
            UMA,
            json!({"keep": true, "comment": "I edit PDFs weekly"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    h.drain().await;
    n
}

#[tokio::test]
async fn pages_without_a_session_send_the_browser_to_sign_in() {
    let h = Harness::new().await;
    let r = h
        .ui(Method::GET, "/ui/candidates?state=ready", None, None)
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.header("location"),
        Some("/ui/sign-in?next=%2Fui%2Fcandidates%3Fstate%3Dready")
    );
    // A forged or altered cookie is no session.
    let s = h.ui_sign_in("sam").await;
    let mut forged = s.clone();
    forged.cookie = format!("{}x", s.cookie);
    let r = h.ui(Method::GET, "/ui", Some(&forged), None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // A bearer token is for the API, not a browser session.
    let r = h.call(Method::GET, "/ui", Some(SAM), None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn signing_in_by_picking_a_user_or_pasting_a_token_sets_a_strict_http_only_cookie() {
    let h = Harness::new().await;
    let page = h.ui(Method::GET, "/ui/sign-in", None, None).await;
    assert_eq!(page.status, StatusCode::OK);
    let text = page.page();
    assert!(text.contains("Sam (sam): sam admin"), "{text}");
    assert!(text.contains("approver: desktop approvers"), "{text}");
    let pre = set_cookie_value(&page, "reclaim_sign_in").unwrap();
    let csrf = csrf_of(&page.text());
    let pre = UiSession {
        cookie: pre,
        csrf: csrf.clone(),
    };

    // Paste a token.
    let r = h
        .ui(
            Method::POST,
            "/ui/sign-in",
            Some(&pre),
            Some(&[("csrf", &csrf), ("token", UMA), ("next", "/ui/tasks")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(r.header("location"), Some("/ui/tasks"));
    let cookies = set_cookies(&r);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("reclaim_session="))
        .unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(session.contains(attr), "{session}");
    }
    assert!(!session.contains("Secure"), "plain HTTP: {session}");
    let s = UiSession {
        cookie: set_cookie_value(&r, "reclaim_session").unwrap(),
        csrf: String::new(),
    };
    let home = h.ui(Method::GET, "/ui", Some(&s), None).await;
    assert!(home.page().contains("Hello, Uma"), "{}", home.text());

    // A wrong token, no choice, a missing sign-in cookie or an open redirect are refused.
    let r = h
        .ui(
            Method::POST,
            "/ui/sign-in",
            Some(&pre),
            Some(&[("csrf", &csrf), ("token", "not-a-real-token-at-all")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.text().contains("That token is not valid"));
    assert!(set_cookie_value(&r, "reclaim_session").is_none());
    let r = h
        .ui(
            Method::POST,
            "/ui/sign-in",
            None,
            Some(&[("csrf", &csrf), ("user", "sam")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(set_cookie_value(&r, "reclaim_session").is_none());
    let r = h
        .ui(
            Method::POST,
            "/ui/sign-in",
            Some(&pre),
            Some(&[("csrf", &csrf), ("user", "nobody-here")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = h
        .ui(
            Method::POST,
            "/ui/sign-in",
            Some(&pre),
            Some(&[
                ("csrf", &csrf),
                ("user", "sam"),
                ("next", "https://evil.example/"),
            ]),
        )
        .await;
    assert_eq!(r.header("location"), Some("/ui"));

    // Signing out clears the cookie.
    let s = h.ui_sign_in("sam").await;
    let r = h
        .ui(
            Method::POST,
            "/ui/sign-out",
            Some(&s),
            Some(&[("csrf", &s.csrf)]),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let cleared = set_cookies(&r).join("\n");
    assert!(cleared.contains("reclaim_session=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
}

#[tokio::test]
async fn the_cookie_is_secure_over_tls_and_forwarded_proto_counts_only_when_trusted() {
    use tower::ServiceExt;
    let h = Harness::new().await;
    for (trust, expect_secure) in [(false, false), (true, true)] {
        let state = reclaim_api::ApiState::new(
            h.embedded.app.clone(),
            std::sync::Arc::new(reclaim_api::StoredTokens::new(
                h.embedded.app.ports.tokens.clone(),
            )),
        )
        .demo(std::sync::Arc::new(h.embedded.mailer.clone()))
        .trusting_forwarded_proto(trust);
        let router = reclaim_api::router(state);
        let get = axum::http::Request::get("/ui/sign-in")
            .header("x-forwarded-proto", "https")
            .body(axum::body::Body::empty())
            .unwrap();
        let res = router.clone().oneshot(get).await.unwrap();
        let pre = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            pre.contains("Secure"),
            expect_secure,
            "trust {trust}: {pre}"
        );
        let body = http_body_util::BodyExt::collect(res.into_body())
            .await
            .unwrap()
            .to_bytes();
        let csrf = csrf_of(&String::from_utf8_lossy(&body));
        let nonce = pre.split(';').next().unwrap().to_string();
        let post = axum::http::Request::post("/ui/sign-in")
            .header("x-forwarded-proto", "https")
            .header("origin", reclaim_tests::PUBLIC_URL)
            .header("cookie", nonce)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(axum::body::Body::from(form_encode(&[
                ("csrf", &csrf),
                ("token", SAM),
            ])))
            .unwrap();
        let res = router.oneshot(post).await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let session = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with("reclaim_session="))
            .unwrap();
        assert_eq!(
            session.contains("; Secure"),
            expect_secure,
            "trust {trust}: {session}"
        );
        assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"));
    }
}

#[tokio::test]
async fn forms_without_this_sessions_token_are_refused_and_change_nothing() {
    let h = Harness::new().await;
    let n = h.create_one(json!({})).await;
    let id = h.candidate(&n).await.id;
    let before = h.snapshot(&n).await;
    let sam = h.ui_sign_in("sam").await;
    let other = h.ui_sign_in("sam").await;
    assert_ne!(sam.csrf, other.csrf, "each sign-in has its own form token");
    for csrf in ["", "garbage", other.csrf.as_str()] {
        let r = h
            .ui(
                Method::POST,
                &format!("/ui/candidates/{id}/action"),
                Some(&sam),
                Some(&[("csrf", csrf), ("action", "reclaim")]),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "csrf {csrf:?}");
        assert!(
            r.text().contains("did not come from Reclaim"),
            "{}",
            r.text()
        );
        let r = h
            .ui(
                Method::POST,
                "/ui/candidates/reclaim",
                Some(&sam),
                Some(&[("csrf", csrf), ("id", &id)]),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    // JSON instead of a form is not a form.
    let r = h
        .call_raw(
            Method::POST,
            &format!("/ui/candidates/{id}/action"),
            None,
            Some("application/json"),
            "{}",
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "no session: sign in first");
    assert_eq!(h.snapshot(&n).await, before);
}

#[tokio::test]
async fn the_list_filters_pages_and_reclaims_in_bulk() {
    let h = Harness::new().await;
    let mut numbers = Vec::new();
    for product in ["Acrobat Pro", "Photoshop", "Illustrator"] {
        numbers.push(h.create_one(json!({ "product": product })).await);
    }
    let zoom = h
        .create_one(
            json!({"publisher": "Zoom", "product": "Pro", "justification": "low-usage",
                           "assignment_group": "saas"}),
        )
        .await;
    let sam = h.ui_sign_in("sam").await;
    let r = h.ui(Method::GET, "/ui/candidates", Some(&sam), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let page = r.page();
    for n in numbers.iter().chain([&zoom]) {
        assert!(page.contains(&format!("data-number=\"{n}\"")), "{n}");
        assert!(
            page.contains(&format!("id=\"select-{n}\"")),
            "{n} selectable"
        );
    }
    // Filters narrow; an unknown state is a clear 400 page.
    let r = h
        .ui(
            Method::GET,
            "/ui/candidates?publisher=zoom&justification=low-usage&state=&group=saas",
            Some(&sam),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.page().contains(&zoom) && !r.page().contains(&numbers[0]));
    let r = h
        .ui(Method::GET, "/ui/candidates?state=lost", Some(&sam), None)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.page().contains("'lost' is not a state"), "{}", r.text());

    // Pages of two, following "Next page" (a button carrying the ticked boxes).
    let r = h
        .ui(Method::GET, "/ui/candidates?limit=2", Some(&sam), None)
        .await;
    let page = r.page();
    assert_eq!(page.matches("<tr data-number=").count(), 2);
    let next = attr_of(&page, "next-page", "value");
    let r = h
        .ui(
            Method::POST,
            "/ui/candidates/select",
            Some(&sam),
            Some(&[("csrf", &sam.csrf), ("go", &next)]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{next}: {}", r.text());
    assert_eq!(r.page().matches("<tr data-number=").count(), 2);
    // An approver sees only their group's, with no selection boxes.
    let bob = h.ui_sign_in("bob").await;
    let r = h.ui(Method::GET, "/ui/candidates", Some(&bob), None).await;
    let page = r.page();
    assert!(page.contains(&zoom) && !page.contains(&numbers[0]));
    assert!(!page.contains("name=\"id\""), "no selection boxes");
    let uma = h.ui_sign_in("uma").await;

    // Bulk Reclaim of two ticked candidates: first a preview, which changes nothing.
    let ids: Vec<String> = futures_ids(&h, &numbers[..2]).await;
    let r = h
        .ui(
            Method::POST,
            "/ui/candidates/reclaim",
            Some(&sam),
            Some(&[
                ("csrf", &sam.csrf),
                ("scope", "selected"),
                ("id", &ids[0]),
                ("id", &ids[1]),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let preview = r.page();
    assert!(preview.contains("Reclaim 2 candidate(s)?"), "{preview}");
    assert!(preview.contains("<dd id=\"n-ask\">2</dd>"), "{preview}");
    for n in &numbers[..2] {
        assert_eq!(
            h.candidate(n).await.state,
            State::Ready,
            "a preview acts on nothing"
        );
    }
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let at = preview.find(&marker).unwrap() + marker.len();
        preview[at..].split('"').next().unwrap().to_string()
    };
    let (picks, expires, sig) = (field("picks"), field("expires"), field("sig"));
    let confirm = |picks: String, sig: String| {
        let (csrf, expires) = (sam.csrf.clone(), expires.clone());
        vec![
            ("csrf", csrf),
            ("confirm", "yes".to_string()),
            ("picks", picks),
            ("expires", expires),
            ("sig", sig),
        ]
    };
    let send = |fields: Vec<(&'static str, String)>| {
        let h = &h;
        let sam = &sam;
        async move {
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            h.ui(
                Method::POST,
                "/ui/candidates/reclaim",
                Some(sam),
                Some(&pairs),
            )
            .await
        }
    };
    // A confirmation that names another candidate than the preview showed is refused.
    let tampered = picks.replace(&numbers[1], &numbers[2]);
    let r = send(confirm(tampered, sig.clone())).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(h.candidate(&numbers[2]).await.state, State::Ready);
    // The confirmed preview runs on exactly its candidates.
    let r = send(confirm(picks.clone(), sig.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let page = r.page();
    assert!(
        page.contains("<strong>2</strong> candidate(s) reclaimed"),
        "{page}"
    );
    assert!(page.contains("id=\"asked\">"), "{page}");
    for n in &numbers[..2] {
        assert_eq!(h.candidate(n).await.state, State::AwaitingUser);
    }
    assert_eq!(h.candidate(&numbers[2]).await.state, State::Ready);
    // The list names groups and says by when the asked users must answer.
    let list = h
        .ui(Method::GET, "/ui/candidates", Some(&sam), None)
        .await
        .page();
    let deadline = h.candidate(&numbers[0]).await.deadline_at.unwrap();
    assert!(
        list.contains(&format!(
            "<td data-label=\"Answer by\" class=\"nowrap\">{}</td>",
            deadline.format("%Y-%m-%d")
        )),
        "{list}"
    );
    assert!(
        list.contains("<td data-label=\"Group\">desktop approvers</td>"),
        "{list}"
    );
    // Confirming the same preview again acts on nothing: each candidate moved on since.
    let r = send(confirm(picks, sig)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r
        .page()
        .contains("<strong>0</strong> candidate(s) reclaimed, <strong>2</strong> refused"));
    // A user may not.
    let r = h
        .ui(
            Method::POST,
            "/ui/candidates/reclaim",
            Some(&uma),
            Some(&[("csrf", &uma.csrf), ("id", &ids[0])]),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Reclaim all Ready matching a filter: the preview names only the filter's.
    let r = h
        .ui(
            Method::POST,
            "/ui/candidates/reclaim",
            Some(&sam),
            Some(&[
                ("csrf", &sam.csrf),
                ("scope", "filter"),
                ("publisher", "Zoom"),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let preview = r.page();
    assert!(
        preview.contains(&zoom) && !preview.contains(&numbers[2]),
        "{preview}"
    );
    assert_eq!(h.candidate(&zoom).await.state, State::Ready);
    // No box ticked: said in words.
    let r = h
        .ui(
            Method::POST,
            "/ui/candidates/reclaim",
            Some(&sam),
            Some(&[("csrf", &sam.csrf), ("scope", "selected")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.page().contains("Tick the candidates to reclaim first"),
        "{}",
        r.page()
    );
}

/// An attribute of the element with this id (a link's `href`, a button's `value`).
fn attr_of(page: &str, id: &str, attr: &str) -> String {
    let at = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {page}"));
    let start = page[..at].rfind('<').expect("inside a tag");
    let end = at + page[at..].find('>').expect("tag ends");
    let tag = &page[start..end];
    let marker = format!("{attr}=\"");
    let from = tag
        .find(&marker)
        .unwrap_or_else(|| panic!("#{id} has no {attr}: {tag}"))
        + marker.len();
    tag[from..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The numbers of the rows of a list page, in order.
fn row_numbers(page: &str) -> Vec<String> {
    page.split("<tr data-number=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn the_list_counts_sorts_searches_and_keeps_the_selection_across_pages() {
    let h = Harness::new().await;
    let mut numbers = Vec::new();
    for (product, price, user) in [
        ("Acrobat Pro", "90.00", "uma"),
        ("Photoshop", "300.00", "bob"),
        ("Illustrator", "120.00", "uma"),
        ("Acrobat Standard", "45.00", "bob"),
        ("InDesign", "200.00", "uma"),
    ] {
        let (name, email) = match user {
            "uma" => ("Uma Itil", "uma@example.com"),
            _ => ("Bob Boss", "bob@example.com"),
        };
        numbers.push(
            h.create_one(
                json!({ "product": product, "price_per_right": price, "user_id": user,
                                 "user_name": name, "user_email": email }),
            )
            .await,
        );
    }
    let sam = h.ui_sign_in("sam").await;
    let get = |path: String| {
        let (h, sam) = (&h, &sam);
        async move {
            let r = h.ui(Method::GET, &path, Some(sam), None).await;
            assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
            r.page()
        }
    };

    // The total, and where this page sits in it.
    let page = get("/ui/candidates?limit=2".into()).await;
    assert!(page.contains("5 candidates match; showing 1–2."), "{page}");
    assert!(page.contains("Page 1 of 3"), "{page}");
    // A made-up page number in the address is shown, not a crash.
    let next = attr_of(&page, "next-page", "value");
    let page = get(format!(
        "/ui/candidates?{}",
        next.replace("p=2", "p=18446744073709551615")
    ))
    .await;
    assert!(page.contains("Page 18446744073709551615"), "{page}");

    // Sorted by savings, largest first, then turned round by the same heading.
    let page = get("/ui/candidates?sort=-savings".into()).await;
    let by_savings = row_numbers(&page);
    assert_eq!(
        by_savings,
        [
            &numbers[1],
            &numbers[4],
            &numbers[2],
            &numbers[0],
            &numbers[3]
        ]
        .map(String::clone)
        .to_vec()
    );
    assert!(page.contains("aria-sort=\"descending\""), "{page}");
    let up = attr_of(&page, "sort-savings", "value");
    let page = get(format!("/ui/candidates?{up}")).await;
    let mut reversed = by_savings.clone();
    reversed.reverse();
    assert_eq!(row_numbers(&page), reversed);

    // Part of a word, in any case; and part of a user's name.
    let page = get("/ui/candidates?software=ACRO".into()).await;
    assert_eq!(
        row_numbers(&page),
        [&numbers[0], &numbers[3]].map(String::clone).to_vec()
    );
    assert!(page.contains("2 candidates match"), "{page}");
    let page = get("/ui/candidates?person=itI".into()).await;
    assert_eq!(
        row_numbers(&page),
        [&numbers[0], &numbers[2], &numbers[4]]
            .map(String::clone)
            .to_vec()
    );

    // Tick one on the first page, go on, tick one there, come back: both stay selected.
    let page = get("/ui/candidates?limit=2&sort=number".into()).await;
    let first_id = h.candidate(&numbers[0]).await.id;
    let third_id = h.candidate(&numbers[2]).await.id;
    let next = attr_of(&page, "next-page", "value");
    let r = h
        .ui(
            Method::POST,
            "/ui/candidates/select",
            Some(&sam),
            Some(&[("csrf", &sam.csrf), ("id", &first_id), ("go", &next)]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let page = r.page();
    assert_eq!(
        row_numbers(&page),
        [&numbers[2], &numbers[3]].map(String::clone).to_vec()
    );
    assert!(page.contains("1 selected"), "{page}");
    assert!(
        page.contains(&format!("name=\"id\" value=\"{first_id}\"")),
        "kept: {page}"
    );
    let prev = attr_of(&page, "prev-page", "value");
    let r = h
        .ui(
            Method::POST,
            "/ui/candidates/select",
            Some(&sam),
            Some(&[
                ("csrf", &sam.csrf),
                ("id", &first_id),
                ("id", &third_id),
                ("go", &prev),
            ]),
        )
        .await;
    let page = r.page();
    assert_eq!(
        row_numbers(&page),
        [&numbers[0], &numbers[1]].map(String::clone).to_vec()
    );
    assert!(page.contains("2 selected"), "{page}");
    let ticked = format!(
        "id=\"select-{}\" aria-label=\"Select {}\" checked",
        numbers[0], numbers[0]
    );
    assert!(
        page.contains(&ticked),
        "the first page's box is ticked again: {page}"
    );
    // Reclaim selected takes both, from both pages, to the preview.
    let r = h
        .ui(
            Method::POST,
            "/ui/candidates/reclaim",
            Some(&sam),
            Some(&[
                ("csrf", &sam.csrf),
                ("scope", "selected"),
                ("id", &third_id),
                ("id", &first_id),
            ]),
        )
        .await;
    assert!(r.page().contains("Reclaim 2 candidate(s)?"), "{}", r.text());

    // Bad input: an unknown order is a clear error, and a cursor from another order too.
    let r = h
        .ui(Method::GET, "/ui/candidates?sort=colour", Some(&sam), None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(
        r.page().contains("sort: must be one of number, software"),
        "{}",
        r.text()
    );
    let page = get("/ui/candidates?limit=2&sort=savings".into()).await;
    let next = attr_of(&page, "next-page", "value");
    let cursor = next
        .split("cursor=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let r = h
        .ui(
            Method::GET,
            &format!("/ui/candidates?limit=2&sort=user&cursor={cursor}"),
            Some(&sam),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
}

async fn futures_ids(h: &Harness, numbers: &[String]) -> Vec<String> {
    let mut ids = Vec::new();
    for n in numbers {
        ids.push(h.candidate(n).await.id);
    }
    ids
}

#[tokio::test]
async fn the_candidate_page_shows_only_the_actions_this_person_may_take() {
    let h = Harness::new().await;
    let n = h.create_one(json!({})).await;
    let id = h.candidate(&n).await.id;
    let path = format!("/ui/candidates/{id}");
    let sam = h.ui_sign_in("sam").await;
    let uma = h.ui_sign_in("uma").await;
    let ada = h.ui_sign_in("ada").await;
    let bob = h.ui_sign_in("bob").await;

    let page = h.ui(Method::GET, &path, Some(&sam), None).await.page();
    assert!(page.contains("id=\"do-reclaim\""), "{page}");
    assert!(page.contains("id=\"do-close-skipped\""));
    assert!(!page.contains("id=\"do-approve\""));
    assert!(page.contains("239.88"), "potential savings");
    let page = h.ui(Method::GET, &path, Some(&uma), None).await.page();
    assert!(!page.contains("id=\"do-reclaim\""));
    assert!(
        !page.contains("id=\"add-note\""),
        "the holder adds no work notes"
    );
    let r = h.ui(Method::GET, &path, Some(&bob), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Reclaim from the page: redirected back with a message; the user now sees Yes/No.
    let r = h
        .ui(
            Method::POST,
            &format!("{path}/action"),
            Some(&sam),
            Some(&[
                ("csrf", &sam.csrf),
                ("action", "reclaim"),
                ("expected_version", "0"),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(
        r.header("location"),
        Some(format!("{path}?done=reclaim").as_str())
    );
    h.drain().await;
    let page = h
        .ui(
            Method::GET,
            &format!("{path}?done=reclaim"),
            Some(&sam),
            None,
        )
        .await
        .page();
    assert!(page.contains("Reclamation started."));
    assert!(!page.contains("id=\"do-reclaim\""));
    let page = h.ui(Method::GET, &path, Some(&uma), None).await.page();
    assert!(page.contains("id=\"do-answer-keep\"") && page.contains("id=\"do-answer-remove\""));
    // A stale version is refused and changes nothing.
    let before = h.snapshot(&n).await;
    let r = h
        .ui(
            Method::POST,
            &format!("{path}/action"),
            Some(&uma),
            Some(&[
                ("csrf", &uma.csrf),
                ("action", "answer-keep"),
                ("expected_version", "0"),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(h.snapshot(&n).await, before);
    // An unknown action is a clear error.
    let r = h
        .ui(
            Method::POST,
            &format!("{path}/action"),
            Some(&uma),
            Some(&[("csrf", &uma.csrf), ("action", "explode")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(h.snapshot(&n).await, before);
    // The user answers Yes from the page; the answer is recorded as from the web.
    let r = h
        .ui(
            Method::POST,
            &format!("{path}/action"),
            Some(&uma),
            Some(&[
                ("csrf", &uma.csrf),
                ("action", "answer-keep"),
                ("comment", "weekly PDF forms"),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(h.candidate(&n).await.state, State::AwaitingApproval);
    // Now the desktop approver sees Approve/Reject; the holder no longer has buttons.
    let page = h.ui(Method::GET, &path, Some(&ada), None).await.page();
    assert!(page.contains("id=\"do-approve\"") && page.contains("id=\"do-reject\""));
    let page = h.ui(Method::GET, &path, Some(&uma), None).await.page();
    assert!(!page.contains("name=\"action\""));

    // Show Workflow: the current stage is marked, the path is listed and drawn.
    assert!(page.contains("Show Workflow"));
    assert!(
        page.contains("class=\"wf-node current visited\" data-state=\"awaiting-approval\" aria-current=\"step\""),
        "{page}"
    );
    assert_eq!(page.matches("aria-current=\"step\"").count(), 1);
    assert!(page.contains("Path taken: Ready → Awaiting User → Awaiting Approval."));
    assert!(page.contains("class=\"wf-edge taken\" marker-end=\"url(#wf-arrow-taken)\" data-from=\"ready\" data-to=\"awaiting-user\""));
    assert!(page.contains("class=\"wf-node\" data-state=\"closed-complete\""));
    assert!(!page.contains("<script"));
}

#[tokio::test]
async fn work_notes_are_added_from_the_page_and_shown_escaped() {
    let h = Harness::new().await;
    let n = h.create_one(json!({})).await;
    let id = h.candidate(&n).await.id;
    let ada = h.ui_sign_in("ada").await;
    let r = h
        .ui(
            Method::POST,
            &format!("/ui/candidates/{id}/notes"),
            Some(&ada),
            Some(&[
                ("csrf", &ada.csrf),
                ("text", "<script>alert(1)</script> called"),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let page = h
        .ui(
            Method::GET,
            &format!("/ui/candidates/{id}"),
            Some(&ada),
            None,
        )
        .await
        .text();
    assert!(page.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt; called"));
    assert!(!page.contains("<script>alert"));
    // Empty notes and notes by the holder are refused.
    let before = h.snapshot(&n).await;
    let r = h
        .ui(
            Method::POST,
            &format!("/ui/candidates/{id}/notes"),
            Some(&ada),
            Some(&[("csrf", &ada.csrf), ("text", "   ")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let uma = h.ui_sign_in("uma").await;
    let r = h
        .ui(
            Method::POST,
            &format!("/ui/candidates/{id}/notes"),
            Some(&uma),
            Some(&[("csrf", &uma.csrf), ("text", "mine")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(h.snapshot(&n).await, before);
}

#[tokio::test]
async fn the_approver_queue_lists_my_groups_requests_and_rejects_from_there() {
    let h = Harness::new().await;
    let n = awaiting_approval(&h).await;
    let ada = h.ui_sign_in("ada").await;
    let bob = h.ui_sign_in("bob").await;
    let page = h
        .ui(Method::GET, "/ui/approvals", Some(&ada), None)
        .await
        .page();
    assert!(page.contains(&format!("data-number=\"{n}\"")), "{page}");
    assert!(page.contains("I edit PDFs weekly"), "the user's reason");
    let page = h
        .ui(Method::GET, "/ui/approvals", Some(&bob), None)
        .await
        .page();
    assert!(!page.contains(&n) && page.contains("Nothing is waiting for you"));
    let id = h.candidate(&n).await.id;
    let version = h.candidate(&n).await.version.to_string();
    // Bob (another group) cannot decide it even by posting the form.
    let r = h
        .ui(
            Method::POST,
            &format!("/ui/candidates/{id}/action"),
            Some(&bob),
            Some(&[("csrf", &bob.csrf), ("action", "reject")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .ui(
            Method::POST,
            &format!("/ui/candidates/{id}/action"),
            Some(&ada),
            Some(&[
                ("csrf", &ada.csrf),
                ("action", "reject"),
                ("comment", "use the free reader"),
                ("expected_version", &version),
                ("return", "approvals"),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(
        r.header("location"),
        Some(format!("/ui/approvals?done=reject&number={n}").as_str())
    );
    let c = h.candidate(&n).await;
    assert_eq!(c.state, State::AwaitingRevocation);
    let last = h.history(&n).await.pop().unwrap();
    assert_eq!(last.event, "reject");
    assert_eq!(last.reason.as_deref(), Some("use the free reader"));
    let page = h
        .ui(
            Method::GET,
            &format!("/ui/approvals?done=reject&number={n}"),
            Some(&ada),
            None,
        )
        .await
        .page();
    assert!(page.contains("Rejected: it will be removed."));
}

#[tokio::test]
async fn tasks_savings_csv_and_alerts() {
    let h = Harness::new().await;
    let n = h.create_one(json!({})).await;
    reclaim(&h, &n).await;
    let uma = h.ui_sign_in("uma").await;
    let page = h
        .ui(Method::GET, "/ui/tasks", Some(&uma), None)
        .await
        .page();
    assert!(page.contains("data-kind=\"user-answer\""), "{page}");
    assert!(page.contains(&n));
    let nia = h.ui_sign_in("nia").await;
    let page = h
        .ui(Method::GET, "/ui/tasks", Some(&nia), None)
        .await
        .page();
    assert!(page.contains("No open tasks"));

    let sam = h.ui_sign_in("sam").await;
    let page = h
        .ui(Method::GET, "/ui/savings", Some(&sam), None)
        .await
        .page();
    assert!(page.contains("id=\"potential\">USD 239.88<"), "{page}");
    assert!(page.contains("Nothing reclaimed yet"));
    assert!(page.contains("href=\"/ui/savings.csv\""));
    let csv = h.ui(Method::GET, "/ui/savings.csv", Some(&sam), None).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(csv
        .header("content-disposition")
        .unwrap()
        .contains("attachment"));
    assert!(csv.text().starts_with(
        "dimension,key,basis,potential,actual,verified,unverified,reappeared,candidates\n"
    ));
    assert!(csv
        .text()
        .contains("publisher,Adobe,per year,239.88,0.00,0.00,0.00,0.00,1"));

    let r = h.ui(Method::GET, "/ui/alerts", Some(&sam), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.page().contains("No alerts."), "{}", r.text());
    // Someone who looks after no candidates has no alerts, and no Alerts link.
    let r = h.ui(Method::GET, "/ui/alerts", Some(&uma), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.page().contains("No alerts."), "{}", r.text());
    assert!(!r.text().contains("href=\"/ui/alerts\""));
}

#[tokio::test]
async fn the_outbox_is_linked_in_local_mode() {
    let h = Harness::new().await;
    let sam = h.ui_sign_in("sam").await;
    let page = h.ui(Method::GET, "/ui", Some(&sam), None).await.page();
    assert!(page.contains("href=\"/outbox\""));
    assert!(page.contains("href=\"/ui/alerts\""));
}

#[tokio::test]
async fn a_missing_email_is_fixed_from_the_candidate_page_and_a_bad_one_changes_nothing() {
    let h = Harness::new().await;
    let n = h
        .create_one(
            json!({"user_id": "noe", "user_name": "Noe", "user_email": null, "user_itil": false}),
        )
        .await;
    reclaim(&h, &n).await;
    let c = h.candidate(&n).await;
    assert_eq!(c.state, State::AttentionRequired);
    let sam = h.ui_sign_in("sam").await;
    let page = h
        .ui(
            Method::GET,
            &format!("/ui/candidates/{n}"),
            Some(&sam),
            None,
        )
        .await
        .text();
    assert!(page.contains("id=\"fix-user\""), "{page}");
    let url = format!("/ui/candidates/{}/user", c.id);
    let version = c.version.to_string();

    let r = h
        .ui(
            Method::POST,
            &url,
            Some(&sam),
            Some(&[
                ("csrf", &sam.csrf),
                ("expected_version", &version),
                ("user_id", "noe"),
                ("email", "noe at example"),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("is not an email address"), "{}", r.text());
    assert_eq!(h.candidate(&n).await.version, c.version, "nothing changed");

    let r = h
        .ui(
            Method::POST,
            &url,
            Some(&sam),
            Some(&[
                ("csrf", &sam.csrf),
                ("expected_version", &version),
                ("user_id", "noe"),
                ("display_name", "Noe"),
                ("email", "noe@example.com"),
                ("upn", ""),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let fixed = h.candidate(&n).await;
    assert_eq!(
        fixed.user.as_ref().and_then(|u| u.email.as_deref()),
        Some("noe@example.com")
    );
    // Resume goes on where the Reclaim stopped: now the user is asked.
    let r = h
        .post(&format!("/api/v1/candidates/{n}/resume"), SAM, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    h.drain().await;
    assert_eq!(h.candidate(&n).await.state, State::AwaitingUser);
    assert_eq!(h.mail_to("noe@example.com").await.len(), 1);
}

#[tokio::test]
async fn a_sam_admin_assigns_from_the_candidate_page_and_the_new_group_sees_it() {
    let h = Harness::new().await;
    let n = h.create_one(json!({})).await; // group desktop
    let c = h.candidate(&n).await;
    let sam = h.ui_sign_in("sam").await;
    let bob = h.ui_sign_in("bob").await; // approver of `saas`
    let path = format!("/ui/candidates/{n}");
    assert_eq!(
        h.ui(Method::GET, &path, Some(&bob), None).await.status,
        StatusCode::FORBIDDEN
    );
    let page = h.ui(Method::GET, &path, Some(&sam), None).await.text();
    assert!(page.contains("id=\"assign\""));
    assert!(
        page.contains("<option value=\"saas\">saas approvers</option>"),
        "{page}"
    );
    let url = format!("/ui/candidates/{}/assign", c.id);

    let r = h
        .ui(
            Method::POST,
            &url,
            Some(&sam),
            Some(&[
                ("csrf", &sam.csrf),
                ("group", "nobody"),
                ("assigned_to", ""),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text().contains("unknown assignment group"),
        "{}",
        r.text()
    );
    assert_eq!(h.candidate(&n).await.version, c.version);

    let r = h
        .ui(
            Method::POST,
            &url,
            Some(&sam),
            Some(&[
                ("csrf", &sam.csrf),
                ("group", "saas"),
                ("assigned_to", "bob"),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let c = h.candidate(&n).await;
    assert_eq!(c.assignment_group.as_deref(), Some("saas"));
    assert_eq!(c.assigned_to.as_deref(), Some("bob"));
    let r = h.ui(Method::GET, &path, Some(&bob), None).await;
    assert_eq!(r.status, StatusCode::OK);
    // Only sam admins get the forms.
    assert!(!r.text().contains("id=\"assign\""));
    assert!(!r.text().contains("id=\"fix-user\""));
}

#[tokio::test]
async fn a_large_bulk_reclaim_shows_its_progress_and_names_a_bounded_list() {
    let h = Harness::new().await;
    let rows: Vec<serde_json::Value> = (0..1_200)
        .map(|i| {
            json!({
                "publisher": "Adobe", "product": "Acrobat Pro", "device": format!("PC-{i:05}"),
                "justification": "unused", "inactive_days": 120, "price_per_right": "239.88",
                "rule": "notify", "user_id": "uma", "user_name": "Uma Itil",
                "user_email": "uma@example.com",
            })
        })
        .collect();
    let numbers = h.create(rows).await;
    assert_eq!(numbers.len(), 1_200);
    let sam = h.ui_sign_in("sam").await;
    // More than a thousand at once, all Ready ones matching the filters.
    let r = h
        .ui(
            Method::POST,
            "/ui/candidates/reclaim",
            Some(&sam),
            Some(&[
                ("csrf", &sam.csrf),
                ("scope", "filter"),
                ("publisher", "Adobe"),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let preview = r.page();
    assert!(preview.contains("Reclaim 1200 candidate(s)?"), "{preview}");
    assert_eq!(
        preview.matches("<tr data-number=").count(),
        500,
        "the preview lists a bounded number"
    );
    assert!(preview.contains("id=\"preview-shown\""), "{preview}");
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let at = preview.find(&marker).unwrap() + marker.len();
        preview[at..].split('"').next().unwrap().to_string()
    };
    let (picks, expires, sig) = (field("picks"), field("expires"), field("sig"));
    let r = h
        .ui(
            Method::POST,
            "/ui/candidates/reclaim",
            Some(&sam),
            Some(&[
                ("csrf", &sam.csrf),
                ("confirm", "yes"),
                ("picks", &picks),
                ("expires", &expires),
                ("sig", &sig),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let page = r.page();
    // The page came with a progress line per stretch, ending at all of them, then the result.
    let progress: Vec<&str> = page
        .match_indices("class=\"bulk-progress\"")
        .map(|(i, _)| &page[i..i + 160])
        .collect();
    assert!(
        progress.len() >= 1_200 / reclaim_api::app::BULK_IN_FLIGHT,
        "{page}"
    );
    assert!(
        progress.last().unwrap().contains("Reclaimed 1200 of 1200"),
        "{progress:?}"
    );
    let result = page.find("id=\"bulk-result\"").expect("result");
    assert!(page.find("Reclaimed 1200 of 1200").unwrap() < result);
    assert!(
        page.contains("<strong>1200</strong> candidate(s) reclaimed"),
        "{page}"
    );
    assert!(page.contains("The user was asked (1200)"), "{page}");
    assert!(page.contains("and 1000 more"), "{page}");
    assert!(
        page.matches("href=\"/ui/candidates/RC").count() <= 2 * 200 + 10,
        "each list names at most 200"
    );
    for n in [&numbers[0], &numbers[599], &numbers[1_199]] {
        assert_eq!(h.candidate(n).await.state, State::AwaitingUser, "{n}");
    }
}
