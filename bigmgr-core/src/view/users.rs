//! Users, API tokens and audit events, as frontends show them (never a password or a token's
//! hash).

use crate::auth::{Action, Actor, Role, authorize};
use crate::model::{ApiToken, AuditEvent, User};
use serde::{Deserialize, Serialize};

/// A user, as the API shows it: the model's [`User`] itself, which never holds a password (its
/// OpenAPI schema is named `UserView`).
pub type UserView = User;

/// An API token's record, as the API shows it: the model's [`ApiToken`] itself, which never
/// holds the secret (its OpenAPI schema is named `TokenView`).
pub type TokenView = ApiToken;

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

/// One audit event, as the API shows it: the model's [`AuditEvent`] itself (its OpenAPI schema
/// is named `AuditEventView`).
pub type AuditEventView = AuditEvent;

/// Who is signed in, and what its role lets it do (`GET /me`): a console hides or disables
/// the controls of everything else, and the server still decides every call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    /// The user name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Every action its role allows ([`authorize`] says yes), by its text form (`read`,
    /// `submit-job` …, as the audit log names it), in the rule table's order.
    pub may: Vec<String>,
}

impl Me {
    /// What `actor` is and may do.
    pub fn of(actor: &Actor) -> Me {
        Me {
            name: actor.name.clone(),
            role: actor.role,
            may: Action::ALL
                .iter()
                .copied()
                .filter(|a| authorize(actor, *a).is_ok())
                .map(|a| a.as_str().to_owned())
                .collect(),
        }
    }
}
