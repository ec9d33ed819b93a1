//! Every integration test of this crate, a module per area, in one binary:
//! linking a binary per file was most of the test build's time.
mod common;

mod history;
mod naming;
mod price_period;
mod properties;
mod schedule;
mod transitions;
mod usage;
