//! Durable state, one trait per concern: [`ClusterStore`] (clusters and hosts), [`AgentStore`]
//! (join tokens, agent credentials, host reports), [`ServiceStore`] (service instances and
//! units), [`ConfigStore`] (config versions, snapshots, relations and their events),
//! [`JobStore`] (jobs, stages, tasks, their batched compare-and-set changes and logs),
//! [`AuthStore`] (users and API tokens), [`AuditStore`] (the audit log), [`AlertStore`]
//! (alerts and their history) and [`AssistantStore`] (the assistant's providers, threads and
//! proposals).
//!
//! [`Store`] is their union, implemented for every type that implements them all. The
//! [`crate::Manager`] holds an `Arc<dyn Store>`; every other component takes the narrowest
//! part it needs, which an `Arc<dyn Store>` coerces to:
//!
//! | component | takes |
//! |---|---|
//! | the engine | a [`JobStore`] for its jobs, a [`TopologyStore`] for their clusters |
//! | [`crate::render::Topology::load`] | a [`TopologyStore`] |
//! | [`crate::join`], the gRPC transport | an [`AdmissionStore`] (join tokens: [`AgentStore`]) |
//!
//! [`TopologyStore`] (clusters, services, configs: a cluster as templates see it) and
//! [`AdmissionStore`] (clusters, agents, audit: admitting agents) are views that name those
//! combinations; they add no methods.
//!
//! [`SqlStore`] implements every part on one SQLite database. Every implementation must pass
//! the conformance suite, `conformance`: one part per trait, each runnable on its own, built
//! for tests and with the `conformance` feature only. `docs/store.md` says why the cut is
//! where it is and how to run the suite against another implementation.

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod sql;

pub use sql::{CopyReport, ENGINE_LEASE, Engine, Fence, Lease, SqlStore, redact_url, sqlite_url};

use crate::Result;
use crate::auth::Role;
use crate::model::*;
use async_trait::async_trait;

/// A job's state change, applied only if the job is still in `from`.
///
/// The store keeps the job's times: `started_at` is set on the first change to RUNNING,
/// `finished_at` is set to `at` on a change to a final state and cleared on any other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobChange {
    /// The job.
    pub id: JobId,
    /// The state it must be in.
    pub from: JobState,
    /// The state it goes to.
    pub to: JobState,
    /// When.
    pub at: i64,
}

/// A stage's state change, applied only if the stage is still in `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageChange {
    /// The stage.
    pub id: StageId,
    /// The state it must be in.
    pub from: StageState,
    /// The state it goes to.
    pub to: StageState,
}

/// A task's state change, applied only if the task is still in `from` (and, where `attempt_is`
/// is given, at that attempt). Fields left `None` keep their stored values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskChange {
    /// The task.
    pub id: TaskId,
    /// The state it must be in.
    pub from: TaskState,
    /// The state it goes to.
    pub to: TaskState,
    /// Only apply if the stored attempt is this one (guards against late events of old attempts).
    pub attempt_is: Option<u32>,
    /// Set the attempt (a retry sets attempt + 1).
    pub set_attempt: Option<u32>,
    /// First clear exit code, pid, start, finish and message (a retry does).
    pub clear_result: bool,
    /// Set the exit code.
    pub exit_code: Option<i32>,
    /// Set the pid.
    pub pid: Option<u32>,
    /// Set the start time.
    pub started_at: Option<i64>,
    /// Set the finish time.
    pub finished_at: Option<i64>,
    /// Set the message.
    pub message: Option<String>,
}

/// A batch of changes written in one transaction. Each state change is compare-and-set on its
/// own: one that finds another state is skipped (and reported), the others are applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Job state changes.
    pub jobs: Vec<JobChange>,
    /// Stage state changes.
    pub stages: Vec<StageChange>,
    /// Task state changes.
    pub tasks: Vec<TaskChange>,
    /// Unit states to set (no compare: units follow task results).
    pub units: Vec<(UnitId, UnitState)>,
    /// Units whose `configure` succeeded: the config version and the hash of the files it
    /// wrote (sets `applied_version` and `applied_hash`).
    pub applied_configs: Vec<(UnitId, u32, String)>,
    /// Log lines to append.
    pub logs: Vec<LogLine>,
}

impl Batch {
    /// True if the batch holds nothing.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
            && self.stages.is_empty()
            && self.tasks.is_empty()
            && self.units.is_empty()
            && self.applied_configs.is_empty()
            && self.logs.is_empty()
    }
}

/// Which compare-and-set changes of a [`Batch`] were applied, index for index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// One per [`Batch::jobs`].
    pub jobs: Vec<bool>,
    /// One per [`Batch::stages`].
    pub stages: Vec<bool>,
    /// One per [`Batch::tasks`].
    pub tasks: Vec<bool>,
}

/// Clusters and their hosts.
///
/// Cluster names are unique, and so are host names, globally (a host belongs to one cluster):
/// creating a duplicate is [`crate::Error::AlreadyExists`]; acting on a missing id is
/// [`crate::Error::NotFound`].
#[async_trait]
pub trait ClusterStore: Send + Sync + 'static {
    /// Creates a cluster.
    async fn create_cluster(&self, name: &str) -> Result<Cluster>;
    /// The cluster of that name.
    async fn cluster_by_name(&self, name: &str) -> Result<Option<Cluster>>;
    /// Every cluster, by id.
    async fn list_clusters(&self) -> Result<Vec<Cluster>>;
    /// Deletes a cluster that has no hosts, services nor jobs ([`crate::Error::Conflict`]
    /// otherwise).
    async fn delete_cluster(&self, id: ClusterId) -> Result<()>;

    /// Adds a host to a cluster, WAITING for its agent, with no reported address.
    async fn add_host(&self, host: NewHost) -> Result<Host>;
    /// The host of that name.
    async fn host_by_name(&self, name: &str) -> Result<Option<Host>>;
    /// The hosts of a cluster, by id.
    async fn list_hosts(&self, cluster: ClusterId) -> Result<Vec<Host>>;
    /// Removes a host: it is no longer listed nor found by name, its name can be used again and
    /// its agent credential is cleared (tasks keep referring to it by id). Refused
    /// ([`crate::Error::Conflict`]) while a unit of a live service instance is placed on it.
    async fn remove_host(&self, id: HostId) -> Result<()>;
    /// Sets a host's state and, if given, its last heartbeat.
    async fn set_host_state(
        &self,
        id: HostId,
        state: HostState,
        heartbeat: Option<i64>,
    ) -> Result<()>;
    /// Sets a host's address and clears its reported address (an admin's decision).
    async fn set_host_address(&self, host: HostId, address: &str) -> Result<()>;
}

/// What agents joining and reporting write: join tokens, the credential of the agent that
/// holds each host, and the hosts' reports. Secrets are kept only as the hex SHA-256 of their
/// value.
#[async_trait]
pub trait AgentStore: Send + Sync + 'static {
    /// Records a cluster's join token, by the hex SHA-256 of its value.
    async fn add_join_token(&self, cluster: ClusterId, token_hash: &str) -> Result<()>;
    /// The cluster a join token (by hash) lets agents join, if it is known.
    async fn join_token_cluster(&self, token_hash: &str) -> Result<Option<ClusterId>>;
    /// Gives host `host` to the agent presenting the credential of that hash, if no agent holds
    /// it yet: one compare-and-set, so of agents claiming a host at once exactly one gets
    /// `true`; the others get `false` and nothing is written. [`crate::Error::NotFound`] for an
    /// unknown or removed host.
    async fn claim_host(&self, host: HostId, credential_hash: &str) -> Result<bool>;
    /// The hash of a host's agent credential; `None` until an agent joined as that host.
    async fn host_credential(&self, host: HostId) -> Result<Option<String>>;
    /// Records the fingerprint (`sha256:…`) of the certificate just issued to a host's agent,
    /// replacing the one before: from now on only that certificate is the host's.
    /// [`crate::Error::NotFound`] for an unknown or removed host.
    async fn set_host_certificate(&self, host: HostId, fingerprint: &str) -> Result<()>;
    /// Records the SSH host key fingerprint (`SHA256:…`) a host showed when it was added over
    /// SSH: later bootstraps accept only that key. [`crate::Error::NotFound`] for an unknown or
    /// removed host.
    async fn set_host_ssh_key(&self, host: HostId, fingerprint: &str) -> Result<()>;
    /// The SSH host key fingerprint recorded for a host; `None` if it was never bootstrapped.
    async fn host_ssh_key(&self, host: HostId) -> Result<Option<String>>;
    /// The host whose current agent certificate has this fingerprint; `None` for a certificate
    /// no host holds: never issued, replaced by a later one, or of a removed host (removing a
    /// host revokes its certificate).
    async fn host_by_certificate(&self, fingerprint: &str) -> Result<Option<Host>>;
    /// Records a registration or heartbeat: the host turns ONLINE with `report.at` as its last
    /// heartbeat; the facts and metrics given replace the stored ones; an address given that
    /// differs from the host's becomes its `reported_address` (one equal to it clears that);
    /// each unit health given is stored on the matching unit (units the store does not know
    /// are skipped).
    ///
    /// A report with metrics also adds them to the host's metric history as a sample taken at
    /// `report.at` (the server's clock, not the agent's), and drops the host's samples older
    /// than [`METRICS_KEPT_MS`] before it.
    async fn record_host_report(&self, host: HostId, report: &HostReport) -> Result<()>;
    /// Records many hosts' reports, each as [`AgentStore::record_host_report`] does, in one
    /// write where the store can (the server batches heartbeats that arrive together); the
    /// report of a host the store no longer has is skipped, not an error. The default records
    /// them one by one.
    async fn record_host_reports(&self, reports: &[(HostId, HostReport)]) -> Result<()> {
        for (host, report) in reports {
            match self.record_host_report(*host, report).await {
                Err(crate::Error::NotFound { .. }) => {}
                other => other?,
            }
        }
        Ok(())
    }
    /// The metric samples of a cluster's hosts (or of `host` alone) taken at or after `since`,
    /// by host then time, oldest first; each sample's `at` is when the server received it.
    async fn host_metrics(
        &self,
        cluster: ClusterId,
        host: Option<HostId>,
        since: i64,
    ) -> Result<Vec<(HostId, HostMetrics)>>;
}

/// How long a host's metric samples are kept (ms): an hour of heartbeats.
pub const METRICS_KEPT_MS: i64 = 3_600_000;

/// Service instances and their units.
///
/// Service instance names are unique per cluster ([`crate::Error::AlreadyExists`]); acting
/// on a missing id is [`crate::Error::NotFound`].
#[async_trait]
pub trait ServiceStore: Send + Sync + 'static {
    /// Adds a service instance and its units (state NEW) in one transaction.
    async fn add_service(
        &self,
        service: NewService,
        units: Vec<NewUnit>,
    ) -> Result<(ServiceInstance, Vec<Unit>)>;
    /// The service instance of that name in a cluster.
    async fn service_by_name(
        &self,
        cluster: ClusterId,
        name: &str,
    ) -> Result<Option<ServiceInstance>>;
    /// The service instances of a cluster, by id.
    async fn list_services(&self, cluster: ClusterId) -> Result<Vec<ServiceInstance>>;
    /// The units of a cluster's (live) service instances, by id.
    async fn list_units(&self, cluster: ClusterId) -> Result<Vec<Unit>>;
    /// Removes a service instance: it and its units are no longer listed, its name can be used
    /// again, its units no longer hold their hosts (stages keep referring to it by id). Refused
    /// ([`crate::Error::Conflict`]) while a unit of it is STARTED or a job with a stage of it
    /// is not finished.
    async fn remove_service(&self, id: ServiceId) -> Result<()>;
    /// Adds units to a service instance (state NEW). [`crate::Error::NotFound`] for an unknown
    /// or removed service or host; [`crate::Error::AlreadyExists`] if that component already
    /// has a unit on that host. Nothing is written unless all are.
    async fn add_units(&self, service: ServiceId, units: Vec<NewUnit>) -> Result<Vec<Unit>>;
    /// Removes a unit (softly: its tasks keep referring to it). Refused with
    /// [`crate::Error::Conflict`] while it is STARTED or an unfinished job has a task on it.
    async fn remove_unit(&self, id: UnitId) -> Result<()>;
}

/// The configuration history of service instances: config versions, snapshots, and the
/// relations between instances with their events.
#[async_trait]
pub trait ConfigStore: Send + Sync + 'static {
    /// Adds a config version to a service instance and makes it the desired one (its values
    /// become the instance's `configs` / `host_overrides`), only if the instance's current
    /// version is `expected`, else [`crate::Error::Conflict`] naming both. Numbered `expected + 1`.
    async fn add_config_version(
        &self,
        service: ServiceId,
        expected: u32,
        new: &NewConfigVersion,
    ) -> Result<ConfigVersion>;
    /// Every config version of a service instance, oldest first (removed instances too).
    async fn list_config_versions(&self, service: ServiceId) -> Result<Vec<ConfigVersion>>;
    /// One config version.
    async fn config_version(
        &self,
        service: ServiceId,
        version: u32,
    ) -> Result<Option<ConfigVersion>>;

    /// Adds a named snapshot; [`crate::Error::AlreadyExists`] if the cluster has one of that name.
    async fn add_snapshot(&self, snapshot: &NewSnapshot) -> Result<Snapshot>;
    /// A cluster's snapshots, oldest first.
    async fn list_snapshots(&self, cluster: ClusterId) -> Result<Vec<Snapshot>>;
    /// One snapshot by name.
    async fn snapshot(&self, cluster: ClusterId, name: &str) -> Result<Option<Snapshot>>;

    /// Adds a relation; [`crate::Error::AlreadyExists`] if the same endpoints are related already,
    /// [`crate::Error::NotFound`] for a removed or unknown service.
    async fn add_relation(&self, relation: &NewRelation) -> Result<Relation>;
    /// A cluster's relations (not removed ones), by id.
    async fn list_relations(&self, cluster: ClusterId) -> Result<Vec<Relation>>;
    /// Removes a relation (softly: its events stay readable).
    async fn remove_relation(&self, id: RelationId) -> Result<()>;
    /// Records a relation event.
    async fn add_relation_event(&self, event: &NewRelationEvent) -> Result<RelationEvent>;
    /// A relation's events, oldest first.
    async fn list_relation_events(&self, relation: RelationId) -> Result<Vec<RelationEvent>>;
}

/// Jobs, their stages and tasks, and the tasks' log lines: what the engine reads and writes.
///
/// Every change of a job's, stage's or task's state goes through [`JobStore::apply`], batched
/// and compare-and-set (see [`Batch`]), so two writers never both win a transition.
#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Persists a planned job — job QUEUED, stages PENDING, tasks PENDING at attempt 1 — in one
    /// transaction, and returns it with its ids.
    async fn create_job(&self, job: &NewJob) -> Result<JobDetail>;
    /// A job.
    async fn get_job(&self, id: JobId) -> Result<Option<Job>>;
    /// A job with its stages and tasks.
    async fn job_detail(&self, id: JobId) -> Result<Option<JobDetail>>;
    /// Jobs matching a filter, ascending by id.
    async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>>;
    /// Applies a batch of changes in one transaction (see [`Batch`]).
    async fn apply(&self, batch: &Batch) -> Result<Applied>;
    /// A task's log lines, by attempt then line number; `attempt: None` gives every attempt's.
    async fn task_log(&self, task: TaskId, attempt: Option<u32>) -> Result<Vec<LogLine>>;
    /// The first `limit` of a task's log lines that come after line `after` (attempt, line
    /// number), by attempt then line number; `after: None` starts at the first line. What a
    /// follower of a running task reads to get only the lines it has not seen.
    async fn task_log_after(
        &self,
        task: TaskId,
        after: Option<(u32, u64)>,
        limit: u32,
    ) -> Result<Vec<LogLine>>;
    /// The latest `limit` tasks that ran or will run on a host, newest first, each with its
    /// job's command and its stage's service and component.
    async fn host_tasks(&self, host: HostId, limit: u32) -> Result<Vec<HostTask>>;
    /// How many jobs and tasks are in each state, every cluster's (states with none are left
    /// out).
    async fn state_counts(&self) -> Result<StateCounts>;
}

/// Users and their API tokens.
#[async_trait]
pub trait AuthStore: Send + Sync + 'static {
    /// Creates a user; user names are unique ([`crate::Error::AlreadyExists`]).
    async fn create_user(&self, user: &NewUser) -> Result<User>;
    /// The user of that name.
    async fn user_by_name(&self, name: &str) -> Result<Option<User>>;
    /// Every user, by id.
    async fn list_users(&self) -> Result<Vec<User>>;
    /// Deletes a user and, in the same transaction, all its API tokens.
    async fn delete_user(&self, id: UserId) -> Result<()>;
    /// Changes a user's role.
    async fn set_user_role(&self, id: UserId, role: Role) -> Result<()>;
    /// Sets (or, with `None`, removes) a user's password hash.
    async fn set_user_password(&self, id: UserId, password_hash: Option<&str>) -> Result<()>;
    /// A user's password hash (`None` if it has no password), to check a login against.
    async fn user_password_hash(&self, id: UserId) -> Result<Option<String>>;

    /// Adds an API token for a user; token hashes are unique.
    async fn add_api_token(&self, token: &NewApiToken) -> Result<ApiToken>;
    /// The token with that id.
    async fn api_token(&self, id: ApiTokenId) -> Result<Option<ApiToken>>;
    /// The user an API token (by hash) authenticates, with the token.
    async fn token_user(&self, token_hash: &str) -> Result<Option<(User, ApiToken)>>;
    /// Records that a token was used at `at` (callers throttle this; it is a write).
    async fn touch_api_token(&self, id: ApiTokenId, at: i64) -> Result<()>;
    /// A user's API tokens, by id.
    async fn list_api_tokens(&self, user: UserId) -> Result<Vec<ApiToken>>;
    /// Deletes an API token.
    async fn delete_api_token(&self, id: ApiTokenId) -> Result<()>;
}

/// The audit log: append-only, read back by filter.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Appends an event to the audit log; it gets an id above every earlier event's.
    async fn append_audit(&self, event: &NewAuditEvent) -> Result<AuditEvent>;
    /// Audit events matching a filter, ascending by id.
    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>>;
}

/// What makes the body of a cluster's notification of its alert changes
/// ([`AlertStore::report_alerts`]); `None` sends nothing (every change was silenced).
pub type NotifyBody<'a> =
    dyn Fn(ClusterId, &[AlertChange]) -> Result<Option<String>> + Send + Sync + 'a;

/// How old an alert's `checked_at` gets before a finding that changes nothing (same state,
/// same text) writes it again (ms). Every alert round finds every host and unit: writing each
/// of those findings would rewrite every alert row every few seconds, holding the store's
/// write lock (and every job's progress) for nothing.
pub const ALERT_CHECK_REFRESH_MS: i64 = 60_000;

/// Alerts: the last finding of each definition about each subject, and every change of state.
#[async_trait]
pub trait AlertStore: Send + Sync + 'static {
    /// Records findings, in one transaction. A finding for a subject the definition has no
    /// alert about yet creates one (as if it had been OK); a finding in another state than
    /// the alert's changes it (`since` = the finding's time) and is kept as history; one in
    /// the same state updates the text and `checked_at` when its text is new or the alert's
    /// `checked_at` is [`ALERT_CHECK_REFRESH_MS`] old, and otherwise changes nothing. Returns
    /// the changes, in order.
    /// A finding naming a cluster, host, service or unit that does not exist is
    /// [`crate::Error::NotFound`] and nothing is recorded.
    ///
    /// With `notify`, in the same transaction: for each cluster with changes, the body `notify`
    /// makes of them is queued for every target of the cluster (so no change is recorded
    /// without its notification); an error of `notify` records nothing.
    async fn report_alerts(
        &self,
        reports: &[AlertReport],
        notify: Option<&NotifyBody<'_>>,
    ) -> Result<Vec<AlertChange>>;
    /// Alerts matching a filter, by id.
    async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<Alert>>;
    /// Changes of a cluster's alerts (or of one alert), ascending by id: after a cursor, at
    /// most `limit`.
    async fn alert_history(
        &self,
        cluster: ClusterId,
        alert: Option<AlertId>,
        after: Option<AlertChangeId>,
        limit: Option<u32>,
    ) -> Result<Vec<AlertChange>>;
    /// Adds a notification target to a cluster; a name taken in the cluster is
    /// [`crate::Error::AlreadyExists`], an unknown cluster NotFound.
    async fn add_alert_target(
        &self,
        cluster: ClusterId,
        name: &str,
        kind: TargetKind,
        url: &str,
    ) -> Result<AlertTarget>;
    /// A cluster's notification targets, by id.
    async fn alert_targets(&self, cluster: ClusterId) -> Result<Vec<AlertTarget>>;
    /// Removes a target with its notifications and their log; NotFound if there is none.
    async fn remove_alert_target(&self, id: AlertTargetId) -> Result<()>;
    /// Queues a notification of `body` to every target of `cluster`, due now (`at`); how
    /// many were queued.
    async fn queue_notifications(&self, cluster: ClusterId, body: &str, at: i64) -> Result<u32>;
    /// Undelivered notifications due at `now`, oldest first, at most `limit`; per target in
    /// order: one is not due while an older one to the same target is undelivered (a
    /// resolution never overtakes its alert).
    async fn due_notifications(&self, now: i64, limit: u32) -> Result<Vec<Notification>>;
    /// Records an attempt to deliver a notification: delivered (then it is done), or due
    /// again at `retry_at`. The attempt is kept in the delivery log.
    async fn record_delivery(
        &self,
        id: NotificationId,
        at: i64,
        status: Option<u16>,
        answer: &str,
        retry_at: Option<i64>,
    ) -> Result<()>;
    /// The delivery log of a cluster's targets, newest first, at most `limit`.
    async fn delivery_log(&self, cluster: ClusterId, limit: u32) -> Result<Vec<DeliveryAttempt>>;
    /// Starts a maintenance window (its `id` and `created_at` are given here); a host or
    /// service that does not exist in the cluster is NotFound.
    async fn add_maintenance(&self, window: &Maintenance) -> Result<Maintenance>;
    /// The maintenance windows not ended at `now`, of one cluster or of all, by id.
    async fn maintenance(&self, cluster: Option<ClusterId>, now: i64) -> Result<Vec<Maintenance>>;
    /// Ends a window at `now` (it stays, ended, for the record); NotFound if there is none, or
    /// it has ended.
    async fn end_maintenance(&self, id: MaintenanceId, now: i64) -> Result<Maintenance>;
    /// A service's self-healing policy ([`HealingPolicy::default`] if none was set).
    async fn healing_policy(&self, service: ServiceId) -> Result<HealingPolicy>;
    /// Sets a service's self-healing policy; NotFound if there is no such service.
    async fn set_healing_policy(&self, service: ServiceId, policy: &HealingPolicy) -> Result<()>;
    /// Records a new version of a cluster's change of `definition` (a JSON object) by `author`:
    /// one more than the highest so far, returned.
    async fn add_alert_override(
        &self,
        cluster: ClusterId,
        definition: &str,
        settings: &str,
        author: &str,
    ) -> Result<u32>;
    /// The change in force of every definition a cluster changed: (definition, version,
    /// settings, author, when), by definition.
    async fn alert_overrides(
        &self,
        cluster: ClusterId,
    ) -> Result<Vec<(String, u32, String, String, i64)>>;
    /// The latest result of every check of a cluster's units (live ones), by unit and name.
    async fn check_results(&self, cluster: ClusterId) -> Result<Vec<(UnitId, CheckResult)>>;
    /// The services of a cluster whose policy restarts units, with their policies.
    async fn healing_services(&self, cluster: ClusterId)
    -> Result<Vec<(ServiceId, HealingPolicy)>>;
}

/// Pipelines (docs/pipelines.md): checked definitions by name per cluster, and their state.
/// Names are unique among a cluster's live pipelines ([`crate::Error::AlreadyExists`]); a
/// removed one frees its name.
#[async_trait]
pub trait PipelineStore: Send + Sync + 'static {
    /// Adds a pipeline, CREATED. [`crate::Error::NotFound`] for an unknown cluster.
    async fn add_pipeline(&self, new: &NewPipeline) -> Result<Pipeline>;
    /// The live pipeline of that name in a cluster.
    async fn pipeline(&self, cluster: ClusterId, name: &str) -> Result<Option<Pipeline>>;
    /// A cluster's live pipelines, by id.
    async fn list_pipelines(&self, cluster: ClusterId) -> Result<Vec<Pipeline>>;
    /// Moves a pipeline from one of the states `from` to `to`, with its run's `message`
    /// (replacing the one before): false (nothing written) if it is in none of them;
    /// [`crate::Error::NotFound`] for an unknown or removed one.
    async fn set_pipeline_state(
        &self,
        id: PipelineId,
        from: &[PipelineState],
        to: PipelineState,
        message: Option<&str>,
    ) -> Result<bool>;
    /// Records the replicas a pipeline's units were scaled to (all of them, replacing those
    /// before).
    async fn set_pipeline_replicas(
        &self,
        id: PipelineId,
        replicas: &std::collections::BTreeMap<String, u32>,
    ) -> Result<()>;
    /// Removes a pipeline (softly: its name is free again). Refused
    /// ([`crate::Error::Conflict`]) while it runs (RUNNING, PAUSED or DRAINING).
    async fn remove_pipeline(&self, id: PipelineId) -> Result<()>;

    // The metastore: every batch at every node.

    /// Records batches arriving at their nodes, RECEIVED, each once: a batch already recorded
    /// at that node is left as it is. Returns how many were new. [`crate::Error::NotFound`]
    /// for an unknown pipeline.
    async fn receive_batches(&self, pipeline: PipelineId, batches: &[NewBatch]) -> Result<u64>;
    /// Leases the oldest RECEIVED batch of `node` that no live lease holds (none, or one that
    /// ended before `now`) to `holder` until `until`, by compare-and-set: of replicas asking at
    /// once, each batch goes to one. `None` if no batch waits.
    async fn lease_batch(
        &self,
        pipeline: PipelineId,
        node: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<Option<PipelineBatch>>;
    /// Moves `batch` of `node` to PROCESSED and records its `outputs` RECEIVED at their nodes,
    /// in one transaction, if `holder` still holds its lease; false, and nothing written, if
    /// not (the lease ended and another replica took it, or it was processed already). An
    /// output already recorded is left as it is, so no output is ever recorded twice.
    async fn complete_batch(
        &self,
        pipeline: PipelineId,
        node: &str,
        batch: &str,
        holder: &str,
        outputs: &[NewBatch],
    ) -> Result<bool> {
        self.complete_batches(pipeline, node, &[batch.to_string()], holder, outputs)
            .await
    }
    /// [`PipelineStore::complete_batch`] of several batches of `node` at once (a blocking
    /// unit's whole input): all of them, or — if `holder` does not hold the lease of every
    /// one — none, and nothing written.
    async fn complete_batches(
        &self,
        pipeline: PipelineId,
        node: &str,
        batches: &[String],
        holder: &str,
        outputs: &[NewBatch],
    ) -> Result<bool>;
    /// Ends the leases `holder` holds on a pipeline's batches (every lease, without one) so
    /// that other replicas take those batches at once: its host was lost, or the server that
    /// ran the pipeline restarted. Returns how many were released.
    async fn release_leases(&self, pipeline: PipelineId, holder: Option<&str>) -> Result<u64>;
    /// Marks CLEAN every batch whose data is at `location` (a batch broadcast to several
    /// channels has one row at each) once none of them waits to be processed: true if none
    /// waits — the data may be deleted now — false while one does (or no batch is there).
    async fn clean_location(&self, pipeline: PipelineId, location: &str) -> Result<bool>;
    /// PROCESSED → CLEAN (its data may be deleted); false if it was not PROCESSED.
    async fn clean_batch(&self, pipeline: PipelineId, node: &str, batch: &str) -> Result<bool>;
    /// The batches of a pipeline (of one node, if given), by node then arrival.
    async fn batches(&self, pipeline: PipelineId, node: Option<&str>)
    -> Result<Vec<PipelineBatch>>;
    /// One batch at one node, if it was recorded there.
    async fn batch(
        &self,
        pipeline: PipelineId,
        node: &str,
        batch: &str,
    ) -> Result<Option<PipelineBatch>>;
    /// How many batches wait at `node` (RECEIVED): its backlog.
    async fn backlog(&self, pipeline: PipelineId, node: &str) -> Result<u64>;
}

/// The assistant's state: model providers (with their keys, which only
/// [`AssistantStore::provider_key`] reads), chat threads, their messages and proposals.
#[async_trait]
pub trait AssistantStore: Send + Sync + 'static {
    /// Creates or replaces a provider, in one transaction: an omitted key keeps the stored
    /// one; a default provider makes every other one not the default.
    async fn set_provider(&self, settings: &ProviderSettings, at: i64) -> Result<Provider>;
    /// Every provider, by name (never their keys).
    async fn providers(&self) -> Result<Vec<Provider>>;
    /// A provider's API key, if it has one. NotFound if there is no such provider.
    async fn provider_key(&self, name: &str) -> Result<Option<String>>;
    /// Removes a provider. NotFound if there is none.
    async fn remove_provider(&self, name: &str) -> Result<()>;
    /// Creates a thread. NotFound if its user or cluster does not exist.
    async fn create_thread(&self, thread: &NewThread) -> Result<Thread>;
    /// A user's threads, newest first.
    async fn threads(&self, user: UserId) -> Result<Vec<Thread>>;
    /// A thread by id.
    async fn thread(&self, id: ThreadId) -> Result<Option<Thread>>;
    /// Appends a message to a thread. NotFound if there is no such thread.
    async fn add_message(&self, message: &NewChatMessage) -> Result<ChatMessage>;
    /// A thread's messages, oldest first.
    async fn messages(&self, thread: ThreadId) -> Result<Vec<ChatMessage>>;
    /// Records a pending proposal. NotFound if there is no such thread.
    async fn add_proposal(&self, proposal: &NewProposal) -> Result<Proposal>;
    /// A thread's proposals, oldest first.
    async fn proposals(&self, thread: ThreadId) -> Result<Vec<Proposal>>;
    /// A proposal by id.
    async fn proposal(&self, id: ProposalId) -> Result<Option<Proposal>>;
    /// Moves a proposal from `from` to `to` (with its result, at `at`) only if it is still in
    /// `from`: so a proposal is confirmed, and its request run, once. Returns whether it moved.
    async fn decide_proposal(
        &self,
        id: ProposalId,
        from: ProposalState,
        to: ProposalState,
        result: Option<&ProposalResult>,
        at: i64,
    ) -> Result<bool>;
}

/// What reading a cluster as templates see it takes — its hosts, service instances, units and
/// relations, and the cluster's changes of its alert checks — and so what loading a job to run
/// takes besides the job: [`ClusterStore`], [`ServiceStore`], [`ConfigStore`] and
/// [`AlertStore`] together. Implemented by every type that implements the four; [`crate::render::Topology::load`] and the engine's loading of jobs take it.
pub trait TopologyStore: ClusterStore + ServiceStore + ConfigStore + AlertStore {}

impl<T: ClusterStore + ServiceStore + ConfigStore + AlertStore> TopologyStore for T {}

/// What admitting agents and following their hosts takes: hosts ([`ClusterStore`]), join
/// tokens, credentials and reports ([`AgentStore`]) and the audit log of registrations
/// ([`AuditStore`]). Implemented by every type that implements the three; [`crate::join`] and
/// the gRPC transport take it.
pub trait AdmissionStore: ClusterStore + AgentStore + AuditStore {}

impl<T: ClusterStore + AgentStore + AuditStore> AdmissionStore for T {}

/// Durable state of bigmgr: every concern trait at once. Implemented by every type that
/// implements them all; what the [`crate::Manager`] holds, as an `Arc<dyn Store>`.
///
/// An `Arc<dyn Store>` (or `&dyn Store`) coerces to any of its parts — `Arc<dyn JobStore>`,
/// `&dyn ClusterStore`, … — and to the views [`TopologyStore`] and [`AdmissionStore`], so a
/// component takes the narrowest it needs. The views are among the supertraits for that only
/// (coercing to a trait object needs a supertrait); they add no methods.
///
/// Every implementation must pass the conformance suite (`store::conformance::run`). Names are
/// unique: cluster names globally, host names globally (a host belongs to one cluster), service
/// instance names per cluster, user names globally. Creating a duplicate is
/// [`crate::Error::AlreadyExists`]; acting on a missing id is [`crate::Error::NotFound`].
pub trait Store:
    ClusterStore
    + AgentStore
    + ServiceStore
    + ConfigStore
    + JobStore
    + AuthStore
    + AuditStore
    + AlertStore
    + AssistantStore
    + PipelineStore
    + TopologyStore
    + AdmissionStore
{
}

impl<T> Store for T where
    T: ClusterStore
        + AgentStore
        + ServiceStore
        + ConfigStore
        + JobStore
        + AuthStore
        + AuditStore
        + AlertStore
        + AssistantStore
        + PipelineStore
{
}

/// The name of cluster `id` (its id as text if it is gone): how frontends and the audit log
/// name a cluster they only know by id.
pub async fn cluster_name(store: &dyn ClusterStore, id: ClusterId) -> Result<String> {
    Ok(store
        .list_clusters()
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .map(|c| c.name)
        .unwrap_or_else(|| id.to_string()))
}

/// Appends an event stamped now to the audit log. A failure to write it is logged, not
/// returned: the call it describes has happened (or been refused) already.
pub async fn audit(
    store: &dyn AuditStore,
    actor: &str,
    action: crate::auth::Action,
    target: &str,
    outcome: Outcome,
    detail: &str,
) {
    let event = NewAuditEvent {
        at: now_ms(),
        actor: actor.into(),
        action: action.as_str().into(),
        target: target.into(),
        outcome,
        detail: detail.into(),
    };
    if let Err(e) = store.append_audit(&event).await {
        tracing::error!(?event, "cannot append to the audit log: {e}");
    }
}
