//! The [`AssistantStore`] of [`SqlStore`]: providers, threads, messages and proposals.

use super::rows::to_json;
use super::{SqlStore, fk_or, found, query, read_all, select, text};
use crate::model::*;
use crate::store::AssistantStore;
use crate::{Error, Result};
use async_trait::async_trait;

/// Threads with their user's and cluster's names.
const THREADS: &str = "FROM assistant_threads t JOIN users us ON us.id = t.\"user\" \
                       JOIN clusters c ON c.id = t.cluster";

#[async_trait]
impl AssistantStore for SqlStore {
    async fn set_provider(&self, p: &ProviderSettings, at: i64) -> Result<Provider> {
        let mut tx = self.begin_write().await?;
        if p.default {
            query(
                "UPDATE assistant_providers SET is_default = 0 WHERE name <> ?",
                (&p.name,),
            )
            .execute(&mut *tx)
            .await?;
        }
        let timeout = i64::try_from(p.timeout_ms).unwrap_or(i64::MAX);
        let key = p.api_key.as_deref().map(text).map(|k| k.into_owned());
        query(
            "INSERT INTO assistant_providers (name, base_url, model, api_key, is_default, \
             timeout_ms, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (name) DO UPDATE SET base_url = ?2, model = ?3, \
             api_key = COALESCE(?4, assistant_providers.api_key), is_default = ?5, \
             timeout_ms = ?6, updated_at = ?7",
            (
                &p.name,
                &p.base_url,
                &p.model,
                key,
                i64::from(p.default),
                timeout,
                at,
            ),
        )
        .execute(&mut *tx)
        .await?;
        let mut qb = select::<Provider>("FROM assistant_providers WHERE name = ");
        qb.push_bind(p.name.clone());
        let set = read_all(&mut *tx, &mut qb)
            .await?
            .pop()
            .ok_or_else(|| Error::not_found("provider", &p.name))?;
        tx.commit().await?;
        Ok(set)
    }

    async fn providers(&self) -> Result<Vec<Provider>> {
        let mut qb = select::<Provider>("FROM assistant_providers ORDER BY name");
        read_all(&self.pool, &mut qb).await
    }

    async fn provider_key(&self, name: &str) -> Result<Option<String>> {
        let row: Option<(Option<String>,)> = query(
            "SELECT api_key FROM assistant_providers WHERE name = ?",
            (name,),
        )
        .row(&self.pool)
        .await?;
        row.map(|(k,)| k)
            .ok_or_else(|| Error::not_found("provider", name))
    }

    async fn remove_provider(&self, name: &str) -> Result<()> {
        let res = self
            .write("DELETE FROM assistant_providers WHERE name = ?", (name,))
            .await?;
        found(&res, "provider", name)
    }

    async fn create_thread(&self, t: &NewThread) -> Result<Thread> {
        let mut tx = self.begin_write().await?;
        let title = text(&t.title).into_owned();
        let id = query(
            "INSERT INTO assistant_threads (\"user\", cluster, title, created_at) \
             VALUES (?, ?, ?, ?) RETURNING id",
            (t.user.0, t.cluster.0, &title, now_ms()),
        )
        .inserted_id(&mut *tx)
        .await
        .map_err(|e| {
            fk_or(e, || {
                Error::not_found("user or cluster of a thread", t.user)
            })
        })?;
        let mut qb = select::<Thread>(THREADS);
        qb.push(" WHERE t.id = ").push_bind(id);
        let made = read_all(&mut *tx, &mut qb)
            .await?
            .pop()
            .ok_or_else(|| Error::not_found("thread", id))?;
        tx.commit().await?;
        Ok(made)
    }

    async fn threads(&self, user: UserId) -> Result<Vec<Thread>> {
        let mut qb = select::<Thread>(THREADS);
        qb.push(" WHERE t.\"user\" = ")
            .push_bind(user.0)
            .push(" ORDER BY t.id DESC");
        read_all(&self.pool, &mut qb).await
    }

    async fn thread(&self, id: ThreadId) -> Result<Option<Thread>> {
        let mut qb = select::<Thread>(THREADS);
        qb.push(" WHERE t.id = ").push_bind(id.0);
        Ok(read_all(&self.pool, &mut qb).await?.pop())
    }

    async fn add_message(&self, m: &NewChatMessage) -> Result<ChatMessage> {
        let content = text(&m.content).into_owned();
        let calls = to_json(&m.tool_calls)?;
        let at = now_ms();
        let mut tx = self.begin_write().await?;
        let id = query(
            "INSERT INTO assistant_messages (thread, role, content, tool_calls, tool_call_id, \
             created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (
                m.thread.0,
                m.role.as_str(),
                &content,
                &calls,
                m.tool_call_id.as_deref(),
                at,
            ),
        )
        .inserted_id(&mut *tx)
        .await
        .map_err(|e| fk_or(e, || Error::not_found("thread", m.thread)))?;
        tx.commit().await?;
        Ok(ChatMessage {
            id: MessageId(id),
            role: m.role,
            content,
            tool_calls: m.tool_calls.clone(),
            tool_call_id: m.tool_call_id.clone(),
            created_at: at,
        })
    }

    async fn messages(&self, thread: ThreadId) -> Result<Vec<ChatMessage>> {
        let mut qb = select::<ChatMessage>("FROM assistant_messages WHERE thread = ");
        qb.push_bind(thread.0).push(" ORDER BY id");
        read_all(&self.pool, &mut qb).await
    }

    async fn add_proposal(&self, p: &NewProposal) -> Result<Proposal> {
        let title = text(&p.title).into_owned();
        let action = to_json(&p.action)?;
        let at = now_ms();
        let mut tx = self.begin_write().await?;
        let id = query(
            "INSERT INTO assistant_proposals (thread, title, action, state, created_at) \
             VALUES (?, ?, ?, ?, ?) RETURNING id",
            (
                p.thread.0,
                &title,
                &action,
                ProposalState::Pending.as_str(),
                at,
            ),
        )
        .inserted_id(&mut *tx)
        .await
        .map_err(|e| fk_or(e, || Error::not_found("thread", p.thread)))?;
        tx.commit().await?;
        Ok(Proposal {
            id: ProposalId(id),
            thread: p.thread,
            title,
            action: p.action.clone(),
            state: ProposalState::Pending,
            result: None,
            created_at: at,
            decided_at: None,
        })
    }

    async fn proposals(&self, thread: ThreadId) -> Result<Vec<Proposal>> {
        let mut qb = select::<Proposal>("FROM assistant_proposals WHERE thread = ");
        qb.push_bind(thread.0).push(" ORDER BY id");
        read_all(&self.pool, &mut qb).await
    }

    async fn proposal(&self, id: ProposalId) -> Result<Option<Proposal>> {
        let mut qb = select::<Proposal>("FROM assistant_proposals WHERE id = ");
        qb.push_bind(id.0);
        Ok(read_all(&self.pool, &mut qb).await?.pop())
    }

    async fn decide_proposal(
        &self,
        id: ProposalId,
        from: ProposalState,
        to: ProposalState,
        result: Option<&ProposalResult>,
        at: i64,
    ) -> Result<bool> {
        let result = result.map(to_json).transpose()?;
        let res = self
            .write(
                "UPDATE assistant_proposals SET state = ?, result = COALESCE(?, result), \
                 decided_at = ? WHERE id = ? AND state = ?",
                (to.as_str(), result, at, id.0, from.as_str()),
            )
            .await?;
        if res.rows_affected() == 0 && self.proposal(id).await?.is_none() {
            return Err(Error::not_found("proposal", id));
        }
        Ok(res.rows_affected() == 1)
    }
}
