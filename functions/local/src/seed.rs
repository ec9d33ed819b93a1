//! The seed/config file of local mode (users, assignment groups, rules and the bearer tokens
//! people sign in with) and the demo data `reclaim serve --demo` loads.

use reclaim_workflow::intake::Row;
use reclaim_workflow::ports::{Directory, RuleStore, StoreError, TokenStore};
use reclaim_workflow::{
    AppliesTo, Criteria, Exclusions, Group, Justification, Rule, SoftwareMatch, User,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a seed file holds. Tokens map a bearer token to a user id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFile {
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub groups: Vec<Group>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub tokens: BTreeMap<String, String>,
}

/// A seed file that refers to things it does not define.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SeedFile {
    /// Checks every reference, naming the entry that is wrong.
    pub fn validate(&self) -> Result<(), SeedError> {
        let users: Vec<&str> = self.users.iter().map(|u| u.id.as_str()).collect();
        let mut problems = Vec::new();
        for (i, u) in self.users.iter().enumerate() {
            if let Err(e) = u.check_text() {
                problems.push(format!("users[{i}] ({}): {e}", u.id));
            }
        }
        for (i, g) in self.groups.iter().enumerate() {
            if let Err(e) = g.check_text() {
                problems.push(format!("groups[{i}] ({}): {e}", g.id));
            }
            for m in &g.members {
                if !users.contains(&m.as_str()) {
                    problems.push(format!(
                        "groups[{i}] ({}): member '{m}' is not a user",
                        g.id
                    ));
                }
            }
        }
        // The same check as the API and `reclaim rules put`, against the seed's own groups.
        for (i, r) in self.rules.iter().enumerate() {
            for e in reclaim_workflow::rules::check_rule(r, &self.groups) {
                problems.push(format!("rules[{i}] ({}): {e}", r.id));
            }
        }
        for (token, user) in &self.tokens {
            if !users.contains(&user.as_str()) {
                problems.push(format!("tokens: user '{user}' is not a user"));
            }
            if token.len() < reclaim_api::http::auth::MIN_TOKEN_LEN {
                problems.push(format!(
                    "tokens: the token of '{user}' is shorter than {} characters",
                    reclaim_api::http::auth::MIN_TOKEN_LEN
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SeedError::Invalid(problems.join("; ")))
        }
    }

    /// Stores users, groups and rules (replacing ones with the same id), and the tokens as
    /// SHA-256 digests (the file keeps the only copy of each token).
    pub async fn apply(
        &self,
        directory: &dyn Directory,
        rules: &dyn RuleStore,
        tokens: &dyn TokenStore,
    ) -> Result<(), SeedError> {
        self.validate()?;
        for u in &self.users {
            directory.put_user(u).await?;
        }
        for g in &self.groups {
            directory.put_group(g).await?;
        }
        for r in &self.rules {
            rules.put_rule(r).await?;
        }
        for (token, user) in &self.tokens {
            tokens
                .put_token(&reclaim_api::token_digest(token), user)
                .await?;
        }
        Ok(())
    }
}

fn user(id: &str, name: &str, itil: bool, vip: bool, admin: bool) -> User {
    User {
        id: id.into(),
        display_name: name.into(),
        email: Some(format!("{id}@example.com")),
        upn: Some(format!("{id}@example.com")),
        itil,
        vip,
        sam_admin: admin,
    }
}

/// The demo organisation: a sam admin, approvers in two assignment groups, ITIL and non-ITIL
/// users (one without an email address), four rules and a token per person.
pub fn demo() -> SeedFile {
    let mut users = vec![
        user("sam", "Sam Admin", true, false, true),
        user("alice", "Alice Approver", true, false, false),
        user("bob", "Bob Approver", true, false, false),
        user("carol", "Carol SaaS Approver", true, false, false),
        user("tech", "Terry Technician", true, false, false),
    ];
    let people = [
        ("dana", "Dana Designer", false, false),
        ("eli", "Eli Engineer", true, false),
        ("fay", "Fay Finance", false, true),
        ("gus", "GusGardener", false, false),
        ("hana", "Hana Helpdesk", true, false),
        ("ivan", "Ivan Intern", false, false),
        ("jo", "Jo Journalist", false, false),
        ("kim", "Kim Keeper", true, false),
    ];
    users.extend(
        people
            .iter()
            .map(|(id, n, itil, vip)| user(id, n, *itil, *vip, false)),
    );
    users.push(User {
        email: None,
        ..user("nomail", "Nico No-Mail", false, false, false)
    });
    let groups = vec![
        Group {
            id: "desktop-approvers".into(),
            name: "Desktop software approvers".into(),
            email: None,
            members: vec!["alice".into(), "bob".into()],
        },
        Group {
            id: "saas-approvers".into(),
            name: "SaaS approvers".into(),
            email: None,
            members: vec!["carol".into()],
        },
    ];
    let rule = |id: &str,
                name: &str,
                applies: AppliesTo,
                notify: bool,
                days: u32,
                group: &str,
                plugin: Option<&str>| Rule {
        id: id.into(),
        name: name.into(),
        applies_to: Some(applies),
        justification: None,
        notify_user: notify,
        days_before_auto_reclamation: days,
        reminder_days: if days > 6 { vec![3, 6] } else { vec![] },
        assignment_group: Some(group.into()),
        create_candidates: true,
        exclusions: Exclusions {
            vips: true,
            ..Exclusions::default()
        },
        plugin: plugin.map(str::to_string),
        max_revocation_attempts: 5,
        software: vec![],
        criteria: None,
        verify_within_days: 7,
        recheck_days: vec![7, 30],
        price_period: None,
    };
    let rules = vec![
        rule(
            "desktop-unused",
            "Unused desktop software (ask, 14 days)",
            AppliesTo::InstalledSoftware,
            true,
            14,
            "desktop-approvers",
            Some("csd-uninstall"),
        ),
        rule(
            "desktop-manual",
            "Unused desktop software, removed by hand",
            AppliesTo::InstalledSoftware,
            true,
            10,
            "desktop-approvers",
            Some("manual-task"),
        ),
        rule(
            "m365-low-usage",
            "Microsoft 365 low usage (ask, 7 days)",
            AppliesTo::Subscription,
            true,
            7,
            "saas-approvers",
            Some("m365-revoke"),
        ),
        rule(
            "saas-no-notify",
            "SaaS seats of leavers (no notification)",
            AppliesTo::Subscription,
            false,
            0,
            "saas-approvers",
            Some("scim-deprovision"),
        ),
    ];
    // What the demo's usage connectors find: Microsoft 365 licenses nobody used for 30 days
    // (m365-usage) and installs unused for 90 days (csd-inventory).
    let mut m365_inactive = rule(
        "m365-inactive",
        "Microsoft 365 licenses unused 30 days (from the tenant)",
        AppliesTo::Subscription,
        true,
        7,
        "saas-approvers",
        Some("m365-revoke"),
    );
    m365_inactive.software = vec![SoftwareMatch {
        publisher: "Microsoft".into(),
        product: None,
    }];
    m365_inactive.criteria = Some(Criteria::LastUsedBefore { days: 30 });
    let mut installs_unused = rule(
        "installs-unused",
        "Installs unused 90 days (from the device inventory)",
        AppliesTo::InstalledSoftware,
        true,
        14,
        "desktop-approvers",
        Some("csd-uninstall"),
    );
    installs_unused.criteria = Some(Criteria::LastUsedBefore { days: 90 });
    let mut rules = rules;
    rules.extend([m365_inactive, installs_unused]);
    let tokens = [
        ("demo-sam-admin-token", "sam"),
        ("demo-alice-approver-token", "alice"),
        ("demo-bob-approver-token", "bob"),
        ("demo-carol-approver-token", "carol"),
        ("demo-terry-tech-token", "tech"),
        ("demo-dana-user-token", "dana"),
        ("demo-eli-user-token", "eli"),
    ]
    .into_iter()
    .map(|(t, u)| (t.to_string(), u.to_string()))
    .collect();
    SeedFile {
        users,
        groups,
        rules,
        tokens,
    }
}

/// Up to 60 demo candidates (one per seat) across every justification, both kinds of right, four rules and users
/// with and without ITIL, VIP or an email address.
pub fn demo_candidates(seed: &SeedFile) -> Vec<Row> {
    // Prices with their period: yearly subscriptions, a perpetual licence (one-time) and a
    // seat billed monthly, so the savings page shows both of its bases.
    let desktop = [
        ("Adobe", "Acrobat Pro", "24.1", 239.88, "yearly"),
        ("Autodesk", "AutoCAD", "2025", 1_975.00, "yearly"),
        (
            "JetBrains",
            "IntelliJ IDEA Ultimate",
            "2025.2",
            599.00,
            "yearly",
        ),
        (
            "Microsoft",
            "Visio Professional",
            "2021",
            579.99,
            "one-time",
        ),
        ("Tableau", "Tableau Desktop", "2025.1", 900.00, "yearly"),
        ("TechSmith", "Snagit", "2025", 62.99, "yearly"),
    ];
    let saas = [
        (
            "Microsoft",
            "Microsoft 365 E5",
            "06ebc4ee-1bb5-47dd-8120-11324bc54e06",
            684.00,
            "yearly",
        ),
        (
            "Microsoft",
            "Power BI Pro",
            "f8a1db68-be16-40ed-86d5-cb42ce701560",
            120.00,
            "yearly",
        ),
        ("Zoom", "Zoom Pro", "zoom-pro", 149.90, "yearly"),
        ("Slack", "Slack Business+", "slack-bplus", 12.50, "monthly"),
    ];
    let people: Vec<&User> = seed
        .users
        .iter()
        .filter(|u| !u.sam_admin && !["alice", "bob", "carol", "tech"].contains(&u.id.as_str()))
        .collect();
    let mut rows = Vec::new();
    // One open candidate per seat: a user gets each SaaS product once.
    let mut seats = std::collections::BTreeSet::new();
    for i in 0..60usize {
        let Some(u) = people.get(i % people.len().max(1)) else {
            break;
        };
        if i % 3 == 2 && !seats.insert((u.id.clone(), i % saas.len())) {
            continue;
        }
        let justification = Justification::ALL[i % Justification::ALL.len()];
        let mut row = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            row.insert(k.to_string(), v);
        };
        if i % 3 == 2 {
            let (publisher, product, sku, price, period) = saas[i % saas.len()];
            put("applies_to", "subscription".into());
            put("publisher", publisher.into());
            put("product", product.into());
            put("sku", sku.into());
            put("price_per_right", format!("{price:.2}"));
            put("price_period", period.into());
            let rule = if publisher == "Microsoft" {
                "m365-low-usage"
            } else {
                "saas-no-notify"
            };
            put("rule", rule.into());
        } else {
            let (publisher, product, version, price, period) = desktop[i % desktop.len()];
            put("applies_to", "installed-software".into());
            put("publisher", publisher.into());
            put("product", product.into());
            put("version", version.into());
            put("device", format!("LAPTOP-{:03}", 100 + i));
            put("price_per_right", format!("{price:.2}"));
            put("price_period", period.into());
            let rule = if i % 4 == 0 {
                "desktop-manual"
            } else {
                "desktop-unused"
            };
            put("rule", rule.into());
        }
        put("user_id", u.id.clone());
        put("user_name", u.display_name.clone());
        if let Some(e) = &u.email {
            put("user_email", e.clone());
        }
        if let Some(upn) = &u.upn {
            put("user_upn", upn.clone());
        }
        put("user_itil", u.itil.to_string());
        put("user_vip", u.vip.to_string());
        put("justification", justification.as_str().into());
        put("inactive_days", (30 + (i * 17) % 200).to_string());
        put("unused_rights", (1 + i % 3 / 2).to_string());
        rows.push((i + 1, row));
    }
    rows
}
