//! A fake SCIM 2.0 service (RFC 7644), served under [`BASE_PATH`].
//!
//! | route | answer |
//! |---|---|
//! | `GET /Users?filter=userName eq "x"` | ListResponse with 0 or 1 user |
//! | `GET /Users/{id}` | the user, or 404 |
//! | `PATCH /Users/{id}` (PatchOp) | 204; `replace active` is applied |
//! | `DELETE /Users/{id}` | 204, or 405 when the service "lacks DELETE" |
//! | `POST /_fake/reactivate` `{"id"}` (at the server root, not under [`BASE_PATH`]) | 204 after [`ScimState::reactivate`]; 404 unknown user (no token: a demo control) |
//!
//! Every SCIM call needs `Authorization: Bearer {token}`, else 401 with a SCIM error.

use crate::util::{bearer, filter_eq, json, lock};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// Where the service root is mounted, as real vendors put SCIM under a versioned path.
pub const BASE_PATH: &str = "/scim/v2";

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[derive(Debug, Clone)]
pub struct ScimUser {
    pub id: String,
    pub user_name: String,
    pub active: bool,
}

#[derive(Debug)]
pub struct ScimData {
    pub token: String,
    pub users: BTreeMap<String, ScimUser>,
    /// Some vendors have no DELETE; false answers it with 405.
    pub allow_delete: bool,
    /// Unknown ids are created (active) on first use (the demo).
    pub lenient: bool,
    /// `METHOD path` of every call, in order.
    pub requests: Vec<String>,
    /// Deleted ids, which leniency must not bring back.
    deleted: BTreeSet<String>,
}

#[derive(Debug, Clone)]
pub struct ScimState(pub Arc<Mutex<ScimData>>);

impl Default for ScimState {
    fn default() -> Self {
        ScimState::new("fake-scim-token")
    }
}

impl ScimState {
    pub fn new(token: &str) -> ScimState {
        ScimState(Arc::new(Mutex::new(ScimData {
            token: token.to_owned(),
            users: BTreeMap::new(),
            allow_delete: true,
            lenient: false,
            requests: Vec::new(),
            deleted: BTreeSet::new(),
        })))
    }

    pub fn demo() -> ScimState {
        let state = ScimState::new("demo-scim-token");
        lock(&state.0).lenient = true;
        state.add_user("u-ann", "ann@demo.example", true);
        state.add_user("u-bob", "bob@demo.example", true);
        state
    }

    /// Lenient fakes create unknown users/apps on first use (the demo); tests turn it off.
    pub fn set_lenient(&self, lenient: bool) {
        lock(&self.0).lenient = lenient;
    }

    pub fn token(&self) -> String {
        lock(&self.0).token.clone()
    }

    pub fn add_user(&self, id: &str, user_name: &str, active: bool) {
        lock(&self.0).users.insert(
            id.to_owned(),
            ScimUser {
                id: id.to_owned(),
                user_name: user_name.to_owned(),
                active,
            },
        );
    }

    pub fn set_allow_delete(&self, allow: bool) {
        lock(&self.0).allow_delete = allow;
    }

    /// A deactivated user is active again (an admin gave the seat back). False when the user
    /// is unknown or deleted: [`add_user`](Self::add_user) provisions a deleted one anew.
    pub fn reactivate(&self, id: &str) -> bool {
        match lock(&self.0).users.get_mut(id) {
            Some(user) => {
                user.active = true;
                true
            }
            None => false,
        }
    }

    /// `Some(active)` for a known user, `None` once deleted or never known.
    pub fn active(&self, id: &str) -> Option<bool> {
        lock(&self.0).users.get(id).map(|u| u.active)
    }

    pub fn requests(&self) -> Vec<String> {
        lock(&self.0).requests.clone()
    }
}

impl ScimData {
    fn user(&mut self, id: &str) -> Option<ScimUser> {
        if !self.users.contains_key(id) && self.lenient && !self.deleted.contains(id) {
            self.users.insert(
                id.to_owned(),
                ScimUser {
                    id: id.to_owned(),
                    user_name: id.to_owned(),
                    active: true,
                },
            );
        }
        self.users.get(id).cloned()
    }
}

fn user_json(u: &ScimUser) -> Value {
    json!({
        "schemas": [USER_SCHEMA],
        "id": u.id,
        "userName": u.user_name,
        "active": u.active,
        "meta": {"resourceType": "User", "location": format!("{BASE_PATH}/Users/{}", u.id)},
    })
}

fn scim_error(status: StatusCode, detail: &str) -> Response {
    json(
        status,
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "detail": detail,
            "status": status.as_u16().to_string(),
        }),
    )
}

fn admit(state: &ScimState, headers: &HeaderMap, what: String) -> Option<Response> {
    let mut d = lock(&state.0);
    d.requests.push(what);
    if bearer(headers) == Some(d.token.as_str()) {
        None
    } else {
        Some(scim_error(
            StatusCode::UNAUTHORIZED,
            "Authorization failure: bearer token invalid.",
        ))
    }
}

fn not_found(id: &str) -> Response {
    scim_error(StatusCode::NOT_FOUND, &format!("Resource {id} not found"))
}

async fn list(
    State(state): State<ScimState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let filter = query.get("filter").cloned().unwrap_or_default();
    if let Some(r) = admit(&state, &headers, format!("GET /Users?filter={filter}")) {
        return r;
    }
    let Some(name) = filter_eq(&filter, "userName") else {
        return scim_error(
            StatusCode::BAD_REQUEST,
            "only `userName eq \"...\"` filters are supported",
        );
    };
    let d = lock(&state.0);
    let found: Vec<Value> = d
        .users
        .values()
        .filter(|u| u.user_name.eq_ignore_ascii_case(&name))
        .map(user_json)
        .collect();
    json(
        StatusCode::OK,
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": found.len(),
            "itemsPerPage": found.len(),
            "startIndex": 1,
            "Resources": found,
        }),
    )
}

async fn get_user(
    State(state): State<ScimState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = admit(&state, &headers, format!("GET /Users/{id}")) {
        return r;
    }
    match lock(&state.0).user(&id) {
        Some(u) => json(StatusCode::OK, user_json(&u)),
        None => not_found(&id),
    }
}

async fn patch_user(
    State(state): State<ScimState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = admit(&state, &headers, format!("PATCH /Users/{id}")) {
        return r;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return scim_error(StatusCode::BAD_REQUEST, "invalid JSON");
    };
    let is_patch = body
        .get("schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|v| v.as_str() == Some(PATCH_SCHEMA)));
    let Some(ops) = body
        .get("Operations")
        .and_then(Value::as_array)
        .filter(|_| is_patch)
    else {
        return scim_error(
            StatusCode::BAD_REQUEST,
            "expected a PatchOp with Operations",
        );
    };
    let mut d = lock(&state.0);
    if d.user(&id).is_none() {
        return not_found(&id);
    }
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or_default();
        if !kind.eq_ignore_ascii_case("replace") {
            return scim_error(StatusCode::BAD_REQUEST, &format!("unsupported op `{kind}`"));
        }
        let active = match op.get("path").and_then(Value::as_str) {
            Some("active") => op.get("value").and_then(Value::as_bool),
            None => op.pointer("/value/active").and_then(Value::as_bool),
            Some(other) => {
                return scim_error(
                    StatusCode::BAD_REQUEST,
                    &format!("unsupported path `{other}`"),
                )
            }
        };
        let Some(active) = active else {
            return scim_error(StatusCode::BAD_REQUEST, "active must be a boolean");
        };
        if let Some(u) = d.users.get_mut(&id) {
            u.active = active;
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn delete_user(
    State(state): State<ScimState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = admit(&state, &headers, format!("DELETE /Users/{id}")) {
        return r;
    }
    let mut d = lock(&state.0);
    if !d.allow_delete {
        return scim_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "DELETE is not supported; deactivate instead",
        );
    }
    if d.user(&id).is_none() {
        return not_found(&id);
    }
    d.users.remove(&id);
    d.deleted.insert(id);
    StatusCode::NO_CONTENT.into_response()
}

/// Body of `POST /_fake/reactivate`.
#[derive(Deserialize)]
struct Reactivate {
    id: String,
}

async fn fake_reactivate(State(state): State<ScimState>, Json(body): Json<Reactivate>) -> Response {
    if state.reactivate(&body.id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        not_found(&body.id)
    }
}

pub fn router(state: ScimState) -> Router {
    let controls = Router::new()
        .route("/_fake/reactivate", post(fake_reactivate))
        .with_state(state.clone());
    let api = Router::new()
        .route("/Users", get(list))
        .route(
            "/Users/{id}",
            get(get_user).patch(patch_user).delete(delete_user),
        )
        .with_state(state);
    Router::new().nest(BASE_PATH, api).merge(controls)
}
