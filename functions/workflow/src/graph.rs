//! "Show Workflow": the state graph, the current stage and the path taken.

use crate::model::{HistoryEntry, State};
use serde::Serialize;

/// One documented move of the workflow table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Edge {
    pub from: State,
    pub to: State,
    /// The event names (as `Event::name`) that take this edge.
    pub events: &'static [&'static str],
    pub label: &'static str,
}

use State::*;

/// The workflow table's edges between different states (self-loops such as reminders are
/// listed too, so the graph can show them).
pub const EDGES: &[Edge] = &[
    Edge {
        from: Ready,
        to: AwaitingUser,
        events: &["reclaim"],
        label: "Reclaim: notify user",
    },
    Edge {
        from: Ready,
        to: AwaitingRevocation,
        events: &["reclaim"],
        label: "Reclaim: no notification",
    },
    Edge {
        from: Ready,
        to: AttentionRequired,
        events: &["reclaim"],
        label: "Reclaim: user or email missing",
    },
    Edge {
        from: AwaitingUser,
        to: AwaitingApproval,
        events: &["answer-keep"],
        label: "User: Yes, keep",
    },
    Edge {
        from: AwaitingUser,
        to: AwaitingRevocation,
        events: &["answer-remove"],
        label: "User: No, remove",
    },
    Edge {
        from: AwaitingUser,
        to: AwaitingRevocation,
        events: &["deadline-passed"],
        label: "No answer by the deadline",
    },
    Edge {
        from: AwaitingUser,
        to: AwaitingUser,
        events: &["remind"],
        label: "Reminder",
    },
    Edge {
        from: AwaitingApproval,
        to: ClosedSkipped,
        events: &["approve"],
        label: "Approved: keep",
    },
    Edge {
        from: AwaitingApproval,
        to: AwaitingRevocation,
        events: &["reject"],
        label: "Rejected: remove",
    },
    Edge {
        from: AwaitingRevocation,
        to: ClosedComplete,
        events: &["verified-absent", "revocation-already-absent"],
        label: "Verified absent at the vendor",
    },
    Edge {
        from: AwaitingRevocation,
        to: ClosedComplete,
        events: &["verify-unknown"],
        label: "Removed; not verifiable",
    },
    Edge {
        from: AwaitingRevocation,
        to: AwaitingRevocation,
        events: &[
            "revocation-removed",
            "revocation-pending",
            "verify-due",
            "check-now",
        ],
        label: "Removed or pending: verifying",
    },
    Edge {
        from: AwaitingRevocation,
        to: AwaitingRevocation,
        events: &["verified-present", "verify-transient-error"],
        label: "Still present: check again or retry",
    },
    Edge {
        from: AwaitingRevocation,
        to: AwaitingRevocation,
        events: &[
            "revocation-manual-task",
            "revocation-transient-error",
            "retry-revocation",
        ],
        label: "Manual task or retry",
    },
    Edge {
        from: AwaitingRevocation,
        to: ClosedComplete,
        events: &["close-complete"],
        label: "Close Complete",
    },
    Edge {
        from: AwaitingRevocation,
        to: AttentionRequired,
        events: &["revocation-permanent-error", "revocation-transient-error"],
        label: "Revocation failed",
    },
    Edge {
        from: AwaitingRevocation,
        to: AttentionRequired,
        events: &["exclusion-held"],
        label: "The rule excludes the user",
    },
    Edge {
        from: AwaitingRevocation,
        to: AttentionRequired,
        events: &[
            "verified-present",
            "verify-transient-error",
            "verify-permanent-error",
        ],
        label: "Still present or not confirmed",
    },
    Edge {
        from: ClosedComplete,
        to: ClosedComplete,
        events: &[
            "verify-due",
            "check-now",
            "verified-absent",
            "verify-unknown",
            "verify-transient-error",
            "verify-permanent-error",
        ],
        label: "Re-check: still gone",
    },
    Edge {
        from: ClosedComplete,
        to: ClosedComplete,
        events: &["verified-present", "reopen", "accept-reappeared"],
        label: "Reappeared: reopen or accept",
    },
    Edge {
        from: AttentionRequired,
        to: Ready,
        events: &["resume"],
        label: "Resume",
    },
    Edge {
        from: AttentionRequired,
        to: AwaitingRevocation,
        events: &["resume"],
        label: "Resume: retry removal",
    },
    Edge {
        from: AttentionRequired,
        to: AwaitingUser,
        events: &["resume"],
        label: "Resume: ask the user again",
    },
    Edge {
        from: AttentionRequired,
        to: AwaitingApproval,
        events: &["resume"],
        label: "Resume: back to the approvers",
    },
    Edge {
        from: AttentionRequired,
        to: AttentionRequired,
        events: &["resume"],
        label: "Resume: still missing",
    },
    Edge {
        from: Ready,
        to: ClosedSkipped,
        events: &["close-skipped"],
        label: "Close Skipped",
    },
    Edge {
        from: AttentionRequired,
        to: ClosedSkipped,
        events: &["close-skipped"],
        label: "Close Skipped",
    },
    Edge {
        from: AwaitingUser,
        to: ClosedSkipped,
        events: &["close-skipped"],
        label: "Close Skipped",
    },
    Edge {
        from: AwaitingApproval,
        to: ClosedSkipped,
        events: &["close-skipped"],
        label: "Close Skipped",
    },
    Edge {
        from: AwaitingRevocation,
        to: ClosedSkipped,
        events: &["close-skipped"],
        label: "Close Skipped",
    },
    Edge {
        from: Ready,
        to: AttentionRequired,
        events: &["mail-refused", "mail-undeliverable"],
        label: "Mail refused or undeliverable",
    },
    Edge {
        from: AwaitingUser,
        to: AttentionRequired,
        events: &["mail-refused", "mail-undeliverable"],
        label: "Mail refused or undeliverable",
    },
    Edge {
        from: AwaitingApproval,
        to: AttentionRequired,
        events: &["mail-refused", "mail-undeliverable"],
        label: "Mail refused or undeliverable",
    },
    Edge {
        from: AwaitingRevocation,
        to: AttentionRequired,
        events: &["mail-refused", "mail-undeliverable"],
        label: "Mail refused or undeliverable",
    },
    Edge {
        from: AttentionRequired,
        to: AttentionRequired,
        events: &["mail-refused", "mail-undeliverable"],
        label: "Mail refused or undeliverable",
    },
    Edge {
        from: Ready,
        to: ClosedCanceled,
        events: &["usage-detected"],
        label: "Usage seen again",
    },
    Edge {
        from: AwaitingUser,
        to: ClosedCanceled,
        events: &["usage-detected"],
        label: "Usage seen again",
    },
    Edge {
        from: AwaitingApproval,
        to: ClosedCanceled,
        events: &["usage-detected"],
        label: "Usage seen again",
    },
];

/// Events that edit a record without moving it (assign, notes, fixing the user, an exclusion
/// held at Reclaim or overridden).
pub const EDITS: &[&str] = &[
    "assign",
    "work-note",
    "update-user",
    "exclusion-held",
    "override-exclusion",
];

/// True when the table documents `event` taking `from` to `to`.
pub fn is_documented(from: State, to: State, event: &str) -> bool {
    if from == to && EDITS.contains(&event) {
        return true;
    }
    EDGES
        .iter()
        .any(|e| e.from == from && e.to == to && e.events.contains(&event))
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GraphState {
    pub id: &'static str,
    pub label: &'static str,
    pub current: bool,
    pub visited: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GraphEdge {
    pub from: &'static str,
    pub to: &'static str,
    pub label: &'static str,
    pub taken: bool,
}

/// What the candidate page and the API show for "Show Workflow".
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WorkflowGraph {
    pub states: Vec<GraphState>,
    pub edges: Vec<GraphEdge>,
    pub current: Option<&'static str>,
    /// States in the order the candidate went through them (from the history).
    pub path: Vec<&'static str>,
}

/// The graph for one candidate (or the bare graph when `current` is `None`).
pub fn workflow_graph(current: Option<State>, history: &[HistoryEntry]) -> WorkflowGraph {
    let mut path: Vec<State> = Vec::new();
    for h in history {
        if path.is_empty() {
            path.push(h.from);
        }
        if path.last() != Some(&h.to) {
            path.push(h.to);
        }
    }
    if path.is_empty() {
        path.extend(current);
    }
    let taken = |from: State, to: State, event: &str| {
        history
            .iter()
            .any(|h| h.from == from && h.to == to && h.event == event)
    };
    WorkflowGraph {
        states: State::ALL
            .iter()
            .map(|s| GraphState {
                id: s.as_str(),
                label: s.label(),
                current: Some(*s) == current,
                visited: path.contains(s),
            })
            .collect(),
        edges: EDGES
            .iter()
            .map(|e| GraphEdge {
                from: e.from.as_str(),
                to: e.to.as_str(),
                label: e.label,
                taken: e.events.iter().any(|ev| taken(e.from, e.to, ev)),
            })
            .collect(),
        current: current.map(State::as_str),
        path: path.into_iter().map(State::as_str).collect(),
    }
}
