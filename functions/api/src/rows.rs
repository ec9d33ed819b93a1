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
pub fn csv_rows_with_progress(
    bytes: &[u8],
    mut progress: impl FnMut(u64),
) -> Result<Vec<Row>, String> {
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
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| match e.position() {
            Some(p) => format!("line {}: {e}", p.line()),
            None => e.to_string(),
        })?;
        let line = record
            .position()
            .map_or(rows.len() + 2, |p| p.line() as usize);
        let row: BTreeMap<String, String> = headers
            .iter()
            .cloned()
            .zip(record.iter().map(str::to_string))
            .collect();
        rows.push((line, row));
        if rows.len() % 4096 == 0 {
            progress(record.position().map_or(0, |p| p.byte()));
        }
    }
    Ok(rows)
}
