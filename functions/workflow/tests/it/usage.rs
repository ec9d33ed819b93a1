//! Rule evaluation over usage rows: each criterion, each exclusion, dedupe and cancel.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use chrono::Duration;
use common::{in_state, now};
use reclaim_workflow::intake::FieldError;
use reclaim_workflow::usage::{evaluate, parse_usage_row, stale_alert, Decision, UsageRecord};
use reclaim_workflow::{
    AppliesTo, Criteria, Exclusions, Group, Justification, PricePeriod, Rule, SoftwareMatch, State,
};

/// The deployment default the tests evaluate with.
const YEARLY: PricePeriod = PricePeriod::Yearly;
use std::collections::BTreeMap;

fn rule(criteria: Criteria) -> Rule {
    Rule {
        id: "r".into(),
        name: "rule".into(),
        applies_to: None,
        justification: None,
        notify_user: true,
        days_before_auto_reclamation: 14,
        reminder_days: vec![],
        assignment_group: Some("approvers".into()),
        create_candidates: true,
        exclusions: Exclusions::default(),
        plugin: None,
        max_revocation_attempts: 5,
        software: vec![],
        criteria: Some(criteria),
        verify_within_days: 7,
        recheck_days: vec![7, 30],
        price_period: None,
    }
}

fn row(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn usage(
    user: &str,
    product: &str,
    last_used_days_ago: Option<i64>,
    hours: Option<f64>,
) -> UsageRecord {
    let last = last_used_days_ago.map(|d| (now() - Duration::days(d)).to_rfc3339());
    let hours = hours.map(|h| h.to_string());
    let mut pairs = vec![
        ("user_id", user),
        ("user_email", "x@example.com"),
        ("device", "PC-1"),
        ("publisher", "Adobe"),
        ("product", product),
        ("price_per_right", "10.00"),
    ];
    if let Some(l) = &last {
        pairs.push(("last_used_at", l));
    }
    if let Some(h) = &hours {
        pairs.push(("hours_used", h));
    }
    parse_usage_row(&row(&pairs)).unwrap()
}

fn decide(r: &Rule, u: UsageRecord) -> Option<Decision> {
    let e = evaluate(std::slice::from_ref(r), &[(1, u)], &[], &[], now(), YEARLY);
    e.findings.first().map(|f| f.decision.clone())
}

#[test]
fn each_criterion_selects_what_it_names() {
    let cases: Vec<(Criteria, UsageRecord, bool, Justification)> = vec![
        (
            Criteria::LastUsedBefore { days: 90 },
            usage("u", "Acrobat", Some(120), None),
            true,
            Justification::Unused,
        ),
        (
            Criteria::LastUsedBefore { days: 90 },
            usage("u", "Acrobat", Some(10), None),
            false,
            Justification::Unused,
        ),
        (
            Criteria::LastUsedBefore { days: 90 },
            usage("u", "Acrobat", None, None),
            true,
            Justification::Unused,
        ),
        (
            Criteria::UsageBelow { hours: 5.0 },
            usage("u", "Acrobat", Some(1), Some(2.5)),
            true,
            Justification::LowUsage,
        ),
        (
            Criteria::UsageBelow { hours: 5.0 },
            usage("u", "Acrobat", Some(1), Some(40.0)),
            false,
            Justification::LowUsage,
        ),
        (
            Criteria::UsageBelow { hours: 5.0 },
            usage("u", "Acrobat", Some(1), None),
            false,
            Justification::LowUsage,
        ),
        (
            Criteria::NeverUsed,
            usage("u", "Acrobat", None, None),
            true,
            Justification::Unused,
        ),
        (
            Criteria::NeverUsed,
            usage("u", "Acrobat", Some(400), None),
            false,
            Justification::Unused,
        ),
        (
            Criteria::Consolidation {
                from: vec![SoftwareMatch {
                    publisher: "adobe".into(),
                    product: Some("acrobat".into()),
                }],
            },
            usage("u", "Acrobat", Some(1), Some(50.0)),
            true,
            Justification::Consolidation,
        ),
    ];
    for (criteria, u, selected, justification) in cases {
        let r = rule(criteria.clone());
        let e = evaluate(std::slice::from_ref(&r), &[(7, u)], &[], &[], now(), YEARLY);
        assert_eq!(e.create.len(), usize::from(selected), "{criteria:?}");
        if selected {
            assert_eq!(e.findings[0].justification, justification.as_str());
            assert_eq!(e.create[0].1.justification, justification);
            assert_eq!(e.create[0].0, 7, "the line travels with the draft");
        }
    }
}

#[test]
fn overlapping_keeps_the_first_listed_product_the_user_holds() {
    let r = rule(Criteria::Overlapping {
        products: vec![
            SoftwareMatch {
                publisher: "Adobe".into(),
                product: Some("Acrobat Pro".into()),
            },
            SoftwareMatch {
                publisher: "Adobe".into(),
                product: Some("Acrobat Standard".into()),
            },
        ],
    });
    let rows = vec![
        (1, usage("both", "Acrobat Pro", Some(1), None)),
        (2, usage("both", "Acrobat Standard", Some(1), None)),
        (3, usage("one", "Acrobat Standard", Some(1), None)),
    ];
    let e = evaluate(&[r], &rows, &[], &[], now(), YEARLY);
    let created: Vec<_> = e
        .create
        .iter()
        .map(|(l, d)| (*l, d.software.product.clone()))
        .collect();
    assert_eq!(created, vec![(2, "Acrobat Standard".to_string())]);
}

#[test]
fn each_exclusion_keeps_its_users_out_and_says_why() {
    let base = rule(Criteria::NeverUsed);
    let mut by_user = base.clone();
    by_user.exclusions.users = vec!["ceo".into()];
    let mut by_group = base.clone();
    by_group.exclusions.groups = vec!["board".into()];
    let mut vips = base.clone();
    vips.exclusions.vips = true;
    let mut new_joiners = base.clone();
    new_joiners.exclusions.provisioned_within_days = Some(60);

    let fresh = parse_usage_row(&row(&[
        ("user_id", "new"),
        ("device", "PC"),
        ("publisher", "Adobe"),
        ("product", "Acrobat"),
        ("provisioned_at", &(now() - Duration::days(10)).to_rfc3339()),
    ]))
    .unwrap();
    let vip = parse_usage_row(&row(&[
        ("user_id", "v"),
        ("user_vip", "yes"),
        ("device", "PC"),
        ("publisher", "Adobe"),
        ("product", "Acrobat"),
    ]))
    .unwrap();
    let listed_group = parse_usage_row(&row(&[
        ("user_id", "m"),
        ("user_groups", "staff; board"),
        ("device", "PC"),
        ("publisher", "Adobe"),
        ("product", "Acrobat"),
    ]))
    .unwrap();
    let directory_group = vec![Group {
        id: "board".into(),
        name: "Board".into(),
        email: None,
        members: vec!["d".into()],
    }];

    assert!(
        matches!(decide(&by_user, usage("ceo", "Acrobat", None, None)), Some(Decision::Excluded(w)) if w.contains("ceo"))
    );
    assert_eq!(
        decide(&by_user, usage("other", "Acrobat", None, None)),
        Some(Decision::Create)
    );
    assert!(
        matches!(decide(&by_group, listed_group), Some(Decision::Excluded(w)) if w.contains("board"))
    );
    let e = evaluate(
        std::slice::from_ref(&by_group),
        &[(1, usage("d", "Acrobat", None, None))],
        &[],
        &directory_group,
        now(),
        YEARLY,
    );
    assert!(
        matches!(&e.findings[0].decision, Decision::Excluded(_)),
        "directory membership counts too"
    );
    assert!(matches!(decide(&vips, vip), Some(Decision::Excluded(w)) if w.contains("VIP")));
    assert!(
        matches!(decide(&new_joiners, fresh.clone()), Some(Decision::Excluded(w)) if w.contains("60 days"))
    );
    assert_eq!(decide(&base, fresh), Some(Decision::Create));
}

#[test]
fn report_only_rules_create_nothing_but_report_what_they_would() {
    let mut r = rule(Criteria::NeverUsed);
    r.create_candidates = false;
    let e = evaluate(
        &[r],
        &[(1, usage("u", "Acrobat", None, None))],
        &[],
        &[],
        now(),
        YEARLY,
    );
    assert!(e.create.is_empty());
    assert_eq!(e.findings[0].decision, Decision::WouldCreate);
}

#[test]
fn never_a_second_open_candidate_for_the_same_user_and_software() {
    let r = rule(Criteria::NeverUsed);
    let mut open = in_state(State::AwaitingApproval);
    open.user.as_mut().unwrap().id = "u".into();
    open.software.publisher = "ADOBE".into();
    open.software.product = "acrobat".into();
    open.device = Some("pc-1".into());
    let rows = vec![
        (1, usage("u", "Acrobat", None, None)),
        (2, usage("v", "Acrobat", None, None)),
        (3, usage("v", "Acrobat", None, None)),
    ];
    let e = evaluate(
        std::slice::from_ref(&r),
        &rows,
        std::slice::from_ref(&open),
        &[],
        now(),
        YEARLY,
    );
    let decisions: Vec<_> = e.findings.iter().map(|f| f.decision.clone()).collect();
    assert_eq!(decisions[0], Decision::AlreadyOpen(open.number.clone()));
    assert_eq!(decisions[1], Decision::Create);
    assert!(
        matches!(decisions[2], Decision::AlreadyOpen(_)),
        "duplicates inside one import too"
    );
    // A closed candidate does not block a new one.
    let mut closed = open.clone();
    closed.state = State::ClosedSkipped;
    let e = evaluate(&[r], &rows[..1], &[closed], &[], now(), YEARLY);
    assert_eq!(e.create.len(), 1);
}

#[test]
fn usage_after_a_candidate_opened_marks_the_user_active_again() {
    let r = rule(Criteria::LastUsedBefore { days: 90 });
    let mut open = in_state(State::AwaitingUser);
    open.user.as_mut().unwrap().id = "u".into();
    open.software.product = "Acrobat".into();
    open.device = Some("PC-1".into());
    open.opened_at = now() - Duration::days(5);
    let again = evaluate(
        std::slice::from_ref(&r),
        &[(1, usage("u", "Acrobat", Some(1), None))],
        std::slice::from_ref(&open),
        &[],
        now(),
        YEARLY,
    );
    assert_eq!(again.active_again.len(), 1);
    assert_eq!(again.active_again[0].number, open.number);
    let stale_usage = evaluate(
        &[r],
        &[(1, usage("u", "Acrobat", Some(30), None))],
        &[open],
        &[],
        now(),
        YEARLY,
    );
    assert!(
        stale_usage.active_again.is_empty(),
        "use before the candidate opened is old news"
    );
}

#[test]
fn rules_only_look_at_their_software_and_kind() {
    let mut r = rule(Criteria::NeverUsed);
    r.software = vec![SoftwareMatch {
        publisher: "Autodesk".into(),
        product: None,
    }];
    assert_eq!(decide(&r, usage("u", "Acrobat", None, None)), None);
    let mut r = rule(Criteria::NeverUsed);
    r.applies_to = Some(AppliesTo::Subscription);
    assert_eq!(decide(&r, usage("u", "Acrobat", None, None)), None);
}

#[test]
fn bad_usage_rows_name_every_bad_field() {
    let errors = parse_usage_row(&row(&[
        ("publisher", "Adobe"),
        ("hours_used", "lots"),
        ("last_used_at", "yesterday"),
        ("colour", "red"),
    ]))
    .unwrap_err();
    let fields: Vec<_> = errors
        .iter()
        .map(|e: &FieldError| e.field.as_str())
        .collect();
    for f in [
        "colour",
        "user_id",
        "device",
        "product",
        "last_used_at",
        "hours_used",
    ] {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
}

#[test]
fn stale_alerts_flag_long_open_and_long_revocations() {
    let mut c = in_state(State::AwaitingUser);
    c.opened_at = now() - Duration::days(31);
    assert!(stale_alert(&c, now())
        .unwrap()
        .reason
        .contains("open for 31 days"));
    c.opened_at = now() - Duration::days(5);
    assert!(stale_alert(&c, now()).is_none());
    let mut r = in_state(State::AwaitingRevocation);
    r.opened_at = now() - Duration::days(10);
    r.state_since = Some(now() - Duration::days(61));
    assert!(stale_alert(&r, now())
        .unwrap()
        .reason
        .contains("Awaiting Revocation for 61 days"));
    let mut closed = in_state(State::ClosedComplete);
    closed.opened_at = now() - Duration::days(100);
    assert!(stale_alert(&closed, now()).is_none());
}
