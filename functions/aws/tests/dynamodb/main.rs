//! The integration tests that need DynamoDB, in one binary of their own: the test command runs
//! them against AWS's DynamoDB Local (`tests/dynamodb/in-private-network.sh`), which enforces
//! DynamoDB's limits as moto does not, and skips them (`--skip dynamodb_local::`) in the run
//! against moto. One binary instead of one per file: linking was most of the test build's time.

#[path = "../common/mod.rs"]
mod common;

mod dynamodb_local;
