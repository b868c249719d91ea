//! The conformance suite every [`super::Store`] implementation must pass.
//!
//! [`run`] takes a fresh, empty store and runs every check in turn; each check is also a public
//! function of its own, so a failure is easy to locate (and to rerun alone on a fresh store).
//! A broken rule panics with a message that names it, prefixed `store conformance [check]:`.
//! Checks other than [`clusters`] only look at the clusters they create, so they can run on a
//! store that already holds other data.

use super::{Batch, JobChange, StageChange, Store, TaskChange};
use crate::auth::Role;
use crate::model::*;
use crate::{Error, Result};

/// Runs every conformance check against an empty store; panics naming the first broken rule.
pub async fn run(store: &dyn Store) {
    clusters(store).await;
    hosts(store).await;
    services(store).await;
    removal(store).await;
    config_versions(store).await;
    unit_changes(store).await;
    snapshots(store).await;
    relations(store).await;
    job_round_trip(store).await;
    job_queries(store).await;
    apply_compare_and_set(store).await;
    apply_retry(store).await;
    job_times(store).await;
    units_and_logs(store).await;
    concurrent_apply(store).await;
    unknown_ids(store).await;
    agents(store).await;
    concurrent_claims(store).await;
    users(store).await;
    api_tokens(store).await;
    audit(store).await;
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// Unwraps a store result, panicking with the check and the step that failed.
#[track_caller]
fn ok<T>(r: Result<T>, check: &str, step: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("store conformance [{check}]: {step}: unexpected error: {e}"),
    }
}

/// A cluster with hosts and one service with one unit per host.
struct Fixture {
    cluster: Cluster,
    hosts: Vec<Host>,
    service: ServiceInstance,
    units: Vec<Unit>,
}

async fn fixture(store: &dyn Store, check: &str, name: &str, hosts: usize) -> Fixture {
    let cluster = ok(
        store.create_cluster(name).await,
        check,
        "create fixture cluster",
    );
    let mut hs = Vec::new();
    for i in 0..hosts {
        let h = NewHost {
            cluster: cluster.id,
            name: format!("{name}-h{i}"),
            address: format!("10.0.0.{i}"),
        };
        hs.push(ok(store.add_host(h).await, check, "add fixture host"));
    }
    let service = NewService {
        cluster: cluster.id,
        name: "svc".into(),
        stack: "bigtop".into(),
        stack_version: "1.0.0".into(),
        service: "zookeeper".into(),
        configs: [(
            "zoo.cfg".to_string(),
            [
                ("tickTime".to_string(), serde_json::json!(2000)),
                ("dataDir".to_string(), serde_json::json!("/var/zk")),
            ]
            .into(),
        )]
        .into(),
        host_overrides: [(
            format!("{name}-h0"),
            [(
                "zoo.cfg".to_string(),
                [("tickTime".to_string(), serde_json::json!(3000))].into(),
            )]
            .into(),
        )]
        .into(),
        author: "alice".into(),
    };
    let units = hs
        .iter()
        .map(|h| NewUnit {
            component: "zookeeper_server".into(),
            host: h.id,
        })
        .collect();
    let (service, units) = ok(
        store.add_service(service, units).await,
        check,
        "add fixture service",
    );
    Fixture {
        cluster,
        hosts: hs,
        service,
        units,
    }
}

/// A stage running `command` on every unit of the fixture.
fn stage(fx: &Fixture, command: &str, after: Vec<usize>) -> NewStage {
    NewStage {
        name: format!(
            "{} {}/zookeeper_server",
            command.to_uppercase(),
            fx.service.name
        ),
        service: fx.service.id,
        component: "zookeeper_server".into(),
        command: command.into(),
        after,
        tasks: fx
            .units
            .iter()
            .map(|u| NewTask {
                unit: u.id,
                host: u.host,
            })
            .collect(),
    }
}

/// A job of the given stages on the fixture's cluster.
fn job(fx: &Fixture, stages: Vec<NewStage>) -> NewJob {
    NewJob {
        cluster: fx.cluster.id,
        command: "restart".into(),
        target: Target::Service(fx.service.name.clone()),
        options: JobOptions::default(),
        stages,
    }
}

/// A one-stage job on every unit of the fixture, created.
async fn simple_job(store: &dyn Store, check: &str, fx: &Fixture) -> JobDetail {
    let new = job(fx, vec![stage(fx, "start", vec![])]);
    ok(store.create_job(&new).await, check, "create job")
}

fn task_change(id: TaskId, from: TaskState, to: TaskState) -> TaskChange {
    TaskChange {
        id,
        from,
        to,
        ..TaskChange::default()
    }
}

fn tasks_batch(changes: Vec<TaskChange>) -> Batch {
    Batch {
        tasks: changes,
        ..Batch::default()
    }
}

async fn task(store: &dyn Store, check: &str, job: JobId, id: TaskId) -> Task {
    let detail = ok(store.job_detail(job).await, check, "job_detail");
    let Some(detail) = detail else {
        panic!("store conformance [{check}]: job {job} vanished");
    };
    match detail.tasks.into_iter().find(|t| t.id == id) {
        Some(t) => t,
        None => panic!("store conformance [{check}]: task {id} missing from its job {job}"),
    }
}

async fn job_of(store: &dyn Store, check: &str, id: JobId) -> Job {
    match ok(store.get_job(id).await, check, "get_job") {
        Some(j) => j,
        None => panic!("store conformance [{check}]: job {id} vanished"),
    }
}

// ---------------------------------------------------------------------------------------------
// Checks.

/// Clusters: create, look up, list in id order, duplicate names, delete and refused delete.
pub async fn clusters(store: &dyn Store) {
    const C: &str = "clusters";
    let listed = ok(store.list_clusters().await, C, "list_clusters");
    assert!(
        listed.is_empty(),
        "store conformance [{C}]: a fresh store must hold no clusters, found {listed:?}"
    );
    let a = ok(store.create_cluster("c-a").await, C, "create c-a");
    let b = ok(store.create_cluster("c-b").await, C, "create c-b");
    assert_eq!(
        a.name, "c-a",
        "store conformance [{C}]: created cluster keeps its name"
    );
    assert_ne!(
        a.id, b.id,
        "store conformance [{C}]: cluster ids must be distinct"
    );
    assert!(
        a.created_at > 0,
        "store conformance [{C}]: created_at must be set"
    );
    assert_eq!(
        ok(store.cluster_by_name("c-a").await, C, "cluster_by_name"),
        Some(a.clone()),
        "store conformance [{C}]: cluster_by_name returns the created cluster"
    );
    assert_eq!(
        ok(store.cluster_by_name("c-none").await, C, "cluster_by_name"),
        None,
        "store conformance [{C}]: cluster_by_name of an unknown name is None"
    );
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort_by_key(|c| c.id);
    assert_eq!(
        ok(store.list_clusters().await, C, "list_clusters"),
        expected,
        "store conformance [{C}]: list_clusters gives every cluster by id"
    );

    match store.create_cluster("c-a").await {
        Err(Error::AlreadyExists { name, .. }) if name == "c-a" => {}
        other => panic!(
            "store conformance [{C}]: a duplicate cluster name must be AlreadyExists naming it, \
             got {other:?}"
        ),
    }

    ok(store.delete_cluster(b.id).await, C, "delete empty cluster");
    assert_eq!(
        ok(store.list_clusters().await, C, "list_clusters"),
        vec![a.clone()],
        "store conformance [{C}]: a deleted cluster is no longer listed"
    );
    assert_eq!(
        ok(store.cluster_by_name("c-b").await, C, "cluster_by_name"),
        None,
        "store conformance [{C}]: a deleted cluster is no longer found by name"
    );
    match store.delete_cluster(b.id).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!(
            "store conformance [{C}]: deleting an unknown cluster must be NotFound, got {other:?}"
        ),
    }

    // A cluster with a host, with a service, or with a job can't be deleted.
    let host = NewHost {
        cluster: a.id,
        name: "c-a-h0".into(),
        address: "10.0.0.1".into(),
    };
    ok(store.add_host(host).await, C, "add host");
    match store.delete_cluster(a.id).await {
        Err(Error::Conflict(_)) => {}
        other => panic!(
            "store conformance [{C}]: deleting a cluster with hosts must be Conflict, got {other:?}"
        ),
    }
    let svc_only = ok(store.create_cluster("c-svc").await, C, "create c-svc");
    let svc = NewService {
        cluster: svc_only.id,
        name: "zk".into(),
        stack: "bigtop".into(),
        stack_version: "1.0.0".into(),
        service: "zookeeper".into(),
        configs: Default::default(),
        host_overrides: Default::default(),
        author: "tester".into(),
    };
    ok(store.add_service(svc, vec![]).await, C, "add service");
    match store.delete_cluster(svc_only.id).await {
        Err(Error::Conflict(_)) => {}
        other => panic!(
            "store conformance [{C}]: deleting a cluster with services must be Conflict, \
             got {other:?}"
        ),
    }
    let job_only = ok(store.create_cluster("c-job").await, C, "create c-job");
    let empty_job = NewJob {
        cluster: job_only.id,
        command: "status".into(),
        target: Target::Cluster,
        options: JobOptions::default(),
        stages: vec![],
    };
    ok(store.create_job(&empty_job).await, C, "create job");
    match store.delete_cluster(job_only.id).await {
        Err(Error::Conflict(_)) => {}
        other => panic!(
            "store conformance [{C}]: deleting a cluster with jobs must be Conflict, got {other:?}"
        ),
    }
    let names: Vec<String> = ok(store.list_clusters().await, C, "list_clusters")
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(
        names,
        ["c-a", "c-svc", "c-job"],
        "store conformance [{C}]: a refused delete keeps the cluster"
    );
}

/// Hosts: add (WAITING), look up, list per cluster, globally unique names, state and heartbeat.
pub async fn hosts(store: &dyn Store) {
    const C: &str = "hosts";
    let a = ok(store.create_cluster("hosts-a").await, C, "create cluster");
    let b = ok(store.create_cluster("hosts-b").await, C, "create cluster");
    let new = |cluster: ClusterId, name: &str| NewHost {
        cluster,
        name: name.into(),
        address: format!("{name}.example"),
    };
    let h1 = ok(store.add_host(new(a.id, "hosts-1")).await, C, "add_host");
    let h2 = ok(store.add_host(new(a.id, "hosts-2")).await, C, "add_host");
    assert_eq!(
        (h1.cluster, h1.name.as_str(), h1.address.as_str()),
        (a.id, "hosts-1", "hosts-1.example"),
        "store conformance [{C}]: add_host keeps cluster, name and address"
    );
    assert_eq!(
        (h1.state, h1.last_heartbeat),
        (HostState::Waiting, None),
        "store conformance [{C}]: a new host is WAITING for its agent, with no heartbeat"
    );
    assert_ne!(
        h1.id, h2.id,
        "store conformance [{C}]: host ids are distinct"
    );
    assert_eq!(
        ok(store.host_by_name("hosts-1").await, C, "host_by_name"),
        Some(h1.clone()),
        "store conformance [{C}]: host_by_name returns the added host"
    );
    let mut expected = vec![h1.clone(), h2.clone()];
    expected.sort_by_key(|h| h.id);
    assert_eq!(
        ok(store.list_hosts(a.id).await, C, "list_hosts"),
        expected,
        "store conformance [{C}]: list_hosts gives the cluster's hosts by id"
    );
    assert_eq!(
        ok(store.list_hosts(b.id).await, C, "list_hosts"),
        vec![],
        "store conformance [{C}]: list_hosts gives only that cluster's hosts"
    );

    for (cluster, why) in [(a.id, "in the same cluster"), (b.id, "in another cluster")] {
        match store.add_host(new(cluster, "hosts-1")).await {
            Err(Error::AlreadyExists { name, .. }) if name == "hosts-1" => {}
            other => panic!(
                "store conformance [{C}]: a duplicate host name {why} must be AlreadyExists \
                 naming it, got {other:?}"
            ),
        }
    }
    assert_eq!(
        ok(store.list_hosts(b.id).await, C, "list_hosts").len(),
        0,
        "store conformance [{C}]: a refused duplicate host adds nothing"
    );
    match store.add_host(new(ClusterId(i64::MAX), "hosts-x")).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!(
            "store conformance [{C}]: adding a host to an unknown cluster must be NotFound, \
             got {other:?}"
        ),
    }

    ok(
        store
            .set_host_state(h1.id, HostState::Lost, Some(1_000))
            .await,
        C,
        "set_host_state",
    );
    let got = ok(store.host_by_name("hosts-1").await, C, "host_by_name");
    assert_eq!(
        got.as_ref().map(|h| (h.state, h.last_heartbeat)),
        Some((HostState::Lost, Some(1_000))),
        "store conformance [{C}]: set_host_state sets state and heartbeat"
    );
    ok(
        store.set_host_state(h1.id, HostState::Online, None).await,
        C,
        "set_host_state",
    );
    let got = ok(store.host_by_name("hosts-1").await, C, "host_by_name");
    assert_eq!(
        got.as_ref().map(|h| (h.state, h.last_heartbeat)),
        Some((HostState::Online, Some(1_000))),
        "store conformance [{C}]: set_host_state without a heartbeat keeps the last one"
    );
    let other = ok(store.host_by_name("hosts-2").await, C, "host_by_name");
    assert_eq!(
        other,
        Some(h2),
        "store conformance [{C}]: set_host_state changes only that host"
    );
    match store
        .set_host_state(HostId(i64::MAX), HostState::Lost, None)
        .await
    {
        Err(Error::NotFound { .. }) => {}
        other => panic!(
            "store conformance [{C}]: set_host_state of an unknown host must be NotFound, \
             got {other:?}"
        ),
    }
}

/// Removing hosts and services: refused while in use, then neither listed nor found by name,
/// names usable again, a removed host's credential gone, history still readable by id.
pub async fn removal(store: &dyn Store) {
    const C: &str = "removal";
    let fx = fixture(store, C, "rm", 2).await;
    let cid = fx.cluster.id;
    let free = NewHost {
        cluster: cid,
        name: "rm-free".into(),
        address: "10.0.1.1".into(),
    };
    let h = ok(store.add_host(free.clone()).await, C, "add free host");
    assert!(
        ok(store.claim_host(h.id, "abc").await, C, "claim_host"),
        "store conformance [{C}]: claim a free host"
    );
    ok(
        store.remove_host(h.id).await,
        C,
        "remove a host without units",
    );
    assert_eq!(
        ok(store.host_by_name("rm-free").await, C, "host_by_name"),
        None,
        "store conformance [{C}]: a removed host is not found by name"
    );
    assert!(
        !ok(store.list_hosts(cid).await, C, "list_hosts")
            .iter()
            .any(|x| x.id == h.id),
        "store conformance [{C}]: a removed host is not listed"
    );
    assert_eq!(
        store.host_credential(h.id).await.ok().flatten(),
        None,
        "store conformance [{C}]: a removed host has no credential"
    );
    match store.remove_host(h.id).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!(
            "store conformance [{C}]: removing a removed host must be NotFound, got {other:?}"
        ),
    }
    let again = ok(
        store.add_host(free).await,
        C,
        "add a removed host's name again",
    );
    assert_ne!(
        again.id, h.id,
        "store conformance [{C}]: a host added under a removed host's name is a new host"
    );

    match store.remove_host(fx.hosts[0].id).await {
        Err(Error::Conflict(m)) if m.contains("svc") => {}
        other => panic!(
            "store conformance [{C}]: removing a host with a unit of a live service must be \
             Conflict naming the service, got {other:?}"
        ),
    }
    let started = Batch {
        units: vec![(fx.units[0].id, UnitState::Started)],
        ..Batch::default()
    };
    ok(store.apply(&started).await, C, "start a unit");
    match store.remove_service(fx.service.id).await {
        Err(Error::Conflict(m)) if m.contains("stop it first") => {}
        other => panic!(
            "store conformance [{C}]: removing a service with a STARTED unit must be Conflict \
             saying to stop it first, got {other:?}"
        ),
    }
    let stopped = Batch {
        units: vec![(fx.units[0].id, UnitState::Stopped)],
        ..Batch::default()
    };
    ok(store.apply(&stopped).await, C, "stop the unit");
    let d = simple_job(store, C, &fx).await;
    match store.remove_service(fx.service.id).await {
        Err(Error::Conflict(_)) => {}
        other => panic!(
            "store conformance [{C}]: removing a service an unfinished job touches must be \
             Conflict, got {other:?}"
        ),
    }
    let cancel = Batch {
        jobs: vec![JobChange {
            id: d.job.id,
            from: JobState::Queued,
            to: JobState::Canceled,
            at: 2_000,
        }],
        ..Batch::default()
    };
    ok(store.apply(&cancel).await, C, "cancel the job");
    ok(
        store.remove_service(fx.service.id).await,
        C,
        "remove a stopped service",
    );
    assert_eq!(
        ok(
            store.service_by_name(cid, "svc").await,
            C,
            "service_by_name"
        ),
        None,
        "store conformance [{C}]: a removed service is not found by name"
    );
    assert_eq!(
        ok(store.list_services(cid).await, C, "list_services"),
        vec![],
        "store conformance [{C}]: a removed service is not listed"
    );
    assert_eq!(
        ok(store.list_units(cid).await, C, "list_units"),
        vec![],
        "store conformance [{C}]: a removed service's units are not listed"
    );
    match store.remove_service(fx.service.id).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!(
            "store conformance [{C}]: removing a removed service must be NotFound, got {other:?}"
        ),
    }
    let reused = NewService {
        cluster: cid,
        name: "svc".into(),
        stack: "bigtop".into(),
        stack_version: "1.0.0".into(),
        service: "zookeeper".into(),
        configs: Default::default(),
        host_overrides: Default::default(),
        author: "tester".into(),
    };
    let (s2, _) = ok(
        store.add_service(reused, vec![]).await,
        C,
        "add a removed service's name again",
    );
    assert_ne!(
        s2.id, fx.service.id,
        "store conformance [{C}]: a service added under a removed one's name is a new one"
    );
    ok(
        store.remove_host(fx.hosts[0].id).await,
        C,
        "remove a host whose units' service is removed",
    );
    let detail = ok(store.job_detail(d.job.id).await, C, "job_detail");
    assert!(
        detail.is_some_and(|d| d.tasks.iter().any(|t| t.host == fx.hosts[0].id)),
        "store conformance [{C}]: a job's tasks on a removed host stay readable"
    );

    // A cluster whose hosts and services were all removed (and that never had jobs) can go.
    let empty = fixture(store, C, "rm-empty", 1).await;
    ok(
        store.remove_service(empty.service.id).await,
        C,
        "remove service",
    );
    ok(store.remove_host(empty.hosts[0].id).await, C, "remove host");
    ok(
        store.delete_cluster(empty.cluster.id).await,
        C,
        "delete a cluster whose hosts and services are removed",
    );
}

/// Services and units: added together atomically, unique names per cluster, lookups.
pub async fn services(store: &dyn Store) {
    const C: &str = "services";
    let fx = fixture(store, C, "svc-a", 2).await;
    let other = fixture(store, C, "svc-b", 1).await;
    assert_eq!(
        fx.units.len(),
        2,
        "store conformance [{C}]: add_service returns one unit per NewUnit"
    );
    for (u, h) in fx.units.iter().zip(&fx.hosts) {
        assert_eq!(
            (u.service, u.host, u.state, u.component.as_str()),
            (fx.service.id, h.id, UnitState::New, "zookeeper_server"),
            "store conformance [{C}]: a unit belongs to its service and host and starts NEW"
        );
    }
    assert_eq!(
        (
            fx.service.cluster,
            fx.service.name.as_str(),
            fx.service.stack.as_str(),
            fx.service.stack_version.as_str(),
            fx.service.service.as_str()
        ),
        (fx.cluster.id, "svc", "bigtop", "1.0.0", "zookeeper"),
        "store conformance [{C}]: add_service keeps the instance's fields"
    );
    assert_eq!(
        fx.service.configs["zoo.cfg"]["tickTime"],
        serde_json::json!(2000),
        "store conformance [{C}]: add_service keeps the instance's config values"
    );
    assert_eq!(
        ok(
            store.service_by_name(fx.cluster.id, "svc").await,
            C,
            "service_by_name"
        ),
        Some(fx.service.clone()),
        "store conformance [{C}]: service_by_name returns the added instance"
    );
    assert_eq!(
        ok(
            store.service_by_name(fx.cluster.id, "nope").await,
            C,
            "service_by_name"
        ),
        None,
        "store conformance [{C}]: service_by_name of an unknown name is None"
    );
    assert_ne!(
        fx.service.id, other.service.id,
        "store conformance [{C}]: the same service name in two clusters makes two instances"
    );
    assert_eq!(
        ok(store.list_services(fx.cluster.id).await, C, "list_services"),
        vec![fx.service.clone()],
        "store conformance [{C}]: list_services gives only that cluster's instances"
    );
    assert_eq!(
        ok(store.list_units(fx.cluster.id).await, C, "list_units"),
        fx.units,
        "store conformance [{C}]: list_units gives that cluster's units by id"
    );
    assert_eq!(
        ok(store.list_units(other.cluster.id).await, C, "list_units"),
        other.units,
        "store conformance [{C}]: list_units gives only that cluster's units"
    );

    let dup = NewService {
        cluster: fx.cluster.id,
        name: "svc".into(),
        stack: "bigtop".into(),
        stack_version: "1.0.0".into(),
        service: "kafka".into(),
        configs: Default::default(),
        host_overrides: Default::default(),
        author: "tester".into(),
    };
    let units = vec![NewUnit {
        component: "kafka_broker".into(),
        host: fx.hosts[0].id,
    }];
    match store.add_service(dup, units).await {
        Err(Error::AlreadyExists { name, .. }) if name == "svc" => {}
        other => panic!(
            "store conformance [{C}]: a duplicate service name in a cluster must be \
             AlreadyExists naming it, got {other:?}"
        ),
    }
    assert_eq!(
        ok(store.list_units(fx.cluster.id).await, C, "list_units"),
        fx.units,
        "store conformance [{C}]: a refused duplicate service adds no units"
    );

    // A unit on a missing host fails the whole service.
    let broken = NewService {
        cluster: fx.cluster.id,
        name: "broken".into(),
        stack: "bigtop".into(),
        stack_version: "1.0.0".into(),
        service: "kafka".into(),
        configs: Default::default(),
        host_overrides: Default::default(),
        author: "tester".into(),
    };
    let units = vec![
        NewUnit {
            component: "kafka_broker".into(),
            host: fx.hosts[0].id,
        },
        NewUnit {
            component: "kafka_broker".into(),
            host: HostId(i64::MAX),
        },
    ];
    assert!(
        store.add_service(broken, units).await.is_err(),
        "store conformance [{C}]: a unit on an unknown host must fail add_service"
    );
    assert_eq!(
        ok(
            store.service_by_name(fx.cluster.id, "broken").await,
            C,
            "service_by_name"
        ),
        None,
        "store conformance [{C}]: a failed add_service adds no instance"
    );
    assert_eq!(
        ok(store.list_units(fx.cluster.id).await, C, "list_units"),
        fx.units,
        "store conformance [{C}]: a failed add_service adds no units"
    );
}

/// create_job persists the whole plan and returns it as job_detail loads it.
pub async fn job_round_trip(store: &dyn Store) {
    const C: &str = "job_round_trip";
    let fx = fixture(store, C, "jrt", 3).await;
    let mut new = job(
        &fx,
        vec![
            stage(&fx, "install", vec![]),
            stage(&fx, "start", vec![0]),
            stage(&fx, "check", vec![1, 0]),
        ],
    );
    new.target = Target::Component {
        service: "svc".into(),
        component: "zookeeper_server".into(),
    };
    new.options = JobOptions {
        parallelism: Some(2),
        batch_size: Some(1),
        failure_tolerance: 1,
        pipelined: true,
    };
    let d = ok(store.create_job(&new).await, C, "create_job");
    let j = &d.job;
    assert_eq!(
        (j.cluster, j.command.as_str(), &j.target, &j.options),
        (fx.cluster.id, "restart", &new.target, &new.options),
        "store conformance [{C}]: the job keeps cluster, command, target and options"
    );
    assert_eq!(
        (j.state, j.started_at, j.finished_at),
        (JobState::Queued, None, None),
        "store conformance [{C}]: a new job is QUEUED, not started nor finished"
    );
    assert!(
        j.created_at > 0,
        "store conformance [{C}]: created_at is set"
    );

    assert_eq!(
        d.stages.len(),
        3,
        "store conformance [{C}]: every stage is stored"
    );
    for (i, (s, n)) in d.stages.iter().zip(&new.stages).enumerate() {
        assert_eq!(
            (
                s.job,
                s.seq as usize,
                s.name.as_str(),
                s.service,
                s.component.as_str(),
                s.command.as_str(),
                s.state
            ),
            (
                j.id,
                i,
                n.name.as_str(),
                n.service,
                n.component.as_str(),
                n.command.as_str(),
                StageState::Pending
            ),
            "store conformance [{C}]: stage {i} comes back in order with its fields, PENDING"
        );
        let mut want: Vec<StageId> = n.after.iter().map(|&a| d.stages[a].id).collect();
        want.sort();
        let mut got = s.after.clone();
        got.sort();
        assert_eq!(
            got, want,
            "store conformance [{C}]: stage {i}'s `after` names the stages it waits for"
        );
    }

    assert!(
        d.tasks.windows(2).all(|w| w[0].id < w[1].id),
        "store conformance [{C}]: job_detail's tasks come by ascending id"
    );
    let mut got: Vec<(StageId, UnitId, HostId)> =
        d.tasks.iter().map(|t| (t.stage, t.unit, t.host)).collect();
    got.sort();
    let mut want: Vec<(StageId, UnitId, HostId)> = d
        .stages
        .iter()
        .flat_map(|s| fx.units.iter().map(move |u| (s.id, u.id, u.host)))
        .collect();
    want.sort();
    assert_eq!(
        got, want,
        "store conformance [{C}]: one task per planned (stage, unit, host)"
    );
    for t in &d.tasks {
        assert_eq!(
            (
                t.job,
                t.attempt,
                t.state,
                t.exit_code,
                t.pid,
                t.started_at,
                t.finished_at,
                &t.message
            ),
            (j.id, 1, TaskState::Pending, None, None, None, None, &None),
            "store conformance [{C}]: a new task is PENDING at attempt 1 with no result"
        );
    }

    assert_eq!(
        ok(store.job_detail(j.id).await, C, "job_detail"),
        Some(d.clone()),
        "store conformance [{C}]: job_detail returns what create_job returned"
    );
    assert_eq!(
        ok(store.get_job(j.id).await, C, "get_job"),
        Some(d.job.clone()),
        "store conformance [{C}]: get_job returns the job"
    );

    // A dependency on a later (or its own) stage is invalid, and nothing is stored.
    let before = ok(
        store
            .list_jobs(&JobFilter {
                cluster: Some(fx.cluster.id),
                ..JobFilter::default()
            })
            .await,
        C,
        "list_jobs",
    );
    for bad in [0usize, 1] {
        let invalid = job(
            &fx,
            vec![
                stage(&fx, "install", vec![]),
                stage(&fx, "start", vec![bad + 1]),
            ],
        );
        match store.create_job(&invalid).await {
            Err(Error::Invalid(_)) => {}
            other => panic!(
                "store conformance [{C}]: a stage waiting for itself or a later stage must be \
                 Invalid, got {other:?}"
            ),
        }
    }
    let after = ok(
        store
            .list_jobs(&JobFilter {
                cluster: Some(fx.cluster.id),
                ..JobFilter::default()
            })
            .await,
        C,
        "list_jobs",
    );
    assert_eq!(
        before, after,
        "store conformance [{C}]: a refused job stores nothing"
    );

    let mut orphan = job(&fx, vec![]);
    orphan.cluster = ClusterId(i64::MAX);
    match store.create_job(&orphan).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!(
            "store conformance [{C}]: a job on an unknown cluster must be NotFound, got {other:?}"
        ),
    }
}

/// list_jobs: cluster and state filters, paging with `after` and `limit`, ascending ids.
pub async fn job_queries(store: &dyn Store) {
    const C: &str = "job_queries";
    let a = fixture(store, C, "jq-a", 1).await;
    let b = fixture(store, C, "jq-b", 1).await;
    let mut a_jobs = Vec::new();
    let mut b_jobs = Vec::new();
    for i in 0..7 {
        // Interleave the clusters so their ids interleave too.
        if i % 3 == 2 {
            b_jobs.push(simple_job(store, C, &b).await.job);
        } else {
            a_jobs.push(simple_job(store, C, &a).await.job);
        }
    }
    let filter = |cluster: ClusterId| JobFilter {
        cluster: Some(cluster),
        ..JobFilter::default()
    };
    assert_eq!(
        ok(store.list_jobs(&filter(a.cluster.id)).await, C, "list_jobs"),
        a_jobs,
        "store conformance [{C}]: list_jobs by cluster gives its jobs by ascending id"
    );
    let all = ok(store.list_jobs(&JobFilter::default()).await, C, "list_jobs");
    assert!(
        all.windows(2).all(|w| w[0].id < w[1].id),
        "store conformance [{C}]: list_jobs is ascending by id"
    );
    for j in a_jobs.iter().chain(&b_jobs) {
        assert!(
            all.contains(j),
            "store conformance [{C}]: an empty filter lists every job, missing {}",
            j.id
        );
    }

    // Two of a's jobs run.
    let batch = Batch {
        jobs: [1, 3]
            .iter()
            .map(|&i| JobChange {
                id: a_jobs[i].id,
                from: JobState::Queued,
                to: JobState::Running,
                at: 10,
            })
            .collect(),
        ..Batch::default()
    };
    let applied = ok(store.apply(&batch).await, C, "apply");
    assert_eq!(
        applied.jobs,
        vec![true, true],
        "store conformance [{C}]: QUEUED -> RUNNING applies"
    );
    let running: Vec<JobId> = ok(
        store
            .list_jobs(&JobFilter {
                states: vec![JobState::Running],
                ..filter(a.cluster.id)
            })
            .await,
        C,
        "list_jobs",
    )
    .into_iter()
    .map(|j| j.id)
    .collect();
    assert_eq!(
        running,
        vec![a_jobs[1].id, a_jobs[3].id],
        "store conformance [{C}]: list_jobs filters by state"
    );
    let either = ok(
        store
            .list_jobs(&JobFilter {
                states: vec![JobState::Queued, JobState::Running],
                ..filter(a.cluster.id)
            })
            .await,
        C,
        "list_jobs",
    );
    assert_eq!(
        either.len(),
        a_jobs.len(),
        "store conformance [{C}]: list_jobs with several states matches any of them"
    );
    let none = ok(
        store
            .list_jobs(&JobFilter {
                states: vec![JobState::Canceled],
                ..filter(a.cluster.id)
            })
            .await,
        C,
        "list_jobs",
    );
    assert!(
        none.is_empty(),
        "store conformance [{C}]: a state no job is in matches nothing"
    );

    // Paging.
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = ok(
            store
                .list_jobs(&JobFilter {
                    after,
                    limit: Some(2),
                    ..filter(a.cluster.id)
                })
                .await,
            C,
            "list_jobs",
        );
        assert!(
            page.len() <= 2,
            "store conformance [{C}]: list_jobs returns at most `limit` jobs"
        );
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        paged.extend(page);
    }
    assert_eq!(
        paged.iter().map(|j| j.id).collect::<Vec<_>>(),
        a_jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        "store conformance [{C}]: paging with after/limit visits every job once, in order"
    );
    let zero = ok(
        store
            .list_jobs(&JobFilter {
                limit: Some(0),
                ..filter(a.cluster.id)
            })
            .await,
        C,
        "list_jobs",
    );
    assert!(
        zero.is_empty(),
        "store conformance [{C}]: limit 0 gives no jobs"
    );
}

/// apply: compare-and-set per change, stale changes reported and without effect.
pub async fn apply_compare_and_set(store: &dyn Store) {
    const C: &str = "apply_compare_and_set";
    let fx = fixture(store, C, "cas", 2).await;
    let d = simple_job(store, C, &fx).await;
    let (job, st) = (d.job.id, d.stages[0].id);
    let (t0, t1) = (d.tasks[0].id, d.tasks[1].id);

    let empty = ok(store.apply(&Batch::default()).await, C, "apply empty");
    assert!(
        empty.jobs.is_empty() && empty.stages.is_empty() && empty.tasks.is_empty(),
        "store conformance [{C}]: an empty batch applies nothing"
    );

    let a = ok(
        store
            .apply(&tasks_batch(vec![task_change(
                t0,
                TaskState::Pending,
                TaskState::Queued,
            )]))
            .await,
        C,
        "apply",
    );
    assert_eq!(
        a.tasks,
        vec![true],
        "store conformance [{C}]: a task change from its current state applies"
    );
    assert_eq!(
        task(store, C, job, t0).await.state,
        TaskState::Queued,
        "store conformance [{C}]: an applied task change sets the state"
    );

    let stale = TaskChange {
        message: Some("stale".into()),
        ..task_change(t0, TaskState::Pending, TaskState::Running)
    };
    let a = ok(store.apply(&tasks_batch(vec![stale])).await, C, "apply");
    assert_eq!(
        a.tasks,
        vec![false],
        "store conformance [{C}]: a task change from a stale state is reported not applied"
    );
    let t = task(store, C, job, t0).await;
    assert_eq!(
        (t.state, &t.message),
        (TaskState::Queued, &None),
        "store conformance [{C}]: a stale task change changes nothing"
    );

    let running = TaskChange {
        pid: Some(42),
        started_at: Some(1_000),
        ..task_change(t0, TaskState::Queued, TaskState::Running)
    };
    let wrong = task_change(t1, TaskState::Running, TaskState::Succeeded);
    let a = ok(
        store.apply(&tasks_batch(vec![running, wrong])).await,
        C,
        "apply",
    );
    assert_eq!(
        a.tasks,
        vec![true, false],
        "store conformance [{C}]: each change of a batch is compared on its own"
    );
    let t = task(store, C, job, t0).await;
    assert_eq!(
        (t.state, t.pid, t.started_at),
        (TaskState::Running, Some(42), Some(1_000)),
        "store conformance [{C}]: an applied task change sets its Some fields"
    );
    assert_eq!(
        task(store, C, job, t1).await.state,
        TaskState::Pending,
        "store conformance [{C}]: the skipped change of a batch leaves its task alone"
    );

    let old_attempt = TaskChange {
        attempt_is: Some(2),
        exit_code: Some(0),
        ..task_change(t0, TaskState::Running, TaskState::Succeeded)
    };
    let a = ok(
        store.apply(&tasks_batch(vec![old_attempt])).await,
        C,
        "apply",
    );
    assert_eq!(
        a.tasks,
        vec![false],
        "store conformance [{C}]: attempt_is of another attempt does not apply"
    );
    assert_eq!(
        task(store, C, job, t0).await.exit_code,
        None,
        "store conformance [{C}]: a change guarded by another attempt changes nothing"
    );
    let done = TaskChange {
        attempt_is: Some(1),
        exit_code: Some(0),
        finished_at: Some(2_000),
        ..task_change(t0, TaskState::Running, TaskState::Succeeded)
    };
    let a = ok(store.apply(&tasks_batch(vec![done])).await, C, "apply");
    assert_eq!(
        a.tasks,
        vec![true],
        "store conformance [{C}]: attempt_is of the current attempt applies"
    );
    let t = task(store, C, job, t0).await;
    assert_eq!(
        (
            t.state,
            t.exit_code,
            t.pid,
            t.started_at,
            t.finished_at,
            t.attempt
        ),
        (
            TaskState::Succeeded,
            Some(0),
            Some(42),
            Some(1_000),
            Some(2_000),
            1
        ),
        "store conformance [{C}]: fields left None keep their stored values"
    );

    // The same task twice in one batch: applied in order.
    let a = ok(
        store
            .apply(&tasks_batch(vec![
                task_change(t1, TaskState::Pending, TaskState::Queued),
                task_change(t1, TaskState::Queued, TaskState::Running),
                task_change(t1, TaskState::Queued, TaskState::Failed),
            ]))
            .await,
        C,
        "apply",
    );
    assert_eq!(
        a.tasks,
        vec![true, true, false],
        "store conformance [{C}]: changes of one task in a batch apply in batch order"
    );
    assert_eq!(
        task(store, C, job, t1).await.state,
        TaskState::Running,
        "store conformance [{C}]: a task changed twice in a batch ends in the last applied state"
    );

    let unknown = task_change(TaskId(i64::MAX), TaskState::Pending, TaskState::Queued);
    let a = ok(store.apply(&tasks_batch(vec![unknown])).await, C, "apply");
    assert_eq!(
        a.tasks,
        vec![false],
        "store conformance [{C}]: a change of an unknown task is reported not applied"
    );

    // Stages and jobs.
    let batch = Batch {
        stages: vec![
            StageChange {
                id: st,
                from: StageState::Pending,
                to: StageState::Running,
            },
            StageChange {
                id: st,
                from: StageState::Pending,
                to: StageState::Succeeded,
            },
        ],
        jobs: vec![
            JobChange {
                id: job,
                from: JobState::Queued,
                to: JobState::Running,
                at: 5,
            },
            JobChange {
                id: job,
                from: JobState::Queued,
                to: JobState::Failed,
                at: 6,
            },
        ],
        ..Batch::default()
    };
    let a = ok(store.apply(&batch).await, C, "apply");
    assert_eq!(
        a.stages,
        vec![true, false],
        "store conformance [{C}]: stage changes are compare-and-set, in batch order"
    );
    assert_eq!(
        a.jobs,
        vec![true, false],
        "store conformance [{C}]: job changes are compare-and-set, in batch order"
    );
    let d = ok(store.job_detail(job).await, C, "job_detail");
    assert_eq!(
        d.as_ref().map(|d| (d.job.state, d.stages[0].state)),
        Some((JobState::Running, StageState::Running)),
        "store conformance [{C}]: applied job and stage changes set their states"
    );
}

/// apply: a retry sets the next attempt and clears the old result; late events of the old
/// attempt are refused.
pub async fn apply_retry(store: &dyn Store) {
    const C: &str = "apply_retry";
    let fx = fixture(store, C, "retry", 1).await;
    let d = simple_job(store, C, &fx).await;
    let (job, t0) = (d.job.id, d.tasks[0].id);
    let run = vec![
        task_change(t0, TaskState::Pending, TaskState::Queued),
        TaskChange {
            pid: Some(7),
            started_at: Some(100),
            ..task_change(t0, TaskState::Queued, TaskState::Running)
        },
        TaskChange {
            exit_code: Some(3),
            finished_at: Some(200),
            message: Some("boom".into()),
            ..task_change(t0, TaskState::Running, TaskState::Failed)
        },
    ];
    let a = ok(store.apply(&tasks_batch(run)).await, C, "apply");
    assert_eq!(
        a.tasks,
        vec![true; 3],
        "store conformance [{C}]: a task runs to FAILED"
    );

    let retry = TaskChange {
        attempt_is: Some(1),
        set_attempt: Some(2),
        clear_result: true,
        ..task_change(t0, TaskState::Failed, TaskState::Pending)
    };
    let a = ok(store.apply(&tasks_batch(vec![retry])).await, C, "apply");
    assert_eq!(
        a.tasks,
        vec![true],
        "store conformance [{C}]: a retry applies"
    );
    let t = task(store, C, job, t0).await;
    assert_eq!(
        (
            t.state,
            t.attempt,
            t.exit_code,
            t.pid,
            t.started_at,
            t.finished_at,
            &t.message
        ),
        (TaskState::Pending, 2, None, None, None, None, &None),
        "store conformance [{C}]: set_attempt + clear_result start a clean new attempt"
    );

    let late = TaskChange {
        attempt_is: Some(1),
        ..task_change(t0, TaskState::Pending, TaskState::Running)
    };
    let a = ok(store.apply(&tasks_batch(vec![late])).await, C, "apply");
    assert_eq!(
        a.tasks,
        vec![false],
        "store conformance [{C}]: a late event of the old attempt does not apply"
    );

    let again = TaskChange {
        attempt_is: Some(2),
        clear_result: true,
        started_at: Some(300),
        message: Some("second try".into()),
        ..task_change(t0, TaskState::Pending, TaskState::Running)
    };
    let a = ok(store.apply(&tasks_batch(vec![again])).await, C, "apply");
    assert_eq!(
        a.tasks,
        vec![true],
        "store conformance [{C}]: a change of the new attempt applies"
    );
    let t = task(store, C, job, t0).await;
    assert_eq!(
        (
            t.state,
            t.attempt,
            t.exit_code,
            t.pid,
            t.started_at,
            t.finished_at,
            t.message.as_deref()
        ),
        (
            TaskState::Running,
            2,
            None,
            None,
            Some(300),
            None,
            Some("second try")
        ),
        "store conformance [{C}]: clear_result clears first, then the Some fields are set"
    );
}

/// apply: a job's started_at is set on its first RUNNING, finished_at on a final state and
/// cleared on any other.
pub async fn job_times(store: &dyn Store) {
    const C: &str = "job_times";
    let fx = fixture(store, C, "times", 1).await;
    let id = simple_job(store, C, &fx).await.job.id;
    let steps = [
        (JobState::Queued, JobState::Running, 100, Some(100), None),
        (JobState::Running, JobState::Paused, 150, Some(100), None),
        (JobState::Paused, JobState::Running, 200, Some(100), None),
        (
            JobState::Running,
            JobState::Failed,
            300,
            Some(100),
            Some(300),
        ),
        (JobState::Failed, JobState::Running, 400, Some(100), None),
        (JobState::Running, JobState::Canceling, 450, Some(100), None),
        (
            JobState::Canceling,
            JobState::Canceled,
            500,
            Some(100),
            Some(500),
        ),
    ];
    for (from, to, at, started, finished) in steps {
        let batch = Batch {
            jobs: vec![JobChange { id, from, to, at }],
            ..Batch::default()
        };
        let a = ok(store.apply(&batch).await, C, "apply");
        assert_eq!(
            a.jobs,
            vec![true],
            "store conformance [{C}]: job {from} -> {to} applies"
        );
        let j = job_of(store, C, id).await;
        assert_eq!(
            (j.state, j.started_at, j.finished_at),
            (to, started, finished),
            "store conformance [{C}]: after {from} -> {to} at {at}: started_at is the first \
             RUNNING, finished_at is set only in a final state"
        );
    }
    let stale = Batch {
        jobs: vec![JobChange {
            id,
            from: JobState::Running,
            to: JobState::Succeeded,
            at: 999,
        }],
        ..Batch::default()
    };
    let a = ok(store.apply(&stale).await, C, "apply");
    assert_eq!(
        a.jobs,
        vec![false],
        "store conformance [{C}]: a stale job change is reported not applied"
    );
    let j = job_of(store, C, id).await;
    assert_eq!(
        (j.state, j.started_at, j.finished_at),
        (JobState::Canceled, Some(100), Some(500)),
        "store conformance [{C}]: a stale job change leaves state and times alone"
    );
}

/// apply: unit states are set without compare; logs are appended and read back in order.
pub async fn units_and_logs(store: &dyn Store) {
    const C: &str = "units_and_logs";
    let fx = fixture(store, C, "ul", 2).await;
    let d = simple_job(store, C, &fx).await;
    let (t0, t1) = (d.tasks[0].id, d.tasks[1].id);
    let (u0, u1) = (fx.units[0].id, fx.units[1].id);

    let batch = Batch {
        units: vec![
            (u0, UnitState::Installed),
            (u1, UnitState::Failed),
            (u0, UnitState::Started),
        ],
        ..Batch::default()
    };
    ok(store.apply(&batch).await, C, "apply units");
    let states: Vec<(UnitId, UnitState)> = ok(store.list_units(fx.cluster.id).await, C, "units")
        .into_iter()
        .map(|u| (u.id, u.state))
        .collect();
    assert_eq!(
        states,
        vec![(u0, UnitState::Started), (u1, UnitState::Failed)],
        "store conformance [{C}]: unit states are set, the last one given for a unit wins"
    );

    let line = |attempt: u32, seq: u64, stream: LogStream| LogLine {
        task: t0,
        attempt,
        seq,
        stream,
        at: 1_000 + seq as i64,
        line: format!("attempt {attempt} line {seq}"),
    };
    // Out of order, across two batches; the second also carries a stale task change.
    let first = Batch {
        logs: vec![
            line(2, 1, LogStream::Stdout),
            line(1, 2, LogStream::Stderr),
            line(1, 0, LogStream::Stdout),
        ],
        ..Batch::default()
    };
    ok(store.apply(&first).await, C, "apply logs");
    let second = Batch {
        tasks: vec![task_change(t0, TaskState::Running, TaskState::Failed)],
        logs: vec![line(2, 0, LogStream::Stderr), line(1, 1, LogStream::Stdout)],
        ..Batch::default()
    };
    let a = ok(store.apply(&second).await, C, "apply logs");
    assert_eq!(
        a.tasks,
        vec![false],
        "store conformance [{C}]: the stale change is reported not applied"
    );
    let all = ok(store.task_log(t0, None).await, C, "task_log");
    assert_eq!(
        all,
        vec![
            line(1, 0, LogStream::Stdout),
            line(1, 1, LogStream::Stdout),
            line(1, 2, LogStream::Stderr),
            line(2, 0, LogStream::Stderr),
            line(2, 1, LogStream::Stdout),
        ],
        "store conformance [{C}]: task_log gives every line (even from a batch with a stale \
         change), by attempt then line number"
    );
    assert_eq!(
        ok(store.task_log(t0, Some(2)).await, C, "task_log"),
        vec![line(2, 0, LogStream::Stderr), line(2, 1, LogStream::Stdout)],
        "store conformance [{C}]: task_log with an attempt gives only that attempt's lines"
    );
    assert_eq!(
        ok(store.task_log(t0, Some(3)).await, C, "task_log"),
        vec![],
        "store conformance [{C}]: task_log of an attempt without output is empty"
    );
    assert_eq!(
        ok(store.task_log(t1, None).await, C, "task_log"),
        vec![],
        "store conformance [{C}]: task_log gives only that task's lines"
    );
}

/// Two `apply` calls racing the same transitions: exactly one wins each.
pub async fn concurrent_apply(store: &dyn Store) {
    const C: &str = "concurrent_apply";
    let fx = fixture(store, C, "race", 20).await;
    let d = simple_job(store, C, &fx).await;

    // One task at a time, two different targets.
    for t in &d.tasks {
        let queue = tasks_batch(vec![task_change(
            t.id,
            TaskState::Pending,
            TaskState::Queued,
        )]);
        let cancel = tasks_batch(vec![task_change(
            t.id,
            TaskState::Pending,
            TaskState::Canceled,
        )]);
        let (a, b) = tokio::join!(store.apply(&queue), store.apply(&cancel));
        let (a, b) = (ok(a, C, "apply"), ok(b, C, "apply"));
        assert!(
            a.tasks[0] ^ b.tasks[0],
            "store conformance [{C}]: exactly one of two racing changes of task {} must apply, \
             got {} and {}",
            t.id,
            a.tasks[0],
            b.tasks[0]
        );
        let want = if a.tasks[0] {
            TaskState::Queued
        } else {
            TaskState::Canceled
        };
        assert_eq!(
            task(store, C, d.job.id, t.id).await.state,
            want,
            "store conformance [{C}]: the task ends in the winner's state"
        );
    }

    // Whole batches racing over the same tasks, in opposite orders.
    let d = simple_job(store, C, &fx).await;
    let forward: Vec<TaskChange> = d
        .tasks
        .iter()
        .map(|t| TaskChange {
            pid: Some(1),
            ..task_change(t.id, TaskState::Pending, TaskState::Queued)
        })
        .collect();
    let mut backward: Vec<TaskChange> = d
        .tasks
        .iter()
        .map(|t| TaskChange {
            pid: Some(2),
            ..task_change(t.id, TaskState::Pending, TaskState::Queued)
        })
        .collect();
    backward.reverse();
    let jobs = |at| {
        vec![JobChange {
            id: d.job.id,
            from: JobState::Queued,
            to: JobState::Running,
            at,
        }]
    };
    let fb = Batch {
        jobs: jobs(1),
        tasks: forward,
        ..Batch::default()
    };
    let bb = Batch {
        jobs: jobs(2),
        tasks: backward,
        ..Batch::default()
    };
    let (a, b) = tokio::join!(store.apply(&fb), store.apply(&bb));
    let (a, b) = (ok(a, C, "apply"), ok(b, C, "apply"));
    assert!(
        a.jobs[0] ^ b.jobs[0],
        "store conformance [{C}]: exactly one of two racing job changes must apply"
    );
    let detail = ok(store.job_detail(d.job.id).await, C, "job_detail");
    let Some(detail) = detail else {
        panic!("store conformance [{C}]: job vanished");
    };
    let n = d.tasks.len();
    for (i, t) in detail.tasks.iter().enumerate() {
        let (wa, wb) = (a.tasks[i], b.tasks[n - 1 - i]);
        assert!(
            wa ^ wb,
            "store conformance [{C}]: exactly one of two racing batches must move task {}",
            t.id
        );
        assert_eq!(
            t.pid,
            Some(if wa { 1 } else { 2 }),
            "store conformance [{C}]: task {} carries the winning batch's fields",
            t.id
        );
    }
}

/// Getters of unknown ids and names give `Ok(None)` or nothing; acting on them is NotFound.
pub async fn unknown_ids(store: &dyn Store) {
    const C: &str = "unknown_ids";
    let nc = ClusterId(i64::MAX);
    assert_eq!(
        ok(
            store.cluster_by_name("no-such-cluster").await,
            C,
            "cluster_by_name"
        ),
        None,
        "store conformance [{C}]: cluster_by_name of an unknown name is None"
    );
    assert_eq!(
        ok(store.host_by_name("no-such-host").await, C, "host_by_name"),
        None,
        "store conformance [{C}]: host_by_name of an unknown name is None"
    );
    assert_eq!(
        ok(store.service_by_name(nc, "svc").await, C, "service_by_name"),
        None,
        "store conformance [{C}]: service_by_name in an unknown cluster is None"
    );
    assert_eq!(
        ok(store.get_job(JobId(i64::MAX)).await, C, "get_job"),
        None,
        "store conformance [{C}]: get_job of an unknown id is None"
    );
    assert_eq!(
        ok(store.job_detail(JobId(i64::MAX)).await, C, "job_detail"),
        None,
        "store conformance [{C}]: job_detail of an unknown id is None"
    );
    assert!(
        ok(store.list_hosts(nc).await, C, "list_hosts").is_empty()
            && ok(store.list_services(nc).await, C, "list_services").is_empty()
            && ok(store.list_units(nc).await, C, "list_units").is_empty()
            && ok(
                store
                    .list_jobs(&JobFilter {
                        cluster: Some(nc),
                        ..JobFilter::default()
                    })
                    .await,
                C,
                "list_jobs"
            )
            .is_empty(),
        "store conformance [{C}]: lists of an unknown cluster are empty"
    );
    assert_eq!(
        ok(store.task_log(TaskId(i64::MAX), None).await, C, "task_log"),
        vec![],
        "store conformance [{C}]: task_log of an unknown task is empty"
    );
    match store.delete_cluster(nc).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!(
            "store conformance [{C}]: delete_cluster of an unknown id must be NotFound, \
             got {other:?}"
        ),
    }
}

/// Join tokens, credentials and host reports (registration, heartbeats, unit health).
async fn agents(store: &dyn Store) {
    let check = "agents";
    let fx = fixture(store, check, "agents", 2).await;
    let other = ok(
        store.create_cluster("agents-other").await,
        check,
        "create cluster",
    );

    ok(
        store.add_join_token(fx.cluster.id, "hash-a").await,
        check,
        "add token",
    );
    ok(
        store.add_join_token(other.id, "hash-b").await,
        check,
        "add token",
    );
    assert!(
        matches!(
            store.add_join_token(other.id, "hash-a").await,
            Err(Error::AlreadyExists { .. })
        ),
        "[{check}] a token hash is unique"
    );
    assert!(
        matches!(
            store.add_join_token(ClusterId(987_654), "hash-c").await,
            Err(Error::NotFound { .. })
        ),
        "[{check}] a token for an unknown cluster is NotFound"
    );
    let got = ok(
        store.join_token_cluster("hash-a").await,
        check,
        "token lookup",
    );
    assert_eq!(
        got,
        Some(fx.cluster.id),
        "[{check}] token a is the fixture's"
    );
    let got = ok(
        store.join_token_cluster("nope").await,
        check,
        "token lookup",
    );
    assert_eq!(got, None, "[{check}] unknown token");

    let h = &fx.hosts[0];
    let none = ok(store.host_credential(h.id).await, check, "credential");
    assert_eq!(none, None, "[{check}] no credential before an agent joined");
    assert!(
        ok(store.claim_host(h.id, "cred").await, check, "claim"),
        "[{check}] the first claim of a host wins"
    );
    assert!(
        !ok(store.claim_host(h.id, "other").await, check, "claim again"),
        "[{check}] a claimed host cannot be claimed again"
    );
    let got = ok(store.host_credential(h.id).await, check, "credential");
    assert_eq!(
        got.as_deref(),
        Some("cred"),
        "[{check}] the first claim's credential kept"
    );
    assert!(
        matches!(
            store.claim_host(HostId(987_654), "x").await,
            Err(Error::NotFound { .. })
        ),
        "[{check}] claiming an unknown host is NotFound"
    );
    assert!(
        matches!(
            store.host_credential(HostId(987_654)).await,
            Err(Error::NotFound { .. })
        ),
        "[{check}] credential of an unknown host is NotFound"
    );

    ok(
        store.set_host_state(h.id, HostState::Lost, None).await,
        check,
        "set lost",
    );
    let facts = HostFacts {
        os: "Debian".into(),
        cores: 2,
        memory_bytes: 1 << 30,
        ..HostFacts::default()
    };
    let metrics = HostMetrics {
        at: 5,
        cpu_percent: 12.5,
        memory_used_bytes: 1 << 20,
        memory_total_bytes: 1 << 30,
        load: [0.5, 0.25, 0.125],
        ..HostMetrics::default()
    };
    let report = HostReport {
        at: 1_000,
        address: Some("10.9.9.9".into()),
        facts: Some(facts.clone()),
        metrics: None,
        units: Vec::new(),
    };
    ok(
        store.record_host_report(h.id, &report).await,
        check,
        "register",
    );
    let health = UnitHealth {
        cluster: fx.cluster.name.clone(),
        service: fx.service.name.clone(),
        component: "zookeeper_server".into(),
        healthy: false,
        exit_code: Some(3),
        message: "not running".into(),
        checked_at: 1_500,
    };
    let unknown = UnitHealth {
        service: "no-such-service".into(),
        ..health.clone()
    };
    let beat = HostReport {
        at: 2_000,
        address: None,
        facts: None,
        metrics: Some(metrics.clone()),
        units: vec![health, unknown],
    };
    ok(
        store.record_host_report(h.id, &beat).await,
        check,
        "heartbeat",
    );
    let got = ok(store.host_by_name(&h.name).await, check, "host").expect("host exists");
    assert_eq!(
        got.state,
        HostState::Online,
        "[{check}] a report means ONLINE"
    );
    assert_eq!(got.last_heartbeat, Some(2_000), "[{check}] last heartbeat");
    assert_eq!(
        (got.address.as_str(), got.reported_address.as_deref()),
        (h.address.as_str(), Some("10.9.9.9")),
        "[{check}] a reported address is kept beside the host's, which does not change"
    );
    assert_eq!(
        got.facts,
        Some(facts),
        "[{check}] facts kept across heartbeats"
    );
    assert_eq!(got.metrics, Some(metrics), "[{check}] metrics stored");
    let units = ok(store.list_units(fx.cluster.id).await, check, "units");
    let on_h: Vec<_> = units.iter().filter(|u| u.host == h.id).collect();
    assert_eq!(on_h.len(), 1, "[{check}] one unit on the host");
    assert_eq!(
        on_h[0].health,
        Some(Health {
            healthy: false,
            message: "not running".into(),
            checked_at: 1_500,
        }),
        "[{check}] unit health stored"
    );
    assert!(
        units
            .iter()
            .filter(|u| u.host != h.id)
            .all(|u| u.health.is_none()),
        "[{check}] other hosts' units untouched"
    );
    assert!(
        matches!(
            store.record_host_report(HostId(987_654), &beat).await,
            Err(Error::NotFound { .. })
        ),
        "[{check}] a report for an unknown host is NotFound"
    );

    // An admin accepts the reported address; a report of the address itself clears it.
    ok(
        store.set_host_address(h.id, "10.9.9.9").await,
        check,
        "set address",
    );
    let got = ok(store.host_by_name(&h.name).await, check, "host").expect("host exists");
    assert_eq!(
        (got.address.as_str(), got.reported_address),
        ("10.9.9.9", None),
        "[{check}] set_host_address sets the address and clears the reported one"
    );
    let elsewhere = HostReport {
        at: 3_000,
        address: Some("10.8.8.8".into()),
        ..HostReport::default()
    };
    ok(
        store.record_host_report(h.id, &elsewhere).await,
        check,
        "report another address",
    );
    let same = HostReport {
        at: 3_500,
        address: Some("10.9.9.9".into()),
        ..HostReport::default()
    };
    ok(
        store.record_host_report(h.id, &same).await,
        check,
        "report the host's address",
    );
    let got = ok(store.host_by_name(&h.name).await, check, "host").expect("host exists");
    assert_eq!(
        (got.address.as_str(), got.reported_address),
        ("10.9.9.9", None),
        "[{check}] reporting the host's own address clears the reported one"
    );
    assert!(
        matches!(
            store.set_host_address(HostId(987_654), "10.0.0.1").await,
            Err(Error::NotFound { .. })
        ),
        "[{check}] setting the address of an unknown host is NotFound"
    );
}

/// Claiming a host is one compare-and-set: of many claims of one host at once, exactly one
/// wins, and the credential stored is the winner's.
pub async fn concurrent_claims(store: &dyn Store) {
    let check = "concurrent_claims";
    let fx = fixture(store, check, "claims", 1).await;
    let h = &fx.hosts[0];
    let claims = (0..32).map(|i| {
        let hash = format!("claim-{i}");
        async move { (store.claim_host(h.id, &hash).await, hash) }
    });
    let results = futures_join_all(claims).await;
    let winners: Vec<&String> = results
        .iter()
        .filter_map(|(r, hash)| match r {
            Ok(true) => Some(hash),
            Ok(false) => None,
            Err(e) => panic!("store conformance [{check}]: claim failed: {e}"),
        })
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "store conformance [{check}]: exactly one of 32 concurrent claims wins, not {winners:?}"
    );
    let stored = ok(store.host_credential(h.id).await, check, "credential");
    assert_eq!(
        stored.as_deref(),
        Some(winners[0].as_str()),
        "store conformance [{check}]: the winner's credential is stored"
    );
}

/// Polls every future to completion concurrently (this crate does not depend on `futures`).
async fn futures_join_all<F: std::future::Future>(
    futs: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|v| v.expect("every future ended"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Users, API tokens and audit.

fn new_user(name: &str, role: Role, password_hash: Option<&str>) -> NewUser {
    NewUser {
        name: name.into(),
        password_hash: password_hash.map(String::from),
        role,
    }
}

/// Users: created with their fields, names unique, role and password changes, delete, and
/// unknown ids refused.
pub async fn users(store: &dyn Store) {
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
        "[{check}] created fields"
    );
    let v = ok(
        store
            .create_user(&new_user("conf-bob", Role::Viewer, None))
            .await,
        check,
        "create user without password",
    );
    assert!(!v.has_password, "[{check}] no password");
    assert!(
        matches!(
            store
                .create_user(&new_user("conf-ann", Role::Admin, None))
                .await,
            Err(Error::AlreadyExists { kind: "user", .. })
        ),
        "[{check}] a duplicate user name is AlreadyExists"
    );
    let got = ok(store.user_by_name("conf-ann").await, check, "user by name");
    assert_eq!(got.as_ref(), Some(&u), "[{check}] user by name");
    assert_eq!(
        ok(
            store.user_by_name("conf-nobody").await,
            check,
            "missing user"
        ),
        None,
        "[{check}] unknown name is None"
    );
    let all = ok(store.list_users().await, check, "list users");
    let pos = |id| all.iter().position(|x: &User| x.id == id);
    assert!(
        pos(u.id).is_some_and(|a| pos(v.id).is_some_and(|b| a < b)),
        "[{check}] list holds both, by id"
    );
    assert_eq!(
        ok(store.user_password_hash(u.id).await, check, "hash").as_deref(),
        Some("$argon2id$fake"),
        "[{check}] password hash kept"
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
        "[{check}] role and password changed"
    );
    ok(
        store.set_user_password(v.id, None).await,
        check,
        "clear password",
    );
    assert_eq!(
        ok(store.user_password_hash(v.id).await, check, "hash cleared"),
        None,
        "[{check}] password cleared"
    );
    ok(store.delete_user(v.id).await, check, "delete user");
    assert_eq!(
        ok(store.user_by_name("conf-bob").await, check, "deleted"),
        None,
        "[{check}] deleted user is gone"
    );
    let missing = UserId(987_654);
    let nf = |r: Result<()>| matches!(r, Err(Error::NotFound { .. }));
    assert!(nf(store.delete_user(v.id).await), "[{check}] delete twice");
    assert!(
        nf(store.set_user_role(missing, Role::Viewer).await),
        "[{check}] set role of unknown user"
    );
    assert!(
        nf(store.set_user_password(missing, None).await),
        "[{check}] set password of unknown user"
    );
    assert!(
        nf(store.user_password_hash(missing).await.map(|_| ())),
        "[{check}] password hash of unknown user"
    );
}

/// API tokens: looked up by hash, listed per user, hashes unique, deleted alone or with their
/// user, unknown ids refused.
pub async fn api_tokens(store: &dyn Store) {
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
        "[{check}] token fields"
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
    assert!(
        matches!(
            store
                .add_api_token(&add(other.id, "dup", "conf-hash-1"))
                .await,
            Err(Error::AlreadyExists { .. })
        ),
        "[{check}] a duplicate token hash is AlreadyExists"
    );
    assert!(
        matches!(
            store
                .add_api_token(&add(UserId(987_654), "x", "conf-hash-9"))
                .await,
            Err(Error::NotFound { .. })
        ),
        "[{check}] a token for an unknown user is NotFound"
    );
    let (who, tok) = ok(store.token_user("conf-hash-2").await, check, "token user")
        .expect("token found by hash");
    assert_eq!(who, u, "[{check}] token's user");
    assert_eq!(tok, t2, "[{check}] the token itself");
    assert_eq!(
        ok(
            store.token_user("conf-hash-none").await,
            check,
            "unknown hash"
        ),
        None,
        "[{check}] an unknown hash is None"
    );
    ok(store.touch_api_token(t1.id, 4_242).await, check, "touch");
    let listed = ok(store.list_api_tokens(u.id).await, check, "list tokens");
    assert_eq!(
        listed.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![t1.id, t2.id],
        "[{check}] a user's tokens, by id"
    );
    assert_eq!(listed[0].last_used_at, Some(4_242), "[{check}] touched");
    assert_eq!(
        ok(store.api_token(t3.id).await, check, "token by id"),
        Some(t3.clone()),
        "[{check}] token by id"
    );
    ok(store.delete_api_token(t2.id).await, check, "delete token");
    assert_eq!(
        ok(
            store.token_user("conf-hash-2").await,
            check,
            "deleted token"
        ),
        None,
        "[{check}] a deleted token no longer finds its user"
    );
    ok(store.delete_user(u.id).await, check, "delete user");
    assert_eq!(
        ok(store.token_user("conf-hash-1").await, check, "user's token"),
        None,
        "[{check}] deleting a user deletes its tokens"
    );
    assert_eq!(
        ok(store.api_token(t1.id).await, check, "user's token by id"),
        None,
        "[{check}] deleting a user deletes its tokens (by id)"
    );
    assert!(
        ok(
            store.token_user("conf-hash-3").await,
            check,
            "other's token"
        )
        .is_some(),
        "[{check}] other users' tokens stay"
    );
    let nf = |r: Result<()>| matches!(r, Err(Error::NotFound { .. }));
    assert!(
        nf(store.delete_api_token(t2.id).await),
        "[{check}] delete a token twice"
    );
    assert!(
        nf(store.touch_api_token(t2.id, 1).await),
        "[{check}] touch an unknown token"
    );
    assert!(
        nf(store.list_api_tokens(u.id).await.map(|_| ())),
        "[{check}] tokens of an unknown user"
    );
}

/// Audit: events come back as appended, ascending by id, filtered by actor and paged by an id
/// cursor without gaps or repeats.
pub async fn audit(store: &dyn Store) {
    let check = "audit";
    let actor = "conf-auditor";
    let mut appended = Vec::new();
    for i in 0..7 {
        let e = NewAuditEvent {
            at: 1_000 + i,
            actor: if i == 3 {
                "conf-other".into()
            } else {
                actor.into()
            },
            action: "submit-job".into(),
            target: format!("job {i}"),
            outcome: [Outcome::Ok, Outcome::Refused, Outcome::Failed][i as usize % 3],
            detail: format!("detail {i}"),
        };
        let got = ok(store.append_audit(&e).await, check, "append");
        assert_eq!(
            (got.at, &got.actor, &got.target, got.outcome, &got.detail),
            (e.at, &e.actor, &e.target, e.outcome, &e.detail),
            "[{check}] appended fields"
        );
        if let Some(prev) = appended.last().map(|p: &AuditEvent| p.id) {
            assert!(got.id > prev, "[{check}] ids ascend");
        }
        appended.push(got);
    }
    let mine: Vec<_> = appended
        .iter()
        .filter(|e| e.actor == actor)
        .cloned()
        .collect();
    let filter = AuditFilter {
        actor: Some(actor.into()),
        ..AuditFilter::default()
    };
    assert_eq!(
        ok(store.list_audit(&filter).await, check, "list by actor"),
        mine,
        "[{check}] one actor's events, ascending"
    );
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = ok(
            store
                .list_audit(&AuditFilter {
                    after,
                    limit: Some(4),
                    actor: Some(actor.into()),
                })
                .await,
            check,
            "page",
        );
        assert!(page.len() <= 4, "[{check}] limit holds");
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        paged.extend(page);
    }
    assert_eq!(
        paged, mine,
        "[{check}] paging by cursor: no gaps, no repeats"
    );
    let tail = ok(
        store
            .list_audit(&AuditFilter {
                after: Some(appended[4].id),
                ..AuditFilter::default()
            })
            .await,
        check,
        "after cursor",
    );
    assert_eq!(
        tail,
        appended[5..].to_vec(),
        "[{check}] everything after a cursor, every actor"
    );
}

// ---------------------------------------------------------------------------------------------
// Config versions, units added and removed one by one, snapshots and relations.

/// A service instance without units in the fixture's cluster.
async fn bare_service(store: &dyn Store, check: &str, fx: &Fixture, name: &str) -> ServiceInstance {
    let new = NewService {
        cluster: fx.cluster.id,
        name: name.into(),
        stack: "bigtop".into(),
        stack_version: "1.0.0".into(),
        service: name.into(),
        configs: Default::default(),
        host_overrides: Default::default(),
        author: "tester".into(),
    };
    ok(
        store.add_service(new, vec![]).await,
        check,
        "add bare service",
    )
    .0
}

/// Cancels a QUEUED job.
async fn cancel(store: &dyn Store, check: &str, job: JobId) {
    let batch = Batch {
        jobs: vec![JobChange {
            id: job,
            from: JobState::Queued,
            to: JobState::Canceled,
            at: 2_000,
        }],
        ..Batch::default()
    };
    let a = ok(store.apply(&batch).await, check, "cancel the job");
    assert_eq!(
        a.jobs,
        vec![true],
        "store conformance [{check}]: a QUEUED job can be canceled"
    );
}

/// Config versions: add_service writes version 1; add_config_version is compare-and-set on the
/// current version and makes the new one the instance's configs in the same write; versions
/// are immutable and stay readable after the instance is removed.
pub async fn config_versions(store: &dyn Store) {
    const C: &str = "config_versions";
    let fx = fixture(store, C, "cv", 2).await;
    let sid = fx.service.id;
    assert_eq!(
        fx.service.config_version, 1,
        "store conformance [{C}]: add_service makes config version 1 the desired one"
    );
    assert_eq!(
        fx.service.host_overrides["cv-h0"]["zoo.cfg"]["tickTime"],
        serde_json::json!(3000),
        "store conformance [{C}]: add_service keeps the host overrides"
    );
    let listed = ok(store.list_services(fx.cluster.id).await, C, "list_services");
    assert_eq!(
        listed,
        vec![fx.service.clone()],
        "store conformance [{C}]: list_services gives configs, host overrides and version back"
    );
    let v1 = ConfigVersion {
        service: sid,
        version: 1,
        author: "alice".into(),
        created_at: fx.service.created_at,
        message: "initial configs".into(),
        configs: fx.service.configs.clone(),
        host_overrides: fx.service.host_overrides.clone(),
    };
    let versions = ok(
        store.list_config_versions(sid).await,
        C,
        "list_config_versions",
    );
    assert_eq!(
        versions.len(),
        1,
        "store conformance [{C}]: a new instance has one version"
    );
    assert_eq!(
        ConfigVersion {
            created_at: v1.created_at,
            ..versions[0].clone()
        },
        v1,
        "store conformance [{C}]: version 1 holds the author, message 'initial configs', \
         configs and host overrides of add_service"
    );
    let v1 = versions[0].clone();
    assert_eq!(
        ok(store.config_version(sid, 1).await, C, "config_version"),
        Some(v1.clone()),
        "store conformance [{C}]: config_version gives version 1"
    );
    assert_eq!(
        ok(store.config_version(sid, 2).await, C, "config_version"),
        None,
        "store conformance [{C}]: config_version of a version not made yet is None"
    );

    let change = NewConfigVersion {
        author: "bob".into(),
        message: "faster ticks".into(),
        configs: [(
            "zoo.cfg".to_string(),
            [("tickTime".to_string(), serde_json::json!(1000))].into(),
        )]
        .into(),
        host_overrides: [(
            "cv-h1".to_string(),
            [(
                "zoo.cfg".to_string(),
                [("dataDir".to_string(), serde_json::json!("/data"))].into(),
            )]
            .into(),
        )]
        .into(),
    };
    let v2 = ok(
        store.add_config_version(sid, 1, &change).await,
        C,
        "add_config_version",
    );
    assert_eq!(
        (
            v2.service,
            v2.version,
            v2.author.as_str(),
            v2.message.as_str(),
            &v2.configs,
            &v2.host_overrides
        ),
        (
            sid,
            2,
            "bob",
            "faster ticks",
            &change.configs,
            &change.host_overrides
        ),
        "store conformance [{C}]: a new version is numbered expected + 1 and keeps its fields"
    );
    let now = ok(
        store.service_by_name(fx.cluster.id, "svc").await,
        C,
        "service_by_name",
    );
    let now = now.unwrap_or_else(|| panic!("store conformance [{C}]: the service vanished"));
    assert_eq!(
        (now.config_version, &now.configs, &now.host_overrides),
        (2, &change.configs, &change.host_overrides),
        "store conformance [{C}]: the new version becomes the instance's configs, host \
         overrides and desired version"
    );

    match store.add_config_version(sid, 7, &change).await {
        Err(Error::Conflict(m)) if m.contains('2') && m.contains('7') => {}
        other => panic!(
            "store conformance [{C}]: add_config_version with a stale expected version must be \
             Conflict naming the expected (7) and the actual (2) one, got {other:?}"
        ),
    }
    match store.add_config_version(sid, 1, &change).await {
        Err(Error::Conflict(_)) => {}
        other => panic!(
            "store conformance [{C}]: a second change from version 1 must be Conflict, got \
             {other:?}"
        ),
    }
    let versions = ok(
        store.list_config_versions(sid).await,
        C,
        "list_config_versions",
    );
    assert_eq!(
        versions,
        vec![v1.clone(), v2.clone()],
        "store conformance [{C}]: versions are listed oldest first, earlier ones unchanged, \
         refused changes leave nothing"
    );
    let now = ok(store.list_services(fx.cluster.id).await, C, "list_services");
    assert_eq!(
        now.first().map(|s| s.config_version),
        Some(2),
        "store conformance [{C}]: a refused change leaves the desired version alone"
    );
    let empty = NewConfigVersion {
        author: "bob".into(),
        message: "back to defaults".into(),
        ..NewConfigVersion::default()
    };
    ok(
        store.add_config_version(sid, 2, &empty).await,
        C,
        "add_config_version without values",
    );
    let now = ok(store.list_services(fx.cluster.id).await, C, "list_services");
    assert!(
        now.first().is_some_and(|s| s.config_version == 3
            && s.configs.is_empty()
            && s.host_overrides.is_empty()),
        "store conformance [{C}]: a version without values empties the instance's configs, got \
         {now:?}"
    );

    match store
        .add_config_version(ServiceId(i64::MAX), 1, &change)
        .await
    {
        Err(Error::NotFound { .. }) => {}
        other => panic!(
            "store conformance [{C}]: add_config_version on an unknown service must be \
             NotFound, got {other:?}"
        ),
    }
    assert_eq!(
        ok(
            store.list_config_versions(ServiceId(i64::MAX)).await,
            C,
            "list_config_versions"
        ),
        vec![],
        "store conformance [{C}]: an unknown service has no versions"
    );
    assert_eq!(
        ok(
            store.list_config_versions(fx.service.id).await,
            C,
            "list_config_versions"
        )
        .len(),
        3,
        "store conformance [{C}]: each change adds one version"
    );
    let other = fixture(store, C, "cv-other", 1).await;
    assert_eq!(
        ok(
            store.list_config_versions(other.service.id).await,
            C,
            "list_config_versions"
        )
        .len(),
        1,
        "store conformance [{C}]: versions belong to their own service"
    );

    ok(store.remove_service(sid).await, C, "remove_service");
    assert_eq!(
        ok(
            store.list_config_versions(sid).await,
            C,
            "list_config_versions"
        )
        .len(),
        3,
        "store conformance [{C}]: a removed service's versions stay listed"
    );
    assert_eq!(
        ok(store.config_version(sid, 2).await, C, "config_version"),
        Some(v2),
        "store conformance [{C}]: a removed service's versions stay readable"
    );
    match store.add_config_version(sid, 3, &change).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!(
            "store conformance [{C}]: add_config_version on a removed service must be \
             NotFound, got {other:?}"
        ),
    }
}

/// add_units and remove_unit: NotFound and AlreadyExists refused as a whole, removal refused
/// while started or in an unfinished job, removed units neither listed nor holding their host
/// nor their place, their tasks still readable; apply sets the applied config version and hash
/// in its transaction.
pub async fn unit_changes(store: &dyn Store) {
    const C: &str = "unit_changes";
    let fx = fixture(store, C, "uc", 2).await;
    let cid = fx.cluster.id;
    let sid = fx.service.id;
    let h2 = ok(
        store
            .add_host(NewHost {
                cluster: cid,
                name: "uc-h2".into(),
                address: "10.0.2.2".into(),
            })
            .await,
        C,
        "add host",
    );
    assert!(
        fx.units
            .iter()
            .all(|u| u.applied_version.is_none() && u.applied_hash.is_none()),
        "store conformance [{C}]: new units have applied nothing"
    );
    let nu = |component: &str, host: HostId| NewUnit {
        component: component.into(),
        host,
    };
    let added = ok(
        store
            .add_units(
                sid,
                vec![
                    nu("zookeeper_client", fx.hosts[0].id),
                    nu("zookeeper_server", h2.id),
                ],
            )
            .await,
        C,
        "add_units",
    );
    assert_eq!(
        added
            .iter()
            .map(|u| (u.service, u.component.as_str(), u.host, u.state))
            .collect::<Vec<_>>(),
        vec![
            (sid, "zookeeper_client", fx.hosts[0].id, UnitState::New),
            (sid, "zookeeper_server", h2.id, UnitState::New),
        ],
        "store conformance [{C}]: add_units places NEW units of the service, in order"
    );
    let mut all = fx.units.clone();
    all.extend(added.iter().cloned());
    assert_eq!(
        ok(store.list_units(cid).await, C, "list_units"),
        all,
        "store conformance [{C}]: added units are listed by id"
    );

    let refused = [
        (
            vec![
                nu("zookeeper_client", fx.hosts[1].id),
                nu("zookeeper_server", fx.hosts[0].id),
            ],
            "a component already on that host",
            "AlreadyExists",
        ),
        (
            vec![
                nu("zookeeper_client", fx.hosts[1].id),
                nu("zookeeper_client", fx.hosts[1].id),
            ],
            "the same component twice on one host",
            "AlreadyExists",
        ),
        (
            vec![
                nu("zookeeper_client", fx.hosts[1].id),
                nu("zookeeper_client", HostId(i64::MAX)),
            ],
            "an unknown host",
            "NotFound",
        ),
    ];
    for (units, what, want) in refused {
        let got = store.add_units(sid, units).await;
        let right = matches!(
            (&got, want),
            (Err(Error::AlreadyExists { .. }), "AlreadyExists")
                | (Err(Error::NotFound { .. }), "NotFound")
        );
        assert!(
            right,
            "store conformance [{C}]: add_units with {what} must be {want}, got {got:?}"
        );
        assert_eq!(
            ok(store.list_units(cid).await, C, "list_units"),
            all,
            "store conformance [{C}]: add_units refused for {what} adds no unit at all"
        );
    }
    match store
        .add_units(ServiceId(i64::MAX), vec![nu("zookeeper_client", h2.id)])
        .await
    {
        Err(Error::NotFound { .. }) => {}
        other => panic!(
            "store conformance [{C}]: add_units to an unknown service must be NotFound, got \
             {other:?}"
        ),
    }
    let gone_host = ok(
        store
            .add_host(NewHost {
                cluster: cid,
                name: "uc-gone".into(),
                address: "10.0.2.3".into(),
            })
            .await,
        C,
        "add host",
    );
    ok(store.remove_host(gone_host.id).await, C, "remove_host");
    match store
        .add_units(sid, vec![nu("zookeeper_client", gone_host.id)])
        .await
    {
        Err(Error::NotFound { .. }) => {}
        other => panic!(
            "store conformance [{C}]: add_units on a removed host must be NotFound, got \
             {other:?}"
        ),
    }
    let gone = bare_service(store, C, &fx, "gone").await;
    ok(store.remove_service(gone.id).await, C, "remove_service");
    match store
        .add_units(gone.id, vec![nu("zookeeper_client", h2.id)])
        .await
    {
        Err(Error::NotFound { .. }) => {}
        other => panic!(
            "store conformance [{C}]: add_units to a removed service must be NotFound, got \
             {other:?}"
        ),
    }

    // remove_unit: refused while STARTED, then while an unfinished job has a task on it.
    let target = added[1].id; // zookeeper_server on h2
    let set = |state| Batch {
        units: vec![(target, state)],
        ..Batch::default()
    };
    ok(
        store.apply(&set(UnitState::Started)).await,
        C,
        "start the unit",
    );
    match store.remove_unit(target).await {
        Err(Error::Conflict(m)) if m.contains("stop it first") => {}
        other => panic!(
            "store conformance [{C}]: removing a STARTED unit must be Conflict saying to stop \
             it first, got {other:?}"
        ),
    }
    ok(
        store.apply(&set(UnitState::Stopped)).await,
        C,
        "stop the unit",
    );
    let mut new = job(&fx, vec![stage(&fx, "stop", vec![])]);
    new.stages[0].tasks = vec![NewTask {
        unit: target,
        host: h2.id,
    }];
    let d = ok(store.create_job(&new).await, C, "create job");
    match store.remove_unit(target).await {
        Err(Error::Conflict(m)) if m.contains(&d.job.id.to_string()) => {}
        other => panic!(
            "store conformance [{C}]: removing a unit an unfinished job has a task on must be \
             Conflict naming the job, got {other:?}"
        ),
    }
    // Another unit of the same service, not in the job, can go meanwhile.
    ok(
        store.remove_unit(added[0].id).await,
        C,
        "remove a unit no job touches",
    );
    cancel(store, C, d.job.id).await;
    ok(store.remove_unit(target).await, C, "remove a stopped unit");
    assert_eq!(
        ok(store.list_units(cid).await, C, "list_units"),
        fx.units,
        "store conformance [{C}]: removed units are not listed"
    );
    let detail = ok(store.job_detail(d.job.id).await, C, "job_detail");
    assert!(
        detail.is_some_and(|d| d.tasks.iter().any(|t| t.unit == target)),
        "store conformance [{C}]: a job's tasks on a removed unit stay readable"
    );
    for id in [target, UnitId(i64::MAX)] {
        match store.remove_unit(id).await {
            Err(Error::NotFound { .. }) => {}
            other => panic!(
                "store conformance [{C}]: removing a removed or unknown unit must be NotFound, \
                 got {other:?}"
            ),
        }
    }
    ok(
        store.remove_host(h2.id).await,
        C,
        "remove a host whose only unit was removed",
    );
    let again = ok(
        store
            .add_units(sid, vec![nu("zookeeper_client", fx.hosts[0].id)])
            .await,
        C,
        "add a removed unit's component on its host again",
    );
    assert_ne!(
        again[0].id, added[0].id,
        "store conformance [{C}]: a unit added in a removed one's place is a new unit"
    );

    // apply sets what configure applied, in the batch's transaction.
    let (u0, u1) = (fx.units[0].id, fx.units[1].id);
    let batch = Batch {
        applied_configs: vec![
            (u0, 1, "old".into()),
            (u0, 2, "h-u0".into()),
            (UnitId(i64::MAX), 1, "nobody".into()),
        ],
        ..Batch::default()
    };
    ok(store.apply(&batch).await, C, "apply applied configs");
    let applied = |units: Vec<Unit>| -> Vec<(UnitId, Option<u32>, Option<String>)> {
        units
            .into_iter()
            .map(|u| (u.id, u.applied_version, u.applied_hash))
            .collect()
    };
    let want = vec![
        (u0, Some(2), Some("h-u0".to_string())),
        (u1, None, None),
        (again[0].id, None, None),
    ];
    assert_eq!(
        applied(ok(store.list_units(cid).await, C, "list_units")),
        want,
        "store conformance [{C}]: apply sets applied_version and applied_hash (the last one \
         given for a unit wins, unknown units are skipped), list_units reads them back"
    );
    let failing = Batch {
        applied_configs: vec![(u1, 2, "h-u1".into())],
        logs: vec![LogLine {
            task: TaskId(i64::MAX),
            attempt: 1,
            seq: 0,
            stream: LogStream::Stdout,
            at: 1,
            line: "x".into(),
        }],
        ..Batch::default()
    };
    assert!(
        store.apply(&failing).await.is_err(),
        "store conformance [{C}]: a batch with a log line of an unknown task fails"
    );
    assert_eq!(
        applied(ok(store.list_units(cid).await, C, "list_units")),
        want,
        "store conformance [{C}]: a failed batch sets no applied config"
    );
}

/// Snapshots: names unique per cluster, listed oldest first, looked up by name, entries kept
/// (by service id).
pub async fn snapshots(store: &dyn Store) {
    const C: &str = "snapshots";
    let fx = fixture(store, C, "snap", 1).await;
    let other = fixture(store, C, "snap-other", 1).await;
    let extra = bare_service(store, C, &fx, "extra").await;
    let entry = |s: &ServiceInstance, version| SnapshotEntry {
        service: s.id,
        name: s.name.clone(),
        version,
    };
    let new = |cluster: ClusterId, name: &str, entries| NewSnapshot {
        cluster,
        name: name.into(),
        author: "alice".into(),
        message: format!("{name} message"),
        entries,
    };
    let first = ok(
        store
            .add_snapshot(&new(
                fx.cluster.id,
                "before-upgrade",
                vec![entry(&extra, 1), entry(&fx.service, 3)],
            ))
            .await,
        C,
        "add_snapshot",
    );
    assert_eq!(
        (
            first.cluster,
            first.name.as_str(),
            first.author.as_str(),
            first.message.as_str(),
            &first.entries
        ),
        (
            fx.cluster.id,
            "before-upgrade",
            "alice",
            "before-upgrade message",
            &vec![entry(&fx.service, 3), entry(&extra, 1)]
        ),
        "store conformance [{C}]: a snapshot keeps its fields, entries by service id"
    );
    let second = ok(
        store
            .add_snapshot(&new(fx.cluster.id, "after", vec![]))
            .await,
        C,
        "add_snapshot",
    );
    assert_ne!(
        first.id, second.id,
        "store conformance [{C}]: snapshot ids are distinct"
    );
    match store
        .add_snapshot(&new(fx.cluster.id, "before-upgrade", vec![]))
        .await
    {
        Err(Error::AlreadyExists { name, .. }) if name == "before-upgrade" => {}
        other => panic!(
            "store conformance [{C}]: a duplicate snapshot name in a cluster must be \
             AlreadyExists naming it, got {other:?}"
        ),
    }
    let elsewhere = ok(
        store
            .add_snapshot(&new(
                other.cluster.id,
                "before-upgrade",
                vec![entry(&other.service, 1)],
            ))
            .await,
        C,
        "add the same snapshot name in another cluster",
    );
    assert_eq!(
        ok(
            store.list_snapshots(fx.cluster.id).await,
            C,
            "list_snapshots"
        ),
        vec![first.clone(), second],
        "store conformance [{C}]: list_snapshots gives the cluster's snapshots oldest first"
    );
    assert_eq!(
        ok(
            store.snapshot(fx.cluster.id, "before-upgrade").await,
            C,
            "snapshot"
        ),
        Some(first),
        "store conformance [{C}]: snapshot finds one by name in its cluster"
    );
    assert_eq!(
        ok(
            store.snapshot(other.cluster.id, "before-upgrade").await,
            C,
            "snapshot"
        ),
        Some(elsewhere),
        "store conformance [{C}]: snapshot names are per cluster"
    );
    assert_eq!(
        ok(store.snapshot(fx.cluster.id, "nope").await, C, "snapshot"),
        None,
        "store conformance [{C}]: snapshot of an unknown name is None"
    );
    assert!(
        store
            .add_snapshot(&new(ClusterId(i64::MAX), "x", vec![]))
            .await
            .is_err(),
        "store conformance [{C}]: a snapshot of an unknown cluster is refused"
    );
}

/// Relations and their events: same endpoints related once at a time, NotFound for removed,
/// unknown or foreign services, soft removal (alone or with a service), events oldest first
/// and still readable after removal; a cluster whose services went can be deleted with its
/// relations, versions and snapshots.
pub async fn relations(store: &dyn Store) {
    const C: &str = "relations";
    let fx = fixture(store, C, "rel", 1).await;
    let other = fixture(store, C, "rel-other", 1).await;
    let prom = bare_service(store, C, &fx, "prometheus").await;
    let exporter = bare_service(store, C, &fx, "exporter").await;
    let cid = fx.cluster.id;
    let rel = |requirer: &ServiceInstance, rep: &str, provider: &ServiceInstance, pep: &str| {
        NewRelation {
            cluster: requirer.cluster,
            requirer: requirer.id,
            requirer_endpoint: rep.into(),
            provider: provider.id,
            provider_endpoint: pep.into(),
            interface: "prometheus-scrape".into(),
            auto_reconfigure: true,
        }
    };
    let new1 = rel(&prom, "targets", &fx.service, "metrics");
    let r1 = ok(store.add_relation(&new1).await, C, "add_relation");
    assert_eq!(
        (
            r1.cluster,
            r1.requirer,
            r1.requirer_endpoint.as_str(),
            r1.provider,
            r1.provider_endpoint.as_str(),
            r1.interface.as_str(),
            r1.auto_reconfigure
        ),
        (
            cid,
            prom.id,
            "targets",
            fx.service.id,
            "metrics",
            "prometheus-scrape",
            true
        ),
        "store conformance [{C}]: a relation keeps its fields"
    );
    let mut new2 = rel(&prom, "targets", &exporter, "metrics");
    new2.auto_reconfigure = false;
    let r2 = ok(store.add_relation(&new2).await, C, "add_relation");
    let r_other = ok(
        store
            .add_relation(&rel(&other.service, "a", &other.service, "b"))
            .await,
        C,
        "add_relation in another cluster",
    );
    assert_eq!(
        ok(store.list_relations(cid).await, C, "list_relations"),
        vec![r1.clone(), r2.clone()],
        "store conformance [{C}]: list_relations gives the cluster's relations by id"
    );
    match store.add_relation(&new1).await {
        Err(Error::AlreadyExists { .. }) => {}
        other => panic!(
            "store conformance [{C}]: relating the same endpoints again must be AlreadyExists, \
             got {other:?}"
        ),
    }
    let mut foreign = rel(&prom, "targets", &other.service, "metrics");
    foreign.cluster = cid;
    let mut unknown = rel(&prom, "x", &fx.service, "y");
    unknown.requirer = ServiceId(i64::MAX);
    for (bad, what) in [(foreign, "another cluster's"), (unknown, "an unknown")] {
        match store.add_relation(&bad).await {
            Err(Error::NotFound { .. }) => {}
            other => panic!(
                "store conformance [{C}]: a relation with {what} service must be NotFound, got \
                 {other:?}"
            ),
        }
    }

    // Events, with and without a job, oldest first, per relation.
    let d = simple_job(store, C, &fx).await;
    let ev = |relation: RelationId, kind, service: ServiceId, job| NewRelationEvent {
        relation,
        kind,
        service,
        detail: format!("{kind:?} detail"),
        job,
    };
    let e1 = ok(
        store
            .add_relation_event(&ev(r1.id, RelationEventKind::Joined, prom.id, None))
            .await,
        C,
        "add_relation_event",
    );
    let e2 = ok(
        store
            .add_relation_event(&ev(
                r1.id,
                RelationEventKind::Changed,
                prom.id,
                Some(d.job.id),
            ))
            .await,
        C,
        "add_relation_event",
    );
    let e_r2 = ok(
        store
            .add_relation_event(&ev(r2.id, RelationEventKind::Joined, exporter.id, None))
            .await,
        C,
        "add_relation_event",
    );
    assert_eq!(
        (e2.relation, e2.kind, e2.service, e2.detail.as_str(), e2.job),
        (
            r1.id,
            RelationEventKind::Changed,
            prom.id,
            "Changed detail",
            Some(d.job.id)
        ),
        "store conformance [{C}]: an event keeps its fields"
    );
    assert!(
        e1.id < e2.id,
        "store conformance [{C}]: event ids ascend in the order events were added"
    );
    assert_eq!(
        ok(
            store.list_relation_events(r1.id).await,
            C,
            "list_relation_events"
        ),
        vec![e1.clone(), e2.clone()],
        "store conformance [{C}]: list_relation_events gives a relation's events oldest first"
    );
    assert!(
        store
            .add_relation_event(&ev(
                RelationId(i64::MAX),
                RelationEventKind::Joined,
                prom.id,
                None
            ))
            .await
            .is_err(),
        "store conformance [{C}]: an event of an unknown relation is refused"
    );

    // Removal: soft, alone or with a service.
    ok(store.remove_relation(r2.id).await, C, "remove_relation");
    assert_eq!(
        ok(store.list_relations(cid).await, C, "list_relations"),
        vec![r1.clone()],
        "store conformance [{C}]: a removed relation is not listed"
    );
    for id in [r2.id, RelationId(i64::MAX)] {
        match store.remove_relation(id).await {
            Err(Error::NotFound { .. }) => {}
            other => panic!(
                "store conformance [{C}]: removing a removed or unknown relation must be \
                 NotFound, got {other:?}"
            ),
        }
    }
    let broken = ok(
        store
            .add_relation_event(&ev(r2.id, RelationEventKind::Broken, exporter.id, None))
            .await,
        C,
        "add_relation_event on a removed relation",
    );
    assert_eq!(
        ok(
            store.list_relation_events(r2.id).await,
            C,
            "list_relation_events"
        ),
        vec![e_r2, broken],
        "store conformance [{C}]: a removed relation's events stay readable"
    );
    let r3 = ok(
        store.add_relation(&new2).await,
        C,
        "relate a removed relation's endpoints again",
    );
    assert_ne!(
        r3.id, r2.id,
        "store conformance [{C}]: relating removed endpoints again makes a new relation"
    );
    ok(store.remove_service(prom.id).await, C, "remove_service");
    assert_eq!(
        ok(store.list_relations(cid).await, C, "list_relations"),
        vec![],
        "store conformance [{C}]: removing a service removes its relations"
    );
    assert_eq!(
        ok(
            store.list_relations(other.cluster.id).await,
            C,
            "list_relations"
        ),
        vec![r_other],
        "store conformance [{C}]: list_relations gives only that cluster's relations"
    );
    assert_eq!(
        ok(
            store.list_relation_events(r1.id).await,
            C,
            "list_relation_events"
        ),
        vec![e1, e2],
        "store conformance [{C}]: a removed service's relation events stay readable"
    );
    match store.add_relation(&new1).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!(
            "store conformance [{C}]: a relation with a removed service must be NotFound, got \
             {other:?}"
        ),
    }
    cancel(store, C, d.job.id).await;

    // A cluster that never had jobs, whose services and hosts were removed, can be deleted
    // with its removed relations, their events, config versions and snapshots.
    let del = fixture(store, C, "rel-del", 1).await;
    let peer = bare_service(store, C, &del, "peer").await;
    let r = ok(
        store
            .add_relation(&rel(&peer, "a", &del.service, "b"))
            .await,
        C,
        "add_relation",
    );
    ok(
        store
            .add_relation_event(&ev(r.id, RelationEventKind::Joined, peer.id, None))
            .await,
        C,
        "add_relation_event",
    );
    ok(
        store
            .add_config_version(peer.id, 1, &NewConfigVersion::default())
            .await,
        C,
        "add_config_version",
    );
    ok(
        store
            .add_snapshot(&NewSnapshot {
                cluster: del.cluster.id,
                name: "s".into(),
                author: "alice".into(),
                message: String::new(),
                entries: vec![],
            })
            .await,
        C,
        "add_snapshot",
    );
    match store.delete_cluster(del.cluster.id).await {
        Err(Error::Conflict(_)) => {}
        other => panic!(
            "store conformance [{C}]: deleting a cluster with related services must be \
             Conflict, got {other:?}"
        ),
    }
    ok(store.remove_service(peer.id).await, C, "remove_service");
    ok(
        store.remove_service(del.service.id).await,
        C,
        "remove_service",
    );
    ok(store.remove_host(del.hosts[0].id).await, C, "remove_host");
    ok(
        store.delete_cluster(del.cluster.id).await,
        C,
        "delete a cluster whose removed services had relations, versions and snapshots",
    );
}
