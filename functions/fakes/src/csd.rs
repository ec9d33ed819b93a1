//! A fake client software distribution (CSD) service with an Intune-style API.
//!
//! | route | answer |
//! |---|---|
//! | `GET /deviceAppManagement/mobileApps?$filter=displayName eq 'X'` | `{"value": [{"id", "displayName"}]}` |
//! | `POST /deviceAppManagement/mobileApps/{id}/assignments` | 201 with the assignment; 409 if that uninstall is already pending; 404 unknown app or device |
//! | `GET /deviceAppManagement/mobileApps/{id}/deviceStatuses?$filter=deviceName eq 'D'` | `{"value": [{"deviceName", "installState"}]}` |
//!
//! An accepted uninstall completes after [`CsdData::polls_before_gone`] status reads of that
//! device, as a real device does when it next checks in. Bearer token required.

use crate::util::{bearer, filter_eq, json, lock};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct CsdApp {
    pub id: String,
    pub name: String,
    /// deviceName → installState (`installed`, `notInstalled`, ...).
    pub devices: BTreeMap<String, String>,
}

#[derive(Debug)]
pub struct CsdData {
    pub token: String,
    pub apps: BTreeMap<String, CsdApp>,
    /// Status reads of a device that still show `installed` after an uninstall is accepted.
    pub polls_before_gone: u32,
    /// (app id, device) → status reads left before the uninstall completes.
    pub pending: BTreeMap<(String, String), u32>,
    /// Bodies of accepted assignments, in order.
    pub assignments: Vec<Value>,
    /// Unknown apps and devices are created (installed) on first use (the demo).
    pub lenient: bool,
    /// `METHOD path` of every call, in order.
    pub requests: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct CsdState(pub Arc<Mutex<CsdData>>);

impl Default for CsdState {
    fn default() -> Self {
        CsdState::new("fake-csd-token")
    }
}

impl CsdState {
    pub fn new(token: &str) -> CsdState {
        CsdState(Arc::new(Mutex::new(CsdData {
            token: token.to_owned(),
            apps: BTreeMap::new(),
            polls_before_gone: 0,
            pending: BTreeMap::new(),
            assignments: Vec::new(),
            lenient: false,
            requests: Vec::new(),
        })))
    }

    pub fn demo() -> CsdState {
        let state = CsdState::new("demo-csd-token");
        lock(&state.0).lenient = true;
        state.add_app(
            "app-visio",
            "Microsoft Visio Professional",
            &["PC-ANN-01", "PC-BOB-02"],
        );
        state.add_app("app-acrobat", "Adobe Acrobat Pro", &["PC-ANN-01"]);
        state.add_app(
            "app-project",
            "Microsoft Project Professional",
            &["PC-CEM-03"],
        );
        state
    }

    /// Lenient fakes create unknown users/apps on first use (the demo); tests turn it off.
    pub fn set_lenient(&self, lenient: bool) {
        lock(&self.0).lenient = lenient;
    }

    pub fn token(&self) -> String {
        lock(&self.0).token.clone()
    }

    /// An app installed on `devices`.
    pub fn add_app(&self, id: &str, name: &str, devices: &[&str]) {
        lock(&self.0).apps.insert(
            id.to_owned(),
            CsdApp {
                id: id.to_owned(),
                name: name.to_owned(),
                devices: devices
                    .iter()
                    .map(|d| ((*d).to_owned(), "installed".to_owned()))
                    .collect(),
            },
        );
    }

    pub fn set_polls_before_gone(&self, polls: u32) {
        lock(&self.0).polls_before_gone = polls;
    }

    /// The device's install state for the app, as the status endpoint would report it now.
    pub fn install_state(&self, app: &str, device: &str) -> Option<String> {
        lock(&self.0).apps.get(app)?.devices.get(device).cloned()
    }

    pub fn assignments(&self) -> Vec<Value> {
        lock(&self.0).assignments.clone()
    }

    pub fn requests(&self) -> Vec<String> {
        lock(&self.0).requests.clone()
    }
}

impl CsdData {
    fn app_by_name(&mut self, name: &str) -> Option<CsdApp> {
        let found = self
            .apps
            .values()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .cloned();
        if found.is_none() && self.lenient {
            let id = format!("app-{}", self.apps.len() + 1);
            let app = CsdApp {
                id: id.clone(),
                name: name.to_owned(),
                devices: BTreeMap::new(),
            };
            self.apps.insert(id, app.clone());
            return Some(app);
        }
        found
    }

    fn device_state(&mut self, app: &str, device: &str) -> Option<String> {
        let lenient = self.lenient;
        let entry = self.apps.get_mut(app)?;
        if !entry.devices.contains_key(device) && lenient {
            entry
                .devices
                .insert(device.to_owned(), "installed".to_owned());
        }
        entry.devices.get(device).cloned()
    }
}

fn csd_error(status: StatusCode, code: &str, message: &str) -> Response {
    json(status, json!({"error": {"code": code, "message": message}}))
}

fn admit(state: &CsdState, headers: &HeaderMap, what: String) -> Option<Response> {
    let mut d = lock(&state.0);
    d.requests.push(what);
    if bearer(headers) == Some(d.token.as_str()) {
        None
    } else {
        Some(csd_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "bearer token invalid",
        ))
    }
}

async fn list_apps(
    State(state): State<CsdState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let filter = query.get("$filter").cloned().unwrap_or_default();
    if let Some(r) = admit(
        &state,
        &headers,
        format!("GET /deviceAppManagement/mobileApps?$filter={filter}"),
    ) {
        return r;
    }
    let Some(name) = filter_eq(&filter, "displayName") else {
        return csd_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "only displayName eq '...' filters are supported",
        );
    };
    let mut d = lock(&state.0);
    let value: Vec<Value> = d
        .app_by_name(&name)
        .map(|a| json!({"id": a.id, "displayName": a.name}))
        .into_iter()
        .collect();
    json(StatusCode::OK, json!({ "value": value }))
}

async fn assign(
    State(state): State<CsdState>,
    Path(app): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = admit(
        &state,
        &headers,
        format!("POST /deviceAppManagement/mobileApps/{app}/assignments"),
    ) {
        return r;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return csd_error(StatusCode::BAD_REQUEST, "BadRequest", "invalid JSON");
    };
    if body.get("intent").and_then(Value::as_str) != Some("uninstall") {
        return csd_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "this service only accepts intent uninstall",
        );
    }
    let Some(device) = body.pointer("/target/deviceName").and_then(Value::as_str) else {
        return csd_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "target.deviceName is required",
        );
    };
    let mut d = lock(&state.0);
    if !d.apps.contains_key(&app) {
        return csd_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("app {app} not found"),
        );
    }
    if d.device_state(&app, device).is_none() {
        return csd_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("device {device} has no status for app {app}"),
        );
    }
    let key = (app.clone(), device.to_owned());
    if d.pending.contains_key(&key) {
        return csd_error(
            StatusCode::CONFLICT,
            "Conflict",
            "an uninstall of this app is already pending on this device",
        );
    }
    let polls = d.polls_before_gone;
    d.pending.insert(key, polls);
    let id = format!("asg-{}", d.assignments.len() + 1);
    let mut stored = body.clone();
    if let Some(obj) = stored.as_object_mut() {
        obj.insert("id".into(), json!(id));
        obj.insert("appId".into(), json!(app));
    }
    d.assignments.push(stored.clone());
    json(StatusCode::CREATED, stored)
}

async fn device_statuses(
    State(state): State<CsdState>,
    Path(app): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let filter = query.get("$filter").cloned().unwrap_or_default();
    if let Some(r) = admit(
        &state,
        &headers,
        format!("GET /deviceAppManagement/mobileApps/{app}/deviceStatuses?$filter={filter}"),
    ) {
        return r;
    }
    let Some(device) = filter_eq(&filter, "deviceName") else {
        return csd_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "only deviceName eq '...' filters are supported",
        );
    };
    let mut d = lock(&state.0);
    if !d.apps.contains_key(&app) {
        return csd_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("app {app} not found"),
        );
    }
    let key = (app.clone(), device.clone());
    if let Some(left) = d.pending.get(&key).copied() {
        if left == 0 {
            d.pending.remove(&key);
            if let Some(a) = d.apps.get_mut(&app) {
                a.devices.insert(device.clone(), "notInstalled".into());
            }
        } else {
            d.pending.insert(key, left - 1);
        }
    }
    let value: Vec<Value> = d
        .device_state(&app, &device)
        .map(|s| json!({"deviceName": device, "installState": s}))
        .into_iter()
        .collect();
    json(StatusCode::OK, json!({ "value": value }))
}

pub fn router(state: CsdState) -> Router {
    Router::new()
        .route("/deviceAppManagement/mobileApps", get(list_apps))
        .route(
            "/deviceAppManagement/mobileApps/{app}/assignments",
            post(assign),
        )
        .route(
            "/deviceAppManagement/mobileApps/{app}/deviceStatuses",
            get(device_statuses),
        )
        .with_state(state)
}
