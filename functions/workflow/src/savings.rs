//! Savings: potential (open candidates) and actual (Closed Complete), by month of closing,
//! publisher, product and justification.

use crate::model::{Candidate, Cents, State};
use serde::Serialize;
use std::collections::BTreeMap;

/// Potential and actual savings of one slice.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Amounts {
    pub potential_cents: Cents,
    pub actual_cents: Cents,
    /// Candidates counted (open ones for potential, Closed Complete for actual).
    pub candidates: u64,
}

/// Totals people read on the dashboard, in the API and in the CSV export.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Savings {
    pub potential_cents: Cents,
    pub actual_cents: Cents,
    /// Actual savings by month of closing (`YYYY-MM`).
    pub actual_by_month: BTreeMap<String, Cents>,
    pub by_publisher: BTreeMap<String, Amounts>,
    /// Keyed `publisher / product`.
    pub by_product: BTreeMap<String, Amounts>,
    pub by_justification: BTreeMap<String, Amounts>,
}

impl Savings {
    /// Adds one candidate; call for every candidate in scope.
    pub fn add(&mut self, c: &Candidate) {
        let amount = c.potential_savings_cents();
        let actual = c.state == State::ClosedComplete;
        if !actual && c.state.is_closed() {
            return;
        }
        let bump = |a: &mut Amounts| {
            a.candidates += 1;
            if actual {
                a.actual_cents += amount;
            } else {
                a.potential_cents += amount;
            }
        };
        bump(
            self.by_publisher
                .entry(c.software.publisher.clone())
                .or_default(),
        );
        bump(
            self.by_product
                .entry(format!("{} / {}", c.software.publisher, c.software.product))
                .or_default(),
        );
        bump(
            self.by_justification
                .entry(c.justification.as_str().to_string())
                .or_default(),
        );
        if actual {
            self.actual_cents += amount;
            let month = c
                .closed_at
                .map(|t| t.format("%Y-%m").to_string())
                .unwrap_or_default();
            *self.actual_by_month.entry(month).or_default() += amount;
        } else {
            self.potential_cents += amount;
        }
    }

    /// Sums a set of candidates.
    pub fn of<'a>(candidates: impl IntoIterator<Item = &'a Candidate>) -> Savings {
        let mut s = Savings::default();
        for c in candidates {
            s.add(c);
        }
        s
    }

    /// The CSV export: one line per slice (`dimension,key,potential,actual,candidates`) and
    /// one per month (`month,YYYY-MM,,actual,`), amounts in major units.
    pub fn to_csv(&self) -> String {
        use crate::intake::format_money;
        let mut out = String::from("dimension,key,potential,actual,candidates\n");
        let field = crate::text::csv_cell;
        out.push_str(&format!(
            "total,all,{},{},\n",
            format_money(self.potential_cents),
            format_money(self.actual_cents)
        ));
        for (dim, map) in [
            ("publisher", &self.by_publisher),
            ("product", &self.by_product),
            ("justification", &self.by_justification),
        ] {
            for (k, a) in map {
                out.push_str(&format!(
                    "{dim},{},{},{},{}\n",
                    field(k),
                    format_money(a.potential_cents),
                    format_money(a.actual_cents),
                    a.candidates
                ));
            }
        }
        for (month, cents) in &self.actual_by_month {
            out.push_str(&format!(
                "month,{},,{},\n",
                field(month),
                format_money(*cents)
            ));
        }
        out
    }
}
