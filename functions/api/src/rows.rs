//! Rows from CSV text, shared by the CLI (files) and the Router (`text/csv` bodies), so a CSV
//! line means the same thing, and is numbered the same way, whichever way it arrives.

use reclaim_workflow::intake::Row;
use std::collections::BTreeMap;

/// CSV with a header line; line numbers count the header as line 1. A byte-order mark before
/// the first header is ignored (spreadsheets write one).
pub fn csv_rows(bytes: &[u8]) -> Result<Vec<Row>, String> {
    csv_rows_with_progress(bytes, |_| {})
}

/// As [`csv_rows`], calling `progress(bytes_read)` every few thousand rows, for a progress bar.
pub fn csv_rows_with_progress(bytes: &[u8], progress: impl FnMut(u64)) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for_each_csv_row(bytes, progress, |line, row| rows.push((line, row.clone())))?;
    Ok(rows)
}

/// Calls `f(line, row)` for each record without keeping the rows: one map is filled again for
/// every record, so reading a large export allocates nothing per row and holds one row at a
/// time (usage imports parse each row as it comes). Returns the number of records.
///
/// A column named twice keeps its last value, as a map of the whole row would.
pub fn for_each_csv_row(
    bytes: &[u8],
    mut progress: impl FnMut(u64),
    mut f: impl FnMut(usize, &BTreeMap<String, String>),
) -> Result<usize, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(bytes);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| format!("cannot read the header line: {e}"))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_string())
        .collect();
    let mut position: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, h) in headers.iter().enumerate() {
        position.insert(h, i);
    }
    // The row has the same (sorted) keys: its values line up with `columns`.
    let columns: Vec<usize> = position.values().copied().collect();
    let mut row: BTreeMap<String, String> = position
        .keys()
        .map(|k| (k.to_string(), String::new()))
        .collect();
    let mut record = csv::StringRecord::new();
    let mut count = 0;
    loop {
        let more = reader
            .read_record(&mut record)
            .map_err(|e| match e.position() {
                Some(p) => format!("line {}: {e}", p.line()),
                None => e.to_string(),
            })?;
        if !more {
            return Ok(count);
        }
        count += 1;
        let line = record.position().map_or(count + 1, |p| {
            usize::try_from(p.line()).unwrap_or(usize::MAX)
        });
        for (value, &col) in row.values_mut().zip(&columns) {
            value.clear();
            value.push_str(record.get(col).unwrap_or(""));
        }
        f(line, &row);
        if count % 4096 == 0 {
            progress(record.position().map_or(0, |p| p.byte()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_row_gets_its_own_values_and_its_line_even_though_the_map_is_reused() {
        let csv = "\u{feff}b,a,b\n1,2,3\n,,\n\"x\ny\",z,w\n";
        let rows = csv_rows(csv.as_bytes()).unwrap();
        let got: Vec<(usize, Vec<(&str, &str)>)> = rows
            .iter()
            .map(|(line, r)| {
                (
                    *line,
                    r.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (2, vec![("a", "2"), ("b", "3")]),
                (3, vec![("a", ""), ("b", "")]),
                (4, vec![("a", "z"), ("b", "w")]),
            ]
        );
    }

    #[test]
    fn a_record_with_the_wrong_number_of_fields_names_its_line() {
        let err = csv_rows(b"a,b\n1,2\n3\n").unwrap_err();
        assert!(err.starts_with("line 3:"), "{err}");
    }
}
