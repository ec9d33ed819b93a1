//! The store contract suite of `reclaim_workflow::testing::contract`, run on SQLite.

// Test support code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

reclaim_workflow::store_contract_tests!(common::fresh);
