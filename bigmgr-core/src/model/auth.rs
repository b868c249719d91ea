//! Users, API tokens and audit events as stored. Secrets never appear here: a [`User`] has no
//! password hash and an [`ApiToken`] no secret, so serialising them can't leak one.

use super::{ApiTokenId, AuditId, UserId};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A user's role, from least to most powerful: viewer, operator, admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = RoleName))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything, changes nothing (but its own API tokens and password).
    Viewer,
    /// A viewer who also submits and controls jobs and changes configs.
    Operator,
    /// May do everything, including managing users and reading the audit log.
    Admin,
}

impl Role {
    /// Every role, least powerful first.
    pub const ALL: &'static [Role] = &[Role::Viewer, Role::Operator, Role::Admin];

    /// The text form (`admin`, `operator`, `viewer`), as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// How powerful the role is; a role may do whatever a lower one may.
    fn rank(self) -> u8 {
        match self {
            Role::Viewer => 0,
            Role::Operator => 1,
            Role::Admin => 2,
        }
    }

    /// True if this role may do everything `other` may.
    pub fn includes(self, other: Role) -> bool {
        self.rank() >= other.rank()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;

    fn from_str(s: &str) -> Result<Role> {
        Role::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "'{s}' is not a role; expected one of admin, operator, viewer"
                ))
            })
    }
}

/// A user (never its password): it calls the API with API tokens, and may log in with a password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = UserView))]
pub struct User {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: UserId,
    /// Its unique name.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Whether it has a password (and so may log in); users without one use tokens only.
    pub has_password: bool,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
}

/// What is needed to create a user. `Debug` hides the password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Its unique name.
    pub name: String,
    /// Its Argon2 PHC password hash ([`crate::auth::hash_password`]), if it may log in.
    pub password_hash: Option<String>,
    /// What it may do.
    pub role: Role,
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("name", &self.name)
            .field("password_hash", &self.password_hash.as_ref().map(|_| "…"))
            .field("role", &self.role)
            .finish()
    }
}

/// An API token of a user, without its secret (which is shown once, when it is created).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = TokenView))]
pub struct ApiToken {
    /// Its id (to list and delete it by).
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: ApiTokenId,
    /// The name of the user it authenticates.
    pub user: String,
    /// A label saying what it is for (`ci`, `login`, `bootstrap`).
    pub name: String,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
    /// Roughly when it was last used to authenticate (updated at most once a minute).
    pub last_used_at: Option<i64>,
}

/// What is needed to add an API token. `Debug` hides the hash.
#[derive(Clone, PartialEq, Eq)]
pub struct NewApiToken {
    /// The user it authenticates.
    pub user: UserId,
    /// Its label.
    pub name: String,
    /// The hex SHA-256 of its secret ([`crate::auth::token_hash`]); unique.
    pub hash: String,
}

impl fmt::Debug for NewApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewApiToken")
            .field("user", &self.user)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// How an audited call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It was allowed and done.
    Ok,
    /// It was refused: the actor's role does not allow it, or the credentials were wrong.
    Refused,
    /// It was allowed but failed (bad input, conflict, store error …).
    Failed,
}

impl Outcome {
    /// The text form (`ok`, `refused`, `failed`), as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Outcome {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Outcome> {
        match s {
            "ok" => Ok(Outcome::Ok),
            "refused" => Ok(Outcome::Refused),
            "failed" => Ok(Outcome::Failed),
            _ => Err(crate::Error::Invalid(format!(
                "'{s}' is not an outcome; expected one of ok, refused, failed"
            ))),
        }
    }
}

/// One entry of the audit log: who did what to what, when, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AuditEventView))]
pub struct AuditEvent {
    /// Its id; ids ascend in the order events were appended (the paging cursor).
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: AuditId,
    /// When it happened (ms since the epoch).
    pub at: i64,
    /// The actor's user name (`system` for the server itself, `agent:<host>` for an agent).
    pub actor: String,
    /// The action (`submit-job`, `create-cluster`, `manage-users` …), as `Action::as_str` names
    /// it.
    pub action: String,
    /// What it was done to (`cluster prod`, `job 42`, `user bob`); may be empty.
    pub target: String,
    /// How it ended.
    pub outcome: Outcome,
    /// A human-readable detail: the error message of a refusal or failure, or what changed.
    pub detail: String,
}

/// What is needed to append an audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEvent {
    /// When it happened.
    pub at: i64,
    /// The actor's user name.
    pub actor: String,
    /// The action's text form.
    pub action: String,
    /// What it was done to.
    pub target: String,
    /// How it ended.
    pub outcome: Outcome,
    /// A human-readable detail.
    pub detail: String,
}

/// Which audit events to list; they come in ascending id order. `None` matches all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    /// Only events with an id above this one (the cursor: pass the last id of a page).
    #[serde(default)]
    pub after: Option<AuditId>,
    /// At most this many.
    #[serde(default)]
    pub limit: Option<u32>,
    /// Only this actor's events.
    #[serde(default)]
    pub actor: Option<String>,
}
