//! Savings: potential (open candidates) and actual (Closed Complete), by month of closing,
//! publisher, product and justification. Actual savings are split by what the vendor
//! confirmed: *verified* (the vendor said the right is gone) and *unverified* (closed on a
//! person's or a plugin's word); a right a re-check found again is *reappeared* and leaves the
//! actual savings from the month it came back.

use crate::model::{Candidate, Cents, State, VerificationStatus};
use serde::Serialize;
use std::collections::BTreeMap;

/// Potential and actual savings of one slice.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Amounts {
    pub potential_cents: Cents,
    /// Verified plus unverified: what stays reclaimed as far as anyone knows.
    pub actual_cents: Cents,
    pub verified_cents: Cents,
    pub unverified_cents: Cents,
    /// Closed Complete but found again at the vendor: not in `actual_cents`.
    pub reappeared_cents: Cents,
    /// Candidates counted (open ones for potential, Closed Complete for the others).
    pub candidates: u64,
}

/// Where one candidate's amount belongs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Potential,
    Verified,
    Unverified,
    Reappeared,
}

impl Amounts {
    fn add(&mut self, kind: Kind, amount: Cents) {
        self.candidates += 1;
        match kind {
            Kind::Potential => self.potential_cents += amount,
            Kind::Verified => {
                self.verified_cents += amount;
                self.actual_cents += amount;
            }
            Kind::Unverified => {
                self.unverified_cents += amount;
                self.actual_cents += amount;
            }
            Kind::Reappeared => self.reappeared_cents += amount,
        }
    }
}

/// Totals people read on the dashboard, in the API and in the CSV export.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Savings {
    pub potential_cents: Cents,
    /// Verified plus unverified.
    pub actual_cents: Cents,
    pub verified_cents: Cents,
    pub unverified_cents: Cents,
    pub reappeared_cents: Cents,
    /// Actual savings by month (`YYYY-MM`): added in the month of closing, taken out again in
    /// the month a re-check found the right back.
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
        let kind = match c.state {
            State::ClosedComplete => match &c.verification {
                Some(v) if v.reappeared_at.is_some() => Kind::Reappeared,
                Some(v) if v.status == VerificationStatus::Verified => Kind::Verified,
                _ => Kind::Unverified,
            },
            s if s.is_closed() => return,
            _ => Kind::Potential,
        };
        self.by_publisher
            .entry(c.software.publisher.clone())
            .or_default()
            .add(kind, amount);
        self.by_product
            .entry(format!("{} / {}", c.software.publisher, c.software.product))
            .or_default()
            .add(kind, amount);
        self.by_justification
            .entry(c.justification.as_str().to_string())
            .or_default()
            .add(kind, amount);
        let month = |t: Option<crate::Timestamp>| {
            t.map(|t| t.format("%Y-%m").to_string()).unwrap_or_default()
        };
        match kind {
            Kind::Potential => self.potential_cents += amount,
            Kind::Verified | Kind::Unverified => {
                self.actual_cents += amount;
                if kind == Kind::Verified {
                    self.verified_cents += amount;
                } else {
                    self.unverified_cents += amount;
                }
                *self.actual_by_month.entry(month(c.closed_at)).or_default() += amount;
            }
            Kind::Reappeared => {
                self.reappeared_cents += amount;
                // Saved from closing until it came back: the chart keeps both months.
                *self.actual_by_month.entry(month(c.closed_at)).or_default() += amount;
                *self
                    .actual_by_month
                    .entry(month(c.reappeared_at()))
                    .or_default() -= amount;
            }
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

    /// The CSV export: one line per slice
    /// (`dimension,key,potential,actual,verified,unverified,reappeared,candidates`) and one per
    /// month (`month,YYYY-MM,,actual,,,,`), amounts in major units.
    pub fn to_csv(&self) -> String {
        use crate::intake::format_money;
        let mut out = String::from(
            "dimension,key,potential,actual,verified,unverified,reappeared,candidates\n",
        );
        let field = crate::text::csv_cell;
        out.push_str(&format!(
            "total,all,{},{},{},{},{},\n",
            format_money(self.potential_cents),
            format_money(self.actual_cents),
            format_money(self.verified_cents),
            format_money(self.unverified_cents),
            format_money(self.reappeared_cents)
        ));
        for (dim, map) in [
            ("publisher", &self.by_publisher),
            ("product", &self.by_product),
            ("justification", &self.by_justification),
        ] {
            for (k, a) in map {
                out.push_str(&format!(
                    "{dim},{},{},{},{},{},{},{}\n",
                    field(k),
                    format_money(a.potential_cents),
                    format_money(a.actual_cents),
                    format_money(a.verified_cents),
                    format_money(a.unverified_cents),
                    format_money(a.reappeared_cents),
                    a.candidates
                ));
            }
        }
        for (month, cents) in &self.actual_by_month {
            out.push_str(&format!(
                "month,{},,{},,,,\n",
                field(month),
                format_money(*cents)
            ));
        }
        out
    }
}
