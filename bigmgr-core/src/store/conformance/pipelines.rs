//! Conformance of [`PipelineStore`]: names unique among a cluster's live pipelines, state
//! changed by compare-and-set, removal only when nothing runs, and a cluster with live
//! pipelines kept.

use super::fixture::{already_exists, conflict, none, not_found, ok};
use crate::model::*;
use crate::store::{ClusterStore, PipelineStore};

/// Runs the checks of pipelines.
pub async fn run<S: ClusterStore + PipelineStore + ?Sized>(store: &S) {
    pipelines(store).await;
}

/// Add, look up, list, change state, remove and add again; clusters keep live pipelines.
pub async fn pipelines<S: ClusterStore + PipelineStore + ?Sized>(store: &S) {
    const C: &str = "pipelines";
    let cluster = ok(store.create_cluster("pipes").await, C, "create cluster");
    let new = |name: &str| NewPipeline {
        cluster: cluster.id,
        name: name.into(),
        author: "ann".into(),
        definition: format!("name = \"{name}\"\n"),
    };
    let p = ok(store.add_pipeline(&new("p1")).await, C, "add");
    assert_eq!(
        (
            p.name.as_str(),
            p.state,
            p.author.as_str(),
            p.definition.as_str()
        ),
        ("p1", PipelineState::Created, "ann", "name = \"p1\"\n"),
        "store conformance [{C}]: a new pipeline is CREATED with what was given"
    );
    already_exists(store.add_pipeline(&new("p1")).await, C, "a second p1");
    let mut stray = new("p9");
    stray.cluster = ClusterId(987_656);
    not_found(
        store.add_pipeline(&stray).await,
        C,
        "a pipeline of an unknown cluster",
    );
    let q = ok(store.add_pipeline(&new("p2")).await, C, "add");
    let found = ok(store.pipeline(cluster.id, "p1").await, C, "look up");
    assert_eq!(
        found.as_ref(),
        Some(&p),
        "store conformance [{C}]: found by name"
    );
    none(store.pipeline(cluster.id, "p3").await, C, "no pipeline p3");
    let all = ok(store.list_pipelines(cluster.id).await, C, "list");
    assert_eq!(
        all.iter().map(|p| p.id).collect::<Vec<_>>(),
        [p.id, q.id],
        "store conformance [{C}]: listed by id"
    );

    // State by compare-and-set.
    let moved = ok(
        store
            .set_pipeline_state(p.id, PipelineState::Created, PipelineState::Running)
            .await,
        C,
        "start",
    );
    assert!(moved, "store conformance [{C}]: CREATED → RUNNING");
    let again = ok(
        store
            .set_pipeline_state(p.id, PipelineState::Created, PipelineState::Running)
            .await,
        C,
        "start again",
    );
    assert!(
        !again,
        "store conformance [{C}]: a second CREATED → RUNNING finds RUNNING"
    );
    not_found(
        store
            .set_pipeline_state(
                PipelineId(987_657),
                PipelineState::Created,
                PipelineState::Running,
            )
            .await,
        C,
        "the state of an unknown pipeline",
    );

    // Removal: refused while it runs; frees the name; a cluster keeps its live pipelines.
    conflict(
        store.remove_pipeline(p.id).await,
        C,
        "removing a RUNNING pipeline",
    );
    conflict(
        store.delete_cluster(cluster.id).await,
        C,
        "deleting a cluster with pipelines",
    );
    ok(
        store
            .set_pipeline_state(p.id, PipelineState::Running, PipelineState::Stopped)
            .await,
        C,
        "stop",
    );
    ok(store.remove_pipeline(p.id).await, C, "remove a STOPPED one");
    ok(store.remove_pipeline(q.id).await, C, "remove a CREATED one");
    not_found(store.remove_pipeline(q.id).await, C, "removing it twice");
    none(
        store.pipeline(cluster.id, "p1").await,
        C,
        "a removed pipeline is not found",
    );
    let again = ok(store.add_pipeline(&new("p1")).await, C, "add p1 again");
    assert_ne!(
        again.id, p.id,
        "store conformance [{C}]: a new pipeline, not the old one"
    );
    ok(store.remove_pipeline(again.id).await, C, "remove");
    ok(
        store.delete_cluster(cluster.id).await,
        C,
        "delete the cluster, removed pipelines and all",
    );
}
