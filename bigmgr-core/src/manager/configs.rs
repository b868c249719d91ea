//! Config versions: changing a service's configs (a merge patch checked against the stack and
//! rendered before it is kept), listing, reading, diffing and rolling back versions.

use super::Manager;
use crate::model::*;
use crate::render::{REDACTED, Topology, redact, redact_hosts};
use crate::stack::ServiceDef;
use crate::stack::check_configs;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
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
        Error::Invalid(m) | Error::InvalidField { message: m, .. } => m,
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
    pub(super) async fn service_def(
        &self,
        cluster: &Cluster,
        name: &str,
    ) -> Result<(ServiceInstance, Arc<ServiceDef>)> {
        let inst = self.service_named(cluster, name).await?;
        let def = self
            .inner
            .stacks
            .stack(&inst.stack, Some(&inst.stack_version))
            .await?
            .service(&inst.service)?
            .clone();
        Ok((inst, def))
    }

    pub(super) fn redacted(def: &ServiceDef, mut v: ConfigVersion) -> ConfigVersion {
        v.configs = redact(def, &v.configs);
        v.host_overrides = redact_hosts(def, &v.host_overrides);
        v
    }

    /// Checks and stores new layers for a service as its next version, then reconfigures what
    /// relations make stale elsewhere.
    pub(super) async fn new_version(
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
        let hosts = self.hosts_by_name(cluster.id).await?;
        check_configs(def, &configs)?;
        check_host_overrides(def, &host_overrides, &hosts)?;
        crate::stack::software::check_layers(&def.software, &configs, &host_overrides)?;
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

    pub(super) async fn version_of(
        &self,
        inst: &ServiceInstance,
        version: u32,
    ) -> Result<ConfigVersion> {
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
}
