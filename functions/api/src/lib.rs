//! # reclaim-api
//!
//! The application layer ([`App`]) and the one axum Router every deployment serves: the admin
//! and approver JSON API, the public link pages, and (local mode) the outbox page. Local mode
//! merges all routes into one Router; on AWS each Lambda mounts only its own route set.

pub mod app;
pub mod builtin;
pub mod connectors;
pub mod http;
pub mod links;
pub mod mail;
pub mod rows;

pub use app::{App, AppError, EffectError, Ports, Settings};
pub use builtin::ManualTaskRevoker;
pub use http::auth::{token_digest, AuthError, Authenticate, NoAuthentication, StoredTokens};
pub use http::outbox::{OutboxView, StoredMail};
pub use http::{admin_routes, public_routes, router, ApiState};
pub use links::HmacLinkSigner;
