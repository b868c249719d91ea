//! Conformance of [`ClusterStore`]: clusters and hosts. The checks of refused deletes also
//! add services and jobs, so they take a store of those parts too.
//!
//! [`clusters`] (and so [`run`]) needs an empty store: it lists every cluster.

use super::ClusterServices;
use super::fixture::{already_exists_named, conflict, new_service, none, not_found, ok};
use crate::model::*;
use crate::store::{ClusterStore, JobStore};

/// Runs the checks of clusters and hosts against an empty store.
pub async fn run<S: ClusterServices + JobStore + ?Sized>(store: &S) {
    checks!(store: clusters, hosts, unknown_ids);
}

/// Clusters: create, look up, list in id order, duplicate names, delete and refused delete.
pub async fn clusters<S: ClusterServices + JobStore + ?Sized>(store: &S) {
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
    none(
        store.cluster_by_name("c-none").await,
        C,
        "cluster_by_name of an unknown name is None",
    );
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort_by_key(|c| c.id);
    assert_eq!(
        ok(store.list_clusters().await, C, "list_clusters"),
        expected,
        "store conformance [{C}]: list_clusters gives every cluster by id"
    );

    already_exists_named(
        store.create_cluster("c-a").await,
        C,
        "a duplicate cluster name",
        "c-a",
    );

    ok(store.delete_cluster(b.id).await, C, "delete empty cluster");
    assert_eq!(
        ok(store.list_clusters().await, C, "list_clusters"),
        vec![a.clone()],
        "store conformance [{C}]: a deleted cluster is no longer listed"
    );
    none(
        store.cluster_by_name("c-b").await,
        C,
        "a deleted cluster is no longer found by name",
    );
    not_found(
        store.delete_cluster(b.id).await,
        C,
        "deleting an unknown cluster",
    );

    // A cluster with a host, with a service, or with a job can't be deleted.
    let host = NewHost {
        cluster: a.id,
        name: "c-a-h0".into(),
        address: "10.0.0.1".into(),
    };
    ok(store.add_host(host).await, C, "add host");
    conflict(
        store.delete_cluster(a.id).await,
        C,
        "deleting a cluster with hosts",
    );
    let svc_only = ok(store.create_cluster("c-svc").await, C, "create c-svc");
    let svc = new_service(svc_only.id, "zk", "zookeeper");
    ok(store.add_service(svc, vec![]).await, C, "add service");
    conflict(
        store.delete_cluster(svc_only.id).await,
        C,
        "deleting a cluster with services",
    );
    let job_only = ok(store.create_cluster("c-job").await, C, "create c-job");
    let empty_job = NewJob {
        cluster: job_only.id,
        command: "status".into(),
        target: Target::Cluster,
        options: JobOptions::default(),
        stages: vec![],
    };
    ok(store.create_job(&empty_job).await, C, "create job");
    conflict(
        store.delete_cluster(job_only.id).await,
        C,
        "deleting a cluster with jobs",
    );
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
pub async fn hosts<S: ClusterStore + ?Sized>(store: &S) {
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
        already_exists_named(
            store.add_host(new(cluster, "hosts-1")).await,
            C,
            &format!("a duplicate host name {why}"),
            "hosts-1",
        );
    }
    assert_eq!(
        ok(store.list_hosts(b.id).await, C, "list_hosts").len(),
        0,
        "store conformance [{C}]: a refused duplicate host adds nothing"
    );
    not_found(
        store.add_host(new(ClusterId(i64::MAX), "hosts-x")).await,
        C,
        "adding a host to an unknown cluster",
    );

    ok(
        store
            .set_host_state(h1.id, HostState::Lost, Some(1_000))
            .await,
        C,
        "set_host_state",
    );
    let state_of = |name| async move {
        let host = ok(store.host_by_name(name).await, C, "host_by_name");
        host.map(|h| (h.state, h.last_heartbeat))
    };
    assert_eq!(
        state_of("hosts-1").await,
        Some((HostState::Lost, Some(1_000))),
        "store conformance [{C}]: set_host_state sets state and heartbeat"
    );
    ok(
        store.set_host_state(h1.id, HostState::Online, None).await,
        C,
        "set_host_state",
    );
    assert_eq!(
        state_of("hosts-1").await,
        Some((HostState::Online, Some(1_000))),
        "store conformance [{C}]: set_host_state without a heartbeat keeps the last one"
    );
    let other = ok(store.host_by_name("hosts-2").await, C, "host_by_name");
    assert_eq!(
        other,
        Some(h2),
        "store conformance [{C}]: set_host_state changes only that host"
    );
    not_found(
        store
            .set_host_state(HostId(i64::MAX), HostState::Lost, None)
            .await,
        C,
        "set_host_state of an unknown host",
    );
}

/// Getters of unknown cluster and host names give `Ok(None)` or nothing; deleting an unknown
/// cluster is NotFound.
pub async fn unknown_ids<S: ClusterStore + ?Sized>(store: &S) {
    const C: &str = "clusters::unknown_ids";
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
    none(
        store.host_by_name("no-such-host").await,
        C,
        "host_by_name of an unknown name is None",
    );
    assert!(
        ok(store.list_hosts(nc).await, C, "list_hosts").is_empty(),
        "store conformance [{C}]: lists of an unknown cluster are empty"
    );
    not_found(
        store.delete_cluster(nc).await,
        C,
        "delete_cluster of an unknown id",
    );
}
