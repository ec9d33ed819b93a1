//! A fake client software distribution (CSD) service with an Intune-style API.
//!
//! | route | answer |
//! |---|---|
//! | `GET /deviceAppManagement/mobileApps?$filter=displayName eq 'X'` | `{"value": [{"id", "displayName"}]}` |
//! | `POST /deviceAppManagement/mobileApps/{id}/assignments` | 201 with the assignment; 409 if that uninstall is already pending; 404 unknown app or device |
//! | `GET /deviceAppManagement/mobileApps/{id}/deviceStatuses?$filter=deviceName eq 'D'` | `{"value": [{"deviceName", "installState"}]}` |
//!
//! The inventory a usage connector reads (`deviceManagement/detectedApps` and their managed
//! devices) is in [`crate::csd_inventory`].
//!
//! | `POST /_fake/reinstall` `{"app", "device"}` | 204 after [`CsdState::reinstall`]; 404 unknown app (no token: a demo control) |
//! | `POST /_fake/complete-uninstall` `{"app", "device"}` | 204 after [`CsdState::complete_uninstall`]; 404 nothing pending |
//!
//! An accepted uninstall is pending until the device checks in. While pending, the device's
//! status still reads `installed` (as Intune's does; it has no "uninstall pending" state). When
//! it completes is up to the test, deterministically:
//!
//! - by default, after [`CsdData::polls_before_gone`] status reads of that device: reads 1 to
//!   K answer `installed`, read K + 1 answers `notInstalled` (K = 0: the first read after the
//!   request already shows it gone; set K with [`CsdState::set_polls_before_gone`]);
//! - with [`CsdState::hold_uninstalls`], reads never complete it: it stays pending until
//!   [`CsdState::complete_uninstall`] (the device checks in now).
//!
//! [`CsdState::is_uninstall_pending`] tells which it is; [`CsdState::reinstall`] puts an app
//! back on a device (it comes back after an uninstall). Bearer token required: the static
//! [`CsdData::token`], or, after [`CsdState::accept_tokens_from`], only tokens the fake Graph's
//! login issued (OAuth mode, with Graph's expiry and its 401 answers).

use crate::graph::GraphState;
use crate::util::{bearer, filter_eq, json, lock};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
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
    /// Status reads do not complete pending uninstalls; only `complete_uninstall` does.
    pub hold_uninstalls: bool,
    /// In OAuth mode, the fake Graph whose login issues the tokens this service accepts.
    pub token_issuer: Option<GraphState>,
    /// Bodies of accepted assignments, in order.
    pub assignments: Vec<Value>,
    /// Unknown apps and devices are created (installed) on first use (the demo).
    pub lenient: bool,
    /// `METHOD path` of every call, in order.
    pub requests: Vec<String>,
    /// The inventory's view of apps, devices and use (see [`crate::csd_inventory`]).
    pub inventory: crate::csd_inventory::Inventory,
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
            hold_uninstalls: false,
            token_issuer: None,
            assignments: Vec::new(),
            lenient: false,
            requests: Vec::new(),
            inventory: crate::csd_inventory::Inventory::default(),
        })))
    }

    pub fn demo() -> CsdState {
        let state = CsdState::new("demo-csd-token");
        lock(&state.0).lenient = true;
        // Visio, Acrobat, Project and AutoCAD on the demo's PCs, with their users and use.
        crate::csd_inventory::seed_demo(&state);
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

    /// An accepted uninstall completes on the status read after `polls` reads of `installed`.
    pub fn set_polls_before_gone(&self, polls: u32) {
        lock(&self.0).polls_before_gone = polls;
    }

    /// With `true`, status reads never complete an uninstall: it stays pending (the device
    /// reads `installed`) until [`complete_uninstall`](Self::complete_uninstall).
    pub fn hold_uninstalls(&self, hold: bool) {
        lock(&self.0).hold_uninstalls = hold;
    }

    /// Whether an accepted uninstall of `app` (its id) on `device` has not completed yet.
    pub fn is_uninstall_pending(&self, app: &str, device: &str) -> bool {
        lock(&self.0)
            .pending
            .contains_key(&(app.to_owned(), device.to_owned()))
    }

    /// The device checks in now: a pending uninstall completes (`notInstalled`). False when
    /// none was pending.
    pub fn complete_uninstall(&self, app: &str, device: &str) -> bool {
        lock(&self.0).complete(app, device)
    }

    /// The app is installed on the device again (someone reinstalled it after the uninstall);
    /// a pending uninstall there is dropped. False when the app is unknown.
    pub fn reinstall(&self, app: &str, device: &str) -> bool {
        let mut d = lock(&self.0);
        d.pending.remove(&(app.to_owned(), device.to_owned()));
        match d.apps.get_mut(app) {
            Some(a) => {
                a.devices.insert(device.to_owned(), "installed".to_owned());
                true
            }
            None => false,
        }
    }

    /// OAuth mode: accept only bearer tokens issued by `graph`'s login (pass the same state
    /// that is served as the fake Graph), refused the way Graph refuses them. The plugin setups
    /// of [`FakeVendors`](crate::FakeVendors) then configure csd-uninstall with `tenant-id`,
    /// `client-id` and `client-secret` instead of `api-token`.
    pub fn accept_tokens_from(&self, graph: &GraphState) {
        lock(&self.0).token_issuer = Some(graph.clone());
    }

    /// The fake Graph whose tokens this service accepts, in OAuth mode.
    pub fn token_issuer(&self) -> Option<GraphState> {
        lock(&self.0).token_issuer.clone()
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
    fn complete(&mut self, app: &str, device: &str) -> bool {
        if self
            .pending
            .remove(&(app.to_owned(), device.to_owned()))
            .is_none()
        {
            return false;
        }
        if let Some(a) = self.apps.get_mut(app) {
            a.devices.insert(device.to_owned(), "notInstalled".into());
        }
        true
    }

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

pub(crate) fn admit(state: &CsdState, headers: &HeaderMap, what: String) -> Option<Response> {
    let issuer = {
        let mut d = lock(&state.0);
        d.requests.push(what);
        d.token_issuer.clone()
    };
    if let Some(graph) = issuer {
        return graph.refuse_token(bearer(headers));
    }
    let d = lock(&state.0);
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
    match d.pending.get(&key).copied() {
        Some(_) if d.hold_uninstalls => {}
        Some(0) => {
            d.complete(&app, &device);
        }
        Some(left) => {
            d.pending.insert(key, left - 1);
        }
        None => {}
    }
    let value: Vec<Value> = d
        .device_state(&app, &device)
        .map(|s| json!({"deviceName": device, "installState": s}))
        .into_iter()
        .collect();
    json(StatusCode::OK, json!({ "value": value }))
}

/// Body of the `/_fake/...` controls.
#[derive(Deserialize)]
struct OnDevice {
    app: String,
    device: String,
}

async fn fake_reinstall(State(state): State<CsdState>, Json(body): Json<OnDevice>) -> Response {
    if state.reinstall(&body.app, &body.device) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        csd_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("app {} not found", body.app),
        )
    }
}

async fn fake_complete(State(state): State<CsdState>, Json(body): Json<OnDevice>) -> Response {
    if state.complete_uninstall(&body.app, &body.device) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        csd_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!(
                "no uninstall of app {} is pending on device {}",
                body.app, body.device
            ),
        )
    }
}

pub fn router(state: CsdState) -> Router {
    Router::new()
        .route("/_fake/reinstall", post(fake_reinstall))
        .route("/_fake/complete-uninstall", post(fake_complete))
        .route(
            "/deviceManagement/detectedApps",
            get(crate::csd_inventory::detected_apps),
        )
        .route(
            "/deviceManagement/detectedApps/{id}/managedDevices",
            get(crate::csd_inventory::managed_devices),
        )
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
