//! Conformance of [`ServiceStore`]: service instances and units, added and removed. Removal is
//! refused while jobs use them and clears a removed host's agent credential, so these checks
//! take a store of clusters, agents and jobs too.

use super::ClusterServices;
use super::fixture::{
    already_exists_named, bare_service, cancel, conflict, fixture, job, new_service, none,
    not_found, ok, refused, set_unit, simple_job, stage, take_down,
};
use crate::Error;
use crate::model::*;
use crate::store::{AgentStore, Batch, JobStore, ServiceStore};

/// Runs the checks of services and units.
pub async fn run<S: ClusterServices + AgentStore + JobStore + ?Sized>(store: &S) {
    checks!(store: services, removal, unit_changes, unknown_ids);
}

/// Services and units: added together atomically, unique names per cluster, lookups.
pub async fn services<S: ClusterServices + ?Sized>(store: &S) {
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

    let dup = new_service(fx.cluster.id, "svc", "kafka");
    let units = vec![NewUnit {
        component: "kafka_broker".into(),
        host: fx.hosts[0].id,
    }];
    already_exists_named(
        store.add_service(dup, units).await,
        C,
        "a duplicate service name in a cluster",
        "svc",
    );
    assert_eq!(
        ok(store.list_units(fx.cluster.id).await, C, "list_units"),
        fx.units,
        "store conformance [{C}]: a refused duplicate service adds no units"
    );

    // A unit on a missing host fails the whole service.
    let broken = new_service(fx.cluster.id, "broken", "kafka");
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

/// Removing hosts and services: refused while in use, then neither listed nor found by name,
/// names usable again, a removed host's credential gone, history still readable by id.
pub async fn removal<S: ClusterServices + AgentStore + JobStore + ?Sized>(store: &S) {
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
    none(
        store.host_by_name("rm-free").await,
        C,
        "a removed host is not found by name",
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
    not_found(store.remove_host(h.id).await, C, "removing a removed host");
    let again = ok(
        store.add_host(free).await,
        C,
        "add a removed host's name again",
    );
    assert_ne!(
        again.id, h.id,
        "store conformance [{C}]: a host added under a removed host's name is a new host"
    );

    refused(
        store.remove_host(fx.hosts[0].id).await,
        C,
        "removing a host with a unit of a live service",
        "Conflict naming the service",
        |e| matches!(e, Error::Conflict(m) if m.contains("svc")),
    );
    set_unit(store, C, fx.units[0].id, UnitState::Started).await;
    refused(
        store.remove_service(fx.service.id).await,
        C,
        "removing a service with a STARTED unit",
        "Conflict saying to stop it first",
        |e| matches!(e, Error::Conflict(m) if m.contains("stop it first")),
    );
    set_unit(store, C, fx.units[0].id, UnitState::Stopped).await;
    let d = simple_job(store, C, &fx).await;
    conflict(
        store.remove_service(fx.service.id).await,
        C,
        "removing a service an unfinished job touches",
    );
    cancel(store, C, d.job.id).await;
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
    not_found(
        store.remove_service(fx.service.id).await,
        C,
        "removing a removed service",
    );
    let reused = new_service(cid, "svc", "zookeeper");
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
    let what = "delete a cluster whose hosts and services are removed";
    take_down(store, C, &empty, what).await;
}

/// add_units and remove_unit: NotFound and AlreadyExists refused as a whole, removal refused
/// while started or in an unfinished job, removed units neither listed nor holding their host
/// nor their place, their tasks still readable; apply sets the applied config version and hash
/// in its transaction.
pub async fn unit_changes<S: ClusterServices + JobStore + ?Sized>(store: &S) {
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

    let refusals = [
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
    for (units, what, want) in refusals {
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
    not_found(
        store
            .add_units(ServiceId(i64::MAX), vec![nu("zookeeper_client", h2.id)])
            .await,
        C,
        "add_units to an unknown service",
    );
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
    not_found(
        store
            .add_units(sid, vec![nu("zookeeper_client", gone_host.id)])
            .await,
        C,
        "add_units on a removed host",
    );
    let gone = bare_service(store, C, &fx, "gone").await;
    ok(store.remove_service(gone.id).await, C, "remove_service");
    not_found(
        store
            .add_units(gone.id, vec![nu("zookeeper_client", h2.id)])
            .await,
        C,
        "add_units to a removed service",
    );

    // remove_unit: refused while STARTED, then while an unfinished job has a task on it.
    let target = added[1].id; // zookeeper_server on h2
    set_unit(store, C, target, UnitState::Started).await;
    refused(
        store.remove_unit(target).await,
        C,
        "removing a STARTED unit",
        "Conflict saying to stop it first",
        |e| matches!(e, Error::Conflict(m) if m.contains("stop it first")),
    );
    set_unit(store, C, target, UnitState::Stopped).await;
    let mut new = job(&fx, vec![stage(&fx, "stop", vec![])]);
    new.stages[0].tasks = vec![NewTask {
        unit: target,
        host: h2.id,
    }];
    let d = ok(store.create_job(&new).await, C, "create job");
    refused(
        store.remove_unit(target).await,
        C,
        "removing a unit an unfinished job has a task on",
        "Conflict naming the job",
        |e| matches!(e, Error::Conflict(m) if m.contains(&d.job.id.to_string())),
    );
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
        not_found(
            store.remove_unit(id).await,
            C,
            "removing a removed or unknown unit",
        );
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

/// Getters of unknown service names give `Ok(None)`; lists of an unknown cluster are empty.
pub async fn unknown_ids<S: ServiceStore + ?Sized>(store: &S) {
    const C: &str = "services::unknown_ids";
    let nc = ClusterId(i64::MAX);
    none(
        store.service_by_name(nc, "svc").await,
        C,
        "service_by_name in an unknown cluster is None",
    );
    assert!(
        ok(store.list_services(nc).await, C, "list_services").is_empty()
            && ok(store.list_units(nc).await, C, "list_units").is_empty(),
        "store conformance [{C}]: lists of an unknown cluster are empty"
    );
}
