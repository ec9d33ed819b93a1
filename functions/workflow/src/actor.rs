//! Who asks for a transition, and what rights that gives them on one candidate.

use crate::model::{ActorRef, Candidate};
use serde::{Deserialize, Serialize};

/// An authenticated person with the roles the directory gives them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub user_id: String,
    pub sam_admin: bool,
    pub itil: bool,
    /// Assignment groups the person belongs to.
    pub groups: Vec<String>,
}

impl Principal {
    /// Someone known only by id (a signed link proves who they are, nothing more).
    pub fn user(id: impl Into<String>) -> Self {
        Principal {
            user_id: id.into(),
            sam_admin: false,
            itil: false,
            groups: Vec::new(),
        }
    }

    /// Whether the candidate is this person's to watch over as staff: a sam admin looks after
    /// every candidate, anyone else those assigned to them or to one of their groups. The user
    /// a candidate is about is not its caretaker, so stale alerts go to the people who can act.
    pub fn looks_after(&self, c: &Candidate) -> bool {
        self.sam_admin
            || c.assigned_to.as_deref() == Some(self.user_id.as_str())
            || c.assignment_group
                .as_deref()
                .is_some_and(|g| self.groups.iter().any(|x| x == g))
    }
}

/// The actor of a transition: a person, or one of the system's own actors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Actor {
    Person(Principal),
    /// The clock-driven sweeper: deadlines, reminders, retries, usage seen again.
    Scheduler,
    /// The outcome of a revocation plugin run.
    Revocation,
    /// The mail server's verdict on a message the workflow sent (a refused recipient).
    Mail,
}

impl Actor {
    pub fn to_ref(&self) -> ActorRef {
        match self {
            Actor::Person(p) => ActorRef::Person(p.user_id.clone()),
            Actor::Scheduler => ActorRef::Scheduler,
            Actor::Revocation => ActorRef::Revocation,
            Actor::Mail => ActorRef::Mail,
        }
    }

    pub fn person(&self) -> Option<&Principal> {
        match self {
            Actor::Person(p) => Some(p),
            _ => None,
        }
    }

    pub fn is_sam_admin(&self) -> bool {
        self.person().is_some_and(|p| p.sam_admin)
    }

    /// A member of the candidate's assignment group.
    pub fn is_group_member(&self, c: &Candidate) -> bool {
        match (self.person(), c.assignment_group.as_deref()) {
            (Some(p), Some(g)) => p.groups.iter().any(|x| x == g),
            _ => false,
        }
    }

    /// The user who holds the right.
    pub fn is_candidate_user(&self, c: &Candidate) -> bool {
        match (self.person(), c.user.as_ref()) {
            (Some(p), Some(u)) => p.user_id == u.id,
            _ => false,
        }
    }

    /// The person the candidate (or its manual-removal task) is assigned to.
    pub fn is_assignee(&self, c: &Candidate) -> bool {
        match (self.person(), c.assigned_to.as_deref()) {
            (Some(p), Some(a)) => p.user_id == a,
            _ => false,
        }
    }
}
