//! Savings: potential (open candidates) and actual (Closed Complete), by month of closing,
//! publisher, product and justification. Actual savings are split by what the vendor
//! confirmed: *verified* (the vendor said the right is gone) and *unverified* (closed on a
//! person's or a plugin's word); a right a re-check found again is *reappeared* and leaves the
//! actual savings from the month it came back.
//!
//! Every amount is on one stated basis ([`Candidate::saving`]): *yearly* savings count a
//! monthly price twelve times and a yearly price once, and *one-time* savings (perpetual
//! licences reclaimed) are kept apart, because they are not saved again every year. Adding the
//! two would make a report nobody can read.

use crate::model::{Candidate, Cents, PricePeriod, State, VerificationStatus};
use serde::Serialize;
use std::collections::BTreeMap;

/// Potential and actual savings of one slice on one basis.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
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

/// One slice's savings: the yearly ones under the names they always had (so readers of the
/// JSON before the basis existed read the same numbers), the one-time ones apart.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Amounts {
    /// Per year: monthly prices × 12, yearly prices as they are.
    #[serde(flatten)]
    pub yearly: Totals,
    /// Perpetual licences: saved once.
    pub one_time: Totals,
}

/// Where one candidate's amount belongs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Potential,
    Verified,
    Unverified,
    Reappeared,
}

impl Totals {
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

impl Amounts {
    /// The totals of one basis ([`PricePeriod::basis`]).
    pub fn on(&self, basis: PricePeriod) -> &Totals {
        match basis {
            PricePeriod::OneTime => &self.one_time,
            PricePeriod::Monthly | PricePeriod::Yearly => &self.yearly,
        }
    }

    fn on_mut(&mut self, basis: PricePeriod) -> &mut Totals {
        match basis {
            PricePeriod::OneTime => &mut self.one_time,
            PricePeriod::Monthly | PricePeriod::Yearly => &mut self.yearly,
        }
    }

    fn add(&mut self, kind: Kind, basis: PricePeriod, amount: Cents) {
        self.on_mut(basis).add(kind, amount);
    }
}

/// The two bases a report states, in the order it states them.
pub const BASES: [PricePeriod; 2] = [PricePeriod::Yearly, PricePeriod::OneTime];

/// Totals people read on the dashboard, in the API and in the CSV export.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Savings {
    /// Every candidate in scope, on both bases.
    #[serde(flatten)]
    pub total: Amounts,
    /// Yearly actual savings by month (`YYYY-MM`): added in the month of closing, taken out
    /// again in the month a re-check found the right back.
    pub actual_by_month: BTreeMap<String, Cents>,
    /// The same for one-time savings.
    pub one_time_by_month: BTreeMap<String, Cents>,
    pub by_publisher: BTreeMap<String, Amounts>,
    /// Keyed `publisher / product`.
    pub by_product: BTreeMap<String, Amounts>,
    pub by_justification: BTreeMap<String, Amounts>,
}

impl Savings {
    /// Adds one candidate; call for every candidate in scope.
    pub fn add(&mut self, c: &Candidate) {
        let saving = c.saving();
        let (basis, amount) = (saving.basis, saving.cents);
        let kind = match c.state {
            State::ClosedComplete => match &c.verification {
                Some(v) if v.reappeared_at.is_some() => Kind::Reappeared,
                Some(v) if v.status == VerificationStatus::Verified => Kind::Verified,
                _ => Kind::Unverified,
            },
            s if s.is_closed() => return,
            _ => Kind::Potential,
        };
        self.total.add(kind, basis, amount);
        self.by_publisher
            .entry(c.software.publisher.clone())
            .or_default()
            .add(kind, basis, amount);
        self.by_product
            .entry(format!("{} / {}", c.software.publisher, c.software.product))
            .or_default()
            .add(kind, basis, amount);
        self.by_justification
            .entry(c.justification.as_str().to_string())
            .or_default()
            .add(kind, basis, amount);
        let month = |t: Option<crate::Timestamp>| {
            t.map(|t| t.format("%Y-%m").to_string()).unwrap_or_default()
        };
        let by_month = match basis {
            PricePeriod::OneTime => &mut self.one_time_by_month,
            PricePeriod::Monthly | PricePeriod::Yearly => &mut self.actual_by_month,
        };
        match kind {
            Kind::Potential => {}
            Kind::Verified | Kind::Unverified => {
                *by_month.entry(month(c.closed_at)).or_default() += amount;
            }
            Kind::Reappeared => {
                // Saved from closing until it came back: the chart keeps both months.
                *by_month.entry(month(c.closed_at)).or_default() += amount;
                *by_month.entry(month(c.reappeared_at())).or_default() -= amount;
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

    /// Yearly savings (the totals people compare year on year).
    pub fn yearly(&self) -> &Totals {
        &self.total.yearly
    }

    /// One-time savings (perpetual licences).
    pub fn one_time(&self) -> &Totals {
        &self.total.one_time
    }

    /// Actual savings by month on one basis.
    pub fn by_month(&self, basis: PricePeriod) -> &BTreeMap<String, Cents> {
        match basis {
            PricePeriod::OneTime => &self.one_time_by_month,
            PricePeriod::Monthly | PricePeriod::Yearly => &self.actual_by_month,
        }
    }

    /// The CSV export, amounts in major units, each line on the basis its `basis` column names
    /// ([`PricePeriod::words`]: `per year` or `one-time`): the totals on both bases, one line
    /// per slice and basis the slice has candidates on, and one per month and basis
    /// (`month,YYYY-MM,per year,,actual,,,,`).
    pub fn to_csv(&self) -> String {
        use crate::intake::format_money;
        let mut out = String::from(
            "dimension,key,basis,potential,actual,verified,unverified,reappeared,candidates\n",
        );
        let field = crate::text::csv_cell;
        let line = |out: &mut String, dim: &str, key: &str, basis: PricePeriod, t: &Totals| {
            out.push_str(&format!(
                "{dim},{},{},{},{},{},{},{},{}\n",
                field(key),
                basis.words(),
                format_money(t.potential_cents),
                format_money(t.actual_cents),
                format_money(t.verified_cents),
                format_money(t.unverified_cents),
                format_money(t.reappeared_cents),
                t.candidates
            ));
        };
        for basis in BASES {
            line(&mut out, "total", "all", basis, self.total.on(basis));
        }
        for (dim, map) in [
            ("publisher", &self.by_publisher),
            ("product", &self.by_product),
            ("justification", &self.by_justification),
        ] {
            for (k, a) in map {
                for basis in BASES {
                    let t = a.on(basis);
                    if t.candidates > 0 {
                        line(&mut out, dim, k, basis, t);
                    }
                }
            }
        }
        for basis in BASES {
            for (month, cents) in self.by_month(basis) {
                out.push_str(&format!(
                    "month,{},{},,{},,,,\n",
                    field(month),
                    basis.words(),
                    format_money(*cents)
                ));
            }
        }
        out
    }
}
