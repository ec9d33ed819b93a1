//! A connector's price list (config key `prices`).
//!
//! Vendors' usage APIs say who holds what, not what it costs: Graph lists SKUs without prices,
//! an inventory lists installs. Without a price a candidate counts nothing in the savings, so
//! the operator gives the contract prices once, in the connector's manifest, and every row the
//! connector reports carries the price of its product.
//!
//! The value is one entry a line (or entries separated by `;`): `KEY = AMOUNT [PERIOD]`.
//! `KEY` names the product as the connector knows it (each connector says which names it
//! tries: a SKU part number, a SKU id, a product name), compared without regard to case.
//! `AMOUNT` is the price of one right as the usage import reads it (`239.88`: digits, at most
//! two decimals); `PERIOD` is `monthly`, `yearly` or `one-time`, and without it the rule's
//! period, then the deployment's, applies. Blank entries and lines starting with `#` are
//! skipped.
//!
//! ```toml
//! [config]
//! prices = """
//! SPE_E5 = 684.00 yearly
//! POWER_BI_PRO = 14.00 monthly
//! Microsoft Visio Professional = 579.99 one-time
//! """
//! ```

use crate::error::misconfigured;
use crate::{PluginError, PricePeriod, UsageRow};

/// The config key the price list is read from.
pub const CONFIG_KEY: &str = "prices";

/// One product's price: the amount as the usage import reads it, and how often it is paid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Price {
    pub amount: String,
    pub period: Option<PricePeriod>,
}

/// The parsed price list, looked up by product key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prices {
    /// (lower-cased key, price), in the order given.
    entries: Vec<(String, Price)>,
}

impl Prices {
    /// The price list of the manifest's `prices` key; empty when there is none. A wrong entry
    /// is `misconfigured`, naming it, so the operator sees it on the first run instead of
    /// candidates without savings.
    pub fn from_config() -> Result<Prices, PluginError> {
        match crate::config::get(CONFIG_KEY) {
            None => Ok(Prices::default()),
            Some(text) => Prices::parse(&text)
                .map_err(|why| misconfigured(format!("config key `{CONFIG_KEY}`: {why}"))),
        }
    }

    /// Reads a price list (see the module's docs); the error names the entry that is wrong.
    pub fn parse(text: &str) -> Result<Prices, String> {
        let mut entries: Vec<(String, Price)> = Vec::new();
        for entry in text.split(['\n', ';']).map(str::trim) {
            if entry.is_empty() || entry.starts_with('#') {
                continue;
            }
            // The key may hold spaces (product names); the amount and period never hold `=`.
            let Some((key, price)) = entry.rsplit_once('=') else {
                return Err(format!("`{entry}`: expected `KEY = AMOUNT [PERIOD]`"));
            };
            let key = key.trim();
            if key.is_empty() {
                return Err(format!("`{entry}`: the product key is empty"));
            }
            let mut words = price.split_whitespace();
            let amount = words.next().unwrap_or_default();
            if !is_amount(amount) {
                return Err(format!(
                    "`{entry}`: the amount must be a number with at most two decimals, like 239.88"
                ));
            }
            let period = match words.next() {
                None => None,
                Some(word) => Some(period(word).ok_or_else(|| {
                    format!("`{entry}`: the period must be monthly, yearly or one-time")
                })?),
            };
            if let Some(extra) = words.next() {
                return Err(format!("`{entry}`: unexpected `{extra}` after the period"));
            }
            let key = key.to_lowercase();
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(format!("`{entry}`: the product is priced twice"));
            }
            entries.push((
                key,
                Price {
                    amount: amount.to_owned(),
                    period,
                },
            ));
        }
        Ok(Prices { entries })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The price of the first of `keys` the list names (a connector passes its most specific
    /// name first).
    pub fn find(&self, keys: &[&str]) -> Option<&Price> {
        keys.iter().find_map(|key| {
            let key = key.trim().to_lowercase();
            self.entries
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, price)| price)
        })
    }

    /// Sets the row's price from the list, when the row has none (a vendor's own price
    /// stands) and one of `keys` is priced.
    pub fn fill(&self, row: &mut UsageRow, keys: &[&str]) {
        if row.price_per_right.is_some() {
            return;
        }
        if let Some(price) = self.find(keys) {
            row.price_per_right = Some(price.amount.clone());
            row.price_period = price.period;
        }
    }
}

/// `12`, `12.5`, `12.50`: what the usage import accepts as a price.
fn is_amount(s: &str) -> bool {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.len() <= 2
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !(s.contains('.') && frac.is_empty())
}

fn period(word: &str) -> Option<PricePeriod> {
    match word.to_ascii_lowercase().as_str() {
        "monthly" => Some(PricePeriod::Monthly),
        "yearly" => Some(PricePeriod::Yearly),
        "one-time" => Some(PricePeriod::OneTime),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AppliesTo;

    fn row(product: &str) -> UsageRow {
        UsageRow {
            user_id: "dana".into(),
            user_name: None,
            user_email: None,
            user_upn: None,
            user_groups: Vec::new(),
            user_vip: None,
            provisioned_at: None,
            applies_to: AppliesTo::Subscription,
            publisher: "Microsoft".into(),
            product: product.into(),
            version: None,
            sku: None,
            subscription_id: None,
            device: None,
            last_used_at: None,
            hours_used: None,
            assigned_at: None,
            price_per_right: None,
            price_period: None,
        }
    }

    #[test]
    fn reads_entries_by_line_or_semicolon_with_or_without_a_period() {
        let prices = Prices::parse(
            "# Microsoft 365\nSPE_E5 = 684.00 yearly\n\n  POWER_BI_PRO=14 Monthly ; \
             Microsoft Visio Professional = 579.99 one-time\nSnagit = 62.9",
        )
        .unwrap_or_default();
        assert_eq!(
            prices.find(&["spe_e5"]),
            Some(&Price {
                amount: "684.00".into(),
                period: Some(PricePeriod::Yearly)
            })
        );
        assert_eq!(
            prices.find(&["POWER_BI_PRO"]).map(|p| p.period),
            Some(Some(PricePeriod::Monthly))
        );
        assert_eq!(
            prices
                .find(&["Microsoft Visio Professional"])
                .map(|p| p.period),
            Some(Some(PricePeriod::OneTime))
        );
        assert_eq!(
            prices.find(&["SNAGIT"]),
            Some(&Price {
                amount: "62.9".into(),
                period: None
            })
        );
        assert_eq!(prices.find(&["Tableau Desktop"]), None);
        assert!(Prices::parse("").is_ok_and(|p| p.is_empty()));
    }

    #[test]
    fn a_wrong_entry_is_refused_naming_it() {
        for (text, says) in [
            ("SPE_E5 684.00", "expected `KEY = AMOUNT [PERIOD]`"),
            (" = 1.00", "the product key is empty"),
            ("SPE_E5 = 6,84", "at most two decimals"),
            ("SPE_E5 = 6.845", "at most two decimals"),
            ("SPE_E5 = -1", "at most two decimals"),
            ("SPE_E5 = 1.", "at most two decimals"),
            ("SPE_E5 =", "at most two decimals"),
            ("SPE_E5 = 1 weekly", "monthly, yearly or one-time"),
            ("SPE_E5 = 1 yearly please", "unexpected `please`"),
            ("SPE_E5 = 1\nspe_e5 = 2", "priced twice"),
        ] {
            match Prices::parse(text) {
                Err(why) => assert!(why.contains(says), "{text:?}: {why}"),
                Ok(p) => panic!("{text:?} was read as {p:?}"),
            }
        }
    }

    #[test]
    fn a_row_carries_the_price_of_the_first_key_priced() {
        let prices = Prices::parse("SPE_E3 = 432.00 yearly\nMicrosoft 365 E3 = 1.00 monthly")
            .unwrap_or_default();
        let mut r = row("Microsoft 365 E3");
        prices.fill(&mut r, &["SPE_E3", "05e9a617", "Microsoft 365 E3"]);
        assert_eq!(r.price_per_right.as_deref(), Some("432.00"));
        assert_eq!(r.price_period, Some(PricePeriod::Yearly));

        // A product the list does not name stays without a price.
        let mut r = row("Microsoft 365 E5");
        prices.fill(&mut r, &["SPE_E5", "Microsoft 365 E5"]);
        assert_eq!((r.price_per_right, r.price_period), (None, None));

        // A price the vendor reported stands.
        let mut r = row("Microsoft 365 E3");
        r.price_per_right = Some("400.00".into());
        prices.fill(&mut r, &["SPE_E3"]);
        assert_eq!(r.price_per_right.as_deref(), Some("400.00"));
        assert_eq!(r.price_period, None);
    }
}
