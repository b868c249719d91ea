//! Conformance of [`ConfigStore`]: config versions, snapshots, relations and their events, on
//! services of a [`ServiceStore`] (relations also on jobs of a [`JobStore`]).
//!
//! [`ServiceStore`]: crate::store::ServiceStore

use super::ClusterServices;
use super::fixture::{
    already_exists, already_exists_named, bare_service, cancel, conflict, fixture, none, not_found,
    ok, refused, simple_job, take_down,
};
use crate::Error;
use crate::model::*;
use crate::store::{ConfigStore, JobStore};

/// Runs the checks of config versions, snapshots and relations.
pub async fn run<S: ClusterServices + ConfigStore + JobStore + ?Sized>(store: &S) {
    checks!(store: config_versions, snapshots, relations);
}

/// Config versions: add_service writes version 1; add_config_version is compare-and-set on the
/// current version and makes the new one the instance's configs in the same write; versions
/// are immutable and stay readable after the instance is removed.
pub async fn config_versions<S: ClusterServices + ConfigStore + ?Sized>(store: &S) {
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
    none(
        store.config_version(sid, 2).await,
        C,
        "config_version of a version not made yet is None",
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

    refused(
        store.add_config_version(sid, 7, &change).await,
        C,
        "add_config_version with a stale expected version",
        "Conflict naming the expected (7) and the actual (2) one",
        |e| matches!(e, Error::Conflict(m) if m.contains('2') && m.contains('7')),
    );
    conflict(
        store.add_config_version(sid, 1, &change).await,
        C,
        "a second change from version 1",
    );
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

    not_found(
        store
            .add_config_version(ServiceId(i64::MAX), 1, &change)
            .await,
        C,
        "add_config_version on an unknown service",
    );
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
    not_found(
        store.add_config_version(sid, 3, &change).await,
        C,
        "add_config_version on a removed service",
    );
}

/// Snapshots: names unique per cluster, listed oldest first, looked up by name, entries kept
/// (by service id).
pub async fn snapshots<S: ClusterServices + ConfigStore + ?Sized>(store: &S) {
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
    already_exists_named(
        store
            .add_snapshot(&new(fx.cluster.id, "before-upgrade", vec![]))
            .await,
        C,
        "a duplicate snapshot name in a cluster",
        "before-upgrade",
    );
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
    none(
        store.snapshot(fx.cluster.id, "nope").await,
        C,
        "snapshot of an unknown name is None",
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
pub async fn relations<S: ClusterServices + ConfigStore + JobStore + ?Sized>(store: &S) {
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
    let relations =
        |cluster| async move { ok(store.list_relations(cluster).await, C, "list_relations") };
    let events = |relation| async move {
        ok(
            store.list_relation_events(relation).await,
            C,
            "list_relation_events",
        )
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
        relations(cid).await,
        vec![r1.clone(), r2.clone()],
        "store conformance [{C}]: list_relations gives the cluster's relations by id"
    );
    already_exists(
        store.add_relation(&new1).await,
        C,
        "relating the same endpoints again",
    );
    let mut foreign = rel(&prom, "targets", &other.service, "metrics");
    foreign.cluster = cid;
    let mut unknown = rel(&prom, "x", &fx.service, "y");
    unknown.requirer = ServiceId(i64::MAX);
    for (bad, what) in [(foreign, "another cluster's"), (unknown, "an unknown")] {
        not_found(
            store.add_relation(&bad).await,
            C,
            &format!("a relation with {what} service"),
        );
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
    let add_event = |new: NewRelationEvent| async move {
        ok(
            store.add_relation_event(&new).await,
            C,
            "add_relation_event",
        )
    };
    let e1 = add_event(ev(r1.id, RelationEventKind::Joined, prom.id, None)).await;
    let changed = ev(r1.id, RelationEventKind::Changed, prom.id, Some(d.job.id));
    let e2 = add_event(changed).await;
    let e_r2 = add_event(ev(r2.id, RelationEventKind::Joined, exporter.id, None)).await;
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
        events(r1.id).await,
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
        relations(cid).await,
        vec![r1.clone()],
        "store conformance [{C}]: a removed relation is not listed"
    );
    for id in [r2.id, RelationId(i64::MAX)] {
        not_found(
            store.remove_relation(id).await,
            C,
            "removing a removed or unknown relation",
        );
    }
    let broken = ok(
        store
            .add_relation_event(&ev(r2.id, RelationEventKind::Broken, exporter.id, None))
            .await,
        C,
        "add_relation_event on a removed relation",
    );
    assert_eq!(
        events(r2.id).await,
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
        relations(cid).await,
        vec![],
        "store conformance [{C}]: removing a service removes its relations"
    );
    assert_eq!(
        relations(other.cluster.id).await,
        vec![r_other],
        "store conformance [{C}]: list_relations gives only that cluster's relations"
    );
    assert_eq!(
        events(r1.id).await,
        vec![e1, e2],
        "store conformance [{C}]: a removed service's relation events stay readable"
    );
    not_found(
        store.add_relation(&new1).await,
        C,
        "a relation with a removed service",
    );
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
    add_event(ev(r.id, RelationEventKind::Joined, peer.id, None)).await;
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
    conflict(
        store.delete_cluster(del.cluster.id).await,
        C,
        "deleting a cluster with related services",
    );
    ok(store.remove_service(peer.id).await, C, "remove_service");
    let what = "delete a cluster whose removed services had relations, versions and snapshots";
    take_down(store, C, &del, what).await;
}
