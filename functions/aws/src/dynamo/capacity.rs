//! Capacity units by DynamoDB's documented rules, computed from the items a call wrote or
//! read. The service reports what it charged (`ReturnConsumedCapacity`); these numbers are the
//! check on that, and the only numbers where the service (or an emulator) reports none.
//!
//! - Item size: the UTF-8 length of every attribute name plus its value (strings by UTF-8
//!   length, numbers about one byte per two significant digits plus one, booleans and nulls one
//!   byte, lists and maps three bytes plus one per element plus the elements).
//! - Writes: one unit per started KiB of each item, at least one; transactional writes two.
//! - Reads: one unit per started 4 KiB, half that when eventually consistent, at least one
//!   (half) even when nothing was found; a query rounds the sum of the items it read, a get or
//!   a batch get rounds each item.
//!
//! Not counted here: writes that replace a larger item (charged for the larger one) and the
//! writes a table write makes into its global secondary indexes.

use super::Item;
use aws_sdk_dynamodb::types::AttributeValue;

fn value_bytes(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => {
            let digits = n.trim_start_matches(['-', '+']).replace('.', "");
            let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
            significant.div_ceil(2) + 1
        }
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v
            .iter()
            .map(|n| value_bytes(&AttributeValue::N(n.clone())))
            .sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(v) => 3 + v.iter().map(|e| 1 + value_bytes(e)).sum::<usize>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, e)| 1 + k.len() + value_bytes(e))
                .sum::<usize>()
        }
        _ => 0,
    }
}

/// The item's size as DynamoDB counts it.
pub fn item_bytes(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_bytes(v)).sum()
}

/// Write units for one item of `bytes`.
pub fn write_units(bytes: usize, transactional: bool) -> f64 {
    let units = bytes.div_ceil(1024).max(1) as f64;
    if transactional {
        units * 2.0
    } else {
        units
    }
}

/// Read units for `bytes` read at once.
pub fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.div_ceil(4096).max(1) as f64;
    if consistent {
        units
    } else {
        units / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_count_names_and_values() {
        let item = Item::from([
            ("pk".to_string(), AttributeValue::S("C#c-1".into())),
            ("ver".to_string(), AttributeValue::N("12".into())),
            ("open".to_string(), AttributeValue::Bool(true)),
        ]);
        assert_eq!(item_bytes(&item), 2 + 5 + 3 + 2 + 4 + 1);
        assert_eq!(value_bytes(&AttributeValue::N("1000".into())), 2);
        assert_eq!(value_bytes(&AttributeValue::N("123.45".into())), 4);
    }

    #[test]
    fn units_round_up_per_kib_and_per_4_kib() {
        assert_eq!(write_units(0, false), 1.0);
        assert_eq!(write_units(1024, false), 1.0);
        assert_eq!(write_units(1025, false), 2.0);
        assert_eq!(write_units(1025, true), 4.0);
        assert_eq!(read_units(0, true), 1.0);
        assert_eq!(read_units(4097, true), 2.0);
        assert_eq!(read_units(4097, false), 1.0);
        assert_eq!(read_units(100, false), 0.5);
    }
}
