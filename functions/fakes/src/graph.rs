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
//!
//! [`GraphState::throttle_next`] makes the next calls answer 429 with `Retry-After`.

use crate::util::{bearer, json, lock};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Form, Router};
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
    tokens: BTreeSet<String>,
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
            tokens: BTreeSet::new(),
        })))
    }

    /// The demo tenant: lenient, plus users showing each path (direct, inherited from a
    /// single-license group, inherited from a group that grants more).
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
            },
        );
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
}

impl GraphData {
    /// skuId → granting group (None = direct) for every license the user holds.
    fn effective(&self, user: &GraphUser) -> BTreeMap<String, Vec<Option<String>>> {
        let mut out: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
        for sku in &user.direct {
            out.entry(sku.clone()).or_default().push(None);
        }
        for group in self
            .groups
            .values()
            .filter(|g| g.members.contains(&user.id))
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

fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    json(status, json!({"error": {"code": code, "message": message}}))
}

/// Records the call and applies auth and throttling; `Some` is the answer to send instead.
fn admit(state: &GraphState, headers: &HeaderMap, what: String) -> Option<Response> {
    let mut d = lock(&state.0);
    d.requests.push(what);
    let authorised = bearer(headers).is_some_and(|t| d.tokens.contains(t));
    if !authorised {
        return Some(graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token is empty or invalid.",
        ));
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
    d.tokens.insert(token.clone());
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

pub fn router(state: GraphState) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
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
