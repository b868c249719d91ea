//! The [`AuthStore`] of [`SqlStore`]: users and API tokens (tables of migration 0003).

use super::rows::corrupt;
use super::{SqlStore, found, query, select_all, select_one, unique_or};
use crate::auth::Role;
use crate::model::*;
use crate::store::AuthStore;
use crate::{Error, Result};
use async_trait::async_trait;
use sqlx::Row;

#[async_trait]
impl AuthStore for SqlStore {
    async fn create_user(&self, user: &NewUser) -> Result<User> {
        self.write_insert(
            "INSERT INTO users (name, password_hash, role, created_at) VALUES (?, ?, ?, ?)",
            (
                &user.name,
                user.password_hash.as_deref(),
                user.role.as_str(),
                now_ms(),
            ),
            |e| unique_or(e, "user", &user.name),
        )
        .await
    }

    async fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        select_one(&self.pool, "FROM users WHERE name = ?", (name,)).await
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        select_all(&self.pool, "FROM users ORDER BY id", ()).await
    }

    async fn delete_user(&self, id: UserId) -> Result<()> {
        let mut tx = self.begin_write().await?;
        // The user's assistant threads go with it (their messages and proposals first).
        for sql in [
            "DELETE FROM assistant_proposals WHERE thread IN \
               (SELECT id FROM assistant_threads WHERE \"user\" = ?1)",
            "DELETE FROM assistant_messages WHERE thread IN \
               (SELECT id FROM assistant_threads WHERE \"user\" = ?1)",
            "DELETE FROM assistant_threads WHERE \"user\" = ?1",
            "DELETE FROM api_tokens WHERE \"user\" = ?1",
        ] {
            query(sql, (id.0,)).execute(&mut *tx).await?;
        }
        let res = query("DELETE FROM users WHERE id = ?", (id.0,))
            .execute(&mut *tx)
            .await?;
        found(&res, "user", id)?;
        tx.commit().await
    }

    async fn set_user_role(&self, id: UserId, role: Role) -> Result<()> {
        let sql = "UPDATE users SET role = ? WHERE id = ?";
        self.write_found(sql, (role.as_str(), id.0), "user", id)
            .await
    }

    async fn set_user_password(&self, id: UserId, password_hash: Option<&str>) -> Result<()> {
        let sql = "UPDATE users SET password_hash = ? WHERE id = ?";
        self.write_found(sql, (password_hash, id.0), "user", id)
            .await
    }

    async fn user_password_hash(&self, id: UserId) -> Result<Option<String>> {
        let sql = "SELECT password_hash FROM users WHERE id = ?";
        query(sql, (id.0,))
            .found_value(&self.pool, "user", id)
            .await
    }

    async fn add_api_token(&self, token: &NewApiToken) -> Result<ApiToken> {
        let mut tx = self.begin_write().await?;
        let created_at = now_ms();
        let sql = "SELECT name FROM users WHERE id = ?";
        let user: String = query(sql, (token.user.0,))
            .found_value(&mut *tx, "user", token.user)
            .await?;
        let id = query(
            "INSERT INTO api_tokens (\"user\", hash, name, created_at, last_used_at) \
             VALUES (?, ?, ?, ?, NULL) RETURNING id",
            (token.user.0, &token.hash, &token.name, created_at),
        )
        .inserted_id(&mut *tx)
        .await
        .map_err(|e| unique_or(e, "API token", "(hidden)"))?;
        tx.commit().await?;
        Ok(ApiToken {
            id: ApiTokenId(id),
            user,
            name: token.name.clone(),
            created_at,
            last_used_at: None,
        })
    }

    async fn api_token(&self, id: ApiTokenId) -> Result<Option<ApiToken>> {
        let from = "FROM api_tokens t JOIN users u ON u.id = t.\"user\" WHERE t.id = ?";
        select_one(&self.pool, from, (id.0,)).await
    }

    async fn token_user(&self, hash: &str) -> Result<Option<(User, ApiToken)>> {
        let rows = query(
            "SELECT u.id AS uid, u.name AS uname, u.role, \
                    CASE WHEN u.password_hash IS NULL THEN 0 ELSE 1 END AS has_password, \
                    u.created_at AS ucreated, t.id, t.name, t.created_at, t.last_used_at \
             FROM api_tokens t JOIN users u ON u.id = t.\"user\" WHERE t.hash = ?",
            (hash,),
        )
        .fetch_all(&self.pool)
        .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let role: String = row.try_get("role")?;
        let user = User {
            id: UserId(row.try_get("uid")?),
            name: row.try_get("uname")?,
            role: role.parse::<Role>().map_err(|e| corrupt("users.role", e))?,
            has_password: row.try_get::<i64, _>("has_password")? != 0,
            created_at: row.try_get("ucreated")?,
        };
        let token = ApiToken {
            id: ApiTokenId(row.try_get("id")?),
            user: user.name.clone(),
            name: row.try_get("name")?,
            created_at: row.try_get("created_at")?,
            last_used_at: row.try_get("last_used_at")?,
        };
        Ok(Some((user, token)))
    }

    async fn touch_api_token(&self, id: ApiTokenId, at: i64) -> Result<()> {
        let sql = "UPDATE api_tokens SET last_used_at = ? WHERE id = ?";
        self.write_found(sql, (at, id.0), "API token", id).await
    }

    async fn list_api_tokens(&self, user: UserId) -> Result<Vec<ApiToken>> {
        let mut tx = self.begin_read().await?;
        let known: Option<i64> = query("SELECT id FROM users WHERE id = ?", (user.0,))
            .value(&mut *tx)
            .await?;
        if known.is_none() {
            return Err(Error::not_found("user", user));
        }
        let from = "FROM api_tokens t JOIN users u ON u.id = t.\"user\" WHERE t.\"user\" = ? ORDER BY t.id";
        let tokens = select_all(&mut *tx, from, (user.0,)).await;
        tx.commit().await?;
        tokens
    }

    async fn delete_api_token(&self, id: ApiTokenId) -> Result<()> {
        let sql = "DELETE FROM api_tokens WHERE id = ?";
        self.write_found(sql, (id.0,), "API token", id).await
    }
}
