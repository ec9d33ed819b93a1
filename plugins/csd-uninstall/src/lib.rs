//! `csd-uninstall`: asks a client software distribution (CSD) service to uninstall a product
//! from one device, Intune-style: an app assignment with `intent: uninstall`.
//!
//! The uninstall happens later, when the device next checks in, so `reclaim` answers `pending`
//! and the workflow calls `verify` until the device reports the app gone. The exact requests
//! are listed in `plugins/README.md`.

use reclaim_plugin_sdk::error::permanent;
use reclaim_plugin_sdk::http::{Request as Http, Response};
use reclaim_plugin_sdk::url::{query_value, segment};
use reclaim_plugin_sdk::{
    all_justifications, config, export, log, oauth, requirement, AppliesTo, Guest, Outcome,
    PluginError, PluginInfo, Presence, Request,
};
use serde::Deserialize;
use serde_json::json;

const DEFAULT_POLL_SECS: u32 = 600;

struct CsdUninstall;

impl Guest for CsdUninstall {
    fn describe() -> PluginInfo {
        PluginInfo {
            id: "csd-uninstall".to_owned(),
            name: "Client software distribution uninstall".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            vendor: "Reclaim".to_owned(),
            applies_to: vec![AppliesTo::InstalledSoftware],
            justifications: all_justifications(),
            config_keys: vec![
                requirement("base", "CSD API root; requests go to {base}/deviceAppManagement/...", true),
                requirement("poll-after-secs", "seconds before the workflow checks again, default 600", false),
                requirement("tenant-id", "set to use an OAuth client-credentials token instead of api-token", false),
                requirement("client-id", "OAuth client id (with tenant-id)", false),
                requirement("login-base", "OAuth identity endpoint (with tenant-id), default https://login.microsoftonline.com", false),
                requirement("scope", "OAuth scope (with tenant-id), default https://graph.microsoft.com/.default", false),
            ],
            secrets: vec![
                requirement("api-token", "bearer token for the CSD API (unless tenant-id is set)", false),
                requirement("client-secret", "OAuth client secret (with tenant-id)", false),
            ],
        }
    }

    fn reclaim(req: Request) -> Result<Outcome, PluginError> {
        let device = device(&req)?;
        let csd = Csd::connect()?;
        let Some(app) = csd.find_app(&req)? else {
            return Err(permanent(format!(
                "{} is not managed by the distribution service; route it to manual-task",
                req.software.product
            )));
        };
        log::info(&format!(
            "uninstall {} ({}) from {device} (key {}, dry run {})",
            app.label(),
            app.id,
            req.idempotency_key,
            req.dry_run
        ));
        if csd.install_state(&app.id, device)? == Presence::Absent {
            return Ok(Outcome::AlreadyAbsent);
        }
        if req.dry_run {
            return Ok(Outcome::Removed(format!(
                "dry run: would POST {}/deviceAppManagement/mobileApps/{}/assignments with intent uninstall for device {device}",
                csd.base, app.id
            )));
        }
        let response = csd.send(
            Http::post(csd.url(&format!("/mobileApps/{}/assignments", segment(&app.id))))
                .header("idempotency-key", req.idempotency_key.clone())
                .json(&json!({
                    "@odata.type": "#microsoft.graph.mobileAppAssignment",
                    "intent": "uninstall",
                    "target": {
                        "@odata.type": "#microsoft.graph.deviceAssignmentTarget",
                        "deviceName": device,
                    },
                })),
        )?;
        match response.status {
            // 409: this uninstall was already requested (a retry of the same effect).
            200..=299 | 409 => Ok(Outcome::Pending(config::u32_or(
                "poll-after-secs",
                DEFAULT_POLL_SECS,
            )?)),
            404 => Err(permanent(format!(
                "the distribution service does not know app {} or device {device}: {}",
                app.id,
                response.vendor_message().unwrap_or_default()
            ))),
            _ => Err(response.error("requesting the uninstall")),
        }
    }

    fn verify(req: Request) -> Result<Presence, PluginError> {
        let device = device(&req)?;
        let csd = Csd::connect()?;
        match csd.find_app(&req)? {
            None => Ok(Presence::Unknown),
            Some(app) => csd.install_state(&app.id, device),
        }
    }
}

fn device(req: &Request) -> Result<&str, PluginError> {
    req.device
        .as_deref()
        .filter(|d| !d.is_empty())
        .ok_or_else(|| permanent("the candidate has no device; csd-uninstall needs one"))
}

#[derive(Deserialize)]
struct Page<T> {
    value: Vec<T>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct App {
    id: String,
    #[serde(default)]
    display_name: Option<String>,
}

impl App {
    fn label(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.id)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeviceStatus {
    #[serde(default)]
    device_name: Option<String>,
    #[serde(default)]
    install_state: Option<String>,
}

struct Csd {
    base: String,
    auth: oauth::Auth,
}

impl Csd {
    fn connect() -> Result<Csd, PluginError> {
        Ok(Csd {
            base: config::base_url("base", None)?,
            auth: oauth::Auth::from_config()?,
        })
    }

    fn send(&self, request: Http) -> Result<Response, PluginError> {
        self.auth.send(request)
    }

    fn url(&self, path: &str) -> String {
        format!("{}/deviceAppManagement{path}", self.base)
    }

    fn get(&self, path: &str) -> Result<Response, PluginError> {
        self.send(Http::get(self.url(path)))
    }

    /// The app by id when the candidate carries one (as its SKU), else by display name.
    fn find_app(&self, req: &Request) -> Result<Option<App>, PluginError> {
        if let Some(id) = req.software.sku.as_deref().filter(|s| !s.is_empty()) {
            return Ok(Some(App {
                id: id.to_owned(),
                display_name: Some(req.software.product.clone()),
            }));
        }
        // OData string literals escape a quote by doubling it.
        let name = req.software.product.replace('\'', "''");
        let filter = query_value(&format!("displayName eq '{name}'"));
        let response = self.get(&format!("/mobileApps?$filter={filter}"))?;
        if response.status != 200 {
            return Err(response.error("looking up the app"));
        }
        let page: Page<App> = response.json()?;
        Ok(page.value.into_iter().next())
    }

    /// Whether the app is on the device, from the service's per-device install status.
    fn install_state(&self, app_id: &str, device: &str) -> Result<Presence, PluginError> {
        let filter = query_value(&format!("deviceName eq '{}'", device.replace('\'', "''")));
        let response = self.get(&format!(
            "/mobileApps/{}/deviceStatuses?$filter={filter}",
            segment(app_id)
        ))?;
        match response.status {
            200 => {}
            404 => return Ok(Presence::Unknown),
            _ => return Err(response.error("reading the install status")),
        }
        let page: Page<DeviceStatus> = response.json()?;
        let states: Vec<String> = page
            .value
            .into_iter()
            .filter(|s| {
                s.device_name
                    .as_deref()
                    .is_none_or(|n| n.eq_ignore_ascii_case(device))
            })
            .filter_map(|s| s.install_state)
            .collect();
        // No row at all may only mean a mistyped device name: that is not proof it is gone.
        if states.is_empty() {
            return Ok(Presence::Unknown);
        }
        let present = states
            .iter()
            .any(|s| matches!(s.as_str(), "installed" | "uninstallFailed"));
        let absent = states
            .iter()
            .all(|s| matches!(s.as_str(), "notInstalled" | "notApplicable" | "uninstalled"));
        Ok(if present {
            Presence::Present
        } else if absent {
            Presence::Absent
        } else {
            Presence::Unknown
        })
    }
}

export!(CsdUninstall);
