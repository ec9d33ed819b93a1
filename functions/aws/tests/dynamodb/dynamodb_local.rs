//! Everything here runs against DynamoDB Local; the module's name is what the run against moto
//! skips.

#[path = "connectors.rs"]
mod connectors;
#[path = "dynamo.rs"]
mod dynamo;
#[path = "journey.rs"]
mod journey;
#[path = "runtime.rs"]
mod runtime;
#[path = "store_contract.rs"]
mod store_contract;
#[path = "stream_events.rs"]
mod stream_events;
#[path = "verification.rs"]
mod verification;
#[path = "workspace.rs"]
mod workspace;
