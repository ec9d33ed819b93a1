//! Shared fixtures for the core's tests: one candidate in any state, and every kind of actor.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use chrono::{Duration, TimeZone, Utc};
use reclaim_workflow::{
    testing, Actor, Candidate, Event, Principal, RevocationResult, State, Timestamp, UserRef,
    VerifyResult, Via,
};

pub fn now() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

/// The kinds of actor the rights table distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    SamAdmin,
    GroupMember,
    CandidateUser,
    Assignee,
    OtherUser,
    Scheduler,
    Revocation,
    Mail,
}

pub const KINDS: [Kind; 8] = [
    Kind::SamAdmin,
    Kind::GroupMember,
    Kind::CandidateUser,
    Kind::Assignee,
    Kind::OtherUser,
    Kind::Scheduler,
    Kind::Revocation,
    Kind::Mail,
];

pub fn actor(kind: Kind) -> Actor {
    let person = |id: &str, admin: bool, groups: &[&str]| {
        Actor::Person(Principal {
            user_id: id.into(),
            sam_admin: admin,
            itil: false,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            stands_in: Vec::new(),
        })
    };
    match kind {
        Kind::SamAdmin => person("admin", true, &[]),
        Kind::GroupMember => person("approver", false, &["approvers"]),
        Kind::CandidateUser => person("u-1", false, &[]),
        Kind::Assignee => person("tech", false, &[]),
        Kind::OtherUser => person("u-9", false, &["other-group"]),
        Kind::Scheduler => Actor::Scheduler,
        Kind::Revocation => Actor::Revocation,
        Kind::Mail => Actor::Mail,
    }
}

/// A candidate in `state` with everything due: the deadline passed, a reminder due, a retry
/// due. Assigned to `tech`, assignment group `approvers`, user `u-1`.
pub fn in_state(state: State) -> Candidate {
    let mut c = testing::candidate();
    let t = now();
    c.state = state;
    c.version = 4;
    c.assigned_to = Some("tech".into());
    match state {
        State::AwaitingUser => {
            c.asked_at = Some(t - Duration::days(20));
            c.deadline_at = Some(t - Duration::hours(1));
            c.due_at = c.deadline_at;
        }
        State::AwaitingRevocation => {
            c.due_at = Some(t - Duration::minutes(1));
        }
        State::AttentionRequired => {
            c.attention = Some("the user has no email address".into());
            c.attention_from = Some(State::Ready);
        }
        State::ClosedComplete => {
            c.closed_at = Some(t - Duration::days(8));
            // Verified at closing, its first re-check (day 7) due.
            c.verification = Some(reclaim_workflow::Verification::new(
                reclaim_workflow::VerificationStatus::Verified,
                t - Duration::days(8),
            ));
            c.due_at = Some(t - Duration::days(1));
        }
        s if s.is_closed() => {
            c.closed_at = Some(t - Duration::days(1));
        }
        _ => {}
    }
    c
}

/// One instance of every event.
pub fn events() -> Vec<Event> {
    vec![
        Event::Reclaim,
        Event::Answer {
            keep: true,
            comment: Some("I use it weekly".into()),
            via: Via::api(),
        },
        Event::Answer {
            keep: false,
            comment: None,
            via: Via::api(),
        },
        Event::Approve {
            comment: None,
            via: Via::api(),
        },
        Event::Reject {
            comment: Some("not needed".into()),
            via: Via::api(),
        },
        Event::DeadlinePassed,
        Event::Remind,
        Event::Revocation(RevocationResult::Removed {
            evidence: "license removed".into(),
        }),
        Event::Revocation(RevocationResult::AlreadyAbsent),
        Event::Revocation(RevocationResult::ManualTask {
            title: "Uninstall".into(),
            instructions: "by hand".into(),
            assignee_hint: None,
        }),
        Event::Revocation(RevocationResult::Pending {
            check_after_secs: 300,
        }),
        Event::Revocation(RevocationResult::Transient {
            message: "429".into(),
            retry_after_secs: Some(120),
        }),
        Event::Revocation(RevocationResult::Permanent {
            message: "no such sku".into(),
        }),
        Event::RetryRevocation,
        Event::CloseComplete { note: None },
        Event::CloseSkipped {
            reason: Some("business critical".into()),
        },
        Event::Resume,
        Event::UsageDetected {
            last_used_at: now() - Duration::hours(2),
        },
        Event::Assign {
            group: None,
            assigned_to: Some("tech2".into()),
        },
        Event::WorkNote {
            text: "called the user".into(),
        },
        Event::UpdateUser {
            user: UserRef {
                id: "u-1".into(),
                display_name: "Uma User".into(),
                email: Some("uma@example.com".into()),
                upn: None,
                itil: false,
                vip: false,
            },
        },
        Event::MailRefused {
            recipient: "uma@example.com".into(),
            message: "550 5.1.1 mailbox unavailable".into(),
        },
        Event::MailUndeliverable {
            recipient: "the user u-1".into(),
        },
        Event::VerifyDue,
        Event::CheckNow,
        Event::Verification(VerifyResult::Absent),
        Event::Verification(VerifyResult::Present),
        Event::Verification(VerifyResult::Unknown),
        Event::Verification(VerifyResult::Transient {
            message: "503".into(),
            retry_after_secs: None,
        }),
        Event::Verification(VerifyResult::Permanent {
            message: "no such tenant".into(),
        }),
        Event::Reopen {
            candidate_id: "c-1-again".into(),
            candidate_number: "RC0000099".into(),
        },
        Event::AcceptReappeared {
            reason: "re-assigned by the service desk for a new project".into(),
        },
        Event::ExclusionHeld {
            reason: "rule Zoom excludes this user: VIP users are excluded".into(),
        },
        Event::OverrideExclusion {
            comment: "the CFO asked for this seat to go".into(),
        },
    ]
}
