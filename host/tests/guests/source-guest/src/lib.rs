//! A component of the `reclaimer-and-source` world for the host's connector tests. Config
//! `mode` picks how `collect` behaves; `pages` (default 3) and `rows` (default 2) size it:
//!
//! | mode          | `collect`                                                            |
//! |---------------|----------------------------------------------------------------------|
//! | `pages`       | `rows` rows per page, cursors `"1"`, `"2"`, … until `pages` pages      |
//! | `endless`     | like `pages`, but never finishes                                      |
//! | `same-cursor` | answers the cursor it was given (or `"stuck"`) as the next one         |
//! | `slow`        | spins until the host stops it                                         |
//! | `transient`   | a transient error with retry-after 7                                  |
//!
//! `reclaim` answers `removed("ok")` and `verify` `absent`, so the same component proves both
//! worlds load and run from one file.

wit_bindgen::generate!({
    path: "../../../../wit",
    world: "reclaim:plugin/reclaimer-and-source",
    generate_all,
});

use exports::reclaim::plugin::collector::Guest as CollectorGuest;
use reclaim::plugin::config;
use reclaim::plugin::types::{AppliesTo, Justification, TransientError};
use reclaim::plugin::usage_types::{Note, Page, SourceInfo, UsageRow};

struct SourceGuest;

fn number(key: &str, default: u32) -> u32 {
    config::get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn row(page: u32, i: u32) -> UsageRow {
    UsageRow {
        user_id: format!("u-{page}-{i}"),
        user_name: Some(format!("User {page}.{i}")),
        user_email: Some(format!("u{page}.{i}@example.com")),
        user_upn: None,
        user_groups: vec!["staff".into()],
        user_vip: Some(false),
        provisioned_at: Some("2024-01-15T09:00:00Z".into()),
        applies_to: AppliesTo::Subscription,
        publisher: "Example".into(),
        product: "Example Pro".into(),
        version: None,
        sku: Some("EX-PRO".into()),
        subscription_id: None,
        device: None,
        last_used_at: Some("2026-01-02".into()),
        hours_used: Some(1.5),
        assigned_at: None,
        price_per_right: Some("12.50".into()),
        price_period: None,
    }
}

impl Guest for SourceGuest {
    fn describe() -> PluginInfo {
        PluginInfo {
            id: "source-guest".into(),
            name: "Source test guest".into(),
            version: "0.1.0".into(),
            vendor: "Reclaim tests".into(),
            applies_to: vec![AppliesTo::Subscription],
            justifications: vec![Justification::Unused],
            config_keys: vec![],
            secrets: vec![],
        }
    }

    fn reclaim(_req: Request) -> Result<Outcome, PluginError> {
        Ok(Outcome::Removed("ok".into()))
    }

    fn verify(_req: Request) -> Result<Presence, PluginError> {
        Ok(Presence::Absent)
    }
}

impl CollectorGuest for SourceGuest {
    fn describe_source() -> SourceInfo {
        SourceInfo {
            id: "source-guest".into(),
            name: "Source test guest".into(),
            version: "0.1.0".into(),
            vendor: "Reclaim tests".into(),
            reports: vec![AppliesTo::Subscription],
            publishers: vec!["Example".into()],
            description: "rows made up from its config".into(),
            config_keys: vec![],
            secrets: vec![],
        }
    }

    fn collect(cursor: Option<String>) -> Result<Page, PluginError> {
        let mode = config::get("mode").unwrap_or_else(|| "pages".into());
        let page: u32 = cursor.as_deref().and_then(|c| c.parse().ok()).unwrap_or(0);
        let (pages, rows) = (number("pages", 3), number("rows", 2));
        match mode.as_str() {
            "slow" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "transient" => Err(PluginError::Transient(TransientError {
                message: "vendor busy".into(),
                retry_after_secs: Some(7),
            })),
            "same-cursor" => Ok(Page {
                rows: vec![row(page, 0)],
                next_cursor: Some(cursor.unwrap_or_else(|| "stuck".into())),
                notes: vec![],
            }),
            _ => {
                let endless = mode == "endless";
                let next = page + 1;
                Ok(Page {
                    rows: (0..rows).map(|i| row(page, i)).collect(),
                    next_cursor: (endless || next < pages).then(|| next.to_string()),
                    notes: vec![Note {
                        reason: "made-up rows skipped".into(),
                        count: 1,
                    }],
                })
            }
        }
    }
}

export!(SourceGuest);
