//! Workspace sessions, sign-ins in progress and API token digests. Expired rows are dropped
//! when new ones are written, and never returned in between.

use super::codec::{from_json, millis, sql_error, to_json};
use super::{SqliteStore, WriteOutcome};
use async_trait::async_trait;
use reclaim_workflow::ports::{PendingSignIn, SessionRecord, SessionStore, StoreError, TokenStore};
use reclaim_workflow::Timestamp;
use rusqlite::{params, OptionalExtension};

#[async_trait]
impl SessionStore for SqliteStore {
    async fn put_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        let body = to_json(session)?;
        let (id, user, expires, now) = (
            session.id.clone(),
            session.user_id.clone(),
            millis(session.expires_at),
            millis(session.last_seen_at),
        );
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM sessions WHERE expires_at <= ?1")
                .and_then(|mut st| st.execute([now]))
                .map_err(sql_error)?;
            conn.prepare_cached(
                "INSERT INTO sessions (id, user_id, expires_at, body) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, \
                 expires_at = excluded.expires_at, body = excluded.body",
            )
            .and_then(|mut st| st.execute(params![id, user, expires, body]))
            .map_err(sql_error)?;
            Ok(WriteOutcome::new(()))
        })
        .await
    }

    async fn session(&self, id: &str, now: Timestamp) -> Result<Option<SessionRecord>, StoreError> {
        let id = id.to_string();
        let found: Option<SessionRecord> = self
            .read(move |conn| {
                let body: Option<String> = conn
                    .prepare_cached("SELECT body FROM sessions WHERE id = ?1")
                    .and_then(|mut st| st.query_row([id], |r| r.get(0)).optional())
                    .map_err(sql_error)?;
                body.map(|b| from_json("session", &b)).transpose()
            })
            .await?;
        Ok(found.filter(|s| now < s.expires_at))
    }

    async fn touch_session(&self, session: &SessionRecord) -> Result<bool, StoreError> {
        let body = to_json(session)?;
        let (id, expires) = (session.id.clone(), millis(session.expires_at));
        self.write(move |conn| {
            let n = conn
                .prepare_cached("UPDATE sessions SET expires_at = ?2, body = ?3 WHERE id = ?1")
                .and_then(|mut st| st.execute(params![id, expires, body]))
                .map_err(sql_error)?;
            Ok(WriteOutcome::new(n == 1))
        })
        .await
    }

    async fn end_session(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write(move |conn| {
            let n = conn
                .prepare_cached("DELETE FROM sessions WHERE id = ?1")
                .and_then(|mut st| st.execute([&id]))
                .map_err(sql_error)?;
            Ok(WriteOutcome::new(n == 1))
        })
        .await
    }

    async fn end_all_sessions(&self) -> Result<u64, StoreError> {
        self.write(move |conn| {
            let n = conn
                .prepare_cached("DELETE FROM sessions")
                .and_then(|mut st| st.execute([]))
                .map_err(sql_error)?;
            Ok(WriteOutcome::new(n as u64))
        })
        .await
    }

    async fn put_sign_in(&self, pending: &PendingSignIn) -> Result<(), StoreError> {
        let body = to_json(pending)?;
        let (id, expires) = (pending.id.clone(), millis(pending.expires_at));
        // Sign-ins live minutes: one that ended a day before this one ends is long dead (the
        // store keeps no clock of its own).
        let stale = expires - 24 * 3600 * 1000;
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM sign_ins WHERE expires_at <= ?1")
                .and_then(|mut st| st.execute([stale]))
                .map_err(sql_error)?;
            conn.prepare_cached(
                "INSERT INTO sign_ins (id, expires_at, body) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at, \
                 body = excluded.body",
            )
            .and_then(|mut st| st.execute(params![id, expires, body]))
            .map_err(sql_error)?;
            Ok(WriteOutcome::new(()))
        })
        .await
    }

    async fn take_sign_in(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<PendingSignIn>, StoreError> {
        let id = id.to_string();
        let taken: Option<PendingSignIn> = self
            .write(move |conn| {
                let body: Option<String> = conn
                    .prepare_cached("DELETE FROM sign_ins WHERE id = ?1 RETURNING body")
                    .and_then(|mut st| st.query_row([&id], |r| r.get(0)).optional())
                    .map_err(sql_error)?;
                Ok(WriteOutcome::new(body))
            })
            .await?
            .map(|b| from_json("sign-in", &b))
            .transpose()?;
        Ok(taken.filter(|p| now < p.expires_at))
    }
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn put_token(&self, digest: &str, user_id: &str) -> Result<(), StoreError> {
        let (digest, user) = (digest.to_string(), user_id.to_string());
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO api_tokens (digest, user_id) VALUES (?1, ?2) \
                 ON CONFLICT (digest) DO UPDATE SET user_id = excluded.user_id",
            )
            .and_then(|mut st| st.execute(params![digest, user]))
            .map_err(sql_error)?;
            Ok(WriteOutcome::new(()))
        })
        .await
    }

    async fn token_user(&self, digest: &str) -> Result<Option<String>, StoreError> {
        let digest = digest.to_string();
        self.read(move |conn| {
            conn.prepare_cached("SELECT user_id FROM api_tokens WHERE digest = ?1")
                .and_then(|mut st| st.query_row([digest], |r| r.get(0)).optional())
                .map_err(sql_error)
        })
        .await
    }
}
