//! The integration tests that need no DynamoDB beyond moto's (the functions' roles, SES, TLS,
//! precompiled plugins), a module per area, in one binary: linking a binary per
//! file was most of the test build's time.

#[path = "../common/mod.rs"]
mod common;

mod precompiled_plugins;
mod roles;
mod ses;
mod tls;
