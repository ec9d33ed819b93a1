//! Every integration test of this crate, a module per area, in one binary:
//! linking a binary per file was most of the test build's time.
mod common;

mod cache;
mod connectors;
mod example_plugins;
mod hostile;
mod logs;
mod plugins;
mod precompile;
mod revoker;
