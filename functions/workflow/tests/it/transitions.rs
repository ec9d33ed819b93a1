//! The workflow table, checked exhaustively: every (state, event, actor kind) pair.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{actor, events, in_state, now, Kind, KINDS};
use reclaim_workflow::graph::is_documented;
use reclaim_workflow::{apply, EffectKind, Event, MailKind, RefusalReason, State, TaskKind};
use std::collections::HashSet;
use State::*;

/// The table of workflow.md, written out independently of the transition code: where an
/// allowed (state, event, actor) goes; `None` = refused.
fn expected(state: State, event: &str, kind: Kind) -> Option<State> {
    let open = !state.is_closed();
    let admin = kind == Kind::SamAdmin;
    match event {
        "reclaim" if state == Ready && admin => Some(AwaitingUser),
        "answer-keep" if state == AwaitingUser && kind == Kind::CandidateUser => {
            Some(AwaitingApproval)
        }
        "answer-remove" if state == AwaitingUser && kind == Kind::CandidateUser => {
            Some(AwaitingRevocation)
        }
        "approve" if state == AwaitingApproval && kind == Kind::GroupMember => Some(ClosedSkipped),
        "reject" if state == AwaitingApproval && kind == Kind::GroupMember => {
            Some(AwaitingRevocation)
        }
        "deadline-passed" if state == AwaitingUser && kind == Kind::Scheduler => {
            Some(AwaitingRevocation)
        }
        "remind" if state == AwaitingUser && kind == Kind::Scheduler => Some(AwaitingUser),
        // The vendor's own "already gone" is as good as a verification.
        "revocation-already-absent" if state == AwaitingRevocation && kind == Kind::Revocation => {
            Some(ClosedComplete)
        }
        // The plugin's word is not proof: the vendor is asked first.
        "revocation-removed"
        | "revocation-manual-task"
        | "revocation-pending"
        | "revocation-transient-error"
            if state == AwaitingRevocation && kind == Kind::Revocation =>
        {
            Some(AwaitingRevocation)
        }
        "revocation-permanent-error" if state == AwaitingRevocation && kind == Kind::Revocation => {
            Some(AttentionRequired)
        }
        "retry-revocation" if state == AwaitingRevocation && kind == Kind::Scheduler => {
            Some(AwaitingRevocation)
        }
        "close-complete" if state == AwaitingRevocation && (admin || kind == Kind::Assignee) => {
            Some(ClosedComplete)
        }
        "close-skipped" if open && admin => Some(ClosedSkipped),
        // The fixture stopped at Reclaim (no email then): Resume asks the user now.
        "resume" if state == AttentionRequired && admin => Some(AwaitingUser),
        "usage-detected"
            if matches!(state, Ready | AwaitingUser | AwaitingApproval)
                && (admin || kind == Kind::Scheduler) =>
        {
            Some(ClosedCanceled)
        }
        "assign" if open && admin => Some(state),
        "work-note" if admin || kind == Kind::GroupMember || kind == Kind::Assignee => Some(state),
        "update-user" if matches!(state, Ready | AttentionRequired) && admin => Some(state),
        "mail-refused" | "mail-undeliverable" if open && kind == Kind::Mail => {
            Some(AttentionRequired)
        }
        // The fixture's Closed Complete candidate has its first re-check due; its Awaiting
        // Revocation one is not verifying (the verification tests cover that).
        "verify-due" if state == ClosedComplete && kind == Kind::Scheduler => Some(ClosedComplete),
        "check-now" if state == ClosedComplete && admin => Some(ClosedComplete),
        "exclusion-held" if state == Ready && admin => Some(Ready),
        "exclusion-held" if state == AwaitingRevocation && kind == Kind::Revocation => {
            Some(AttentionRequired)
        }
        "override-exclusion" if matches!(state, Ready | AttentionRequired) && admin => Some(state),
        "verified-absent"
        | "verified-present"
        | "verify-unknown"
        | "verify-transient-error"
        | "verify-permanent-error"
            if state == ClosedComplete && kind == Kind::Revocation =>
        {
            Some(ClosedComplete)
        }
        _ => None,
    }
}

#[test]
fn every_state_event_actor_pair_moves_as_the_table_says_or_is_refused() {
    let mut allowed = 0;
    let mut refused = 0;
    for state in State::ALL {
        for event in events() {
            for kind in KINDS {
                let c = in_state(state);
                let before = c.clone();
                let result = apply(&c, &event, &actor(kind), now());
                assert_eq!(c, before, "apply must not touch its input");
                match (expected(state, event.name(), kind), result) {
                    (Some(to), Ok(t)) => {
                        allowed += 1;
                        let ctx = format!("{state:?} --{}--> by {kind:?}", event.name());
                        assert_eq!(t.candidate.state, to, "{ctx}");
                        assert_eq!(t.candidate.version, c.version + 1, "{ctx}");
                        assert_eq!((t.entry.from, t.entry.to), (state, to), "{ctx}");
                        assert_eq!(t.entry.version, t.candidate.version, "{ctx}");
                        assert_eq!(t.entry.event, event.name(), "{ctx}");
                        assert!(
                            is_documented(state, to, event.name()),
                            "{ctx} not in the graph"
                        );
                        for e in &t.effects {
                            assert_eq!(e.version, t.candidate.version, "{ctx}");
                            assert!(e
                                .key
                                .starts_with(&format!("{}:{}:", c.id, t.candidate.version)));
                        }
                    }
                    (None, Err(r)) => {
                        refused += 1;
                        assert_eq!(r.state, state);
                        assert_eq!(r.event, event.name());
                        let msg = r.to_string();
                        assert!(
                            msg.contains(event.name()) && msg.contains(state.label()),
                            "{msg}"
                        );
                    }
                    (Some(to), Err(r)) => {
                        panic!("{state:?} --{}--> by {kind:?} should reach {to:?} but was refused: {r}", event.name())
                    }
                    (None, Ok(t)) => panic!(
                        "{state:?} --{}--> by {kind:?} should be refused but moved to {:?}",
                        event.name(),
                        t.candidate.state
                    ),
                }
            }
        }
    }
    assert_eq!(
        allowed + refused,
        State::ALL.len() * events().len() * KINDS.len()
    );
    assert!(
        allowed > 40 && refused > 700,
        "allowed {allowed}, refused {refused}"
    );
}

#[test]
fn refusals_say_whether_the_state_or_the_actor_is_wrong() {
    let c = in_state(AwaitingApproval);
    let r = apply(
        &c,
        &Event::Approve {
            comment: None,
            via: Default::default(),
        },
        &actor(Kind::OtherUser),
        now(),
    )
    .unwrap_err();
    assert!(matches!(r.reason, RefusalReason::Forbidden { .. }));
    assert!(r.to_string().contains("assignment group"), "{r}");
    let c = in_state(ClosedComplete);
    let r = apply(&c, &Event::Reclaim, &actor(Kind::SamAdmin), now()).unwrap_err();
    assert_eq!(r.reason, RefusalReason::NotAllowedInState);
}

fn admin() -> reclaim_workflow::Actor {
    actor(Kind::SamAdmin)
}

#[test]
fn reclaim_with_notification_emails_the_user_and_gives_an_itil_user_a_task() {
    let c = in_state(Ready);
    let t = apply(&c, &Event::Reclaim, &admin(), now()).unwrap();
    assert_eq!(t.candidate.state, AwaitingUser);
    assert_eq!(
        t.candidate.deadline_at,
        Some(now() + chrono::Duration::days(14))
    );
    assert_eq!(
        t.candidate.due_at,
        Some(now() + chrono::Duration::days(3)),
        "first reminder"
    );
    let kinds: Vec<_> = t.effects.iter().map(|e| e.kind.clone()).collect();
    assert!(kinds.iter().any(|k| matches!(
        k,
        EffectKind::Email {
            mail: MailKind::AskUser,
            ..
        }
    )));
    assert!(kinds
        .iter()
        .any(|k| matches!(k, EffectKind::CreateTask(t) if t.kind == TaskKind::UserAnswer)));
}

#[test]
fn a_non_itil_user_gets_only_an_email() {
    let mut c = in_state(Ready);
    if let Some(u) = c.user.as_mut() {
        u.itil = false;
    }
    let t = apply(&c, &Event::Reclaim, &admin(), now()).unwrap();
    assert_eq!(t.effects.len(), 1);
    assert!(matches!(
        t.effects[0].kind,
        EffectKind::Email {
            mail: MailKind::AskUser,
            ..
        }
    ));
}

#[test]
fn reclaim_without_notification_or_with_zero_days_goes_straight_to_revocation() {
    for (notify, days) in [(false, 14), (true, 0), (false, 0)] {
        let mut c = in_state(Ready);
        c.rule.notify_user = notify;
        c.rule.days_before_auto_reclamation = days;
        let t = apply(&c, &Event::Reclaim, &admin(), now()).unwrap();
        assert_eq!(t.candidate.state, AwaitingRevocation);
        assert_eq!(t.effects.len(), 1);
        assert!(matches!(
            t.effects[0].kind,
            EffectKind::Revoke { attempt: 1 }
        ));
        assert!(is_documented(Ready, AwaitingRevocation, "reclaim"));
    }
}

#[test]
fn reclaim_without_a_user_email_or_group_needs_attention_and_says_what_is_missing() {
    let mut no_email = in_state(Ready);
    if let Some(u) = no_email.user.as_mut() {
        u.email = Some("  ".into());
    }
    let mut no_user = in_state(Ready);
    no_user.user = None;
    let mut no_group = in_state(Ready);
    no_group.assignment_group = None;
    for (c, why) in [
        (no_email, "email"),
        (no_user, "no user"),
        (no_group, "assignment group"),
    ] {
        let t = apply(&c, &Event::Reclaim, &admin(), now()).unwrap();
        assert_eq!(t.candidate.state, AttentionRequired);
        assert!(t.candidate.attention.as_deref().unwrap_or("").contains(why));
        assert!(t.effects.is_empty());
    }
}

#[test]
fn fixing_the_email_then_resume_asks_the_user_where_reclaim_stopped() {
    let mut c = in_state(Ready);
    if let Some(u) = c.user.as_mut() {
        u.email = None;
    }
    let t = apply(&c, &Event::Reclaim, &admin(), now()).unwrap();
    let mut user = c.user.clone().unwrap();
    user.email = Some("uma@example.com".into());
    let t = apply(&t.candidate, &Event::UpdateUser { user }, &admin(), now()).unwrap();
    // The page no longer says the address is missing.
    let said = t.candidate.attention.clone().unwrap_or_default();
    assert!(
        said.starts_with("the user's details were corrected: Resume"),
        "{said}"
    );
    let t = apply(&t.candidate, &Event::Resume, &admin(), now()).unwrap();
    assert_eq!(t.candidate.state, AwaitingUser);
    assert_eq!(t.candidate.attention, None);
    assert!(t.effects.iter().any(|e| matches!(
        &e.kind,
        EffectKind::Email {
            mail: MailKind::AskUser,
            ..
        }
    )));
}

#[test]
fn resume_after_an_undeliverable_keep_request_goes_back_to_the_approvers() {
    let c = in_state(AwaitingApproval);
    let gone = Event::MailUndeliverable {
        recipient: "anyone in group approvers".into(),
    };
    let t = apply(&c, &gone, &actor(Kind::Mail), now()).unwrap();
    assert_eq!(t.candidate.attention_from, Some(AwaitingApproval));
    let t = apply(&t.candidate, &Event::Resume, &admin(), now()).unwrap();
    assert_eq!(t.candidate.state, AwaitingApproval);
    assert!(t.effects.iter().any(|e| matches!(
        &e.kind,
        EffectKind::Email {
            mail: MailKind::KeepRequest,
            ..
        }
    )));
    assert!(t.effects.iter().any(|e| matches!(
        &e.kind,
        EffectKind::CreateTask(task) if task.kind == TaskKind::Approval
    )));
}

fn bounce() -> Event {
    Event::MailRefused {
        recipient: "uma@example.com".into(),
        message: "550 5.1.1 mailbox unavailable".into(),
    }
}

#[test]
fn a_refused_user_address_needs_attention_and_resume_after_the_fix_asks_again() {
    let c = in_state(AwaitingUser);
    let t = apply(&c, &bounce(), &actor(Kind::Mail), now()).unwrap();
    assert_eq!(t.candidate.state, AttentionRequired);
    assert_eq!(
        t.candidate.attention.as_deref(),
        Some("the user's address was refused: 550 5.1.1 mailbox unavailable")
    );
    assert_eq!(t.candidate.attention_from, Some(AwaitingUser));
    assert_eq!((t.candidate.due_at, t.candidate.deadline_at), (None, None));
    let reason = t.entry.reason.clone().unwrap();
    assert!(
        reason.contains("uma@example.com") && reason.contains("550 5.1.1"),
        "{reason}"
    );
    assert_eq!(t.entry.actor.to_string(), "mail");
    // Nobody can answer the question any more: the user's and approvers' tasks close.
    assert!(t.effects.iter().any(|e| matches!(
        &e.kind,
        EffectKind::CloseTasks { kinds } if kinds.contains(&TaskKind::UserAnswer)
    )));
    let mut user = c.user.clone().unwrap();
    user.email = Some("uma.new@example.com".into());
    let t = apply(&t.candidate, &Event::UpdateUser { user }, &admin(), now()).unwrap();
    let t = apply(&t.candidate, &Event::Resume, &admin(), now()).unwrap();
    assert_eq!(
        t.candidate.state, AwaitingUser,
        "asked again, at the new address"
    );
    assert_eq!(t.candidate.attention, None);
    assert!(t.candidate.deadline_at.is_some_and(|d| d > now()));
}

#[test]
fn a_refused_address_during_removal_resumes_the_removal_and_keeps_an_earlier_reason() {
    let c = in_state(AwaitingRevocation);
    let t = apply(&c, &bounce(), &actor(Kind::Mail), now()).unwrap();
    assert_eq!(t.candidate.state, AttentionRequired);
    assert_eq!(t.candidate.attention_from, Some(AwaitingRevocation));
    let t = apply(&t.candidate, &Event::Resume, &admin(), now()).unwrap();
    assert_eq!(t.candidate.state, AwaitingRevocation);

    let mut c = in_state(AttentionRequired);
    c.attention = Some("revocation failed: no such sku".into());
    c.attention_from = Some(AwaitingRevocation);
    let t = apply(&c, &bounce(), &actor(Kind::Mail), now()).unwrap();
    let why = t.candidate.attention.clone().unwrap();
    assert!(
        why.starts_with("revocation failed: no such sku; the user's address was refused"),
        "{why}"
    );
    assert_eq!(t.candidate.attention_from, Some(AwaitingRevocation));
}

#[test]
fn only_the_mail_actor_reports_a_refusal_and_never_on_a_closed_candidate() {
    let r = apply(
        &in_state(AwaitingUser),
        &bounce(),
        &actor(Kind::SamAdmin),
        now(),
    )
    .unwrap_err();
    assert!(matches!(r.reason, RefusalReason::Forbidden { .. }));
    let r = apply(
        &in_state(ClosedSkipped),
        &bounce(),
        &actor(Kind::Mail),
        now(),
    )
    .unwrap_err();
    assert_eq!(r.reason, RefusalReason::NotAllowedInState);
}

#[test]
fn transient_errors_retry_with_backoff_until_attempts_run_out() {
    let mut c = in_state(AwaitingRevocation);
    c.rule.max_revocation_attempts = 3;
    let transient = Event::Revocation(reclaim_workflow::RevocationResult::Transient {
        message: "throttled".into(),
        retry_after_secs: Some(600),
    });
    let mut t = now();
    for attempt in 1..=2 {
        let next = apply(&c, &transient, &actor(Kind::Revocation), t).unwrap();
        assert_eq!(next.candidate.state, AwaitingRevocation);
        let due = next.candidate.due_at.unwrap();
        assert!(
            due >= t + chrono::Duration::seconds(600),
            "Retry-After honoured"
        );
        assert_eq!(next.candidate.revocation.attempts, attempt);
        // The scheduler refuses before the retry is due and retries after.
        assert!(apply(
            &next.candidate,
            &Event::RetryRevocation,
            &actor(Kind::Scheduler),
            t
        )
        .is_err());
        t = due;
        let retry = apply(
            &next.candidate,
            &Event::RetryRevocation,
            &actor(Kind::Scheduler),
            t,
        )
        .unwrap();
        assert!(
            matches!(retry.effects[0].kind, EffectKind::Revoke { attempt: a } if a == attempt + 1)
        );
        c = retry.candidate;
    }
    let last = apply(&c, &transient, &actor(Kind::Revocation), t).unwrap();
    assert_eq!(last.candidate.state, AttentionRequired);
    assert!(last
        .candidate
        .attention
        .as_deref()
        .unwrap()
        .contains("3 times"));
    // Resume after a failed revocation goes back to revocation, with fresh attempts.
    let resumed = apply(&last.candidate, &Event::Resume, &admin(), t).unwrap();
    assert_eq!(resumed.candidate.state, AwaitingRevocation);
    assert!(matches!(
        resumed.effects[0].kind,
        EffectKind::Revoke { attempt: 1 }
    ));
}

#[test]
fn a_manual_task_stops_retries_and_its_assignee_may_close_complete() {
    let c = in_state(AwaitingRevocation);
    let t = apply(
        &c,
        &Event::Revocation(reclaim_workflow::RevocationResult::ManualTask {
            title: "Uninstall".into(),
            instructions: "by hand".into(),
            assignee_hint: None,
        }),
        &actor(Kind::Revocation),
        now(),
    )
    .unwrap();
    assert!(t.candidate.revocation.manual_task_open);
    assert!(t.effects.iter().any(|e| matches!(&e.kind, EffectKind::CreateTask(n) if n.kind == TaskKind::ManualRemoval && n.assignee.as_deref() == Some("tech"))));
    assert!(apply(
        &t.candidate,
        &Event::RetryRevocation,
        &actor(Kind::Scheduler),
        now()
    )
    .is_err());
    let done = apply(
        &t.candidate,
        &Event::CloseComplete { note: None },
        &actor(Kind::Assignee),
        now(),
    )
    .unwrap();
    assert_eq!(done.candidate.state, ClosedComplete);
    assert_eq!(done.candidate.closed_at, Some(now()));
}

#[test]
fn reminders_follow_the_schedule_and_a_tick_twice_sends_one() {
    let c = in_state(Ready);
    let t0 = now();
    let asked = apply(&c, &Event::Reclaim, &admin(), t0).unwrap().candidate;
    let sched = actor(Kind::Scheduler);
    assert!(apply(
        &asked,
        &Event::Remind,
        &sched,
        t0 + chrono::Duration::days(2)
    )
    .is_err());
    let day3 = t0 + chrono::Duration::days(3);
    let r1 = apply(&asked, &Event::Remind, &sched, day3)
        .unwrap()
        .candidate;
    assert_eq!(r1.reminders_sent, 1);
    assert!(
        apply(&r1, &Event::Remind, &sched, day3).is_err(),
        "the same tick again sends nothing"
    );
    assert_eq!(r1.due_at, Some(t0 + chrono::Duration::days(7)));
    let r2 = apply(&r1, &Event::Remind, &sched, t0 + chrono::Duration::days(7))
        .unwrap()
        .candidate;
    assert_eq!(
        r2.due_at, r2.deadline_at,
        "after the last reminder, the deadline is next"
    );
    assert!(apply(
        &r2,
        &Event::DeadlinePassed,
        &sched,
        t0 + chrono::Duration::days(13)
    )
    .is_err());
    let gone = apply(
        &r2,
        &Event::DeadlinePassed,
        &sched,
        t0 + chrono::Duration::days(14),
    )
    .unwrap();
    assert_eq!(gone.candidate.state, AwaitingRevocation);
}

#[test]
fn effect_keys_are_unique_within_every_transition() {
    for state in State::ALL {
        for event in events() {
            for kind in KINDS {
                if let Ok(t) = apply(&in_state(state), &event, &actor(kind), now()) {
                    let keys: HashSet<_> = t.effects.iter().map(|e| e.key.clone()).collect();
                    assert_eq!(keys.len(), t.effects.len(), "{state:?} {}", event.name());
                }
            }
        }
    }
}

#[test]
fn show_workflow_highlights_the_current_stage_and_the_path_taken() {
    let c = in_state(Ready);
    let a = apply(&c, &Event::Reclaim, &admin(), now()).unwrap();
    let b = apply(
        &a.candidate,
        &Event::Answer {
            keep: false,
            comment: None,
            via: Default::default(),
        },
        &actor(Kind::CandidateUser),
        now(),
    )
    .unwrap();
    let g = reclaim_workflow::workflow_graph(Some(b.candidate.state), &[a.entry, b.entry]);
    assert_eq!(g.current, Some("awaiting-revocation"));
    assert_eq!(
        g.path,
        vec!["ready", "awaiting-user", "awaiting-revocation"]
    );
    assert!(g
        .states
        .iter()
        .any(|s| s.id == "awaiting-revocation" && s.current));
    let taken: Vec<_> = g
        .edges
        .iter()
        .filter(|e| e.taken)
        .map(|e| (e.from, e.to))
        .collect();
    assert_eq!(
        taken,
        vec![
            ("ready", "awaiting-user"),
            ("awaiting-user", "awaiting-revocation")
        ]
    );
}

#[test]
fn potential_savings_are_unused_rights_times_price() {
    let mut c = in_state(Ready);
    c.unused_rights = 3;
    c.price_per_right_cents = 1_250;
    assert_eq!(c.potential_savings_cents(), 3_750);
    let mut s = reclaim_workflow::savings::Savings::default();
    s.add(&c);
    let mut closed = c.clone();
    closed.state = ClosedComplete;
    closed.closed_at = Some(now());
    s.add(&closed);
    let y = s.yearly();
    assert_eq!((y.potential_cents, y.actual_cents), (3_750, 3_750));
    assert_eq!(s.actual_by_month.get("2026-03"), Some(&3_750));
}

#[test]
fn savings_split_by_publisher_product_justification_and_month_and_export_as_csv() {
    let mut open = in_state(Ready);
    open.unused_rights = 2;
    open.price_per_right_cents = 1_000;
    let mut done = in_state(ClosedComplete);
    done.software.publisher = "Zoom, Inc.".into();
    done.software.product = "Zoom Pro".into();
    done.price_per_right_cents = 14_990;
    done.closed_at = Some(now());
    let skipped = in_state(ClosedSkipped);
    let s = reclaim_workflow::savings::Savings::of([&open, &done, &skipped]);
    assert_eq!(s.yearly().potential_cents, 2_000);
    assert_eq!(s.yearly().actual_cents, 14_990);
    assert_eq!(s.by_publisher["Adobe"].yearly.potential_cents, 2_000);
    assert_eq!(s.by_publisher["Zoom, Inc."].yearly.actual_cents, 14_990);
    assert_eq!(s.by_product["Zoom, Inc. / Zoom Pro"].yearly.candidates, 1);
    assert_eq!(s.by_justification["unused"].yearly.potential_cents, 2_000);
    let csv = s.to_csv();
    // The fixture's Closed Complete candidate was verified absent at closing.
    assert_eq!(s.yearly().verified_cents, 14_990);
    assert!(
        csv.starts_with(
            "dimension,key,basis,potential,actual,verified,unverified,reappeared,candidates\n\
             total,all,per year,20.00,149.90,149.90,0.00,0.00,2\n\
             total,all,one-time,0.00,0.00,0.00,0.00,0.00,0\n"
        ),
        "{csv}"
    );
    assert!(
        csv.contains("publisher,\"Zoom, Inc.\",per year,0.00,149.90,149.90,0.00,0.00,1\n"),
        "{csv}"
    );
    assert!(
        csv.contains("month,2026-03,per year,,149.90,,,,\n"),
        "{csv}"
    );
}
