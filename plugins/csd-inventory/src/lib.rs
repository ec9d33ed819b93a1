//! `csd-inventory`: reads which software is installed on which device, and for whom, from a
//! client software distribution service with an Intune-style API, so candidates for desktop
//! software come from the service's inventory rather than from an exported file.
//!
//! One usage row per device and install: `deviceManagement/detectedApps` (paged), and for each
//! app its `managedDevices` (paged) with the device's primary user and, where the service
//! reports one, when the app was last used there. A page holds up to `page-size` rows, across
//! apps; the cursor says which apps page, which app and which devices page come next. Every
//! vendor request is listed in `plugins/README.md`.

mod cursor;

use cursor::Cursor;
use reclaim_plugin_sdk::error::{misconfigured, permanent};
use reclaim_plugin_sdk::http::{Request as Http, Response};
use reclaim_plugin_sdk::url::{segment, Url};
use reclaim_plugin_sdk::{
    config, export_source, log, oauth, prices::Prices, requirement, AppliesTo, Collector, Note,
    Page, PluginError, SourceInfo, UsageRow,
};
use serde::Deserialize;

/// What the page's notes say about installs on devices nobody is assigned to.
pub const NO_USER_NOTE: &str =
    "installs on devices without a primary user (no one to ask): not reported";
/// What the page's notes say about apps the service knows no publisher of.
pub const NO_PUBLISHER_NOTE: &str =
    "installs of apps without a publisher in the inventory (rules match by publisher): not reported";

struct CsdInventory;

impl Collector for CsdInventory {
    fn describe_source() -> SourceInfo {
        SourceInfo {
            id: "csd-inventory".to_owned(),
            name: "Client software distribution inventory".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            vendor: "Reclaim".to_owned(),
            reports: vec![AppliesTo::InstalledSoftware],
            publishers: Vec::new(),
            description: "one row per device and installed app, for the device's primary user, last used when the service reports it".to_owned(),
            config_keys: vec![
                requirement("base", "CSD API root; requests go to {base}/deviceManagement/...", true),
                requirement("page-size", "rows per page, 1 to 1000 (default 500)", false),
                requirement("user-id", "what a row's user id is: id (default, the service's user id), upn or mail", false),
                requirement("prices", "price list, one `KEY = AMOUNT [monthly|yearly|one-time]` a line; KEY is the app's name as the inventory shows it (Adobe Acrobat Pro)", false),
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

    fn collect(cursor: Option<String>) -> Result<Page, PluginError> {
        let mut at = Cursor::decode(cursor.as_deref()).map_err(permanent)?;
        let csd = Csd::connect()?;
        let budget = config::u32_or("page-size", 500)?;
        if !(1..=1000).contains(&budget) {
            return Err(misconfigured(format!(
                "config key `page-size` must be between 1 and 1000, got {budget}"
            )));
        }
        let budget = budget as usize;
        let user_id = config::UserIdField::from_config()?;
        let prices = Prices::from_config()?;
        let mut apps = csd.apps(at.apps.as_deref(), budget)?;
        let mut rows = Vec::new();
        let (mut no_user, mut no_publisher) = (0u32, 0u32);
        let finished = loop {
            let Some(app) = apps.value.get(at.index) else {
                // This apps page is done: the next one, if any, starts the next call's work.
                match apps.next_link.take() {
                    Some(link) => {
                        at = Cursor {
                            apps: Some(csd.check_link(&link)?),
                            ..Cursor::default()
                        };
                        if rows.len() >= budget {
                            break false;
                        }
                        apps = csd.apps(at.apps.as_deref(), budget)?;
                        continue;
                    }
                    None => break true,
                }
            };
            let devices = csd.devices(&app.id, at.devices.as_deref(), budget - rows.len())?;
            for device in devices.value {
                let Some(user) = user_id.pick(
                    device.user_id.as_deref(),
                    device.user_principal_name.as_deref(),
                    device.email_address.as_deref(),
                ) else {
                    no_user += 1;
                    continue;
                };
                let Some(publisher) = app.publisher.clone().filter(|p| !p.trim().is_empty()) else {
                    no_publisher += 1;
                    continue;
                };
                let mut row = UsageRow {
                    user_id: user,
                    user_name: device.user_display_name.clone(),
                    user_email: device.email_address.clone(),
                    user_upn: device.user_principal_name.clone(),
                    user_groups: Vec::new(),
                    user_vip: None,
                    provisioned_at: None,
                    applies_to: AppliesTo::InstalledSoftware,
                    publisher,
                    product: app.display_name.clone(),
                    version: app.version.clone().filter(|v| !v.is_empty()),
                    sku: None,
                    subscription_id: None,
                    device: Some(device.device_name.clone()),
                    last_used_at: device.last_used_date_time.clone(),
                    hours_used: None,
                    assigned_at: device.installed_date_time.clone(),
                    price_per_right: None,
                    price_period: None,
                };
                // The inventory has no prices: the manifest's list, by the app's name.
                prices.fill(&mut row, &[&app.display_name]);
                rows.push(row);
            }
            match devices.next_link {
                Some(link) => at.devices = Some(csd.check_link(&link)?),
                None => {
                    at.index += 1;
                    at.devices = None;
                }
            }
            if rows.len() >= budget {
                // Finished exactly here when this was the last app of the last page.
                break at.index >= apps.value.len() && apps.next_link.is_none();
            }
        };
        let mut notes = Vec::new();
        if no_user > 0 {
            notes.push(Note {
                reason: NO_USER_NOTE.to_owned(),
                count: no_user,
            });
        }
        if no_publisher > 0 {
            notes.push(Note {
                reason: NO_PUBLISHER_NOTE.to_owned(),
                count: no_publisher,
            });
        }
        log::info(&format!(
            "collected {} installs (finished: {finished})",
            rows.len()
        ));
        Ok(Page {
            rows,
            next_cursor: (!finished).then(|| at.encode()),
            notes,
        })
    }
}

export_source!(CsdInventory);

#[derive(Deserialize)]
struct Listing<T> {
    value: Vec<T>,
    #[serde(rename = "@odata.nextLink", default)]
    next_link: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DetectedApp {
    id: String,
    display_name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    publisher: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManagedDevice {
    device_name: String,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    user_principal_name: Option<String>,
    #[serde(default)]
    email_address: Option<String>,
    #[serde(default)]
    user_display_name: Option<String>,
    /// Not in Intune's own schema: services that meter use report it per app and device.
    #[serde(default)]
    last_used_date_time: Option<String>,
    #[serde(default)]
    installed_date_time: Option<String>,
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

    fn get(&self, url: String) -> Result<Response, PluginError> {
        self.auth.send(Http::get(url))
    }

    fn apps(&self, link: Option<&str>, top: usize) -> Result<Listing<DetectedApp>, PluginError> {
        let url = match link {
            Some(l) => self.check_link(l)?,
            None => format!("{}/deviceManagement/detectedApps?$top={top}", self.base),
        };
        let response = self.get(url)?;
        if response.status != 200 {
            return Err(response.error("listing detected apps"));
        }
        response.json()
    }

    fn devices(
        &self,
        app: &str,
        link: Option<&str>,
        top: usize,
    ) -> Result<Listing<ManagedDevice>, PluginError> {
        let url = match link {
            Some(l) => self.check_link(l)?,
            None => format!(
                "{}/deviceManagement/detectedApps/{}/managedDevices?$top={top}",
                self.base,
                segment(app)
            ),
        };
        let response = self.get(url)?;
        match response.status {
            200 => response.json(),
            // The app left the inventory between the apps page and now: no installs.
            404 => Ok(Listing {
                value: Vec::new(),
                next_link: None,
            }),
            _ => Err(response.error("listing the devices of a detected app")),
        }
    }

    /// A next link is followed only on the configured service host: a cursor is stored outside
    /// the plugin, and must not send the token anywhere else.
    fn check_link(&self, link: &str) -> Result<String, PluginError> {
        let origin = |u: &str| {
            Url::parse(u)
                .ok()
                .map(|u| (u.https, u.authority.to_ascii_lowercase()))
        };
        match (origin(link), origin(&self.base)) {
            (Some(a), Some(b)) if a == b => Ok(link.to_owned()),
            _ => Err(permanent(format!(
                "the next page link `{link}` is not on the configured service host"
            ))),
        }
    }
}
