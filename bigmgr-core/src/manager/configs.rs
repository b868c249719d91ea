//! The manager's config and relation operations: versioned config changes (list, get, diff,
//! rollback, snapshots), stale units and the job that restarts them, relations (relate,
//! unrelate, events) and adding or removing units — with the automatic reconfigure that keeps
//! the other side of a relation current.

use super::{Manager, check_configs};
use crate::model::*;
use crate::render::{REDACTED, Staleness, Topology, redact, redact_hosts};
use crate::stack::{Endpoint, ServiceDef};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// A change to a service's configs, as a JSON merge patch (RFC 7396) over its current version:
/// a value sets a property, `null` removes it (back to the layer below).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConfigChange {
    /// Service layer: config type → property → value or `null`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub configs: BTreeMap<String, BTreeMap<String, Value>>,
    /// Host layer: host name → config type → property → value or `null`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub hosts: BTreeMap<String, BTreeMap<String, BTreeMap<String, Value>>>,
    /// Why, for the version's history.
    #[serde(default)]
    pub message: String,
}

/// A request to relate two service instances: `service` or `service:endpoint` on each side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Relate {
    /// The requiring side (`prom` or `prom:metrics`).
    pub requirer: String,
    /// The providing side (`nodes` or `nodes:metrics`).
    pub provider: String,
    /// Reconfigure the requirer's stale units automatically when the provider's units change
    /// (and the other way round); default on.
    #[serde(default = "yes")]
    pub auto_reconfigure: bool,
}

fn yes() -> bool {
    true
}

/// Applies a merge patch to one layer; empty config types disappear.
fn merge(
    base: &ServiceConfigs,
    patch: &BTreeMap<String, BTreeMap<String, Value>>,
) -> ServiceConfigs {
    let mut out = base.clone();
    for (ty, props) in patch {
        let entry = out.entry(ty.clone()).or_default();
        for (k, v) in props {
            if v.is_null() {
                entry.remove(k);
            } else {
                entry.insert(k.clone(), v.clone());
            }
        }
        if entry.is_empty() {
            out.remove(ty);
        }
    }
    out
}

/// Checks a host layer: every host is one of the cluster's, every value fits its property.
pub(super) fn check_host_overrides(
    def: &ServiceDef,
    overrides: &HostOverrides,
    hosts: &HashMap<String, Host>,
) -> Result<()> {
    for (host, configs) in overrides {
        if !hosts.contains_key(host) {
            return Err(Error::Invalid(format!(
                "host override for '{host}': no such host in this cluster; its hosts are: {}",
                hosts
                    .keys()
                    .cloned()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        check_configs(def, configs)
            .map_err(|e| Error::Invalid(format!("host override for '{host}': {}", strip(e))))?;
    }
    Ok(())
}

/// An error's message without the `invalid request: ` prefix.
fn strip(e: Error) -> String {
    match e {
        Error::Invalid(m) => m,
        other => other.to_string(),
    }
}

/// Renders every one of `units` (of service `name`): a missing variable is an
/// [`Error::Template`] naming it, before anything is written.
pub(super) fn check_renders<'a>(
    topo: &Topology,
    name: &str,
    units: impl Iterator<Item = &'a Unit>,
) -> Result<()> {
    for u in units {
        topo.render(u).map_err(|message| Error::Template {
            name: name.to_string(),
            message,
        })?;
    }
    Ok(())
}

/// A required property with no value in any layer, for any host of `units`.
fn check_required(
    def: &ServiceDef,
    configs: &ServiceConfigs,
    overrides: &HostOverrides,
    hosts: &[&str],
) -> Result<()> {
    for ct in &def.configs {
        for p in ct
            .properties
            .iter()
            .filter(|p| p.required && p.default.is_none())
        {
            let in_service = configs
                .get(&ct.name)
                .is_some_and(|c| c.contains_key(&p.name));
            for h in hosts {
                let on_host = overrides
                    .get(*h)
                    .and_then(|o| o.get(&ct.name))
                    .is_some_and(|c| c.contains_key(&p.name));
                if !in_service && !on_host {
                    return Err(Error::Invalid(format!(
                        "config {}: property {} is required and has no default; set it \
                         (for every host, or for host {h})",
                        ct.name, p.name
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The differences between two layers, secrets redacted.
fn diff_layer(
    def: &ServiceDef,
    host: Option<&str>,
    a: &ServiceConfigs,
    b: &ServiceConfigs,
    out: &mut Vec<ConfigDiff>,
) {
    let types: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for ty in types {
        let empty = BTreeMap::new();
        let pa = a.get(ty).unwrap_or(&empty);
        let pb = b.get(ty).unwrap_or(&empty);
        let props: BTreeSet<&String> = pa.keys().chain(pb.keys()).collect();
        let secret = |name: &str| {
            def.configs
                .iter()
                .find(|c| &c.name == ty)
                .and_then(|c| c.properties.iter().find(|p| p.name == name))
                .is_some_and(|p| p.secret)
        };
        for p in props {
            let (va, vb) = (pa.get(p), pb.get(p));
            if va == vb {
                continue;
            }
            let show = |v: Option<&Value>| {
                v.map(|v| {
                    if secret(p) {
                        Value::String(REDACTED.into())
                    } else {
                        v.clone()
                    }
                })
            };
            out.push(ConfigDiff {
                config_type: ty.clone(),
                host: host.map(str::to_string),
                property: p.clone(),
                from: show(va),
                to: show(vb),
            });
        }
    }
}

impl Manager {
    /// A service instance with its definition.
    async fn service_def(
        &self,
        cluster: &Cluster,
        name: &str,
    ) -> Result<(ServiceInstance, Arc<ServiceDef>)> {
        let inst = self
            .inner
            .store
            .service_by_name(cluster.id, name)
            .await?
            .ok_or_else(|| {
                Error::not_found("service", format!("{name} (in cluster {})", cluster.name))
            })?;
        let def = self
            .inner
            .stacks
            .stack(&inst.stack, Some(&inst.stack_version))
            .await?
            .service(&inst.service)?
            .clone();
        Ok((inst, def))
    }

    fn redacted(def: &ServiceDef, mut v: ConfigVersion) -> ConfigVersion {
        v.configs = redact(def, &v.configs);
        v.host_overrides = redact_hosts(def, &v.host_overrides);
        v
    }

    /// Checks and stores new layers for a service as its next version, then reconfigures what
    /// relations make stale elsewhere.
    async fn new_version(
        &self,
        cluster: &Cluster,
        inst: &ServiceInstance,
        def: &Arc<ServiceDef>,
        new: NewConfigVersion,
    ) -> Result<ConfigVersion> {
        let NewConfigVersion {
            author,
            message,
            configs,
            host_overrides,
        } = new;
        let hosts: HashMap<String, Host> = self
            .inner
            .store
            .list_hosts(cluster.id)
            .await?
            .into_iter()
            .map(|h| (h.name.clone(), h))
            .collect();
        check_configs(def, &configs)?;
        check_host_overrides(def, &host_overrides, &hosts)?;
        let mut topo = Topology::load(
            self.inner.store.as_ref(),
            self.inner.stacks.as_ref(),
            cluster,
        )
        .await?;
        let unit_hosts: Vec<&str> = topo
            .units()
            .iter()
            .filter(|u| u.service == inst.id)
            .filter_map(|u| topo.host(u.host).map(|h| h.name.as_str()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        check_required(def, &configs, &host_overrides, &unit_hosts)?;
        topo.set_configs(inst.id, configs.clone(), host_overrides.clone());
        let units: Vec<Unit> = topo
            .units()
            .iter()
            .filter(|u| u.service == inst.id)
            .cloned()
            .collect();
        check_renders(&topo, &def.name, units.iter())?;
        let version = self
            .inner
            .store
            .add_config_version(
                inst.id,
                inst.config_version,
                &NewConfigVersion {
                    author,
                    message,
                    configs,
                    host_overrides,
                },
            )
            .await?;
        // Values a provider exports may have changed: its related services re-render.
        let events = self
            .relation_events_for(
                cluster,
                inst.id,
                RelationEventKind::Changed,
                "configs changed",
            )
            .await?;
        self.reconcile(cluster, events, true).await?;
        Ok(Self::redacted(def, version))
    }

    /// Changes a service's configs (a merge patch over the current version) as a new
    /// version. Values are type-checked, host names checked, required properties must have a
    /// value and every unit's files must render — else nothing is written. Units become
    /// stale until a `reconfigure` (see [`Manager::restart_stale`]).
    pub async fn update_configs(
        &self,
        cluster: &str,
        service: &str,
        change: ConfigChange,
        author: &str,
    ) -> Result<ConfigVersion> {
        let c = self.cluster(cluster).await?;
        let (inst, def) = self.service_def(&c, service).await?;
        let configs = merge(&inst.configs, &change.configs);
        let mut host_overrides = inst.host_overrides.clone();
        for (host, patch) in &change.hosts {
            let merged = merge(host_overrides.get(host).unwrap_or(&BTreeMap::new()), patch);
            if merged.is_empty() {
                host_overrides.remove(host);
            } else {
                host_overrides.insert(host.clone(), merged);
            }
        }
        if configs == inst.configs && host_overrides == inst.host_overrides {
            return Err(Error::Invalid(format!(
                "the change leaves the configs of '{service}' as they are (version {}); \
                 nothing to do",
                inst.config_version
            )));
        }
        let message = if change.message.trim().is_empty() {
            "configs changed".to_string()
        } else {
            change.message
        };
        let new = NewConfigVersion {
            author: author.to_string(),
            message,
            configs,
            host_overrides,
        };
        self.new_version(&c, &inst, &def, new).await
    }

    /// Every config version of a service, oldest first; secrets read `********`.
    pub async fn config_versions(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Vec<ConfigVersion>> {
        let c = self.cluster(cluster).await?;
        let (inst, def) = self.service_def(&c, service).await?;
        Ok(self
            .inner
            .store
            .list_config_versions(inst.id)
            .await?
            .into_iter()
            .map(|v| Self::redacted(&def, v))
            .collect())
    }

    async fn version_of(&self, inst: &ServiceInstance, version: u32) -> Result<ConfigVersion> {
        self.inner
            .store
            .config_version(inst.id, version)
            .await?
            .ok_or_else(|| {
                Error::not_found(
                    "config version",
                    format!(
                        "{version} of service {} (it has 1–{})",
                        inst.name, inst.config_version
                    ),
                )
            })
    }

    /// One config version; secrets read `********`.
    pub async fn config_version(
        &self,
        cluster: &str,
        service: &str,
        version: u32,
    ) -> Result<ConfigVersion> {
        let c = self.cluster(cluster).await?;
        let (inst, def) = self.service_def(&c, service).await?;
        Ok(Self::redacted(&def, self.version_of(&inst, version).await?))
    }

    /// What differs from version `from` to version `to`, property by property.
    pub async fn diff_configs(
        &self,
        cluster: &str,
        service: &str,
        from: u32,
        to: u32,
    ) -> Result<Vec<ConfigDiff>> {
        let c = self.cluster(cluster).await?;
        let (inst, def) = self.service_def(&c, service).await?;
        let a = self.version_of(&inst, from).await?;
        let b = self.version_of(&inst, to).await?;
        let mut out = Vec::new();
        diff_layer(&def, None, &a.configs, &b.configs, &mut out);
        let hosts: BTreeSet<&String> = a
            .host_overrides
            .keys()
            .chain(b.host_overrides.keys())
            .collect();
        let empty = ServiceConfigs::new();
        for h in hosts {
            diff_layer(
                &def,
                Some(h),
                a.host_overrides.get(h).unwrap_or(&empty),
                b.host_overrides.get(h).unwrap_or(&empty),
                &mut out,
            );
        }
        Ok(out)
    }

    /// Rolls a service's configs back: a new version equal to version `to`, applied like any
    /// change (its units turn stale until reconfigured).
    pub async fn rollback_configs(
        &self,
        cluster: &str,
        service: &str,
        to: u32,
        author: &str,
        message: Option<String>,
    ) -> Result<ConfigVersion> {
        let c = self.cluster(cluster).await?;
        let (inst, def) = self.service_def(&c, service).await?;
        let old = self.version_of(&inst, to).await?;
        let message = message
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| format!("rollback to version {to}"));
        let new = NewConfigVersion {
            author: author.to_string(),
            message,
            configs: old.configs,
            host_overrides: old.host_overrides,
        };
        self.new_version(&c, &inst, &def, new).await
    }

    /// Names the current config version of every service of a cluster.
    pub async fn create_snapshot(
        &self,
        cluster: &str,
        name: &str,
        message: &str,
        author: &str,
    ) -> Result<Snapshot> {
        crate::name::check_name("snapshot", name)?;
        let c = self.cluster(cluster).await?;
        let entries = self
            .inner
            .store
            .list_services(c.id)
            .await?
            .into_iter()
            .map(|s| SnapshotEntry {
                service: s.id,
                name: s.name,
                version: s.config_version,
            })
            .collect();
        self.inner
            .store
            .add_snapshot(&NewSnapshot {
                cluster: c.id,
                name: name.to_string(),
                author: author.to_string(),
                message: message.to_string(),
                entries,
            })
            .await
    }

    /// A cluster's snapshots, oldest first.
    pub async fn snapshots(&self, cluster: &str) -> Result<Vec<Snapshot>> {
        let c = self.cluster(cluster).await?;
        self.inner.store.list_snapshots(c.id).await
    }

    /// One snapshot.
    pub async fn snapshot(&self, cluster: &str, name: &str) -> Result<Snapshot> {
        let c = self.cluster(cluster).await?;
        self.inner
            .store
            .snapshot(c.id, name)
            .await?
            .ok_or_else(|| Error::not_found("snapshot", format!("{name} (in cluster {cluster})")))
    }

    /// Rolls every service of a snapshot that still exists and has changed since back to its
    /// version there; returns the new versions.
    pub async fn restore_snapshot(
        &self,
        cluster: &str,
        name: &str,
        author: &str,
    ) -> Result<Vec<ConfigVersion>> {
        let snap = self.snapshot(cluster, name).await?;
        let c = self.cluster(cluster).await?;
        let current: HashMap<ServiceId, ServiceInstance> = self
            .inner
            .store
            .list_services(c.id)
            .await?
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        let mut out = Vec::new();
        for e in &snap.entries {
            let Some(inst) = current.get(&e.service) else {
                continue;
            };
            let old = self.version_of(inst, e.version).await?;
            if old.configs == inst.configs && old.host_overrides == inst.host_overrides {
                continue;
            }
            let (_, def) = self.service_def(&c, &inst.name).await?;
            out.push(
                self.new_version(
                    &c,
                    inst,
                    &def,
                    NewConfigVersion {
                        author: author.to_string(),
                        message: format!("restore snapshot {name} (version {})", e.version),
                        configs: old.configs,
                        host_overrides: old.host_overrides,
                    },
                )
                .await?,
            );
        }
        Ok(out)
    }

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
    pub async fn restart_stale(
        &self,
        cluster: &str,
        service: Option<&str>,
        options: Option<JobOptions>,
    ) -> Result<Vec<Job>> {
        let c = self.cluster(cluster).await?;
        let only = match service {
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
        let options = options.unwrap_or(JobOptions {
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

    /// Relates a requirer endpoint to a provider endpoint with the same interface. With no
    /// endpoint named, the one pair of endpoints sharing an interface is taken. The sides may
    /// be given either way round (as `juju relate` takes them): if the second service is the
    /// one that requires, they are swapped. Mismatched interfaces are refused, naming both.
    pub async fn relate(&self, cluster: &str, req: Relate) -> Result<Relation> {
        let c = self.cluster(cluster).await?;
        let split = |s: &str| match s.split_once(':') {
            Some((a, b)) => (a.to_string(), Some(b.to_string())),
            None => (s.to_string(), None),
        };
        let (aname, aep) = split(&req.requirer);
        let (bname, bep) = split(&req.provider);
        if aname == bname {
            return Err(Error::Invalid(format!(
                "'{aname}' can't be related to itself; units of one service see each other \
                 through its [[peers]] endpoints"
            )));
        }
        let (ainst, adef) = self.service_def(&c, &aname).await?;
        let (binst, bdef) = self.service_def(&c, &bname).await?;
        let a = (aname.as_str(), adef.as_ref(), aep.as_deref());
        let b = (bname.as_str(), bdef.as_ref(), bep.as_deref());
        let (rinst, pinst, r, p) = match match_endpoints(a, b) {
            Ok((r, p)) => (ainst, binst, r, p),
            Err(forward) => match match_endpoints(b, a) {
                Ok((r, p)) => (binst, ainst, r, p),
                Err(_) => return Err(forward),
            },
        };
        let (rname, pname) = (rinst.name.clone(), pinst.name.clone());
        let rel = self
            .inner
            .store
            .add_relation(&NewRelation {
                cluster: c.id,
                requirer: rinst.id,
                requirer_endpoint: r.name.clone(),
                provider: pinst.id,
                provider_endpoint: p.name.clone(),
                interface: r.interface.clone(),
                auto_reconfigure: req.auto_reconfigure,
            })
            .await?;
        let events = vec![
            NewRelationEvent {
                relation: rel.id,
                kind: RelationEventKind::Joined,
                service: rinst.id,
                detail: format!("related to {pname}:{}", p.name),
                job: None,
            },
            NewRelationEvent {
                relation: rel.id,
                kind: RelationEventKind::Joined,
                service: pinst.id,
                detail: format!("related to {rname}:{}", r.name),
                job: None,
            },
        ];
        self.reconcile(&c, events, true).await?;
        Ok(rel)
    }

    /// A cluster's relations.
    pub async fn relations(&self, cluster: &str) -> Result<Vec<Relation>> {
        let c = self.cluster(cluster).await?;
        self.inner.store.list_relations(c.id).await
    }

    async fn relation(&self, c: &Cluster, id: RelationId) -> Result<Relation> {
        self.inner
            .store
            .list_relations(c.id)
            .await?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| Error::not_found("relation", format!("{id} (in cluster {})", c.name)))
    }

    /// Removes a relation: both sides get `broken` and re-render without each other.
    pub async fn unrelate(&self, cluster: &str, id: RelationId) -> Result<()> {
        let c = self.cluster(cluster).await?;
        let rel = self.relation(&c, id).await?;
        self.inner.store.remove_relation(id).await?;
        let events = [rel.requirer, rel.provider]
            .into_iter()
            .map(|s| NewRelationEvent {
                relation: id,
                kind: RelationEventKind::Broken,
                service: s,
                detail: "relation removed".into(),
                job: None,
            })
            .collect();
        // The relation is gone from the store, so reconcile sees the new world.
        self.reconcile(&c, events, true).await?;
        Ok(())
    }

    /// A relation's events, oldest first; a removed relation keeps its events. (Relation ids
    /// are unique across clusters, and reading is not restricted per cluster, so the id
    /// selects; a relation with neither events nor a live entry is not found.)
    pub async fn relation_events(
        &self,
        cluster: &str,
        id: RelationId,
    ) -> Result<Vec<RelationEvent>> {
        let c = self.cluster(cluster).await?;
        let events = self.inner.store.list_relation_events(id).await?;
        if events.is_empty() && self.relation(&c, id).await.is_err() {
            return Err(Error::not_found(
                "relation",
                format!("{id} (in cluster {cluster})"),
            ));
        }
        Ok(events)
    }

    /// Places more units of a service's component on hosts. The cardinality must still hold
    /// and the new units' files must render. Related services get `joined`.
    pub async fn add_units(
        &self,
        cluster: &str,
        service: &str,
        component: &str,
        hosts: &[String],
    ) -> Result<Vec<Unit>> {
        let c = self.cluster(cluster).await?;
        let (inst, def) = self.service_def(&c, service).await?;
        let comp = def.component(component)?;
        if hosts.is_empty() {
            return Err(Error::Invalid(
                "name at least one host to place units on".into(),
            ));
        }
        let all: HashMap<String, Host> = self
            .inner
            .store
            .list_hosts(c.id)
            .await?
            .into_iter()
            .map(|h| (h.name.clone(), h))
            .collect();
        let mut topo =
            Topology::load(self.inner.store.as_ref(), self.inner.stacks.as_ref(), &c).await?;
        let existing = topo
            .units()
            .iter()
            .filter(|u| u.service == inst.id && u.component == component)
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

    /// Removes a unit (stop it first). Related services get `broken`.
    pub async fn remove_unit(&self, cluster: &str, unit: UnitId) -> Result<()> {
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
        if !comp.cardinality.allows(left) {
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

    /// The events the other sides of `service`'s relations get when its units change, and
    /// the service itself through its peers.
    pub(super) async fn relation_events_for(
        &self,
        c: &Cluster,
        service: ServiceId,
        kind: RelationEventKind,
        detail: &str,
    ) -> Result<Vec<NewRelationEvent>> {
        Ok(self
            .inner
            .store
            .list_relations(c.id)
            .await?
            .into_iter()
            .filter_map(|r| {
                let other = if r.provider == service {
                    r.requirer
                } else if r.requirer == service {
                    r.provider
                } else {
                    return None;
                };
                Some(NewRelationEvent {
                    relation: r.id,
                    kind,
                    service: other,
                    detail: detail.to_string(),
                    job: None,
                })
            })
            .collect())
    }

    /// After units or relations changed: every started unit whose files differ only because
    /// of relation or peer data (not a pending config version, which waits for the operator)
    /// is reconfigured by an automatic job per service — unless every relation it has with
    /// the change's services turned `auto_reconfigure` off. The events are recorded with the
    /// job their side got (all of them, or with `record_all` false only those that got one).
    pub(super) async fn reconcile(
        &self,
        c: &Cluster,
        events: Vec<NewRelationEvent>,
        record_all: bool,
    ) -> Result<Vec<Job>> {
        let topo = Topology::load(self.inner.store.as_ref(), self.inner.stacks.as_ref(), c).await?;
        let relations = self.inner.store.list_relations(c.id).await?;
        let manual: BTreeSet<ServiceId> = events
            .iter()
            .filter(|e| {
                relations
                    .iter()
                    .find(|r| r.id == e.relation)
                    .is_some_and(|r| !r.auto_reconfigure)
            })
            .map(|e| e.service)
            .collect();
        // A unit an unfinished job works on is left alone: two jobs must not configure and
        // restart it at once. When that job ends, the watcher reconciles again.
        let busy = self.busy_units(c).await?;
        let mut stale: BTreeMap<ServiceId, Vec<UnitId>> = BTreeMap::new();
        for u in topo.units() {
            if u.state == UnitState::Started
                && !manual.contains(&u.service)
                && !busy.contains(&u.id)
                && topo.staleness(u) == Staleness::Relations
            {
                stale.entry(u.service).or_default().push(u.id);
            }
        }
        let mut jobs = Vec::new();
        let mut job_of: HashMap<ServiceId, JobId> = HashMap::new();
        for (service, units) in stale {
            let job = self
                .submit(JobRequest {
                    cluster: c.name.clone(),
                    target: Target::Units(units),
                    command: "reconfigure".into(),
                    options: JobOptions {
                        batch_size: Some(1),
                        ..JobOptions::default()
                    },
                })
                .await?;
            tracing::info!(cluster = %c.name, service = %service, job = %job.id,
                "relation data changed: reconfiguring stale units");
            job_of.insert(service, job.id);
            jobs.push(job);
        }
        for mut e in events {
            e.job = job_of.get(&e.service).copied();
            if record_all || e.job.is_some() {
                self.inner.store.add_relation_event(&e).await?;
            }
        }
        Ok(jobs)
    }

    /// The units that unfinished jobs of cluster `c` have tasks on.
    async fn busy_units(&self, c: &Cluster) -> Result<HashSet<UnitId>> {
        let unfinished = self
            .inner
            .store
            .list_jobs(&JobFilter {
                cluster: Some(c.id),
                states: vec![
                    JobState::Queued,
                    JobState::Running,
                    JobState::Paused,
                    JobState::Canceling,
                ],
                ..JobFilter::default()
            })
            .await?;
        let mut busy = HashSet::new();
        for job in unfinished {
            if let Some(detail) = self.inner.store.job_detail(job.id).await? {
                busy.extend(detail.tasks.iter().map(|t| t.unit));
            }
        }
        Ok(busy)
    }

    /// After agents registered on `hosts` (of cluster `c`), or an admin changed their
    /// addresses (`why` says which): their addresses or roots may have changed, so every
    /// relation with a unit on one of them tells its other side `changed`, and stale units are
    /// reconfigured.
    pub(super) async fn hosts_changed(
        &self,
        c: &Cluster,
        hosts: &HashSet<String>,
        why: &str,
    ) -> Result<()> {
        let all = self.inner.store.list_hosts(c.id).await?;
        let ids: HashSet<HostId> = all
            .iter()
            .filter(|h| hosts.contains(&h.name))
            .map(|h| h.id)
            .collect();
        let units = self.inner.store.list_units(c.id).await?;
        let moved: HashSet<ServiceId> = units
            .iter()
            .filter(|u| ids.contains(&u.host))
            .map(|u| u.service)
            .collect();
        let mut events = Vec::new();
        for s in moved {
            let detail = format!(
                "host(s) {} {why}",
                hosts.iter().cloned().collect::<Vec<_>>().join(", ")
            );
            events.extend(
                self.relation_events_for(c, s, RelationEventKind::Changed, &detail)
                    .await?,
            );
        }
        self.reconcile(c, events, false).await?;
        Ok(())
    }
}

/// Watches the engine's updates for agents registering and, half a second after the last of
/// a burst, reconciles their clusters' relations (a host's new address reaches the other
/// side of its relations this way). Holds the manager weakly: it ends with it.
pub(super) async fn watch_hosts(
    inner: std::sync::Weak<super::Inner>,
    mut rx: tokio::sync::broadcast::Receiver<crate::engine::Update>,
) {
    use crate::engine::Update;
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let mut names = HashSet::new();
        let mut ended = HashSet::new();
        // What an update asks for: a host re-registered, or a job ended (units it held may
        // have become stale meanwhile).
        let note = |u: Update, names: &mut HashSet<String>, ended: &mut HashSet<JobId>| match u {
            Update::Host { name } => {
                names.insert(name);
                true
            }
            Update::Job { id, state } if state.is_final() => {
                ended.insert(id);
                true
            }
            _ => false,
        };
        match rx.recv().await {
            Ok(u) => {
                if !note(u, &mut names, &mut ended) {
                    continue;
                }
            }
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        }
        let quiet = tokio::time::sleep(std::time::Duration::from_millis(500));
        tokio::pin!(quiet);
        loop {
            tokio::select! {
                () = &mut quiet => break,
                r = rx.recv() => match r {
                    Ok(u) => {
                        note(u, &mut names, &mut ended);
                    }
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                },
            }
        }
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let mgr = Manager { inner };
        let Ok(clusters) = mgr.inner.store.list_clusters().await else {
            continue;
        };
        let mut by_cluster: HashMap<ClusterId, HashSet<String>> = HashMap::new();
        for n in names {
            if let Ok(Some(h)) = mgr.inner.store.host_by_name(&n).await {
                // An in-process agent said Hello for a host no agent had registered for
                // (remote agents are recorded ONLINE when they register).
                if h.state == HostState::Waiting
                    && let Err(e) = mgr
                        .inner
                        .store
                        .set_host_state(h.id, HostState::Online, Some(crate::model::now_ms()))
                        .await
                {
                    tracing::warn!(host = %n, error = %e, "cannot record a host ONLINE");
                }
                by_cluster.entry(h.cluster).or_default().insert(n);
            }
        }
        // A failed automatic reconfigure is not followed by another: its units stay stale and
        // say so, for the operator.
        for id in ended {
            if let Ok(Some(job)) = mgr.inner.store.get_job(id).await
                && !(job.command == "reconfigure" && job.state != JobState::Succeeded)
            {
                by_cluster.entry(job.cluster).or_default();
            }
        }
        for (id, hosts) in by_cluster {
            let Some(c) = clusters.iter().find(|c| c.id == id) else {
                continue;
            };
            if let Err(e) = mgr.hosts_changed(c, &hosts, "re-registered").await {
                tracing::warn!(cluster = %c.name, error = %e, "cannot reconcile relations after hosts registered or jobs ended");
            }
        }
    }
}

/// The one pair (requires endpoint of `r`, provides endpoint of `p`) that shares an interface,
/// each side given as (service name, definition, endpoint name if named).
fn match_endpoints(
    (rname, rdef, rep): (&str, &ServiceDef, Option<&str>),
    (pname, pdef, pep): (&str, &ServiceDef, Option<&str>),
) -> Result<(Endpoint, Endpoint)> {
    let pick = |eps: &[Endpoint], name: Option<&str>, side: &str, svc: &str| match name {
        Some(n) => eps
            .iter()
            .find(|e| e.name == n)
            .map(|e| vec![e.clone()])
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "service '{svc}' has no {side} endpoint '{n}'; its {side} endpoints are: {}",
                    list_endpoints(eps)
                ))
            }),
        None => Ok(eps.to_vec()),
    };
    let reqs = pick(&rdef.requires, rep, "requires", rname)?;
    let provs = pick(&pdef.provides, pep, "provides", pname)?;
    let pairs: Vec<(&Endpoint, &Endpoint)> = reqs
        .iter()
        .flat_map(|r| provs.iter().map(move |p| (r, p)))
        .filter(|(r, p)| r.interface == p.interface)
        .collect();
    match pairs.as_slice() {
        [(r, p)] => Ok(((*r).clone(), (*p).clone())),
        [] => Err(Error::Invalid(format!(
            "interfaces don't match: '{rname}' requires {} but '{pname}' provides {}; a \
             relation needs a requires and a provides endpoint with the same interface",
            list_endpoints(&reqs),
            list_endpoints(&provs)
        ))),
        many => {
            let names: Vec<String> = many
                .iter()
                .map(|(r, p)| format!("{rname}:{} {pname}:{}", r.name, p.name))
                .collect();
            Err(Error::Invalid(format!(
                "more than one pair of endpoints fits; name them: {}",
                names.join(" | ")
            )))
        }
    }
}

fn list_endpoints(eps: &[Endpoint]) -> String {
    if eps.is_empty() {
        return "no such endpoint".into();
    }
    eps.iter()
        .map(|e| format!("{} ({})", e.name, e.interface))
        .collect::<Vec<_>>()
        .join(", ")
}
