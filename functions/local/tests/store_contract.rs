//! The store contract suite of `reclaim_workflow::testing::contract`, run on SQLite.

mod common;

reclaim_workflow::store_contract_tests!(common::fresh);
