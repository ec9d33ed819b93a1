//! The transition function: `(candidate, event, actor, now) -> (candidate', history, effects)`.
//!
//! Every rule of the workflow table lives here and nowhere else; adapters only persist what it
//! returns. A refusal changes nothing and says which state, which event and why.

use crate::actor::Actor;
use crate::effect::{Effect, EffectKind, MailKind, NewTask, Recipient};
use crate::event::{Event, RevocationResult, VerifyResult, Via};
use crate::intake::FieldError;
use crate::model::{
    Candidate, ExclusionOverride, HistoryEntry, Reappearance, State, TaskKind, Timestamp,
    Verification, VerificationStatus, VerifyAfter, Verifying, WorkNote,
};
use crate::schedule;
use chrono::Duration;
use std::fmt;

/// The result of an allowed event.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// The candidate after the event (version + 1).
    pub candidate: Candidate,
    /// The audit-trail entry for this transition.
    pub entry: HistoryEntry,
    /// What must happen after the write commits.
    pub effects: Vec<Effect>,
}

/// Why an event was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefusalReason {
    /// The workflow table has no such move from this state.
    NotAllowedInState,
    /// The actor lacks the right; names who may.
    Forbidden { who_may: &'static str },
    /// The scheduler came early (or twice): nothing is due.
    NotDue,
    /// The event's own data is unusable.
    Invalid(String),
    /// A field of the event holds what no field may (a line break in a name, a NUL in a note).
    InvalidField(FieldError),
}

/// An event the workflow does not allow: nothing changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub state: State,
    pub event: &'static str,
    pub reason: RefusalReason,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (state, event) = (self.state, self.event);
        match &self.reason {
            RefusalReason::NotAllowedInState => {
                write!(f, "'{event}' is not allowed in state {state}")
            }
            RefusalReason::Forbidden { who_may } => {
                write!(
                    f,
                    "'{event}' in state {state} may only be done by {who_may}"
                )
            }
            RefusalReason::NotDue => write!(f, "'{event}' in state {state}: nothing is due yet"),
            RefusalReason::Invalid(why) => write!(f, "'{event}' in state {state}: {why}"),
            RefusalReason::InvalidField(e) => write!(f, "'{event}' in state {state}: {e}"),
        }
    }
}

impl std::error::Error for Refusal {}

/// Builds the new candidate, its history entry and its effects.
struct Step<'a> {
    old: &'a Candidate,
    new: Candidate,
    kinds: Vec<EffectKind>,
    reason: Option<String>,
    via: Option<&'a Via>,
}

impl<'a> Step<'a> {
    fn new(old: &'a Candidate) -> Self {
        Step {
            old,
            new: old.clone(),
            kinds: Vec::new(),
            reason: None,
            via: None,
        }
    }

    fn to(mut self, state: State) -> Self {
        self.new.state = state;
        self
    }

    fn effect(mut self, kind: EffectKind) -> Self {
        self.kinds.push(kind);
        self
    }

    fn mail(self, mail: MailKind, recipient: Recipient) -> Self {
        self.effect(EffectKind::Email { mail, recipient })
    }

    fn reason(mut self, reason: Option<String>) -> Self {
        self.reason = reason;
        self
    }

    fn finish(mut self, event: &Event, actor: &Actor, now: Timestamp) -> Transition {
        let c = &mut self.new;
        c.version = self.old.version + 1;
        c.updated_at = now;
        if c.state.is_closed() && !self.old.state.is_closed() {
            c.closed_at = Some(now);
            c.deadline_at = None;
            // Closed Complete is looked at again on the rule's re-check days; nothing else is.
            c.due_at = schedule::next_recheck(c);
        }
        if c.state != State::AwaitingRevocation {
            c.revocation.verifying = None;
        }
        if c.state != self.old.state {
            c.state_since = Some(now);
        }
        if c.state != State::AttentionRequired {
            c.attention = None;
            c.attention_from = None;
        }
        let entry = HistoryEntry {
            candidate_id: c.id.clone(),
            version: c.version,
            at: now,
            actor: actor.to_ref(),
            event: event.name().to_string(),
            from: self.old.state,
            to: c.state,
            reason: self.reason,
            ip: self.via.and_then(|v| v.ip.clone()),
            user_agent: self.via.and_then(|v| v.user_agent.clone()),
        };
        let effects = self
            .kinds
            .into_iter()
            .map(|k| Effect::new(&c.id, c.version, k))
            .collect();
        Transition {
            candidate: self.new,
            entry,
            effects,
        }
    }
}

const SAM_ADMIN: &str = "a sam admin";
const APPROVER: &str = "a member of the candidate's assignment group other than its user \
                        (a sam admin when nobody else is in the group)";
const NOT_OWN: &str = "someone other than the candidate's user: nobody decides on their own \
                       keep request";
const OTHER_SAM_ADMIN: &str = "a sam admin other than the candidate's user";
const THE_USER: &str = "the candidate's user";
const SCHEDULER: &str = "the scheduler";
const REVOCATION: &str = "a revocation outcome";
const CLOSER: &str = "a sam admin or the candidate's assignee";
const NOTE_AUTHOR: &str = "a sam admin, a member of the assignment group or the assignee";
const USAGE_SOURCE: &str = "the scheduler or a sam admin";
const MAIL: &str = "the mail server's verdict";
const VENDOR: &str = "the vendor's answer to a verify call";

/// Applies one event. Pure: the same inputs give the same result.
pub fn apply(
    c: &Candidate,
    event: &Event,
    actor: &Actor,
    now: Timestamp,
) -> Result<Transition, Refusal> {
    let cleaned = event.cleaned();
    let event = cleaned.as_ref().unwrap_or(event);
    if let Err(e) = event.check_text() {
        return Err(Refusal {
            state: c.state,
            event: event.name(),
            reason: RefusalReason::InvalidField(e),
        });
    }
    let refuse = |reason| Refusal {
        state: c.state,
        event: event.name(),
        reason,
    };
    let require = |ok: bool, who_may: &'static str| {
        if ok {
            Ok(())
        } else {
            Err(refuse(RefusalReason::Forbidden { who_may }))
        }
    };
    let not_allowed = || refuse(RefusalReason::NotAllowedInState);
    let open = !c.state.is_closed();
    use State::*;

    let step = match event {
        Event::Reclaim => {
            if c.state != Ready {
                return Err(not_allowed());
            }
            require(actor.is_sam_admin(), SAM_ADMIN)?;
            reclaim(c, now)
        }
        Event::Answer { keep, comment, via } => {
            if c.state != AwaitingUser {
                return Err(not_allowed());
            }
            require(actor.is_candidate_user(c), THE_USER)?;
            let close_user_task = EffectKind::CloseTasks {
                kinds: vec![TaskKind::UserAnswer],
            };
            let mut s = if *keep {
                keep_request(Step::new(c), comment.as_deref()).effect(close_user_task)
            } else {
                start_revocation(Step::new(c)).effect(close_user_task)
            };
            s.new.deadline_at = None;
            s.new.due_at = None;
            s.via = Some(via);
            s.reason(comment.clone())
        }
        Event::Approve { comment, via } | Event::Reject { comment, via } => {
            if c.state != AwaitingApproval {
                return Err(not_allowed());
            }
            if actor.is_candidate_user(c) {
                return Err(refuse(RefusalReason::Forbidden { who_may: NOT_OWN }));
            }
            require(actor.is_approver(c), APPROVER)?;
            let close = EffectKind::CloseTasks {
                kinds: vec![TaskKind::Approval],
            };
            let mut s = if matches!(event, Event::Approve { .. }) {
                Step::new(c)
                    .to(ClosedSkipped)
                    .mail(MailKind::Kept, Recipient::CandidateUser)
                    .effect(close)
            } else {
                start_revocation(Step::new(c))
                    .mail(MailKind::KeepRejected, Recipient::CandidateUser)
                    .effect(close)
            };
            s.via = Some(via);
            s.reason(comment.clone())
        }
        Event::DeadlinePassed => {
            if c.state != AwaitingUser {
                return Err(not_allowed());
            }
            require(matches!(actor, Actor::Scheduler), SCHEDULER)?;
            if c.deadline_at.is_none_or(|d| now < d) {
                return Err(refuse(RefusalReason::NotDue));
            }
            let mut s = start_revocation(Step::new(c)).effect(EffectKind::CloseTasks {
                kinds: vec![TaskKind::UserAnswer],
            });
            s.new.deadline_at = None;
            s.reason(Some(
                "no answer before the deadline: auto-reclamation".into(),
            ))
        }
        Event::Remind => {
            if c.state != AwaitingUser {
                return Err(not_allowed());
            }
            require(matches!(actor, Actor::Scheduler), SCHEDULER)?;
            if schedule::next_reminder(c).is_none_or(|r| now < r) {
                return Err(refuse(RefusalReason::NotDue));
            }
            let mut s = Step::new(c).mail(MailKind::Reminder, Recipient::CandidateUser);
            s.new.reminders_sent += 1;
            s.new.due_at = schedule::next_user_due(&s.new);
            s
        }
        Event::Revocation(result) => {
            if c.state != AwaitingRevocation {
                return Err(not_allowed());
            }
            require(matches!(actor, Actor::Revocation), REVOCATION)?;
            revocation_outcome(c, result, now)
        }
        Event::RetryRevocation => {
            if c.state != AwaitingRevocation {
                return Err(not_allowed());
            }
            require(matches!(actor, Actor::Scheduler), SCHEDULER)?;
            if c.revocation.manual_task_open
                || c.revocation.verifying.is_some()
                || c.due_at.is_none_or(|d| now < d)
            {
                return Err(refuse(RefusalReason::NotDue));
            }
            let mut s = Step::new(c).effect(EffectKind::Revoke {
                attempt: c.revocation.attempts + 1,
            });
            s.new.due_at = None;
            s
        }
        Event::CloseComplete { note } => {
            if c.state != AwaitingRevocation {
                return Err(not_allowed());
            }
            require(actor.is_sam_admin() || actor.is_assignee(c), CLOSER)?;
            let mut s = Step::new(c)
                .to(ClosedComplete)
                .mail(MailKind::Removed, Recipient::CandidateUser)
                .effect(EffectKind::CloseTasks {
                    kinds: vec![TaskKind::ManualRemoval],
                })
                .reason(note.clone());
            s.new.revocation.manual_task_open = false;
            // A person's word: the re-checks ask the vendor whether it agrees.
            s.new.verification = Some(Verification::new(VerificationStatus::Unverified, now));
            s
        }
        Event::CloseSkipped { reason } => {
            if !open {
                return Err(not_allowed());
            }
            require(actor.is_sam_admin(), SAM_ADMIN)?;
            require(!actor.is_candidate_user(c), OTHER_SAM_ADMIN)?;
            Step::new(c)
                .to(ClosedSkipped)
                .effect(EffectKind::CloseTasks {
                    kinds: vec![
                        TaskKind::UserAnswer,
                        TaskKind::Approval,
                        TaskKind::ManualRemoval,
                    ],
                })
                .reason(reason.clone())
        }
        Event::Resume => {
            if c.state != AttentionRequired {
                return Err(not_allowed());
            }
            require(actor.is_sam_admin(), SAM_ADMIN)?;
            // Back to where it stopped: the removal, the approvers, or the Reclaim (which asks
            // the user again, with a new deadline, or needs attention again if still missing).
            match c.attention_from {
                Some(AwaitingRevocation) => {
                    let mut s = Step::new(c);
                    s.new.revocation.attempts = 0;
                    start_revocation(s)
                }
                Some(AwaitingApproval) => keep_request(Step::new(c), None),
                Some(Ready | AwaitingUser) => reclaim(c, now),
                _ => Step::new(c).to(Ready),
            }
        }
        Event::UsageDetected { last_used_at } => {
            if !matches!(c.state, Ready | AwaitingUser | AwaitingApproval) {
                return Err(not_allowed());
            }
            require(
                matches!(actor, Actor::Scheduler) || actor.is_sam_admin(),
                USAGE_SOURCE,
            )?;
            let mut s = Step::new(c).to(ClosedCanceled);
            if c.state != Ready {
                s = s.mail(MailKind::Canceled, Recipient::CandidateUser).effect(
                    EffectKind::CloseTasks {
                        kinds: vec![TaskKind::UserAnswer, TaskKind::Approval],
                    },
                );
            }
            s.new.last_used_at = Some(*last_used_at);
            s.reason(Some(format!("usage seen again at {last_used_at}")))
        }
        Event::Assign { group, assigned_to } => {
            if !open {
                return Err(not_allowed());
            }
            require(actor.is_sam_admin(), SAM_ADMIN)?;
            let mut s = Step::new(c);
            if group.is_some() {
                s.new.assignment_group = group.clone();
            }
            if assigned_to.is_some() {
                s.new.assigned_to = assigned_to.clone();
            }
            let group = s.new.assignment_group.as_deref().unwrap_or("-");
            let who = s.new.assigned_to.as_deref().unwrap_or("-");
            let reason = format!("assignment group {group}, assigned to {who}");
            s.reason(Some(reason))
        }
        Event::WorkNote { text } => {
            require(
                actor.is_sam_admin() || actor.is_group_member(c) || actor.is_assignee(c),
                NOTE_AUTHOR,
            )?;
            let text = text.trim();
            if text.is_empty() {
                return Err(refuse(RefusalReason::Invalid(
                    "a work note needs text".into(),
                )));
            }
            let mut s = Step::new(c);
            s.new.work_notes.push(WorkNote {
                at: now,
                author: actor.to_ref().to_string(),
                text: text.to_string(),
            });
            s.reason(Some(text.to_string()))
        }
        Event::UpdateUser { user } => {
            if !matches!(c.state, Ready | AttentionRequired) {
                return Err(not_allowed());
            }
            require(actor.is_sam_admin(), SAM_ADMIN)?;
            if user.id.trim().is_empty() {
                return Err(refuse(RefusalReason::Invalid(
                    "the user needs an id".into(),
                )));
            }
            let mut s = Step::new(c);
            s.new.user = Some(user.clone());
            if let Some(why) = c
                .attention
                .as_deref()
                .filter(|_| c.state == AttentionRequired)
            {
                // What was wrong may be fixed now; the page must not keep saying it is not.
                s.new.attention = Some(format!(
                    "the user's details were corrected: Resume to go on (it needed attention \
                     because {why})"
                ));
            }
            s.reason(Some(format!("user set to {}", user.id)))
        }
        Event::VerifyDue => {
            require(matches!(actor, Actor::Scheduler), SCHEDULER)?;
            let Some(call) = c.next_verify_call() else {
                return Err(not_allowed());
            };
            if c.due_at.is_none_or(|d| now < d) {
                return Err(refuse(RefusalReason::NotDue));
            }
            let mut s = Step::new(c).effect(EffectKind::Verify { call });
            s.new.due_at = None;
            s
        }
        Event::CheckNow => {
            // Came back and undecided: Reopen or Accept first.
            let undecided = c.verification.as_ref().is_some_and(|v| v.awaits_decision());
            let Some(call) = c.next_verify_call().filter(|_| !undecided) else {
                return Err(not_allowed());
            };
            require(actor.is_sam_admin(), SAM_ADMIN)?;
            let mut s = Step::new(c)
                .effect(EffectKind::Verify { call })
                .reason(Some(
                    "asked the vendor now, not waiting for the next check".into(),
                ));
            s.new.due_at = None;
            s
        }
        Event::Verification(result) => {
            require(matches!(actor, Actor::Revocation), VENDOR)?;
            match (c.state, &c.revocation.verifying, &c.verification) {
                (AwaitingRevocation, Some(v), _) => removal_verified(c, v, result, now),
                (ClosedComplete, _, Some(v)) => rechecked(c, v, result, now),
                _ => return Err(not_allowed()),
            }
        }
        Event::Reopen { .. } | Event::AcceptReappeared { .. } => {
            let Some(v) = c.verification.as_ref().filter(|v| v.awaits_decision()) else {
                return Err(refuse(RefusalReason::Invalid(
                    "only a closed candidate whose right came back, and that nobody has \
                     decided on yet, can be reopened or accepted"
                        .into(),
                )));
            };
            require(actor.is_sam_admin(), SAM_ADMIN)?;
            let by = actor.to_ref().to_string();
            let (decision, reason) = match event {
                Event::Reopen {
                    candidate_id,
                    candidate_number,
                } => (
                    Reappearance::Reopened {
                        candidate_id: candidate_id.clone(),
                        candidate_number: candidate_number.clone(),
                        by,
                        at: now,
                    },
                    format!("reopened as {candidate_number}"),
                ),
                Event::AcceptReappeared { reason } => {
                    let reason = reason.trim();
                    if reason.is_empty() {
                        return Err(refuse(RefusalReason::Invalid(
                            "accepting a right that came back needs a reason".into(),
                        )));
                    }
                    (
                        Reappearance::Accepted {
                            reason: reason.to_string(),
                            by,
                            at: now,
                        },
                        format!("accepted: {reason}"),
                    )
                }
                _ => return Err(not_allowed()),
            };
            let mut s = Step::new(c);
            let mut v = v.clone();
            v.resolution = Some(decision);
            s.new.verification = Some(v);
            s.reason(Some(reason))
        }
        Event::ExclusionHeld { reason } => match c.state {
            Ready => {
                require(actor.is_sam_admin(), SAM_ADMIN)?;
                Step::new(c).reason(Some(format!("not reclaimed: {reason}")))
            }
            AwaitingRevocation => {
                require(matches!(actor, Actor::Revocation), REVOCATION)?;
                attention(
                    Step::new(c),
                    format!(
                        "not removed: {reason}; a sam admin may override the exclusion on this \
                         candidate and Resume, or Close Skipped"
                    ),
                )
            }
            _ => return Err(not_allowed()),
        },
        Event::OverrideExclusion { comment } => {
            if !matches!(c.state, Ready | AttentionRequired) {
                return Err(not_allowed());
            }
            require(actor.is_sam_admin(), SAM_ADMIN)?;
            let comment = comment.trim();
            if comment.is_empty() {
                return Err(refuse(RefusalReason::Invalid(
                    "overriding the rule's exclusions needs a comment saying why".into(),
                )));
            }
            let mut s = Step::new(c);
            s.new.exclusion_override = Some(ExclusionOverride {
                by: actor.to_ref().to_string(),
                comment: comment.to_string(),
                at: now,
            });
            s.reason(Some(format!("exclusion overridden: {comment}")))
        }
        Event::MailRefused { .. } | Event::MailUndeliverable { .. } => {
            if !open {
                return Err(not_allowed());
            }
            require(matches!(actor, Actor::Mail), MAIL)?;
            let why = event.mail_attention().unwrap_or_default();
            let reason = match event {
                Event::MailRefused { recipient, message } => {
                    format!("the user's address {recipient} was refused: {message}")
                }
                _ => why.clone(),
            };
            mail_problem(c, why, reason)
        }
    };
    Ok(step.finish(event, actor, now))
}

/// Ready → Awaiting User, Awaiting Revocation or Attention Required, as the rule says.
fn reclaim(c: &Candidate, now: Timestamp) -> Step<'_> {
    let rule = &c.rule;
    if !rule.notify_user || rule.days_before_auto_reclamation == 0 {
        return start_revocation(Step::new(c)).reason(Some(
            "rule does not wait for the user: removal starts now".into(),
        ));
    }
    let missing = match (&c.user, c.assignment_group.as_deref()) {
        (None, _) => Some("the candidate has no user to notify"),
        (Some(u), _) if u.email().is_none() => Some("the user has no email address"),
        (Some(_), None) => Some("the candidate has no assignment group to approve a keep request"),
        _ => None,
    };
    if let Some(why) = missing {
        let mut s = Step::new(c).to(State::AttentionRequired);
        s.new.attention = Some(why.to_string());
        s.new.attention_from = Some(State::Ready);
        return s.reason(Some(why.to_string()));
    }
    let mut s = Step::new(c)
        .to(State::AwaitingUser)
        .mail(MailKind::AskUser, Recipient::CandidateUser);
    if c.user.as_ref().is_some_and(|u| u.itil) {
        let user = c.user.as_ref().map(|u| u.id.clone());
        s = s.effect(EffectKind::CreateTask(NewTask {
            kind: TaskKind::UserAnswer,
            assignee: user,
            group: None,
            title: format!("Do you still need {}?", c.software.label()),
            instructions: ask_text(c),
        }));
    }
    s.new.asked_at = Some(now);
    s.new.reminders_sent = 0;
    s.new.deadline_at = Some(now + Duration::days(i64::from(rule.days_before_auto_reclamation)));
    s.new.due_at = schedule::next_user_due(&s.new);
    s
}

/// Enters Awaiting Revocation and runs the routed plugin.
fn start_revocation(s: Step<'_>) -> Step<'_> {
    let attempt = s.new.revocation.attempts + 1;
    let mut s = s
        .to(State::AwaitingRevocation)
        .effect(EffectKind::Revoke { attempt });
    s.new.due_at = None;
    s.new.deadline_at = None;
    s.new.revocation.verifying = None;
    s
}

fn revocation_outcome<'a>(c: &'a Candidate, result: &RevocationResult, now: Timestamp) -> Step<'a> {
    let mut s = Step::new(c);
    s.new.revocation.attempts += 1;
    match result {
        RevocationResult::Removed { evidence } => {
            // The plugin's word is not proof: the vendor is asked at once (the next effect),
            // and only its answer closes the candidate.
            s.new.revocation.last_outcome = Some(format!("removed: {evidence}"));
            s.new.revocation.manual_task_open = false;
            s.new.revocation.verifying = Some(Verifying {
                after: VerifyAfter::Removed,
                since: now,
                calls: 0,
                interval_secs: 0,
                evidence: Some(evidence.clone()),
            });
            s.new.due_at = None;
            s.effect(EffectKind::Verify { call: 1 })
                .reason(Some(format!("{evidence}; asking the vendor to confirm")))
        }
        RevocationResult::AlreadyAbsent => {
            // The vendor itself says it is gone: as good as a verification.
            s.new.revocation.last_outcome = Some("already absent at the vendor".into());
            s.new.revocation.manual_task_open = false;
            s.new.verification = Some(Verification::new(VerificationStatus::Verified, now));
            close_complete(s).reason(Some(
                "already absent at the vendor: nothing to remove (verified)".into(),
            ))
        }
        RevocationResult::ManualTask {
            title,
            instructions,
            assignee_hint,
        } => {
            let assignee = c.assigned_to.clone().or_else(|| assignee_hint.clone());
            s.new.revocation.manual_task_open = true;
            s.new.revocation.last_outcome = Some(format!("manual task: {title}"));
            s.new.due_at = None;
            if s.new.assigned_to.is_none() {
                s.new.assigned_to = assignee.clone();
            }
            s = s.effect(EffectKind::CreateTask(NewTask {
                kind: TaskKind::ManualRemoval,
                assignee: assignee.clone(),
                group: c.assignment_group.clone(),
                title: title.clone(),
                instructions: instructions.clone(),
            }));
            if let Some(person) = assignee {
                s = s.mail(MailKind::ManualTask, Recipient::Person(person));
            } else if let Some(group) = c.assignment_group.clone() {
                s = s.mail(MailKind::ManualTask, Recipient::Group(group));
            }
            s.reason(Some(title.clone()))
        }
        RevocationResult::Pending { check_after_secs } => {
            s.new.revocation.last_outcome = Some(format!(
                "accepted by the vendor, carried out later; checking in {check_after_secs}s"
            ));
            s.new.revocation.verifying = Some(Verifying {
                after: VerifyAfter::Pending,
                since: now,
                calls: 0,
                interval_secs: *check_after_secs,
                evidence: None,
            });
            s.new.due_at = Some(now + Duration::seconds(i64::from(*check_after_secs)));
            // A pending removal is not a failure: it does not use up retries.
            s.new.revocation.attempts = c.revocation.attempts;
            s.reason(Some(format!(
                "the vendor accepted the removal and carries it out later; verifying in \
                 {check_after_secs}s"
            )))
        }
        RevocationResult::Transient {
            message,
            retry_after_secs,
        } => {
            let attempts = s.new.revocation.attempts;
            s.new.revocation.last_outcome = Some(format!("transient error: {message}"));
            if attempts >= c.rule.max_revocation_attempts.max(1) {
                let why = format!("revocation failed {attempts} times; last error: {message}");
                attention(s, why)
            } else {
                let delay = schedule::retry_delay(&c.id, attempts, *retry_after_secs);
                s.new.due_at = Some(now + delay);
                s.reason(Some(message.clone()))
            }
        }
        RevocationResult::Permanent { message } => {
            s.new.revocation.last_outcome = Some(format!("permanent error: {message}"));
            attention(s, format!("revocation failed: {message}"))
        }
    }
}

/// Closed Complete with the removal mail and the manual tasks closed.
fn close_complete(s: Step<'_>) -> Step<'_> {
    s.to(State::ClosedComplete)
        .mail(MailKind::Removed, Recipient::CandidateUser)
        .effect(EffectKind::CloseTasks {
            kinds: vec![TaskKind::ManualRemoval],
        })
}

/// The right in words, for what a person reads in Attention Required.
fn right(c: &Candidate) -> String {
    let user = c.user.as_ref().map_or("its user", |u| u.id.as_str());
    let device = c
        .device
        .as_deref()
        .map(|d| format!(" on {d}"))
        .unwrap_or_default();
    format!("{} for {user}{device}", c.software.label())
}

fn day(t: Timestamp) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// The vendor answered while a removal waits for its confirmation.
fn removal_verified<'a>(
    c: &'a Candidate,
    v: &Verifying,
    result: &VerifyResult,
    now: Timestamp,
) -> Step<'a> {
    let mut s = Step::new(c);
    let mut v = v.clone();
    v.calls += 1;
    let limit = v.since + Duration::days(i64::from(c.rule.verify_within_days.max(1)));
    let installed = c.applies_to == crate::AppliesTo::InstalledSoftware;
    match result {
        VerifyResult::Absent | VerifyResult::Unknown => {
            let (status, said) = if *result == VerifyResult::Absent {
                (
                    VerificationStatus::Verified,
                    "verified absent at the vendor",
                )
            } else {
                (
                    VerificationStatus::NotVerifiable,
                    "not verifiable by this plugin; closed on the plugin's word",
                )
            };
            s.new.verification = Some(Verification::new(status, now));
            s.new.revocation.last_outcome = Some(said.to_string());
            close_complete(s).reason(Some(said.to_string()))
        }
        VerifyResult::Present if v.after == VerifyAfter::Removed => {
            let attempts = c.revocation.attempts;
            if attempts >= c.rule.max_revocation_attempts.max(1) {
                let why = format!(
                    "the plugin reported it removed, but the vendor still shows {} after \
                     {attempts} removal(s)",
                    right(c)
                );
                return attention(s, why);
            }
            s.new.revocation.verifying = None;
            s.new.revocation.last_outcome =
                Some("still present at the vendor after removal".into());
            s.new.due_at = Some(now + schedule::retry_delay(&c.id, attempts, None));
            s.reason(Some(format!(
                "the vendor still shows {}; the removal is retried",
                right(c)
            )))
        }
        VerifyResult::Present => {
            if now >= limit {
                let (asked, still) = if installed {
                    ("uninstall requested", "still installed")
                } else {
                    ("removal requested", "still present at the vendor")
                };
                let why = format!(
                    "{asked} on {}, {still} on {}: {}",
                    day(v.since),
                    day(now),
                    right(c)
                );
                return attention(s, why);
            }
            let next = now + schedule::verify_delay(v.interval_secs, v.calls);
            s.new.revocation.last_outcome = Some("not yet removed at the vendor".into());
            s.new.revocation.verifying = Some(v);
            s.new.due_at = Some(next);
            s.reason(Some(format!(
                "not yet removed at the vendor; next check at {next}"
            )))
        }
        VerifyResult::Transient {
            message,
            retry_after_secs,
        } => {
            if now >= limit {
                let why = format!(
                    "could not confirm the removal since {}: {message}",
                    day(v.since)
                );
                return attention(s, why);
            }
            let next = now + schedule::retry_delay(&c.id, v.calls, *retry_after_secs);
            s.new.revocation.verifying = Some(v);
            s.new.due_at = Some(next);
            s.reason(Some(format!("could not ask the vendor: {message}")))
        }
        VerifyResult::Permanent { message } => {
            attention(s, format!("could not confirm the removal: {message}"))
        }
    }
}

/// How many failed calls a re-check may take before it is skipped for the next one.
const RECHECK_FAILURES: u32 = 5;

/// The vendor answered a re-check of a closed candidate.
fn rechecked<'a>(
    c: &'a Candidate,
    v: &Verification,
    result: &VerifyResult,
    now: Timestamp,
) -> Step<'a> {
    let mut s = Step::new(c);
    let mut v = v.clone();
    v.calls += 1;
    let day_no = c
        .closed_at
        .map(|t| (now - t).num_days())
        .unwrap_or_default();
    // The rule's re-check days reached by now: a check a sam admin asked for early does not
    // use up the next scheduled one; a scheduled one counts itself.
    let passed = schedule::rechecks_passed(c, now);
    let reason = match result {
        VerifyResult::Absent => {
            v.last_checked_at = Some(now);
            v.rechecks_done = v.rechecks_done.max(passed);
            v.failures = 0;
            if v.status == VerificationStatus::Verified {
                format!("re-check on day {day_no}: still absent at the vendor")
            } else {
                v.status = VerificationStatus::Verified;
                v.at = now;
                format!("re-check on day {day_no}: verified absent at the vendor")
            }
        }
        VerifyResult::Unknown => {
            v.last_checked_at = Some(now);
            v.rechecks_done = v.rechecks_done.max(passed);
            v.failures = 0;
            if v.status == VerificationStatus::Unverified {
                v.status = VerificationStatus::NotVerifiable;
                v.at = now;
            }
            format!("re-check on day {day_no}: not verifiable by this plugin")
        }
        VerifyResult::Present => {
            v.last_checked_at = Some(now);
            v.reappeared_at = Some(now);
            v.failures = 0;
            format!(
                "re-check on day {day_no}: the vendor shows {} again; it reappeared",
                right(c)
            )
        }
        VerifyResult::Transient {
            message,
            retry_after_secs,
        } => {
            v.failures += 1;
            if v.failures < RECHECK_FAILURES {
                let next = now + schedule::retry_delay(&c.id, v.failures, *retry_after_secs);
                s.new.verification = Some(v);
                s.new.due_at = Some(next);
                return s.reason(Some(format!(
                    "re-check on day {day_no} could not ask the vendor: {message}; trying \
                     again at {next}"
                )));
            }
            v.rechecks_done = v.rechecks_done.max(passed);
            v.failures = 0;
            format!(
                "re-check on day {day_no} failed {RECHECK_FAILURES} times ({message}); \
                 skipped until the next one"
            )
        }
        VerifyResult::Permanent { message } => {
            v.rechecks_done = v.rechecks_done.max(passed);
            v.failures = 0;
            format!("re-check on day {day_no} failed: {message}")
        }
    };
    s.new.verification = Some(v);
    s.new.due_at = schedule::next_recheck(&s.new);
    s.reason(Some(reason))
}

/// The user's address bounced: a person must fix it. Whatever waited on the user stops (their
/// tasks close, no deadline runs out); Resume then starts again from Ready, or, when the
/// removal had already been decided, retries the removal.
/// A message could not reach a person: the candidate waits in Attention Required, with `why`
/// added to any earlier reason, until someone fixes the address and resumes it.
fn mail_problem(c: &Candidate, why: String, reason: String) -> Step<'_> {
    use State::*;
    let removal_decided = c.state == AwaitingRevocation
        || (c.state == AttentionRequired && c.attention_from == Some(AwaitingRevocation));
    let mut s = Step::new(c).to(AttentionRequired);
    if matches!(c.state, AwaitingUser | AwaitingApproval) {
        s = s.effect(EffectKind::CloseTasks {
            kinds: vec![TaskKind::UserAnswer, TaskKind::Approval],
        });
    }
    // Already waiting for a person for another reason: keep that reason too.
    s.new.attention = Some(match c.attention.as_deref() {
        Some(earlier) if c.state == AttentionRequired && !earlier.contains(&why) => {
            format!("{earlier}; {why}")
        }
        _ => why,
    });
    s.new.attention_from = Some(if removal_decided {
        AwaitingRevocation
    } else if c.state == AttentionRequired {
        c.attention_from.unwrap_or(Ready)
    } else {
        c.state
    });
    s.new.due_at = None;
    s.new.deadline_at = None;
    s.reason(Some(reason))
}

/// Awaiting Approval: the keep request goes to the assignment group, as a task and a mail.
fn keep_request<'a>(s: Step<'a>, comment: Option<&str>) -> Step<'a> {
    let c = s.old;
    let group = c.assignment_group.clone().unwrap_or_default();
    s.to(State::AwaitingApproval)
        .effect(EffectKind::CreateTask(NewTask {
            kind: TaskKind::Approval,
            assignee: None,
            group: Some(group.clone()),
            title: format!("Approve keeping {}", c.software.label()),
            instructions: keep_request_text(c, comment),
        }))
        .mail(MailKind::KeepRequest, Recipient::Group(group))
}

fn attention(mut s: Step<'_>, why: String) -> Step<'_> {
    s.new.attention = Some(why.clone());
    s.new.attention_from = Some(State::AwaitingRevocation);
    s.new.due_at = None;
    s.to(State::AttentionRequired).reason(Some(why))
}

/// The question, as a task's instructions.
pub fn ask_text(c: &Candidate) -> String {
    let device = c.device.as_deref().unwrap_or("your account");
    format!(
        "{} on {} has been flagged for reclamation ({}). Do you still need it? \
         Answer Yes to keep it or No to have it removed.",
        c.software.label(),
        device,
        c.justification.as_str()
    )
}

fn keep_request_text(c: &Candidate, comment: Option<&str>) -> String {
    let who = c
        .user
        .as_ref()
        .map_or("The user", |u| u.display_name.as_str());
    let why = comment
        .map(|t| format!(" Reason given: {t}"))
        .unwrap_or_default();
    format!(
        "{who} asked to keep {} ({}).{why} Approve to keep it, or reject to have it removed.",
        c.software.label(),
        c.number
    )
}
