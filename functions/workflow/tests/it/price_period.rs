//! Prices with a period: where a candidate's period comes from, how savings put monthly,
//! yearly and one-time prices on one stated basis, and what data stored before periods existed
//! means now.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use chrono::Duration;
use common::{in_state, now};
use reclaim_workflow::intake::{parse_row, Known};
use reclaim_workflow::savings::Savings;
use reclaim_workflow::usage::{evaluate, parse_usage_row};
use reclaim_workflow::{
    testing, Candidate, Criteria, Exclusions, PricePeriod, Rule, Saving, State,
};
use std::collections::BTreeMap;

use PricePeriod::{Monthly, OneTime, Yearly};

fn row(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn rule(period: Option<PricePeriod>) -> Rule {
    Rule {
        id: "r".into(),
        name: "rule".into(),
        applies_to: None,
        justification: None,
        notify_user: true,
        days_before_auto_reclamation: 14,
        reminder_days: vec![],
        assignment_group: None,
        create_candidates: true,
        exclusions: Exclusions::default(),
        plugin: None,
        max_revocation_attempts: 5,
        software: vec![],
        criteria: Some(Criteria::NeverUsed),
        verify_within_days: 7,
        recheck_days: vec![7, 30],
        price_period: period,
    }
}

fn candidate_row(period: Option<&str>) -> BTreeMap<String, String> {
    let mut pairs = vec![
        ("publisher", "Adobe"),
        ("product", "Acrobat Pro"),
        ("device", "PC-1"),
        ("user_id", "uma"),
        ("justification", "unused"),
        ("price_per_right", "100.00"),
    ];
    if let Some(p) = period {
        pairs.push(("price_period", p));
    }
    row(&pairs)
}

/// The period a candidate import gives a row, with this rule and deployment default.
fn imported(
    period: Option<&str>,
    rule_period: Option<PricePeriod>,
    deployment: PricePeriod,
) -> PricePeriod {
    let rules = [rule(rule_period)];
    let known = Known {
        rules: &rules,
        groups: &[],
        price_period: deployment,
    };
    parse_row(&candidate_row(period), known)
        .unwrap()
        .price_period
}

/// The period a usage import gives a row, with this rule and deployment default.
fn from_usage(
    period: Option<&str>,
    rule_period: Option<PricePeriod>,
    deployment: PricePeriod,
) -> PricePeriod {
    let mut pairs = vec![
        ("user_id", "uma"),
        ("device", "PC-1"),
        ("publisher", "Adobe"),
        ("product", "Acrobat Pro"),
        ("price_per_right", "100.00"),
    ];
    if let Some(p) = period {
        pairs.push(("price_period", p));
    }
    let usage = parse_usage_row(&row(&pairs)).unwrap();
    let e = evaluate(
        &[rule(rule_period)],
        &[(2, usage)],
        &[],
        &[],
        now(),
        deployment,
    );
    let (_, draft) = e.create.first().expect("the rule creates a candidate");
    draft.price_period
}

#[test]
fn the_row_wins_over_the_rule_and_the_rule_over_the_deployment() {
    assert_eq!(
        PricePeriod::resolve(Some(OneTime), Some(Monthly), Yearly),
        OneTime
    );
    assert_eq!(PricePeriod::resolve(None, Some(Monthly), OneTime), Monthly);
    assert_eq!(PricePeriod::resolve(None, None, Monthly), Monthly);
    for period in [imported, from_usage] {
        assert_eq!(period(Some("one-time"), Some(Monthly), Yearly), OneTime);
        assert_eq!(period(None, Some(Monthly), Yearly), Monthly);
        assert_eq!(period(None, None, Monthly), Monthly);
        assert_eq!(period(Some(""), None, OneTime), OneTime, "blank is absent");
    }
}

#[test]
fn an_unknown_period_is_an_error_on_its_field_in_both_imports() {
    let rules = [rule(None)];
    let known = Known {
        rules: &rules,
        groups: &[],
        price_period: Yearly,
    };
    let errors = parse_row(&candidate_row(Some("weekly")), known).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field, "price_period");
    assert_eq!(
        errors[0].message,
        "'weekly' is not one of monthly, yearly, one-time"
    );
    let errors = parse_usage_row(&row(&[
        ("user_id", "uma"),
        ("device", "PC-1"),
        ("publisher", "Adobe"),
        ("product", "Acrobat Pro"),
        ("price_period", "Yearly"),
    ]))
    .unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field, "price_period");
    assert!(errors[0].message.starts_with("'Yearly' is not one of"));
}

fn priced(state: State, cents: i64, period: PricePeriod) -> Candidate {
    let mut c = in_state(state);
    c.price_per_right_cents = cents;
    c.unused_rights = 1;
    c.price_period = period;
    c
}

#[test]
fn savings_count_a_month_twelve_times_a_year_and_one_time_prices_apart() {
    let monthly = priced(State::Ready, 1_000, Monthly);
    let yearly = priced(State::Ready, 50_000, Yearly);
    let perpetual = priced(State::Ready, 40_000, OneTime);
    assert_eq!(
        monthly.saving(),
        Saving {
            cents: 12_000,
            basis: Yearly
        }
    );
    assert_eq!(monthly.potential_savings_cents(), 1_000, "its own period");
    assert_eq!(yearly.saving().cents, 50_000);
    assert_eq!(perpetual.saving().basis, OneTime);

    let mut closed = priced(State::ClosedComplete, 2_000, Monthly);
    closed.closed_at = Some(now());
    let mut closed_perpetual = priced(State::ClosedComplete, 30_000, OneTime);
    closed_perpetual.closed_at = Some(now());
    let s = Savings::of([&monthly, &yearly, &perpetual, &closed, &closed_perpetual]);
    assert_eq!(s.yearly().potential_cents, 62_000);
    assert_eq!(s.yearly().actual_cents, 24_000);
    assert_eq!(s.yearly().candidates, 3);
    assert_eq!(s.one_time().potential_cents, 40_000);
    assert_eq!(s.one_time().actual_cents, 30_000);
    assert_eq!(s.one_time().candidates, 2);
    assert_eq!(s.actual_by_month.get("2026-03"), Some(&24_000));
    assert_eq!(s.one_time_by_month.get("2026-03"), Some(&30_000));
    let adobe = &s.by_publisher["Adobe"];
    assert_eq!(
        (adobe.yearly.potential_cents, adobe.one_time.potential_cents),
        (62_000, 40_000)
    );

    let csv = s.to_csv();
    assert!(
        csv.contains("total,all,per year,620.00,240.00,240.00,0.00,0.00,3\n"),
        "{csv}"
    );
    assert!(
        csv.contains("total,all,one-time,400.00,300.00,300.00,0.00,0.00,2\n"),
        "{csv}"
    );
    assert!(
        csv.contains("publisher,Adobe,one-time,400.00,300.00,300.00,0.00,0.00,2\n"),
        "{csv}"
    );
    assert!(
        csv.contains("month,2026-03,one-time,,300.00,,,,\n"),
        "{csv}"
    );

    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(
        json["potential_cents"], 62_000,
        "yearly under the old names"
    );
    assert_eq!(json["one_time"]["potential_cents"], 40_000);
    assert_eq!(json["by_publisher"]["Adobe"]["potential_cents"], 62_000);
    assert_eq!(
        json["by_publisher"]["Adobe"]["one_time"]["actual_cents"],
        30_000
    );
}

#[test]
fn a_reappeared_monthly_seat_leaves_the_yearly_savings_in_the_month_it_came_back() {
    let mut c = priced(State::ClosedComplete, 1_000, Monthly);
    c.closed_at = Some(now() - Duration::days(40));
    if let Some(v) = c.verification.as_mut() {
        v.reappeared_at = Some(now());
    }
    let s = Savings::of([&c]);
    assert_eq!(
        (s.yearly().actual_cents, s.yearly().reappeared_cents),
        (0, 12_000)
    );
    assert_eq!(s.actual_by_month.get("2026-01"), Some(&12_000));
    assert_eq!(s.actual_by_month.get("2026-03"), Some(&-12_000));
}

#[test]
fn a_candidate_stored_before_periods_reads_as_yearly_and_keeps_its_savings() {
    let c = testing::candidate();
    let mut json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["price_period"], "yearly");
    json.as_object_mut().unwrap().remove("price_period");
    let old: Candidate = serde_json::from_value(json).unwrap();
    assert_eq!(old.price_period, Yearly);
    assert_eq!(old.saving().cents, old.potential_savings_cents());
    assert_eq!(old, c);
}

#[test]
fn a_rule_without_a_period_reads_and_writes_as_before() {
    let v = serde_json::json!({"id": "r", "name": "Rule"});
    let r = reclaim_workflow::rules::parse_rule(&v).unwrap();
    assert_eq!(r.price_period, None);
    let written = serde_json::to_value(&r).unwrap();
    assert!(written.get("price_period").is_none(), "{written}");
    let monthly = serde_json::json!({"id": "r", "name": "Rule", "price_period": "monthly"});
    assert_eq!(
        reclaim_workflow::rules::parse_rule(&monthly)
            .unwrap()
            .price_period,
        Some(Monthly)
    );
    let bad = serde_json::json!({"id": "r", "name": "Rule", "price_period": "weekly"});
    let errors = reclaim_workflow::rules::parse_rule(&bad).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field, "price_period");
    assert!(
        errors[0].message.contains("one-time"),
        "{}",
        errors[0].message
    );
}

#[test]
fn amounts_read_with_their_period_in_one_wording() {
    use reclaim_workflow::text::{money_per, price_per_seat, saving};
    assert_eq!(
        PricePeriod::ALL.map(PricePeriod::words),
        ["per month", "per year", "one-time"]
    );
    assert_eq!(
        PricePeriod::ALL.map(|p| PricePeriod::parse(p.as_str())),
        PricePeriod::ALL.map(Some)
    );
    assert_eq!(
        price_per_seat(120_000, "EUR", Yearly),
        "EUR 1,200.00 per seat per year"
    );
    assert_eq!(
        price_per_seat(40_000, "EUR", OneTime),
        "EUR 400.00 per seat, one-time"
    );
    assert_eq!(money_per(99, "USD", Monthly), "USD 0.99 per month");
    let c = priced(State::Ready, 120_000, Monthly);
    assert_eq!(saving(c.saving(), "EUR"), "EUR 14,400.00 per year");
}
