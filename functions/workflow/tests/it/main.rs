//! Every integration test of this crate, one module per former test file, in one binary:
//! linking a binary per file was most of the test build's time.
mod common;

mod history;
mod naming;
mod price_period;
mod properties;
mod schedule;
mod transitions;
mod usage;
