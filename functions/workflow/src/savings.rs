//! Savings: potential (open candidates) and actual (Closed Complete), by month and software.

use crate::model::{Candidate, Cents, State};
use serde::Serialize;
use std::collections::BTreeMap;

/// Totals people read on the dashboard and in the API.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Savings {
    pub potential_cents: Cents,
    pub actual_cents: Cents,
    /// Actual savings by month of closing (`YYYY-MM`).
    pub actual_by_month: BTreeMap<String, Cents>,
    /// Potential and actual by `publisher / product`.
    pub by_product: BTreeMap<String, ProductSavings>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProductSavings {
    pub potential_cents: Cents,
    pub actual_cents: Cents,
}

impl Savings {
    /// Adds one candidate; call for every candidate in scope.
    pub fn add(&mut self, c: &Candidate) {
        let amount = c.potential_savings_cents();
        let key = format!("{} / {}", c.software.publisher, c.software.product);
        if c.state == State::ClosedComplete {
            self.actual_cents += amount;
            let month = c
                .closed_at
                .map(|t| t.format("%Y-%m").to_string())
                .unwrap_or_default();
            *self.actual_by_month.entry(month).or_default() += amount;
            self.by_product.entry(key).or_default().actual_cents += amount;
        } else if !c.state.is_closed() {
            self.potential_cents += amount;
            self.by_product.entry(key).or_default().potential_cents += amount;
        }
    }
}
