//! The store contract suite, unchanged, on DynamoDB (the emulator): the same promises the
//! SQLite store keeps.

mod common;

reclaim_workflow::store_contract_tests!(common::fresh);
