//! The [`AuthStore`] of [`SqlStore`]: users and API tokens (tables of migration 0003).

use super::{SqlStore, corrupt, found, unique_or};
use crate::auth::Role;
use crate::model::*;
use crate::store::AuthStore;
use crate::{Error, Result};
use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

const USER_COLS: &str = "id, name, role, password_hash IS NOT NULL AS has_password, created_at";
const TOKEN_COLS: &str = "t.id, u.name AS user, t.name, t.created_at, t.last_used_at";

fn user_row(row: &SqliteRow) -> Result<User> {
    let role: String = row.try_get("role")?;
    Ok(User {
        id: UserId(row.try_get("id")?),
        name: row.try_get("name")?,
        role: role.parse::<Role>().map_err(|e| corrupt("users.role", e))?,
        has_password: row.try_get("has_password")?,
        created_at: row.try_get("created_at")?,
    })
}

fn token_row(row: &SqliteRow) -> Result<ApiToken> {
    Ok(ApiToken {
        id: ApiTokenId(row.try_get("id")?),
        user: row.try_get("user")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

#[async_trait]
impl AuthStore for SqlStore {
    async fn create_user(&self, user: &NewUser) -> Result<User> {
        let _w = self.write.lock().await;
        let created_at = now_ms();
        let res = sqlx::query(
            "INSERT INTO users (name, password_hash, role, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&user.name)
        .bind(user.password_hash.as_deref())
        .bind(user.role.as_str())
        .bind(created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| unique_or(e, "user", &user.name))?;
        Ok(User {
            id: UserId(res.last_insert_rowid()),
            name: user.name.clone(),
            role: user.role,
            has_password: user.password_hash.is_some(),
            created_at,
        })
    }

    async fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users WHERE name = ?"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_row).transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        sqlx::query(&format!("SELECT {USER_COLS} FROM users ORDER BY id"))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(user_row)
            .collect()
    }

    async fn delete_user(&self, id: UserId) -> Result<()> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("DELETE FROM api_tokens WHERE user = ?")
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        let res = sqlx::query("DELETE FROM users WHERE id = ?")
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        found(&res, "user", id)?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_user_role(&self, id: UserId, role: Role) -> Result<()> {
        let _w = self.write.lock().await;
        let res = sqlx::query("UPDATE users SET role = ? WHERE id = ?")
            .bind(role.as_str())
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        found(&res, "user", id)
    }

    async fn set_user_password(&self, id: UserId, password_hash: Option<&str>) -> Result<()> {
        let _w = self.write.lock().await;
        let res = sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
            .bind(password_hash)
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        found(&res, "user", id)
    }

    async fn user_password_hash(&self, id: UserId) -> Result<Option<String>> {
        let row: Option<Option<String>> =
            sqlx::query_scalar("SELECT password_hash FROM users WHERE id = ?")
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?;
        row.ok_or_else(|| Error::not_found("user", id))
    }

    async fn add_api_token(&self, token: &NewApiToken) -> Result<ApiToken> {
        let _w = self.write.lock().await;
        let created_at = now_ms();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let user: Option<String> = sqlx::query_scalar("SELECT name FROM users WHERE id = ?")
            .bind(token.user.0)
            .fetch_optional(&mut *tx)
            .await?;
        let user = user.ok_or_else(|| Error::not_found("user", token.user))?;
        let res = sqlx::query(
            "INSERT INTO api_tokens (user, hash, name, created_at, last_used_at) \
             VALUES (?, ?, ?, ?, NULL)",
        )
        .bind(token.user.0)
        .bind(&token.hash)
        .bind(&token.name)
        .bind(created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_or(e, "API token", "(hidden)"))?;
        tx.commit().await?;
        Ok(ApiToken {
            id: ApiTokenId(res.last_insert_rowid()),
            user,
            name: token.name.clone(),
            created_at,
            last_used_at: None,
        })
    }

    async fn api_token(&self, id: ApiTokenId) -> Result<Option<ApiToken>> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLS} FROM api_tokens t JOIN users u ON u.id = t.user WHERE t.id = ?"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_row).transpose()
    }

    async fn token_user(&self, hash: &str) -> Result<Option<(User, ApiToken)>> {
        let row = sqlx::query(
            "SELECT u.id AS uid, u.name AS uname, u.role, \
                    u.password_hash IS NOT NULL AS has_password, u.created_at AS ucreated, \
                    t.id, t.name, t.created_at, t.last_used_at \
             FROM api_tokens t JOIN users u ON u.id = t.user WHERE t.hash = ?",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let role: String = row.try_get("role")?;
        let user = User {
            id: UserId(row.try_get("uid")?),
            name: row.try_get("uname")?,
            role: role.parse::<Role>().map_err(|e| corrupt("users.role", e))?,
            has_password: row.try_get("has_password")?,
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
        let _w = self.write.lock().await;
        let res = sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
            .bind(at)
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        found(&res, "API token", id)
    }

    async fn list_api_tokens(&self, user: UserId) -> Result<Vec<ApiToken>> {
        let mut tx = self.pool.begin().await?;
        let known: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE id = ?")
            .bind(user.0)
            .fetch_optional(&mut *tx)
            .await?;
        if known.is_none() {
            return Err(Error::not_found("user", user));
        }
        let tokens = sqlx::query(&format!(
            "SELECT {TOKEN_COLS} FROM api_tokens t JOIN users u ON u.id = t.user \
             WHERE t.user = ? ORDER BY t.id"
        ))
        .bind(user.0)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(token_row)
        .collect();
        tx.commit().await?;
        tokens
    }

    async fn delete_api_token(&self, id: ApiTokenId) -> Result<()> {
        let _w = self.write.lock().await;
        let res = sqlx::query("DELETE FROM api_tokens WHERE id = ?")
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        found(&res, "API token", id)
    }
}
