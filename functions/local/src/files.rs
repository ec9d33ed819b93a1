//! Reading candidate files (CSV or JSON) into rows, with the line of every row.

use reclaim_workflow::intake::{self, FieldError, Row};
use std::collections::BTreeMap;
use std::path::Path;

/// A file that cannot be read as rows at all, or rows with problems found while reading.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: String, message: String },
    #[error("{path}: {} bad row(s)", .rows.len())]
    Rows {
        path: String,
        rows: Vec<(usize, FieldError)>,
    },
}

/// Reads rows from a `.csv` or `.json` file (by extension; anything else is tried as CSV).
pub fn read_rows(path: &Path) -> Result<Vec<Row>, FileError> {
    read_rows_with_progress(path, |_, _| {})
}

/// As [`read_rows`], calling `progress(bytes_done, bytes_total)` as CSV rows are read (large
/// imports show a progress bar with it).
pub fn read_rows_with_progress(
    path: &Path,
    mut progress: impl FnMut(u64, u64),
) -> Result<Vec<Row>, FileError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| FileError::Io {
        path: name.clone(),
        source,
    })?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| FileError::Format {
                path: name.clone(),
                message: format!("not valid JSON: {e}"),
            })?;
        intake::rows_from_json(&v).map_err(|rows| FileError::Rows { path: name, rows })
    } else {
        let total = bytes.len() as u64;
        let rows = reclaim_api::rows::csv_rows_with_progress(&bytes, |done| progress(done, total))
            .map_err(|message| FileError::Format {
                path: name,
                message,
            })?;
        progress(total, total);
        Ok(rows)
    }
}

/// Calls `f(line, row)` for each row of a `.csv` or `.json` file without keeping the rows
/// (CSV is read one record at a time), for imports that parse each row as it comes; returns
/// the number of rows.
pub fn for_each_row(
    path: &Path,
    mut progress: impl FnMut(u64, u64),
    mut f: impl FnMut(usize, &BTreeMap<String, String>) + Send,
) -> Result<usize, FileError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| FileError::Io {
        path: name.clone(),
        source,
    })?;
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| FileError::Format {
                path: name.clone(),
                message: format!("not valid JSON: {e}"),
            })?;
        let rows =
            intake::rows_from_json(&v).map_err(|rows| FileError::Rows { path: name, rows })?;
        for (line, row) in &rows {
            f(*line, row);
        }
        return Ok(rows.len());
    }
    let total = bytes.len() as u64;
    let count = reclaim_api::rows::for_each_csv_row(&bytes, |done| progress(done, total), f)
        .map_err(|message| FileError::Format {
            path: name,
            message,
        })?;
    progress(total, total);
    Ok(count)
}

/// CSV with a header line; line numbers count the header as line 1.
pub fn csv_rows(bytes: &[u8]) -> Result<Vec<Row>, String> {
    reclaim_api::rows::csv_rows(bytes)
}
