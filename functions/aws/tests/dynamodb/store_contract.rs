//! The store contract suite, unchanged, on DynamoDB (the emulator): the same promises the
//! SQLite store keeps.

use crate::common;

reclaim_workflow::store_contract_tests!(common::fresh);
