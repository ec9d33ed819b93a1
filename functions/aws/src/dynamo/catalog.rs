//! The people and software catalogs: one small item per person and per software that
//! candidates were ever made for, so a search by text reads them (a partition each) and then
//! only the candidates of what matched, through GSI4 and GSI5, never every candidate.
//!
//! Written by an import before its candidates (an overwrite, so names stay current): if the
//! candidates then fail, an entry without candidates only costs a search one empty query.

use super::batch::put;
use super::keys::*;
use super::{reported, s, str_attr, DynamoStore, Item, ReadKind};
use crate::error::store_error;
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use reclaim_workflow::ports::{contains_text, software_haystack, user_matches, StoreError};
use reclaim_workflow::Candidate;
use std::collections::BTreeMap;

/// The catalog entries of these candidates, one per person and per software.
pub(super) fn items(candidates: &[Candidate]) -> Vec<Item> {
    let mut out: BTreeMap<(String, String), Item> = BTreeMap::new();
    for c in candidates {
        if let Some(u) = &c.user {
            let mut item = Item::new();
            item.insert(PK.into(), s(PEOPLE_PK));
            item.insert(SK.into(), s(person_sk(&u.id)));
            item.insert(TARGET.into(), s(&u.id));
            item.insert(NAME.into(), s(&u.display_name));
            if let Some(e) = &u.email {
                item.insert(EMAIL.into(), s(e));
            }
            out.insert((PEOPLE_PK.into(), person_sk(&u.id)), item);
        }
        let sk = catalog_software_sk(&c.software.publisher, &c.software.product);
        let mut item = Item::new();
        item.insert(PK.into(), s(SOFTWARE_PK));
        item.insert(SK.into(), s(&sk));
        item.insert(
            TEXT.into(),
            s(software_haystack(
                &c.software.publisher,
                &c.software.product,
            )),
        );
        out.insert((SOFTWARE_PK.into(), sk), item);
    }
    out.into_values().collect()
}

/// One software in the catalog: GSI5's partition and the product's range in it.
pub(super) struct SoftwareEntry {
    pub publisher_pk: String,
    pub product_prefix: String,
}

impl DynamoStore {
    pub(super) async fn write_catalog(&self, candidates: &[Candidate]) -> Result<(), StoreError> {
        let requests = items(candidates)
            .into_iter()
            .map(put)
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_write(requests).await.map_err(|f| f.error)
    }

    /// Reads one catalog partition from `from` (inclusive) on, handing each item to `keep`
    /// until it says stop. Returns whether the partition was read to its end.
    async fn read_catalog(
        &self,
        pk: &str,
        from: Option<&str>,
        mut keep: impl FnMut(&Item) -> bool,
    ) -> Result<bool, StoreError> {
        let mut start: Option<Item> = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(self.table())
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", s(pk))
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total);
            q = match from {
                Some(f) => q
                    .key_condition_expression("#pk = :pk AND #sk >= :from")
                    .expression_attribute_names("#sk", SK)
                    .expression_attribute_values(":from", s(f)),
                None => q.key_condition_expression("#pk = :pk"),
            };
            let mut r = q.send().await.map_err(|e| store_error("Query", &e))?;
            let items = r.items.take().unwrap_or_default();
            self.note_read(
                "Query",
                reported(r.consumed_capacity()),
                &items,
                ReadKind::Together { consistent: false },
            );
            for item in &items {
                if !keep(item) {
                    return Ok(false);
                }
            }
            match r.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(true),
            }
        }
    }

    /// The people whose id, name or email contains `text`, in id order from `from` on: at most
    /// `up_to` of them, and whether that was all.
    pub(super) async fn people_matching(
        &self,
        text: &str,
        from: Option<&str>,
        up_to: usize,
    ) -> Result<(Vec<String>, bool), StoreError> {
        let mut found = Vec::new();
        let all = self
            .read_catalog(PEOPLE_PK, from, |item| {
                let id = str_attr(item, TARGET).unwrap_or_default();
                let name = str_attr(item, NAME).unwrap_or_default();
                if user_matches(id, name, str_attr(item, EMAIL), text) {
                    if found.len() == up_to {
                        return false;
                    }
                    found.push(id.to_string());
                }
                true
            })
            .await?;
        Ok((found, all))
    }

    /// The software whose publisher and product pass the filter's software fields, in the
    /// catalog's order.
    pub(super) async fn software_matching(
        &self,
        publisher: Option<&str>,
        product: Option<&str>,
        text: Option<&str>,
    ) -> Result<Vec<SoftwareEntry>, StoreError> {
        let mut found = Vec::new();
        let mut corrupt = None;
        let from = publisher.map(|p| catalog_software_sk(p, ""));
        self.read_catalog(SOFTWARE_PK, from.as_deref(), |item| {
            let Some((pub_lower, prod_lower)) = str_attr(item, SK).and_then(|k| k.split_once(SEP))
            else {
                corrupt = Some(format!("software catalog item {item:?}"));
                return false;
            };
            if publisher.is_some_and(|p| !p.eq_ignore_ascii_case(pub_lower)) {
                // The catalog is in publisher order: past the one asked for, nothing follows.
                return false;
            }
            let text_ok =
                text.is_none_or(|t| str_attr(item, TEXT).is_some_and(|hay| contains_text(hay, t)));
            if text_ok && product.is_none_or(|p| p.eq_ignore_ascii_case(prod_lower)) {
                found.push(SoftwareEntry {
                    publisher_pk: publisher_pk(pub_lower),
                    product_prefix: product_prefix(prod_lower),
                });
            }
            true
        })
        .await?;
        match corrupt {
            Some(what) => Err(StoreError::Corrupt(what)),
            None => Ok(found),
        }
    }
}
