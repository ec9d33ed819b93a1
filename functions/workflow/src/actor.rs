//! Who asks for a transition, and what rights that gives them on one candidate.

use crate::model::{ActorRef, Candidate, Group};
use serde::{Deserialize, Serialize};

/// An authenticated person with the roles the directory gives them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub user_id: String,
    pub sam_admin: bool,
    pub itil: bool,
    /// Assignment groups the person belongs to.
    pub groups: Vec<String>,
    /// Groups whose keep requests this sam admin decides because nobody else in the group
    /// can (see [`StandIn`]); empty for everyone else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stands_in: Vec<StandIn>,
}

/// Nobody decides on their own keep request. When the only member of an assignment group is
/// the person asking (or the group has no members), the request goes to the sam admins: the
/// application gives each sam admin the `StandIn` of every such group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandIn {
    pub group: String,
    /// The group's only member, whose own requests the sam admins decide; `None`: the group
    /// has no members, so the sam admins decide every request of it.
    pub requester: Option<String>,
}

impl StandIn {
    /// Whom the sam admins stand in for in `group`: exactly the requesters for whom
    /// [`Group::deciders_besides`] leaves nobody.
    pub fn for_group(group: &Group) -> Option<StandIn> {
        let mut members = group.members.iter();
        let first = members.next();
        if members.any(|m| Some(m) != first) {
            return None;
        }
        Some(StandIn {
            group: group.id.clone(),
            requester: first.cloned(),
        })
    }
}

impl Principal {
    /// Someone known only by id (a signed link proves who they are, nothing more).
    pub fn user(id: impl Into<String>) -> Self {
        Principal {
            user_id: id.into(),
            sam_admin: false,
            itil: false,
            groups: Vec::new(),
            stands_in: Vec::new(),
        }
    }

    /// Whether this sam admin decides the candidate's keep request in place of its group.
    pub fn stands_in_for(&self, c: &Candidate) -> bool {
        let user = c.user.as_ref().map(|u| u.id.as_str());
        self.sam_admin
            && self.stands_in.iter().any(|s| {
                c.assignment_group.as_deref() == Some(s.group.as_str())
                    && s.requester.as_deref().is_none_or(|r| Some(r) == user)
            })
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

    /// May decide the candidate's keep request: a member of its assignment group (or a sam
    /// admin standing in for a group with no one else), and never the candidate's own user.
    pub fn is_approver(&self, c: &Candidate) -> bool {
        !self.is_candidate_user(c)
            && (self.is_group_member(c) || self.person().is_some_and(|p| p.stands_in_for(c)))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn group(members: &[&str]) -> Group {
        Group {
            id: "g".into(),
            name: "G".into(),
            email: None,
            members: members.iter().map(|m| m.to_string()).collect(),
        }
    }

    #[test]
    fn sam_admins_stand_in_exactly_where_the_group_leaves_nobody_to_decide() {
        for (members, requester) in [
            (vec![], None),
            (vec!["ada"], Some("ada")),
            (vec!["ada", "ada"], Some("ada")),
        ] {
            let g = group(&members);
            let s = StandIn::for_group(&g).expect("stands in");
            assert_eq!(s.requester.as_deref(), requester, "{members:?}");
            assert_eq!(g.deciders_besides(requester).count(), 0);
        }
        for members in [vec!["ada", "bob"], vec!["ada", "bob", "ada"]] {
            let g = group(&members);
            assert_eq!(StandIn::for_group(&g), None, "{members:?}");
            for r in &members {
                assert!(g.deciders_besides(Some(r)).count() > 0);
            }
        }
        // Ada's group decides Bob's request; only her own goes to the sam admins.
        assert_eq!(group(&["ada"]).deciders_besides(Some("bob")).count(), 1);
    }
}
