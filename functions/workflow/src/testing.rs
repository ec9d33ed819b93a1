//! Sample records for tests and examples in every crate (so each does not invent its own).

use crate::model::{
    AppliesTo, Candidate, Justification, PricePeriod, Revocation, RuleSnapshot, Software, State,
    UserRef,
};
use chrono::{TimeZone, Utc};

/// A Ready candidate whose rule notifies the user and waits 14 days, with an ITIL user that has
/// an email and an assignment group `approvers`.
pub fn candidate() -> Candidate {
    let t = Utc
        .with_ymd_and_hms(2026, 1, 5, 9, 0, 0)
        .single()
        .unwrap_or_default();
    Candidate {
        id: "c-1".into(),
        number: "RC0000001".into(),
        applies_to: AppliesTo::InstalledSoftware,
        software: Software {
            publisher: "Adobe".into(),
            product: "Acrobat Pro".into(),
            version: Some("24.1".into()),
            sku: None,
            subscription_id: None,
        },
        device: Some("LAPTOP-042".into()),
        user: Some(UserRef {
            id: "u-1".into(),
            display_name: "Uma User".into(),
            email: Some("uma@example.com".into()),
            upn: Some("uma@example.com".into()),
            itil: true,
            vip: false,
        }),
        justification: Justification::Unused,
        inactive_days: Some(120),
        last_used_at: None,
        unused_rights: 1,
        price_per_right_cents: 23_988,
        price_period: PricePeriod::Yearly,
        rule: RuleSnapshot {
            id: "r-1".into(),
            name: "Unused desktop software".into(),
            notify_user: true,
            days_before_auto_reclamation: 14,
            reminder_days: vec![3, 7],
            plugin: None,
            max_revocation_attempts: 3,
            verify_within_days: 7,
            recheck_days: vec![7, 30],
        },
        assignment_group: Some("approvers".into()),
        assigned_to: None,
        state: State::Ready,
        version: 0,
        opened_at: t,
        updated_at: t,
        closed_at: None,
        asked_at: None,
        deadline_at: None,
        due_at: None,
        reminders_sent: 0,
        revocation: Revocation::default(),
        state_since: None,
        attention: None,
        attention_from: None,
        work_notes: Vec::new(),
        verification: None,
        reopened_from: None,
        provisioned_at: None,
        exclusion_override: None,
    }
}

pub mod contract;
