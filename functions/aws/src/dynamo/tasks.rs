//! Tasks for people, kept in their candidate's partition and indexed by assignee (GSI1) and
//! by group (GSI2) while open.

use super::keys::*;
use super::{decode, encode, reported, s, DynamoStore, Item, ReadKind};
use crate::error::{store_error, ConditionFailed};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use reclaim_workflow::ports::{StoreError, TaskStore};
use reclaim_workflow::{Task, TaskKind, Timestamp};
use std::collections::BTreeMap;

fn task_item(t: &Task) -> Result<Item, StoreError> {
    let mut item = Item::new();
    item.insert(PK.into(), s(candidate_pk(&t.candidate_id)));
    item.insert(SK.into(), s(task_sk(&t.id)));
    item.insert(TYPE.into(), s("t"));
    item.insert(DOC.into(), s(encode("task", t)?));
    item.insert(OPEN.into(), AttributeValue::Bool(t.open));
    if t.open {
        if let Some(a) = &t.assignee {
            item.insert(G1PK.into(), s(assignee_pk(a)));
            item.insert(G1SK.into(), s(task_sk(&t.id)));
        }
        if let Some(g) = &t.group {
            item.insert(G2PK.into(), s(group_pk(g)));
            item.insert(G2SK.into(), s(task_sk(&t.id)));
        }
    }
    Ok(item)
}

impl DynamoStore {
    /// Every item of an index partition whose sort key starts with `prefix`.
    async fn query_index(
        &self,
        index: &str,
        names: (&str, &str),
        pk: &str,
        prefix: &str,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let mut r = self
                .client
                .query()
                .table_name(self.table())
                .index_name(index)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", names.0)
                .expression_attribute_names("#sk", names.1)
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":prefix", s(prefix))
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| store_error("Query", &e))?;
            let items = r.items.take().unwrap_or_default();
            self.note_read(
                "Query",
                reported(r.consumed_capacity()),
                &items,
                ReadKind::Together { consistent: false },
            );
            out.extend(items);
            match r.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }
}

#[async_trait]
impl TaskStore for DynamoStore {
    async fn create_task(&self, task: &Task) -> Result<(), StoreError> {
        let item = task_item(task)?;
        let out = self
            .client
            .put_item()
            .table_name(self.table())
            .set_item(Some(item.clone()))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match out {
            Ok(o) => {
                self.note_write(
                    "PutItem",
                    reported(o.consumed_capacity()),
                    &[&item],
                    false,
                    true,
                );
                Ok(())
            }
            // Created by an earlier run of the same effect: the first creation stands.
            Err(e) if e.is_condition_failed() => {
                self.note_write("PutItem", None, &[&item], false, false);
                Ok(())
            }
            Err(e) => Err(store_error("PutItem", &e)),
        }
    }

    async fn close_tasks(
        &self,
        candidate_id: &str,
        kinds: &[TaskKind],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        for task in self.tasks_for(candidate_id).await? {
            if !task.open || !kinds.contains(&task.kind) {
                continue;
            }
            let closed = Task {
                open: false,
                closed_at: Some(at),
                ..task
            };
            let item = task_item(&closed)?;
            let out = self
                .client
                .put_item()
                .table_name(self.table())
                .set_item(Some(item.clone()))
                .condition_expression("#open = :yes")
                .expression_attribute_names("#open", OPEN)
                .expression_attribute_values(":yes", AttributeValue::Bool(true))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            match out {
                Ok(o) => self.note_write(
                    "PutItem",
                    reported(o.consumed_capacity()),
                    &[&item],
                    false,
                    true,
                ),
                // Closed meanwhile by another run: its closing time stands.
                Err(e) if e.is_condition_failed() => {
                    self.note_write("PutItem", None, &[&item], false, false)
                }
                Err(e) => return Err(store_error("PutItem", &e)),
            }
        }
        Ok(())
    }

    async fn open_tasks(&self, user_id: &str, groups: &[String]) -> Result<Vec<Task>, StoreError> {
        let mut items = self
            .query_index(GSI1, (G1PK, G1SK), &assignee_pk(user_id), "T#")
            .await?;
        for g in groups {
            items.extend(
                self.query_index(GSI2, (G2PK, G2SK), &group_pk(g), "T#")
                    .await?,
            );
        }
        let mut by_id = BTreeMap::new();
        for item in &items {
            let t: Task = decode("task", item)?;
            // Indexes lag the table by a moment: a task closed just now may still be listed.
            if t.open {
                by_id.insert(t.id.clone(), t);
            }
        }
        let mut tasks: Vec<Task> = by_id.into_values().collect();
        tasks.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(tasks)
    }

    async fn tasks_for(&self, candidate_id: &str) -> Result<Vec<Task>, StoreError> {
        let items = self.query_prefix(&candidate_pk(candidate_id), "T#").await?;
        let mut tasks = items
            .iter()
            .map(|i| decode("task", i))
            .collect::<Result<Vec<Task>, _>>()?;
        tasks.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(tasks)
    }
}
