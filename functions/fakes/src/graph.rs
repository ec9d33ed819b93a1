//! A fake Microsoft Graph (v1.0) with its client-credentials token endpoint.
//!
//! It models what license removal depends on: users with directly assigned licenses, groups
//! that grant licenses to their members, and Graph's refusal to remove a group-inherited
//! license per user. Routes (all JSON, bearer token required except for the token endpoint):
//!
//! | route | answer |
//! |---|---|
//! | `POST /{tenant}/oauth2/v2.0/token` | `{"access_token", "token_type", "expires_in"}`, or 400/401 `invalid_client` |
//! | `POST /v1.0/users/{upn}/assignLicense` | 200 user; 400 inherited / not held / unknown SKU; 404 unknown user |
//! | `GET /v1.0/users/{upn}` | `{"id", "userPrincipalName", "licenseAssignmentStates": [...]}` |
//! | `GET /v1.0/users/{upn}/licenseDetails` | `{"value": [{"id", "skuId", "skuPartNumber", "servicePlans"}]}` |
//! | `GET /v1.0/groups/{id}` | `{"id", "displayName", "assignedLicenses": [{"skuId", "disabledPlans"}]}` |
//! | `DELETE /v1.0/groups/{id}/members/{userId}/$ref` | 204, or 404 when not a member |
//! | `POST /_fake/reassign` `{"upn", "sku"}` | 204 after [`GraphState::reassign_license`]; 404 unknown user or SKU (no token: a demo control, not Graph) |
//!
//! What a usage connector reads (`m365-usage`) is in [`crate::graph_usage`]: subscribed SKUs,
//! the users listing with paging, and the usage report behind a redirect.
//!
//! A refused token is answered as Graph does: 401 with `InvalidAuthenticationToken` and a
//! `WWW-Authenticate: Bearer ... error="invalid_token"` challenge ("Lifetime validation failed,
//! the token is expired." for an expired one). What tests arrange:
//!
//! - [`GraphState::throttle_next`]: the next calls answer 429 with `Retry-After`;
//! - [`GraphState::expire_tokens_after`]: every token expires after that many calls, so a
//!   plugin meets an expired token in the middle of its work ([`GraphState::token_requests`]
//!   counts how often it asked for one); with 0 the endpoint issues tokens the API refuses;
//! - [`GraphState::reassign_license`]: a license comes back after it was removed;
//! - [`GraphState::remove_member_before_licensing`]: someone else removed a membership and
//!   group-based licensing has not caught up (the license is still listed, the membership
//!   DELETE answers 404) until [`GraphState::process_group_licensing`].

use crate::util::{bearer, json, lock};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// The message Graph gives when a license comes from a group (checked by the plugin).
pub const INHERITED_MESSAGE: &str =
    "User license is inherited from a group membership and it cannot be removed directly from the user.";

/// Demo SKUs: (skuId, skuPartNumber).
pub const SKU_E5: (&str, &str) = ("06ebc4ee-1bb5-47dd-8120-11324bc54e06", "SPE_E5");
pub const SKU_E3: (&str, &str) = ("05e9a617-0261-4cee-bb44-138d3ef5d965", "SPE_E3");
pub const SKU_VISIO: (&str, &str) = ("c5928f49-12ba-48f7-ada3-0d743a3601d5", "VISIOCLIENT");
pub const SKU_POWER_BI: (&str, &str) = ("f8a1db68-be16-40ed-86d5-cb42ce701560", "POWER_BI_PRO");

#[derive(Debug, Clone)]
pub struct GraphUser {
    pub id: String,
    pub upn: String,
    /// Directly assigned skuIds.
    pub direct: BTreeSet<String>,
}

#[derive(Debug, Clone)]
pub struct GraphGroup {
    pub id: String,
    pub name: String,
    /// skuIds the group grants its members.
    pub skus: Vec<String>,
    /// Member user ids.
    pub members: BTreeSet<String>,
    /// User ids removed from the group whose licenses group-based licensing has not taken away
    /// yet: Graph still lists the group's licenses for them, but they are not members.
    pub unprocessed_leavers: BTreeSet<String>,
}

#[derive(Debug)]
pub struct GraphData {
    pub tenant: String,
    pub client_id: String,
    pub client_secret: String,
    /// skuId → skuPartNumber, the tenant's subscribed SKUs.
    pub skus: BTreeMap<String, String>,
    /// By lower-cased UPN.
    pub users: BTreeMap<String, GraphUser>,
    pub groups: BTreeMap<String, GraphGroup>,
    /// Unknown users are created on first use holding every SKU directly (the demo).
    pub lenient: bool,
    /// Graph calls still to be answered with 429.
    pub throttle_remaining: u32,
    pub retry_after_secs: u32,
    /// `METHOD path` of every Graph call (not token requests), in order.
    pub requests: Vec<String>,
    /// Token requests received, granted or not.
    pub token_requests: u32,
    /// Calls a token is good for; `None`: tokens never expire (the default).
    pub token_lifetime_calls: Option<u32>,
    /// Issued tokens → calls made with each.
    tokens: BTreeMap<String, u32>,
    /// Numbers Graph's `request-id`s in error answers.
    errors_answered: u32,
    /// Names, mail, creation and last activity of users, by user id (see
    /// [`crate::graph_usage`]); users without one get plain defaults.
    pub profiles: BTreeMap<String, crate::graph_usage::Profile>,
    /// Most users one page of `GET /v1.0/users` holds, whatever `$top` asks.
    pub users_page_size: usize,
    /// The usage report shows hashes instead of user principal names (the tenant conceals
    /// names in reports).
    pub conceal_report_names: bool,
    /// User ids the usage report does not list (created after its refresh).
    pub left_out_of_report: BTreeSet<String>,
}

/// Shared, cloneable handle to the fake's data.
#[derive(Debug, Clone)]
pub struct GraphState(pub Arc<Mutex<GraphData>>);

impl Default for GraphState {
    fn default() -> Self {
        GraphState::new("fake-tenant", "fake-client", "fake-secret")
    }
}

impl GraphState {
    pub fn new(tenant: &str, client_id: &str, client_secret: &str) -> GraphState {
        let skus = [SKU_E5, SKU_E3, SKU_VISIO, SKU_POWER_BI]
            .iter()
            .map(|(id, part)| ((*id).to_owned(), (*part).to_owned()))
            .collect();
        GraphState(Arc::new(Mutex::new(GraphData {
            tenant: tenant.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            skus,
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
            lenient: false,
            throttle_remaining: 0,
            retry_after_secs: 0,
            requests: Vec::new(),
            token_requests: 0,
            token_lifetime_calls: None,
            tokens: BTreeMap::new(),
            errors_answered: 0,
            profiles: BTreeMap::new(),
            users_page_size: 100,
            conceal_report_names: false,
            left_out_of_report: BTreeSet::new(),
        })))
    }

    /// The plugin tests' sample tenant: lenient, plus users showing each path (direct, inherited
    /// from a single-license group, inherited from a group that grants more). The demo
    /// organisation's tenant is [`crate::organisation::graph`].
    pub fn demo() -> GraphState {
        let state = GraphState::new("demo-tenant", "reclaim-demo", "demo-client-secret");
        state.set_lenient(true);
        state.add_user("u-ann", "ann@demo.example", &[SKU_E5.0, SKU_VISIO.0]);
        state.add_user("u-bob", "bob@demo.example", &[SKU_E3.0]);
        state.add_user("u-cem", "cem@demo.example", &[]);
        state.add_user("u-dee", "dee@demo.example", &[]);
        state.add_group("g-visio", "Visio users", &[SKU_VISIO.0], &["u-cem"]);
        state.add_group(
            "g-analysts",
            "Analysts",
            &[SKU_POWER_BI.0, SKU_E3.0],
            &["u-dee"],
        );
        crate::graph_usage::seed_demo(&state);
        state
    }

    pub fn set_lenient(&self, lenient: bool) {
        lock(&self.0).lenient = lenient;
    }

    /// (tenant, client id, client secret) the token endpoint accepts.
    pub fn credentials(&self) -> (String, String, String) {
        let d = lock(&self.0);
        (
            d.tenant.clone(),
            d.client_id.clone(),
            d.client_secret.clone(),
        )
    }

    pub fn add_user(&self, id: &str, upn: &str, direct: &[&str]) {
        lock(&self.0).users.insert(
            upn.to_ascii_lowercase(),
            GraphUser {
                id: id.to_owned(),
                upn: upn.to_owned(),
                direct: direct.iter().map(|s| (*s).to_owned()).collect(),
            },
        );
    }

    pub fn add_group(&self, id: &str, name: &str, skus: &[&str], members: &[&str]) {
        lock(&self.0).groups.insert(
            id.to_owned(),
            GraphGroup {
                id: id.to_owned(),
                name: name.to_owned(),
                skus: skus.iter().map(|s| (*s).to_owned()).collect(),
                members: members.iter().map(|s| (*s).to_owned()).collect(),
                unprocessed_leavers: BTreeSet::new(),
            },
        );
    }

    /// Every token, those issued already included, is refused as expired once it has been
    /// used for `calls` Graph calls (0: refused on first use, i.e. the token endpoint issues
    /// tokens the API refuses). Real tokens live about an hour; counting calls makes "the token
    /// expired in the middle of a plugin call" deterministic.
    pub fn expire_tokens_after(&self, calls: u32) {
        lock(&self.0).token_lifetime_calls = Some(calls);
    }

    /// Token requests received so far, granted or not.
    pub fn token_requests(&self) -> u32 {
        lock(&self.0).token_requests
    }

    /// Assigns `sku` (a skuId or skuPartNumber of the tenant) to the user directly, as an admin
    /// re-licensing someone after a reclamation would. False when the user or SKU is unknown.
    pub fn reassign_license(&self, upn: &str, sku: &str) -> bool {
        let mut d = lock(&self.0);
        let Some(sku_id) = d.sku_id(sku) else {
            return false;
        };
        match d.users.get_mut(&upn.to_ascii_lowercase()) {
            Some(user) => {
                user.direct.insert(sku_id);
                true
            }
            None => false,
        }
    }

    /// Removes the user from the group the way another admin would, but group-based licensing
    /// has not processed it yet: the group's licenses stay listed for the user (assigned by the
    /// group), while the membership is gone (its DELETE answers 404). False when the user was
    /// not a member.
    pub fn remove_member_before_licensing(&self, group: &str, user_id: &str) -> bool {
        let mut d = lock(&self.0);
        let Some(g) = d.groups.get_mut(group) else {
            return false;
        };
        let was_member = g.members.remove(user_id);
        if was_member {
            g.unprocessed_leavers.insert(user_id.to_owned());
        }
        was_member
    }

    /// Group-based licensing catches up: licenses of removed members go away.
    pub fn process_group_licensing(&self) {
        for g in lock(&self.0).groups.values_mut() {
            g.unprocessed_leavers.clear();
        }
    }

    /// The next `calls` Graph calls answer 429 with `Retry-After: retry_after_secs`.
    pub fn throttle_next(&self, calls: u32, retry_after_secs: u32) {
        let mut d = lock(&self.0);
        d.throttle_remaining = calls;
        d.retry_after_secs = retry_after_secs;
    }

    /// Whether the user holds the SKU, directly or through a group.
    pub fn has_license(&self, upn: &str, sku: &str) -> bool {
        let d = lock(&self.0);
        d.users
            .get(&upn.to_ascii_lowercase())
            .is_some_and(|u| d.effective(u).contains_key(sku))
    }

    pub fn is_member(&self, group: &str, user_id: &str) -> bool {
        lock(&self.0)
            .groups
            .get(group)
            .is_some_and(|g| g.members.contains(user_id))
    }

    pub fn requests(&self) -> Vec<String> {
        lock(&self.0).requests.clone()
    }

    /// Checks a token this login issued, for another fake API that accepts Graph's tokens
    /// (the CSD fake in OAuth mode); `Some` is the 401 to answer instead.
    pub(crate) fn refuse_token(&self, token: Option<&str>) -> Option<Response> {
        lock(&self.0).refuse_token(token)
    }
}

impl GraphData {
    /// The skuId for a skuId or skuPartNumber of the tenant.
    fn sku_id(&self, sku: &str) -> Option<String> {
        self.skus
            .iter()
            .find(|(id, part)| id.eq_ignore_ascii_case(sku) || part.eq_ignore_ascii_case(sku))
            .map(|(id, _)| id.clone())
    }

    /// Checks a bearer token as Graph does and counts the call against it; `Some` is the 401
    /// to answer instead.
    pub(crate) fn refuse_token(&mut self, token: Option<&str>) -> Option<Response> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Some(self.unauthorized(
                "Access token is empty.",
                r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000""#.to_owned(),
            ));
        };
        let lifetime = self.token_lifetime_calls;
        let Some(uses) = self.tokens.get_mut(token) else {
            return Some(self.unauthorized(
                "Access token validation failure. Invalid audience.",
                invalid_token_challenge("The access token is invalid"),
            ));
        };
        if lifetime.is_some_and(|calls| *uses >= calls) {
            return Some(self.unauthorized(
                "Lifetime validation failed, the token is expired.",
                invalid_token_challenge("The access token has expired"),
            ));
        }
        *uses += 1;
        None
    }

    fn unauthorized(&mut self, message: &str, challenge: String) -> Response {
        self.errors_answered += 1;
        let n = self.errors_answered;
        let mut response = json(
            StatusCode::UNAUTHORIZED,
            json!({"error": {
                "code": "InvalidAuthenticationToken",
                "message": message,
                "innerError": {
                    "request-id": format!("{n:08x}-6c1f-4b2d-9e1a-{n:012x}"),
                    "client-request-id": format!("{n:08x}-6c1f-4b2d-9e1a-{n:012x}"),
                },
            }}),
        );
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert("www-authenticate", v);
        }
        response
    }

    /// skuId → granting group (None = direct) for every license the user holds.
    pub(crate) fn effective(&self, user: &GraphUser) -> BTreeMap<String, Vec<Option<String>>> {
        let mut out: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
        for sku in &user.direct {
            out.entry(sku.clone()).or_default().push(None);
        }
        for group in self
            .groups
            .values()
            .filter(|g| g.members.contains(&user.id) || g.unprocessed_leavers.contains(&user.id))
        {
            for sku in &group.skus {
                out.entry(sku.clone())
                    .or_default()
                    .push(Some(group.id.clone()));
            }
        }
        out
    }

    fn user(&mut self, upn: &str) -> Option<GraphUser> {
        let key = upn.to_ascii_lowercase();
        if !self.users.contains_key(&key) && self.lenient {
            let id = format!("u-{}", key.split('@').next().unwrap_or(&key));
            let direct = self.skus.keys().cloned().collect();
            self.users.insert(
                key.clone(),
                GraphUser {
                    id,
                    upn: upn.to_owned(),
                    direct,
                },
            );
        }
        self.users.get(&key).cloned()
    }

    fn user_json(&self, user: &GraphUser) -> Value {
        let states: Vec<Value> = self
            .effective(user)
            .into_iter()
            .flat_map(|(sku, sources)| {
                sources.into_iter().map(move |group| {
                    json!({
                        "skuId": sku,
                        "assignedByGroup": group,
                        "disabledPlans": [],
                        "state": "Active",
                        "error": "None",
                    })
                })
            })
            .collect();
        json!({
            "id": user.id,
            "userPrincipalName": user.upn,
            "licenseAssignmentStates": states,
        })
    }
}

pub(crate) fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    json(status, json!({"error": {"code": code, "message": message}}))
}

/// Graph's challenge for a token it refuses (RFC 6750 `invalid_token`).
fn invalid_token_challenge(description: &str) -> String {
    format!(
        r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000", error="invalid_token", error_description="{description}""#
    )
}

/// Records the call and applies auth and throttling; `Some` is the answer to send instead.
pub(crate) fn admit(state: &GraphState, headers: &HeaderMap, what: String) -> Option<Response> {
    let mut d = lock(&state.0);
    d.requests.push(what);
    if let Some(refused) = d.refuse_token(bearer(headers)) {
        return Some(refused);
    }
    if d.throttle_remaining > 0 {
        d.throttle_remaining -= 1;
        let mut response = graph_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Too many requests; retry after the indicated time.",
        );
        if let Ok(v) = HeaderValue::from_str(&d.retry_after_secs.to_string()) {
            response.headers_mut().insert("retry-after", v);
        }
        return Some(response);
    }
    None
}

async fn token(
    State(state): State<GraphState>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut d = lock(&state.0);
    d.token_requests += 1;
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if tenant != d.tenant {
        return json(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_request", "error_description": format!("Tenant '{tenant}' not found.")}),
        );
    }
    if field("grant_type") != "client_credentials" {
        return json(
            StatusCode::BAD_REQUEST,
            json!({"error": "unsupported_grant_type", "error_description": "grant_type must be client_credentials"}),
        );
    }
    if field("client_id") != d.client_id || field("client_secret") != d.client_secret {
        return json(
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_client", "error_description": "Invalid client secret provided."}),
        );
    }
    let token = format!("fake-graph-token-{}", d.tokens.len() + 1);
    d.tokens.insert(token.clone(), 0);
    json(
        StatusCode::OK,
        json!({"token_type": "Bearer", "expires_in": 3599, "access_token": token}),
    )
}

async fn assign_license(
    State(state): State<GraphState>,
    Path(upn): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = admit(
        &state,
        &headers,
        format!("POST /v1.0/users/{upn}/assignLicense"),
    ) {
        return r;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return graph_error(StatusCode::BAD_REQUEST, "BadRequest", "Invalid JSON body.");
    };
    let ids = |key: &str| -> Vec<String> {
        body.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (add, remove) = (ids("addLicenses"), ids("removeLicenses"));
    let mut d = lock(&state.0);
    let Some(user) = d.user(&upn) else {
        return graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!("Resource '{upn}' does not exist or one of its queried reference-property objects are not present."),
        );
    };
    let held = d.effective(&user);
    for sku in &remove {
        if !d.skus.contains_key(sku) {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                &format!("License {sku} does not correspond to a valid company License."),
            );
        }
        if user.direct.contains(sku) {
            continue;
        }
        if held.contains_key(sku) {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                INHERITED_MESSAGE,
            );
        }
        return graph_error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "User does not have a corresponding license.",
        );
    }
    let key = upn.to_ascii_lowercase();
    if let Some(u) = d.users.get_mut(&key) {
        for sku in &remove {
            u.direct.remove(sku);
        }
        u.direct.extend(add);
    }
    let user = d.users.get(&key).cloned().unwrap_or(user);
    json(StatusCode::OK, d.user_json(&user))
}

async fn get_user(
    State(state): State<GraphState>,
    Path(upn): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = admit(&state, &headers, format!("GET /v1.0/users/{upn}")) {
        return r;
    }
    let mut d = lock(&state.0);
    match d.user(&upn) {
        Some(user) => json(StatusCode::OK, d.user_json(&user)),
        None => graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!("Resource '{upn}' does not exist."),
        ),
    }
}

async fn license_details(
    State(state): State<GraphState>,
    Path(upn): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = admit(
        &state,
        &headers,
        format!("GET /v1.0/users/{upn}/licenseDetails"),
    ) {
        return r;
    }
    let mut d = lock(&state.0);
    let Some(user) = d.user(&upn) else {
        return graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!("Resource '{upn}' does not exist."),
        );
    };
    let value: Vec<Value> = d
        .effective(&user)
        .keys()
        .map(|sku| {
            json!({
                "id": format!("lic-{}-{sku}", user.id),
                "skuId": sku,
                "skuPartNumber": d.skus.get(sku).cloned().unwrap_or_default(),
                "servicePlans": [],
            })
        })
        .collect();
    json(StatusCode::OK, json!({ "value": value }))
}

async fn get_group(
    State(state): State<GraphState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = admit(&state, &headers, format!("GET /v1.0/groups/{id}")) {
        return r;
    }
    let d = lock(&state.0);
    match d.groups.get(&id) {
        Some(g) => json(
            StatusCode::OK,
            json!({
                "id": g.id,
                "displayName": g.name,
                "assignedLicenses": g.skus.iter().map(|s| json!({"skuId": s, "disabledPlans": []})).collect::<Vec<_>>(),
            }),
        ),
        None => graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!("Resource '{id}' does not exist."),
        ),
    }
}

async fn remove_member(
    State(state): State<GraphState>,
    Path((group, user)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = admit(
        &state,
        &headers,
        format!("DELETE /v1.0/groups/{group}/members/{user}/$ref"),
    ) {
        return r;
    }
    let mut d = lock(&state.0);
    let removed = d
        .groups
        .get_mut(&group)
        .is_some_and(|g| g.members.remove(&user));
    match removed {
        true => StatusCode::NO_CONTENT.into_response(),
        false => graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!("Resource '{user}' does not exist or one of its queried reference-property objects are not present."),
        ),
    }
}

/// Body of `POST /_fake/reassign`.
#[derive(Deserialize)]
struct Reassign {
    upn: String,
    sku: String,
}

async fn fake_reassign(State(state): State<GraphState>, Json(body): Json<Reassign>) -> Response {
    if state.reassign_license(&body.upn, &body.sku) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!(
                "no user '{}' or no SKU '{}' in this tenant",
                body.upn, body.sku
            ),
        )
    }
}

pub fn router(state: GraphState) -> Router {
    Router::new()
        .route("/_fake/reassign", post(fake_reassign))
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route(
            "/v1.0/subscribedSkus",
            get(crate::graph_usage::subscribed_skus),
        )
        .route("/v1.0/users", get(crate::graph_usage::list_users))
        .route("/v1.0/reports/{report}", get(crate::graph_usage::report))
        .route(
            "/_fake/report-download/{id}",
            get(crate::graph_usage::report_download),
        )
        .route("/v1.0/users/{upn}", get(get_user))
        .route("/v1.0/users/{upn}/assignLicense", post(assign_license))
        .route("/v1.0/users/{upn}/licenseDetails", get(license_details))
        .route("/v1.0/groups/{id}", get(get_group))
        .route(
            "/v1.0/groups/{id}/members/{user}/$ref",
            delete(remove_member),
        )
        .with_state(state)
}
