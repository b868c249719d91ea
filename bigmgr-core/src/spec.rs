//! Cluster specs: a whole cluster declared in one TOML file (hosts, service instances with
//! their placement, configs and host overrides, relations), parsed and checked whole against
//! the stacks and the cluster's hosts, every problem reported with its line.
//!
//! [`parse`], [`Parsed::resolve`] (secrets given by reference), [`Parsed::check`],
//! [`Checked::plan`] (a pure diff against the cluster as it stands) and [`export`] (a running
//! cluster written as a spec); `manager/spec.rs` applies plans.

mod export;
mod secrets;

pub use export::{Exported, export};
pub use secrets::{MAX_SECRET_BYTES, MAX_SECRETS, Reference};

use crate::model::{HostOverrides, ServiceConfigs};
use crate::placement::{Candidate, Placement};
use crate::stack::{ServiceDef, StackProvider};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A whole cluster, as the file declares it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The cluster's name.
    pub cluster: String,
    /// The hosts it expects, by name, with their addresses.
    #[serde(default)]
    pub hosts: BTreeMap<String, String>,
    /// Its service instances, by name.
    #[serde(default)]
    pub services: BTreeMap<String, SpecService>,
    /// Its relations.
    #[serde(default)]
    pub relations: Vec<SpecRelation>,
}

/// One service instance of a spec.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SpecService {
    /// The stack (`bigtop`).
    pub stack: String,
    /// The stack version; the newest if left out.
    #[serde(default)]
    pub version: Option<String>,
    /// The service definition (`zookeeper`).
    pub service: String,
    /// The hosts of each component's units: named (`["h1", "h2"]`), or a count core places
    /// by load (`3`, `{ count = 3, among = [...], match = "worker-*" }`).
    #[serde(default)]
    pub placement: BTreeMap<String, Placement>,
    /// Config values over the stack's defaults: config type → property → value.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub configs: ServiceConfigs,
    /// Host overrides: host → config type → property → value.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub host_overrides: HostOverrides,
    /// Its policies.
    #[serde(default)]
    pub policy: SpecPolicy,
}

/// A service's policies in a spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SpecPolicy {
    /// How many of its stale units the reconfigure job an apply runs restarts at once
    /// (default 1: one at a time). A property of the apply's jobs, not stored.
    #[serde(default)]
    pub batch_size: Option<u32>,
    /// Self-healing (`PUT …/healing`): left out, the cluster's stays as it is.
    #[serde(default)]
    pub healing: Option<SpecHealing>,
}

/// Self-healing in a spec: what `bigmgr alert healing` sets.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SpecHealing {
    /// Restart the service's started units that are down.
    pub restart: bool,
    /// How long a unit is down before the first restart (`30s`, 5 s to 1 day); left out,
    /// what the cluster has.
    #[serde(default)]
    pub grace: Option<String>,
    /// At most this many restarts of one unit an hour (1 to 60); left out, what the cluster
    /// has.
    #[serde(default)]
    pub max_per_hour: Option<u32>,
}

/// A relation of a spec: `SERVICE` or `SERVICE:ENDPOINT` on each side.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SpecRelation {
    /// The side that requires.
    pub requirer: String,
    /// The side that provides.
    pub provider: String,
}

/// One thing wrong with a spec: where (its line, 1-based, and the dotted path of the value)
/// and what to fix.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = SpecProblem))]
pub struct Problem {
    /// The line of the file it is on (0 if it is about the file as a whole).
    pub line: usize,
    /// The dotted path of the value (`services.zk.placement.zookeeper_server`).
    pub path: String,
    /// What is wrong and what would be right.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}: {}", self.line, self.path, self.message)
    }
}

/// A parsed spec with the source it came from, so problems found later name their lines.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The spec.
    pub spec: Spec,
    source: String,
}

/// Parses a spec; a file that is not valid TOML, or has an unknown key or a value of the
/// wrong shape, is one problem naming its line.
pub fn parse(source: &str) -> Result<Parsed, Vec<Problem>> {
    Ok(Parsed {
        spec: parse_toml(source)?,
        source: source.to_string(),
    })
}

/// Reads a TOML document into `T` (specs, pipeline definitions): a file that is not valid
/// TOML, or has an unknown key or a value of the wrong shape, is one problem naming its line
/// and the dotted path of the value.
pub fn parse_toml<T: serde::de::DeserializeOwned>(source: &str) -> Result<T, Vec<Problem>> {
    let doc = toml::de::DeTable::parse(source).map_err(|e| {
        vec![Problem {
            line: e.span().map_or(0, |s| line_of(source, s.start)),
            path: "-".into(),
            message: format!("not valid TOML: {}", e.message().trim_end()),
        }]
    })?;
    toml::from_str(source).map_err(|e| {
        let line = e.span().map_or(0, |s| line_of(source, s.start));
        let path = e
            .span()
            .map(|s| crate::stack::manifest::locate_path(doc.get_ref(), s.start))
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "-".into());
        vec![Problem {
            line,
            path,
            message: e.message().trim_end().to_string(),
        }]
    })
}

/// The 1-based line of a byte offset.
fn line_of(source: &str, offset: usize) -> usize {
    let offset = offset.min(source.len());
    source.get(..offset).unwrap_or(source).matches('\n').count() + 1
}

/// The line of the value at `path` (keys from the top) in a TOML `source`, or of its nearest
/// parent the file has; 0 if none.
pub fn line_at(source: &str, path: &[&str]) -> usize {
    let Ok(doc) = toml::de::DeTable::parse(source) else {
        return 0;
    };
    let mut table = doc.get_ref();
    let mut line = 0;
    for key in path {
        let Some((k, v)) = table.iter().find(|(k, _)| k.get_ref() == key) else {
            break;
        };
        line = line_of(source, k.span().start);
        match v.get_ref().as_table() {
            Some(t) => table = t,
            None => break,
        }
    }
    line
}

impl Parsed {
    fn line(&self, path: &[&str]) -> usize {
        line_at(&self.source, path)
    }

    fn problem(&self, path: &[&str], message: impl Into<String>) -> Problem {
        Problem {
            line: self.line(path),
            path: path.join("."),
            message: message.into(),
        }
    }

    /// Every wrong config type and property of `layer` (at `path`), each a problem on its own
    /// line: an unknown type once, then each property of a known type.
    fn check_layer(
        &self,
        def: &ServiceDef,
        path: &[&str],
        layer: &ServiceConfigs,
        problems: &mut Vec<Problem>,
    ) {
        for (ty, props) in layer {
            let mut at: Vec<&str> = path.to_vec();
            at.push(ty);
            let empty: ServiceConfigs = [(ty.clone(), BTreeMap::new())].into();
            if let Err(e) = crate::stack::check_configs(def, &empty) {
                problems.push(self.problem(&at, e.to_string()));
                continue;
            }
            for (p, v) in props {
                let one: ServiceConfigs = [(ty.clone(), [(p.clone(), v.clone())].into())].into();
                if let Err(e) = crate::stack::check_configs(def, &one) {
                    let mut at = at.clone();
                    at.push(p);
                    problems.push(self.problem(&at, e.to_string()));
                }
            }
        }
    }

    /// Checks the whole spec against the stacks and the cluster's `hosts` (names): every
    /// stack and service exists, every component named exists and every component's
    /// cardinality holds, every host named is the cluster's or the spec's, config types,
    /// properties and value types fit, software sources are whole, and every relation joins
    /// endpoints of one interface. Every problem is listed, each with its line.
    pub async fn check(
        &self,
        stacks: &dyn StackProvider,
        hosts: &BTreeSet<String>,
    ) -> Result<Checked, Vec<Problem>> {
        let spec = &self.spec;
        let mut problems = Vec::new();
        if let Err(e) = crate::name::check_name("cluster", &spec.cluster) {
            problems.push(self.problem(&["cluster"], e.to_string()));
        }
        let known = |h: &str| hosts.contains(h) || spec.hosts.contains_key(h);
        for (h, address) in &spec.hosts {
            if let Err(e) = crate::name::check_host_name(h) {
                problems.push(self.problem(&["hosts", h], e.to_string()));
            }
            if let Err(e) = crate::address::check_address(address) {
                problems.push(self.problem(&["hosts", h], e));
            }
        }
        let mut defs: BTreeMap<&str, Arc<ServiceDef>> = BTreeMap::new();
        for (name, s) in &spec.services {
            if let Err(e) = crate::name::check_name("service instance", name) {
                problems.push(self.problem(&at(name, &[]), e.to_string()));
            }
            let stack = match stacks.stack(&s.stack, s.version.as_deref()).await {
                Ok(stack) => stack,
                Err(e) => {
                    problems.push(self.problem(&at(name, &["stack"]), e.to_string()));
                    continue;
                }
            };
            let def = match stack.service(&s.service) {
                Ok(def) => def.clone(),
                Err(e) => {
                    problems.push(self.problem(&at(name, &["service"]), e.to_string()));
                    continue;
                }
            };
            for (component, on) in &s.placement {
                if def.component(component).is_err() {
                    problems.push(self.problem(
                        &at(name, &["placement", component]),
                        format!(
                            "service {} has no component '{component}'; it has: {}",
                            def.name,
                            def.components
                                .iter()
                                .map(|c| c.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
                let named = match on {
                    Placement::Hosts(h) => h.clone(),
                    Placement::Count(_) => Vec::new(),
                    Placement::Rule(r) => r.among.clone().unwrap_or_default(),
                };
                for h in named.iter().filter(|h| !known(h)) {
                    problems.push(self.problem(
                        &at(name, &["placement", component]),
                        format!("host '{h}' is neither the cluster's nor in the spec's [hosts]"),
                    ));
                }
                let mut seen = BTreeSet::new();
                if let Some(h) = on.hosts().into_iter().flatten().find(|h| !seen.insert(*h)) {
                    problems.push(self.problem(
                        &at(name, &["placement", component]),
                        format!(
                            "host '{h}' is named twice: a component has at most one unit per host"
                        ),
                    ));
                }
            }
            for c in &def.components {
                let n = s.placement.get(&c.name).map_or(0, Placement::count);
                if !c.cardinality.allows(n) {
                    problems.push(self.problem(
                        &at(name, &["placement", &c.name]),
                        format!(
                            "{} has {n} unit(s), but its cardinality is {}",
                            c.name, c.cardinality
                        ),
                    ));
                }
            }
            self.check_layer(&def, &at(name, &["configs"]), &s.configs, &mut problems);
            for (h, layer) in &s.host_overrides {
                if !known(h) {
                    problems.push(self.problem(
                        &at(name, &["host_overrides", h]),
                        format!("host '{h}' is neither the cluster's nor in the spec's [hosts]"),
                    ));
                }
                let path = at(name, &["host_overrides", h]);
                self.check_layer(&def, &path, layer, &mut problems);
            }
            if let Err(e) =
                crate::stack::software::check_layers(&def.software, &s.configs, &s.host_overrides)
            {
                problems.push(self.problem(&at(name, &["configs", "software"]), e.to_string()));
            }
            if s.policy.batch_size == Some(0) {
                problems.push(self.problem(
                    &at(name, &["policy", "batch_size"]),
                    "batch_size is at least 1",
                ));
            }
            if let Some(h) = &s.policy.healing
                && let Err(e) = crate::policy::healing(
                    crate::model::HealingPolicy::default(),
                    h.restart,
                    h.grace.as_deref(),
                    h.max_per_hour,
                )
            {
                let field = e.field().unwrap_or_default();
                let mut p = self.problem(&at(name, &["policy", "healing"]), e.to_string());
                p.path = format!("services.{name}.policy.healing.{field}");
                problems.push(p);
            }
            defs.insert(name, def);
        }
        for (i, r) in spec.relations.iter().enumerate() {
            if let Err(m) = check_relation(&defs, r) {
                let mut p = self.problem(&["relations"], m);
                p.path = format!("relations[{i}]");
                problems.push(p);
            }
        }
        problems.sort_by_key(|p| p.line);
        if !problems.is_empty() {
            return Err(problems);
        }
        let defs = defs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<BTreeMap<_, _>>();
        let relations = spec
            .relations
            .iter()
            .filter_map(|r| resolve_relation(&defs, r))
            .collect();
        Ok(Checked {
            spec: spec.clone(),
            defs,
            relations,
        })
    }
}

/// A spec that passed [`Parsed::check`], with each service's definition and each relation's
/// endpoints resolved.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The spec.
    pub spec: Spec,
    /// The definition of each of its services, by instance name.
    pub defs: BTreeMap<String, Arc<ServiceDef>>,
    /// Its relations with their endpoints.
    pub relations: Vec<PlannedRelation>,
}

/// A relation with both endpoints named.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlannedRelation {
    /// The requiring service instance.
    pub requirer: String,
    /// Its endpoint.
    pub requirer_endpoint: String,
    /// The providing service instance.
    pub provider: String,
    /// Its endpoint.
    pub provider_endpoint: String,
}

/// What a cluster holds now, as the planner compares a spec with it.
#[derive(Debug, Clone, Default)]
pub struct Current {
    /// Its hosts' names.
    pub hosts: BTreeSet<String>,
    /// Its service instances.
    pub services: Vec<CurrentService>,
    /// Its relations.
    pub relations: Vec<PlannedRelation>,
    /// Its hosts as placement by count sees them: units and averaged load.
    pub candidates: Vec<Candidate>,
}

/// A service instance as it stands.
#[derive(Debug, Clone)]
pub struct CurrentService {
    /// Its name.
    pub name: String,
    /// Its stack, stack version and service definition.
    pub stack: String,
    /// The stack version.
    pub stack_version: String,
    /// The service definition.
    pub service: String,
    /// Its service layer.
    pub configs: ServiceConfigs,
    /// Its host layer.
    pub host_overrides: HostOverrides,
    /// Its units: (component, host).
    pub units: BTreeSet<(String, String)>,
    /// Its self-healing policy.
    pub healing: crate::model::HealingPolicy,
}

/// A host a plan adds (its agent joins it later).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlannedHost {
    /// Its name.
    pub name: String,
    /// Its address.
    pub address: String,
}

/// One unit a plan adds or removes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlannedUnit {
    /// Its service instance.
    pub service: String,
    /// Its component.
    pub component: String,
    /// Its host.
    pub host: String,
    /// Why core chose this host, for a placement by count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// One property a plan changes: `from` what the layer holds now `to` what the spec says
/// (absent: not in the layer); secrets read as `********`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlannedConfig {
    /// The service instance.
    pub service: String,
    /// The config type.
    pub config_type: String,
    /// The host of a host override; absent for the service layer.
    pub host: Option<String>,
    /// The property.
    pub property: String,
    /// Its value now.
    pub from: Option<serde_json::Value>,
    /// Its value after the apply.
    pub to: Option<serde_json::Value>,
}

/// A service policy a plan changes: `from` what the cluster has `to` what the spec says.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlannedPolicy {
    /// The service instance.
    pub service: String,
    /// The policy (`healing`).
    pub policy: String,
    /// Its settings now.
    pub from: serde_json::Value,
    /// Its settings after the apply.
    pub to: serde_json::Value,
}

/// How a healing policy reads in plans and exports: `{restart, grace, max_per_hour}`.
pub fn healing_json(p: &crate::model::HealingPolicy) -> serde_json::Value {
    let grace = std::time::Duration::from_millis(u64::try_from(p.grace_ms).unwrap_or(0));
    serde_json::json!({
        "restart": p.restart,
        "grace": crate::duration::format_duration(grace),
        "max_per_hour": p.max_per_hour,
    })
}

/// A job a plan would run, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlannedJob {
    /// The command (`deploy`, `reconfigure`).
    pub command: String,
    /// The service instance it runs on.
    pub service: String,
    /// The hosts of the units it runs on; empty: every unit of the service.
    pub hosts: Vec<String>,
    /// Why.
    pub why: String,
}

/// What applying a spec would change, and nothing else: an empty plan means the cluster is
/// as the spec says.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Plan {
    /// The cluster does not exist yet: the apply creates it.
    pub create_cluster: bool,
    /// Hosts the spec names that the cluster lacks.
    pub hosts_to_add: Vec<PlannedHost>,
    /// Service instances to add (their units are in `units_to_add`).
    pub services_to_add: Vec<String>,
    /// Service instances to remove (only with prune).
    pub services_to_remove: Vec<String>,
    /// Units to add.
    pub units_to_add: Vec<PlannedUnit>,
    /// Units to remove (only with prune, or when a service is removed).
    pub units_to_remove: Vec<PlannedUnit>,
    /// Properties to change, one config version per service.
    pub configs: Vec<PlannedConfig>,
    /// Relations to add.
    pub relations_to_add: Vec<PlannedRelation>,
    /// Relations to remove (only with prune).
    pub relations_to_remove: Vec<PlannedRelation>,
    /// Policies to change.
    #[serde(default)]
    pub policies: Vec<PlannedPolicy>,
    /// The jobs the apply would run, in order.
    pub jobs: Vec<PlannedJob>,
    /// What the apply cannot change (a service's stack or definition): the apply refuses
    /// while there is any.
    pub problems: Vec<String>,
    /// What is in the cluster but not in the spec and stays, without prune.
    pub kept: Vec<String>,
}

impl Plan {
    /// True if applying would change nothing.
    pub fn is_empty(&self) -> bool {
        !self.create_cluster
            && self.hosts_to_add.is_empty()
            && self.services_to_add.is_empty()
            && self.services_to_remove.is_empty()
            && self.units_to_add.is_empty()
            && self.units_to_remove.is_empty()
            && self.configs.is_empty()
            && self.relations_to_add.is_empty()
            && self.relations_to_remove.is_empty()
            && self.policies.is_empty()
            && self.jobs.is_empty()
    }
}

impl Checked {
    /// The plan that makes `current` what the spec says. Things in the cluster but not in the
    /// spec are removed only with `prune` (otherwise listed in `kept`).
    pub fn plan(&self, current: &Current, prune: bool) -> Plan {
        let spec = &self.spec;
        let mut plan = Plan::default();
        for (h, address) in &spec.hosts {
            if !current.hosts.contains(h) {
                plan.hosts_to_add.push(PlannedHost {
                    name: h.clone(),
                    address: address.clone(),
                });
            }
        }
        // Placement by count sees the cluster's hosts and the spec's new ones, and the units
        // this plan places as it places them.
        let mut candidates = current.candidates.clone();
        for h in spec.hosts.keys() {
            if !candidates.iter().any(|c| &c.name == h) {
                candidates.push(Candidate {
                    name: h.clone(),
                    ..Candidate::default()
                });
            }
        }
        let empty = BTreeSet::new();
        for (name, s) in &spec.services {
            let cur = current.services.iter().find(|c| &c.name == name);
            let (want, why) =
                match resolve_placement(s, cur.map_or(&empty, |c| &c.units), &mut candidates) {
                    Ok(resolved) => resolved,
                    Err(e) => {
                        plan.problems
                            .push(format!("service {name}: placement of {e}"));
                        continue;
                    }
                };
            let planned = |(c, h): &(String, String)| PlannedUnit {
                service: name.clone(),
                component: c.clone(),
                host: h.clone(),
                why: why.get(&(c.clone(), h.clone())).cloned(),
            };
            let def = &self.defs[name];
            if let Some(h) = &s.policy.healing {
                let now = cur.map(|c| c.healing).unwrap_or_default();
                if let Ok(want) =
                    crate::policy::healing(now, h.restart, h.grace.as_deref(), h.max_per_hour)
                    && want != now
                {
                    plan.policies.push(PlannedPolicy {
                        service: name.clone(),
                        policy: "healing".into(),
                        from: healing_json(&now),
                        to: healing_json(&want),
                    });
                }
            }
            let Some(cur) = cur else {
                plan.services_to_add.push(name.clone());
                plan.units_to_add.extend(want.iter().map(planned));
                plan.jobs.push(PlannedJob {
                    command: "deploy".into(),
                    service: name.clone(),
                    hosts: Vec::new(),
                    why: format!("service {name} is new"),
                });
                continue;
            };
            if cur.stack != s.stack || cur.service != s.service {
                plan.problems.push(format!(
                    "service {name} is {} {} in the cluster but {} {} in the spec: remove it \
                     first (or rename it in the spec)",
                    cur.stack, cur.service, s.stack, s.service
                ));
                continue;
            }
            let added: Vec<_> = want.difference(&cur.units).cloned().collect();
            let gone: Vec<_> = cur.units.difference(&want).cloned().collect();
            plan.units_to_add.extend(added.iter().map(planned));
            for (c, h) in &gone {
                let u = PlannedUnit {
                    why: None,
                    ..planned(&(c.clone(), h.clone()))
                };
                if prune {
                    plan.units_to_remove.push(u);
                } else {
                    plan.kept.push(format!("unit {c} of {name} on {h}"));
                }
            }
            let before = plan.configs.len();
            diff_layer(def, name, None, &cur.configs, &s.configs, &mut plan.configs);
            let hosts: BTreeSet<&String> = cur
                .host_overrides
                .keys()
                .chain(s.host_overrides.keys())
                .collect();
            let empty = ServiceConfigs::new();
            for h in hosts {
                diff_layer(
                    def,
                    name,
                    Some(h),
                    cur.host_overrides.get(h).unwrap_or(&empty),
                    s.host_overrides.get(h).unwrap_or(&empty),
                    &mut plan.configs,
                );
            }
            if !added.is_empty() {
                plan.jobs.push(PlannedJob {
                    command: "deploy".into(),
                    service: name.clone(),
                    hosts: added
                        .iter()
                        .map(|(_, h)| h.clone())
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect(),
                    why: format!("{} new unit(s) of {name}", added.len()),
                });
            }
            if plan.configs.len() > before {
                plan.jobs.push(PlannedJob {
                    command: "reconfigure".into(),
                    service: name.clone(),
                    hosts: Vec::new(),
                    why: format!(
                        "{} property change(s) of {name}: its stale units, {}",
                        plan.configs.len() - before,
                        match s.policy.batch_size {
                            None | Some(1) => "one at a time".to_string(),
                            Some(n) => format!("{n} at a time"),
                        }
                    ),
                });
            }
        }
        for cur in &current.services {
            if !spec.services.contains_key(&cur.name) {
                if prune {
                    plan.services_to_remove.push(cur.name.clone());
                    plan.units_to_remove
                        .extend(cur.units.iter().map(|(c, h)| PlannedUnit {
                            service: cur.name.clone(),
                            component: c.clone(),
                            host: h.clone(),
                            why: None,
                        }));
                } else {
                    plan.kept.push(format!("service {}", cur.name));
                }
            }
        }
        for r in &self.relations {
            if !current.relations.contains(r) {
                plan.relations_to_add.push(r.clone());
            }
        }
        if !plan.units_to_remove.is_empty() {
            // Units go only once stopped: one stop job, before anything else runs.
            let mut by_service: BTreeMap<&String, BTreeSet<&String>> = BTreeMap::new();
            for u in &plan.units_to_remove {
                by_service.entry(&u.service).or_default().insert(&u.host);
            }
            let stops = by_service.into_iter().map(|(service, hosts)| PlannedJob {
                command: "stop".into(),
                service: service.clone(),
                hosts: hosts.into_iter().cloned().collect(),
                why: format!(
                    "units of {service} the spec no longer places, before they are removed"
                ),
            });
            plan.jobs.splice(0..0, stops);
        }
        for r in &current.relations {
            if !self.relations.contains(r) {
                if prune {
                    plan.relations_to_remove.push(r.clone());
                } else {
                    plan.kept.push(format!(
                        "relation {}:{} -> {}:{}",
                        r.requirer, r.requirer_endpoint, r.provider, r.provider_endpoint
                    ));
                }
            }
        }
        plan
    }
}

/// The units a service's placement asks for — named hosts as they are, counts chosen by
/// [`crate::placement::choose`] keeping the hosts that have units of the component now —
/// with why each chosen host was chosen. `candidates` count the units placed as they go.
#[allow(clippy::type_complexity)]
fn resolve_placement(
    s: &SpecService,
    now: &BTreeSet<(String, String)>,
    candidates: &mut [Candidate],
) -> Result<
    (
        BTreeSet<(String, String)>,
        BTreeMap<(String, String), String>,
    ),
    String,
> {
    let mut want = BTreeSet::new();
    let mut why = BTreeMap::new();
    for (component, placement) in &s.placement {
        let existing: Vec<String> = now
            .iter()
            .filter(|(c, _)| c == component)
            .map(|(_, h)| h.clone())
            .collect();
        let hosts = crate::placement::place(placement, &existing, candidates)
            .map_err(|e| format!("{component}: {e}"))?;
        for (h, reason) in hosts {
            let key = (component.clone(), h.clone());
            if let Some(r) = reason {
                why.insert(key.clone(), r);
            }
            want.insert(key);
        }
    }
    Ok((want, why))
}

/// The property changes from layer `a` (the cluster's) to layer `b` (the spec's).
fn diff_layer(
    def: &ServiceDef,
    service: &str,
    host: Option<&String>,
    a: &ServiceConfigs,
    b: &ServiceConfigs,
    out: &mut Vec<PlannedConfig>,
) {
    let types: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let empty = BTreeMap::new();
    for ty in types {
        let (pa, pb) = (a.get(ty).unwrap_or(&empty), b.get(ty).unwrap_or(&empty));
        let secret = |p: &str| {
            def.configs
                .iter()
                .find(|c| &c.name == ty)
                .and_then(|c| c.properties.iter().find(|x| x.name == p))
                .is_some_and(|x| x.secret)
        };
        let props: BTreeSet<&String> = pa.keys().chain(pb.keys()).collect();
        for p in props {
            let (va, vb) = (pa.get(p), pb.get(p));
            if va == vb {
                continue;
            }
            let show = |v: Option<&serde_json::Value>| {
                v.map(|v| {
                    if secret(p) {
                        serde_json::Value::String(crate::render::REDACTED.into())
                    } else {
                        v.clone()
                    }
                })
            };
            out.push(PlannedConfig {
                service: service.to_string(),
                config_type: ty.clone(),
                host: host.cloned(),
                property: p.clone(),
                from: show(va),
                to: show(vb),
            });
        }
    }
}

/// A spec relation with its endpoints: the first requires endpoint of the requirer (or the one
/// named) whose interface one of the provider's provides endpoints (or the one named) has.
fn resolve_relation(
    defs: &BTreeMap<String, Arc<ServiceDef>>,
    r: &SpecRelation,
) -> Option<PlannedRelation> {
    let split = |s: &str| match s.split_once(':') {
        Some((a, b)) => (a.to_string(), Some(b.to_string())),
        None => (s.to_string(), None),
    };
    let (req, req_ep) = split(&r.requirer);
    let (prov, prov_ep) = split(&r.provider);
    let (rd, pd) = (defs.get(&req)?, defs.get(&prov)?);
    let (a, b) = matching_endpoints(rd, req_ep.as_deref(), pd, prov_ep.as_deref())?;
    Some(PlannedRelation {
        requirer: req,
        requirer_endpoint: a.to_string(),
        provider: prov,
        provider_endpoint: b.to_string(),
    })
}

/// The first requires endpoint of `req` (or the one named) and provides endpoint of `prov`
/// (or the one named) that share an interface: the rule both checking and planning use.
fn matching_endpoints<'a>(
    req: &'a ServiceDef,
    req_ep: Option<&str>,
    prov: &'a ServiceDef,
    prov_ep: Option<&str>,
) -> Option<(&'a str, &'a str)> {
    req.requires
        .iter()
        .filter(|e| req_ep.is_none_or(|n| e.name == n))
        .find_map(|a| {
            prov.provides
                .iter()
                .filter(|e| prov_ep.is_none_or(|n| e.name == n))
                .find(|b| a.interface == b.interface)
                .map(|b| (a.name.as_str(), b.name.as_str()))
        })
}

/// The path `services.<name>.<more…>`.
fn at<'a>(name: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    let mut p = vec!["services", name];
    p.extend_from_slice(more);
    p
}

/// Whether a relation joins a requires endpoint and a provides endpoint of one interface.
fn check_relation(defs: &BTreeMap<&str, Arc<ServiceDef>>, r: &SpecRelation) -> Result<(), String> {
    let side = |s: &str| -> Result<(&Arc<ServiceDef>, Option<String>), String> {
        let (svc, ep) = match s.split_once(':') {
            Some((svc, ep)) => (svc, Some(ep.to_string())),
            None => (s, None),
        };
        defs.get(svc)
            .map(|d| (d, ep))
            .ok_or_else(|| format!("'{svc}' is not a service of this spec"))
    };
    let (req, req_ep) = side(&r.requirer)?;
    let (prov, prov_ep) = side(&r.provider)?;
    let fits = matching_endpoints(req, req_ep.as_deref(), prov, prov_ep.as_deref()).is_some();
    if fits {
        Ok(())
    } else {
        let list = |eps: &[crate::stack::Endpoint]| {
            if eps.is_empty() {
                "none".to_string()
            } else {
                eps.iter()
                    .map(|e| format!("{} ({})", e.name, e.interface))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        Err(format!(
            "interfaces don't match: '{}' requires {} but '{}' provides {}",
            r.requirer,
            list(&req.requires),
            r.provider,
            list(&prov.provides)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::DirStackProvider;

    fn stacks() -> DirStackProvider {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../stacks");
        DirStackProvider::new(vec![root])
    }

    fn hosts() -> BTreeSet<String> {
        ["h1", "h2", "h3"].map(String::from).into()
    }

    const GOOD: &str = r#"
cluster = "prod"

[hosts]
h4 = "127.0.0.5"

[services.zk]
stack = "bigtop"
service = "zookeeper"
placement = { zookeeper_server = ["h1", "h2", "h3"] }
configs = { "zoo.cfg" = { tickTime = 3000 } }

[services.nodes]
stack = "infra"
service = "node_exporter"
placement = { node_exporter = ["h1", "h2", "h3", "h4"] }

[services.prom]
stack = "infra"
service = "prometheus"
placement = { prometheus_server = ["h1"] }

[[relations]]
requirer = "prom:metrics"
provider = "nodes"
"#;

    #[tokio::test]
    async fn a_good_spec_checks() {
        let parsed = parse(GOOD).unwrap();
        assert_eq!(parsed.spec.services.len(), 3);
        parsed.check(&stacks(), &hosts()).await.unwrap();
    }

    #[tokio::test]
    async fn every_problem_is_listed_with_its_line() {
        let bad = r#"
cluster = "prod"

[services.zk]
stack = "bigtop"
service = "zookeeper"
placement = { zookeeper_server = ["h1", "h9"], zookeeper_clerk = ["h1"] }
configs = { "zoo.cfg" = { tickTime = "fast" } }

[services.nope]
stack = "nostack"
service = "x"

[services.prom]
stack = "infra"
service = "prometheus"
placement = { prometheus_server = [] }

[services."bad name!"]
stack = "demo"
service = "hello"
placement = { hello_server = ["h1"] }

[[relations]]
requirer = "prom"
provider = "zk"
"#;
        let problems = parse(bad)
            .unwrap()
            .check(&stacks(), &hosts())
            .await
            .unwrap_err();
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let has = |line: usize, path: &str, says: &str| {
            assert!(
                problems
                    .iter()
                    .any(|p| p.line == line && p.path == path && p.message.contains(says)),
                "no problem at line {line} {path} saying {says:?} in {text:#?}"
            );
        };
        has(
            7,
            "services.zk.placement.zookeeper_clerk",
            "no component 'zookeeper_clerk'",
        );
        has(7, "services.zk.placement.zookeeper_server", "host 'h9'");
        has(8, "services.zk.configs.zoo.cfg.tickTime", "tickTime");
        has(11, "services.nope.stack", "nostack");
        has(
            17,
            "services.prom.placement.prometheus_server",
            "cardinality",
        );
        has(
            19,
            "services.bad name!",
            "not a valid service instance name",
        );
        has(24, "relations[0]", "interfaces don't match");
        assert_eq!(problems.len(), 7, "{text:#?}");
    }

    #[tokio::test]
    async fn counts_are_placed_on_the_least_loaded_hosts_and_stay_put() {
        use crate::placement::{Candidate, Load};
        let spec = GOOD.replace(
            r#"zookeeper_server = ["h1", "h2", "h3"]"#,
            r#"zookeeper_server = { count = 2, among = ["h1", "h2", "h3"] }"#,
        );
        let checked = parse(&spec)
            .unwrap()
            .check(&stacks(), &hosts())
            .await
            .unwrap();
        let loaded = |name: &str, cpu: f64| Candidate {
            name: name.into(),
            units: 0,
            load: Some(Load {
                cpu_percent: cpu,
                memory_percent: 10.0,
                samples: 30,
            }),
            lost: false,
        };
        let current = Current {
            hosts: hosts(),
            candidates: vec![loaded("h1", 97.0), loaded("h2", 4.0), loaded("h3", 6.0)],
            ..Current::default()
        };
        let plan = checked.plan(&current, false);
        let zk: Vec<&PlannedUnit> = plan
            .units_to_add
            .iter()
            .filter(|u| u.service == "zk")
            .collect();
        let on: Vec<&str> = zk.iter().map(|u| u.host.as_str()).collect();
        assert_eq!(on, ["h2", "h3"], "busy h1 is passed over: {plan:#?}");
        let why = zk[0].why.as_deref().unwrap();
        assert!(
            why.contains("cpu 4%") && why.contains("passed over h1"),
            "{why}"
        );
        let mut applied = as_applied(&checked);
        let zk_now = applied
            .services
            .iter_mut()
            .find(|s| s.name == "zk")
            .unwrap();
        zk_now.units = [
            ("zookeeper_server".to_string(), "h1".to_string()),
            ("zookeeper_server".to_string(), "h3".to_string()),
        ]
        .into();
        applied.candidates = current.candidates.clone();
        // Units already there stay, even on the busy host: an apply again moves nothing.
        let again = checked.plan(&applied, false);
        assert!(again.is_empty(), "{again:#?}");
        // Too few hosts allowed: a problem the apply refuses on.
        let four = spec.replace("count = 2", "count = 4");
        let problems = parse(&four).unwrap().check(&stacks(), &hosts()).await;
        let plan = match problems {
            Ok(c) => c.plan(&current, false),
            Err(p) => panic!("{p:?}"),
        };
        assert!(
            plan.problems
                .iter()
                .any(|p| p.contains("only 3 may take one")),
            "{plan:#?}"
        );
    }

    #[tokio::test]
    async fn policies_are_checked_planned_and_kept_when_left_out() {
        let with = |policy: &str| format!("{GOOD}\n[services.zk.policy]\n{policy}\n");
        let bad = with("batch_size = 0\nhealing = { restart = true, grace = \"1s\" }");
        let problems = parse(&bad)
            .unwrap()
            .check(&stacks(), &hosts())
            .await
            .unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "services.zk.policy.batch_size",
                "services.zk.policy.healing.grace"
            ],
            "{problems:?}"
        );
        assert!(problems.iter().all(|p| p.line > 0), "{problems:?}");
        let good = with("batch_size = 2\nhealing = { restart = true, max_per_hour = 5 }");
        let checked = parse(&good)
            .unwrap()
            .check(&stacks(), &hosts())
            .await
            .unwrap();
        let mut applied = as_applied(&checked);
        let plan = checked.plan(&applied, false);
        assert_eq!(plan.policies.len(), 1, "{plan:#?}");
        assert_eq!(
            plan.policies[0].to,
            serde_json::json!({"restart": true, "grace": "30s", "max_per_hour": 5})
        );
        for s in &mut applied.services {
            if s.name == "zk" {
                s.healing = crate::model::HealingPolicy {
                    restart: true,
                    grace_ms: 30_000,
                    max_per_hour: 5,
                };
            }
        }
        assert!(checked.plan(&applied, false).is_empty());
        // Left out of the spec, the cluster's policy stays.
        let left_out = parse(GOOD)
            .unwrap()
            .check(&stacks(), &hosts())
            .await
            .unwrap();
        assert!(left_out.plan(&applied, false).policies.is_empty());
    }

    /// The cluster as `checked` would leave it.
    fn as_applied(checked: &Checked) -> Current {
        Current {
            hosts: hosts()
                .into_iter()
                .chain(checked.spec.hosts.keys().cloned())
                .collect(),
            services: checked
                .spec
                .services
                .iter()
                .map(|(name, s)| CurrentService {
                    name: name.clone(),
                    stack: s.stack.clone(),
                    stack_version: "x".into(),
                    service: s.service.clone(),
                    configs: s.configs.clone(),
                    host_overrides: s.host_overrides.clone(),
                    units: s
                        .placement
                        .iter()
                        .flat_map(|(c, p)| {
                            p.hosts()
                                .unwrap_or_default()
                                .iter()
                                .map(move |h| (c.clone(), h.clone()))
                        })
                        .collect(),
                    healing: crate::model::HealingPolicy::default(),
                })
                .collect(),
            relations: checked.relations.clone(),
            candidates: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_plan_lists_what_differs_and_nothing_else() {
        let checked = parse(GOOD)
            .unwrap()
            .check(&stacks(), &hosts())
            .await
            .unwrap();
        // On an empty cluster: everything.
        let empty = Current {
            hosts: hosts(),
            ..Current::default()
        };
        let plan = checked.plan(&empty, false);
        assert_eq!(
            plan.hosts_to_add,
            [PlannedHost {
                name: "h4".into(),
                address: "127.0.0.5".into()
            }]
        );
        assert_eq!(plan.services_to_add, ["nodes", "prom", "zk"]);
        assert_eq!(plan.units_to_add.len(), 3 + 4 + 1);
        assert_eq!(
            plan.relations_to_add,
            [PlannedRelation {
                requirer: "prom".into(),
                requirer_endpoint: "metrics".into(),
                provider: "nodes".into(),
                provider_endpoint: "metrics".into(),
            }]
        );
        assert_eq!(
            plan.jobs.iter().filter(|j| j.command == "deploy").count(),
            3
        );
        // As applied: nothing.
        let applied = as_applied(&checked);
        let again = checked.plan(&applied, false);
        assert!(again.is_empty(), "{again:#?}");
        // One value and one placement edited in the file: exactly those.
        let edited = GOOD.replace("tickTime = 3000", "tickTime = 4000").replace(
            r#"prometheus_server = ["h1"]"#,
            r#"prometheus_server = ["h2"]"#,
        );
        let edited = parse(&edited)
            .unwrap()
            .check(&stacks(), &hosts())
            .await
            .unwrap();
        let plan = edited.plan(&applied, false);
        assert_eq!(
            plan.configs,
            [PlannedConfig {
                service: "zk".into(),
                config_type: "zoo.cfg".into(),
                host: None,
                property: "tickTime".into(),
                from: Some(3000.into()),
                to: Some(4000.into()),
            }]
        );
        let unit = |h: &str| PlannedUnit {
            service: "prom".into(),
            component: "prometheus_server".into(),
            host: h.into(),
            why: None,
        };
        assert_eq!(plan.units_to_add, [unit("h2")]);
        assert!(
            plan.units_to_remove.is_empty(),
            "without prune nothing goes"
        );
        assert_eq!(plan.kept, ["unit prometheus_server of prom on h1"]);
        let jobs: Vec<(&str, &str)> = plan
            .jobs
            .iter()
            .map(|j| (j.command.as_str(), j.service.as_str()))
            .collect();
        assert_eq!(jobs, [("deploy", "prom"), ("reconfigure", "zk")]);
        // With prune, the unit the file no longer places goes, and so does a service and a
        // relation the file does not name.
        let mut extra = applied.clone();
        extra.services.push(CurrentService {
            name: "old".into(),
            stack: "demo".into(),
            stack_version: "1.0.0".into(),
            service: "hello".into(),
            configs: ServiceConfigs::new(),
            host_overrides: HostOverrides::new(),
            units: [("hello_server".to_string(), "h1".to_string())].into(),
            healing: crate::model::HealingPolicy::default(),
        });
        let pruned = edited.plan(&extra, true);
        assert_eq!(pruned.units_to_remove.len(), 2, "{pruned:#?}");
        assert_eq!(pruned.services_to_remove, ["old"]);
        let jobs: Vec<(&str, &str, Vec<String>)> = pruned
            .jobs
            .iter()
            .map(|j| (j.command.as_str(), j.service.as_str(), j.hosts.clone()))
            .collect();
        assert_eq!(
            jobs[..2],
            [
                ("stop", "old", vec!["h1".to_string()]),
                ("stop", "prom", vec!["h1".to_string()])
            ],
            "what goes is stopped first"
        );
        let kept = edited.plan(&extra, false);
        assert!(kept.services_to_remove.is_empty());
        assert!(kept.kept.contains(&"service old".to_string()), "{kept:#?}");
    }

    #[test]
    fn a_malformed_file_names_its_line() {
        let e = parse("cluster = \"prod\"\n[services.zk]\nstack = 3\n").unwrap_err();
        assert_eq!(e[0].line, 3, "{e:?}");
        assert_eq!(e[0].path, "services.zk.stack", "{e:?}");
        let e = parse("cluster = \"prod\"\nclusters = 1\n").unwrap_err();
        assert_eq!(e[0].line, 2, "{e:?}");
        assert!(e[0].message.contains("unknown field"), "{e:?}");
    }
}
