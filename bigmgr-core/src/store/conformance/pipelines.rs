//! Conformance of [`PipelineStore`]: names unique among a cluster's live pipelines, state
//! changed by compare-and-set, removal only when nothing runs, and a cluster with live
//! pipelines kept.

use super::fixture::{already_exists, conflict, futures_join_all, none, not_found, ok};
use crate::model::*;
use crate::store::{ClusterStore, PipelineStore};

/// Runs the checks of pipelines.
pub async fn run<S: ClusterStore + PipelineStore + ?Sized>(store: &S) {
    pipelines(store).await;
    metastore(store).await;
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
            .set_pipeline_state(
                p.id,
                &[PipelineState::Created],
                PipelineState::Running,
                None,
            )
            .await,
        C,
        "start",
    );
    assert!(moved, "store conformance [{C}]: CREATED → RUNNING");
    let failed = ok(
        store
            .set_pipeline_state(
                p.id,
                &[PipelineState::Paused, PipelineState::Running],
                PipelineState::Failed,
                Some("unit f, batch a:0: exit 3"),
            )
            .await,
        C,
        "fail",
    );
    assert!(
        failed,
        "store conformance [{C}]: RUNNING is one of the states from"
    );
    let got = ok(store.pipeline(cluster.id, "p1").await, C, "get").expect("p1");
    assert_eq!(
        (got.state, got.message.as_deref()),
        (PipelineState::Failed, Some("unit f, batch a:0: exit 3")),
        "store conformance [{C}]: the state with its message"
    );
    ok(
        store
            .set_pipeline_state(p.id, &[PipelineState::Failed], PipelineState::Created, None)
            .await,
        C,
        "back to CREATED",
    );
    let scaled = std::collections::BTreeMap::from([("f".to_string(), 4u32)]);
    ok(store.set_pipeline_replicas(p.id, &scaled).await, C, "scale");
    let got = ok(store.pipeline(cluster.id, "p1").await, C, "get").expect("p1");
    assert_eq!(
        (got.replicas, got.message),
        (scaled, None),
        "store conformance [{C}]: the replicas scaled to, and the message cleared"
    );
    not_found(
        store
            .set_pipeline_replicas(PipelineId(987_657), &Default::default())
            .await,
        C,
        "scaling an unknown pipeline",
    );
    ok(
        store
            .set_pipeline_state(
                p.id,
                &[PipelineState::Created],
                PipelineState::Running,
                None,
            )
            .await,
        C,
        "start",
    );
    let again = ok(
        store
            .set_pipeline_state(
                p.id,
                &[PipelineState::Created],
                PipelineState::Running,
                None,
            )
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
                &[PipelineState::Created],
                PipelineState::Running,
                None,
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
            .set_pipeline_state(
                p.id,
                &[PipelineState::Running],
                PipelineState::Stopped,
                None,
            )
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

/// The metastore: batches recorded once per node, leased to one replica at a time (a lapsed
/// lease to another), processed with their outputs in one step by the lease's holder only,
/// then cleaned.
pub async fn metastore<S: ClusterStore + PipelineStore + ?Sized>(store: &S) {
    const C: &str = "metastore";
    let cluster = ok(store.create_cluster("meta").await, C, "create cluster");
    let p = ok(
        store
            .add_pipeline(&NewPipeline {
                cluster: cluster.id,
                name: "m".into(),
                author: "ann".into(),
                definition: "name = \"m\"\n".into(),
            })
            .await,
        C,
        "add pipeline",
    );
    let at = |node: &str, batch: &str| NewBatch {
        node: node.into(),
        batch: batch.into(),
        location: format!("h1:/data/{node}/{batch}"),
    };
    let first: Vec<NewBatch> = (0..5).map(|i| at("in", &format!("b{i}"))).collect();
    let new = ok(store.receive_batches(p.id, &first).await, C, "receive");
    assert_eq!(new, 5, "store conformance [{C}]: five new batches");
    let again: Vec<NewBatch> = (3..7).map(|i| at("in", &format!("b{i}"))).collect();
    let new = ok(
        store.receive_batches(p.id, &again).await,
        C,
        "receive again",
    );
    assert_eq!(
        new, 2,
        "store conformance [{C}]: a batch recorded twice is recorded once"
    );
    let backlog = ok(store.backlog(p.id, "in").await, C, "backlog");
    assert_eq!(backlog, 7, "store conformance [{C}]: seven wait");
    not_found(
        store.receive_batches(PipelineId(987_658), &first).await,
        C,
        "batches of an unknown pipeline",
    );

    // Sixteen replicas ask at once: each of the seven batches goes to exactly one.
    let holders: Vec<String> = (0..16).map(|i| format!("r{i}")).collect();
    let leased = futures_join_all(
        holders
            .iter()
            .map(|h| store.lease_batch(p.id, "in", h, 1_000, 2_000)),
    )
    .await;
    let mut got = Vec::new();
    for (h, r) in holders.iter().zip(leased) {
        if let Some(b) = ok(r, C, "lease") {
            assert_eq!(b.lease_holder.as_deref(), Some(h.as_str()), "{b:?}");
            assert_eq!((b.state, b.attempts), (BatchState::Received, 1), "{b:?}");
            got.push((b.batch, h.clone()));
        }
    }
    got.sort();
    let batches: Vec<&str> = got.iter().map(|(b, _)| b.as_str()).collect();
    assert_eq!(
        batches,
        ["b0", "b1", "b2", "b3", "b4", "b5", "b6"],
        "store conformance [{C}]: every batch leased once"
    );
    none(
        store.lease_batch(p.id, "in", "late", 1_500, 2_500).await,
        C,
        "no batch is free while every lease lives",
    );

    // Only the holder completes, once; its outputs are recorded once.
    let (b0, holder) = got[0].clone();
    let out = [at("mid", "b0/f")];
    let stranger = ok(
        store.complete_batch(p.id, "in", &b0, "someone", &out).await,
        C,
        "complete by another",
    );
    assert!(
        !stranger,
        "store conformance [{C}]: only the lease's holder completes"
    );
    let done = ok(
        store.complete_batch(p.id, "in", &b0, &holder, &out).await,
        C,
        "complete",
    );
    assert!(done, "store conformance [{C}]: the holder completes");
    let twice = ok(
        store.complete_batch(p.id, "in", &b0, &holder, &out).await,
        C,
        "complete twice",
    );
    assert!(!twice, "store conformance [{C}]: a batch is processed once");
    let mid = ok(store.batches(p.id, Some("mid")).await, C, "outputs");
    assert_eq!(
        mid.iter()
            .map(|b| (b.batch.as_str(), b.state))
            .collect::<Vec<_>>(),
        [("b0/f", BatchState::Received)],
        "store conformance [{C}]: the output is recorded once, RECEIVED downstream"
    );

    // A lapsed lease goes to another replica; the first holder can no longer complete.
    let (b1, slow) = got[1].clone();
    let retaken = ok(
        store.lease_batch(p.id, "in", "rescuer", 2_500, 3_500).await,
        C,
        "lease after the leases lapsed",
    )
    .expect("a lapsed batch");
    assert_eq!(
        (retaken.batch.as_str(), retaken.attempts),
        (b1.as_str(), 2),
        "store conformance [{C}]: the oldest lapsed batch, leased a second time"
    );
    let late = ok(
        store
            .complete_batch(p.id, "in", &b1, &slow, &[at("mid", "b1/f")])
            .await,
        C,
        "complete by the lapsed holder",
    );
    assert!(
        !late,
        "store conformance [{C}]: a lapsed holder completes nothing"
    );
    let rescued = ok(
        store
            .complete_batch(p.id, "in", &b1, "rescuer", &[at("mid", "b1/f")])
            .await,
        C,
        "complete by the new holder",
    );
    assert!(rescued);
    let backlog = ok(store.backlog(p.id, "in").await, C, "backlog");
    assert_eq!(
        backlog, 5,
        "store conformance [{C}]: two processed, five wait"
    );

    // Released leases: a lost host's batch goes to another replica at once.
    let held = ok(
        store.lease_batch(p.id, "in", "lost", 3_000, i64::MAX).await,
        C,
        "lease for long",
    )
    .expect("a batch");
    let released = ok(
        store.release_leases(p.id, Some("someone")).await,
        C,
        "release another's",
    );
    assert_eq!(released, 0, "store conformance [{C}]: only the holder's");
    let released = ok(store.release_leases(p.id, Some("lost")).await, C, "release");
    assert_eq!(
        released, 1,
        "store conformance [{C}]: the holder's lease ends"
    );
    let again = ok(
        store.lease_batch(p.id, "in", "heir", 3_001, 3_500).await,
        C,
        "lease the released batch",
    )
    .expect("the released batch");
    assert_eq!(
        (again.batch.as_str(), again.attempts),
        (held.batch.as_str(), held.attempts + 1),
        "store conformance [{C}]: the released batch is leased again at once"
    );
    let lost = ok(
        store
            .complete_batch(p.id, "in", &held.batch, "lost", &[])
            .await,
        C,
        "complete by the released holder",
    );
    assert!(
        !lost,
        "store conformance [{C}]: a released holder completes nothing"
    );
    let all = ok(store.release_leases(p.id, None).await, C, "release all");
    let waiting = ok(store.backlog(p.id, "in").await, C, "backlog");
    assert_eq!(
        all, waiting,
        "store conformance [{C}]: every lease ends, live or lapsed (each waiting batch had one)"
    );
    let free = ok(
        store.lease_batch(p.id, "in", "x0", 3_002, 3_500).await,
        C,
        "lease after all were released",
    )
    .expect("a batch");
    assert_eq!(free.batch, held.batch, "the oldest waiting batch");
    ok(store.release_leases(p.id, None).await, C, "release all");

    // Several batches complete together or not at all (a blocking unit's whole input).
    let mut x = Vec::new();
    for holder in ["x", "x", "y"] {
        let b = ok(
            store.lease_batch(p.id, "in", holder, 4_000, 9_000).await,
            C,
            "lease",
        )
        .expect("a lapsed batch");
        x.push(b.batch);
    }
    let mixed = ok(
        store
            .complete_batches(p.id, "in", &x, "x", &[at("mid", "all")])
            .await,
        C,
        "complete batches of two holders",
    );
    assert!(!mixed, "store conformance [{C}]: all or nothing");
    let backlog = ok(store.backlog(p.id, "in").await, C, "backlog");
    assert_eq!(backlog, 5, "store conformance [{C}]: nothing was completed");
    let whole = ok(
        store
            .complete_batches(p.id, "in", &x[..2], "x", &[at("mid", "all")])
            .await,
        C,
        "complete the holder's batches",
    );
    assert!(
        whole,
        "store conformance [{C}]: the holder's batches complete together"
    );
    let backlog = ok(store.backlog(p.id, "in").await, C, "backlog");
    assert_eq!(backlog, 3, "store conformance [{C}]: two more processed");

    // Cleaning follows processing.
    let cleaned = ok(store.clean_batch(p.id, "in", &b0).await, C, "clean");
    assert!(cleaned, "store conformance [{C}]: PROCESSED → CLEAN");
    let again = ok(store.clean_batch(p.id, "in", &b0).await, C, "clean again");
    assert!(!again, "store conformance [{C}]: cleaned once");
    let early = ok(
        store.clean_batch(p.id, "mid", "b0/f").await,
        C,
        "clean early",
    );
    assert!(
        !early,
        "store conformance [{C}]: a RECEIVED batch is not cleaned"
    );
    // A batch broadcast to two channels (one location, two rows) is clean once both are
    // processed, not before.
    let shared = |node: &str| NewBatch {
        node: node.into(),
        batch: "s0".into(),
        location: "h1:src/s0".into(),
    };
    ok(
        store
            .receive_batches(p.id, &[shared("a"), shared("b")])
            .await,
        C,
        "receive a broadcast batch",
    );
    for node in ["a", "b"] {
        let waiting = ok(
            store.clean_location(p.id, "h1:src/s0").await,
            C,
            "clean while one waits",
        );
        assert!(
            !waiting,
            "store conformance [{C}]: not clean while a reader has not processed it"
        );
        ok(
            store.lease_batch(p.id, node, "r", 10_000, 20_000).await,
            C,
            "lease",
        )
        .expect("the broadcast batch");
        ok(
            store.complete_batch(p.id, node, "s0", "r", &[]).await,
            C,
            "complete",
        );
    }
    let clean = ok(
        store.clean_location(p.id, "h1:src/s0").await,
        C,
        "clean once all processed",
    );
    assert!(
        clean,
        "store conformance [{C}]: clean once every reader processed it"
    );
    let rows = ok(store.batches(p.id, None).await, C, "batches");
    assert!(
        rows.iter()
            .filter(|b| b.location == "h1:src/s0")
            .all(|b| b.state == BatchState::Clean),
        "store conformance [{C}]: both rows CLEAN: {rows:?}"
    );
    let settled = ok(
        store.clean_location(p.id, "h1:src/s0").await,
        C,
        "clean again",
    );
    assert!(
        settled,
        "store conformance [{C}]: a clean location stays clean"
    );
    let nowhere = ok(
        store.clean_location(p.id, "h9:nothing").await,
        C,
        "clean nothing",
    );
    assert!(!nowhere, "store conformance [{C}]: no batch is there");
    let one = ok(store.batch(p.id, "a", "s0").await, C, "one batch").expect("s0 at a");
    assert_eq!(
        (one.batch.as_str(), one.location.as_str(), one.state),
        ("s0", "h1:src/s0", BatchState::Clean),
        "store conformance [{C}]: one batch by its node and id"
    );
    none(store.batch(p.id, "a", "s9").await, C, "no such batch");
    let all = ok(store.batches(p.id, None).await, C, "all batches");
    assert_eq!(all.len(), 12, "store conformance [{C}]: {all:?}");
    ok(store.remove_pipeline(p.id).await, C, "remove the pipeline");
    ok(
        store.delete_cluster(cluster.id).await,
        C,
        "delete the cluster with its batches",
    );
}
