//! The seed/config file of local mode (users, assignment groups, rules and the bearer tokens
//! people sign in with) and the demo organisation `reclaim serve --demo` loads, with the prices
//! its usage connectors put on what they find.

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
/// users (one without an email address), four rules and a token per person. Its vendors
/// (`reclaim_fakes::organisation`) know these people by the same ids.
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
    // The demo's candidates come from its usage connectors (m365-usage, csd-inventory), so
    // every rule says which usage makes a candidate. The first matching rule by id decides for
    // a usage row: desktop-manual before desktop-unused, m365-dormant before m365-low-usage.
    let mut desktop_manual = rule(
        "desktop-manual",
        "Desktop software unused 90 days, removed by a technician (ask, 10 days)",
        AppliesTo::InstalledSoftware,
        true,
        10,
        "desktop-approvers",
        Some("manual-task"),
    );
    // Their licences are tied to the machine: a technician deactivates them before removal.
    desktop_manual.software = ["Autodesk", "Tableau"]
        .into_iter()
        .map(|publisher| SoftwareMatch {
            publisher: publisher.into(),
            product: None,
        })
        .collect();
    desktop_manual.criteria = Some(Criteria::LastUsedBefore { days: 90 });
    let mut desktop_unused = rule(
        "desktop-unused",
        "Desktop software unused 90 days (ask, 14 days)",
        AppliesTo::InstalledSoftware,
        true,
        14,
        "desktop-approvers",
        Some("csd-uninstall"),
    );
    desktop_unused.criteria = Some(Criteria::LastUsedBefore { days: 90 });
    let microsoft = vec![SoftwareMatch {
        publisher: "Microsoft".into(),
        product: None,
    }];
    let mut m365_dormant = rule(
        "m365-dormant",
        "Microsoft 365 licenses unused 90 days (no notification)",
        AppliesTo::Subscription,
        false,
        0,
        "saas-approvers",
        Some("m365-revoke"),
    );
    m365_dormant.software = microsoft.clone();
    m365_dormant.criteria = Some(Criteria::LastUsedBefore { days: 90 });
    let mut m365_low_usage = rule(
        "m365-low-usage",
        "Microsoft 365 licenses unused 30 days (ask, 7 days)",
        AppliesTo::Subscription,
        true,
        7,
        "saas-approvers",
        Some("m365-revoke"),
    );
    m365_low_usage.software = microsoft;
    // Used now and then, not at all lately: asked first, and counted as low usage.
    m365_low_usage.justification = Some(Justification::LowUsage);
    m365_low_usage.criteria = Some(Criteria::LastUsedBefore { days: 30 });
    let rules = vec![desktop_manual, desktop_unused, m365_dormant, m365_low_usage];
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

/// What the demo organisation pays for its Microsoft 365 licenses, by SKU part number: the
/// `prices` of its m365-usage connector (Graph reports no prices). Power BI Pro is billed
/// monthly, so the savings show both a monthly and a yearly price on the yearly basis.
pub const DEMO_M365_PRICES: &str = "\
SPE_E5 = 684.00 yearly
SPE_E3 = 432.00 yearly
POWER_BI_PRO = 14.00 monthly
VISIOCLIENT = 180.00 yearly";

/// What the demo organisation pays for its desktop software, by the name its inventory shows:
/// the `prices` of its csd-inventory connector. Visio Professional is a perpetual licence
/// (one-time), so the savings page shows its one-time savings apart.
pub const DEMO_DESKTOP_PRICES: &str = "\
Adobe Acrobat Pro = 239.88 yearly
Autodesk AutoCAD = 1975.00 yearly
JetBrains IntelliJ IDEA Ultimate = 599.00 yearly
Microsoft Visio Professional = 579.99 one-time
Tableau Desktop = 900.00 yearly
TechSmith Snagit = 62.99 yearly";
