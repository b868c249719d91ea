//! Cluster specs on a running cluster: what a spec would change ([`Acting::plan_spec`]) and
//! making it so ([`Acting::apply_spec`]), every change authorised and audited as its own call
//! would be.

use super::configs::ConfigChange;
use super::relations::Relate;
use super::{Acting, Manager};
use crate::model::{Cluster, Job, JobOptions, JobRequest, ServiceConfigs, Target};
use crate::placement::Placement;
use crate::request::{AddUnitsBody, RestartStaleBody, SpecBody};
use crate::spec::{Checked, Current, CurrentService, Exported, Plan, PlannedRelation};
use crate::{Error, Result};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// What an apply did: the plan it carried out and the jobs it submitted.
#[derive(Debug, Clone)]
pub struct SpecApplied {
    /// The plan, as it was made before anything changed.
    pub plan: Plan,
    /// The jobs submitted, in order: with prune, the stop of the units that went (already
    /// finished); one deploy of every new unit; then one reconfigure of the stale units of
    /// each service whose configs changed.
    pub jobs: Vec<Job>,
}

impl Acting {
    /// Parses `body.spec` (a cluster spec), puts its secrets in place, checks it against the
    /// stacks and cluster `cluster` (which need not exist yet), and returns what applying it
    /// would change. Changes nothing.
    pub async fn plan_spec(&self, cluster: &str, body: &SpecBody) -> Result<Plan> {
        let (checked, current, exists) = self.check_spec(cluster, body).await?;
        let mut plan = checked.plan(&current, body.prune);
        plan.create_cluster = !exists;
        Ok(plan)
    }

    /// Applies `body.spec` to `cluster`: creates the cluster if needed, adds the hosts, services
    /// and units it names, makes one config version per service whose values differ, adds
    /// its relations, and submits the jobs (a deploy of every new unit, a rolling reconfigure
    /// of each changed service's stale units). Nothing changes if the spec has a problem. With
    /// nothing to do, no job is submitted.
    ///
    /// With `body.prune`, what the cluster has and the spec does not name goes first: its started
    /// units are stopped by one job, which this call waits for (if it does not succeed,
    /// nothing is removed), then its relations, units and services are removed. Hosts are
    /// never removed. Without `prune` the plan lists them under `kept`.
    pub async fn apply_spec(&self, cluster: &str, body: &SpecBody) -> Result<SpecApplied> {
        let prune = body.prune;
        self.act(
            crate::auth::Action::ApplySpec,
            format!("cluster {cluster}"),
            self.apply_checked(cluster, body),
            |a| {
                let p = &a.plan;
                let mut what = format!(
                    "applied a spec: {} service(s), {} unit(s), {} property change(s), {} relation(s) added",
                    p.services_to_add.len(),
                    p.units_to_add.len(),
                    p.configs.len(),
                    p.relations_to_add.len(),
                );
                if prune {
                    what.push_str(&format!(
                        "; {} service(s), {} unit(s), {} relation(s) removed",
                        p.services_to_remove.len(),
                        p.units_to_remove.len(),
                        p.relations_to_remove.len()
                    ));
                }
                format!("{what}; {} job(s)", a.jobs.len())
            },
        )
        .await
    }

    async fn apply_checked(&self, cluster: &str, body: &SpecBody) -> Result<SpecApplied> {
        let (checked, current, exists) = self.check_spec(cluster, body).await?;
        let mut plan = checked.plan(&current, body.prune);
        plan.create_cluster = !exists;
        if !plan.problems.is_empty() {
            return Err(Error::Conflict(plan.problems.join("; ")));
        }
        let mut jobs = Vec::new();
        if exists && body.prune {
            jobs.extend(self.prune(cluster, &plan).await?);
        }
        let spec = &checked.spec;
        if !exists {
            self.create_cluster(cluster).await?;
        }
        for h in &plan.hosts_to_add {
            self.add_host(cluster, &h.name, &h.address).await?;
        }
        for name in &plan.services_to_add {
            let s = &spec.services[name];
            // The hosts the plan placed (counts chosen by load), as named placements.
            let mut placement: BTreeMap<String, Placement> = BTreeMap::new();
            for u in plan.units_to_add.iter().filter(|u| &u.service == name) {
                if let Placement::Hosts(h) = placement
                    .entry(u.component.clone())
                    .or_insert_with(|| Placement::Hosts(Vec::new()))
                {
                    h.push(u.host.clone());
                }
            }
            self.add_service(
                cluster,
                crate::manager::AddService {
                    name: name.clone(),
                    stack: s.stack.clone(),
                    version: s.version.clone(),
                    service: s.service.clone(),
                    placement,
                    configs: s.configs.clone(),
                    host_overrides: s.host_overrides.clone(),
                },
            )
            .await?;
        }
        // New units of existing services, by service and component.
        let mut more: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
        for u in &plan.units_to_add {
            if !plan.services_to_add.contains(&u.service) {
                more.entry((&u.service, &u.component))
                    .or_default()
                    .push(u.host.clone());
            }
        }
        let mut new_units = Vec::new();
        for ((service, component), hosts) in more {
            let body = AddUnitsBody {
                component: component.to_string(),
                hosts,
            };
            new_units.extend(self.add_units(cluster, service, &body).await?);
        }
        let changed: BTreeSet<&String> = plan.configs.iter().map(|c| &c.service).collect();
        for name in &changed {
            let cur = current
                .services
                .iter()
                .find(|c| &c.name == *name)
                .expect("a changed service exists");
            let s = &spec.services[*name];
            let mut hosts = BTreeMap::new();
            let all: BTreeSet<&String> = cur
                .host_overrides
                .keys()
                .chain(s.host_overrides.keys())
                .collect();
            let empty = ServiceConfigs::new();
            for h in all {
                let patch = patch(
                    cur.host_overrides.get(h).unwrap_or(&empty),
                    s.host_overrides.get(h).unwrap_or(&empty),
                );
                if !patch.is_empty() {
                    hosts.insert(h.clone(), patch);
                }
            }
            let change = ConfigChange {
                configs: patch(&cur.configs, &s.configs),
                hosts,
                message: "applied from a cluster spec".into(),
            };
            self.update_configs(cluster, name, change).await?;
        }
        for p in &plan.policies {
            let to = &p.to;
            let req = crate::request::SetHealing {
                restart: to["restart"].as_bool().unwrap_or(false),
                grace: to["grace"].as_str().map(str::to_string),
                max_per_hour: to["max_per_hour"]
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok()),
            };
            self.set_healing(cluster, &p.service, req).await?;
        }
        for r in &plan.relations_to_add {
            self.relate(
                cluster,
                Relate {
                    requirer: format!("{}:{}", r.requirer, r.requirer_endpoint),
                    provider: format!("{}:{}", r.provider, r.provider_endpoint),
                    auto_reconfigure: true,
                },
            )
            .await?;
        }
        // The jobs: every new unit in one deploy (the stacks' order rules order it), then the
        // changed services' stale units.
        let mut deploy: Vec<_> = new_units.iter().map(|u| u.id).collect();
        if !plan.services_to_add.is_empty() {
            let id = self.mgr.cluster(cluster).await?.id;
            let store = self.mgr.inner.store.as_ref();
            let (units, services) = (store.list_units(id).await?, store.list_services(id).await?);
            for u in units {
                if services
                    .iter()
                    .any(|s| s.id == u.service && plan.services_to_add.contains(&s.name))
                {
                    deploy.push(u.id);
                }
            }
        }
        if !deploy.is_empty() {
            jobs.push(
                self.submit(JobRequest {
                    cluster: cluster.to_string(),
                    target: Target::Units(deploy),
                    command: "deploy".into(),
                    options: JobOptions::default(),
                })
                .await?,
            );
        }
        for name in changed {
            let body = RestartStaleBody {
                service: Some(name.clone()),
                options: spec.services[name.as_str()]
                    .policy
                    .batch_size
                    .map(|n| JobOptions {
                        batch_size: Some(n),
                        ..JobOptions::default()
                    }),
            };
            jobs.extend(self.restart_stale(cluster, &body).await?);
        }
        Ok(SpecApplied { plan, jobs })
    }

    /// Removes what `plan` removes: stops the started units that go (one job, waited for),
    /// then removes the relations, units and services. Returns the stop job, if one ran.
    async fn prune(&self, cluster: &str, plan: &Plan) -> Result<Option<Job>> {
        if plan.units_to_remove.is_empty() && plan.relations_to_remove.is_empty() {
            return Ok(None);
        }
        let c = self.mgr.cluster(cluster).await?;
        let store = self.mgr.inner.store.as_ref();
        let (hosts, services) = (
            store.list_hosts(c.id).await?,
            store.list_services(c.id).await?,
        );
        let units = store.list_units(c.id).await?;
        let service_name = |id| {
            services
                .iter()
                .find(|s| s.id == id)
                .map(|s| s.name.as_str())
        };
        let host_name = |id| hosts.iter().find(|h| h.id == id).map(|h| h.name.as_str());
        let going: Vec<&crate::model::Unit> = units
            .iter()
            .filter(|u| {
                plan.units_to_remove.iter().any(|p| {
                    Some(p.service.as_str()) == service_name(u.service)
                        && p.component == u.component
                        && Some(p.host.as_str()) == host_name(u.host)
                })
            })
            .collect();
        let started: Vec<_> = going
            .iter()
            .filter(|u| u.state == crate::model::UnitState::Started)
            .map(|u| u.id)
            .collect();
        let mut stop = None;
        if !started.is_empty() {
            let job = self
                .submit(JobRequest {
                    cluster: cluster.to_string(),
                    target: Target::Units(started),
                    command: "stop".into(),
                    options: JobOptions {
                        reason: Some("prune: units the cluster spec no longer places".into()),
                        ..JobOptions::default()
                    },
                })
                .await?;
            let done = self.mgr.wait(job.id).await?;
            if done.state != crate::model::JobState::Succeeded {
                return Err(Error::Conflict(format!(
                    "job {} stopping the units the spec no longer places ended {:?}, so nothing                      was removed: see `bigmgr job show {}`, then apply again",
                    done.id, done.state, done.id
                )));
            }
            stop = Some(done);
        }
        let relations = store.list_relations(c.id).await?;
        for r in &plan.relations_to_remove {
            let found = relations.iter().find(|x| {
                service_name(x.requirer) == Some(r.requirer.as_str())
                    && x.requirer_endpoint == r.requirer_endpoint
                    && service_name(x.provider) == Some(r.provider.as_str())
                    && x.provider_endpoint == r.provider_endpoint
            });
            if let Some(x) = found {
                self.unrelate(cluster, x.id).await?;
            }
        }
        let gone: BTreeSet<&str> = plan.services_to_remove.iter().map(String::as_str).collect();
        for u in going {
            if service_name(u.service).is_some_and(|s| !gone.contains(s)) {
                // The spec check counted the final placement; a moved unit's replacement is
                // added next.
                let fut = self.mgr.remove_unit_counted(cluster, u.id, false);
                self.act(
                    crate::auth::Action::RemoveService,
                    format!("unit {} of cluster {cluster}", u.id),
                    fut,
                    |_| "removed (prune)".into(),
                )
                .await?;
            }
        }
        for name in &plan.services_to_remove {
            self.remove_service(cluster, name).await?;
        }
        Ok(stop)
    }

    async fn cluster_exists(&self, cluster: &str) -> Result<bool> {
        match self.mgr.cluster(cluster).await {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The spec parsed and checked against cluster `cluster` as it stands (its hosts, or none
    /// if it does not exist yet), with the cluster as the planner sees it.
    async fn check_spec(&self, cluster: &str, body: &SpecBody) -> Result<(Checked, Current, bool)> {
        let mut parsed = crate::spec::parse(&body.spec).map_err(Error::Spec)?;
        // A secret without its value is a problem, but the rest is still checked, so that
        // every problem is listed at once (the reference's own type problem is not repeated).
        let unresolved = parsed.resolve(&body.secrets).err().unwrap_or_default();
        if parsed.spec.cluster != cluster {
            return Err(Error::Spec(vec![crate::spec::Problem {
                line: 0,
                path: "cluster".into(),
                message: format!(
                    "the spec is of cluster '{}', not '{cluster}'",
                    parsed.spec.cluster
                ),
            }]));
        }
        let exists = self.cluster_exists(cluster).await?;
        let current = if exists {
            let c = self.mgr.cluster(cluster).await?;
            self.mgr.current(&c).await?.0
        } else {
            Current::default()
        };
        let checked = parsed
            .check(self.mgr.inner.stacks.as_ref(), &current.hosts)
            .await;
        let mut problems = unresolved.clone();
        if let Err(found) = &checked {
            problems.extend(
                found
                    .iter()
                    .filter(|p| !unresolved.iter().any(|u| u.path == p.path))
                    .cloned(),
            );
        }
        if !problems.is_empty() {
            problems.sort_by_key(|p| p.line);
            return Err(Error::Spec(problems));
        }
        let checked = checked.map_err(Error::Spec)?;
        Ok((checked, current, exists))
    }
}

impl Manager {
    /// Cluster `c` as a spec's planner sees it, with its hosts' addresses by name.
    async fn current(&self, c: &Cluster) -> Result<(Current, BTreeMap<String, String>)> {
        let store = self.inner.store.as_ref();
        let hosts = store.list_hosts(c.id).await?;
        let host_name = |id| {
            hosts
                .iter()
                .find(|h| h.id == id)
                .map(|h| h.name.clone())
                .unwrap_or_default()
        };
        let units = store.list_units(c.id).await?;
        let services = store.list_services(c.id).await?;
        let service_name = |id| {
            services
                .iter()
                .find(|s| s.id == id)
                .map(|s| s.name.clone())
                .unwrap_or_default()
        };
        let mut current_services = Vec::new();
        // The built-in agent service of hosts added over SSH is no part of any spec.
        for s in services
            .iter()
            .filter(|s| !crate::bootstrap::builtin::is_builtin(&s.stack))
        {
            current_services.push(CurrentService {
                name: s.name.clone(),
                stack: s.stack.clone(),
                stack_version: s.stack_version.clone(),
                service: s.service.clone(),
                configs: s.configs.clone(),
                host_overrides: s.host_overrides.clone(),
                units: units
                    .iter()
                    .filter(|u| u.service == s.id)
                    .map(|u| (u.component.clone(), host_name(u.host)))
                    .collect(),
                healing: store.healing_policy(s.id).await?,
            });
        }
        let current = Current {
            hosts: hosts.iter().map(|h| h.name.clone()).collect(),
            services: current_services,
            relations: store
                .list_relations(c.id)
                .await?
                .into_iter()
                .map(|r| PlannedRelation {
                    requirer: service_name(r.requirer),
                    requirer_endpoint: r.requirer_endpoint,
                    provider: service_name(r.provider),
                    provider_endpoint: r.provider_endpoint,
                })
                .collect(),
            candidates: self.candidates(c).await?,
        };
        let addresses = hosts
            .iter()
            .map(|h| (h.name.clone(), h.address.clone()))
            .collect();
        Ok((current, addresses))
    }

    /// Cluster `cluster` written as a spec: its hosts, services with their stack versions,
    /// placement and config layers, and relations. Secret values are written as environment
    /// references, listed in [`Exported::references`]. Applying it to an empty server
    /// rebuilds the same cluster.
    pub async fn export_spec(&self, cluster: &str) -> Result<Exported> {
        let c = self.cluster(cluster).await?;
        let (current, addresses) = self.current(&c).await?;
        let mut defs = BTreeMap::new();
        for s in &current.services {
            let (_, def) = self.service_def(&c, &s.name).await?;
            defs.insert(s.name.clone(), def);
        }
        Ok(crate::spec::export(cluster, &addresses, &current, &defs))
    }
}

/// The merge patch that turns layer `a` into layer `b`: changed and new values, and `null`
/// for what `b` no longer has.
fn patch(a: &ServiceConfigs, b: &ServiceConfigs) -> BTreeMap<String, BTreeMap<String, Value>> {
    let mut out: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    let types: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let empty = BTreeMap::new();
    for ty in types {
        let (pa, pb) = (a.get(ty).unwrap_or(&empty), b.get(ty).unwrap_or(&empty));
        for p in pa.keys().chain(pb.keys()).collect::<BTreeSet<_>>() {
            match (pa.get(p), pb.get(p)) {
                (x, y) if x == y => {}
                (_, Some(v)) => {
                    out.entry(ty.clone())
                        .or_default()
                        .insert(p.clone(), v.clone());
                }
                (Some(_), None) => {
                    out.entry(ty.clone())
                        .or_default()
                        .insert(p.clone(), Value::Null);
                }
                (None, None) => {}
            }
        }
    }
    out
}
