//! Tasks for people. The id comes from the effect that created the task, so running that effect
//! again finds the task already there.

use super::codec::{from_json, nanos, sql_error, to_json};
use super::{SqliteStore, WriteOutcome};
use async_trait::async_trait;
use reclaim_workflow::ports::{StoreError, TaskStore};
use reclaim_workflow::{Task, TaskKind, Timestamp};
use rusqlite::types::Value;
use rusqlite::{params, Connection};

fn decode_rows(conn: &Connection, sql: &str, args: Vec<Value>) -> Result<Vec<Task>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(sql_error)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), |row| {
            row.get::<_, String>(0)
        })
        .map_err(sql_error)?;
    rows.map(|r| r.map_err(sql_error).and_then(|t| from_json("task", &t)))
        .collect()
}

fn create_sync(conn: &Connection, task: &Task) -> Result<(), StoreError> {
    let body = to_json(task)?;
    conn.prepare_cached(
        "INSERT INTO tasks (id, candidate_id, kind, assignee, group_id, open, created_at, body) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (id) DO NOTHING",
    )
    .and_then(|mut st| {
        st.execute(params![
            task.id,
            task.candidate_id,
            task.kind.as_str(),
            task.assignee,
            task.group,
            task.open,
            nanos(task.created_at),
            body
        ])
    })
    .map_err(sql_error)?;
    Ok(())
}

fn close_sync(
    conn: &Connection,
    candidate_id: &str,
    kinds: &[TaskKind],
    at: Timestamp,
) -> Result<(), StoreError> {
    let open = decode_rows(
        conn,
        "SELECT body FROM tasks WHERE candidate_id = ?1 AND open = 1",
        vec![Value::Text(candidate_id.to_string())],
    )?;
    let mut update = conn
        .prepare_cached("UPDATE tasks SET open = 0, body = ?2 WHERE id = ?1")
        .map_err(sql_error)?;
    for mut task in open.into_iter().filter(|t| kinds.contains(&t.kind)) {
        task.open = false;
        task.closed_at = Some(at);
        let body = to_json(&task)?;
        update.execute(params![task.id, body]).map_err(sql_error)?;
    }
    Ok(())
}

#[async_trait]
impl TaskStore for SqliteStore {
    async fn create_task(&self, task: &Task) -> Result<(), StoreError> {
        let task = task.clone();
        self.write(move |conn| create_sync(conn, &task).map(WriteOutcome::new))
            .await
    }

    async fn close_tasks(
        &self,
        candidate_id: &str,
        kinds: &[TaskKind],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let (candidate_id, kinds) = (candidate_id.to_string(), kinds.to_vec());
        self.write(move |conn| close_sync(conn, &candidate_id, &kinds, at).map(WriteOutcome::new))
            .await
    }

    async fn open_tasks(&self, user_id: &str, groups: &[String]) -> Result<Vec<Task>, StoreError> {
        let mut args = vec![Value::Text(user_id.to_string())];
        let mut placeholders = Vec::new();
        for g in groups {
            args.push(Value::Text(g.clone()));
            placeholders.push(format!("?{}", args.len()));
        }
        let group_clause = if placeholders.is_empty() {
            String::new()
        } else {
            format!(" OR group_id IN ({})", placeholders.join(", "))
        };
        let sql = format!(
            "SELECT body FROM tasks WHERE open = 1 AND (assignee = ?1{group_clause}) \
             ORDER BY created_at, id"
        );
        self.read(move |conn| decode_rows(conn, &sql, args)).await
    }

    async fn tasks_for(&self, candidate_id: &str) -> Result<Vec<Task>, StoreError> {
        let args = vec![Value::Text(candidate_id.to_string())];
        self.read(move |conn| {
            decode_rows(
                conn,
                "SELECT body FROM tasks WHERE candidate_id = ?1 ORDER BY created_at, id",
                args,
            )
        })
        .await
    }
}
