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
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Potential and actual savings of one slice on one basis.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amounts {
    /// Per year: monthly prices × 12, yearly prices as they are.
    #[serde(flatten)]
    pub yearly: Totals,
    /// Perpetual licences: saved once.
    pub one_time: Totals,
}

/// Where one candidate's amount belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Potential,
    Verified,
    Unverified,
    Reappeared,
}

impl Totals {
    fn merge(&mut self, o: &Totals) {
        self.potential_cents += o.potential_cents;
        self.actual_cents += o.actual_cents;
        self.verified_cents += o.verified_cents;
        self.unverified_cents += o.unverified_cents;
        self.reappeared_cents += o.reappeared_cents;
        self.candidates += o.candidates;
    }

    /// Adds (`sign` 1) or takes back (`sign` -1) one candidate's amount.
    fn add(&mut self, kind: Kind, amount: Cents, sign: i64) {
        self.candidates = self.candidates.saturating_add_signed(sign);
        let amount = amount.saturating_mul(sign);
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

    fn add(&mut self, kind: Kind, basis: PricePeriod, amount: Cents, sign: i64) {
        self.on_mut(basis).add(kind, amount, sign);
    }

    fn is_empty(&self) -> bool {
        *self == Amounts::default()
    }

    fn merge(&mut self, o: &Amounts) {
        self.yearly.merge(&o.yearly);
        self.one_time.merge(&o.one_time);
    }
}

/// What one candidate adds to the savings, with everything needed to add it or take it back
/// again without the candidate: stores keep it beside the candidate and keep running totals
/// (`Savings` per scope) by applying the difference when a transition changes it, so a report
/// never reads every candidate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contribution {
    pub kind: Kind,
    pub basis: PricePeriod,
    pub cents: Cents,
    pub publisher: String,
    pub product: String,
    pub justification: String,
    /// `YYYY-MM` of closing (actual savings), empty when unknown.
    #[serde(default)]
    pub closed: Option<String>,
    /// `YYYY-MM` a re-check found it back.
    #[serde(default)]
    pub reappeared: Option<String>,
}

impl Contribution {
    /// What this candidate adds; `None` for one that adds nothing (skipped or canceled).
    pub fn of(c: &Candidate) -> Option<Contribution> {
        let saving = c.saving();
        let kind = match c.state {
            State::ClosedComplete => match &c.verification {
                Some(v) if v.reappeared_at.is_some() => Kind::Reappeared,
                Some(v) if v.status == VerificationStatus::Verified => Kind::Verified,
                _ => Kind::Unverified,
            },
            s if s.is_closed() => return None,
            _ => Kind::Potential,
        };
        let month = |t: Option<crate::Timestamp>| t.map(|t| t.format("%Y-%m").to_string());
        let closed = matches!(kind, Kind::Verified | Kind::Unverified | Kind::Reappeared);
        Some(Contribution {
            kind,
            basis: saving.basis,
            cents: saving.cents,
            publisher: c.software.publisher.clone(),
            product: c.software.product.clone(),
            justification: c.justification.as_str().to_string(),
            closed: if closed {
                Some(month(c.closed_at).unwrap_or_default())
            } else {
                None
            },
            reappeared: if kind == Kind::Reappeared {
                Some(month(c.reappeared_at()).unwrap_or_default())
            } else {
                None
            },
        })
    }
}

/// The scope a candidate's savings are kept under besides the whole estate: its assignment
/// group (`g:` and the id; `g:` alone for none), so a group's people read their totals too.
pub fn group_scope(group: Option<&str>) -> String {
    format!("g:{}", group.unwrap_or_default())
}

/// The scope of every candidate.
pub const ALL_SCOPE: &str = "*";

/// The two bases a report states, in the order it states them.
pub const BASES: [PricePeriod; 2] = [PricePeriod::Yearly, PricePeriod::OneTime];

/// Totals people read on the dashboard, in the API and in the CSV export.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
        if let Some(x) = Contribution::of(c) {
            self.apply(&x, 1);
        }
    }

    /// Adds (`sign` 1) or takes back (`sign` -1) one candidate's contribution. Slices and
    /// months left at nothing are dropped, so running totals equal a fresh sum exactly.
    pub fn apply(&mut self, x: &Contribution, sign: i64) {
        let (kind, basis, amount) = (x.kind, x.basis, x.cents);
        self.total.add(kind, basis, amount, sign);
        let product = format!("{} / {}", x.publisher, x.product);
        for (map, key) in [
            (&mut self.by_publisher, x.publisher.as_str()),
            (&mut self.by_product, product.as_str()),
            (&mut self.by_justification, x.justification.as_str()),
        ] {
            let slot = map.entry(key.to_string()).or_default();
            slot.add(kind, basis, amount, sign);
            if slot.is_empty() {
                map.remove(key);
            }
        }
        let by_month = match basis {
            PricePeriod::OneTime => &mut self.one_time_by_month,
            PricePeriod::Monthly | PricePeriod::Yearly => &mut self.actual_by_month,
        };
        let mut month = |m: &Option<String>, cents: Cents| {
            if let Some(m) = m {
                let v = by_month.entry(m.clone()).or_default();
                *v += cents;
                if *v == 0 {
                    by_month.remove(m);
                }
            }
        };
        // Saved from closing until it came back: the chart keeps both months.
        month(&x.closed, amount.saturating_mul(sign));
        month(&x.reappeared, amount.saturating_mul(-sign));
    }

    /// Adds another scope's totals (a person's groups, one after another).
    pub fn merge(&mut self, o: &Savings) {
        self.total.merge(&o.total);
        for (mine, theirs) in [
            (&mut self.by_publisher, &o.by_publisher),
            (&mut self.by_product, &o.by_product),
            (&mut self.by_justification, &o.by_justification),
        ] {
            for (k, a) in theirs {
                mine.entry(k.clone()).or_default().merge(a);
            }
        }
        for (mine, theirs) in [
            (&mut self.actual_by_month, &o.actual_by_month),
            (&mut self.one_time_by_month, &o.one_time_by_month),
        ] {
            for (m, v) in theirs {
                let slot = mine.entry(m.clone()).or_default();
                *slot += v;
                if *slot == 0 {
                    mine.remove(m);
                }
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
