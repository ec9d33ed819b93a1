//! What the fake Graph answers a usage connector (`m365-usage`): the tenant's subscribed SKUs,
//! the users listing with `$select` and paging, and the Microsoft 365 usage report, which Graph
//! answers with a redirect to a CSV download.
//!
//! | route | answer |
//! |---|---|
//! | `GET /v1.0/subscribedSkus` | `{"value": [{"skuId", "skuPartNumber", "consumedUnits", "prepaidUnits"}]}` |
//! | `GET /v1.0/users?$select=..&$top=N` | `{"value": [...], "@odata.nextLink"}`: at most `min(N, users_page_size)` users, the selected fields, licenses direct and from groups |
//! | `GET /v1.0/reports/getM365AppUserDetail(period='D30')` | 302 to `/_fake/report-download/m365-apps` (also `getOffice365ActiveUserDetail`) |
//! | `GET /_fake/report-download/{m365-apps,office365-active}` | the report CSV (no token: the redirect URL is the authorisation, as Graph's is) |
//!
//! The Graph routes need a token and count against [`GraphState::throttle_next`]; the download
//! does neither. [`GraphState::conceal_report_names`] makes the report show hashes instead of
//! user principal names, as a tenant that conceals names in reports does.

use crate::dates::{date_days_ago, time_days_ago};
use crate::graph::{
    admit, graph_error, GraphData, GraphState, SKU_E3, SKU_E5, SKU_POWER_BI, SKU_VISIO,
};
use crate::util::lock;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::fmt::Write as _;

/// What the users listing and the usage report say about a user besides their licenses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub display_name: String,
    pub mail: Option<String>,
    /// The account was created this many days ago.
    pub created_days_ago: u32,
    /// Last activity in Microsoft 365 apps this many days ago; `None`: none in the report's
    /// period.
    pub last_active_days_ago: Option<u32>,
}

impl GraphState {
    /// Sets what the users listing and the usage report say about the user with this id.
    pub fn set_profile(&self, user_id: &str, profile: Profile) {
        lock(&self.0).profiles.insert(user_id.to_owned(), profile);
    }

    /// A user with licenses and a profile, in one call (the demo and tests).
    pub fn add_licensed_user(
        &self,
        id: &str,
        upn: &str,
        name: &str,
        skus: &[&str],
        created_days_ago: u32,
        last_active_days_ago: Option<u32>,
    ) {
        self.add_user(id, upn, skus);
        self.set_profile(
            id,
            Profile {
                display_name: name.to_owned(),
                mail: Some(upn.to_owned()),
                created_days_ago,
                last_active_days_ago,
            },
        );
    }

    /// At most this many users per page of `GET /v1.0/users`, whatever `$top` asks.
    pub fn set_users_page_size(&self, users: usize) {
        lock(&self.0).users_page_size = users.max(1);
    }

    /// The usage report shows a hash instead of each user principal name.
    pub fn conceal_report_names(&self, conceal: bool) {
        lock(&self.0).conceal_report_names = conceal;
    }

    /// The usage report does not list the user (as for an account created after the report's
    /// last refresh); the users listing still shows their sign-in.
    pub fn leave_out_of_report(&self, user_id: &str) {
        lock(&self.0).left_out_of_report.insert(user_id.to_owned());
    }

    /// Every (user id, skuId) the tenant's users hold, directly or through a group, sorted:
    /// what a connector that reports one row per user and license must find.
    pub fn license_assignments(&self) -> Vec<(String, String)> {
        let d = lock(&self.0);
        let mut out: Vec<(String, String)> = d
            .users
            .values()
            .flat_map(|u| {
                d.effective(u)
                    .into_keys()
                    .map(|sku| (u.id.clone(), sku))
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort();
        out
    }

    /// The date (`YYYY-MM-DD`) the usage report gives as the user's last activity.
    pub fn last_activity_date(&self, user_id: &str) -> Option<String> {
        lock(&self.0)
            .profiles
            .get(user_id)
            .and_then(|p| p.last_active_days_ago)
            .map(date_days_ago)
    }
}

/// The sample tenant's people: who was active when, so a test's rules find unused seats.
pub(crate) fn seed_demo(state: &GraphState) {
    for (id, name, created, active) in [
        ("u-ann", "Ann Archer", 900, Some(2)),
        ("u-bob", "Bob Baker", 700, Some(120)),
        ("u-cem", "Cem Candan", 400, None),
        ("u-dee", "Dee Dalton", 300, Some(45)),
    ] {
        let upn = format!("{}@demo.example", id.trim_start_matches("u-"));
        state.set_profile(
            id,
            Profile {
                display_name: name.to_owned(),
                mail: Some(upn),
                created_days_ago: created,
                last_active_days_ago: active,
            },
        );
    }
    for (id, name, skus, created, active) in [
        ("u-eve", "Eve Ellis", &[SKU_E5.0][..], 1200, Some(200)),
        (
            "u-fay",
            "Fay Fischer",
            &[SKU_E3.0, SKU_VISIO.0][..],
            650,
            Some(1),
        ),
        (
            "u-gus",
            "Gus Garcia",
            &[SKU_E3.0, SKU_POWER_BI.0][..],
            500,
            Some(95),
        ),
        ("u-hal", "Hal Hughes", &[SKU_E3.0][..], 10, None),
        ("u-ivy", "Ivy Ito", &[SKU_E5.0][..], 800, Some(7)),
        (
            "u-jon",
            "Jon Jensen",
            &[SKU_E5.0, SKU_VISIO.0][..],
            950,
            Some(150),
        ),
    ] {
        let upn = format!("{}@demo.example", id.trim_start_matches("u-"));
        state.add_licensed_user(id, &upn, name, skus, created, active);
    }
}

/// `http://host:port` of the fake as the client reached it, for absolute next links.
fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

pub(crate) async fn subscribed_skus(
    State(state): State<GraphState>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = admit(&state, &headers, "GET /v1.0/subscribedSkus".into()) {
        return r;
    }
    let d = lock(&state.0);
    let value: Vec<Value> = d
        .skus
        .iter()
        .map(|(id, part)| {
            let consumed = d
                .users
                .values()
                .filter(|u| d.effective(u).contains_key(id))
                .count();
            json!({
                "skuId": id,
                "skuPartNumber": part,
                "capabilityStatus": "Enabled",
                "consumedUnits": consumed,
                "prepaidUnits": {"enabled": 100, "suspended": 0, "warning": 0},
            })
        })
        .collect();
    crate::util::json(StatusCode::OK, json!({ "value": value }))
}

fn profile_of(d: &GraphData, id: &str, upn: &str) -> Profile {
    d.profiles.get(id).cloned().unwrap_or_else(|| Profile {
        display_name: upn.split('@').next().unwrap_or(upn).to_owned(),
        mail: Some(upn.to_owned()),
        created_days_ago: 365,
        last_active_days_ago: None,
    })
}

pub(crate) async fn list_users(
    State(state): State<GraphState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = admit(&state, &headers, "GET /v1.0/users".into()) {
        return r;
    }
    let d = lock(&state.0);
    let top = match query.get("$top").map(|t| t.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) if (1..=999).contains(&n) => n,
        Some(_) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                "Invalid value for '$top'; it must be between 1 and 999.",
            )
        }
    };
    let size = top.min(d.users_page_size);
    let skip = match query.get("$skiptoken").map(|t| t.parse::<usize>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                "The specified page token value has expired or is invalid.",
            )
        }
    };
    let select: Option<Vec<&str>> = query
        .get("$select")
        .map(|s| s.split(',').map(str::trim).collect());
    let wanted = |field: &str| {
        select.as_ref().map_or(
            ["id", "displayName", "userPrincipalName", "mail"].contains(&field),
            |s| s.contains(&field),
        )
    };
    let value: Vec<Value> = d
        .users
        .values()
        .skip(skip)
        .take(size)
        .map(|u| {
            let p = profile_of(&d, &u.id, &u.upn);
            let mut all = Map::new();
            all.insert("id".into(), json!(u.id));
            all.insert("userPrincipalName".into(), json!(u.upn));
            all.insert("displayName".into(), json!(p.display_name));
            all.insert("mail".into(), json!(p.mail));
            all.insert(
                "createdDateTime".into(),
                json!(time_days_ago(p.created_days_ago)),
            );
            let licenses: Vec<Value> = d
                .effective(u)
                .into_keys()
                .map(|sku| json!({"skuId": sku, "disabledPlans": []}))
                .collect();
            all.insert("assignedLicenses".into(), json!(licenses));
            all.insert(
                "signInActivity".into(),
                json!({
                    "lastSignInDateTime": p.last_active_days_ago.map(time_days_ago),
                    "lastNonInteractiveSignInDateTime": p.last_active_days_ago.map(time_days_ago),
                }),
            );
            Value::Object(all.into_iter().filter(|(k, _)| wanted(k)).collect())
        })
        .collect();
    let mut body = json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users",
        "value": value,
    });
    if skip + size < d.users.len() {
        let mut link = format!("{}/v1.0/users?", origin(&headers));
        if let Some(s) = query.get("$select") {
            let _ = write!(link, "$select={s}&");
        }
        let _ = write!(link, "$top={top}&$skiptoken={}", skip + size);
        body["@odata.nextLink"] = json!(link);
    }
    crate::util::json(StatusCode::OK, body)
}

pub(crate) async fn report(
    State(state): State<GraphState>,
    Path(report): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = admit(&state, &headers, format!("GET /v1.0/reports/{report}")) {
        return r;
    }
    let download = if report.starts_with("getM365AppUserDetail(") {
        "m365-apps"
    } else if report.starts_with("getOffice365ActiveUserDetail(") {
        "office365-active"
    } else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("Resource not found for the segment '{report}'."),
        );
    };
    let location = format!("{}/_fake/report-download/{download}", origin(&headers));
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

/// A stable stand-in for a concealed name: 32 upper-case hex digits, as Microsoft shows them.
fn conceal(name: &str) -> String {
    let mut out = String::new();
    for seed in [0xcbf2_9ce4_8422_2325u64, 0x8422_2325_cbf2_9ce4] {
        let mut h = seed;
        for b in name.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        let _ = write!(out, "{h:016X}");
    }
    out
}

/// A CSV cell, quoted when it must be.
fn cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

pub(crate) async fn report_download(
    State(state): State<GraphState>,
    Path(id): Path<String>,
) -> Response {
    let mut d = lock(&state.0);
    d.requests.push(format!("GET /_fake/report-download/{id}"));
    let today = date_days_ago(0);
    let mut csv = String::from("\u{feff}");
    let active = id == "office365-active";
    if active {
        csv.push_str("Report Refresh Date,User Principal Name,Display Name,Is Deleted,Deleted Date,Exchange Last Activity Date,OneDrive Last Activity Date,SharePoint Last Activity Date,Teams Last Activity Date,Assigned Products,Report Period\r\n");
    } else if id == "m365-apps" {
        csv.push_str("Report Refresh Date,User Principal Name,Last Activity Date,Windows,Mac,Mobile,Web,Outlook,Word,Excel,PowerPoint,OneNote,Teams,Report Period\r\n");
    } else {
        return StatusCode::NOT_FOUND.into_response();
    }
    for u in d
        .users
        .values()
        .filter(|u| !d.left_out_of_report.contains(&u.id))
    {
        let p = profile_of(&d, &u.id, &u.upn);
        let (upn, name) = if d.conceal_report_names {
            (conceal(&u.upn), conceal(&p.display_name))
        } else {
            (u.upn.clone(), p.display_name.clone())
        };
        let last = p
            .last_active_days_ago
            .map(date_days_ago)
            .unwrap_or_default();
        let used = if last.is_empty() { "No" } else { "Yes" };
        if active {
            let products: Vec<String> = d
                .effective(u)
                .into_keys()
                .filter_map(|sku| d.skus.get(&sku).cloned())
                .collect();
            // Exchange a week before the apps, Teams on the day: the connector takes the latest.
            let exchange = p
                .last_active_days_ago
                .map(|n| date_days_ago(n + 7))
                .unwrap_or_default();
            let _ = write!(
                csv,
                "{today},{},{},False,,{exchange},,,{last},{},30\r\n",
                cell(&upn),
                cell(&name),
                cell(&products.join("+"))
            );
        } else {
            let _ = write!(
                csv,
                "{today},{},{last},{used},No,No,{used},{used},{used},{used},No,No,{used},30\r\n",
                cell(&upn)
            );
        }
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/octet-stream")],
        csv,
    )
        .into_response()
}
