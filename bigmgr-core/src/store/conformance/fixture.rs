//! What the checks share: a fixture cluster with hosts and a service, jobs on it, and the
//! helpers that unwrap results, or check refusals, naming the check that failed.

use super::ClusterServices;
use crate::model::*;
use crate::store::{Batch, JobChange, JobStore, ServiceStore};
use crate::{Error, Result};
use std::fmt::Debug;
use std::future::Future;

/// Unwraps a store result, panicking with the check and the step that failed.
#[track_caller]
pub(super) fn ok<T>(r: Result<T>, check: &str, step: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("store conformance [{check}]: {step}: unexpected error: {e}"),
    }
}

/// Asserts that `r` failed as `expected` says (`is` checks the error); panics naming the check
/// and saying that `what` must be `expected`.
#[track_caller]
pub(super) fn refused<T: Debug>(
    r: Result<T>,
    check: &str,
    what: &str,
    expected: &str,
    is: impl FnOnce(&Error) -> bool,
) {
    match &r {
        Err(e) if is(e) => {}
        other => panic!("store conformance [{check}]: {what} must be {expected}, got {other:?}"),
    }
}

/// Asserts that a lookup succeeded and found nothing; `rule` says why it must not find anything.
#[track_caller]
pub(super) fn none<T: Debug>(r: Result<Option<T>>, check: &str, rule: &str) {
    let found = ok(r, check, rule);
    assert!(
        found.is_none(),
        "store conformance [{check}]: {rule}, found {found:?}"
    );
}

/// Asserts that `r` is [`Error::NotFound`] (see [`refused`]).
#[track_caller]
pub(super) fn not_found<T: Debug>(r: Result<T>, check: &str, what: &str) {
    refused(r, check, what, "NotFound", |e| {
        matches!(e, Error::NotFound { .. })
    });
}

/// Asserts that `r` is [`Error::Conflict`] (see [`refused`]).
#[track_caller]
pub(super) fn conflict<T: Debug>(r: Result<T>, check: &str, what: &str) {
    refused(r, check, what, "Conflict", |e| {
        matches!(e, Error::Conflict(_))
    });
}

/// Asserts that `r` is [`Error::AlreadyExists`] (see [`refused`]).
#[track_caller]
pub(super) fn already_exists<T: Debug>(r: Result<T>, check: &str, what: &str) {
    refused(r, check, what, "AlreadyExists", |e| {
        matches!(e, Error::AlreadyExists { .. })
    });
}

/// Asserts that `r` is [`Error::AlreadyExists`] naming `name` (see [`refused`]).
#[track_caller]
pub(super) fn already_exists_named<T: Debug>(r: Result<T>, check: &str, what: &str, name: &str) {
    refused(
        r,
        check,
        what,
        "AlreadyExists naming it",
        |e| matches!(e, Error::AlreadyExists { name: n, .. } if n == name),
    );
}

/// A service instance of the bigtop 1.0.0 `service`, without configs, by `tester`.
pub(super) fn new_service(cluster: ClusterId, name: &str, service: &str) -> NewService {
    NewService {
        cluster,
        name: name.into(),
        stack: "bigtop".into(),
        stack_version: "1.0.0".into(),
        service: service.into(),
        configs: Default::default(),
        host_overrides: Default::default(),
        author: "tester".into(),
    }
}

/// Every item of a listing, read page by page: `page(after, limit)` lists the items after the
/// cursor `after` (from the start for `None`), at most `limit`; `cursor` is an item's cursor.
/// Asserts that no page holds more than `limit`.
pub(super) async fn read_paged<T, I, F>(
    check: &str,
    limit: u32,
    mut page: impl FnMut(Option<I>, u32) -> F,
    cursor: impl Fn(&T) -> I,
) -> Vec<T>
where
    F: Future<Output = Result<Vec<T>>>,
{
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let items = ok(page(after, limit).await, check, "list a page");
        assert!(
            items.len() <= limit as usize,
            "store conformance [{check}]: a page holds at most `limit` ({limit}) items, got {}",
            items.len()
        );
        let Some(last) = items.last() else { break };
        after = Some(cursor(last));
        all.extend(items);
    }
    all
}

/// A cluster with hosts and one service with one unit per host.
pub(super) struct Fixture {
    pub(super) cluster: Cluster,
    pub(super) hosts: Vec<Host>,
    pub(super) service: ServiceInstance,
    pub(super) units: Vec<Unit>,
}

pub(super) async fn fixture<S: ClusterServices + ?Sized>(
    store: &S,
    check: &str,
    name: &str,
    hosts: usize,
) -> Fixture {
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

/// Removes the fixture's service and hosts, then deletes its cluster: `what` says why that
/// must be allowed.
pub(super) async fn take_down<S: ClusterServices + ?Sized>(
    store: &S,
    check: &str,
    fx: &Fixture,
    what: &str,
) {
    let service = fx.service.id;
    ok(store.remove_service(service).await, check, "remove service");
    for h in &fx.hosts {
        ok(store.remove_host(h.id).await, check, "remove host");
    }
    ok(store.delete_cluster(fx.cluster.id).await, check, what);
}

/// A stage running `command` on every unit of the fixture.
pub(super) fn stage(fx: &Fixture, command: &str, after: Vec<usize>) -> NewStage {
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
pub(super) fn job(fx: &Fixture, stages: Vec<NewStage>) -> NewJob {
    NewJob {
        cluster: fx.cluster.id,
        command: "restart".into(),
        target: Target::Service(fx.service.name.clone()),
        options: JobOptions::default(),
        stages,
    }
}

/// A one-stage job on every unit of the fixture, created.
pub(super) async fn simple_job<S: JobStore + ?Sized>(
    store: &S,
    check: &str,
    fx: &Fixture,
) -> JobDetail {
    let new = job(fx, vec![stage(fx, "start", vec![])]);
    ok(store.create_job(&new).await, check, "create job")
}

/// A fixture (see [`fixture`]) with a one-stage job on every unit of it (see [`simple_job`]).
pub(super) async fn fixture_with_job<S: ClusterServices + JobStore + ?Sized>(
    store: &S,
    check: &str,
    name: &str,
    hosts: usize,
) -> (Fixture, JobDetail) {
    let fx = fixture(store, check, name, hosts).await;
    let job = simple_job(store, check, &fx).await;
    (fx, job)
}

/// A service instance without units in the fixture's cluster.
pub(super) async fn bare_service<S: ServiceStore + ?Sized>(
    store: &S,
    check: &str,
    fx: &Fixture,
    name: &str,
) -> ServiceInstance {
    let new = new_service(fx.cluster.id, name, name);
    ok(
        store.add_service(new, vec![]).await,
        check,
        "add bare service",
    )
    .0
}

/// Sets a unit's state (as `apply` does after a task on it).
pub(super) async fn set_unit<S: JobStore + ?Sized>(
    store: &S,
    check: &str,
    unit: UnitId,
    state: UnitState,
) {
    let batch = Batch {
        units: vec![(unit, state)],
        ..Batch::default()
    };
    ok(
        store.apply(&batch).await,
        check,
        &format!("set unit {unit} {state}"),
    );
}

/// Applies job changes as one batch, asserting which of them apply; `rule` says what that
/// checks.
pub(super) async fn apply_jobs<S: JobStore + ?Sized>(
    store: &S,
    check: &str,
    changes: Vec<JobChange>,
    want: Vec<bool>,
    rule: &str,
) {
    let batch = Batch {
        jobs: changes,
        ..Batch::default()
    };
    let a = ok(store.apply(&batch).await, check, "apply");
    assert_eq!(a.jobs, want, "store conformance [{check}]: {rule}");
}

/// Cancels a QUEUED job.
pub(super) async fn cancel<S: JobStore + ?Sized>(store: &S, check: &str, job: JobId) {
    let change = JobChange {
        id: job,
        from: JobState::Queued,
        to: JobState::Canceled,
        at: 2_000,
    };
    let rule = "a QUEUED job can be canceled";
    apply_jobs(store, check, vec![change], vec![true], rule).await;
}

/// Polls every future to completion concurrently (this crate does not depend on `futures`).
pub(super) async fn futures_join_all<F: std::future::Future>(
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
