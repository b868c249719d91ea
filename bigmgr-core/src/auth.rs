//! Who may do what (docs/design.md §9): roles, actors, actions and the one rule table
//! ([`authorize`]); Argon2id password hashes and `bmt_` API token secrets.
//!
//! The Manager's user, token and audit operations live in `manager/auth.rs`; the rows they
//! store are in [`crate::model`] (`User`, `ApiToken`, `AuditEvent`).

use crate::{Error, Result};
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The prefix of API tokens, so a leaked one is recognisable.
pub const API_TOKEN_PREFIX: &str = "bmt_";

/// The shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;

/// The longest password accepted (hashing is deliberately slow; don't let it be abused).
pub const MAX_PASSWORD_LEN: usize = 1024;

pub use crate::model::Role;

/// Who is acting: an authenticated user (or the server itself) and the role it acts with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The user name, as recorded in the audit log.
    pub name: String,
    /// The role it acts with.
    pub role: Role,
}

impl Actor {
    /// The name of [`Actor::system`].
    pub const SYSTEM: &'static str = "system";

    /// The name audit events give a caller without a valid token ([`Actor::anonymous`]).
    pub const ANONYMOUS: &'static str = "anonymous";

    /// An actor with a name and role.
    pub fn new(name: impl Into<String>, role: Role) -> Actor {
        Actor {
            name: name.into(),
            role,
        }
    }

    /// The server itself (startup, bootstrap, embedders with no users): an admin named
    /// `system`. Frontends must never hand it to a caller who did not authenticate.
    pub fn system() -> Actor {
        Actor::new(Actor::SYSTEM, Role::Admin)
    }

    /// A caller that presented no valid token, as audit events name it (a viewer that can
    /// never be authenticated: no user may take this name).
    pub fn anonymous() -> Actor {
        Actor::new(Actor::ANONYMOUS, Role::Viewer)
    }
}

macro_rules! actions {
    ($($(#[$doc:meta])* $variant:ident = $text:literal => $role:ident),* $(,)?) => {
        /// Something a caller may do; [`authorize`] decides who may do it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[non_exhaustive]
        pub enum Action { $($(#[$doc])* #[serde(rename = $text)] $variant),* }

        impl Action {
            /// Every action, in declaration order.
            pub const ALL: &'static [Action] = &[$(Action::$variant),*];

            /// The text form (`submit-job`), as recorded in the audit log.
            pub fn as_str(self) -> &'static str {
                match self { $(Action::$variant => $text),* }
            }

            /// The least role that may do this.
            pub fn required_role(self) -> Role {
                match self { $(Action::$variant => Role::$role),* }
            }
        }

        impl FromStr for Action {
            type Err = Error;
            fn from_str(s: &str) -> Result<Action> {
                match s {
                    $($text => Ok(Action::$variant),)*
                    _ => Err(Error::Invalid(format!(
                        "'{s}' is not an action; expected one of {}",
                        [$($text),*].join(", ")))),
                }
            }
        }
    };
}

actions! {
    /// Read clusters, hosts, services, units, jobs, logs, stacks and configs.
    ReadAnything = "read" => Viewer,
    /// Log in with a password to get a new API token.
    Login = "login" => Viewer,
    /// Create, list and delete one's own API tokens; change one's own password.
    ManageOwnAccount = "manage-own-account" => Viewer,
    /// Submit a job (or plan one).
    SubmitJob = "submit-job" => Operator,
    /// Cancel, pause, resume or retry a job.
    ControlJob = "control-job" => Operator,
    /// Change a service's or cluster's configuration.
    ChangeConfig = "change-config" => Operator,
    /// Create a cluster.
    CreateCluster = "create-cluster" => Admin,
    /// Delete a cluster.
    DeleteCluster = "delete-cluster" => Admin,
    /// Create a join token, with which agents join a cluster.
    CreateJoinToken = "create-join-token" => Admin,
    /// Add a host to a cluster.
    AddHost = "add-host" => Admin,
    /// Add hosts over SSH: the server logs in to them and installs and starts the agent.
    BootstrapHosts = "bootstrap-hosts" => Admin,
    /// Remove a host from a cluster.
    RemoveHost = "remove-host" => Admin,
    /// Change a host's address (for one, accept the address its agent reported).
    ChangeHost = "change-host" => Admin,
    /// An agent joins a cluster as a host, or reports an address for its host. Recorded for
    /// agents (actor `agent:<host>`), which act by join token or credential, never by role.
    AgentRegister = "agent-register" => Admin,
    /// Create or remove a pipeline (its programs run on the cluster's hosts).
    ManagePipeline = "manage-pipeline" => Admin,
    /// Start, pause, resume, stop or scale a pipeline an admin created.
    ControlPipeline = "control-pipeline" => Operator,
    /// Add a service instance to a cluster.
    AddService = "add-service" => Admin,
    /// Apply a cluster spec (which may create the cluster, hosts and services; each of those
    /// changes is authorised and audited as well).
    ApplySpec = "apply-spec" => Admin,
    /// Remove a service instance.
    RemoveService = "remove-service" => Admin,
    /// Create and delete users, change their roles and passwords, manage anyone's tokens.
    ManageUsers = "manage-users" => Admin,
    /// Read the audit log.
    ReadAudit = "read-audit" => Admin,
    /// Set and remove the assistant's model providers (their API keys are secrets).
    ManageAssistant = "manage-assistant" => Admin,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `actor` may do `action`: viewers read, operators also run jobs and change configs,
/// admins do everything. A refusal is [`Error::PermissionDenied`] naming the user, its role,
/// the action and the role it needs. (Does not audit; `Manager::authorize` does.)
pub fn authorize(actor: &Actor, action: Action) -> Result<()> {
    let needed = action.required_role();
    if actor.role.includes(needed) {
        Ok(())
    } else {
        Err(Error::PermissionDenied(format!(
            "user '{}' (role {}) may not {}: it needs role {needed}{}; ask an admin",
            actor.name,
            actor.role,
            action,
            if needed == Role::Admin {
                ""
            } else {
                " or higher"
            }
        )))
    }
}

/// Checks a new password's length ([`MIN_PASSWORD_LEN`]..=[`MAX_PASSWORD_LEN`] bytes).
pub fn check_password(password: &str) -> Result<()> {
    if password.len() < MIN_PASSWORD_LEN {
        return Err(Error::Invalid(format!(
            "the password is too short: use at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(Error::Invalid(format!(
            "the password is too long: use at most {MAX_PASSWORD_LEN} bytes"
        )));
    }
    Ok(())
}

/// Hashes a password with Argon2id (default parameters, random salt) into a PHC string
/// (`$argon2id$v=19$…`), the form the store keeps.
pub fn hash_password(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::Invalid(format!("cannot hash the password: {e}")))
}

/// True if `password` matches the PHC string `hash` (compared in constant time by argon2's
/// verifier). A malformed hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// A new API token secret: `bmt_` and 64 hex digits (256 random bits). Store only
/// [`token_hash`] of it.
pub fn new_token() -> Result<String> {
    crate::secret::new_secret(API_TOKEN_PREFIX)
}

/// The hash of an API token as the store keeps it (hex SHA-256: enough for 256-bit secrets,
/// and cheap enough to run on every request).
pub fn token_hash(token: &str) -> String {
    crate::secret::hash(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_text_forms_round_trip() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), *r);
            assert_eq!(
                serde_json::to_string(r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
        }
        assert!(matches!("root".parse::<Role>(), Err(Error::Invalid(_))));
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>().unwrap(), *a);
            assert_eq!(
                serde_json::to_string(a).unwrap(),
                format!("\"{}\"", a.as_str())
            );
        }
    }

    #[test]
    fn role_matrix() {
        use Action::*;
        let viewer = Actor::new("vic", Role::Viewer);
        let operator = Actor::new("olga", Role::Operator);
        let admin = Actor::new("ada", Role::Admin);
        for a in Action::ALL {
            let expect_viewer = matches!(a, ReadAnything | Login | ManageOwnAccount);
            let expect_operator = expect_viewer
                || matches!(a, SubmitJob | ControlJob | ChangeConfig | ControlPipeline);
            assert_eq!(authorize(&viewer, *a).is_ok(), expect_viewer, "viewer {a}");
            assert_eq!(
                authorize(&operator, *a).is_ok(),
                expect_operator,
                "operator {a}"
            );
            assert!(authorize(&admin, *a).is_ok(), "admin {a}");
        }
        assert!(authorize(&Actor::system(), ManageUsers).is_ok());
    }

    #[test]
    fn refusal_names_user_role_action_and_needed_role() {
        let e = authorize(&Actor::new("vic", Role::Viewer), Action::SubmitJob).unwrap_err();
        let Error::PermissionDenied(msg) = &e else {
            panic!("expected PermissionDenied, got {e:?}");
        };
        for part in ["'vic'", "role viewer", "submit-job", "needs role operator"] {
            assert!(msg.contains(part), "{msg:?} lacks {part:?}");
        }
        let e = authorize(&Actor::new("olga", Role::Operator), Action::ManageUsers).unwrap_err();
        assert!(e.to_string().contains("needs role admin"), "{e}");
    }

    #[test]
    fn password_hash_round_trip() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(!h.contains("correct horse"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse!", &h));
        assert!(!verify_password("correct horse", "not a phc string"));
        assert_ne!(h, hash_password("correct horse").unwrap(), "salted");
    }

    #[test]
    fn password_length_rules() {
        assert!(check_password("1234567").is_err());
        assert!(check_password("12345678").is_ok());
        assert!(check_password(&"x".repeat(MAX_PASSWORD_LEN + 1)).is_err());
    }

    #[test]
    fn tokens_are_prefixed_and_hashed() {
        let t = new_token().unwrap();
        assert!(t.starts_with("bmt_") && t.len() == 4 + 64, "{t}");
        assert_eq!(token_hash(&t).len(), 64);
        assert_ne!(token_hash(&t), t);
    }
}
