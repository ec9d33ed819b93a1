//! # reclaim-workflow
//!
//! The reclamation workflow as pure functions: removal candidates, rules, groups, tasks, the
//! eight states and every transition of the workflow table, with the actor's right checked.
//! Nothing in here does I/O: adapters (SQLite, DynamoDB, the plugin host, mailers) implement
//! the [`ports`] and the application layer feeds the core what they read.
//!
//! The main entry point is [`apply`]: `(candidate, event, actor, now)` gives either a
//! [`Transition`] (the candidate at version + 1, its history entry and the effects to run after
//! the write commits) or a [`Refusal`] that names the state, the event and why.
//!
//! ```
//! use reclaim_workflow::{apply, Actor, Event, Principal, State};
//! # let c = reclaim_workflow::testing::candidate();
//! let admin = Actor::Person(Principal { sam_admin: true, ..Principal::user("ada") });
//! let t = apply(&c, &Event::Reclaim, &admin, c.opened_at).unwrap();
//! assert_eq!(t.candidate.state, State::AwaitingUser);
//! assert_eq!(t.candidate.version, c.version + 1);
//! ```

pub mod actor;
pub mod effect;
pub mod event;
pub mod graph;
pub mod history;
pub mod intake;
pub mod model;
pub mod ports;
pub mod rules;
pub mod savings;
pub mod schedule;
pub mod testing;
pub mod text;
pub mod transition;
pub mod usage;

pub use actor::{Actor, Principal, StandIn};
pub use effect::{Effect, EffectKind, MailKind, NewTask, Recipient};
pub use event::{Event, RevocationResult, VerifyResult, Via};
pub use graph::{workflow_graph, WorkflowGraph};
pub use model::*;
pub use transition::{apply, Refusal, RefusalReason, Transition};
