//! Users, assignment groups and rules: small documents keyed by id, replaced whole on put.

use super::codec::{from_json, sql_error, to_json};
use super::{SqliteStore, WriteOutcome};
use async_trait::async_trait;
use reclaim_workflow::ports::{Directory, RuleStore, StoreError};
use reclaim_workflow::{Group, Rule, User};
use rusqlite::{params, OptionalExtension};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The tables that hold one JSON document per id. A closed set, so table names in SQL text
/// never come from input.
#[derive(Clone, Copy, Debug)]
enum Table {
    Users,
    Groups,
    Rules,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Users => "users",
            Table::Groups => "assignment_groups",
            Table::Rules => "rules",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Table::Users => "user",
            Table::Groups => "group",
            Table::Rules => "rule",
        }
    }
}

impl SqliteStore {
    async fn doc<T: DeserializeOwned + Send + 'static>(
        &self,
        table: Table,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| {
            let sql = format!("SELECT body FROM {} WHERE id = ?1", table.name());
            let body: Option<String> = conn
                .prepare_cached(&sql)
                .and_then(|mut st| st.query_row([id], |row| row.get(0)).optional())
                .map_err(sql_error)?;
            body.map(|b| from_json(table.what(), &b)).transpose()
        })
        .await
    }

    async fn docs<T: DeserializeOwned + Send + 'static>(
        &self,
        table: Table,
    ) -> Result<Vec<T>, StoreError> {
        self.read(move |conn| {
            let sql = format!("SELECT body FROM {} ORDER BY id", table.name());
            let mut stmt = conn.prepare_cached(&sql).map_err(sql_error)?;
            let rows = stmt
                .query_map([], |row| row.get::<_, String>(0))
                .map_err(sql_error)?;
            rows.map(|r| {
                r.map_err(sql_error)
                    .and_then(|b| from_json(table.what(), &b))
            })
            .collect()
        })
        .await
    }

    async fn put_doc<T: Serialize>(
        &self,
        table: Table,
        id: &str,
        doc: &T,
    ) -> Result<(), StoreError> {
        let (id, body) = (id.to_string(), to_json(doc)?);
        self.write(move |conn| {
            let sql = format!(
                "INSERT INTO {} (id, body) VALUES (?1, ?2) \
                 ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                table.name()
            );
            conn.prepare_cached(&sql)
                .and_then(|mut st| st.execute(params![id, body]))
                .map_err(sql_error)?;
            Ok(WriteOutcome::new(()))
        })
        .await
    }
}

#[async_trait]
impl Directory for SqliteStore {
    async fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.doc(Table::Users, id).await
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        self.docs(Table::Users).await
    }

    async fn put_user(&self, user: &User) -> Result<(), StoreError> {
        self.put_doc(Table::Users, &user.id, user).await
    }

    async fn group(&self, id: &str) -> Result<Option<Group>, StoreError> {
        self.doc(Table::Groups, id).await
    }

    async fn groups(&self) -> Result<Vec<Group>, StoreError> {
        self.docs(Table::Groups).await
    }

    async fn put_group(&self, group: &Group) -> Result<(), StoreError> {
        self.put_doc(Table::Groups, &group.id, group).await
    }
}

#[async_trait]
impl RuleStore for SqliteStore {
    async fn rule(&self, id: &str) -> Result<Option<Rule>, StoreError> {
        self.doc(Table::Rules, id).await
    }

    async fn rules(&self) -> Result<Vec<Rule>, StoreError> {
        self.docs(Table::Rules).await
    }

    async fn put_rule(&self, rule: &Rule) -> Result<(), StoreError> {
        self.put_doc(Table::Rules, &rule.id, rule).await
    }

    async fn delete_rule(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write(move |conn| {
            let gone = conn
                .prepare_cached("DELETE FROM rules WHERE id = ?1")
                .and_then(|mut st| st.execute([&id]))
                .map_err(sql_error)?;
            Ok(WriteOutcome::new(gone == 1))
        })
        .await
    }
}
