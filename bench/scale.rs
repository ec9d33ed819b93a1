//! The scale benchmark's data and load, shared by both stores' benches
//! (`functions/local/benches/scale.rs` over SQLite, `functions/aws/benches/scale.rs` over
//! DynamoDB), each of which includes this file as a module, so both measure the same
//! candidates with the same requests.
//!
//! - The generator: the i-th of N candidates, spread over every stage (40 % Ready, 15 %
//!   Awaiting User, 25 % Closed Complete, …), 20 assignment groups, 40 products of 8
//!   publishers, 10,000 users and 24 months; [`DUE_NOW`] of them due for the scheduler (a
//!   reminder is due) once there are 200,000 or more.
//! - The directory and API tokens the server is seeded with.
//! - The load generator: each answer driven by 1, 8 or 32 concurrent clients for a few
//!   seconds ([`measure`]), with the same requests on both stores ([`scenarios`],
//!   [`link_answer`]).
#![allow(dead_code)]

use chrono::{Duration as Days, TimeZone, Utc};
use reclaim_api::HmacLinkSigner;
use reclaim_workflow::ports::{LinkAction, LinkClaims, LinkSigner};
use reclaim_workflow::{Candidate, Group, State, Timestamp, User, UserRef};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const LINK_KEY: &str = "scale-bench-link-key-0123456789abcdef0123456789abcdef";
/// The sam admin's API token (its user id is `sam`).
pub const SAM: &str = "scale-sam-admin-token-000001";
/// An approver's API token (`ada`, the one member of `group-07`).
pub const APPROVER: &str = "scale-approver-token-0000001";
/// Who each token names.
pub const TOKENS: [(&str, &str); 2] = [(SAM, "sam"), (APPROVER, "ada")];
pub const GROUPS: usize = 20;
pub const USERS: usize = 10_000;
/// Awaiting User candidates whose reminder is due now (every third of the first 30,000, so
/// all of them from 200,000 candidates on).
pub const DUE_NOW: usize = 10_000;
pub const PUBLISHERS: [&str; 8] = [
    "Adobe",
    "Microsoft",
    "Autodesk",
    "Zoom",
    "Slack",
    "Tableau",
    "Atlassian",
    "JetBrains",
];
pub const PRODUCTS: [&str; 5] = ["Pro", "Standard", "Enterprise", "Desktop", "Studio"];
/// Awaiting User candidates per hundred (stages 40..=54 of every hundred).
const AWAITING_PER_100: usize = 15;

pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// Which stage the i-th candidate is in: most are Ready or closed, as in a real estate.
pub fn stage(i: usize) -> State {
    match i % 100 {
        0..=39 => State::Ready,
        40..=54 => State::AwaitingUser,
        55..=59 => State::AwaitingApproval,
        60..=62 => State::AwaitingRevocation,
        63..=87 => State::ClosedComplete,
        88..=94 => State::ClosedSkipped,
        95..=98 => State::ClosedCanceled,
        _ => State::AttentionRequired,
    }
}

/// The index of the a-th Awaiting User candidate.
pub fn awaiting_user(a: usize) -> usize {
    (a / AWAITING_PER_100) * 100 + 40 + a % AWAITING_PER_100
}

/// How many of `n` candidates are Awaiting User.
pub fn awaiting_users(n: usize) -> usize {
    (n / 100) * AWAITING_PER_100 + (n % 100).saturating_sub(40).min(AWAITING_PER_100)
}

/// Whether the a-th Awaiting User candidate is due now.
fn due_now(a: usize) -> bool {
    a.is_multiple_of(3) && a / 3 < DUE_NOW
}

/// The a-th Awaiting User candidate that is not due, whose link the bench answers (so the
/// answers never take a candidate away from the scheduler's tick).
pub fn answerable(j: usize) -> usize {
    awaiting_user(3 * (j / 2) + 1 + j % 2)
}

/// How many Awaiting User candidates [`answerable`] can name among `n`.
pub fn answerables(n: usize) -> usize {
    awaiting_users(n) * 2 / 3
}

pub fn user(u: usize) -> UserRef {
    UserRef {
        id: format!("user-{u:05}"),
        display_name: format!("Person {u:05}"),
        email: Some(format!("person{u:05}@example.com")),
        upn: None,
        itil: false,
        vip: false,
    }
}

/// The i-th candidate (its id `scale-<i + 1>`, its number the (i + 1)-th), as of `now`.
pub fn candidate(i: usize, now: Timestamp) -> Candidate {
    let mut c = reclaim_workflow::testing::candidate();
    let n = i as u64 + 1;
    c.id = format!("scale-{n:07}");
    c.number = reclaim_workflow::intake::format_number(n);
    c.state = stage(i);
    let p = (i / 7) % (PUBLISHERS.len() * PRODUCTS.len());
    c.software.publisher = PUBLISHERS[p % PUBLISHERS.len()].into();
    c.software.product = format!(
        "{} {}",
        PUBLISHERS[p % PUBLISHERS.len()],
        PRODUCTS[p / PUBLISHERS.len()]
    );
    c.user = Some(user((i * 7919) % USERS));
    c.assignment_group = Some(format!("group-{:02}", i % GROUPS));
    c.price_per_right_cents = 1_000 + ((i * 37) % 50_000) as i64;
    c.inactive_days = Some(((i * 13) % 400) as u32);
    let month = (i % 24) as i64;
    c.opened_at = now - Days::days(30 * month + 31);
    c.updated_at = c.opened_at;
    c.state_since = Some(c.opened_at);
    c.version = 1;
    c.due_at = None;
    match c.state {
        State::AwaitingUser => {
            let a = (i / 100) * AWAITING_PER_100 + (i % 100 - 40);
            c.deadline_at = Some(now + Days::days(((i % 28) + 1) as i64));
            if due_now(a) {
                // Asked four days ago: the rule's first reminder (day 3) is due.
                c.asked_at = Some(now - Days::days(4));
                c.due_at = Some(now - Days::hours(1));
            } else {
                c.asked_at = Some(now - Days::days(2));
                c.due_at = c.deadline_at;
            }
        }
        s if s.is_closed() => {
            c.closed_at = Some(c.opened_at + Days::days(10));
        }
        _ => {}
    }
    c
}

/// The people and groups the server knows: a sam admin (`sam`), an approver (`ada`, in
/// `group-07`), and every candidate's user.
pub fn directory() -> (Vec<User>, Vec<Group>) {
    let mut users = vec![
        User {
            id: "sam".into(),
            display_name: "Sam Admin".into(),
            email: Some("sam@example.com".into()),
            upn: None,
            itil: false,
            vip: false,
            sam_admin: true,
        },
        User {
            id: "ada".into(),
            display_name: "Ada Approver".into(),
            email: Some("ada@example.com".into()),
            upn: None,
            itil: true,
            vip: false,
            sam_admin: false,
        },
    ];
    for u in 0..USERS {
        let r = user(u);
        users.push(User {
            id: r.id,
            display_name: r.display_name,
            email: r.email,
            upn: r.upn,
            itil: r.itil,
            vip: r.vip,
            sam_admin: false,
        });
    }
    let groups = (0..GROUPS)
        .map(|g| Group {
            id: format!("group-{g:02}"),
            name: format!("Group {g:02}"),
            email: Some(format!("group{g:02}@example.com")),
            members: if g == 7 { vec!["ada".into()] } else { vec![] },
        })
        .collect();
    (users, groups)
}

/// The signed link of the i-th candidate's user, as the email carries it.
pub fn link(signer: &HmacLinkSigner, i: usize, action: LinkAction) -> String {
    let c = candidate(i, Utc::now());
    signer.sign(&LinkClaims {
        candidate_id: c.id,
        user_id: c.user.map(|u| u.id).unwrap_or_default(),
        action,
        version: 1,
        expires_at: Utc.timestamp_opt(4_000_000_000, 0).unwrap(),
    })
}

/// One request a client makes, again and again (`k` is the client, `i` counts its requests).
pub type Make = Arc<dyn Fn(usize, usize) -> reqwest::RequestBuilder + Send + Sync>;

#[derive(Debug)]
pub struct Measured {
    pub name: String,
    pub clients: usize,
    pub n: usize,
    pub errors: usize,
    pub first_error: Option<String>,
    pub p50: Duration,
    pub p99: Duration,
    pub per_sec: f64,
}

impl Measured {
    /// The row of the report's table.
    pub fn row(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {} | {} | {:.0} |",
            self.name,
            self.clients,
            self.n,
            self.errors,
            ms(self.p50),
            ms(self.p99),
            self.per_sec
        )
    }
}

/// Runs `make` from `clients` concurrent clients, each one request after another, for `secs`.
pub async fn measure(name: &str, clients: usize, secs: f64, make: Make) -> Measured {
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..clients {
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            let mut errors = 0;
            let mut first_error = None;
            let mut i = 0;
            while Instant::now() < until {
                let t = Instant::now();
                let ok = match send(make(k, i)).await {
                    Ok(()) => true,
                    Err(e) => {
                        first_error.get_or_insert(e);
                        false
                    }
                };
                times.push(t.elapsed());
                if !ok {
                    errors += 1;
                }
                i += 1;
            }
            (times, errors, first_error)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for t in tasks {
        let (times, e, f) = t.await.unwrap();
        all.extend(times);
        errors += e;
        first_error = first_error.or(f);
    }
    let elapsed = started.elapsed();
    all.sort_unstable();
    let at = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Measured {
        name: name.to_string(),
        clients,
        n: all.len(),
        errors,
        first_error,
        p50: at(0.50),
        p99: at(0.99),
        per_sec: all.len() as f64 / elapsed.as_secs_f64(),
    }
}

/// Sends one request and reads its answer; a status other than success or redirection is an
/// error, described by its first 200 characters.
pub async fn send(req: reqwest::RequestBuilder) -> Result<(), String> {
    match req.send().await {
        Ok(r) => {
            let status = r.status();
            let body = r.bytes().await.unwrap_or_default();
            if status.is_success() || status.is_redirection() {
                Ok(())
            } else {
                Err(format!(
                    "{status}: {}",
                    String::from_utf8_lossy(&body)
                        .chars()
                        .take(200)
                        .collect::<String>()
                ))
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

pub fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// The cursor of page 201 of the Closed Complete candidates, 50 a page: `next` followed 200
/// times from the first page.
pub async fn deep_cursor(client: &reqwest::Client, api: &str) -> String {
    let mut cursor = String::new();
    for _ in 0..200 {
        let url = format!(
            "{api}/api/v1/candidates?state=closed-complete&limit=50{}",
            if cursor.is_empty() {
                String::new()
            } else {
                format!("&cursor={cursor}")
            }
        );
        let body: serde_json::Value = client
            .get(url)
            .bearer_auth(SAM)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        match body["next"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    cursor
}

/// The answers measured for `n` candidates, in the report's order: the JSON API at `api`, the
/// link pages at `respond` (the same server locally; two functions on AWS). `cursor` is
/// [`deep_cursor`]'s.
pub fn scenarios(
    client: &reqwest::Client,
    api: &str,
    respond: &str,
    n: usize,
    cursor: &str,
    signer: Arc<HmacLinkSigner>,
) -> Vec<(&'static str, Make)> {
    let get = |path: String, token: &'static str| -> Make {
        let (client, api) = (client.clone(), api.to_string());
        Arc::new(move |_, _| client.get(format!("{api}{path}")).bearer_auth(token))
    };
    let pick = move |k: usize, i: usize| ((k * 1_000_003 + i * 7_919) % n) + 1;
    let awaiting = awaiting_users(n).max(1);
    vec![
        (
            "list, no filter",
            get("/api/v1/candidates?limit=50".into(), SAM),
        ),
        (
            "list, stage",
            get(
                "/api/v1/candidates?state=awaiting-user&limit=50".into(),
                SAM,
            ),
        ),
        (
            "list, group",
            get("/api/v1/candidates?group=group-07&limit=50".into(), SAM),
        ),
        (
            "list, software search",
            get(
                "/api/v1/candidates?software=desk%20stud&limit=50".into(),
                SAM,
            ),
        ),
        (
            "list, user search",
            get(
                "/api/v1/candidates?person=person%200421&limit=50".into(),
                SAM,
            ),
        ),
        (
            "list, sorted by savings",
            get("/api/v1/candidates?sort=-savings&limit=50".into(), SAM),
        ),
        (
            "list, stage + sorted + counted",
            get(
                "/api/v1/candidates?state=ready&sort=deadline&count=true&limit=50".into(),
                SAM,
            ),
        ),
        (
            "list, page 201",
            get(
                format!("/api/v1/candidates?state=closed-complete&limit=50&cursor={cursor}"),
                SAM,
            ),
        ),
        ("candidate", {
            let (client, api) = (client.clone(), api.to_string());
            Arc::new(move |k, i| {
                client
                    .get(format!(
                        "{api}/api/v1/candidates/{}",
                        reclaim_workflow::intake::format_number(pick(k, i) as u64)
                    ))
                    .bearer_auth(SAM)
            })
        }),
        ("savings", get("/api/v1/savings".into(), SAM)),
        ("alerts", get("/api/v1/alerts".into(), SAM)),
        (
            "approvals queue",
            get("/api/v1/tasks/mine".into(), APPROVER),
        ),
        ("link page (GET)", {
            let (client, respond) = (client.clone(), respond.to_string());
            Arc::new(move |k, i| {
                let a = (k * 1000 + i % 1000) % awaiting;
                client.get(format!(
                    "{respond}/respond/{}",
                    link(&signer, awaiting_user(a), LinkAction::Keep)
                ))
            })
        }),
    ]
}

/// The link answers (POST, Keep) of clients numbered from `first_slot` ([`round_slot`] for a
/// measured concurrency, [`PROBE_SLOT`] for single requests): each client answers candidates
/// no other client answers, among those not due now, each once.
pub fn link_answer(
    client: &reqwest::Client,
    respond: &str,
    n: usize,
    first_slot: usize,
    signer: Arc<HmacLinkSigner>,
) -> Make {
    let per_client = (answerables(n) / ANSWER_SLOTS).max(1);
    let (client, respond) = (client.clone(), respond.to_string());
    Arc::new(move |k, i| {
        let j = (first_slot + k) * per_client + i % per_client;
        client
            .post(format!(
                "{respond}/respond/{}",
                link(&signer, answerable(j), LinkAction::Keep)
            ))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", respond.clone())
            .body("comment=")
    })
}

/// The first client slot of the `round`-th concurrency of [`CONCURRENCY`].
pub fn round_slot(round: usize) -> usize {
    CONCURRENCY[..round].iter().sum()
}

/// The slot of single answers outside the measured concurrencies.
pub const PROBE_SLOT: usize = 1 + 8 + 32;
/// Client slots the answerable candidates are shared out to.
const ANSWER_SLOTS: usize = PROBE_SLOT + 1;

/// The numbers of concurrent clients each answer is measured with.
pub const CONCURRENCY: [usize; 3] = [1, 8, 32];
