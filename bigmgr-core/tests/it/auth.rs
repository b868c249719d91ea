//! Integration tests: security through the Manager — bootstrap admin and authenticate, role
//! refusals audited, users and tokens managed by admins, login with passwords, audit paging.

use crate::harness::*;
use bigmgr_core::Error;
use bigmgr_core::auth::{Action, Actor, Role};
use bigmgr_core::model::*;
use std::time::Duration;

const ADMIN_TOKEN: &str = "bmt_test-admin-token-0123456789";

/// A Manager on a fresh SQLite file with one host in cluster c1, and its bootstrapped admin.
async fn setup(tmp: &std::path::Path) -> (Harness, Actor) {
    write_a(tmp, "exit 0", "");
    let h = start(tmp, 1, true, Duration::from_secs(1)).await;
    h.mgr.bootstrap_admin(ADMIN_TOKEN).await.expect("bootstrap");
    let admin = h.mgr.authenticate(ADMIN_TOKEN).await.expect("admin token");
    (h, admin)
}

/// Creates user `name` as `admin`.
async fn user(h: &Harness, admin: &Actor, name: &str, password: Option<&str>, role: Role) {
    h.mgr
        .create_user(admin, name, password, role)
        .await
        .unwrap_or_else(|e| panic!("create user {name}: {e}"));
}

/// Events of the audit log, as (actor, action, target, outcome).
async fn audit_rows(h: &Harness, admin: &Actor) -> Vec<(String, String, String, Outcome)> {
    h.mgr
        .audit(admin, &AuditFilter::default())
        .await
        .expect("audit")
        .into_iter()
        .map(|e| (e.actor, e.action, e.target, e.outcome))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_admin_then_authenticate() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (h, admin) = setup(tmp.path()).await;
    assert_eq!(admin, Actor::new("admin", Role::Admin));
    // Idempotent: a restart with the same token changes nothing.
    h.mgr.bootstrap_admin(ADMIN_TOKEN).await.expect("again");
    let tokens = h.mgr.tokens(&admin, "admin").await.expect("tokens");
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(tokens[0].name, "bootstrap");
    assert!(
        tokens[0].last_used_at.is_some(),
        "authenticating notes the use"
    );
    // A second bootstrap token is added alongside; both authenticate.
    let other = "bmt_another-admin-token-98765";
    h.mgr.bootstrap_admin(other).await.expect("second token");
    assert_eq!(h.mgr.authenticate(other).await.expect("second"), admin);
    assert_eq!(
        h.mgr.tokens(&admin, "admin").await.expect("tokens").len(),
        2
    );
    // A weak token is refused.
    assert!(matches!(
        h.mgr.bootstrap_admin("short").await,
        Err(Error::Invalid(_))
    ));
    for bad in ["", "bmt_unknown", "Bearer x"] {
        let e = h.mgr.authenticate(bad).await.unwrap_err();
        assert!(
            matches!(&e, Error::Unauthenticated(m) if m.starts_with("missing or invalid API token")),
            "{bad:?}: {e}"
        );
    }
    // The store keeps no token in the clear.
    let (_, t) = h
        .store
        .token_user(&bigmgr_core::auth::token_hash(ADMIN_TOKEN))
        .await
        .expect("lookup")
        .expect("found by hash");
    assert_eq!(t.user, "admin");
    assert!(
        h.store
            .token_user(ADMIN_TOKEN)
            .await
            .expect("lookup")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_refused_submit_operator_may_submit() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (h, admin) = setup(tmp.path()).await;
    h.add("a", "a_server", &h.hosts).await;
    user(&h, &admin, "vic", None, Role::Viewer).await;
    user(&h, &admin, "olga", None, Role::Operator).await;
    let (_, vic_secret) = h.mgr.create_token(&admin, "vic", "t").await.expect("token");
    let (_, olga_secret) = h
        .mgr
        .create_token(&admin, "olga", "t")
        .await
        .expect("token");
    let vic = h.mgr.authenticate(&vic_secret).await.expect("vic");
    let olga = h.mgr.authenticate(&olga_secret).await.expect("olga");
    assert_eq!(vic.role, Role::Viewer);

    let e = h
        .mgr
        .authorize(&vic, Action::SubmitJob, "cluster c1")
        .await
        .unwrap_err();
    let Error::PermissionDenied(msg) = &e else {
        panic!("expected PermissionDenied, got {e:?}");
    };
    for part in ["'vic'", "viewer", "submit-job", "needs role operator"] {
        assert!(msg.contains(part), "{msg:?} lacks {part:?}");
    }
    h.mgr
        .authorize(&vic, Action::ReadAnything, "cluster c1")
        .await
        .expect("viewers read");

    let refused = h
        .mgr
        .audit(
            &admin,
            &AuditFilter {
                actor: Some("vic".into()),
                ..AuditFilter::default()
            },
        )
        .await
        .expect("audit");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(
        (
            refused[0].action.as_str(),
            refused[0].target.as_str(),
            refused[0].outcome
        ),
        ("submit-job", "cluster c1", Outcome::Refused)
    );
    assert!(
        refused[0].detail.contains("needs role operator"),
        "{refused:?}"
    );

    h.mgr
        .authorize(&olga, Action::SubmitJob, "cluster c1")
        .await
        .expect("operators submit");
    let job = h
        .submit("start", Target::Cluster, JobOptions::default())
        .await;
    assert_eq!(h.wait(job.id, 30).await.state, JobState::Succeeded);
    assert!(matches!(
        h.mgr.authorize(&olga, Action::ManageUsers, "users").await,
        Err(Error::PermissionDenied(_))
    ));
    // Non-admins neither list users nor read the audit log.
    assert!(matches!(
        h.mgr.users(&olga).await,
        Err(Error::PermissionDenied(_))
    ));
    assert!(matches!(
        h.mgr.audit(&vic, &AuditFilter::default()).await,
        Err(Error::PermissionDenied(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_manages_users_and_tokens() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (h, admin) = setup(tmp.path()).await;
    let bob = h
        .mgr
        .create_user(&admin, "bob", Some("bobs-password"), Role::Operator)
        .await
        .expect("bob");
    assert!(bob.has_password);
    let json = serde_json::to_string(&bob).expect("json");
    assert!(!json.contains("argon2"), "{json}");
    assert!(matches!(
        h.mgr.create_user(&admin, "bob", None, Role::Viewer).await,
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        h.mgr
            .create_user(&admin, "bad name", None, Role::Viewer)
            .await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        h.mgr
            .create_user(&admin, "shorty", Some("1234567"), Role::Viewer)
            .await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        h.mgr
            .create_user(&admin, "system", None, Role::Viewer)
            .await,
        Err(Error::Invalid(_))
    ));
    let names: Vec<String> = h
        .mgr
        .users(&admin)
        .await
        .expect("users")
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["admin", "bob"], "failed creations wrote nothing");

    // Tokens: admins for anyone, users for themselves only.
    let (t1, s1) = h.mgr.create_token(&admin, "bob", "ci").await.expect("t1");
    assert!(s1.starts_with("bmt_"));
    let bob_actor = h.mgr.authenticate(&s1).await.expect("bob");
    let (t2, s2) = h
        .mgr
        .create_token(&bob_actor, "bob", "laptop")
        .await
        .expect("own token");
    assert!(matches!(
        h.mgr.create_token(&bob_actor, "admin", "steal").await,
        Err(Error::PermissionDenied(_))
    ));
    let admin_tokens = h.mgr.tokens(&admin, "admin").await.expect("admin's tokens");
    assert!(matches!(
        h.mgr.delete_token(&bob_actor, admin_tokens[0].id).await,
        Err(Error::NotFound { .. })
    ));
    let ids: Vec<_> = h
        .mgr
        .tokens(&bob_actor, "bob")
        .await
        .expect("own tokens")
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, [t1.id, t2.id]);
    h.mgr
        .delete_token(&bob_actor, t2.id)
        .await
        .expect("delete own");
    let e = h.mgr.authenticate(&s2).await.unwrap_err();
    assert!(matches!(e, Error::Unauthenticated(_)), "{e}");
    h.mgr
        .authenticate(&s1)
        .await
        .expect("the other token still works");
    h.mgr
        .delete_token(&admin, t1.id)
        .await
        .expect("admin deletes");
    assert!(h.mgr.authenticate(&s1).await.is_err());

    // Deleting a user deletes its tokens.
    let (_, s3) = h.mgr.create_token(&admin, "bob", "ci").await.expect("t3");
    h.mgr.delete_user(&admin, "bob").await.expect("delete bob");
    assert!(matches!(
        h.mgr.authenticate(&s3).await,
        Err(Error::Unauthenticated(_))
    ));
    assert!(matches!(
        h.mgr.delete_user(&admin, "bob").await,
        Err(Error::NotFound { .. })
    ));

    // Every change above is audited with its outcome.
    let rows = audit_rows(&h, &admin).await;
    let assert_audited = |actor: &str, action: &str, target: &str, outcome: Outcome| {
        let row = (actor.into(), action.into(), target.into(), outcome);
        assert!(rows.contains(&row), "no {row:?} in {rows:#?}");
    };
    assert_audited("admin", "manage-users", "user bob", Outcome::Ok);
    assert_audited("admin", "manage-users", "user bob", Outcome::Failed);
    assert_audited("bob", "manage-own-account", "user bob", Outcome::Ok);
    assert_audited("bob", "manage-users", "user admin", Outcome::Refused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_admin_stays() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (h, admin) = setup(tmp.path()).await;
    let e = h.mgr.delete_user(&admin, "admin").await.unwrap_err();
    assert!(
        matches!(&e, Error::Conflict(m) if m.contains("last admin")),
        "{e}"
    );
    assert!(matches!(
        h.mgr.set_role(&admin, "admin", Role::Viewer).await,
        Err(Error::Conflict(_))
    ));
    user(&h, &admin, "root2", None, Role::Admin).await;
    h.mgr
        .delete_user(&admin, "root2")
        .await
        .expect("not the last");
    user(&h, &admin, "root3", None, Role::Operator).await;
    h.mgr
        .set_role(&admin, "root3", Role::Admin)
        .await
        .expect("promote");
    h.mgr
        .delete_user(&admin, "admin")
        .await
        .expect("another admin remains");
    assert!(h.mgr.authenticate(ADMIN_TOKEN).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_password() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (h, admin) = setup(tmp.path()).await;
    user(&h, &admin, "carol", Some("carols-secret"), Role::Viewer).await;
    user(&h, &admin, "dave", None, Role::Viewer).await;
    let (token, secret) = h.mgr.login("carol", "carols-secret").await.expect("login");
    assert_eq!(
        (token.user.as_str(), token.name.as_str()),
        ("carol", "login")
    );
    assert_eq!(
        h.mgr.authenticate(&secret).await.expect("token works"),
        Actor::new("carol", Role::Viewer)
    );
    let wrong = h.mgr.login("carol", "not-carols").await.unwrap_err();
    let unknown = h.mgr.login("nobody", "carols-secret").await.unwrap_err();
    let no_password = h.mgr.login("dave", "anything-at-all").await.unwrap_err();
    assert!(matches!(wrong, Error::Unauthenticated(_)), "{wrong}");
    assert_eq!(
        wrong.to_string(),
        unknown.to_string(),
        "no user enumeration"
    );
    assert_eq!(wrong.to_string(), no_password.to_string());
    assert!(h.mgr.login("bad name!", "x").await.is_err());

    // Changing the password: the old one stops working.
    let carol = Actor::new("carol", Role::Viewer);
    h.mgr
        .set_password(&carol, "carol", "a-new-secret")
        .await
        .expect("own password");
    assert!(h.mgr.login("carol", "carols-secret").await.is_err());
    h.mgr.login("carol", "a-new-secret").await.expect("new one");
    assert!(matches!(
        h.mgr.set_password(&carol, "dave", "daves-new-pw").await,
        Err(Error::PermissionDenied(_))
    ));

    let rows = audit_rows(&h, &admin).await;
    let logins: Vec<_> = rows
        .iter()
        .filter(|r| r.1 == "login")
        .map(|r| (r.0.as_str(), r.3))
        .collect();
    assert_eq!(
        logins,
        [
            ("carol", Outcome::Ok),
            ("carol", Outcome::Refused),
            ("nobody", Outcome::Refused),
            ("dave", Outcome::Refused),
            ("(invalid name)", Outcome::Refused),
            ("carol", Outcome::Refused),
            ("carol", Outcome::Ok),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_pages_by_cursor() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (h, admin) = setup(tmp.path()).await;
    for i in 0..10 {
        h.mgr
            .record(
                &admin,
                Action::CreateCluster,
                &format!("cluster k{i}"),
                Outcome::Ok,
                "",
            )
            .await;
    }
    let all = h
        .mgr
        .audit(&admin, &AuditFilter::default())
        .await
        .expect("all");
    assert!(all.len() >= 10, "{all:?}");
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "ascending ids");
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = h
            .mgr
            .audit(
                &admin,
                &AuditFilter {
                    after,
                    limit: Some(3),
                    actor: None,
                },
            )
            .await
            .expect("page");
        let Some(last) = page.last() else { break };
        assert!(page.len() <= 3);
        after = Some(last.id);
        paged.extend(page);
    }
    assert_eq!(paged, all, "pages join up to the whole log");
    let created: Vec<_> = all
        .iter()
        .filter(|e| e.action == "create-cluster")
        .map(|e| e.target.as_str())
        .collect();
    assert_eq!(created.len(), 10);
    assert_eq!(created[0], "cluster k0");
}
