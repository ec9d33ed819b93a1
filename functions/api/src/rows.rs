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
/// every record, so reading a large export holds a few thousand rows at a time (usage imports
/// parse each row as it comes). Returns the number of records.
///
/// The records are read on this thread and `f` runs on another, a batch of rows behind: a
/// usage import spends twice as long checking rows as reading them, and the two overlap.
///
/// A column named twice keeps its last value, as a map of the whole row would.
pub fn for_each_csv_row(
    bytes: &[u8],
    mut progress: impl FnMut(u64),
    mut f: impl FnMut(usize, &BTreeMap<String, String>) + Send,
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
    std::thread::scope(|scope| {
        // Full batches go to the thread calling `f`; emptied ones come back to be filled again.
        let (full, batches) = std::sync::mpsc::sync_channel::<Batch>(BATCHES_IN_FLIGHT);
        let (empty, recycled) = std::sync::mpsc::channel::<Batch>();
        let calls = scope.spawn(move || {
            for mut batch in batches {
                for (line, record) in &batch.records[..batch.len] {
                    for (value, &col) in row.values_mut().zip(&columns) {
                        value.clear();
                        value.push_str(record.get(col).unwrap_or(""));
                    }
                    f(*line, &row);
                }
                batch.len = 0;
                // The reader may have finished and gone: then nobody needs it back.
                let _ = empty.send(batch);
            }
        });
        let mut count = 0;
        let mut batch = Batch::default();
        let read = loop {
            if batch.len == batch.records.len() {
                batch.records.push((0, csv::StringRecord::new()));
            }
            let (line, record) = &mut batch.records[batch.len];
            let more = match reader.read_record(record) {
                Ok(more) => more,
                Err(e) => {
                    break Err(match e.position() {
                        Some(p) => format!("line {}: {e}", p.line()),
                        None => e.to_string(),
                    })
                }
            };
            if !more {
                break Ok(count);
            }
            count += 1;
            *line = record.position().map_or(count + 1, |p| {
                usize::try_from(p.line()).unwrap_or(usize::MAX)
            });
            batch.len += 1;
            if count % 4096 == 0 {
                progress(record.position().map_or(0, |p| p.byte()));
            }
            if batch.len == ROWS_PER_BATCH {
                let next = recycled.try_recv().unwrap_or_default();
                if full.send(std::mem::replace(&mut batch, next)).is_err() {
                    // The other thread is gone: it panicked, and joining it says so below.
                    break Ok(count);
                }
            }
        };
        // The rows before a bad record still reach `f`, as they would one at a time.
        if batch.len > 0 {
            let _ = full.send(batch);
        }
        drop(full);
        if let Err(panic) = calls.join() {
            std::panic::resume_unwind(panic);
        }
        read
    })
}

/// Rows per hand-over between the reading thread and the one calling `f`.
const ROWS_PER_BATCH: usize = 1024;
/// Full batches waiting for the thread calling `f`: bounds what is held at once.
const BATCHES_IN_FLIGHT: usize = 4;

/// Records read and not yet handed to `f`: the first `len` of `records` (the rest are kept to
/// be read into again).
#[derive(Default)]
struct Batch {
    records: Vec<(usize, csv::StringRecord)>,
    len: usize,
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
    fn rows_over_many_batches_arrive_in_order_with_their_lines() {
        // Every third record spans two lines, so lines and records drift apart.
        let mut csv = String::from("n,text\n");
        for i in 0..(5 * ROWS_PER_BATCH + 7) {
            if i % 3 == 0 {
                csv.push_str(&format!("{i},\"two\nlines\"\n"));
            } else {
                csv.push_str(&format!("{i},one\n"));
            }
        }
        let mut seen = Vec::new();
        let mut reported = Vec::new();
        let count = for_each_csv_row(
            csv.as_bytes(),
            |at| reported.push(at),
            |line, row| seen.push((line, row["n"].clone())),
        )
        .unwrap();
        assert_eq!(count, 5 * ROWS_PER_BATCH + 7);
        let mut line = 2;
        for (i, (got_line, n)) in seen.iter().enumerate() {
            assert_eq!((*got_line, n.as_str()), (line, i.to_string().as_str()));
            line += if i % 3 == 0 { 2 } else { 1 };
        }
        assert_eq!(seen.len(), count);
        assert!(!reported.is_empty() && reported.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_bad_record_after_several_batches_names_its_line_after_the_rows_before_it() {
        let mut csv = String::from("a,b\n");
        for i in 0..(2 * ROWS_PER_BATCH + 10) {
            csv.push_str(&format!("{i},x\n"));
        }
        csv.push_str("lonely\n");
        let mut seen = 0;
        let err = for_each_csv_row(csv.as_bytes(), |_| {}, |_, _| seen += 1).unwrap_err();
        let bad_line = 2 * ROWS_PER_BATCH + 10 + 2;
        assert!(err.starts_with(&format!("line {bad_line}:")), "{err}");
        assert_eq!(seen, 2 * ROWS_PER_BATCH + 10);
    }

    #[test]
    fn a_record_with_the_wrong_number_of_fields_names_its_line() {
        let err = csv_rows(b"a,b\n1,2\n3\n").unwrap_err();
        assert!(err.starts_with("line 3:"), "{err}");
    }
}
