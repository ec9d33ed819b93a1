//! Time: reminders, deadlines, retry backoff, and what the scheduler should do next.
//!
//! Deterministic on purpose: jitter comes from a hash of the candidate id and the attempt, so
//! a tick that runs twice (or a test with an injected clock) sees the same times.

use crate::event::Event;
use crate::model::{Candidate, State, Timestamp};
use chrono::Duration;

/// First retry after a transient failure.
pub const RETRY_BASE_SECS: i64 = 60;
/// No retry waits longer than this.
pub const RETRY_CAP_SECS: i64 = 6 * 60 * 60;

/// When the next reminder is due, if one is left before the deadline.
pub fn next_reminder(c: &Candidate) -> Option<Timestamp> {
    let asked = c.asked_at?;
    let mut days: Vec<u32> = c.rule.reminder_days.clone();
    days.sort_unstable();
    days.dedup();
    let day = *days.get(c.reminders_sent as usize)?;
    let at = asked + Duration::days(i64::from(day));
    match c.deadline_at {
        Some(deadline) if at >= deadline => None,
        _ => Some(at),
    }
}

/// The next time the scheduler must look at an Awaiting User candidate.
pub fn next_user_due(c: &Candidate) -> Option<Timestamp> {
    match (next_reminder(c), c.deadline_at) {
        (Some(r), Some(d)) => Some(r.min(d)),
        (r, d) => r.or(d),
    }
}

/// The shortest wait for a vendor's `Retry-After`: a vendor answering `0` or `1` in a loop
/// would otherwise be called again at once, over and over.
pub const RETRY_AFTER_FLOOR_SECS: i64 = 5;

/// When to try again after a transient failure: exactly the vendor's `Retry-After` when it
/// gave one (at least [`RETRY_AFTER_FLOOR_SECS`], at most [`RETRY_CAP_SECS`]), since the vendor
/// knows when it can take the call; otherwise exponential backoff with jitter.
pub fn retry_delay(candidate_id: &str, attempt: u32, retry_after_secs: Option<u32>) -> Duration {
    if let Some(after) = retry_after_secs {
        return Duration::seconds(i64::from(after).clamp(RETRY_AFTER_FLOOR_SECS, RETRY_CAP_SECS));
    }
    let exp = attempt.saturating_sub(1).min(20);
    let base = RETRY_BASE_SECS
        .saturating_mul(1i64 << exp)
        .min(RETRY_CAP_SECS);
    // Jitter in [50%, 100%] of the exponential delay ("equal jitter").
    let jitter = jitter_fraction(candidate_id, attempt);
    let jittered = base / 2 + ((base / 2) as f64 * jitter) as i64;
    Duration::seconds(jittered.max(1))
}

/// The wait before asking the vendor again about a removal it carries out later: the plugin's
/// own estimate at first, doubling with each answer that it is not done yet, at most
/// [`RETRY_CAP_SECS`].
pub fn verify_delay(interval_secs: u32, calls: u32) -> Duration {
    let first = i64::from(interval_secs).max(RETRY_AFTER_FLOOR_SECS);
    Duration::seconds(
        first
            .saturating_mul(1i64 << calls.min(20))
            .min(RETRY_CAP_SECS),
    )
}

/// The rule's re-check days (distinct) whose time has come by `now`, counted from closing.
pub fn rechecks_passed(c: &Candidate, now: Timestamp) -> u32 {
    let Some(closed) = c.closed_at else { return 0 };
    let mut days: Vec<u32> = c.rule.recheck_days.clone();
    days.sort_unstable();
    days.dedup();
    let passed = days
        .iter()
        .filter(|d| closed + Duration::days(i64::from(**d)) <= now)
        .count();
    u32::try_from(passed).unwrap_or(u32::MAX)
}

/// When a Closed Complete candidate's next re-check is due: the rule's next re-check day after
/// closing, unless the right came back or the plugin cannot tell.
pub fn next_recheck(c: &Candidate) -> Option<Timestamp> {
    use crate::model::VerificationStatus;
    if c.state != State::ClosedComplete {
        return None;
    }
    let v = c.verification.as_ref()?;
    if v.reappeared_at.is_some() || v.status == VerificationStatus::NotVerifiable {
        return None;
    }
    let mut days: Vec<u32> = c.rule.recheck_days.clone();
    days.sort_unstable();
    days.dedup();
    let day = *days.get(v.rechecks_done as usize)?;
    Some(c.closed_at? + Duration::days(i64::from(day)))
}

fn jitter_fraction(candidate_id: &str, attempt: u32) -> f64 {
    // FNV-1a: stable across platforms and runs.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in candidate_id.bytes().chain(attempt.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % 10_000) as f64 / 10_000.0
}

/// The event the scheduler should send now, if any. Ticks ask this of every candidate that is
/// due; applying the answer moves `due_at` on, so a second tick finds nothing.
pub fn due_event(c: &Candidate, now: Timestamp) -> Option<Event> {
    match c.state {
        State::AwaitingUser => {
            if c.deadline_at.is_some_and(|d| now >= d) {
                Some(Event::DeadlinePassed)
            } else if next_reminder(c).is_some_and(|r| now >= r) {
                Some(Event::Remind)
            } else {
                None
            }
        }
        State::AwaitingRevocation
            if !c.revocation.manual_task_open && c.due_at.is_some_and(|d| now >= d) =>
        {
            Some(if c.revocation.verifying.is_some() {
                Event::VerifyDue
            } else {
                Event::RetryRevocation
            })
        }
        State::ClosedComplete if c.due_at.is_some_and(|d| now >= d) => Some(Event::VerifyDue),
        _ => None,
    }
}
