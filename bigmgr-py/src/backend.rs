//! What the Python classes call: one trait, two implementations — [`bigmgr_client::Client`],
//! a client of a running `bigmgr serve` (`crate::rest`), and [`crate::embedded::Embedded`],
//! the engine in-process. Both answer with core's read models ([`bigmgr_core::view`]), so the
//! Python classes wrap the same types whichever backend they hold, and both follow jobs with
//! core's one [`bigmgr_core::view::follow`].
//!
//! Each operation is written once, in the table below: its signature and what each backend
//! does for it. The macro turns the table into the trait and its two implementations.

use crate::embedded::Embedded;
use crate::error::Result;
use async_trait::async_trait;
use bigmgr_client::{ChatStream, Client, SetProvider};
use bigmgr_core::advisor::Finding;
use bigmgr_core::manager::{AddService, AdviceScope, ConfigChange, Relate};
use bigmgr_core::model::{
    AuditFilter, JobFilter, JobId, JobRequest, MaintenanceId, Proposal, ProposalId, Provider,
    RelationId, TaskId, Thread, ThreadId, UnitId,
};
use bigmgr_core::request::{
    AddHost, AddUnitsBody, RestartStaleBody, RollbackBody, ScalePipeline, SetHealing, SnapshotBody,
    SpecBody, StartMaintenance,
};
use bigmgr_core::spec::{Exported, Plan};
use bigmgr_core::view::{
    AlertView, AuditEventView, ClusterView, ConfigDiffView, ConfigVersionView, Followed,
    HealingView, HostView, JobDetailView, JobView, LogLineView, MaintenanceView, PipelineLogLine,
    PipelineStatus, PipelineView, RelationEventView, RelationView, ServiceView, SnapshotView,
    SpecAppliedView, StackView, UnitStatusView, follow,
};

pub use bigmgr_client::JobAction;

/// What a follower is handed as a followed job goes (see [`Backend::follow`]).
pub type OnFollowed<'a> = &'a mut (dyn FnMut(Followed<'_>) + Send);

/// The table of operations → the [`Backend`] trait, its implementation for the REST client
/// (`rest: |client| …`) and for the embedded engine (`embedded: |engine| …`). Each body is
/// the operation's answer; `?` turns either side's errors into the module's.
macro_rules! backend {
    ($(
        $(#[doc = $doc:literal])*
        fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty {
            rest: |$c:ident| $rest:expr,
            embedded: |$e:ident| $embedded:expr $(,)?
        }
    )*) => {
        /// Everything the Python module can do, over REST or in-process.
        #[async_trait]
        pub trait Backend: Send + Sync + 'static {
            $($(#[doc = $doc])* async fn $name(&self, $($arg: $ty),*) -> Result<$ret>;)*
        }

        #[async_trait]
        impl Backend for Client {
            $(async fn $name(&self, $($arg: $ty),*) -> Result<$ret> {
                let $c = self;
                Ok($rest)
            })*
        }

        #[async_trait]
        impl Backend for Embedded {
            $(async fn $name(&self, $($arg: $ty),*) -> Result<$ret> {
                let $e = self;
                Ok($embedded)
            })*
        }
    };
}

backend! {
    /// Every cluster.
    fn clusters() -> Vec<ClusterView> {
        rest: |c| c.clusters().await?,
        embedded: |e| e.mgr()?.clusters().await?,
    }
    /// Creates a cluster.
    fn create_cluster(name: &str) -> ClusterView {
        rest: |c| c.create_cluster(name).await?,
        embedded: |e| e.acting()?.create_cluster(name).await?,
    }
    /// One cluster.
    fn cluster(name: &str) -> ClusterView {
        rest: |c| c.cluster(name).await?,
        embedded: |e| e.mgr()?.cluster(name).await?,
    }
    /// Deletes a cluster.
    fn delete_cluster(name: &str) -> () {
        rest: |c| c.delete_cluster(name).await?,
        embedded: |e| e.acting()?.delete_cluster(name).await?,
    }
    /// A join token for agents of the cluster (`bmj_…`).
    fn create_join_token(cluster: &str) -> String {
        rest: |c| c.create_join_token(cluster).await?,
        embedded: |e| e.acting()?.create_join_token(cluster).await?,
    }
    /// The hosts of a cluster.
    fn hosts(cluster: &str) -> Vec<HostView> {
        rest: |c| c.hosts(cluster).await?,
        embedded: |e| e.mgr()?.host_views(cluster).await?,
    }
    /// Adds a host.
    fn add_host(cluster: &str, name: &str, address: &str) -> HostView {
        rest: |c| {
            let host = AddHost { name: name.into(), address: address.into() };
            c.add_host(cluster, &host).await?
        },
        embedded: |e| {
            e.acting()?.add_host(cluster, name, address).await?;
            e.mgr()?.host_view(cluster, name).await?
        },
    }
    /// Removes a host (refused while units are placed on it).
    fn remove_host(cluster: &str, name: &str) -> () {
        rest: |c| c.remove_host(cluster, name).await?,
        embedded: |e| e.acting()?.remove_host(cluster, name).await?,
    }
    /// The stacks offered.
    fn stacks() -> Vec<StackView> {
        rest: |c| c.stacks().await?,
        embedded: |e| e.mgr()?.stack_views().await?,
    }
    /// The service instances of a cluster, with units.
    fn services(cluster: &str) -> Vec<ServiceView> {
        rest: |c| c.services(cluster).await?,
        embedded: |e| e.mgr()?.service_views(cluster).await?,
    }
    /// One service instance.
    fn service(cluster: &str, name: &str) -> ServiceView {
        rest: |c| c.service(cluster, name).await?,
        embedded: |e| e.mgr()?.service_view(cluster, name).await?,
    }
    /// Adds a service instance.
    fn add_service(cluster: &str, req: AddService) -> ServiceView {
        rest: |c| c.add_service(cluster, &req).await?,
        embedded: |e| {
            let name = req.name.clone();
            e.acting()?.add_service(cluster, req).await?;
            e.mgr()?.service_view(cluster, &name).await?
        },
    }
    /// Removes a service instance.
    fn remove_service(cluster: &str, name: &str) -> () {
        rest: |c| c.remove_service(cluster, name).await?,
        embedded: |e| e.acting()?.remove_service(cluster, name).await?,
    }
    /// A config change (merge patch) → the new version.
    fn update_configs(cluster: &str, service: &str, change: ConfigChange) -> ConfigVersionView {
        rest: |c| c.scope(cluster, service).update_configs(&change).await?,
        embedded: |e| {
            let v = e.acting()?.update_configs(cluster, service, change).await?;
            ConfigVersionView::of(service, v)
        },
    }
    /// Every config version of a service.
    fn config_versions(cluster: &str, service: &str) -> Vec<ConfigVersionView> {
        rest: |c| c.scope(cluster, service).config_versions().await?,
        embedded: |e| {
            let versions = e.mgr()?.config_versions(cluster, service).await?;
            versions.into_iter().map(|v| ConfigVersionView::of(service, v)).collect()
        },
    }
    /// A rollback to version `to` → the new version.
    fn rollback_configs(
        cluster: &str, service: &str, to: u32, message: Option<String>
    ) -> ConfigVersionView {
        rest: |c| {
            let body = RollbackBody { to, message };
            c.scope(cluster, service).rollback_configs(&body).await?
        },
        embedded: |e| {
            let v = e.acting()?.rollback_configs(cluster, service, to, message).await?;
            ConfigVersionView::of(service, v)
        },
    }
    /// One config version of a service.
    fn config_version(cluster: &str, service: &str, version: u32) -> ConfigVersionView {
        rest: |c| c.scope(cluster, service).config_version(version).await?,
        embedded: |e| {
            let v = e.mgr()?.config_version(cluster, service, version).await?;
            ConfigVersionView::of(service, v)
        },
    }
    /// What differs from version `from` to version `to`, property by property.
    fn diff_configs(cluster: &str, service: &str, from: u32, to: u32) -> Vec<ConfigDiffView> {
        rest: |c| c.scope(cluster, service).diff_configs(from, to).await?,
        embedded: |e| {
            let diff = e.mgr()?.diff_configs(cluster, service, from, to).await?;
            diff.into_iter().map(ConfigDiffView::from).collect()
        },
    }
    /// Names every service's current config version as snapshot `name`.
    fn create_snapshot(cluster: &str, name: &str, message: &str) -> SnapshotView {
        rest: |c| {
            let body = SnapshotBody { name: name.into(), message: message.into() };
            c.create_snapshot(cluster, &body).await?
        },
        embedded: |e| e.acting()?.create_snapshot(cluster, name, message).await?.into(),
    }
    /// A cluster's snapshots, oldest first.
    fn snapshots(cluster: &str) -> Vec<SnapshotView> {
        rest: |c| c.snapshots(cluster).await?,
        embedded: |e| {
            let snapshots = e.mgr()?.snapshots(cluster).await?;
            snapshots.into_iter().map(SnapshotView::from).collect()
        },
    }
    /// Restores snapshot `name` → the new versions (one per service that changed since).
    fn restore_snapshot(cluster: &str, name: &str) -> Vec<ConfigVersionView> {
        rest: |c| c.restore_snapshot(cluster, name).await?,
        embedded: |e| {
            let versions = e.acting()?.restore_snapshot(cluster, name).await?;
            e.mgr()?.config_version_views(cluster, versions).await?
        },
    }
    /// Every unit of a cluster, with its staleness.
    fn units(cluster: &str) -> Vec<UnitStatusView> {
        rest: |c| c.units(cluster).await?,
        embedded: |e| e.mgr()?.unit_views(cluster).await?,
    }
    /// Places more units of a service's component on hosts → the new units.
    fn add_units(cluster: &str, service: &str, req: &AddUnitsBody) -> Vec<UnitStatusView> {
        rest: |c| c.scope(cluster, service).add_units(req).await?,
        embedded: |e| {
            let placed = e.acting()?.add_units(cluster, service, req).await?;
            e.mgr()?.unit_views_of(cluster, &placed).await?
        },    }
    /// Removes a unit (stop it first).
    fn remove_unit(cluster: &str, unit: i64) -> () {
        rest: |c| c.remove_unit(cluster, unit).await?,
        embedded: |e| e.acting()?.remove_unit(cluster, UnitId(unit)).await?,
    }
    /// Applies pending config changes → the jobs started.
    fn restart_stale(cluster: &str, service: Option<&str>) -> Vec<JobView> {
        rest: |c| c.restart_stale(cluster, &RestartStaleBody::of(service)).await?,
        embedded: |e| {
            let c = e.mgr()?.cluster(cluster).await?;
            let jobs = e.acting()?.restart_stale(cluster, &RestartStaleBody::of(service)).await?;
            jobs.into_iter().map(|j| JobView::of(j, &c.name)).collect()
        },
    }
    /// Relates two service instances.
    fn relate(cluster: &str, req: Relate) -> RelationView {
        rest: |c| c.relate(cluster, &req).await?,
        embedded: |e| {
            let rel = e.acting()?.relate(cluster, req).await?;
            e.mgr()?.relation_view(cluster, rel).await?
        },
    }
    /// A cluster's alerts as they stand (only those not OK if `firing`).
    fn alerts(cluster: &str, firing: bool) -> Vec<AlertView> {
        rest: |c| c.alerts(cluster, firing).await?,
        embedded: |e| e.mgr()?.alerts(cluster, firing).await?,
    }
    /// The advisor's findings about a cluster (or one host, service or job of it).
    fn advice(
        cluster: &str,
        host: Option<String>,
        service: Option<String>,
        job: Option<i64>
    ) -> Vec<Finding> {
        rest: |c| c.advice(cluster, host.as_deref(), service.as_deref(), job).await?,
        embedded: |e| {
            let scope = AdviceScope { host, service, job: job.map(JobId) };
            e.mgr()?.advice(cluster, &scope).await?
        },
    }
    /// What applying a cluster spec would change (changes nothing).
    fn plan_spec(cluster: &str, body: SpecBody) -> Plan {
        rest: |c| c.plan_spec(cluster, &body).await?,
        embedded: |e| e.acting()?.plan_spec(cluster, &body).await?,
    }
    /// Applies a cluster spec: what it changed and the jobs it submitted.
    fn apply_spec(cluster: &str, body: SpecBody) -> SpecAppliedView {
        rest: |c| c.apply_spec(cluster, &body).await?,
        embedded: |e| {
            let applied = e.acting()?.apply_spec(cluster, &body).await?;
            SpecAppliedView::of(applied.plan, applied.jobs, cluster)
        },
    }
    /// The cluster written as a spec, secrets as references.
    fn export_spec(cluster: &str) -> Exported {
        rest: |c| c.export_spec(cluster).await?,
        embedded: |e| e.mgr()?.export_spec(cluster).await?,
    }
    /// Creates a pipeline from its definition (TOML).
    fn create_pipeline(cluster: &str, definition: &str) -> PipelineView {
        rest: |c| c.create_pipeline(cluster, definition).await?,
        embedded: |e| e.acting()?.create_pipeline(cluster, definition).await?.into(),
    }
    /// A cluster's pipelines, oldest first.
    fn pipelines(cluster: &str) -> Vec<PipelineView> {
        rest: |c| c.pipelines(cluster).await?,
        embedded: |e| {
            let all = e.mgr()?.pipelines(cluster).await?;
            all.into_iter().map(PipelineView::from).collect()
        },
    }
    /// One pipeline.
    fn pipeline(cluster: &str, name: &str) -> PipelineView {
        rest: |c| c.pipeline(cluster, name).await?,
        embedded: |e| e.mgr()?.pipeline(cluster, name).await?.into(),
    }
    /// Removes a pipeline that is not running.
    fn remove_pipeline(cluster: &str, name: &str) -> () {
        rest: |c| c.remove_pipeline(cluster, name).await?,
        embedded: |e| e.acting()?.remove_pipeline(cluster, name).await?,
    }
    /// Starts a pipeline that is not running (a `Conflict` in another state).
    fn start_pipeline(cluster: &str, name: &str) -> PipelineView {
        rest: |c| c.start_pipeline(cluster, name).await?,
        embedded: |e| e.acting()?.start_pipeline(cluster, name).await?.into(),
    }
    /// Pauses a running pipeline: no node takes a new batch.
    fn pause_pipeline(cluster: &str, name: &str) -> PipelineView {
        rest: |c| c.pause_pipeline(cluster, name).await?,
        embedded: |e| e.acting()?.pause_pipeline(cluster, name).await?.into(),
    }
    /// Resumes a paused pipeline.
    fn resume_pipeline(cluster: &str, name: &str) -> PipelineView {
        rest: |c| c.resume_pipeline(cluster, name).await?,
        embedded: |e| e.acting()?.resume_pipeline(cluster, name).await?.into(),
    }
    /// Stops a running pipeline: drains it (DRAINING, then STOPPED), or with `abort` stops it
    /// now (STOPPED).
    fn stop_pipeline(cluster: &str, name: &str, abort: bool) -> PipelineView {
        rest: |c| c.stop_pipeline(cluster, name, abort).await?,
        embedded: |e| e.acting()?.stop_pipeline(cluster, name, !abort).await?.into(),
    }
    /// Scales a non-blocking unit of a pipeline (running or not).
    fn scale_pipeline(cluster: &str, name: &str, req: ScalePipeline) -> PipelineView {
        rest: |c| c.scale_pipeline(cluster, name, &req).await?,
        embedded: |e| {
            let acting = e.acting()?;
            acting.scale_pipeline(cluster, name, &req.unit, req.replicas).await?.into()
        },
    }
    /// A pipeline's graph and each node's batches waiting, leased and processed.
    fn pipeline_status(cluster: &str, name: &str) -> PipelineStatus {
        rest: |c| c.pipeline_status(cluster, name).await?,
        embedded: |e| e.mgr()?.pipeline_status(cluster, name).await?,
    }
    /// The latest lines of a pipeline's run, oldest first.
    fn pipeline_logs(cluster: &str, name: &str) -> Vec<PipelineLogLine> {
        rest: |c| c.pipeline_logs(cluster, name).await?,
        embedded: |e| e.mgr()?.pipeline_logs(cluster, name).await?,
    }
    /// Starts a maintenance window on a host or a service.
    fn start_maintenance(cluster: &str, req: StartMaintenance) -> MaintenanceView {
        rest: |c| c.start_maintenance(cluster, &req).await?,
        embedded: |e| e.acting()?.start_maintenance(cluster, req).await?,
    }
    /// A cluster's maintenance windows in progress.
    fn maintenance(cluster: &str) -> Vec<MaintenanceView> {
        rest: |c| c.maintenance(cluster).await?,
        embedded: |e| e.mgr()?.maintenance(cluster).await?,
    }
    /// Ends a maintenance window now.
    fn end_maintenance(cluster: &str, id: i64) -> () {
        rest: |c| c.end_maintenance(cluster, id).await?,
        embedded: |e| {
            e.acting()?.end_maintenance(cluster, MaintenanceId(id)).await?;
        },
    }
    /// A service's self-healing policy.
    fn healing(cluster: &str, service: &str) -> HealingView {
        rest: |c| c.healing(cluster, service).await?,
        embedded: |e| e.mgr()?.healing(cluster, service).await?,
    }
    /// Sets a service's self-healing policy.
    fn set_healing(cluster: &str, service: &str, req: SetHealing) -> HealingView {
        rest: |c| c.set_healing(cluster, service, &req).await?,
        embedded: |e| e.acting()?.set_healing(cluster, service, req).await?,
    }
    /// A cluster's relations.
    fn relations(cluster: &str) -> Vec<RelationView> {
        rest: |c| c.relations(cluster).await?,
        embedded: |e| e.mgr()?.relation_views(cluster).await?,
    }
    /// Removes a relation.
    fn unrelate(cluster: &str, id: i64) -> () {
        rest: |c| c.unrelate(cluster, id).await?,
        embedded: |e| e.acting()?.unrelate(cluster, RelationId(id)).await?,
    }
    /// A relation's events, oldest first (a removed relation keeps them).
    fn relation_events(cluster: &str, id: i64) -> Vec<RelationEventView> {
        rest: |c| c.relation_events(cluster, id).await?,
        embedded: |e| e.mgr()?.relation_event_views(cluster, RelationId(id)).await?,
    }
    /// Submits a job.
    fn submit(req: JobRequest) -> JobView {
        rest: |c| c.submit(&req.cluster, &req.command, req.target, req.options).await?,
        embedded: |e| {
            let job = e.acting()?.submit(req).await?;
            e.mgr()?.job_summary(job.id).await?
        },
    }
    /// One job with its stages and tasks.
    fn job(id: i64) -> JobDetailView {
        rest: |c| c.job(JobId(id)).await?,
        embedded: |e| e.mgr()?.job_view(JobId(id)).await?,
    }
    /// A cluster's jobs, ascending by id.
    fn jobs(cluster: &str) -> Vec<JobView> {
        rest: |c| c.jobs(cluster, None).await?,
        embedded: |e| e.mgr()?.job_views(cluster, JobFilter::default()).await?,
    }
    /// Cancels, pauses, resumes or retries a job.
    fn control(id: i64, action: JobAction) -> JobView {
        rest: |c| c.control(JobId(id), action).await?,
        embedded: |e| {
            let job = e.control_job(JobId(id), action).await?;
            e.mgr()?.job_summary(job.id).await?
        },
    }
    /// A task's log lines (every attempt), in order.
    fn task_log(job: i64, task: i64) -> Vec<LogLineView> {
        rest: |c| c.task_log(JobId(job), TaskId(task), None).await?,
        embedded: |e| {
            let lines = e.mgr()?.job_task_log(JobId(job), TaskId(task), None).await?;
            lines.into_iter().map(LogLineView::from).collect()
        },
    }
    /// The audit log, oldest first (only `actor`'s if given); admins only.
    fn audit(actor: Option<&str>) -> Vec<AuditEventView> {
        rest: |c| c.audit(None, None, actor).await?,
        embedded: |e| {
            let filter = AuditFilter {
                actor: actor.map(str::to_owned),
                ..AuditFilter::default()
            };
            e.mgr()?.audit(e.actor(), &filter).await?
        },
    }
    /// The assistant's model providers (never their keys).
    fn providers() -> Vec<Provider> {
        rest: |c| c.providers().await?,
        embedded: |e| e.no_chat(())?,
    }
    /// Creates or replaces a model provider (admins).
    fn set_provider(name: &str, body: SetProvider) -> Provider {
        rest: |c| c.set_provider(name, &body).await?,
        embedded: |e| e.no_chat((name, body))?,
    }
    /// A new chat thread of the caller's about a cluster.
    fn create_thread(cluster: &str) -> Thread {
        rest: |c| c.create_thread(cluster, None).await?,
        embedded: |e| e.no_chat(cluster)?,
    }
    /// Asks a question in a thread: the answer's events as they stream.
    fn ask(thread: i64, question: &str, provider: Option<&str>) -> ChatStream {
        rest: |c| c.ask(ThreadId(thread), question, provider).await?,
        embedded: |e| e.no_chat((thread, question, provider))?,
    }
    /// Confirms a pending proposal: its request runs as the caller.
    fn confirm_proposal(id: i64) -> Proposal {
        rest: |c| c.confirm_proposal(ProposalId(id)).await?,
        embedded: |e| e.no_chat(id)?,
    }
    /// Rejects a pending proposal: nothing runs.
    fn reject_proposal(id: i64) -> Proposal {
        rest: |c| c.reject_proposal(ProposalId(id)).await?,
        embedded: |e| e.no_chat(id)?,
    }
    /// Follows job `id` to its end with [`bigmgr_core::view::follow`], handing `on` its
    /// progress and every log line once; the job as it ended.
    fn follow(id: JobId, on: OnFollowed<'_>) -> JobDetailView {
        rest: |c| follow(c, id, on).await?,
        embedded: |e| follow(&e.mgr()?, id, on).await?,
    }
}
