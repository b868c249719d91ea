//! Conformance of [`AuthStore`]: users and API tokens.

use super::fixture::{already_exists, not_found, ok, refused};
use crate::Error;
use crate::auth::Role;
use crate::model::*;
use crate::store::AuthStore;

/// Runs the checks of users and API tokens.
pub async fn run<S>(store: &S)
where
    S: AuthStore + ?Sized,
{
    users(store).await;
    api_tokens(store).await;
}

/// Users: created with their fields, names unique, role and password changes, delete, and
/// unknown ids refused.
pub async fn users<S>(store: &S)
where
    S: AuthStore + ?Sized,
{
    let check = "users";
    let u = ok(
        store
            .create_user(&new_user(
                "conf-ann",
                Role::Operator,
                Some("$argon2id$fake"),
            ))
            .await,
        check,
        "create user",
    );
    assert_eq!(
        (u.name.as_str(), u.role, u.has_password),
        ("conf-ann", Role::Operator, true),
        "store conformance [{check}]: created fields"
    );
    let v = ok(
        store
            .create_user(&new_user("conf-bob", Role::Viewer, None))
            .await,
        check,
        "create user without password",
    );
    assert!(!v.has_password, "store conformance [{check}]: no password");
    refused(
        store
            .create_user(&new_user("conf-ann", Role::Admin, None))
            .await,
        check,
        "a duplicate user name",
        "AlreadyExists of a user",
        |e| matches!(e, Error::AlreadyExists { kind: "user", .. }),
    );
    let got = ok(store.user_by_name("conf-ann").await, check, "user by name");
    assert_eq!(
        got.as_ref(),
        Some(&u),
        "store conformance [{check}]: user by name"
    );
    assert_eq!(
        ok(
            store.user_by_name("conf-nobody").await,
            check,
            "missing user"
        ),
        None,
        "store conformance [{check}]: unknown name is None"
    );
    let all = ok(store.list_users().await, check, "list users");
    let pos = |id| all.iter().position(|x: &User| x.id == id);
    assert!(
        pos(u.id).is_some_and(|a| pos(v.id).is_some_and(|b| a < b)),
        "store conformance [{check}]: list holds both, by id"
    );
    assert_eq!(
        ok(store.user_password_hash(u.id).await, check, "hash").as_deref(),
        Some("$argon2id$fake"),
        "store conformance [{check}]: password hash kept"
    );
    ok(
        store.set_user_password(v.id, Some("$argon2id$other")).await,
        check,
        "set password",
    );
    ok(
        store.set_user_role(v.id, Role::Admin).await,
        check,
        "set role",
    );
    let got = ok(store.user_by_name("conf-bob").await, check, "reload").expect("user exists");
    assert_eq!(
        (got.role, got.has_password),
        (Role::Admin, true),
        "store conformance [{check}]: role and password changed"
    );
    ok(
        store.set_user_password(v.id, None).await,
        check,
        "clear password",
    );
    assert_eq!(
        ok(store.user_password_hash(v.id).await, check, "hash cleared"),
        None,
        "store conformance [{check}]: password cleared"
    );
    ok(store.delete_user(v.id).await, check, "delete user");
    assert_eq!(
        ok(store.user_by_name("conf-bob").await, check, "deleted"),
        None,
        "store conformance [{check}]: deleted user is gone"
    );
    let missing = UserId(987_654);
    not_found(
        store.delete_user(v.id).await,
        check,
        "deleting a user twice",
    );
    not_found(
        store.set_user_role(missing, Role::Viewer).await,
        check,
        "setting the role of an unknown user",
    );
    not_found(
        store.set_user_password(missing, None).await,
        check,
        "setting the password of an unknown user",
    );
    not_found(
        store.user_password_hash(missing).await,
        check,
        "the password hash of an unknown user",
    );
}

/// API tokens: looked up by hash, listed per user, hashes unique, deleted alone or with their
/// user, unknown ids refused.
pub async fn api_tokens<S>(store: &S)
where
    S: AuthStore + ?Sized,
{
    let check = "api_tokens";
    let u = ok(
        store
            .create_user(&new_user("conf-tok", Role::Operator, None))
            .await,
        check,
        "create user",
    );
    let other = ok(
        store
            .create_user(&new_user("conf-tok2", Role::Viewer, None))
            .await,
        check,
        "create other user",
    );
    let add = |user: UserId, name: &str, hash: &str| NewApiToken {
        user,
        name: name.into(),
        hash: hash.into(),
    };
    let t1 = ok(
        store.add_api_token(&add(u.id, "ci", "conf-hash-1")).await,
        check,
        "add token",
    );
    assert_eq!(
        (t1.user.as_str(), t1.name.as_str(), t1.last_used_at),
        ("conf-tok", "ci", None),
        "store conformance [{check}]: token fields"
    );
    let t2 = ok(
        store
            .add_api_token(&add(u.id, "laptop", "conf-hash-2"))
            .await,
        check,
        "add second token",
    );
    let t3 = ok(
        store
            .add_api_token(&add(other.id, "x", "conf-hash-3"))
            .await,
        check,
        "add other user's token",
    );
    already_exists(
        store
            .add_api_token(&add(other.id, "dup", "conf-hash-1"))
            .await,
        check,
        "a duplicate token hash",
    );
    not_found(
        store
            .add_api_token(&add(UserId(987_654), "x", "conf-hash-9"))
            .await,
        check,
        "a token for an unknown user",
    );
    let (who, tok) = ok(store.token_user("conf-hash-2").await, check, "token user")
        .expect("token found by hash");
    assert_eq!(who, u, "store conformance [{check}]: token's user");
    assert_eq!(tok, t2, "store conformance [{check}]: the token itself");
    assert_eq!(
        ok(
            store.token_user("conf-hash-none").await,
            check,
            "unknown hash"
        ),
        None,
        "store conformance [{check}]: an unknown hash is None"
    );
    ok(store.touch_api_token(t1.id, 4_242).await, check, "touch");
    let listed = ok(store.list_api_tokens(u.id).await, check, "list tokens");
    assert_eq!(
        listed.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![t1.id, t2.id],
        "store conformance [{check}]: a user's tokens, by id"
    );
    assert_eq!(
        listed[0].last_used_at,
        Some(4_242),
        "store conformance [{check}]: touched"
    );
    assert_eq!(
        ok(store.api_token(t3.id).await, check, "token by id"),
        Some(t3.clone()),
        "store conformance [{check}]: token by id"
    );
    ok(store.delete_api_token(t2.id).await, check, "delete token");
    assert_eq!(
        ok(
            store.token_user("conf-hash-2").await,
            check,
            "deleted token"
        ),
        None,
        "store conformance [{check}]: a deleted token no longer finds its user"
    );
    ok(store.delete_user(u.id).await, check, "delete user");
    assert_eq!(
        ok(store.token_user("conf-hash-1").await, check, "user's token"),
        None,
        "store conformance [{check}]: deleting a user deletes its tokens"
    );
    assert_eq!(
        ok(store.api_token(t1.id).await, check, "user's token by id"),
        None,
        "store conformance [{check}]: deleting a user deletes its tokens (by id)"
    );
    assert!(
        ok(
            store.token_user("conf-hash-3").await,
            check,
            "other's token"
        )
        .is_some(),
        "store conformance [{check}]: other users' tokens stay"
    );
    not_found(
        store.delete_api_token(t2.id).await,
        check,
        "deleting a token twice",
    );
    not_found(
        store.touch_api_token(t2.id, 1).await,
        check,
        "touching an unknown token",
    );
    not_found(
        store.list_api_tokens(u.id).await,
        check,
        "listing the tokens of an unknown user",
    );
}

fn new_user(name: &str, role: Role, password_hash: Option<&str>) -> NewUser {
    NewUser {
        name: name.into(),
        password_hash: password_hash.map(String::from),
        role,
    }
}
