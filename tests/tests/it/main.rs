//! Every integration test of this crate, a module per area, in one binary:
//! linking a binary per file was most of the test build's time.

mod api_bad_input;
mod api_tcp;
mod audit_export;
mod connectors;
mod exclusions;
mod fuzz;
mod intake;
mod oidc;
mod oidc_provider;
mod plugins_core;
mod price_period;
mod routes;
mod security;
mod separation;
mod time_travel;
mod ui;
mod ui_rules;
mod usage_api;
mod verification;
mod workflow_e2e;
