//! Cluster specs on a Manager with in-process agents running the demo stack's real daemons:
//! plan, apply, apply again (nothing), an edited value and placement, and a bad spec that
//! changes nothing.

use crate::harness::{self, Harness};
use bigmgr_core::Error;
use bigmgr_core::auth::{Actor, Role};
use bigmgr_core::model::{JobState, Target};
use bigmgr_core::request::SpecBody;
use std::time::Duration;

const SPEC: &str = r#"
cluster = "c1"

[services.hello]
stack = "demo"
service = "hello"
placement = { hello_server = ["h1", "h2"] }
configs = { "hello.conf" = { greeting = "hi from the spec" } }

[services.greeter]
stack = "demo"
service = "greeter"
placement = { greeter_server = ["h1"] }
"#;

/// The request for `spec`, without secrets.
fn body(spec: &str, prune: bool) -> SpecBody {
    SpecBody {
        spec: spec.to_string(),
        prune,
        ..SpecBody::default()
    }
}

async fn harness(dir: &std::path::Path) -> Harness {
    bigmgr_test_support::copy_dir(
        &bigmgr_test_support::stacks_dir().join("demo"),
        &dir.join("stacks").join("demo"),
    );
    harness::start(dir, 2, true, Duration::from_secs(5)).await
}

/// Services, units and config versions of c1.
async fn counts(h: &Harness) -> (usize, usize, u32) {
    let c = h.mgr.cluster("c1").await.unwrap();
    let services = h.store.list_services(c.id).await.unwrap();
    (
        services.len(),
        h.store.list_units(c.id).await.unwrap().len(),
        services.iter().map(|s| s.config_version).sum(),
    )
}

#[tokio::test]
async fn a_spec_plans_applies_and_then_plans_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path()).await;
    let op = h.mgr.acting(Actor::new("alice", Role::Admin));

    // An operator may not add services: refused, nothing changed.
    let operator = h.mgr.acting(Actor::new("bob", Role::Operator));
    let before = counts(&h).await;
    assert!(matches!(
        operator.apply_spec("c1", &body(SPEC, false)).await,
        Err(Error::PermissionDenied(_))
    ));
    assert_eq!(counts(&h).await, before);

    let plan = op.plan_spec("c1", &body(SPEC, false)).await.unwrap();
    assert_eq!(plan.services_to_add, ["greeter", "hello"]);
    assert_eq!(plan.units_to_add.len(), 3);
    assert!(!plan.create_cluster);

    let applied = op.apply_spec("c1", &body(SPEC, false)).await.unwrap();
    assert_eq!(applied.jobs.len(), 1, "one deploy of every new unit");
    let job = h.wait(applied.jobs[0].id, 60).await;
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    let heartbeat =
        harness::agent_root(dir.path(), "h2").join("units/c1/hello/hello_server/heartbeat");
    harness::until(20, "h2's hello heartbeat with the spec's greeting", || {
        let p = heartbeat.clone();
        async move { std::fs::read_to_string(&p).is_ok_and(|t| t.contains("hi from the spec")) }
    })
    .await;

    // The same spec again: nothing to do, no job.
    let again = op.plan_spec("c1", &body(SPEC, false)).await.unwrap();
    assert!(again.is_empty(), "{again:#?}");
    let before = counts(&h).await;
    let applied = op.apply_spec("c1", &body(SPEC, false)).await.unwrap();
    assert!(applied.jobs.is_empty() && applied.plan.is_empty());
    assert_eq!(counts(&h).await, before);

    // One value and one placement edited: exactly those, then a reconfigure.
    let edited = SPEC.replace("hi from the spec", "edited").replace(
        r#"greeter_server = ["h1"]"#,
        r#"greeter_server = ["h1", "h2"]"#,
    );
    let plan = op.plan_spec("c1", &body(&edited, false)).await.unwrap();
    assert_eq!(plan.configs.len(), 1, "{plan:#?}");
    assert_eq!(plan.configs[0].property, "greeting");
    assert_eq!(plan.units_to_add.len(), 1);
    assert_eq!(plan.units_to_add[0].host, "h2");
    let applied = op.apply_spec("c1", &body(&edited, false)).await.unwrap();
    let commands: Vec<&str> = applied.jobs.iter().map(|j| j.command.as_str()).collect();
    assert_eq!(commands, ["deploy", "reconfigure"]);
    for j in &applied.jobs {
        assert_eq!(h.wait(j.id, 60).await.state, JobState::Succeeded);
    }
    harness::until(20, "h2's hello heartbeat with the edited greeting", || {
        let p = heartbeat.clone();
        async move { std::fs::read_to_string(&p).is_ok_and(|t| t.contains("edited")) }
    })
    .await;
    assert!(
        op.plan_spec("c1", &body(&edited, false))
            .await
            .unwrap()
            .is_empty()
    );

    // A bad spec: every problem with its line, and nothing changes.
    let before = counts(&h).await;
    let bad = edited
        .replace(r#"greeting = "edited""#, "greeting = 3")
        .replace(r#"service = "greeter""#, r#"service = "greeterx""#);
    match op.apply_spec("c1", &body(&bad, false)).await {
        Err(Error::Spec(problems)) => {
            assert_eq!(problems.len(), 2, "{problems:?}");
            assert!(problems.iter().all(|p| p.line > 0), "{problems:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(counts(&h).await, before);

    // Prune: a relation added, then a spec without greeter (and so its relation) and with
    // hello on h2 only. Without prune all of that is kept; with it, the three units are
    // stopped by one job, then the relation, the unit and the service go.
    let related =
        format!("{edited}\n[[relations]]\nrequirer = \"greeter\"\nprovider = \"hello\"\n");
    let applied = op.apply_spec("c1", &body(&related, false)).await.unwrap();
    assert_eq!(applied.plan.relations_to_add.len(), 1, "{applied:#?}");
    settle(&h).await;
    let pruned = SPEC
        .replace(r#"hello_server = ["h1", "h2"]"#, r#"hello_server = ["h2"]"#)
        .replace("hi from the spec", "edited");
    let pruned = &pruned[..pruned.find("[services.greeter]").unwrap()];
    let kept = op.plan_spec("c1", &body(pruned, false)).await.unwrap();
    assert!(kept.is_empty(), "nothing goes without prune: {kept:#?}");
    assert_eq!(
        kept.kept,
        [
            "unit hello_server of hello on h1",
            "service greeter",
            "relation greeter:hello -> hello:hello"
        ]
    );
    let plan = op.plan_spec("c1", &body(pruned, true)).await.unwrap();
    assert_eq!(plan.services_to_remove, ["greeter"]);
    assert_eq!(plan.units_to_remove.len(), 3, "{plan:#?}");
    assert_eq!(plan.relations_to_remove.len(), 1);
    assert_eq!(plan.jobs.len(), 2, "a stop per service: {plan:#?}");
    assert!(plan.jobs.iter().all(|j| j.command == "stop"));
    let h1_pid: u32 = std::fs::read_to_string(
        harness::agent_root(dir.path(), "h1").join("units/c1/hello/hello_server/hello.pid"),
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    assert!(harness::alive(h1_pid));
    let applied = op.apply_spec("c1", &body(pruned, true)).await.unwrap();
    assert_eq!(applied.jobs.len(), 1, "{applied:#?}");
    assert_eq!(applied.jobs[0].command, "stop");
    assert_eq!(applied.jobs[0].state, JobState::Succeeded);
    let detail = h.mgr.job(applied.jobs[0].id).await.unwrap();
    assert_eq!(detail.tasks.len(), 3, "{detail:#?}");
    assert!(!harness::alive(h1_pid), "hello on h1 is stopped");
    let c = h.mgr.cluster("c1").await.unwrap();
    let units = h.store.list_units(c.id).await.unwrap();
    assert_eq!(units.len(), 1, "{units:?}");
    assert_eq!(h.store.list_services(c.id).await.unwrap().len(), 1);
    assert!(h.store.list_relations(c.id).await.unwrap().is_empty());
    assert!(
        op.plan_spec("c1", &body(pruned, true))
            .await
            .unwrap()
            .is_empty()
    );
    settle(&h).await;

    // The daemons go with their units.
    let stop = h.run("stop", Target::Cluster).await;
    assert_eq!(h.wait(stop.id, 60).await.state, JobState::Succeeded);
}

/// Waits until no job of the harness is unfinished (relation changes submit their own).
async fn settle(h: &Harness) {
    harness::until(60, "every job finished", || async {
        let jobs = h.mgr.jobs(&Default::default()).await.unwrap();
        jobs.iter().all(|j| j.state.is_final())
    })
    .await;
}

/// An empty Manager on its own store with the same stacks and no agents.
async fn empty_manager(dir: &std::path::Path) -> bigmgr_core::manager::Manager {
    let store = bigmgr_core::store::SqlStore::open_path(&dir.join("other.db"))
        .await
        .unwrap();
    bigmgr_core::manager::Manager::builder()
        .store(store)
        .transport(bigmgr_core::agent::LocalTransport::new())
        .stacks(bigmgr_core::stack::DirStackProvider::new([
            dir.join("stacks")
        ]))
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_exported_spec_rebuilds_the_same_cluster_on_an_empty_server() {
    let dir = tempfile::tempdir().unwrap();
    bigmgr_test_support::copy_dir(
        &bigmgr_test_support::stacks_dir().join("extra"),
        &dir.path().join("stacks").join("extra"),
    );
    let h = harness(dir.path()).await;
    let op = h.mgr.acting(Actor::new("alice", Role::Admin));
    let spec = format!(
        "{SPEC}\n[services.hello.host_overrides.h2.\"hello.conf\"]\ngreeting = \"h2's own\"\n\n\
         [services.hello.policy]\nbatch_size = 2\nhealing = {{ restart = true, grace = \"1m\" }}\n\n\
         [[relations]]\nrequirer = \"greeter\"\nprovider = \"hello\"\n"
    );
    let applied = op.apply_spec("c1", &body(&spec, false)).await.unwrap();
    for j in &applied.jobs {
        assert_eq!(h.wait(j.id, 60).await.state, JobState::Succeeded);
    }
    settle(&h).await;
    // A service with a secret, given by reference (not deployed: only its model matters).
    let with_secret = format!(
        "{spec}\n[services.cache]\nstack = \"extra\"\nservice = \"redis\"\n\
         placement = {{ redis_primary = [\"h1\"] }}\n\
         configs = {{ \"redis.conf\" = {{ requirepass = {{ env = \"CACHE_PASS\" }} }} }}\n"
    );
    match op.plan_spec("c1", &body(&with_secret, false)).await {
        Err(Error::Spec(problems)) => {
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert_eq!(
                problems[0].line,
                with_secret.lines().count(),
                "{problems:?}"
            );
            assert!(
                problems[0].message.contains("env:CACHE_PASS"),
                "{problems:?}"
            );
        }
        other => panic!("a reference without its value: {other:?}"),
    }
    // With another mistake too, both are listed at once.
    let two = with_secret.replace(r#"greeting = "hi from the spec""#, "greeting = 7");
    match op.plan_spec("c1", &body(&two, false)).await {
        Err(Error::Spec(problems)) => assert_eq!(problems.len(), 2, "{problems:?}"),
        other => panic!("two mistakes: {other:?}"),
    }
    let mut secret = body(&with_secret, false);
    secret.secrets = [("env:CACHE_PASS".to_string(), "s3cret \"q\"".to_string())].into();
    op.add_service(
        "c1",
        bigmgr_core::manager::AddService {
            name: "cache".into(),
            stack: "extra".into(),
            version: None,
            service: "redis".into(),
            placement: [("redis_primary".to_string(), vec!["h1".to_string()].into())].into(),
            configs: [(
                "redis.conf".to_string(),
                [("requirepass".to_string(), "s3cret \"q\"".into())].into(),
            )]
            .into(),
            host_overrides: Default::default(),
        },
    )
    .await
    .unwrap();
    assert!(
        op.plan_spec("c1", &secret).await.unwrap().is_empty(),
        "the spec with its secret's value is what the cluster has"
    );

    let exported = h.mgr.export_spec("c1").await.unwrap();
    assert!(!exported.spec.contains("s3cret"), "{}", exported.spec);
    assert_eq!(
        exported.references,
        ["env:BIGMGR_CACHE_REDIS_CONF_REQUIREPASS"]
    );
    // The export plans nothing on its own cluster…
    let mut again = body(&exported.spec, true);
    again.secrets = [(exported.references[0].clone(), "s3cret \"q\"".to_string())].into();
    let plan = op.plan_spec("c1", &again).await.unwrap();
    assert!(plan.is_empty(), "{plan:#?}\n{}", exported.spec);

    // …and rebuilds the same cluster on an empty server: same hosts and addresses, services
    // and versions, placement, both config layers, the secret, and the relation.
    let other = empty_manager(dir.path()).await;
    let op2 = other.acting(Actor::new("alice", Role::Admin));
    let rebuilt = op2.apply_spec("c1", &again).await.unwrap();
    assert!(rebuilt.plan.create_cluster && rebuilt.plan.hosts_to_add.len() == 2);
    assert_eq!(other.export_spec("c1").await.unwrap(), exported);
    let services = other.services("c1").await.unwrap();
    let cache = services.iter().find(|s| s.name == "cache").unwrap();
    assert_eq!(cache.configs["redis.conf"]["requirepass"], "s3cret \"q\"");
    let healing = other.healing("c1", "hello").await.unwrap();
    assert_eq!((healing.restart, healing.grace.as_str()), (true, "1m"));
    let hosts = |list: Vec<bigmgr_core::model::Host>| {
        let mut hosts: Vec<(String, String)> =
            list.into_iter().map(|h| (h.name, h.address)).collect();
        hosts.sort();
        hosts
    };
    assert_eq!(
        hosts(h.mgr.hosts("c1").await.unwrap()),
        hosts(other.hosts("c1").await.unwrap())
    );
    other.shutdown().await;

    let stop = h.run("stop", Target::Cluster).await;
    assert_eq!(h.wait(stop.id, 60).await.state, JobState::Succeeded);
}
