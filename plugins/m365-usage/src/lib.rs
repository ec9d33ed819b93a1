//! `m365-usage`: reads who holds which Microsoft 365 license and when they last used it, through
//! Microsoft Graph, so candidates come from the tenant rather than from an exported file.
//!
//! One usage row per user and assigned license. Each page (a fresh instance) asks Graph for the
//! tenant's subscribed SKUs (skuId → part number), the usage report (last activity per user,
//! usually a redirect to a CSV download) and one page of users with their licenses; the cursor
//! is the users page's `@odata.nextLink`. Every vendor request is listed in `plugins/README.md`.

mod cursor;
mod report;

use std::collections::HashMap;

use cursor::Cursor;
use reclaim_plugin_sdk::error::{misconfigured, permanent};
use reclaim_plugin_sdk::http::{Request as Http, Response};
use reclaim_plugin_sdk::url::{self, Url};
use reclaim_plugin_sdk::{
    config, export_source, log, oauth, prices::Prices, requirement, AppliesTo, Collector, Note,
    Page, PluginError, SourceInfo, UsageRow,
};
use serde::Deserialize;

const USER_FIELDS: &str =
    "id,userPrincipalName,mail,displayName,assignedLicenses,signInActivity,createdDateTime";
/// What the page's notes say about users the report could not match.
pub const CONCEALED_NOTE: &str = "names concealed in the Microsoft 365 usage report: licensed users could not be matched to their activity (turn off concealed names in the Microsoft 365 admin center, Settings > Org settings > Reports)";

struct M365Usage;

impl Collector for M365Usage {
    fn describe_source() -> SourceInfo {
        SourceInfo {
            id: "m365-usage".to_owned(),
            name: "Microsoft 365 license usage".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            vendor: "Microsoft".to_owned(),
            reports: vec![AppliesTo::Subscription],
            publishers: vec!["Microsoft".to_owned()],
            description: "one row per user and assigned Microsoft 365 license, last used at the user's last activity in the Microsoft 365 usage report".to_owned(),
            config_keys: vec![
                requirement("tenant-id", "Entra tenant id (GUID or domain)", true),
                requirement("client-id", "app registration with User.Read.All, AuditLog.Read.All (sign-in activity), Organization.Read.All (subscribed SKUs) and Reports.Read.All", true),
                requirement("login-base", "identity endpoint, default https://login.microsoftonline.com", false),
                requirement("graph-base", "Graph endpoint, default https://graph.microsoft.com (v1.0 is appended unless it ends in /v1.0 or /beta)", false),
                requirement("scope", "token scope, default https://graph.microsoft.com/.default", false),
                requirement("report", "getM365AppUserDetail (default) or getOffice365ActiveUserDetail", false),
                requirement("report-period", "D7, D30 (default), D90 or D180", false),
                requirement("page-size", "users per page, 1 to 999 (default 200)", false),
                requirement("user-id", "what a row's user id is: id (default, the Entra object id), upn or mail", false),
                requirement("prices", "price list, one `KEY = AMOUNT [monthly|yearly|one-time]` a line; KEY is a SKU part number (SPE_E5), skuId or product name", false),
            ],
            secrets: vec![requirement("client-secret", "the app registration's client secret", true)],
        }
    }

    fn collect(cursor: Option<String>) -> Result<Page, PluginError> {
        let cursor = Cursor::decode(cursor.as_deref()).map_err(permanent)?;
        let graph = Graph::connect()?;
        let skus = graph.subscribed_skus()?;
        let activity = graph.activity()?;
        let users = graph.users(cursor.next.as_deref())?;
        let user_id = config::UserIdField::from_config()?;
        let prices = Prices::from_config()?;
        let mut rows = Vec::new();
        let mut unmatched = 0u32;
        let mut without_id = 0u32;
        for user in &users.value {
            if user.assigned_licenses.is_empty() {
                continue;
            }
            let upn = user.user_principal_name.clone().unwrap_or_default();
            let last_used = match activity.by_upn.get(&upn.to_ascii_lowercase()) {
                Some(date) => date.clone(),
                // Concealed: this user is somewhere in the report under a hash; calling them
                // inactive would make a wrong candidate.
                None if activity.is_concealed() => {
                    unmatched += 1;
                    continue;
                }
                // Not in the report at all (created after its refresh, most often): the last
                // sign-in is the best evidence there is; none means never signed in.
                None => user
                    .sign_in_activity
                    .as_ref()
                    .and_then(|s| s.last_sign_in_date_time.clone()),
            };
            let Some(id) = user_id.pick(
                Some(&user.id),
                user.user_principal_name.as_deref(),
                user.mail.as_deref(),
            ) else {
                without_id += 1;
                continue;
            };
            for license in &user.assigned_licenses {
                let part = skus.get(&license.sku_id.to_ascii_lowercase());
                let product = product_name(part.map_or(license.sku_id.as_str(), String::as_str));
                let mut row = UsageRow {
                    user_id: id.clone(),
                    user_name: user.display_name.clone(),
                    user_email: user.mail.clone(),
                    user_upn: user.user_principal_name.clone(),
                    user_groups: Vec::new(),
                    user_vip: None,
                    provisioned_at: user.created_date_time.clone(),
                    applies_to: AppliesTo::Subscription,
                    publisher: "Microsoft".to_owned(),
                    product: product.clone(),
                    version: None,
                    sku: Some(license.sku_id.clone()),
                    subscription_id: None,
                    device: None,
                    last_used_at: last_used.clone(),
                    hours_used: None,
                    assigned_at: None,
                    price_per_right: None,
                    price_period: None,
                };
                // Graph has no prices: the manifest's list, by part number, skuId or name.
                let part = part.map_or("", String::as_str);
                prices.fill(&mut row, &[part, &license.sku_id, &product]);
                rows.push(row);
            }
        }
        let mut notes = Vec::new();
        if unmatched > 0 {
            notes.push(Note {
                reason: CONCEALED_NOTE.to_owned(),
                count: unmatched,
            });
        }
        if without_id > 0 {
            notes.push(Note {
                reason: format!(
                    "licensed users without the `{}` chosen as user id (config `user-id`)",
                    user_id.name()
                ),
                count: without_id,
            });
        }
        let next_cursor = match users.next_link {
            Some(link) => Some(
                Cursor {
                    next: Some(graph.check_next_link(&link)?),
                    ..Cursor::start()
                }
                .encode(),
            ),
            None => None,
        };
        log::info(&format!(
            "collected {} rows from {} users ({} unmatched in a concealed report)",
            rows.len(),
            users.value.len(),
            unmatched
        ));
        Ok(Page {
            rows,
            next_cursor,
            notes,
        })
    }
}

export_source!(M365Usage);

/// Friendly names for common SKU part numbers, so rows name the products rules and people
/// use; any other SKU keeps its part number.
fn product_name(part: &str) -> String {
    let known = [
        ("SPE_E5", "Microsoft 365 E5"),
        ("SPE_E3", "Microsoft 365 E3"),
        ("SPB", "Microsoft 365 Business Premium"),
        ("O365_BUSINESS_PREMIUM", "Microsoft 365 Business Standard"),
        ("ENTERPRISEPREMIUM", "Office 365 E5"),
        ("ENTERPRISEPACK", "Office 365 E3"),
        ("STANDARDPACK", "Office 365 E1"),
        ("VISIOCLIENT", "Microsoft Visio Plan 2"),
        ("PROJECTPROFESSIONAL", "Microsoft Project Plan 3"),
        ("POWER_BI_PRO", "Microsoft Power BI Pro"),
    ];
    known
        .iter()
        .find(|(p, _)| p.eq_ignore_ascii_case(part))
        .map_or_else(|| part.to_owned(), |(_, name)| (*name).to_owned())
}

#[derive(Deserialize)]
struct Listing<T> {
    value: Vec<T>,
    #[serde(rename = "@odata.nextLink", default)]
    next_link: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscribedSku {
    sku_id: String,
    #[serde(default)]
    sku_part_number: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct User {
    id: String,
    #[serde(default)]
    user_principal_name: Option<String>,
    #[serde(default)]
    mail: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    created_date_time: Option<String>,
    #[serde(default)]
    assigned_licenses: Vec<AssignedLicense>,
    #[serde(default)]
    sign_in_activity: Option<SignInActivity>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignInActivity {
    #[serde(default)]
    last_sign_in_date_time: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssignedLicense {
    sku_id: String,
}

struct Graph {
    base: String,
    auth: oauth::ClientCredentials,
}

impl Graph {
    fn connect() -> Result<Graph, PluginError> {
        let tenant = config::require("tenant-id")?;
        Ok(Graph {
            base: config::base_url("graph-base", Some(url::GRAPH))?,
            auth: oauth::ClientCredentials::microsoft(&tenant)?,
        })
    }

    fn url(&self, path: &str) -> String {
        url::graph_url(&self.base, path)
    }

    fn get(&self, url: String) -> Result<Response, PluginError> {
        self.auth.send(Http::get(url))
    }

    /// skuId (lower case) → part number.
    fn subscribed_skus(&self) -> Result<HashMap<String, String>, PluginError> {
        let response = self.get(self.url("/subscribedSkus?$select=skuId,skuPartNumber"))?;
        if response.status != 200 {
            return Err(response.error("reading the tenant's subscribed SKUs"));
        }
        let listing = response.json::<Listing<SubscribedSku>>()?;
        Ok(listing
            .value
            .into_iter()
            .map(|s| (s.sku_id.to_ascii_lowercase(), s.sku_part_number))
            .collect())
    }

    /// The usage report. Graph answers with a redirect to a short-lived, pre-authorised
    /// download URL (no token is sent there), or with the CSV itself.
    fn activity(&self) -> Result<report::Activity, PluginError> {
        let report = config::get_or("report", "getM365AppUserDetail");
        if !matches!(
            report.as_str(),
            "getM365AppUserDetail" | "getOffice365ActiveUserDetail"
        ) {
            return Err(misconfigured(format!(
                "config key `report` must be getM365AppUserDetail or getOffice365ActiveUserDetail, got `{report}`"
            )));
        }
        let period = config::get_or("report-period", "D30");
        if !matches!(period.as_str(), "D7" | "D30" | "D90" | "D180") {
            return Err(misconfigured(format!(
                "config key `report-period` must be D7, D30, D90 or D180, got `{period}`"
            )));
        }
        let url = self.url(&format!(
            "/reports/{report}(period='{period}')?$format=text/csv"
        ));
        let response = self.get(url)?;
        let csv = match response.status {
            200 => response,
            301 | 302 | 303 | 307 | 308 => {
                let location = response.header("location").ok_or_else(|| {
                    permanent("the usage report answered with a redirect without a Location")
                })?;
                let download = self.absolute(location)?;
                let downloaded = Http::get(download).header("accept", "text/csv").send()?;
                if downloaded.status != 200 {
                    return Err(downloaded.error("downloading the usage report"));
                }
                downloaded
            }
            _ => return Err(response.error("requesting the usage report")),
        };
        let text = String::from_utf8(csv.body)
            .map_err(|_| permanent("the usage report is not UTF-8 text"))?;
        report::parse(&text).map_err(permanent)
    }

    /// A redirect target as an absolute URL (a relative one is on Graph's own host).
    fn absolute(&self, location: &str) -> Result<String, PluginError> {
        if location.starts_with("https://") || location.starts_with("http://") {
            return Ok(location.to_owned());
        }
        let base = Url::parse(&self.base)
            .map_err(|why| misconfigured(format!("config key `graph-base`: {why}")))?;
        let scheme = if base.https { "https" } else { "http" };
        if location.starts_with('/') {
            Ok(format!("{scheme}://{}{location}", base.authority))
        } else {
            Err(permanent(format!(
                "the usage report redirected to `{location}`, which is not a URL"
            )))
        }
    }

    fn users(&self, next: Option<&str>) -> Result<Listing<User>, PluginError> {
        let url = match next {
            Some(link) => self.check_next_link(link)?,
            None => {
                let size = config::u32_or("page-size", 200)?;
                if !(1..=999).contains(&size) {
                    return Err(misconfigured(format!(
                        "config key `page-size` must be between 1 and 999, got {size}"
                    )));
                }
                self.url(&format!("/users?$select={USER_FIELDS}&$top={size}"))
            }
        };
        let response = self.get(url)?;
        if response.status != 200 {
            return Err(response.error("listing users"));
        }
        response.json::<Listing<User>>()
    }

    /// A next link is followed only on the configured Graph host: a cursor is stored outside the
    /// plugin, and must not send the token anywhere else.
    fn check_next_link(&self, link: &str) -> Result<String, PluginError> {
        let origin = |u: &str| {
            Url::parse(u)
                .ok()
                .map(|u| (u.https, u.authority.to_ascii_lowercase()))
        };
        match (origin(link), origin(&self.base)) {
            (Some(a), Some(b)) if a == b => Ok(link.to_owned()),
            _ => Err(permanent(format!(
                "the next page link `{link}` is not on the configured Graph host"
            ))),
        }
    }
}
