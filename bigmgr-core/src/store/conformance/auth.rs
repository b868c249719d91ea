//! Conformance of [`AuthStore`]: users and API tokens.

use super::fixture::{already_exists, none, not_found, ok, refused};
use crate::Error;
use crate::auth::Role;
use crate::model::*;
use crate::store::AuthStore;

/// Runs the checks of users and API tokens.
pub async fn run<S: AuthStore + ?Sized>(store: &S) {
    checks!(store: users, api_tokens);
}

/// Users: created with their fields, names unique, role and password changes, delete, and
/// unknown ids refused.
pub async fn users<S: AuthStore + ?Sized>(store: &S) {
    const C: &str = "users";
    let u = ok(
        store
            .create_user(&new_user(
                "conf-ann",
                Role::Operator,
                Some("$argon2id$fake"),
            ))
            .await,
        C,
        "create user",
    );
    assert_eq!(
        (u.name.as_str(), u.role, u.has_password),
        ("conf-ann", Role::Operator, true),
        "store conformance [{C}]: created fields"
    );
    let v = ok(
        store
            .create_user(&new_user("conf-bob", Role::Viewer, None))
            .await,
        C,
        "create user without password",
    );
    assert!(!v.has_password, "store conformance [{C}]: no password");
    refused(
        store
            .create_user(&new_user("conf-ann", Role::Admin, None))
            .await,
        C,
        "a duplicate user name",
        "AlreadyExists of a user",
        |e| matches!(e, Error::AlreadyExists { kind: "user", .. }),
    );
    let got = ok(store.user_by_name("conf-ann").await, C, "user by name");
    assert_eq!(
        got.as_ref(),
        Some(&u),
        "store conformance [{C}]: user by name"
    );
    none(
        store.user_by_name("conf-nobody").await,
        C,
        "unknown name is None",
    );
    let all = ok(store.list_users().await, C, "list users");
    let pos = |id| all.iter().position(|x: &User| x.id == id);
    assert!(
        pos(u.id).is_some_and(|a| pos(v.id).is_some_and(|b| a < b)),
        "store conformance [{C}]: list holds both, by id"
    );
    assert_eq!(
        ok(store.user_password_hash(u.id).await, C, "hash").as_deref(),
        Some("$argon2id$fake"),
        "store conformance [{C}]: password hash kept"
    );
    ok(
        store.set_user_password(v.id, Some("$argon2id$other")).await,
        C,
        "set password",
    );
    ok(store.set_user_role(v.id, Role::Admin).await, C, "set role");
    let got = ok(store.user_by_name("conf-bob").await, C, "reload").expect("user exists");
    assert_eq!(
        (got.role, got.has_password),
        (Role::Admin, true),
        "store conformance [{C}]: role and password changed"
    );
    ok(
        store.set_user_password(v.id, None).await,
        C,
        "clear password",
    );
    none(store.user_password_hash(v.id).await, C, "password cleared");
    ok(store.delete_user(v.id).await, C, "delete user");
    none(
        store.user_by_name("conf-bob").await,
        C,
        "deleted user is gone",
    );
    let missing = UserId(987_654);
    not_found(store.delete_user(v.id).await, C, "deleting a user twice");
    not_found(
        store.set_user_role(missing, Role::Viewer).await,
        C,
        "setting the role of an unknown user",
    );
    not_found(
        store.set_user_password(missing, None).await,
        C,
        "setting the password of an unknown user",
    );
    not_found(
        store.user_password_hash(missing).await,
        C,
        "the password hash of an unknown user",
    );
}

/// API tokens: looked up by hash, listed per user, hashes unique, deleted alone or with their
/// user, unknown ids refused.
pub async fn api_tokens<S: AuthStore + ?Sized>(store: &S) {
    const C: &str = "api_tokens";
    let u = ok(
        store
            .create_user(&new_user("conf-tok", Role::Operator, None))
            .await,
        C,
        "create user",
    );
    let other = ok(
        store
            .create_user(&new_user("conf-tok2", Role::Viewer, None))
            .await,
        C,
        "create other user",
    );
    let add = |user: UserId, name: &'static str, hash: &'static str| async move {
        let token = NewApiToken {
            user,
            name: name.into(),
            hash: hash.into(),
        };
        store.add_api_token(&token).await
    };
    let t1 = ok(add(u.id, "ci", "conf-hash-1").await, C, "add token");
    assert_eq!(
        (t1.user.as_str(), t1.name.as_str(), t1.last_used_at),
        ("conf-tok", "ci", None),
        "store conformance [{C}]: token fields"
    );
    let t2 = ok(add(u.id, "laptop", "conf-hash-2").await, C, "add token");
    let t3 = ok(add(other.id, "x", "conf-hash-3").await, C, "add token");
    already_exists(
        add(other.id, "dup", "conf-hash-1").await,
        C,
        "a duplicate token hash",
    );
    not_found(
        add(UserId(987_654), "x", "conf-hash-9").await,
        C,
        "a token for an unknown user",
    );
    let (who, tok) =
        ok(store.token_user("conf-hash-2").await, C, "token user").expect("token found by hash");
    assert_eq!(who, u, "store conformance [{C}]: token's user");
    assert_eq!(tok, t2, "store conformance [{C}]: the token itself");
    none(
        store.token_user("conf-hash-none").await,
        C,
        "an unknown hash is None",
    );
    ok(store.touch_api_token(t1.id, 4_242).await, C, "touch");
    let listed = ok(store.list_api_tokens(u.id).await, C, "list tokens");
    assert_eq!(
        listed.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![t1.id, t2.id],
        "store conformance [{C}]: a user's tokens, by id"
    );
    assert_eq!(
        listed[0].last_used_at,
        Some(4_242),
        "store conformance [{C}]: touched"
    );
    assert_eq!(
        ok(store.api_token(t3.id).await, C, "token by id"),
        Some(t3.clone()),
        "store conformance [{C}]: token by id"
    );
    ok(store.delete_api_token(t2.id).await, C, "delete token");
    none(
        store.token_user("conf-hash-2").await,
        C,
        "a deleted token no longer finds its user",
    );
    ok(store.delete_user(u.id).await, C, "delete user");
    let rule = "deleting a user deletes its tokens";
    none(store.token_user("conf-hash-1").await, C, rule);
    none(store.api_token(t1.id).await, C, &format!("{rule} (by id)"));
    assert!(
        ok(store.token_user("conf-hash-3").await, C, "other's token").is_some(),
        "store conformance [{C}]: other users' tokens stay"
    );
    not_found(
        store.delete_api_token(t2.id).await,
        C,
        "deleting a token twice",
    );
    not_found(
        store.touch_api_token(t2.id, 1).await,
        C,
        "touching an unknown token",
    );
    not_found(
        store.list_api_tokens(u.id).await,
        C,
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
