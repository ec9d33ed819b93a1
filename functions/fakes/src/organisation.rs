//! The vendors of `reclaim serve --demo`'s organisation: its Microsoft 365 tenant and its
//! device inventory, holding the licenses and installs of the people in the demo's directory
//! (`reclaim_local::seed::demo`).
//!
//! The demo's candidates come from running its two usage connectors against these at start,
//! so the data is arranged for what the demo shows: every person's vendor id is their id in
//! the directory (the connectors report `user-id = id`), so each candidate links to someone who
//! can sign in; some people used their software lately and get no candidate; the rest spread
//! over every demo rule, several publishers and products, ITIL and non-ITIL people, a VIP
//! (`fay`) and someone without an email address (`nomail`).
//!
//! The plugin tests keep their own sample data ([`GraphState::demo`], [`CsdState::demo`]),
//! which shows every path a plugin must handle rather than an organisation.

use crate::graph::{SKU_E3, SKU_E5, SKU_POWER_BI, SKU_VISIO};
use crate::graph_usage::Profile;
use crate::{CsdState, GraphState};

/// The mail domain of the demo directory.
const DOMAIN: &str = "example.com";

/// The Microsoft 365 tenant: each person's licenses and when they last used Microsoft 365.
/// Lenient, so a license the demo reclaims is there whatever was arranged.
pub fn graph() -> GraphState {
    let state = GraphState::new("demo-tenant", "reclaim-demo", "demo-client-secret");
    state.set_lenient(true);
    // (id, name, licenses, account created days ago, last active days ago)
    type Licensed<'a> = (&'a str, &'a str, &'a [&'a str], u32, Option<u32>);
    let people: [Licensed; 13] = [
        ("sam", "Sam Admin", &[SKU_E5.0], 1900, Some(1)),
        ("alice", "Alice Approver", &[SKU_E3.0], 1400, Some(2)),
        ("bob", "Bob Approver", &[SKU_E3.0], 1300, Some(3)),
        (
            "carol",
            "Carol SaaS Approver",
            &[SKU_E3.0, SKU_POWER_BI.0],
            1100,
            Some(1),
        ),
        ("tech", "Terry Technician", &[SKU_E3.0], 950, Some(0)),
        (
            "dana",
            "Dana Designer",
            &[SKU_E5.0, SKU_VISIO.0],
            800,
            Some(45),
        ),
        (
            "eli",
            "Eli Engineer",
            &[SKU_E3.0, SKU_POWER_BI.0],
            1100,
            Some(120),
        ),
        (
            "fay",
            "Fay Finance",
            &[SKU_E5.0, SKU_POWER_BI.0],
            1500,
            Some(200),
        ),
        // Visio comes to gus through the Visio users group (below).
        ("gus", "GusGardener", &[SKU_E3.0], 600, Some(60)),
        (
            "hana",
            "Hana Helpdesk",
            &[SKU_E5.0, SKU_POWER_BI.0],
            900,
            Some(35),
        ),
        // An intern whose licenses were never used.
        ("ivan", "Ivan Intern", &[SKU_E3.0, SKU_POWER_BI.0], 20, None),
        (
            "jo",
            "Jo Journalist",
            &[SKU_E5.0, SKU_VISIO.0],
            700,
            Some(95),
        ),
        (
            "kim",
            "Kim Keeper",
            &[SKU_E3.0, SKU_POWER_BI.0, SKU_VISIO.0],
            1300,
            Some(40),
        ),
    ];
    for (id, name, skus, created, active) in people {
        let upn = format!("{id}@{DOMAIN}");
        state.add_licensed_user(id, &upn, name, skus, created, active);
    }
    // Signs in with a principal name but has no mailbox: asking them first needs an address
    // (the rule that asks puts the candidate in Attention Required until someone adds one).
    let upn = format!("nomail@{DOMAIN}");
    state.add_user("nomail", &upn, &[SKU_E3.0]);
    state.set_profile(
        "nomail",
        Profile {
            display_name: "Nico No-Mail".to_owned(),
            mail: None,
            created_days_ago: 400,
            last_active_days_ago: Some(50),
        },
    );
    state.add_group("g-visio", "Visio users", &[SKU_VISIO.0], &["gus"]);
    state
}

/// The device inventory: one laptop per person (a lobby kiosk nobody owns), six desktop
/// products, and when each was last used on each laptop. Lenient, like the tenant.
pub fn csd() -> CsdState {
    let state = CsdState::new("demo-csd-token");
    state.set_lenient(true);
    let laptops = [
        ("LAPTOP-101", "sam", "Sam Admin"),
        ("LAPTOP-102", "alice", "Alice Approver"),
        ("LAPTOP-103", "bob", "Bob Approver"),
        ("LAPTOP-104", "dana", "Dana Designer"),
        ("LAPTOP-105", "carol", "Carol SaaS Approver"),
        ("LAPTOP-106", "tech", "Terry Technician"),
        ("LAPTOP-107", "eli", "Eli Engineer"),
        ("LAPTOP-110", "fay", "Fay Finance"),
        ("LAPTOP-112", "gus", "GusGardener"),
        ("LAPTOP-115", "hana", "Hana Helpdesk"),
        ("LAPTOP-118", "ivan", "Ivan Intern"),
        ("LAPTOP-121", "jo", "Jo Journalist"),
        ("LAPTOP-124", "kim", "Kim Keeper"),
    ];
    for (device, id, name) in laptops {
        state.set_device_user(device, id, &format!("{id}@{DOMAIN}"), name);
    }
    // (app id, name, publisher, version, [(device, last used days ago; None: never)])
    type App<'a> = (
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        &'a [(&'a str, Option<u32>)],
    );
    let apps: [App; 6] = [
        (
            "app-acrobat",
            "Adobe Acrobat Pro",
            "Adobe",
            "24.002.20965",
            &[
                ("LAPTOP-101", Some(1)),
                ("LAPTOP-102", Some(5)),
                ("LAPTOP-104", Some(120)),
                ("LAPTOP-107", Some(200)),
                ("LAPTOP-112", Some(95)),
                ("LAPTOP-115", None),
                ("LAPTOP-118", Some(150)),
                ("LAPTOP-121", Some(2)),
                ("LAPTOP-124", Some(300)),
            ],
        ),
        (
            "app-autocad",
            "Autodesk AutoCAD",
            "Autodesk",
            "2025.1",
            &[
                ("LAPTOP-104", Some(91)),
                ("LAPTOP-106", Some(3)),
                ("LAPTOP-112", Some(180)),
                ("LAPTOP-118", Some(120)),
                ("LAPTOP-121", Some(100)),
                ("KIOSK-LOBBY", None),
            ],
        ),
        (
            "app-intellij",
            "JetBrains IntelliJ IDEA Ultimate",
            "JetBrains",
            "2025.2",
            &[
                ("LAPTOP-107", Some(10)),
                ("LAPTOP-115", Some(130)),
                ("LAPTOP-118", Some(365)),
                ("LAPTOP-124", Some(100)),
            ],
        ),
        (
            "app-visio",
            "Microsoft Visio Professional",
            "Microsoft",
            "16.0.17928",
            &[
                ("LAPTOP-103", Some(2)),
                ("LAPTOP-104", Some(220)),
                ("LAPTOP-110", Some(5)),
                ("LAPTOP-112", Some(100)),
                ("LAPTOP-121", Some(150)),
            ],
        ),
        (
            "app-tableau",
            "Tableau Desktop",
            "Tableau",
            "2025.1",
            &[
                ("LAPTOP-105", Some(1)),
                ("LAPTOP-110", Some(240)),
                ("LAPTOP-115", Some(180)),
                ("LAPTOP-124", Some(110)),
            ],
        ),
        (
            "app-snagit",
            "TechSmith Snagit",
            "TechSmith",
            "2025.1",
            &[
                ("LAPTOP-104", Some(130)),
                ("LAPTOP-106", Some(2)),
                ("LAPTOP-107", Some(95)),
                ("LAPTOP-110", Some(300)),
                ("LAPTOP-112", Some(1)),
                ("LAPTOP-118", Some(200)),
                ("LAPTOP-121", Some(160)),
                ("LAPTOP-124", Some(140)),
            ],
        ),
    ];
    for (app, name, publisher, version, installs) in apps {
        let devices: Vec<&str> = installs.iter().map(|(d, _)| *d).collect();
        state.add_app(app, name, &devices);
        state.set_app_details(app, Some(publisher), version);
        for (device, days) in installs {
            if let Some(days) = days {
                state.set_last_used(app, device, *days);
            }
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_licensed_or_installed_person_has_their_directory_id() {
        let directory = [
            "sam", "alice", "bob", "carol", "tech", "dana", "eli", "fay", "gus", "hana", "ivan",
            "jo", "kim", "nomail",
        ];
        let licensed = graph().license_assignments();
        assert_eq!(licensed.len(), 24, "{licensed:?}");
        assert!(licensed
            .iter()
            .all(|(u, _)| directory.contains(&u.as_str())));
        let installs = csd().installs(true);
        assert_eq!(installs.len(), 35, "{installs:?}");
        assert_eq!(csd().installs(false).len(), 36, "and the lobby kiosk");
    }
}
