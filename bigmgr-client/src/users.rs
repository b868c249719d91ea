//! `/users`, `/tokens`, `/login` and `/audit`: accounts, API tokens and the audit log.

use crate::{Client, Result, seg};
use bigmgr_core::auth::Role;
use bigmgr_core::request::{CreateToken, CreateUser, Login};
use bigmgr_core::view::{AuditEventView, NewToken, TokenView, UserView};

impl Client {
    /// Every user (admin).
    pub async fn users(&self) -> Result<Vec<UserView>> {
        self.list("/users").await
    }

    /// Creates a user (admin).
    pub async fn create_user(
        &self,
        name: &str,
        password: Option<&str>,
        role: Role,
    ) -> Result<UserView> {
        self.post(
            "/users",
            &CreateUser {
                name: name.to_string(),
                password: password.map(str::to_owned),
                role,
            },
        )
        .await
    }

    /// Deletes a user and its tokens (admin).
    pub async fn delete_user(&self, name: &str) -> Result<()> {
        self.delete(&format!("/users/{}", seg(name))).await
    }

    /// A user's API tokens.
    pub async fn tokens(&self, user: &str) -> Result<Vec<TokenView>> {
        self.list(&format!("/users/{}/tokens", seg(user))).await
    }

    /// A new API token for a user, with its secret (shown once).
    pub async fn create_token(&self, user: &str, name: &str) -> Result<NewToken> {
        self.post(
            &format!("/users/{}/tokens", seg(user)),
            &CreateToken {
                name: name.to_string(),
            },
        )
        .await
    }

    /// Deletes an API token.
    pub async fn delete_token(&self, id: i64) -> Result<()> {
        self.delete(&format!("/tokens/{id}")).await
    }

    /// Exchanges a user name and password for a new API token.
    pub async fn login(&self, name: &str, password: &str) -> Result<NewToken> {
        self.post(
            "/login",
            &Login {
                name: name.to_string(),
                password: password.to_string(),
            },
        )
        .await
    }

    /// Audit events after `after`, at most `limit`, of `actor` if given (admin).
    pub async fn audit(
        &self,
        after: Option<i64>,
        limit: Option<u32>,
        actor: Option<&str>,
    ) -> Result<Vec<AuditEventView>> {
        let mut query = Vec::new();
        if let Some(a) = after {
            query.push(format!("after={a}"));
        }
        if let Some(l) = limit {
            query.push(format!("limit={l}"));
        }
        if let Some(a) = actor {
            query.push(format!("actor={}", seg(a)));
        }
        let path = if query.is_empty() {
            "/audit".to_string()
        } else {
            format!("/audit?{}", query.join("&"))
        };
        if limit.is_some() {
            // One page, as asked.
            let page: serde_json::Value = self.get(&path).await?;
            return serde_json::from_value(page["items"].clone())
                .map_err(|e| crate::Error::Http(format!("GET /audit: {e}")));
        }
        self.list(&path).await
    }
}
