//! A user acting through the Manager: [`Manager::acting`] hands out an [`Acting`], whose every
//! change is authorised by the actor's role ([`crate::auth::authorize`]; a refusal is audited
//! too) and appended to the audit log with its outcome — the same rules whichever frontend
//! acts (REST, the Python module's embedded engine, an assistant's tools). Config versions,
//! snapshots and added services are authored by the actor.
//!
//! The Manager's own methods stay for the engine and for embedders acting on their own
//! behalf (they neither authorise nor audit); frontends act through this handle.

use super::{AddService, ConfigChange, Manager, Relate};
use crate::Result;
use crate::auth::{Action, Actor};
use crate::model::{Cluster, MaintenanceId, TargetKind};
use crate::model::{
    ConfigVersion, Host, Job, JobId, JobRequest, Outcome, Pipeline, Relation, RelationId,
    ServiceInstance, Snapshot, Unit, UnitId,
};
use crate::request::{AddUnitsBody, RestartStaleBody};
use std::future::Future;

/// Changes made by one actor; see the module documentation.
#[derive(Debug, Clone)]
pub struct Acting {
    pub(super) mgr: Manager,
    actor: Actor,
}

impl Manager {
    /// `actor` acting through this Manager: every change authorised and audited.
    pub fn acting(&self, actor: Actor) -> Acting {
        Acting {
            mgr: self.clone(),
            actor,
        }
    }
}

impl Acting {
    /// Who acts.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The Manager, for reads (every role may read).
    pub fn manager(&self) -> &Manager {
        &self.mgr
    }

    /// Authorises `action` on `target`, runs `change`, and audits how it ended: `ok` with what
    /// `detail` says of the result, or `failed` with the error.
    pub(super) async fn act<T, F>(
        &self,
        action: Action,
        target: String,
        change: F,
        detail: impl FnOnce(&T) -> String,
    ) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        self.mgr.authorize(&self.actor, action, &target).await?;
        let res = change.await;
        let (outcome, what) = match &res {
            Ok(v) => (Outcome::Ok, detail(v)),
            Err(e) => (Outcome::Failed, e.to_string()),
        };
        self.mgr
            .record(&self.actor, action, &target, outcome, &what)
            .await;
        res
    }

    /// Creates a cluster.
    pub async fn create_cluster(&self, name: &str) -> Result<Cluster> {
        let change = self.mgr.create_cluster(name);
        self.act(
            Action::CreateCluster,
            format!("cluster {name}"),
            change,
            |_| "created".into(),
        )
        .await
    }

    /// Deletes a cluster.
    pub async fn delete_cluster(&self, name: &str) -> Result<()> {
        let change = self.mgr.delete_cluster(name);
        self.act(
            Action::DeleteCluster,
            format!("cluster {name}"),
            change,
            |_| "deleted".into(),
        )
        .await
    }

    /// Creates a join token for a cluster (its value is never audited).
    pub async fn create_join_token(&self, cluster: &str) -> Result<String> {
        let change = self.mgr.create_join_token(cluster);
        self.act(
            Action::CreateJoinToken,
            format!("cluster {cluster}"),
            change,
            |_| "created a join token".into(),
        )
        .await
    }

    /// Adds a host.
    pub async fn add_host(&self, cluster: &str, name: &str, address: &str) -> Result<Host> {
        let change = self.mgr.add_host(cluster, name, address);
        self.act(
            Action::AddHost,
            format!("host {name} of cluster {cluster}"),
            change,
            |h| format!("added with address {}", h.address),
        )
        .await
    }

    /// Adds hosts over SSH as a `bootstrap` job ([`Manager::bootstrap_hosts`]); the audit
    /// names the hosts and the job, never the credential.
    pub async fn bootstrap_hosts(
        &self,
        cluster: &str,
        req: &crate::request::BootstrapHosts,
        default_server: Option<&str>,
    ) -> Result<Job> {
        let names: Vec<&str> = req.hosts.iter().map(|h| h.name.as_str()).collect();
        let change = self
            .mgr
            .bootstrap_hosts(cluster, req, default_server, &self.actor.name);
        self.act(
            Action::BootstrapHosts,
            format!("hosts {} of cluster {cluster}", names.join(", ")),
            change,
            |j| format!("job {} bootstraps them over SSH as {}", j.id, req.ssh_user),
        )
        .await
    }

    /// Creates a pipeline from its definition ([`Manager::create_pipeline`]).
    pub async fn create_pipeline(
        &self,
        cluster: &str,
        definition: &str,
    ) -> Result<crate::model::Pipeline> {
        // The target names the pipeline by its definition's name, if it has one.
        let name = crate::pipeline::parse(definition)
            .map(|p| p.def.name)
            .unwrap_or_else(|_| "?".into());
        let change = self
            .mgr
            .create_pipeline(cluster, definition, &self.actor.name);
        self.act(
            Action::ManagePipeline,
            format!("pipeline {name} of cluster {cluster}"),
            change,
            |_| "created".into(),
        )
        .await
    }

    /// Starts a pipeline ([`Manager::start_pipeline`]).
    pub async fn start_pipeline(&self, cluster: &str, name: &str) -> Result<Pipeline> {
        let change = self.mgr.start_pipeline(cluster, name);
        self.control_pipeline(cluster, name, change, "started")
            .await
    }

    /// Pauses a running pipeline ([`Manager::pause_pipeline`]).
    pub async fn pause_pipeline(&self, cluster: &str, name: &str) -> Result<Pipeline> {
        let change = self.mgr.pause_pipeline(cluster, name);
        self.control_pipeline(cluster, name, change, "paused").await
    }

    /// Resumes a paused pipeline ([`Manager::resume_pipeline`]).
    pub async fn resume_pipeline(&self, cluster: &str, name: &str) -> Result<Pipeline> {
        let change = self.mgr.resume_pipeline(cluster, name);
        self.control_pipeline(cluster, name, change, "resumed")
            .await
    }

    /// Stops a pipeline by draining or aborting ([`Manager::stop_pipeline`]).
    pub async fn stop_pipeline(&self, cluster: &str, name: &str, drain: bool) -> Result<Pipeline> {
        let change = self.mgr.stop_pipeline(cluster, name, drain);
        let how = if drain { "draining" } else { "aborted" };
        self.control_pipeline(cluster, name, change, how).await
    }

    /// Scales a unit of a pipeline ([`Manager::scale_pipeline`]).
    pub async fn scale_pipeline(
        &self,
        cluster: &str,
        name: &str,
        unit: &str,
        replicas: u32,
    ) -> Result<Pipeline> {
        let change = self.mgr.scale_pipeline(cluster, name, unit, replicas);
        let how = format!("unit {unit} scaled to {replicas} replicas");
        self.control_pipeline(cluster, name, change, &how).await
    }

    /// Pushes a batch to an HTTP source of a running pipeline ([`Manager::push_batch`]).
    pub async fn push_batch(
        &self,
        cluster: &str,
        name: &str,
        source: &str,
        batch: Option<&str>,
        data: Vec<u8>,
    ) -> Result<crate::view::PushedBatch> {
        let len = data.len();
        let change = self.mgr.push_batch(cluster, name, source, batch, data);
        self.act(
            Action::ControlPipeline,
            format!("pipeline {name} of cluster {cluster}"),
            change,
            |b| format!("batch {} ({len} bytes) pushed to source {source}", b.batch),
        )
        .await
    }

    async fn control_pipeline(
        &self,
        cluster: &str,
        name: &str,
        change: impl Future<Output = Result<Pipeline>>,
        how: &str,
    ) -> Result<Pipeline> {
        self.act(
            Action::ControlPipeline,
            format!("pipeline {name} of cluster {cluster}"),
            change,
            |_| how.to_string(),
        )
        .await
    }

    /// Removes a pipeline that is not running.
    pub async fn remove_pipeline(&self, cluster: &str, name: &str) -> Result<()> {
        let change = self.mgr.remove_pipeline(cluster, name);
        self.act(
            Action::ManagePipeline,
            format!("pipeline {name} of cluster {cluster}"),
            change,
            |_| "removed".into(),
        )
        .await
    }

    /// Changes a host's address (accepts the one its agent reported).
    pub async fn set_host_address(&self, cluster: &str, name: &str, address: &str) -> Result<Host> {
        let change = self.mgr.set_host_address(cluster, name, address);
        self.act(
            Action::ChangeHost,
            format!("host {name} of cluster {cluster}"),
            change,
            |h| format!("address set to {}", h.address),
        )
        .await
    }

    /// Removes a host.
    pub async fn remove_host(&self, cluster: &str, name: &str) -> Result<()> {
        let change = self.mgr.remove_host(cluster, name);
        self.act(
            Action::RemoveHost,
            format!("host {name} of cluster {cluster}"),
            change,
            |_| "removed".into(),
        )
        .await
    }

    /// Adds a service instance, authored by the actor.
    pub async fn add_service(
        &self,
        cluster: &str,
        req: AddService,
    ) -> Result<(ServiceInstance, Vec<Unit>)> {
        let target = format!("service {} of cluster {cluster}", req.name);
        let change = self.mgr.add_service_by(cluster, req, &self.actor.name);
        self.act(Action::AddService, target, change, |(s, u)| {
            format!(
                "added {} {}/{} with {} unit(s)",
                s.service,
                s.stack,
                s.stack_version,
                u.len()
            )
        })
        .await
    }

    /// Every check of [`Acting::add_service`], nothing written (a dry run): authorised as
    /// adding the service, and not audited, since nothing changes.
    pub async fn check_service(
        &self,
        cluster: &str,
        req: AddService,
    ) -> Result<crate::view::ServiceCheckView> {
        let target = format!("service {} of cluster {cluster}", req.name);
        self.mgr
            .authorize(&self.actor, Action::AddService, &target)
            .await?;
        self.mgr.check_service(cluster, req).await
    }

    /// Removes a service instance.
    pub async fn remove_service(&self, cluster: &str, name: &str) -> Result<()> {
        let change = self.mgr.remove_service(cluster, name);
        self.act(
            Action::RemoveService,
            format!("service {name} of cluster {cluster}"),
            change,
            |_| "removed".into(),
        )
        .await
    }

    /// Submits a job.
    pub async fn submit(&self, req: JobRequest) -> Result<Job> {
        let target = format!("cluster {}", req.cluster);
        let what = match &req.options.reason {
            Some(reason) => format!("{} on {:?} ({reason})", req.command, req.target),
            None => format!("{} on {:?}", req.command, req.target),
        };
        let change = self.mgr.submit(req);
        self.act(Action::SubmitJob, target, change, |j| {
            format!("submitted job {}: {what}", j.id)
        })
        .await
    }

    /// Cancels a job.
    pub async fn cancel(&self, id: JobId) -> Result<Job> {
        self.control(id, "canceled", self.mgr.cancel(id)).await
    }

    /// Pauses a job.
    pub async fn pause(&self, id: JobId) -> Result<Job> {
        self.control(id, "paused", self.mgr.pause(id)).await
    }

    /// Resumes a paused job.
    pub async fn resume(&self, id: JobId) -> Result<Job> {
        self.control(id, "resumed", self.mgr.resume(id)).await
    }

    /// Retries a failed or cancelled job.
    pub async fn retry(&self, id: JobId) -> Result<Job> {
        self.control(id, "retried", self.mgr.retry(id)).await
    }

    async fn control(
        &self,
        id: JobId,
        what: &'static str,
        change: impl Future<Output = Result<Job>>,
    ) -> Result<Job> {
        self.act(Action::ControlJob, format!("job {id}"), change, |j| {
            format!("{what}: now {}", j.state)
        })
        .await
    }

    /// Changes a service's configs (a new version authored by the actor).
    pub async fn update_configs(
        &self,
        cluster: &str,
        service: &str,
        change: ConfigChange,
    ) -> Result<ConfigVersion> {
        let fut = self
            .mgr
            .update_configs(cluster, service, change, &self.actor.name);
        self.act(
            Action::ChangeConfig,
            format!("service {service} of cluster {cluster}"),
            fut,
            |v| format!("config version {}", v.version),
        )
        .await
    }

    /// Rolls a service's configs back to version `to`.
    pub async fn rollback_configs(
        &self,
        cluster: &str,
        service: &str,
        to: u32,
        message: Option<String>,
    ) -> Result<ConfigVersion> {
        let fut = self
            .mgr
            .rollback_configs(cluster, service, to, &self.actor.name, message);
        self.act(
            Action::ChangeConfig,
            format!("service {service} of cluster {cluster}"),
            fut,
            move |v| format!("rolled back to version {to} as version {}", v.version),
        )
        .await
    }

    /// Takes a snapshot of a cluster's config versions.
    pub async fn create_snapshot(
        &self,
        cluster: &str,
        name: &str,
        message: &str,
    ) -> Result<Snapshot> {
        let fut = self
            .mgr
            .create_snapshot(cluster, name, message, &self.actor.name);
        self.act(
            Action::ChangeConfig,
            format!("snapshot {name} of cluster {cluster}"),
            fut,
            |s| format!("took snapshot of {} service(s)", s.entries.len()),
        )
        .await
    }

    /// Restores a snapshot.
    pub async fn restore_snapshot(&self, cluster: &str, name: &str) -> Result<Vec<ConfigVersion>> {
        let fut = self.mgr.restore_snapshot(cluster, name, &self.actor.name);
        self.act(
            Action::ChangeConfig,
            format!("snapshot {name} of cluster {cluster}"),
            fut,
            |v| format!("restored: {} new version(s)", v.len()),
        )
        .await
    }

    /// Applies pending config changes to stale units.
    pub async fn restart_stale(&self, cluster: &str, req: &RestartStaleBody) -> Result<Vec<Job>> {
        let fut = self.mgr.restart_stale(cluster, req);
        self.act(
            Action::ChangeConfig,
            format!("cluster {cluster}"),
            fut,
            |jobs| {
                let ids: Vec<String> = jobs.iter().map(|j| j.id.to_string()).collect();
                format!("restart stale units: job(s) [{}]", ids.join(", "))
            },
        )
        .await
    }

    /// Places more units of a service's component on hosts.
    pub async fn add_units(
        &self,
        cluster: &str,
        service: &str,
        req: &AddUnitsBody,
    ) -> Result<Vec<Unit>> {
        let fut = self.mgr.add_units(cluster, service, req);
        self.act(
            Action::AddService,
            format!("service {service} of cluster {cluster}"),
            fut,
            |u| format!("added {} unit(s) of {}", u.len(), req.component),
        )
        .await
    }

    /// Removes a unit.
    pub async fn remove_unit(&self, cluster: &str, unit: UnitId) -> Result<()> {
        let fut = self.mgr.remove_unit(cluster, unit);
        self.act(
            Action::RemoveService,
            format!("unit {unit} of cluster {cluster}"),
            fut,
            |_| "removed".into(),
        )
        .await
    }

    /// Relates two service instances.
    pub async fn relate(&self, cluster: &str, req: Relate) -> Result<Relation> {
        let what = format!("{} with {}", req.requirer, req.provider);
        let fut = self.mgr.relate(cluster, req);
        self.act(
            Action::ChangeConfig,
            format!("cluster {cluster}"),
            fut,
            move |r| format!("related {what} (relation {})", r.id),
        )
        .await
    }

    /// Removes a relation.
    pub async fn unrelate(&self, cluster: &str, id: RelationId) -> Result<()> {
        let fut = self.mgr.unrelate(cluster, id);
        self.act(
            Action::ChangeConfig,
            format!("relation {id} of cluster {cluster}"),
            fut,
            |_| "removed".into(),
        )
        .await
    }

    /// Adds a target (a webhook or an Alertmanager) for a cluster's alerts.
    pub async fn add_alert_target(
        &self,
        cluster: &str,
        name: &str,
        kind: TargetKind,
        url: &str,
    ) -> Result<crate::view::AlertTargetView> {
        let fut = self.mgr.add_alert_target(cluster, name, kind, url);
        self.act(
            Action::ChangeConfig,
            format!("cluster {cluster}"),
            fut,
            |t| {
                format!(
                    "added alert target {} ({} {})",
                    t.name,
                    t.kind.as_str(),
                    t.url
                )
            },
        )
        .await
    }

    /// Starts a maintenance window on a host or a service (its alerts notify no one, and
    /// self-healing leaves it alone, until it ends).
    pub async fn start_maintenance(
        &self,
        cluster: &str,
        req: crate::request::StartMaintenance,
    ) -> Result<crate::view::MaintenanceView> {
        let fut = self.mgr.start_maintenance(cluster, req, &self.actor.name);
        self.act(
            Action::ChangeConfig,
            format!("cluster {cluster}"),
            fut,
            |w| {
                let what = w.host.as_ref().map_or_else(
                    || format!("service {}", w.service.clone().unwrap_or_default()),
                    |h| format!("host {h}"),
                );
                format!(
                    "maintenance {} of {what} until {}: {}",
                    w.id,
                    crate::duration::format_utc_ms(w.until),
                    w.reason
                )
            },
        )
        .await
    }

    /// Ends a maintenance window now.
    pub async fn end_maintenance(
        &self,
        cluster: &str,
        id: MaintenanceId,
    ) -> Result<crate::view::MaintenanceView> {
        let fut = self.mgr.end_maintenance(cluster, id);
        self.act(
            Action::ChangeConfig,
            format!("maintenance {id} of cluster {cluster}"),
            fut,
            |_| "ended".into(),
        )
        .await
    }

    /// Changes an alert definition for a cluster (a new version of its change).
    pub async fn change_alert(
        &self,
        cluster: &str,
        name: &str,
        change: super::ChangeAlert,
    ) -> Result<super::AlertDefinitionView> {
        let what = serde_json::to_string(&change).unwrap_or_default();
        let fut = self
            .mgr
            .change_alert(cluster, name, change, &self.actor.name);
        self.act(
            Action::ChangeConfig,
            format!("alert {name} of cluster {cluster}"),
            fut,
            |d| format!("version {}: {what}", d.version.unwrap_or_default()),
        )
        .await
    }

    /// Sets a service's self-healing policy.
    pub async fn set_healing(
        &self,
        cluster: &str,
        service: &str,
        req: crate::request::SetHealing,
    ) -> Result<crate::view::HealingView> {
        let fut = self.mgr.set_healing(cluster, service, req);
        self.act(
            Action::ChangeConfig,
            format!("service {service} of cluster {cluster}"),
            fut,
            |h| {
                if h.restart {
                    format!(
                        "self-healing on: restart after {}, at most {} an hour",
                        h.grace, h.max_per_hour
                    )
                } else {
                    "self-healing off".into()
                }
            },
        )
        .await
    }

    /// Removes a webhook target.
    pub async fn remove_alert_target(&self, cluster: &str, name: &str) -> Result<()> {
        let fut = self.mgr.remove_alert_target(cluster, name);
        self.act(
            Action::ChangeConfig,
            format!("alert target {name} of cluster {cluster}"),
            fut,
            |_| "removed".into(),
        )
        .await
    }
}
