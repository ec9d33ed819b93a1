//! `scim-deprovision`: frees a SaaS seat through the vendor's SCIM 2.0 API (RFC 7644).
//!
//! Deactivating (`active = false`) is the default because it is reversible and every SCIM
//! service supports it; `mode = "delete"` deletes the user for vendors that only free the seat
//! that way. The exact requests are listed in `plugins/README.md`.

use reclaim_plugin_sdk::error::{misconfigured, permanent};
use reclaim_plugin_sdk::http::{Request as Http, Response};
use reclaim_plugin_sdk::url::{query_value, segment};
use reclaim_plugin_sdk::{
    all_justifications, config, export, log, requirement, AppliesTo, Guest, Outcome, PluginError,
    PluginInfo, Presence, Request,
};
use serde::Deserialize;
use serde_json::json;

const SCIM_JSON: &str = "application/scim+json";

struct ScimDeprovision;

impl Guest for ScimDeprovision {
    fn describe() -> PluginInfo {
        PluginInfo {
            id: "scim-deprovision".to_owned(),
            name: "SCIM 2.0 deprovisioning".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            vendor: "Reclaim".to_owned(),
            applies_to: vec![AppliesTo::Subscription],
            justifications: all_justifications(),
            config_keys: vec![
                requirement("base", "SCIM service root, e.g. https://api.example.com/scim/v2", true),
                requirement("mode", "`deactivate` (PATCH active=false, default) or `delete`", false),
                requirement("user-lookup", "`id` (the candidate's user id is the SCIM id, default) or `userName` (find the user by UPN or email)", false),
            ],
            secrets: vec![requirement("bearer-token", "SCIM bearer token", true)],
        }
    }

    fn reclaim(req: Request) -> Result<Outcome, PluginError> {
        let scim = Scim::connect()?;
        let Some(user) = scim.find_user(&req)? else {
            return Ok(Outcome::AlreadyAbsent);
        };
        log::info(&format!(
            "{} SCIM user {} (key {}, dry run {})",
            scim.mode.verb(),
            user.id,
            req.idempotency_key,
            req.dry_run
        ));
        if scim.mode == Mode::Deactivate && user.active == Some(false) {
            return Ok(Outcome::AlreadyAbsent);
        }
        let url = scim.user_url(&user.id);
        if req.dry_run {
            return Ok(Outcome::Removed(match scim.mode {
                Mode::Deactivate => format!("dry run: would PATCH {url} setting active=false"),
                Mode::Delete => format!("dry run: would DELETE {url}"),
            }));
        }
        let request = match scim.mode {
            Mode::Deactivate => Http::patch(&url).json_as(
                SCIM_JSON,
                &json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "active", "value": false}],
                }),
            ),
            Mode::Delete => Http::delete(&url),
        };
        let response = request
            .bearer(&scim.token)
            .header("accept", SCIM_JSON)
            .send()?;
        match response.status {
            200..=299 => Ok(Outcome::Removed(format!(
                "SCIM {} {url}: HTTP {}",
                scim.mode.verb(),
                response.status
            ))),
            404 => Ok(Outcome::AlreadyAbsent),
            405 if scim.mode == Mode::Delete => Err(misconfigured(format!(
                "the SCIM service does not allow DELETE on {url}; set mode = \"deactivate\""
            ))),
            _ => Err(response.error(scim.mode.verb())),
        }
    }

    fn verify(req: Request) -> Result<Presence, PluginError> {
        let scim = Scim::connect()?;
        Ok(match scim.find_user(&req)? {
            None => Presence::Absent,
            Some(user) if user.active == Some(false) => Presence::Absent,
            Some(_) => Presence::Present,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Deactivate,
    Delete,
}

impl Mode {
    fn verb(self) -> &'static str {
        match self {
            Mode::Deactivate => "deactivating",
            Mode::Delete => "deleting",
        }
    }
}

#[derive(Deserialize)]
struct ScimUser {
    id: String,
    #[serde(default)]
    active: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListResponse {
    #[serde(default)]
    resources: Vec<ScimUser>,
}

struct Scim {
    base: String,
    token: String,
    mode: Mode,
    by_user_name: bool,
}

impl Scim {
    fn connect() -> Result<Scim, PluginError> {
        let base = config::base_url("base", None)?;
        let mode = match config::get_or("mode", "deactivate").as_str() {
            "deactivate" => Mode::Deactivate,
            "delete" => Mode::Delete,
            other => {
                return Err(misconfigured(format!(
                    "config key `mode` must be `deactivate` or `delete`, got `{other}`"
                )))
            }
        };
        let by_user_name = match config::get_or("user-lookup", "id").as_str() {
            "id" => false,
            "userName" => true,
            other => {
                return Err(misconfigured(format!(
                    "config key `user-lookup` must be `id` or `userName`, got `{other}`"
                )))
            }
        };
        let token = config::secret("bearer-token")?;
        Ok(Scim {
            base,
            token,
            mode,
            by_user_name,
        })
    }

    fn user_url(&self, id: &str) -> String {
        format!("{}/Users/{}", self.base, segment(id))
    }

    fn get(&self, url: &str) -> Result<Response, PluginError> {
        Http::get(url)
            .bearer(&self.token)
            .header("accept", SCIM_JSON)
            .send()
    }

    /// The SCIM user, or `None` when the service does not know them (nothing to free).
    fn find_user(&self, req: &Request) -> Result<Option<ScimUser>, PluginError> {
        let response = if self.by_user_name {
            let name = req
                .user
                .upn
                .as_deref()
                .or(req.user.email.as_deref())
                .ok_or_else(|| {
                    permanent(
                        "user-lookup = userName, but the candidate's user has no UPN or email",
                    )
                })?;
            // SCIM filter string literals are JSON strings.
            let literal = serde_json::to_string(name).unwrap_or_default();
            let filter = query_value(&format!("userName eq {literal}"));
            self.get(&format!("{}/Users?filter={filter}", self.base))?
        } else {
            self.get(&self.user_url(&req.user.id))?
        };
        match response.status {
            200 if self.by_user_name => Ok(response
                .json::<ListResponse>()?
                .resources
                .into_iter()
                .next()),
            200 => response.json().map(Some),
            404 => Ok(None),
            _ => Err(response.error("reading the SCIM user")),
        }
    }
}

export!(ScimDeprovision);
