//! What can happen to a candidate.

use crate::model::{Timestamp, UserRef};
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
        }
    }
}
