//! Units as operators manage them: which are stale and why, the job that restarts them, and
//! adding or removing units of a service.

use super::Manager;
use super::configs::check_renders;
use crate::model::*;
use crate::render::Topology;
use crate::request::{AddUnitsBody, RestartStaleBody};
use crate::{Error, Result};

impl Manager {
    /// Every unit of a cluster with its staleness.
    pub async fn unit_statuses(&self, cluster: &str) -> Result<Vec<UnitStatus>> {
        let c = self.cluster(cluster).await?;
        let topo =
            Topology::load(self.inner.store.as_ref(), self.inner.stacks.as_ref(), &c).await?;
        Ok(topo
            .units()
            .iter()
            .map(|u| {
                let s = topo.staleness(u);
                let svc = topo.service(u.service);
                UnitStatus {
                    unit: u.clone(),
                    service: svc.map(|s| s.instance.name.clone()).unwrap_or_default(),
                    host: topo
                        .host(u.host)
                        .map(|h| h.name.clone())
                        .unwrap_or_default(),
                    desired_version: svc.map(|s| s.instance.config_version).unwrap_or_default(),
                    stale: s.is_stale(),
                    stale_reason: s.reason(),
                }
            })
            .collect())
    }

    /// Applies pending config changes: a `reconfigure` job (configure, then a rolling restart
    /// one unit at a time unless `options` say otherwise) on the stale units that are started,
    /// and a `configure` job on stale units that are not. Empty if nothing is stale.
    pub async fn restart_stale(&self, cluster: &str, req: &RestartStaleBody) -> Result<Vec<Job>> {
        let c = self.cluster(cluster).await?;
        let only = match &req.service {
            Some(name) => Some(self.service_def(&c, name).await?.0.id),
            None => None,
        };
        let topo =
            Topology::load(self.inner.store.as_ref(), self.inner.stacks.as_ref(), &c).await?;
        let (mut started, mut idle) = (Vec::new(), Vec::new());
        for u in topo.units() {
            if only.is_some_and(|s| s != u.service) || !topo.staleness(u).is_stale() {
                continue;
            }
            if u.state == UnitState::Started {
                started.push(u.id);
            } else {
                idle.push(u.id);
            }
        }
        let options = req.options.clone().unwrap_or(JobOptions {
            batch_size: Some(1),
            ..JobOptions::default()
        });
        crate::plan::check_options(&options)?;
        let mut jobs = Vec::new();
        for (units, command) in [(started, "reconfigure"), (idle, "configure")] {
            if units.is_empty() {
                continue;
            }
            jobs.push(
                self.submit(JobRequest {
                    cluster: c.name.clone(),
                    target: Target::Units(units),
                    command: command.into(),
                    options: options.clone(),
                })
                .await?,
            );
        }
        Ok(jobs)
    }

    /// Places more units of a service's component on hosts. The cardinality must still hold
    /// and the new units' files must render. Related services get `joined`.
    pub async fn add_units(
        &self,
        cluster: &str,
        service: &str,
        req: &AddUnitsBody,
    ) -> Result<Vec<Unit>> {
        let AddUnitsBody { component, hosts } = req;
        let c = self.cluster(cluster).await?;
        let (inst, def) = self.service_def(&c, service).await?;
        let comp = def.component(component)?;
        if hosts.is_empty() {
            return Err(Error::Invalid(
                "name at least one host to place units on".into(),
            ));
        }
        let all = self.hosts_by_name(c.id).await?;
        let mut topo =
            Topology::load(self.inner.store.as_ref(), self.inner.stacks.as_ref(), &c).await?;
        let existing = topo
            .units()
            .iter()
            .filter(|u| u.service == inst.id && &u.component == component)
            .count();
        let mut new = Vec::new();
        for (i, h) in hosts.iter().enumerate() {
            let host = all
                .get(h)
                .ok_or_else(|| Error::not_found("host", format!("{h} (in cluster {})", c.name)))?;
            new.push(Unit {
                id: UnitId(i64::MAX - i as i64),
                service: inst.id,
                component: component.to_string(),
                host: host.id,
                state: UnitState::New,
                health: None,
                applied_version: None,
                applied_hash: None,
            });
        }
        if !comp.cardinality.allows(existing + hosts.len()) {
            return Err(Error::Cardinality {
                service: def.name.clone(),
                component: component.to_string(),
                expected: comp.cardinality.to_string(),
                got: existing + hosts.len(),
            });
        }
        topo.add_units(new.clone());
        check_renders(&topo, &def.name, new.iter())?;
        let placed = self
            .inner
            .store
            .add_units(
                inst.id,
                new.iter()
                    .map(|u| NewUnit {
                        component: u.component.clone(),
                        host: u.host,
                    })
                    .collect(),
            )
            .await?;
        let detail = format!(
            "unit(s) of {service}/{component} added on {}",
            hosts.join(", ")
        );
        let events = self
            .relation_events_for(&c, inst.id, RelationEventKind::Joined, &detail)
            .await?;
        self.reconcile(&c, events, true).await?;
        Ok(placed)
    }

    /// Removes a unit (stop it first). Related services get `broken`. Refused if it would
    /// leave fewer units of its component than the component's cardinality allows.
    pub async fn remove_unit(&self, cluster: &str, unit: UnitId) -> Result<()> {
        self.remove_unit_counted(cluster, unit, true).await
    }

    /// [`Self::remove_unit`], with the cardinality checked only if `count`: an apply of a
    /// cluster spec removes units whose final placement the spec check has already counted
    /// (a unit moved to another host is gone for a moment before its replacement is added).
    pub(super) async fn remove_unit_counted(
        &self,
        cluster: &str,
        unit: UnitId,
        count: bool,
    ) -> Result<()> {
        let c = self.cluster(cluster).await?;
        let units = self.inner.store.list_units(c.id).await?;
        let u = units
            .iter()
            .find(|u| u.id == unit)
            .ok_or_else(|| Error::not_found("unit", format!("{unit} (in cluster {cluster})")))?;
        let services = self.inner.store.list_services(c.id).await?;
        let inst = services
            .iter()
            .find(|s| s.id == u.service)
            .ok_or_else(|| Error::not_found("service", u.service))?;
        let (_, def) = self.service_def(&c, &inst.name).await?;
        let comp = def.component(&u.component)?;
        let left = units
            .iter()
            .filter(|x| x.service == u.service && x.component == u.component)
            .count()
            - 1;
        if count && !comp.cardinality.allows(left) {
            return Err(Error::Conflict(format!(
                "removing unit {unit} would leave {left} unit(s) of {}/{}, which needs {}",
                inst.name, u.component, comp.cardinality
            )));
        }
        self.inner.store.remove_unit(unit).await?;
        let detail = format!("unit {unit} of {}/{} removed", inst.name, u.component);
        let events = self
            .relation_events_for(&c, inst.id, RelationEventKind::Broken, &detail)
            .await?;
        self.reconcile(&c, events, true).await?;
        Ok(())
    }
}
