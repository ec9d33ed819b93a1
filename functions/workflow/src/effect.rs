//! Effects: what must happen outside the core after a transition commits.
//!
//! Each effect has a key (candidate id + version + kind) that is unique per transition, so
//! runners can execute effects at least once and still do each thing once.

use crate::model::TaskKind;
use serde::{Deserialize, Serialize};

/// The emails the workflow sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MailKind {
    /// Ask the user: keep (Yes) or remove (No)?
    AskUser,
    Reminder,
    /// Tell the assignment group a user asked to keep it.
    KeepRequest,
    /// Outcome to the user: the keep request was approved.
    Kept,
    /// Outcome to the user: the keep request was rejected; removal follows.
    KeepRejected,
    /// Outcome to the user: removed.
    Removed,
    /// Outcome to the user: the reclamation was canceled.
    Canceled,
    /// To the person who must remove it by hand.
    ManualTask,
}

impl MailKind {
    /// Whether a message of this kind still tells the truth about a candidate that is now in
    /// `state`. Effects run after the write commits, and a later transition can land first (a
    /// reject and a close-skipped together): a message that no longer holds is not sent.
    pub fn still_true_in(self, state: crate::State) -> bool {
        use crate::State::*;
        match self {
            MailKind::AskUser | MailKind::Reminder => state == AwaitingUser,
            MailKind::KeepRequest => state == AwaitingApproval,
            MailKind::Kept => state == ClosedSkipped,
            MailKind::KeepRejected => {
                matches!(
                    state,
                    AwaitingRevocation | AttentionRequired | ClosedComplete
                )
            }
            MailKind::Removed => state == ClosedComplete,
            MailKind::Canceled => state == ClosedCanceled,
            MailKind::ManualTask => matches!(state, AwaitingRevocation | AttentionRequired),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::AskUser => "ask-user",
            MailKind::Reminder => "reminder",
            MailKind::KeepRequest => "keep-request",
            MailKind::Kept => "kept",
            MailKind::KeepRejected => "keep-rejected",
            MailKind::Removed => "removed",
            MailKind::Canceled => "canceled",
            MailKind::ManualTask => "manual-task",
        }
    }
}

/// Who an email goes to; adapters resolve groups and people to addresses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", content = "id", rename_all = "kebab-case")]
pub enum Recipient {
    /// The candidate's user (address on the candidate).
    CandidateUser,
    /// Every member of an assignment group (or the group's address).
    Group(String),
    /// One person from the directory.
    Person(String),
}

/// A task to open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTask {
    pub kind: TaskKind,
    pub assignee: Option<String>,
    pub group: Option<String>,
    pub title: String,
    pub instructions: String,
}

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "kebab-case")]
pub enum EffectKind {
    Email {
        mail: MailKind,
        recipient: Recipient,
    },
    CreateTask(NewTask),
    /// Close the candidate's open tasks of these kinds (the work is no longer needed).
    CloseTasks {
        kinds: Vec<TaskKind>,
    },
    /// Run the revocation plugin; `attempt` counts from 1.
    Revoke {
        attempt: u32,
    },
    /// Ask the vendor whether the right is gone (the plugin's `verify`); `call` is the number
    /// of this call (the candidate's recorded calls + 1), so a repeated delivery asks once.
    Verify {
        call: u32,
    },
}

impl EffectKind {
    /// The kind part of the key; unique within one transition by construction.
    pub fn tag(&self) -> String {
        match self {
            EffectKind::Email { mail, recipient } => {
                let to = match recipient {
                    Recipient::CandidateUser => "user".to_string(),
                    Recipient::Group(g) => format!("group-{g}"),
                    Recipient::Person(p) => format!("person-{p}"),
                };
                format!("email-{}-{to}", mail.as_str())
            }
            EffectKind::CreateTask(t) => format!("task-{}", t.kind.as_str()),
            EffectKind::CloseTasks { .. } => "close-tasks".into(),
            EffectKind::Revoke { .. } => "revoke".into(),
            EffectKind::Verify { .. } => "verify".into(),
        }
    }
}

/// One effect of one transition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effect {
    /// `{candidate id}:{version}:{tag}`: the idempotency key.
    pub key: String,
    pub candidate_id: String,
    /// The candidate version the effect belongs to.
    pub version: u64,
    pub kind: EffectKind,
}

impl Effect {
    pub fn new(candidate_id: &str, version: u64, kind: EffectKind) -> Self {
        Effect {
            key: format!("{candidate_id}:{version}:{}", kind.tag()),
            candidate_id: candidate_id.to_string(),
            version,
            kind,
        }
    }
}
