//! Usage connectors' runs: one row per run, its document and the version every save is
//! conditional on.

use super::codec::{from_json, sql_error, to_json};
use super::writer::WriteOutcome;
use super::SqliteStore;
use async_trait::async_trait;
use reclaim_workflow::ports::{ConnectorRun, RunStore, StoreError};
use rusqlite::{params, OptionalExtension};

fn seq_of(run: &ConnectorRun) -> Result<i64, StoreError> {
    i64::try_from(run.seq).map_err(|_| StoreError::Corrupt(format!("run number {}", run.seq)))
}

#[async_trait]
impl RunStore for SqliteStore {
    async fn put_run(&self, run: &ConnectorRun, expected: Option<u64>) -> Result<(), StoreError> {
        let (connector, seq, id) = (run.connector.clone(), seq_of(run)?, run.id());
        let version = i64::try_from(run.version)
            .map_err(|_| StoreError::Corrupt(format!("run version {}", run.version)))?;
        let expected = expected
            .map(|v| i64::try_from(v).map_err(|_| StoreError::Corrupt(format!("run version {v}"))))
            .transpose()?;
        let body = to_json(run)?;
        self.write(move |conn| {
            let stored: Option<i64> = conn
                .prepare_cached(
                    "SELECT version FROM connector_runs WHERE connector = ?1 AND seq = ?2",
                )
                .and_then(|mut st| {
                    st.query_row(params![connector, seq], |r| r.get(0))
                        .optional()
                })
                .map_err(sql_error)?;
            match (expected, stored) {
                (None, Some(_)) => {
                    return Err(StoreError::Duplicate {
                        kind: "connector run",
                        id: id.clone(),
                    })
                }
                (Some(v), Some(s)) if v != s => {
                    return Err(StoreError::Conflict {
                        id: id.clone(),
                        expected: u64::try_from(v).unwrap_or_default(),
                    })
                }
                (Some(_), None) => {
                    return Err(StoreError::NotFound {
                        kind: "connector run",
                        id: id.clone(),
                    })
                }
                _ => {}
            }
            conn.prepare_cached(
                "INSERT INTO connector_runs (connector, seq, version, body) \
                 VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (connector, seq) DO UPDATE \
                 SET version = excluded.version, body = excluded.body",
            )
            .and_then(|mut st| st.execute(params![connector, seq, version, body]))
            .map_err(sql_error)?;
            Ok(WriteOutcome::new(()))
        })
        .await
    }

    async fn runs(&self, connector: &str, limit: u32) -> Result<Vec<ConnectorRun>, StoreError> {
        let connector = connector.to_string();
        self.read(move |conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT body FROM connector_runs WHERE connector = ?1 \
                     ORDER BY seq DESC LIMIT ?2",
                )
                .map_err(sql_error)?;
            let rows = st
                .query_map(params![connector, limit], |r| r.get::<_, String>(0))
                .map_err(sql_error)?;
            rows.map(|r| {
                r.map_err(sql_error)
                    .and_then(|b| from_json("connector run", &b))
            })
            .collect()
        })
        .await
    }
}
