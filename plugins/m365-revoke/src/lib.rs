//! `m365-revoke`: removes a Microsoft 365 license from a user through Microsoft Graph.
//!
//! Direct assignments are removed with `assignLicense`. A license a user holds through a group
//! cannot be removed per user, so the plugin removes the group membership instead — but only
//! when that group grants nothing else, since leaving the group would otherwise take licenses
//! (and access) the candidate is not about. Every vendor request is listed in
//! `plugins/README.md`.

use reclaim_plugin_sdk::error::{permanent, transient};
use reclaim_plugin_sdk::http::{Request as Http, Response};
use reclaim_plugin_sdk::url::{graph_url, segment, GRAPH};
use reclaim_plugin_sdk::{
    all_justifications, config, export, log, oauth, requirement, AppliesTo, Guest, Outcome,
    PluginError, PluginInfo, Presence, Request,
};
use serde::Deserialize;
use serde_json::json;

struct M365Revoke;

impl Guest for M365Revoke {
    fn describe() -> PluginInfo {
        PluginInfo {
            id: "m365-revoke".to_owned(),
            name: "Microsoft 365 license removal".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            vendor: "Microsoft".to_owned(),
            applies_to: vec![AppliesTo::Subscription],
            justifications: all_justifications(),
            config_keys: vec![
                requirement("tenant-id", "Entra tenant id (GUID or domain)", true),
                requirement("client-id", "app registration with LicenseAssignment.ReadWrite.All (and GroupMember.ReadWrite.All for group-inherited licenses)", true),
                requirement("login-base", "identity endpoint, default https://login.microsoftonline.com", false),
                requirement("graph-base", "Graph endpoint, default https://graph.microsoft.com (v1.0 is appended unless it ends in /v1.0 or /beta)", false),
                requirement("scope", "token scope, default https://graph.microsoft.com/.default", false),
            ],
            secrets: vec![requirement("client-secret", "the app registration's client secret", true)],
        }
    }

    fn reclaim(req: Request) -> Result<Outcome, PluginError> {
        let target = Target::from_request(&req)?;
        let graph = Graph::connect()?;
        log::info(&format!(
            "reclaim {} from {} (key {}, dry run {})",
            target.sku, target.upn, req.idempotency_key, req.dry_run
        ));
        let Some(sku) = graph.resolve_sku(&target)? else {
            return Ok(Outcome::AlreadyAbsent);
        };
        if req.dry_run {
            return graph.plan(&target, &sku);
        }
        graph.remove(&target, &sku)
    }

    fn verify(req: Request) -> Result<Presence, PluginError> {
        let target = Target::from_request(&req)?;
        let graph = Graph::connect()?;
        Ok(match graph.license_details(&target.upn)? {
            None => Presence::Absent,
            Some(held) if held.iter().any(|d| d.matches(&target.sku)) => Presence::Present,
            Some(_) => Presence::Absent,
        })
    }
}

/// Who and what, from the request.
struct Target {
    upn: String,
    /// A skuId GUID, or a skuPartNumber such as `ENTERPRISEPACK`.
    sku: String,
}

impl Target {
    fn from_request(req: &Request) -> Result<Target, PluginError> {
        let upn = req
            .user
            .upn
            .clone()
            .or_else(|| req.user.email.clone())
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                permanent("the candidate's user has no UPN or email to find them in Microsoft 365")
            })?;
        let sku = req
            .software
            .sku
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                permanent(format!(
                    "the candidate for {} has no SKU (skuId or skuPartNumber)",
                    req.software.product
                ))
            })?;
        Ok(Target { upn, sku })
    }
}

/// A resolved license: always the skuId, with the part number when known, for messages.
struct Sku {
    id: String,
    label: String,
}

#[derive(Deserialize)]
struct Page<T> {
    value: Vec<T>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LicenseDetail {
    sku_id: String,
    #[serde(default)]
    sku_part_number: Option<String>,
}

impl LicenseDetail {
    fn matches(&self, sku: &str) -> bool {
        self.sku_id.eq_ignore_ascii_case(sku)
            || self
                .sku_part_number
                .as_deref()
                .is_some_and(|p| p.eq_ignore_ascii_case(sku))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserStates {
    id: String,
    #[serde(default)]
    license_assignment_states: Vec<AssignmentState>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssignmentState {
    sku_id: String,
    #[serde(default)]
    assigned_by_group: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Group {
    id: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    assigned_licenses: Vec<AssignedLicense>,
}

impl Group {
    fn label(&self) -> String {
        match &self.display_name {
            Some(name) => format!("{name} ({})", self.id),
            None => self.id.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssignedLicense {
    sku_id: String,
}

fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

struct Graph {
    base: String,
    /// Renews the token once if Graph answers that it expired during the call.
    auth: oauth::ClientCredentials,
}

/// How a user holds a license, from `licenseAssignmentStates`.
struct Holding {
    user_id: String,
    direct: bool,
    groups: Vec<String>,
}

impl Graph {
    fn connect() -> Result<Graph, PluginError> {
        let tenant = config::require("tenant-id")?;
        Ok(Graph {
            base: config::base_url("graph-base", Some(GRAPH))?,
            auth: oauth::ClientCredentials::microsoft(&tenant)?,
        })
    }

    fn url(&self, path: &str) -> String {
        graph_url(&self.base, path)
    }

    fn get(&self, path: &str) -> Result<Response, PluginError> {
        self.auth.send(Http::get(self.url(path)))
    }

    /// The user's licenses, or `None` when Graph does not know the user.
    fn license_details(&self, upn: &str) -> Result<Option<Vec<LicenseDetail>>, PluginError> {
        let response = self.get(&format!("/users/{}/licenseDetails", segment(upn)))?;
        match response.status {
            200 => Ok(Some(response.json::<Page<LicenseDetail>>()?.value)),
            404 => Ok(None),
            _ => Err(response.error("reading the user's licenses")),
        }
    }

    /// The skuId to remove; `None` when the user is unknown or does not hold it (nothing to do).
    /// A GUID is taken as is, so the common path costs no extra read.
    fn resolve_sku(&self, target: &Target) -> Result<Option<Sku>, PluginError> {
        if is_guid(&target.sku) {
            return Ok(Some(Sku {
                id: target.sku.clone(),
                label: target.sku.clone(),
            }));
        }
        let held = self.license_details(&target.upn)?.unwrap_or_default();
        Ok(held
            .into_iter()
            .find(|d| d.matches(&target.sku))
            .map(|d| Sku {
                label: format!("{} ({})", target.sku, d.sku_id),
                id: d.sku_id,
            }))
    }

    fn holding(&self, upn: &str, sku: &Sku) -> Result<Option<Holding>, PluginError> {
        let response = self.get(&format!(
            "/users/{}?$select=id,licenseAssignmentStates",
            segment(upn)
        ))?;
        match response.status {
            200 => {}
            404 => return Ok(None),
            _ => return Err(response.error("reading the user's license assignments")),
        }
        let user: UserStates = response.json()?;
        let mut holding = Holding {
            user_id: user.id,
            direct: false,
            groups: Vec::new(),
        };
        let mut held = false;
        for state in user.license_assignment_states {
            if !state.sku_id.eq_ignore_ascii_case(&sku.id) {
                continue;
            }
            held = true;
            match state.assigned_by_group.filter(|g| !g.is_empty()) {
                Some(group) if !holding.groups.contains(&group) => holding.groups.push(group),
                Some(_) => {}
                None => holding.direct = true,
            }
        }
        Ok(held.then_some(holding))
    }

    fn group(&self, id: &str) -> Result<Group, PluginError> {
        let response = self.get(&format!(
            "/groups/{}?$select=id,displayName,assignedLicenses",
            segment(id)
        ))?;
        if response.status == 200 {
            response.json()
        } else {
            Err(response.error("reading the licensing group"))
        }
    }

    /// The groups to leave, or the permanent error explaining why none may be left.
    fn removable_groups(
        &self,
        upn: &str,
        sku: &Sku,
        holding: &Holding,
    ) -> Result<Vec<Group>, PluginError> {
        let mut groups = Vec::new();
        let mut refused = Vec::new();
        for id in &holding.groups {
            let group = self.group(id)?;
            let others: Vec<&str> = group
                .assigned_licenses
                .iter()
                .filter(|l| !l.sku_id.eq_ignore_ascii_case(&sku.id))
                .map(|l| l.sku_id.as_str())
                .collect();
            if others.is_empty() {
                groups.push(group);
            } else {
                refused.push(format!(
                    "{} (also grants {})",
                    group.label(),
                    others.join(", ")
                ));
            }
        }
        if !refused.is_empty() {
            return Err(permanent(format!(
                "license {} of {upn} is inherited from group {}; leaving it would remove other licenses too, so the membership was not changed: remove the license by hand or change the group's licenses",
                sku.label,
                refused.join(" and ")
            )));
        }
        Ok(groups)
    }

    fn plan(&self, target: &Target, sku: &Sku) -> Result<Outcome, PluginError> {
        let Some(holding) = self.holding(&target.upn, sku)? else {
            return Ok(Outcome::AlreadyAbsent);
        };
        let mut steps = Vec::new();
        if holding.direct {
            steps.push(format!(
                "POST /v1.0/users/{}/assignLicense removing {}",
                target.upn, sku.label
            ));
        }
        for group in self.removable_groups(&target.upn, sku, &holding)? {
            steps.push(format!(
                "remove {} from group {}, which grants only this license",
                target.upn,
                group.label()
            ));
        }
        Ok(Outcome::Removed(format!(
            "dry run: would {}",
            steps.join("; then ")
        )))
    }

    fn remove(&self, target: &Target, sku: &Sku) -> Result<Outcome, PluginError> {
        let response = self.auth.send(
            Http::post(self.url(&format!("/users/{}/assignLicense", segment(&target.upn))))
                .json(&json!({"addLicenses": [], "removeLicenses": [sku.id]})),
        )?;
        match response.status {
            200..=299 => Ok(Outcome::Removed(format!(
                "Microsoft Graph assignLicense removed license {} from {} (HTTP {})",
                sku.label, target.upn, response.status
            ))),
            404 => Ok(Outcome::AlreadyAbsent),
            400 => {
                let message = response
                    .vendor_message()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                if message.contains("inherited") {
                    self.leave_groups(target, sku)
                } else if message.contains("does not have a corresponding license")
                    || message.contains("does not have the license")
                {
                    Ok(Outcome::AlreadyAbsent)
                } else {
                    Err(response.error("removing the license"))
                }
            }
            _ => Err(response.error("removing the license")),
        }
    }

    fn leave_groups(&self, target: &Target, sku: &Sku) -> Result<Outcome, PluginError> {
        let Some(holding) = self.holding(&target.upn, sku)? else {
            return Ok(Outcome::AlreadyAbsent);
        };
        if holding.groups.is_empty() {
            return Err(permanent(format!(
                "Graph says license {} of {} is inherited from a group, but no licensing group is listed for it",
                sku.label, target.upn
            )));
        }
        let groups = self.removable_groups(&target.upn, sku, &holding)?;
        let mut left = Vec::new();
        let mut already_out = Vec::new();
        for group in &groups {
            let response = self.auth.send(Http::delete(self.url(&format!(
                "/groups/{}/members/{}/$ref",
                segment(&group.id),
                segment(&holding.user_id)
            ))))?;
            match response.status {
                200..=299 => left.push(group.label()),
                // Someone removed the membership before us; Graph's group-based licensing
                // has not caught up, which is why the license was still listed.
                404 => already_out.push(group.label()),
                400 => {
                    return Err(permanent(format!(
                        "could not remove {} from group {} (a dynamic or on-premises synced group cannot be changed here): {}",
                        target.upn,
                        group.label(),
                        response.vendor_message().unwrap_or_default()
                    )))
                }
                _ => return Err(response.error("removing the group membership")),
            }
        }
        let memberships = Memberships { left, already_out };
        if holding.direct {
            // Both direct and inherited: the direct part was refused, so it is still there.
            return Err(transient(
                format!(
                    "{}: {}, but a direct assignment of {} remains; retrying",
                    target.upn,
                    memberships.describe(),
                    sku.label
                ),
                Some(5),
            ));
        }
        if memberships.left.is_empty() {
            log::info(&format!(
                "license {} of {} is listed as inherited, but {}; no membership was changed",
                sku.label,
                target.upn,
                memberships.describe()
            ));
            return Ok(Outcome::AlreadyAbsent);
        }
        Ok(Outcome::Removed(format!(
            "license {} of {} was inherited; {}",
            sku.label,
            target.upn,
            memberships.describe()
        )))
    }
}

/// What leaving the licensing groups did, told apart so the evidence never claims a change
/// Graph did not make.
struct Memberships {
    /// Groups the user was removed from now.
    left: Vec<String>,
    /// Groups Graph answered 404 for: the user was not a member any more.
    already_out: Vec<String>,
}

impl Memberships {
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.left.is_empty() {
            parts.push(format!(
                "removed the membership in group {}, which granted only this license",
                self.left.join(", ")
            ));
        }
        if !self.already_out.is_empty() {
            parts.push(format!(
                "already not a member of group {}",
                self.already_out.join(", ")
            ));
        }
        parts.join("; ")
    }
}

export!(M365Revoke);
