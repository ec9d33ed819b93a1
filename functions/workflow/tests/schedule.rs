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
