//! Users, API tokens and audit events, as frontends show them (never a password or a token's
//! hash).

use crate::auth::Role;
use crate::model::{ApiToken, AuditEvent, User};
use serde::{Deserialize, Serialize};

/// A user (never its password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserView {
    /// Its id.
    pub id: i64,
    /// Its unique name.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Whether it has a password (and so may log in).
    pub has_password: bool,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
}

impl From<User> for UserView {
    fn from(u: User) -> UserView {
        UserView {
            id: u.id.0,
            name: u.name,
            role: u.role,
            has_password: u.has_password,
            created_at: u.created_at,
        }
    }
}

/// An API token's record (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenView {
    /// Its id.
    pub id: i64,
    /// Its user's name.
    pub user: String,
    /// Its label.
    pub name: String,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
    /// When it was last used, to the minute.
    pub last_used_at: Option<i64>,
}

impl From<ApiToken> for TokenView {
    fn from(t: ApiToken) -> TokenView {
        TokenView {
            id: t.id.0,
            user: t.user,
            name: t.name,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
        }
    }
}

/// A new API token: its secret, shown only now, and its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewToken {
    /// The secret (`bmt_…`) to send as `Authorization: Bearer <token>`.
    pub token: String,
    /// Its id.
    pub id: i64,
    /// Its user's name.
    pub user: String,
    /// Its label.
    pub name: String,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
}

impl NewToken {
    /// The view of a token just created with secret `token`.
    pub fn new(info: ApiToken, token: String) -> NewToken {
        NewToken {
            token,
            id: info.id.0,
            user: info.user,
            name: info.name,
            created_at: info.created_at,
        }
    }
}

/// One audit event: who did what to what, when, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEventView {
    /// Its id (ascending: the paging cursor).
    pub id: i64,
    /// When (ms since the epoch).
    pub at: i64,
    /// The user name (`system` for the server itself, `agent:<host>` for an agent).
    pub actor: String,
    /// The action (`submit-job`, `create-cluster`, `manage-users` …).
    pub action: String,
    /// What it was done to (a path, `user bob` …).
    pub target: String,
    /// `ok`, `refused` or `failed`.
    pub outcome: String,
    /// The refusal's or failure's message, or what changed.
    pub detail: String,
}

impl From<AuditEvent> for AuditEventView {
    fn from(e: AuditEvent) -> AuditEventView {
        AuditEventView {
            id: e.id.0,
            at: e.at,
            actor: e.actor,
            action: e.action,
            target: e.target,
            outcome: e.outcome.as_str().to_owned(),
            detail: e.detail,
        }
    }
}
