//! When the workflow tries again: the vendor's Retry-After exactly (never a 30–60 s backoff
//! step instead), backoff without one, and the waits of a removal the vendor does later.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Duration;
use reclaim_workflow::schedule::{
    retry_delay, verify_delay, RETRY_AFTER_FLOOR_SECS, RETRY_BASE_SECS, RETRY_CAP_SECS,
};

#[test]
fn a_vendors_retry_after_is_followed_exactly() {
    for attempt in 1..=6 {
        assert_eq!(retry_delay("c-1", attempt, Some(7)), Duration::seconds(7));
        assert_eq!(
            retry_delay("c-1", attempt, Some(900)),
            Duration::seconds(900)
        );
    }
}

#[test]
fn a_retry_after_of_zero_or_one_waits_the_floor_and_a_huge_one_the_cap() {
    assert_eq!(
        retry_delay("c-1", 1, Some(0)),
        Duration::seconds(RETRY_AFTER_FLOOR_SECS)
    );
    assert_eq!(
        retry_delay("c-1", 1, Some(1)),
        Duration::seconds(RETRY_AFTER_FLOOR_SECS)
    );
    assert_eq!(
        retry_delay("c-1", 1, Some(u32::MAX)),
        Duration::seconds(RETRY_CAP_SECS)
    );
}

#[test]
fn without_retry_after_the_wait_doubles_with_jitter_up_to_the_cap() {
    let first = retry_delay("c-1", 1, None).num_seconds();
    assert!(
        (RETRY_BASE_SECS / 2..=RETRY_BASE_SECS).contains(&first),
        "{first}"
    );
    let third = retry_delay("c-1", 3, None).num_seconds();
    assert!(
        (2 * RETRY_BASE_SECS..=4 * RETRY_BASE_SECS).contains(&third),
        "{third}"
    );
    assert!(retry_delay("c-1", 40, None).num_seconds() <= RETRY_CAP_SECS);
    // Deterministic: the same candidate and attempt always wait the same.
    assert_eq!(retry_delay("c-1", 3, None), retry_delay("c-1", 3, None));
}

#[test]
fn a_later_removal_is_checked_after_the_plugins_wait_then_twice_as_long_each_time() {
    assert_eq!(verify_delay(600, 0), Duration::seconds(600));
    assert_eq!(verify_delay(600, 1), Duration::seconds(1200));
    assert_eq!(verify_delay(600, 3), Duration::seconds(4800));
    assert_eq!(verify_delay(600, 30), Duration::seconds(RETRY_CAP_SECS));
    assert_eq!(
        verify_delay(0, 0),
        Duration::seconds(RETRY_AFTER_FLOOR_SECS),
        "pending(0) is not a busy loop"
    );
}

/// The time a store indexes as "an alert from" agrees with the alert itself at every moment.
#[test]
fn a_candidate_is_an_alert_exactly_from_when_the_index_says() {
    use reclaim_workflow::usage::{alert_from, stale_alert};
    use reclaim_workflow::{State, VerificationStatus};
    let base = reclaim_workflow::testing::candidate();
    let mut cases = Vec::new();
    for state in State::ALL {
        for since_days in [0i64, 5, 40] {
            let mut c = base.clone();
            c.state = state;
            c.state_since = Some(c.opened_at + chrono::Duration::days(since_days));
            c.attention = Some("x".into());
            cases.push(c);
        }
    }
    let mut back = base.clone();
    back.state = State::ClosedComplete;
    let mut v = reclaim_workflow::Verification::new(VerificationStatus::Verified, back.opened_at);
    v.reappeared_at = Some(back.opened_at + chrono::Duration::days(3));
    back.verification = Some(v);
    cases.push(back);
    for c in cases {
        let from = alert_from(&c);
        // Times that can happen: not before the candidate reached its stage or came back.
        let earliest = c
            .state_since
            .into_iter()
            .chain(c.reappeared_at())
            .max()
            .unwrap_or(c.opened_at);
        for hours in (0..24 * 120).step_by(7) {
            let t = earliest + chrono::Duration::hours(hours);
            assert_eq!(
                stale_alert(&c, t).is_some(),
                from.is_some_and(|f| f <= t),
                "{:?} since {:?} at +{hours}h",
                c.state,
                c.state_since
            );
        }
    }
}
