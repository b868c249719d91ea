//! The Manager's security facade (docs/design.md §9): authenticating API tokens, logging in,
//! managing users and tokens, authorising actions and writing and reading the audit log.
//!
//! Every user and token change is audited here; frontends audit the calls they make with
//! [`Manager::record`], and [`Manager::authorize`] audits every refusal.

use super::Manager;
use crate::auth::{self, Action, Actor, Role};
use crate::model::*;
use crate::name::check_name;
use crate::{Error, Result};
use std::sync::OnceLock;

/// The name of the user [`Manager::bootstrap_admin`] ensures.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// A token's `last_used_at` is written at most this often (ms), so authenticating stays a read.
const TOUCH_EVERY_MS: i64 = 60_000;

/// A hash verified against when a login names an unknown user, so that answering takes as
/// long as for a known one (no user enumeration by timing).
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| auth::hash_password("bigmgr-no-such-user").unwrap_or_default())
}

impl Manager {
    /// The actor an API token authenticates, or [`Error::Unauthenticated`] ("missing or invalid
    /// API token: …") for an empty or unknown one. Notes the token's use (at most once a minute).
    pub async fn authenticate(&self, token: &str) -> Result<Actor> {
        let token = token.trim();
        if token.is_empty() {
            return Err(Error::Unauthenticated(
                "missing or invalid API token: no token given; send `Authorization: Bearer <token>`"
                    .into(),
            ));
        }
        let store = &self.inner.store;
        let Some((user, t)) = store.token_user(&auth::token_hash(token)).await? else {
            return Err(Error::Unauthenticated(
                "missing or invalid API token: this server does not know the token (it was \
                 deleted, or is from another server); log in again or ask an admin for a token"
                    .into(),
            ));
        };
        let now = now_ms();
        if t.last_used_at.is_none_or(|at| now - at >= TOUCH_EVERY_MS)
            && let Err(e) = store.touch_api_token(t.id, now).await
        {
            // Bookkeeping only: a failure must not turn away a valid caller.
            tracing::warn!(token = %t.id, "cannot record API token use: {e}");
        }
        Ok(Actor::new(user.name, user.role))
    }

    /// Ensures a user `admin` with role admin exists and that `token` is one of its API tokens
    /// (the server's `BIGMGR_ADMIN_TOKEN` or generated token). Idempotent; the token must be
    /// at least 16 characters with no whitespace, and must not belong to another user.
    pub async fn bootstrap_admin(&self, token: &str) -> Result<User> {
        if token.len() < 16 || token.contains(char::is_whitespace) {
            return Err(Error::Invalid(
                "the admin token must be at least 16 characters with no whitespace; leave it \
                 unset to have one generated"
                    .into(),
            ));
        }
        let _guard = self.inner.auth_lock.lock().await;
        let store = &self.inner.store;
        let system = Actor::system();
        let target = format!("user {BOOTSTRAP_ADMIN}");
        let note = async |what: &str| {
            let (action, ok) = (Action::ManageUsers, Outcome::Ok);
            self.record(&system, action, &target, ok, what).await
        };
        let user = match store.user_by_name(BOOTSTRAP_ADMIN).await? {
            Some(u) if u.role == Role::Admin => u,
            Some(u) => {
                store.set_user_role(u.id, Role::Admin).await?;
                note(&format!("bootstrap: role {} -> admin", u.role)).await;
                User {
                    role: Role::Admin,
                    ..u
                }
            }
            None => {
                let u = store
                    .create_user(&NewUser {
                        name: BOOTSTRAP_ADMIN.into(),
                        password_hash: None,
                        role: Role::Admin,
                    })
                    .await?;
                note("bootstrap: created with role admin").await;
                u
            }
        };
        let hash = auth::token_hash(token);
        match store.token_user(&hash).await? {
            Some((owner, _)) if owner.id == user.id => {}
            Some((owner, _)) => {
                return Err(Error::Conflict(format!(
                    "the admin token is already a token of user '{}'; choose another token",
                    owner.name
                )));
            }
            None => {
                let t = store
                    .add_api_token(&NewApiToken {
                        user: user.id,
                        name: "bootstrap".into(),
                        hash,
                    })
                    .await?;
                note(&format!("bootstrap: added API token {}", t.id)).await;
            }
        }
        Ok(user)
    }

    /// Checks that `actor` may do `action` (see [`auth::authorize`]); a refusal is
    /// [`Error::PermissionDenied`] and is appended to the audit log (outcome `refused`) with
    /// `target` (`cluster prod`, `job 42`; may be empty).
    pub async fn authorize(&self, actor: &Actor, action: Action, target: &str) -> Result<()> {
        let res = auth::authorize(actor, action);
        if let Err(e) = &res {
            self.record(actor, action, target, Outcome::Refused, &e.to_string())
                .await;
        }
        res
    }

    /// Appends an event to the audit log, for frontends auditing the calls they make. A failure
    /// to write it is logged, not returned: the call it describes has already happened.
    pub async fn record(
        &self,
        actor: &Actor,
        action: Action,
        target: &str,
        outcome: Outcome,
        detail: &str,
    ) {
        let store = self.inner.store.as_ref();
        crate::store::audit(store, &actor.name, action, target, outcome, detail).await;
    }

    /// Audits a finished change: `ok` with `detail`, or `failed` with the error.
    async fn audit_result<T>(
        &self,
        actor: &Actor,
        action: Action,
        target: &str,
        detail: &str,
        res: Result<T>,
    ) -> Result<T> {
        match &res {
            Ok(_) => {
                self.record(actor, action, target, Outcome::Ok, detail)
                    .await
            }
            Err(e) => {
                self.record(actor, action, target, Outcome::Failed, &e.to_string())
                    .await
            }
        }
        res
    }

    /// The user of that name.
    async fn user_named(&self, name: &str) -> Result<User> {
        self.inner
            .store
            .user_by_name(name)
            .await?
            .ok_or_else(|| Error::not_found("user", name))
    }

    /// Creates a user (admins only). Names follow the host name rule; a password, if given,
    /// needs at least 8 characters (without one the user authenticates by tokens only).
    pub async fn create_user(
        &self,
        actor: &Actor,
        name: &str,
        password: Option<&str>,
        role: Role,
    ) -> Result<User> {
        let target = format!("user {name}");
        self.authorize(actor, Action::ManageUsers, &target).await?;
        let res = async {
            check_name("user", name)?;
            if name == Actor::SYSTEM || name == Actor::ANONYMOUS {
                return Err(Error::Invalid(format!(
                    "'{name}' is reserved (audit events use it for the server itself and for \
                     callers without a token); choose another user name"
                )));
            }
            let password_hash = match password {
                Some(p) => {
                    auth::check_password(p)?;
                    Some(auth::hash_password(p)?)
                }
                None => None,
            };
            self.inner
                .store
                .create_user(&NewUser {
                    name: name.into(),
                    password_hash,
                    role,
                })
                .await
        }
        .await;
        let detail = format!("created with role {role}");
        self.audit_result(actor, Action::ManageUsers, &target, &detail, res)
            .await
    }

    /// Every user (admins only).
    pub async fn users(&self, actor: &Actor) -> Result<Vec<User>> {
        self.authorize(actor, Action::ManageUsers, "users").await?;
        self.inner.store.list_users().await
    }

    /// Deletes a user and its tokens (admins only). The last admin can't be deleted
    /// ([`Error::Conflict`]): make another admin first.
    pub async fn delete_user(&self, actor: &Actor, name: &str) -> Result<()> {
        let target = format!("user {name}");
        self.authorize(actor, Action::ManageUsers, &target).await?;
        let _guard = self.inner.auth_lock.lock().await;
        let res = async {
            let user = self.user_named(name).await?;
            if user.role == Role::Admin {
                self.keep_an_admin(name, "delete").await?;
            }
            self.inner.store.delete_user(user.id).await
        }
        .await;
        self.audit_result(actor, Action::ManageUsers, &target, "deleted", res)
            .await
    }

    /// Changes a user's role (admins only); the last admin keeps its role.
    pub async fn set_role(&self, actor: &Actor, name: &str, role: Role) -> Result<User> {
        let target = format!("user {name}");
        self.authorize(actor, Action::ManageUsers, &target).await?;
        let _guard = self.inner.auth_lock.lock().await;
        let res = async {
            let user = self.user_named(name).await?;
            if user.role == Role::Admin && role != Role::Admin {
                self.keep_an_admin(name, "demote").await?;
            }
            self.inner.store.set_user_role(user.id, role).await?;
            Ok(User { role, ..user })
        }
        .await;
        let detail = format!("role set to {role}");
        self.audit_result(actor, Action::ManageUsers, &target, &detail, res)
            .await
    }

    /// Sets a user's password (its own for anyone, anyone's for admins); at least 8 characters.
    pub async fn set_password(&self, actor: &Actor, name: &str, password: &str) -> Result<()> {
        let target = format!("user {name}");
        let action = self.own_or_admin(actor, name, &target).await?;
        let res = async {
            auth::check_password(password)?;
            let user = self.user_named(name).await?;
            let hash = auth::hash_password(password)?;
            self.inner
                .store
                .set_user_password(user.id, Some(&hash))
                .await
        }
        .await;
        self.audit_result(actor, action, &target, "password set", res)
            .await
    }

    /// Refuses with [`Error::Conflict`] if `name` is the only admin.
    async fn keep_an_admin(&self, name: &str, what: &str) -> Result<()> {
        let admins = self
            .inner
            .store
            .list_users()
            .await?
            .into_iter()
            .filter(|u| u.role == Role::Admin)
            .count();
        if admins <= 1 {
            return Err(Error::Conflict(format!(
                "'{name}' is the last admin; cannot {what} it: make another user admin first"
            )));
        }
        Ok(())
    }

    /// Authorises acting on `user`'s own things: [`Action::ManageOwnAccount`] if the actor is
    /// that user, [`Action::ManageUsers`] otherwise. Returns the action checked.
    async fn own_or_admin(&self, actor: &Actor, user: &str, target: &str) -> Result<Action> {
        let action = if actor.name == user {
            Action::ManageOwnAccount
        } else {
            Action::ManageUsers
        };
        self.authorize(actor, action, target).await?;
        Ok(action)
    }

    /// Creates an API token for `user` (one's own, or anyone's for admins) labelled `label`;
    /// returns it with its secret (`bmt_…`), which is shown only now: the store keeps its hash.
    pub async fn create_token(
        &self,
        actor: &Actor,
        user: &str,
        label: &str,
    ) -> Result<(ApiToken, String)> {
        let target = format!("user {user}");
        let action = self.own_or_admin(actor, user, &target).await?;
        let res = async {
            check_label(label)?;
            let u = self.user_named(user).await?;
            self.new_token(u.id, label).await
        }
        .await;
        let detail = match &res {
            Ok((t, _)) => format!("created API token {} ({label})", t.id),
            Err(_) => String::new(),
        };
        self.audit_result(actor, action, &target, &detail, res)
            .await
    }

    /// Stores a new token for a user and returns it with its secret.
    async fn new_token(&self, user: UserId, label: &str) -> Result<(ApiToken, String)> {
        let secret = auth::new_token()?;
        let token = self
            .inner
            .store
            .add_api_token(&NewApiToken {
                user,
                name: label.into(),
                hash: auth::token_hash(&secret),
            })
            .await?;
        Ok((token, secret))
    }

    /// A user's API tokens, without secrets (one's own, or anyone's for admins).
    pub async fn tokens(&self, actor: &Actor, user: &str) -> Result<Vec<ApiToken>> {
        let target = format!("user {user}");
        self.own_or_admin(actor, user, &target).await?;
        let u = self.user_named(user).await?;
        self.inner.store.list_api_tokens(u.id).await
    }

    /// Deletes an API token (one's own, or anyone's for admins); it no longer authenticates.
    /// Another user's token is NotFound to non-admins, so ids don't reveal who has tokens.
    pub async fn delete_token(&self, actor: &Actor, id: ApiTokenId) -> Result<()> {
        let target = format!("API token {id}");
        let token = self.inner.store.api_token(id).await?;
        let own = token.as_ref().is_some_and(|t| t.user == actor.name);
        let action = if own {
            Action::ManageOwnAccount
        } else {
            Action::ManageUsers
        };
        if self.authorize(actor, action, &target).await.is_err() {
            // Audited as refused; answered as missing, so ids don't reveal others' tokens.
            return Err(Error::not_found("API token", id));
        }
        let owner = token.map(|t| t.user).unwrap_or_default();
        let res = self.inner.store.delete_api_token(id).await;
        let detail = format!("deleted (user {owner})");
        self.audit_result(actor, action, &target, &detail, res)
            .await
    }

    /// Logs in with a user name and password: returns a new API token (labelled `login`) and
    /// its secret. A wrong name or password is [`Error::Unauthenticated`] with the same message
    /// either way; both are audited (`login`, `refused`).
    pub async fn login(&self, name: &str, password: &str) -> Result<(ApiToken, String)> {
        let who = if check_name("user", name).is_ok() {
            name
        } else {
            "(invalid name)"
        };
        let actor = Actor::new(who, Role::Viewer);
        let target = format!("user {who}");
        let user = if who == name {
            self.inner.store.user_by_name(name).await?
        } else {
            None
        };
        let hash = match &user {
            Some(u) => self.inner.store.user_password_hash(u.id).await?,
            None => None,
        };
        // An over-long password is checked (against the dummy) but never matches.
        let fits = password.len() <= auth::MAX_PASSWORD_LEN;
        let against = hash.as_deref().filter(|_| fits).unwrap_or(dummy_hash());
        let matches = auth::verify_password(if fits { password } else { "" }, against);
        let ok = matches && fits && hash.is_some();
        let Some(user) = user.filter(|_| ok) else {
            let e = Error::Unauthenticated(
                "wrong user name or password (users without a password log in with an API \
                 token only)"
                    .into(),
            );
            self.record(
                &actor,
                Action::Login,
                &target,
                Outcome::Refused,
                &e.to_string(),
            )
            .await;
            return Err(e);
        };
        let actor = Actor::new(&user.name, user.role);
        let res = self.new_token(user.id, "login").await;
        let detail = match &res {
            Ok((t, _)) => format!("created API token {}", t.id),
            Err(_) => String::new(),
        };
        self.audit_result(&actor, Action::Login, &target, &detail, res)
            .await
    }

    /// Audit events matching a filter, ascending by id (admins only). Page with
    /// `filter.after` = the last id seen.
    pub async fn audit(&self, actor: &Actor, filter: &AuditFilter) -> Result<Vec<AuditEvent>> {
        self.authorize(actor, Action::ReadAudit, "audit").await?;
        self.inner.store.list_audit(filter).await
    }
}

/// A token label: 1–64 printable characters.
fn check_label(label: &str) -> Result<()> {
    if label.trim().is_empty() || label.chars().count() > 64 || label.chars().any(char::is_control)
    {
        return Err(Error::Invalid(format!(
            "'{label}' is not a token label: use 1-64 printable characters"
        )));
    }
    Ok(())
}
