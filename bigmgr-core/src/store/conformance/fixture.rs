//! What the checks share: a fixture cluster with hosts and a service, jobs on it, and the
//! helpers that unwrap results naming the check that failed.

use crate::Result;
use crate::model::*;
use crate::store::{Batch, ClusterStore, JobChange, JobStore, ServiceStore};

/// Unwraps a store result, panicking with the check and the step that failed.
#[track_caller]
pub(super) fn ok<T>(r: Result<T>, check: &str, step: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("store conformance [{check}]: {step}: unexpected error: {e}"),
    }
}

/// A cluster with hosts and one service with one unit per host.
pub(super) struct Fixture {
    pub(super) cluster: Cluster,
    pub(super) hosts: Vec<Host>,
    pub(super) service: ServiceInstance,
    pub(super) units: Vec<Unit>,
}

pub(super) async fn fixture<S>(store: &S, check: &str, name: &str, hosts: usize) -> Fixture
where
    S: ClusterStore + ServiceStore + ?Sized,
{
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
pub(super) async fn simple_job<S>(store: &S, check: &str, fx: &Fixture) -> JobDetail
where
    S: JobStore + ?Sized,
{
    let new = job(fx, vec![stage(fx, "start", vec![])]);
    ok(store.create_job(&new).await, check, "create job")
}

/// A service instance without units in the fixture's cluster.
pub(super) async fn bare_service<S>(
    store: &S,
    check: &str,
    fx: &Fixture,
    name: &str,
) -> ServiceInstance
where
    S: ServiceStore + ?Sized,
{
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
pub(super) async fn cancel<S>(store: &S, check: &str, job: JobId)
where
    S: JobStore + ?Sized,
{
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
