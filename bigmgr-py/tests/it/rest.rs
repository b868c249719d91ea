//! The REST backend against a real `bigmgr serve` with no agents: every operation, the error
//! kinds, paging.

use crate::{rest, server};
use bigmgr_core::manager::{AddService, ConfigChange, Relate};
use bigmgr_core::model::{JobOptions, JobRequest, Target};
use bigmgr_core::request::{AddUnitsBody, ScalePipeline};
use bigmgr_core::view::RelationView;
use bigmgr_py::backend::{Backend, JobAction};
use bigmgr_py::error::Error;
use bigmgr_py::rest::Rest;
use bigmgr_test_support::{ServerProc, assert_contains, free_port, wait_until};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Awaits `$call`, which must fail with `Error::$kind`; answers the error.
macro_rules! refused {
    ($call:expr, $kind:ident) => {{
        let e = $call.await.unwrap_err();
        assert!(matches!(e, Error::$kind(_)), "{e:?}");
        e
    }};
}

/// A relation of `requirer` to `provider`.
fn relation(requirer: &str, provider: &str, auto_reconfigure: bool) -> Relate {
    Relate {
        requirer: requirer.into(),
        provider: provider.into(),
        auto_reconfigure,
    }
}

/// Service `name` of the demo stack, its one server component on `hosts`.
fn demo(name: &str, service: &str, hosts: &[&str]) -> AddService {
    let mut placement = BTreeMap::new();
    placement.insert(
        format!("{service}_server"),
        hosts.iter().map(|h| h.to_string()).collect(),
    );
    AddService {
        name: name.into(),
        stack: "demo".into(),
        version: None,
        service: service.into(),
        placement,
        configs: Default::default(),
        host_overrides: Default::default(),
    }
}

/// A server with cluster `cluster`, host h1 (127.0.0.2) and `more` hosts, and the demo
/// `hello` on h1; and a backend of it.
async fn hello_on_h1(cluster: &str, more: &[(&str, &str)]) -> (ServerProc, Arc<dyn Backend>) {
    let server = server();
    let rest = rest(&server);
    rest.create_cluster(cluster).await.unwrap();
    for (name, address) in [("h1", "127.0.0.2")].iter().chain(more) {
        rest.add_host(cluster, name, address).await.unwrap();
    }
    let hello = demo("hello", "hello", &["h1"]);
    rest.add_service(cluster, hello).await.unwrap();
    (server, rest)
}

/// Adds the demo `greeter` on h2 and relates it to `hello` (no automatic reconfigure).
async fn greeter_on_h2_related(rest: &dyn Backend, cluster: &str) -> RelationView {
    let greeter = demo("greeter", "greeter", &["h2"]);
    rest.add_service(cluster, greeter).await.unwrap();
    let rel = relation("greeter", "hello", false);
    rest.relate(cluster, rel).await.unwrap()
}

/// A merge patch of hello.conf.
fn hello_conf(props: Value, message: &str) -> ConfigChange {
    let props: BTreeMap<String, Value> = serde_json::from_value(props).unwrap();
    let mut configs = BTreeMap::new();
    configs.insert("hello.conf".to_string(), props);
    ConfigChange {
        configs,
        hosts: BTreeMap::new(),
        message: message.into(),
    }
}

fn job(cluster: &str, command: &str, target: Target) -> JobRequest {
    JobRequest {
        cluster: cluster.into(),
        target,
        command: command.into(),
        options: JobOptions::default(),
    }
}

#[tokio::test]
async fn clusters_hosts_services_configs_and_relations() {
    let server = server();
    let rest = rest(&server);

    let c = rest.create_cluster("c").await.unwrap();
    assert_eq!(c.name, "c");
    assert!(c.created_at > 0);
    assert_eq!(rest.cluster("c").await.unwrap(), c);
    assert_eq!(rest.clusters().await.unwrap(), vec![c.clone()]);
    let token = rest.create_join_token("c").await.unwrap();
    assert!(token.starts_with("bmj_"), "{token}");

    let h1 = rest.add_host("c", "h1", "127.0.0.2").await.unwrap();
    assert_eq!((h1.name.as_str(), h1.address.as_str()), ("h1", "127.0.0.2"));
    assert_eq!(h1.last_heartbeat, None);
    rest.add_host("c", "h2", "127.0.0.3").await.unwrap();
    let hosts = rest.hosts("c").await.unwrap();
    let names: Vec<_> = hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["h1", "h2"]);
    assert!(hosts.iter().all(|h| h.state == h1.state), "{hosts:?}");

    let stacks = rest.stacks().await.unwrap();
    let d = stacks
        .iter()
        .find(|s| s.name == "demo" && s.version == "1.0.0")
        .unwrap_or_else(|| panic!("no demo 1.0.0 in {stacks:?}"));
    assert!(d.services.iter().any(|s| s.name == "hello"), "{d:?}");
    assert!(d.services.iter().any(|s| s.name == "greeter"), "{d:?}");

    let hello = rest
        .add_service("c", demo("hello", "hello", &["h1"]))
        .await
        .unwrap();
    assert_eq!(
        (
            hello.name.as_str(),
            hello.stack.as_str(),
            hello.service.as_str()
        ),
        ("hello", "demo", "hello")
    );
    assert_eq!(hello.stack_version, "1.0.0");
    assert_eq!(hello.config_version, 1);
    assert_eq!(hello.units.len(), 1);
    let u = &hello.units[0];
    assert_eq!(
        (u.component.as_str(), u.host.as_str()),
        ("hello_server", "h1")
    );
    assert_eq!(u.state.as_str(), "NEW");
    assert_eq!(rest.service("c", "hello").await.unwrap(), hello);
    assert_eq!(rest.services("c").await.unwrap(), vec![hello.clone()]);

    // Configs: a change, the versions, a rollback.
    let v2 = rest
        .update_configs(
            "c",
            "hello",
            hello_conf(json!({"greeting": "hi"}), "friendlier"),
        )
        .await
        .unwrap();
    assert_eq!((v2.version, v2.service.as_str()), (2, "hello"));
    assert_eq!(v2.message, "friendlier");
    assert_eq!(v2.configs["hello.conf"]["greeting"], "hi");
    assert_eq!(rest.service("c", "hello").await.unwrap().config_version, 2);
    let versions = rest.config_versions("c", "hello").await.unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(versions[1], v2);
    let v3 = rest
        .rollback_configs("c", "hello", 1, Some("back".into()))
        .await
        .unwrap();
    assert_eq!(v3.version, 3);
    assert_eq!(v3.configs, versions[0].configs);
    let v4 = rest.rollback_configs("c", "hello", 2, None).await.unwrap();
    assert_eq!(v4.version, 4);
    assert_eq!(v4.configs["hello.conf"]["greeting"], "hi");
    // A value of the wrong type, and an unknown property, are refused.
    let e = refused!(
        rest.update_configs("c", "hello", hello_conf(json!({"interval": "often"}), "")),
        InvalidInput
    );
    assert_contains(e.to_string(), "interval");
    refused!(
        rest.update_configs("c", "hello", hello_conf(json!({"colour": "red"}), "")),
        InvalidInput
    );
    refused!(rest.rollback_configs("c", "hello", 99, None), NotFound);
    // Units never configured: nothing to restart is not an error.
    rest.restart_stale("c", Some("hello")).await.unwrap();
    rest.restart_stale("c", None).await.unwrap();
    refused!(rest.restart_stale("c", Some("nope")), NotFound);

    // Relations: hello provides `hello`, greeter requires it.
    refused!(
        rest.relate("c", relation("hello", "hello", true)),
        InvalidInput
    );
    refused!(rest.relate("c", relation("ghost", "hello", true)), NotFound);
    let rel = greeter_on_h2_related(rest.as_ref(), "c").await;
    assert_eq!(
        (
            rel.requirer.as_str(),
            rel.provider.as_str(),
            rel.interface.as_str()
        ),
        ("greeter", "hello", "hello")
    );
    assert!(!rel.auto_reconfigure);
    assert_eq!(rest.relations("c").await.unwrap(), vec![rel.clone()]);
    refused!(
        rest.relate("c", relation("greeter", "hello", true)),
        Conflict
    );
    rest.unrelate("c", rel.id.0).await.unwrap();
    assert!(rest.relations("c").await.unwrap().is_empty());
    refused!(rest.unrelate("c", rel.id.0), NotFound);

    // Removing: the services, then (no jobs) the hosts are still there, so the cluster stays.
    rest.remove_service("c", "greeter").await.unwrap();
    rest.remove_service("c", "hello").await.unwrap();
    refused!(rest.service("c", "hello"), NotFound);
    assert!(rest.services("c").await.unwrap().is_empty());
    refused!(rest.delete_cluster("c"), Conflict);
    rest.create_cluster("empty").await.unwrap();
    rest.delete_cluster("empty").await.unwrap();
    refused!(rest.cluster("empty"), NotFound);
}

#[tokio::test]
async fn diffs_snapshots_units_hosts_and_relation_events() {
    let (_server, rest) = hello_on_h1("d", &[("h2", "127.0.0.3"), ("spare", "127.0.0.4")]).await;
    // The service view's units carry their service's name too.
    let hello = rest.service("d", "hello").await.unwrap();
    assert_eq!(hello.name, "hello");

    // One version, and a diff between two.
    rest.update_configs("d", "hello", hello_conf(json!({"greeting": "hi"}), "v2"))
        .await
        .unwrap();
    let v1 = rest.config_version("d", "hello", 1).await.unwrap();
    assert_eq!((v1.version, v1.service.as_str()), (1, "hello"));
    let v2 = rest.config_version("d", "hello", 2).await.unwrap();
    assert_eq!(v2.message, "v2");
    refused!(rest.config_version("d", "hello", 9), NotFound);
    let diff = rest.diff_configs("d", "hello", 1, 2).await.unwrap();
    assert_eq!(diff.len(), 1, "{diff:?}");
    let d = &diff[0];
    assert_eq!(
        (
            d.config_type.as_str(),
            d.property.as_str(),
            d.host.as_deref()
        ),
        ("hello.conf", "greeting", None)
    );
    assert_eq!((d.from.clone(), d.to.clone()), (None, Some(json!("hi"))));
    let back = rest.diff_configs("d", "hello", 2, 1).await.unwrap();
    assert_eq!(
        (back[0].from.clone(), back[0].to.clone()),
        (Some(json!("hi")), None)
    );
    assert!(
        rest.diff_configs("d", "hello", 2, 2)
            .await
            .unwrap()
            .is_empty()
    );
    refused!(rest.diff_configs("d", "hello", 1, 9), NotFound);

    // Snapshot at v2, a change to v3, restore → v4 equal to v2.
    let snap = rest.create_snapshot("d", "before", "safe").await.unwrap();
    assert_eq!(
        (snap.name.as_str(), snap.message.as_str()),
        ("before", "safe")
    );
    assert_eq!(snap.versions.get("hello"), Some(&2));
    assert!(!snap.author.is_empty() && snap.created_at > 0, "{snap:?}");
    assert_eq!(rest.snapshots("d").await.unwrap(), vec![snap.clone()]);
    refused!(rest.create_snapshot("d", "before", ""), Conflict);
    refused!(rest.create_snapshot("d", "not a name", ""), InvalidInput);
    rest.update_configs("d", "hello", hello_conf(json!({"greeting": "yo"}), "v3"))
        .await
        .unwrap();
    let restored = rest.restore_snapshot("d", "before").await.unwrap();
    assert_eq!(restored.len(), 1, "{restored:?}");
    assert_eq!(
        (restored[0].service.as_str(), restored[0].version),
        ("hello", 4)
    );
    assert_eq!(restored[0].configs["hello.conf"]["greeting"], "hi");
    // Nothing changed since: nothing to restore.
    assert!(
        rest.restore_snapshot("d", "before")
            .await
            .unwrap()
            .is_empty()
    );
    refused!(rest.restore_snapshot("d", "nope"), NotFound);

    // Units: add one on h2, list, remove it.
    let on = |component: &str| AddUnitsBody {
        component: component.into(),
        hosts: vec!["h2".into()],
    };
    let added = rest
        .add_units("d", "hello", &on("hello_server"))
        .await
        .unwrap();
    assert_eq!(added.len(), 1, "{added:?}");
    let u = &added[0];
    assert_eq!(
        (
            u.service.as_str(),
            u.component.as_str(),
            u.host.as_str(),
            u.state.as_str()
        ),
        ("hello", "hello_server", "h2", "NEW")
    );
    let units = rest.units("d").await.unwrap();
    let mut placed: Vec<_> = units.iter().map(|u| u.host.as_str()).collect();
    placed.sort();
    assert_eq!(placed, ["h1", "h2"]);
    refused!(rest.add_units("d", "hello", &on("hello_server")), Conflict);
    refused!(rest.add_units("d", "hello", &on("nope")), NotFound);
    rest.remove_unit("d", u.id.0).await.unwrap();
    assert_eq!(rest.units("d").await.unwrap().len(), 1);
    refused!(rest.remove_unit("d", u.id.0), NotFound);

    // Hosts: a host without units goes; one with units stays.
    rest.remove_host("d", "spare").await.unwrap();
    let names: Vec<_> = rest
        .hosts("d")
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.name)
        .collect();
    assert_eq!(names, ["h1", "h2"]);
    refused!(rest.remove_host("d", "spare"), NotFound);
    refused!(rest.remove_host("d", "h1"), Conflict);

    // Relation events: joined on relate, broken on unrelate, kept after.
    let rel = greeter_on_h2_related(rest.as_ref(), "d").await;
    let events = rest.relation_events("d", rel.id.0).await.unwrap();
    assert!(!events.is_empty(), "no events after relate");
    assert!(events.iter().all(|e| e.kind == "joined"), "{events:?}");
    assert!(events.iter().any(|e| e.service == "greeter"), "{events:?}");
    assert!(events.iter().all(|e| e.job.is_none()), "{events:?}");
    rest.unrelate("d", rel.id.0).await.unwrap();
    let after = rest.relation_events("d", rel.id.0).await.unwrap();
    assert!(after.len() > events.len(), "{after:?}");
    assert!(after.iter().any(|e| e.kind == "broken"), "{after:?}");
    refused!(rest.relation_events("d", 999_999), NotFound);
}

#[tokio::test]
async fn a_job_for_a_host_without_an_agent_is_canceled() {
    let (_server, rest) = hello_on_h1("c", &[]).await;

    let submitted = rest
        .submit(job("c", "deploy", Target::Hosts(vec!["h1".into()])))
        .await
        .unwrap();
    assert_eq!(
        (submitted.cluster.as_str(), submitted.command.as_str()),
        ("c", "deploy")
    );
    assert!(!submitted.state.is_final(), "{submitted:?}");
    let detail = rest.job(submitted.id.0).await.unwrap();
    assert!(!detail.stages.is_empty(), "{detail:?}");
    let names: Vec<_> = detail.stages.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.iter().any(|n| n.contains("hello/hello_server")),
        "{names:?}"
    );
    for s in &detail.stages {
        assert_eq!(s.tasks.len(), 1, "{s:?}");
        assert_eq!(s.tasks[0].host, "h1");
    }
    let second = rest
        .submit(job(
            "c",
            "status",
            Target::Component {
                service: "hello".into(),
                component: "hello_server".into(),
            },
        ))
        .await
        .unwrap();
    let jobs = rest.jobs("c").await.unwrap();
    assert_eq!(
        jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        [submitted.id, second.id],
        "ascending, as the server lists them (the Python class shows them newest first)"
    );

    let canceled = rest
        .control(submitted.id.0, JobAction::Cancel)
        .await
        .unwrap();
    assert_eq!(canceled.id, submitted.id);
    assert!(
        !rest.job(canceled.id.0).await.unwrap().stages.is_empty(),
        "the job keeps its stages"
    );
    let done = wait_until(
        "the job to be CANCELED",
        Duration::from_secs(30),
        || async {
            let j = rest.job(submitted.id.0).await.unwrap();
            j.job.state.is_final().then_some(j)
        },
    )
    .await;
    assert_eq!(done.job.state.as_str(), "CANCELED", "{done:?}");
    assert!(done.job.finished_at.is_some());
    refused!(rest.control(submitted.id.0, JobAction::Pause), Conflict);
    rest.control(second.id.0, JobAction::Cancel).await.unwrap();

    // No task has run: its log is empty; a task of another job is not found.
    let task = done.stages[0].tasks[0].id;
    assert!(
        rest.task_log(done.job.id.0, task.0)
            .await
            .unwrap()
            .is_empty()
    );
    refused!(rest.task_log(second.id.0, task.0), NotFound);
    refused!(rest.job(999_999), NotFound);
    refused!(
        rest.submit(job("c", "deploy", Target::Service("ghost".into()))),
        NotFound
    );
    refused!(
        rest.submit(job("c", "no-such-command", Target::Cluster)),
        InvalidInput
    );
}

#[tokio::test]
async fn errors_have_kinds_and_the_server_detail() {
    let server = server();
    let rest = rest(&server);

    let e = refused!(rest.cluster("ghost"), NotFound);
    assert_contains(e.to_string(), "ghost");
    rest.create_cluster("c").await.unwrap();
    refused!(rest.create_cluster("c"), Conflict);
    refused!(rest.create_cluster("bad name!"), InvalidInput);
    refused!(rest.add_host("ghost", "h1", "127.0.0.2"), NotFound);
    // Names are path segments, encoded: a slash does not reach another route.
    let e = refused!(rest.service("c", "a/b"), NotFound);
    assert_contains(e.to_string(), "a/b");
    refused!(
        rest.add_service("c", demo("hello", "hello", &["nohost"])),
        NotFound
    );

    let backend = |url: &str, token: Option<&str>| -> Result<Arc<dyn Backend>, Error> {
        Ok(Arc::new(Rest::new(
            url,
            token,
            Duration::from_secs(10),
            None,
        )?))
    };
    let wrong = backend(&server.url, Some("bmt_wrong")).unwrap();
    refused!(wrong.clusters(), PermissionDenied);
    let none = backend(&server.url, None).unwrap();
    refused!(none.cluster("c"), PermissionDenied);

    // Nothing listens: Other, naming the URL.
    let url = format!("http://127.0.0.1:{}", free_port());
    let gone = backend(&url, None).unwrap();
    let e = refused!(gone.clusters(), Other);
    assert_contains(e.to_string(), &url);

    for bad in ["https://127.0.0.1:1", "127.0.0.1:8080", "ftp://h", ""] {
        let e = backend(bad, None).err().expect("refused");
        assert!(matches!(e, Error::InvalidInput(_)), "{bad}: {e:?}");
    }
}

#[tokio::test]
async fn lists_read_every_page() {
    // The server's pages hold 100 items by default.
    let server = server();
    let rest = rest(&server);
    let n = 105;
    for i in 0..n {
        rest.create_cluster(&format!("c{i:03}")).await.unwrap();
    }
    let all = rest.clusters().await.unwrap();
    let names: Vec<_> = all.iter().map(|c| c.name.clone()).collect();
    let want: Vec<_> = (0..n).map(|i| format!("c{i:03}")).collect();
    assert_eq!(names, want);
}

#[tokio::test]
async fn pipeline_controls_answer_views_and_their_errors_have_kinds() {
    let server = server();
    let rest = rest(&server);
    rest.create_cluster("c").await.unwrap();
    rest.add_host("c", "h1", "127.0.0.2").await.unwrap();
    let definition = r#"name = "p"

[sources.files]
kind = "dir"
host = "h1"
path = "/nowhere/in"

[units.filter]
program = "/bin/cat"
kind = "non-blocking"
inputs = ["files"]

[units.all]
program = "/bin/cat"
kind = "blocking"
inputs = ["filter"]

[sinks.out]
kind = "dir"
host = "h1"
path = "/nowhere/out"
inputs = ["all"]
"#;
    rest.create_pipeline("c", definition).await.unwrap();

    // Not running: pausing, resuming and stopping it are conflicts naming its state.
    let e = refused!(rest.pause_pipeline("c", "p"), Conflict);
    assert_contains(e.to_string(), "CREATED");
    refused!(rest.resume_pipeline("c", "p"), Conflict);
    refused!(rest.stop_pipeline("c", "p", false), Conflict);
    refused!(rest.stop_pipeline("c", "p", true), Conflict);
    refused!(rest.start_pipeline("c", "ghost"), NotFound);

    // Scaling: a non-blocking unit, 1 to 64 replicas.
    let scale = |unit: &str, replicas| ScalePipeline {
        unit: unit.into(),
        replicas,
    };
    let p = rest
        .scale_pipeline("c", "p", scale("filter", 4))
        .await
        .unwrap();
    assert_eq!(p.replicas.get("filter"), Some(&4));
    let e = refused!(
        rest.scale_pipeline("c", "p", scale("nope", 2)),
        InvalidInput
    );
    assert_contains(e.to_string(), "nope");
    let e = refused!(rest.scale_pipeline("c", "p", scale("all", 2)), InvalidInput);
    assert_contains(e.to_string(), "blocking");
    refused!(
        rest.scale_pipeline("c", "p", scale("filter", 0)),
        InvalidInput
    );

    let status = rest.pipeline_status("c", "p").await.unwrap();
    assert_eq!(status.pipeline.state.as_str(), "CREATED");
    let filter = status.nodes.iter().find(|n| n.name == "filter").unwrap();
    assert_eq!((filter.kind.as_str(), filter.replicas), ("unit", Some(4)));
    assert!(!status.running_here);
    assert!(rest.pipeline_logs("c", "p").await.unwrap().is_empty());
}
