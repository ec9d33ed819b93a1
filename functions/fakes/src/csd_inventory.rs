//! The fake CSD service's inventory, as a usage connector (`csd-inventory`) reads it: the apps
//! detected on managed devices and, for each, the devices it is installed on with their primary
//! user and (where the service meters it) when the app was last used there.
//!
//! | route | answer |
//! |---|---|
//! | `GET /deviceManagement/detectedApps?$top=N` | `{"value": [{"id", "displayName", "version", "publisher", "deviceCount", "platform"}], "@odata.nextLink"}` |
//! | `GET /deviceManagement/detectedApps/{id}/managedDevices?$top=N` | `{"value": [{"id", "deviceName", "userId", "userPrincipalName", "emailAddress", "userDisplayName", "lastSyncDateTime", "lastUsedDateTime"}], "@odata.nextLink"}`; 404 unknown app |
//!
//! Pages hold at most `min(N, page_size)` entries ([`CsdState::set_inventory_page_size`]). Only
//! devices where the app's install state is `installed` are listed, so an uninstall the
//! connector ran before shows in the next collection. Same bearer token as the other routes.

use crate::csd::{admit, CsdState};
use crate::dates::time_days_ago;
use crate::util::{json, lock};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// A device's primary user, as the service knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceUser {
    pub id: String,
    pub upn: String,
    pub name: String,
}

/// What the inventory adds to the apps and their install states.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// App id → (publisher, version); without an entry the publisher is the name's first word.
    pub details: BTreeMap<String, (Option<String>, String)>,
    /// Device name → primary user; a device without one has no user.
    pub users: BTreeMap<String, DeviceUser>,
    /// (app id, device) → the app was last used this many days ago; no entry: not metered.
    pub last_used: BTreeMap<(String, String), u32>,
    /// Most entries per page.
    pub page_size: usize,
}

impl Default for Inventory {
    fn default() -> Self {
        Inventory {
            details: BTreeMap::new(),
            users: BTreeMap::new(),
            last_used: BTreeMap::new(),
            page_size: 50,
        }
    }
}

impl CsdState {
    /// The app's publisher (`None`: the inventory knows none) and version.
    pub fn set_app_details(&self, app: &str, publisher: Option<&str>, version: &str) {
        lock(&self.0).inventory.details.insert(
            app.to_owned(),
            (publisher.map(str::to_owned), version.to_owned()),
        );
    }

    /// The device's primary user.
    pub fn set_device_user(&self, device: &str, id: &str, upn: &str, name: &str) {
        lock(&self.0).inventory.users.insert(
            device.to_owned(),
            DeviceUser {
                id: id.to_owned(),
                upn: upn.to_owned(),
                name: name.to_owned(),
            },
        );
    }

    /// The app was last used on the device this many days ago.
    pub fn set_last_used(&self, app: &str, device: &str, days_ago: u32) {
        lock(&self.0)
            .inventory
            .last_used
            .insert((app.to_owned(), device.to_owned()), days_ago);
    }

    /// At most this many entries per inventory page, whatever `$top` asks.
    pub fn set_inventory_page_size(&self, entries: usize) {
        lock(&self.0).inventory.page_size = entries.max(1);
    }

    /// Every (app id, device) where the app is installed, sorted: what a connector that
    /// reports one row per device and install must find (devices with a user only when
    /// `with_user_only`).
    pub fn installs(&self, with_user_only: bool) -> Vec<(String, String)> {
        let d = lock(&self.0);
        let mut out: Vec<(String, String)> = d
            .apps
            .values()
            .flat_map(|a| {
                a.devices
                    .iter()
                    .filter(|(_, state)| *state == "installed")
                    .map(|(dev, _)| (a.id.clone(), dev.clone()))
                    .collect::<Vec<_>>()
            })
            .filter(|(_, dev)| !with_user_only || d.inventory.users.contains_key(dev))
            .collect();
        out.sort();
        out
    }
}

/// The sample inventory's devices, their users and how recently each app was used (the demo
/// organisation's is [`crate::organisation::csd`]).
pub(crate) fn seed_demo(state: &CsdState) {
    for (device, id, name) in [
        ("PC-ANN-01", "u-ann", "Ann Archer"),
        ("PC-BOB-02", "u-bob", "Bob Baker"),
        ("PC-CEM-03", "u-cem", "Cem Candan"),
        ("PC-DEE-04", "u-dee", "Dee Dalton"),
        ("PC-EVE-05", "u-eve", "Eve Ellis"),
    ] {
        let upn = format!("{}@demo.example", id.trim_start_matches("u-"));
        state.set_device_user(device, id, &upn, name);
    }
    state.add_app(
        "app-visio",
        "Microsoft Visio Professional",
        &["PC-ANN-01", "PC-BOB-02", "PC-EVE-05"],
    );
    state.add_app(
        "app-acrobat",
        "Adobe Acrobat Pro",
        &["PC-ANN-01", "PC-DEE-04", "PC-EVE-05"],
    );
    state.add_app(
        "app-project",
        "Microsoft Project Professional",
        &["PC-CEM-03"],
    );
    state.add_app("app-autocad", "AutoCAD", &["PC-BOB-02", "KIOSK-LOBBY"]);
    state.set_app_details("app-visio", Some("Microsoft"), "16.0.17928");
    state.set_app_details("app-acrobat", Some("Adobe"), "24.002.20965");
    state.set_app_details("app-project", Some("Microsoft"), "16.0.17928");
    state.set_app_details("app-autocad", Some("Autodesk"), "2025.1");
    for (app, device, days) in [
        ("app-visio", "PC-ANN-01", 3),
        ("app-visio", "PC-BOB-02", 140),
        ("app-visio", "PC-EVE-05", 95),
        ("app-acrobat", "PC-ANN-01", 1),
        ("app-acrobat", "PC-DEE-04", 210),
        ("app-project", "PC-CEM-03", 400),
        ("app-autocad", "PC-BOB-02", 12),
    ] {
        state.set_last_used(app, device, days);
    }
}

fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// `$top` and `$skiptoken` of a listing: (asked, served, skip); `Err` says what is wrong.
fn paging(
    query: &HashMap<String, String>,
    max: usize,
) -> Result<(usize, usize, usize), &'static str> {
    let top = match query.get("$top").map(|t| t.parse::<usize>()) {
        None => 50,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => return Err("$top must be a positive number"),
    };
    let skip = match query.get("$skiptoken").map(|t| t.parse::<usize>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return Err("invalid $skiptoken"),
    };
    Ok((top, top.min(max), skip))
}

fn bad_request(message: &str) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        json!({"error": {"code": "BadRequest", "message": message}}),
    )
}

fn next_link(headers: &HeaderMap, path: &str, top: usize, next: usize) -> String {
    let mut link = format!("{}{path}?", origin(headers));
    let _ = write!(link, "$top={top}&$skiptoken={next}");
    link
}

pub(crate) async fn detected_apps(
    State(state): State<CsdState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = admit(
        &state,
        &headers,
        "GET /deviceManagement/detectedApps".into(),
    ) {
        return r;
    }
    let d = lock(&state.0);
    let (top, size, skip) = match paging(&query, d.inventory.page_size) {
        Ok(p) => p,
        Err(why) => return bad_request(why),
    };
    let value: Vec<Value> = d
        .apps
        .values()
        .skip(skip)
        .take(size)
        .map(|a| {
            let (publisher, version) =
                d.inventory.details.get(&a.id).cloned().unwrap_or_else(|| {
                    (
                        a.name.split_whitespace().next().map(str::to_owned),
                        String::new(),
                    )
                });
            let count = a.devices.values().filter(|s| *s == "installed").count();
            json!({
                "id": a.id,
                "displayName": a.name,
                "version": version,
                "publisher": publisher,
                "deviceCount": count,
                "platform": "windows",
            })
        })
        .collect();
    let mut body = json!({ "value": value });
    if skip + size < d.apps.len() {
        body["@odata.nextLink"] = json!(next_link(
            &headers,
            "/deviceManagement/detectedApps",
            top,
            skip + size
        ));
    }
    json(StatusCode::OK, body)
}

pub(crate) async fn managed_devices(
    State(state): State<CsdState>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/deviceManagement/detectedApps/{id}/managedDevices");
    if let Some(r) = admit(&state, &headers, format!("GET {path}")) {
        return r;
    }
    let d = lock(&state.0);
    let (top, size, skip) = match paging(&query, d.inventory.page_size) {
        Ok(p) => p,
        Err(why) => return bad_request(why),
    };
    let Some(app) = d.apps.get(&id) else {
        return json(
            StatusCode::NOT_FOUND,
            json!({"error": {"code": "ResourceNotFound", "message": format!("detectedApp '{id}' not found")}}),
        );
    };
    let installed: Vec<&String> = app
        .devices
        .iter()
        .filter(|(_, s)| *s == "installed")
        .map(|(dev, _)| dev)
        .collect();
    let value: Vec<Value> = installed
        .iter()
        .skip(skip)
        .take(size)
        .map(|dev| {
            let user = d.inventory.users.get(*dev);
            let last_used = d
                .inventory
                .last_used
                .get(&(id.clone(), (*dev).clone()))
                .map(|days| time_days_ago(*days));
            json!({
                "id": format!("md-{dev}"),
                "deviceName": dev,
                "userId": user.map_or("", |u| u.id.as_str()),
                "userPrincipalName": user.map_or("", |u| u.upn.as_str()),
                "emailAddress": user.map_or("", |u| u.upn.as_str()),
                "userDisplayName": user.map_or("", |u| u.name.as_str()),
                "lastSyncDateTime": time_days_ago(0),
                "lastUsedDateTime": last_used,
            })
        })
        .collect();
    let mut body = json!({ "value": value });
    if skip + size < installed.len() {
        body["@odata.nextLink"] = json!(next_link(&headers, &path, top, skip + size));
    }
    json(StatusCode::OK, body)
}
