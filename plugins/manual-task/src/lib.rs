//! `manual-task`: the fallback for software and seats no API can remove.
//!
//! It never calls out; it turns the candidate into a task a person can do without looking
//! anything up: which user, which device, which product and version, and how to remove it —
//! the uninstall steps for installed software, the vendor's admin console for a subscription.

use reclaim_plugin_sdk::{
    all_justifications, config, export, requirement, user_label, AppliesTo, Guest, ManualTask,
    Outcome, PluginError, PluginInfo, Presence, Request,
};

struct ManualTaskPlugin;

impl Guest for ManualTaskPlugin {
    fn describe() -> PluginInfo {
        PluginInfo {
            id: "manual-task".to_owned(),
            name: "Manual task".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            vendor: "Reclaim".to_owned(),
            applies_to: vec![AppliesTo::InstalledSoftware, AppliesTo::Subscription],
            justifications: all_justifications(),
            config_keys: vec![
                requirement(
                    "assignee",
                    "who should do the task (team or queue name)",
                    false,
                ),
                requirement(
                    "console.<publisher>",
                    "admin console URL for a publisher's subscriptions, e.g. console.adobe",
                    false,
                ),
                requirement(
                    "uninstall-hint",
                    "site-specific uninstall instructions",
                    false,
                ),
            ],
            secrets: vec![],
        }
    }

    fn reclaim(req: Request) -> Result<Outcome, PluginError> {
        Ok(Outcome::ManualTask(task(&req)))
    }

    fn verify(_req: Request) -> Result<Presence, PluginError> {
        // Only the person who did the task knows; the workflow asks them to confirm.
        Ok(Presence::Unknown)
    }
}

fn product_label(req: &Request) -> String {
    match &req.software.version {
        Some(v) if !v.is_empty() => format!("{} {v}", req.software.product),
        _ => req.software.product.clone(),
    }
}

fn user_line(req: &Request) -> String {
    let mut line = format!("User: {}", user_label(&req.user));
    let mut extra = Vec::new();
    if let Some(email) = &req.user.email {
        if Some(email.as_str()) != req.user.upn.as_deref() {
            extra.push(format!("email {email}"));
        }
    }
    extra.push(format!("directory id {}", req.user.id));
    line.push_str(&format!(" ({})", extra.join(", ")));
    line
}

/// Admin consoles of publishers whose seats are commonly reclaimed by hand; config can add to
/// or override these with `console.<publisher in lower case>`.
fn known_console(publisher: &str) -> Option<&'static str> {
    let p = publisher.to_ascii_lowercase();
    let table: [(&str, &str); 8] = [
        ("microsoft", "Microsoft 365 admin center, https://admin.microsoft.com (Users > Active users > Licenses and apps)"),
        ("adobe", "Adobe Admin Console, https://adminconsole.adobe.com (Users > the user > Products)"),
        ("atlassian", "Atlassian Administration, https://admin.atlassian.com (Directory > Users > Product access)"),
        ("zoom", "Zoom web portal, https://zoom.us/account/user (User Management > Users > Edit > User Type)"),
        ("slack", "Slack admin, https://app.slack.com/manage (Members > the member > Deactivate account)"),
        ("salesforce", "Salesforce Setup (Users > the user > Edit > untick Active, or change the license)"),
        ("autodesk", "Autodesk Account, https://manage.autodesk.com (User Management > By User)"),
        ("jetbrains", "JetBrains Account, https://account.jetbrains.com (Licenses > Revoke)"),
    ];
    table
        .iter()
        .find(|(name, _)| p.contains(name))
        .map(|(_, console)| *console)
}

fn console_for(publisher: &str) -> String {
    let key = format!("console.{}", publisher.to_ascii_lowercase());
    config::get(&key)
        .or_else(|| known_console(publisher).map(str::to_owned))
        .or_else(|| config::get("console"))
        .unwrap_or_else(|| format!("the {publisher} admin console"))
}

fn task(req: &Request) -> ManualTask {
    let product = product_label(req);
    let publisher = &req.software.publisher;
    let user = user_label(&req.user);
    let mut lines = Vec::new();
    let title = match req.applies_to {
        AppliesTo::InstalledSoftware => {
            let device = req.device.as_deref().unwrap_or("the user's device");
            lines.push(format!("Uninstall {product} ({publisher}) from {device}."));
            lines.push(String::new());
            lines.push(format!(
                "Device: {}",
                req.device
                    .as_deref()
                    .unwrap_or("not recorded: ask the user which device")
            ));
            lines.push(format!("Product: {product}"));
            lines.push(format!("Publisher: {publisher}"));
            lines.push(user_line(req));
            lines.push(String::new());
            lines.push("How:".to_owned());
            match config::get("uninstall-hint") {
                Some(hint) => lines.push(format!("1. {hint}")),
                None => {
                    lines.push(format!("1. Uninstall {product} with your software distribution tool if it manages {device}; otherwise sign in to {device} (or use remote support with {user})."));
                    lines.push(format!("2. Windows: Settings > Apps > Installed apps (or Control Panel > Programs and Features), select {product}, Uninstall. macOS: quit the app, remove it from Applications and run the publisher's uninstaller if one exists."));
                }
            }
            lines.push(format!("3. Check that {product} no longer appears in the installed programs list of {device}."));
            lines.push(format!("4. If {publisher} licenses it per activation, deactivate or release the license in the application or the publisher's portal."));
            format!("Uninstall {product} from {device}")
        }
        AppliesTo::Subscription => {
            let console = console_for(publisher);
            let seat = req
                .software
                .sku
                .as_deref()
                .or(req.software.subscription_id.as_deref());
            lines.push(format!(
                "Remove the {product} subscription seat ({publisher}) from {user}."
            ));
            lines.push(String::new());
            lines.push(format!("Product: {product}"));
            lines.push(format!("Publisher: {publisher}"));
            if let Some(seat) = seat {
                lines.push(format!("SKU / subscription: {seat}"));
            }
            if let Some(sub) = &req.software.subscription_id {
                if req.software.sku.is_some() {
                    lines.push(format!("Subscription id: {sub}"));
                }
            }
            lines.push(user_line(req));
            lines.push(String::new());
            lines.push("How:".to_owned());
            lines.push(format!("1. Sign in to {console} as an administrator."));
            lines.push(format!("2. Find {user} and unassign {product} (remove the license or seat; do not delete the account)."));
            lines.push("3. If the seat comes from a group or a role, remove the user from that group instead, or tell the group's owner.".to_owned());
            lines.push(format!(
                "4. Check that {product} is no longer listed for {user}."
            ));
            format!("Remove {product} seat from {user}")
        }
    };
    lines.push(String::new());
    lines.push(format!(
        "Then mark this task done in Reclaim (candidate {}).",
        req.candidate_id
    ));
    ManualTask {
        title,
        instructions: lines.join("\n"),
        assignee_hint: config::get("assignee"),
    }
}

export!(ManualTaskPlugin);
