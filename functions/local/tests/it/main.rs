//! Every integration test of this crate, a module per area, in one binary:
//! linking a binary per file was most of the test build's time.
mod common;

mod cli;
mod concurrency;
mod demo;
mod doors;
mod restart;
mod smtp;
mod store_contract;
mod usage_cli;
mod worker;
