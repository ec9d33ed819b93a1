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

impl Contribution {
    /// The contribution as numbered cells (`t|y|p` for the yearly potential total,
    /// `P|Adobe|y|a` for Adobe's yearly actual, `M|y|2026-03` for a month), each `sign` times
    /// its amount: a store that can only add numbers to named fields (DynamoDB's `ADD`) keeps
    /// the totals as cells, and [`Savings::from_cells`] reads them back.
    pub fn cells(&self, sign: i64) -> Vec<(String, i64)> {
        let b = match self.basis {
            PricePeriod::OneTime => "o",
            PricePeriod::Monthly | PricePeriod::Yearly => "y",
        };
        let amount = self.cells_amount(sign);
        let mut out = Vec::new();
        let product = format!("{} / {}", self.publisher, self.product);
        for prefix in [
            "t".to_string(),
            format!("P|{}", self.publisher),
            format!("R|{product}"),
            format!("J|{}", self.justification),
        ] {
            out.push((format!("{prefix}|{b}|c"), sign));
            for (field, v) in &amount {
                out.push((format!("{prefix}|{b}|{field}"), *v));
            }
        }
        let cents = self.cents.saturating_mul(sign);
        if let Some(m) = &self.closed {
            out.push((format!("M|{b}|{m}"), cents));
        }
        if let Some(m) = &self.reappeared {
            out.push((format!("M|{b}|{m}"), -cents));
        }
        out
    }

    fn cells_amount(&self, sign: i64) -> Vec<(&'static str, i64)> {
        let a = self.cents.saturating_mul(sign);
        match self.kind {
            Kind::Potential => vec![("p", a)],
            Kind::Verified => vec![("v", a), ("a", a)],
            Kind::Unverified => vec![("u", a), ("a", a)],
            Kind::Reappeared => vec![("r", a)],
        }
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

    /// Totals read back from cells ([`Contribution::cells`]), summed over however many records
    /// hold them; cells at zero and names it does not know are left out.
    pub fn from_cells<'a>(cells: impl IntoIterator<Item = (&'a str, i64)>) -> Savings {
        let mut s = Savings::default();
        for (name, v) in cells {
            let parts: Vec<&str> = name.split('|').collect();
            let basis = |b: &str| match b {
                "o" => Some(PricePeriod::OneTime),
                "y" => Some(PricePeriod::Yearly),
                _ => None,
            };
            let add = |t: &mut Totals, field: &str| match field {
                "p" => t.potential_cents += v,
                "a" => t.actual_cents += v,
                "v" => t.verified_cents += v,
                "u" => t.unverified_cents += v,
                "r" => t.reappeared_cents += v,
                "c" => t.candidates = t.candidates.saturating_add_signed(v),
                _ => {}
            };
            match parts.as_slice() {
                ["t", b, f] => {
                    if let Some(b) = basis(b) {
                        add(s.total.on_mut(b), f);
                    }
                }
                [kind @ ("P" | "R" | "J"), key @ .., b, f] if !key.is_empty() => {
                    let map = match *kind {
                        "P" => &mut s.by_publisher,
                        "R" => &mut s.by_product,
                        _ => &mut s.by_justification,
                    };
                    if let Some(b) = basis(b) {
                        add(map.entry(key.join("|")).or_default().on_mut(b), f);
                    }
                }
                ["M", b, month] => {
                    let map = match basis(b) {
                        Some(PricePeriod::OneTime) => &mut s.one_time_by_month,
                        Some(_) => &mut s.actual_by_month,
                        None => continue,
                    };
                    *map.entry((*month).to_string()).or_default() += v;
                }
                _ => {}
            }
        }
        for map in [
            &mut s.by_publisher,
            &mut s.by_product,
            &mut s.by_justification,
        ] {
            map.retain(|_, a| !a.is_empty());
        }
        s.actual_by_month.retain(|_, v| *v != 0);
        s.one_time_by_month.retain(|_, v| *v != 0);
        s
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::contract::varied;

    #[test]
    fn cells_added_and_taken_back_read_as_the_same_totals_as_a_fresh_sum() {
        let all: Vec<Candidate> = (1..=40).map(varied).collect();
        let mut cells: BTreeMap<String, i64> = BTreeMap::new();
        let mut add = |c: &Candidate, sign: i64| {
            if let Some(x) = Contribution::of(c) {
                for (k, v) in x.cells(sign) {
                    *cells.entry(k).or_default() += v;
                }
            }
        };
        for c in &all {
            add(c, 1);
        }
        // A candidate taken back and added again changes nothing.
        add(&all[3], -1);
        add(&all[3], 1);
        let read = Savings::from_cells(cells.iter().map(|(k, v)| (k.as_str(), *v)));
        assert_eq!(read, Savings::of(&all));
    }
}
