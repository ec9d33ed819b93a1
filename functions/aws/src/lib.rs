//! # reclaim-aws
//!
//! Reclaim serverless on AWS, behind the same ports and the same [`reclaim_api::App`] and
//! Router as local mode, so no workflow logic is written twice:
//!
//! - [`DynamoStore`] — one DynamoDB table implementing every store port. A transition is
//!   one `TransactWriteItems` call: the candidate item conditional on its version (a lost race
//!   is [`StoreError::Conflict`](reclaim_workflow::ports::StoreError::Conflict)) together
//!   with its history item; the candidate item carries the effects of that version, so the
//!   table's stream is the outbox ([`stream`]).
//! - [`SesMailer`] — SES v2, HTML and text, at most one message per effect key.
//! - [`wiring`] — builds the application once per Lambda process; the five binaries
//!   (`respond`, `api`, `effects`, `sweep`, `connectors`) are thin `main`s over it. Every AWS client comes
//!   from its [`wiring::Clients`], which can record each call as IAM will see it ([`calls`]).
//!
//! Configuration comes from the standard AWS environment ([`config::sdk_config`]), so
//! `AWS_ENDPOINT_URL` points every client at an emulator; the certificate authorities AWS
//! calls are verified against are compiled in ([`tls`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use reclaim_aws::DynamoStore;
//! use reclaim_workflow::ports::CandidateRead;
//!
//! let sdk = reclaim_aws::config::sdk_config(reclaim_aws::config::TlsRoots::Embedded).await?;
//! let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), "reclaim");
//! let first = store.get("RC0000001").await?;
//! # let _ = first;
//! # Ok(()) }
//! ```

pub mod calls;
pub mod config;
pub mod connectors;
pub mod dynamo;
pub mod error;
pub mod plugins;
pub mod ses;
pub mod stream;
pub mod sweep;
pub mod tls;
pub mod wiring;

pub use dynamo::DynamoStore;
pub use ses::SesMailer;
