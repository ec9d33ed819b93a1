//! What can happen to a candidate.

use crate::intake::FieldError;
use crate::model::{Timestamp, UserRef};
use crate::text;
use crate::text::one_line;
use serde::{Deserialize, Serialize};

/// How the user's or approver's answer arrived; kept on the audit trail.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Via {
    /// `link`, `task`, `api` or `web`.
    pub channel: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Via {
    pub fn api() -> Self {
        Via {
            channel: "api".into(),
            ..Via::default()
        }
    }
}

/// What a revocation plugin (or the host running it) reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum RevocationResult {
    Removed {
        evidence: String,
    },
    AlreadyAbsent,
    ManualTask {
        title: String,
        instructions: String,
        assignee_hint: Option<String>,
    },
    /// The vendor accepted the request; look again later.
    Pending {
        check_after_secs: u32,
    },
    Transient {
        message: String,
        retry_after_secs: Option<u32>,
    },
    /// Retrying will not help (includes misconfiguration and no plugin to route to).
    Permanent {
        message: String,
    },
}

/// What the vendor said when asked whether the right is still there (the plugin's `verify`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "presence", rename_all = "kebab-case")]
pub enum VerifyResult {
    Absent,
    Present,
    /// The plugin cannot tell (no read API, or a manual removal).
    Unknown,
    Transient {
        message: String,
        retry_after_secs: Option<u32>,
    },
    Permanent {
        message: String,
    },
}

impl VerifyResult {
    /// The answer as it may be stored and shown (see [`RevocationResult::cleaned`]).
    pub fn cleaned(&self) -> VerifyResult {
        match self {
            VerifyResult::Transient {
                message,
                retry_after_secs,
            } => VerifyResult::Transient {
                message: text::cleaned(message, true),
                retry_after_secs: *retry_after_secs,
            },
            VerifyResult::Permanent { message } => VerifyResult::Permanent {
                message: text::cleaned(message, true),
            },
            other => other.clone(),
        }
    }
}

/// An event asks the workflow to move a candidate; the core decides whether it may.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    Reclaim,
    /// The user's answer: keep = Yes, remove = No.
    Answer {
        keep: bool,
        comment: Option<String>,
        via: Via,
    },
    Approve {
        comment: Option<String>,
        via: Via,
    },
    Reject {
        comment: Option<String>,
        via: Via,
    },
    /// The auto-reclamation deadline passed without an answer.
    DeadlinePassed,
    Remind,
    Revocation(RevocationResult),
    /// A due retry, or a pending removal to check again.
    RetryRevocation,
    CloseComplete {
        note: Option<String>,
    },
    CloseSkipped {
        reason: Option<String>,
    },
    Resume,
    /// Usage was seen again: the user still needs it.
    UsageDetected {
        last_used_at: Timestamp,
    },
    Assign {
        group: Option<String>,
        assigned_to: Option<String>,
    },
    WorkNote {
        text: String,
    },
    /// Correct the user (e.g. add the missing email) before Resume.
    UpdateUser {
        user: UserRef,
    },
    /// The mail server permanently refused the user's address (a 5xx to the recipient): the
    /// user cannot be reached until a person fixes the address.
    MailRefused {
        recipient: String,
        /// The server's answer, e.g. `550 5.1.1 mailbox unavailable`.
        message: String,
    },
    /// A message the workflow must send has nobody to go to (no address for the user, the
    /// assignee or anyone in the group): a person must fix the directory, because a message
    /// is never dropped in silence.
    MailUndeliverable {
        /// Who it was for, in words ("the user uma", "anyone in group approvers").
        recipient: String,
    },
    /// The vendor is due to be asked whether the right is gone: a removal waiting for its
    /// confirmation, or a re-check of a closed candidate.
    VerifyDue,
    /// A sam admin asks the vendor now instead of waiting for the next check (after a
    /// true-up, or to confirm a removal a person did).
    CheckNow,
    /// The vendor's answer to a verify call.
    Verification(VerifyResult),
    /// A right that came back is reclaimed again by a new candidate (made by the application,
    /// which names it here), linked to this one.
    Reopen {
        candidate_id: String,
        candidate_number: String,
    },
    /// A right that came back stays with its user; the reason is kept.
    AcceptReappeared {
        reason: String,
    },
    /// The candidate's rule excludes its user (checked at Reclaim and before every removal):
    /// nothing is done, and the reason is kept.
    ExclusionHeld {
        reason: String,
    },
    /// A sam admin reclaims this candidate although its rule excludes its user, saying why.
    OverrideExclusion {
        comment: String,
    },
}

impl Event {
    /// The event's name in errors, history and the workflow graph.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Reclaim => "reclaim",
            Event::Answer { keep: true, .. } => "answer-keep",
            Event::Answer { keep: false, .. } => "answer-remove",
            Event::Approve { .. } => "approve",
            Event::Reject { .. } => "reject",
            Event::DeadlinePassed => "deadline-passed",
            Event::Remind => "remind",
            Event::Revocation(r) => match r {
                RevocationResult::Removed { .. } => "revocation-removed",
                RevocationResult::AlreadyAbsent => "revocation-already-absent",
                RevocationResult::ManualTask { .. } => "revocation-manual-task",
                RevocationResult::Pending { .. } => "revocation-pending",
                RevocationResult::Transient { .. } => "revocation-transient-error",
                RevocationResult::Permanent { .. } => "revocation-permanent-error",
            },
            Event::RetryRevocation => "retry-revocation",
            Event::CloseComplete { .. } => "close-complete",
            Event::CloseSkipped { .. } => "close-skipped",
            Event::Resume => "resume",
            Event::UsageDetected { .. } => "usage-detected",
            Event::Assign { .. } => "assign",
            Event::WorkNote { .. } => "work-note",
            Event::UpdateUser { .. } => "update-user",
            Event::MailRefused { .. } => "mail-refused",
            Event::MailUndeliverable { .. } => "mail-undeliverable",
            Event::VerifyDue => "verify-due",
            Event::CheckNow => "check-now",
            Event::Verification(v) => match v {
                VerifyResult::Absent => "verified-absent",
                VerifyResult::Present => "verified-present",
                VerifyResult::Unknown => "verify-unknown",
                VerifyResult::Transient { .. } => "verify-transient-error",
                VerifyResult::Permanent { .. } => "verify-permanent-error",
            },
            Event::Reopen { .. } => "reopen",
            Event::AcceptReappeared { .. } => "accept-reappeared",
            Event::ExclusionHeld { .. } => "exclusion-held",
            Event::OverrideExclusion { .. } => "override-exclusion",
        }
    }
}

/// Longest work note, comment or reason, in characters: long enough for any explanation, short
/// enough that a candidate's notes stay readable and storable.
pub const MAX_NOTE_CHARS: usize = 10_000;

fn field(name: &str, message: String) -> FieldError {
    FieldError {
        field: name.to_string(),
        message,
    }
}

fn note(name: &str, v: Option<&str>) -> Result<(), FieldError> {
    let Some(v) = v else { return Ok(()) };
    if v.chars().count() > MAX_NOTE_CHARS {
        return Err(field(name, format!("at most {MAX_NOTE_CHARS} characters")));
    }
    text::multi_line(v).map_err(|e| field(name, e.to_string()))
}

impl Via {
    /// The channel's details as stored: built by Reclaim from a request, so never refused, but
    /// a user agent is whatever the browser sent.
    fn cleaned(&self) -> Via {
        Via {
            channel: text::cleaned(&self.channel, true),
            ip: self.ip.as_deref().map(|v| text::cleaned(v, true)),
            user_agent: self.user_agent.as_deref().map(|v| text::cleaned(v, true)),
        }
    }
}

impl RevocationResult {
    /// A plugin's answer as it may be stored and shown: the answer reports a fact (the seat is
    /// gone, a person must act) that refusing would lose, so what may not be shown is escaped.
    /// Evidence and messages are shown on one line (history, attention); only a manual task's
    /// instructions keep their line breaks.
    pub fn cleaned(&self) -> RevocationResult {
        let line = |s: &str| text::cleaned(s, true);
        match self {
            RevocationResult::Removed { evidence } => RevocationResult::Removed {
                evidence: line(evidence),
            },
            RevocationResult::ManualTask {
                title,
                instructions,
                assignee_hint,
            } => RevocationResult::ManualTask {
                title: line(title),
                instructions: text::cleaned(instructions, false),
                assignee_hint: assignee_hint.as_deref().map(line),
            },
            RevocationResult::Transient {
                message,
                retry_after_secs,
            } => RevocationResult::Transient {
                message: line(message),
                retry_after_secs: *retry_after_secs,
            },
            RevocationResult::Permanent { message } => RevocationResult::Permanent {
                message: line(message),
            },
            RevocationResult::AlreadyAbsent | RevocationResult::Pending { .. } => self.clone(),
        }
    }
}

impl Event {
    /// Why a mail event puts the candidate in Attention Required, in the words its attention
    /// shows; the effect runner uses the same words to tell whether it already did.
    pub fn mail_attention(&self) -> Option<String> {
        match self {
            Event::MailRefused { message, .. } => {
                Some(format!("the user's address was refused: {message}"))
            }
            Event::MailUndeliverable { recipient } => {
                Some(format!("no email address for {recipient}"))
            }
            _ => None,
        }
    }

    /// What people typed into this event, checked by the one rule every entry point shares
    /// (API, pages, links, CLI): names and ids are one line, notes and comments keep line
    /// breaks but no NUL or control characters.
    pub fn check_text(&self) -> Result<(), FieldError> {
        match self {
            Event::Answer { comment, .. }
            | Event::Approve { comment, .. }
            | Event::Reject { comment, .. } => note("comment", comment.as_deref()),
            Event::CloseComplete { note: n } => note("note", n.as_deref()),
            Event::CloseSkipped { reason } => note("reason", reason.as_deref()),
            Event::WorkNote { text } => note("text", Some(text)),
            Event::Assign { group, assigned_to } => {
                if let Some(g) = group {
                    one_line("group", g)?;
                }
                match assigned_to {
                    Some(a) => one_line("assigned_to", a),
                    None => Ok(()),
                }
            }
            Event::UpdateUser { user } => user.check_text(),
            Event::AcceptReappeared { reason } => note("reason", Some(reason)),
            Event::OverrideExclusion { comment } => note("comment", Some(comment)),
            _ => Ok(()),
        }
    }

    /// The event with what came from outside Reclaim (plugin answers, mail server replies,
    /// user agents) made safe to store and show; `None` when nothing needed it.
    pub fn cleaned(&self) -> Option<Event> {
        let cleaned = match self {
            Event::Revocation(r) => Event::Revocation(r.cleaned()),
            Event::Verification(v) => Event::Verification(v.cleaned()),
            Event::MailRefused { recipient, message } => Event::MailRefused {
                recipient: text::cleaned(recipient, true),
                message: text::cleaned(message, true),
            },
            Event::Answer { keep, comment, via } => Event::Answer {
                keep: *keep,
                comment: comment.clone(),
                via: via.cleaned(),
            },
            Event::Approve { comment, via } => Event::Approve {
                comment: comment.clone(),
                via: via.cleaned(),
            },
            Event::Reject { comment, via } => Event::Reject {
                comment: comment.clone(),
                via: via.cleaned(),
            },
            _ => return None,
        };
        (cleaned != *self).then_some(cleaned)
    }
}
