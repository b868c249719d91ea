//! Rendering units' config files: the layered values (stack defaults → service → host), the
//! template context with peers and relation data, the compiled templates, and the hash of what
//! a unit's `configure` writes (how staleness is told).

use crate::model::{CheckSpec, Probe, ServiceInstance, Unit};
use crate::model::{Cluster, Host, HostId, HostOverrides, Relation, ServiceConfigs, ServiceId};
use crate::stack::{AlertCheck, Endpoint, ServiceDef, StackProvider};
use crate::store::TopologyStore;
use crate::transport::FileSpec;
use crate::{Error, Result};
use handlebars::Handlebars;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// What a secret value reads as wherever values are shown.
pub const REDACTED: &str = "********";

/// Every property of `def` with its effective value for `host`: the host's override, else the
/// service's value, else the stack default; properties with none are left out. Flattened by
/// property name (names are unique across a service's config types). With `component`, only
/// the properties of the config types that apply to it ([`crate::stack::ConfigType::applies_to`]).
pub fn effective_values(
    def: &ServiceDef,
    configs: &ServiceConfigs,
    overrides: &HostOverrides,
    host: &str,
    component: Option<&str>,
    with_secrets: bool,
) -> Map<String, Value> {
    let host_layer = overrides.get(host);
    let mut out = Map::new();
    for ct in &def.configs {
        if component.is_some_and(|c| !ct.applies_to(c)) {
            continue;
        }
        for p in &ct.properties {
            if p.secret && !with_secrets {
                continue;
            }
            let from_host = host_layer
                .and_then(|h| h.get(&ct.name))
                .and_then(|o| o.get(&p.name));
            let from_service = configs.get(&ct.name).and_then(|o| o.get(&p.name));
            if let Some(v) = from_host.or(from_service).or(p.default.as_ref()) {
                out.insert(p.name.clone(), v.clone());
            }
        }
    }
    out
}

/// `configs` with every secret property's value replaced by [`REDACTED`].
pub fn redact(def: &ServiceDef, configs: &ServiceConfigs) -> ServiceConfigs {
    let mut out = configs.clone();
    for (ty, props) in out.iter_mut() {
        let Some(ct) = def.configs.iter().find(|c| &c.name == ty) else {
            continue;
        };
        for (name, v) in props.iter_mut() {
            if ct.properties.iter().any(|p| &p.name == name && p.secret) {
                *v = Value::String(REDACTED.into());
            }
        }
    }
    out
}

/// [`redact`] on every host of a host layer.
pub fn redact_hosts(def: &ServiceDef, overrides: &HostOverrides) -> HostOverrides {
    overrides
        .iter()
        .map(|(h, c)| (h.clone(), redact(def, c)))
        .collect()
}

/// A service's config templates, compiled once: strict (a missing variable is an error naming
/// it), no HTML escaping.
#[derive(Debug)]
pub struct Templates {
    registry: Handlebars<'static>,
    /// (template name, path under the unit dir, the components it applies to: empty for all).
    files: Vec<(String, String, Vec<String>)>,
}

impl Templates {
    /// Compiles `def`'s config types.
    pub fn compile(def: &ServiceDef) -> std::result::Result<Templates, String> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(handlebars::no_escape);
        registry.register_helper("shell_quote", Box::new(shell_quote));
        registry.register_helper("yaml_quote", Box::new(yaml_quote));
        let mut files = Vec::new();
        for ct in &def.configs {
            registry
                .register_template_string(&ct.name, &ct.template)
                .map_err(|e| format!("template {} of service {}: {e}", ct.name, def.name))?;
            files.push((ct.name.clone(), ct.path.clone(), ct.components.clone()));
        }
        for a in &def.alerts {
            let text = match &a.check {
                AlertCheck::Port { port, .. } => port,
                AlertCheck::Web { url, .. } => url,
                _ => continue,
            };
            registry
                .register_template_string(&format!("alert.{}", a.name), text)
                .map_err(|e| format!("alert {} of service {}: {e}", a.name, def.name))?;
        }
        Ok(Templates { registry, files })
    }

    /// The checks the agent runs for a unit of `component` (its port, web and script alert
    /// definitions), with ports and URLs rendered from the unit's `context`. One that cannot
    /// be rendered is sent as [`Probe::Invalid`], so its alert says why (UNKNOWN).
    pub fn checks(&self, def: &ServiceDef, component: &str, context: &Value) -> Vec<CheckSpec> {
        let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        def.alerts
            .iter()
            .filter(|a| a.component.as_deref() == Some(component))
            .filter_map(|a| {
                let render = || {
                    self.registry
                        .render(&format!("alert.{}", a.name), context)
                        .map(|t| t.trim().to_string())
                        .map_err(|e| {
                            format!("alert {}: {}", a.qualified(&def.name), strict_message(&e))
                        })
                };
                let probe = match &a.check {
                    AlertCheck::Port { .. } => match render() {
                        Ok(text) => match text.parse::<u16>() {
                            Ok(port) if port > 0 => Probe::Port {
                                address: context["address"].as_str().unwrap_or_default().into(),
                                port,
                            },
                            _ => Probe::Invalid {
                                message: format!(
                                    "alert {}: the port renders to '{text}', not a port",
                                    a.qualified(&def.name)
                                ),
                            },
                        },
                        Err(message) => Probe::Invalid { message },
                    },
                    AlertCheck::Web { expect_status, .. } => match render() {
                        Ok(url)
                            if (url.starts_with("http://") || url.starts_with("https://"))
                                && !url.chars().any(char::is_whitespace) =>
                        {
                            Probe::Web {
                                url,
                                expect_status: *expect_status,
                            }
                        }
                        Ok(url) => Probe::Invalid {
                            message: format!(
                                "alert {}: the URL renders to '{url}', not an http(s) URL",
                                a.qualified(&def.name)
                            ),
                        },
                        Err(message) => Probe::Invalid { message },
                    },
                    AlertCheck::Script { command } => Probe::Script {
                        command: command.clone(),
                    },
                    AlertCheck::Metric { .. } => return None,
                };
                Some(CheckSpec {
                    name: a.qualified(&def.name),
                    interval_ms: ms(a.interval),
                    timeout_ms: ms(a.timeout),
                    probe,
                })
            })
            .collect()
    }

    /// True if the service has no config files.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Renders every file that applies to the context's `component` with `context`.
    pub fn render(&self, context: &Value) -> std::result::Result<Vec<FileSpec>, String> {
        let component = context["component"].as_str();
        self.files
            .iter()
            .filter(|(_, _, only)| {
                only.is_empty() || component.is_none_or(|c| only.iter().any(|o| o == c))
            })
            .map(|(name, path, _)| {
                self.registry
                    .render(name, context)
                    .map(|content| FileSpec {
                        path: path.clone(),
                        content,
                    })
                    .map_err(|e| format!("rendering config {name}: {}", strict_message(&e)))
            })
            .collect()
    }
}

/// A helper that writes its one parameter, as text (a string as it is, anything else as
/// JSON), through `quote`.
macro_rules! quoting_helper {
    ($(#[$doc:meta])* $name:ident, $quote:expr) => {
        $(#[$doc])*
        fn $name(
            h: &handlebars::Helper<'_>,
            _: &Handlebars<'_>,
            _: &handlebars::Context,
            _: &mut handlebars::RenderContext<'_, '_>,
            out: &mut dyn handlebars::Output,
        ) -> handlebars::HelperResult {
            let v = h
                .param(0)
                .ok_or_else(|| {
                    handlebars::RenderErrorReason::ParamNotFoundForIndex(stringify!($name), 0)
                })?
                .value();
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let quote: fn(&str) -> String = $quote;
            out.write(&quote(&text))?;
            Ok(())
        }
    };
}

quoting_helper!(
    /// `{{shell_quote x}}`: `x` as one single-quoted shell word ([`crate::shell::quote`]), for
    /// files that scripts source — no value can break out of it. Shell-format templates must
    /// use it for every value ([`crate::shell::check_template`]).
    shell_quote,
    |t| crate::shell::quote(t)
);

quoting_helper!(
    /// `{{yaml_quote x}}`: `x` as one single-quoted YAML scalar (`it's` → `'it''s'`). Config
    /// strings are single-line without control characters, so nothing can leave the quotes.
    yaml_quote,
    |t| format!("'{}'", t.replace('\'', "''"))
);

/// Handlebars' strict-mode error, with the variable's name said plainly.
fn strict_message(e: &handlebars::RenderError) -> String {
    match e.reason() {
        handlebars::RenderErrorReason::MissingVariable(Some(var)) => {
            let at = e
                .line_no
                .map(|l| format!(" (line {l})"))
                .unwrap_or_default();
            format!("the template uses variable '{var}', which has no value{at}")
        }
        _ => e.to_string(),
    }
}

/// The hash of rendered files.
pub fn files_hash(files: &[FileSpec]) -> String {
    let mut h = Sha256::new();
    hash_files(&mut h, files);
    hex::encode(&h.finalize()[..16])
}

fn hash_files(h: &mut Sha256, files: &[FileSpec]) {
    for f in files {
        h.update(f.path.as_bytes());
        h.update([0]);
        h.update(f.content.as_bytes());
        h.update([0]);
    }
}

/// What a unit's `configure` applied, as stored in `Unit::applied_hash`: its rendered files
/// and the property values its scripts see (its context's top-level properties, which scripts
/// may read without a template: a password, rules). Two config versions that give a unit the
/// same of both leave it as it is.
pub fn applied_hash(files: &[FileSpec], properties: &Map<String, Value>) -> String {
    let mut h = Sha256::new();
    hash_files(&mut h, files);
    for (k, v) in properties {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.to_string().as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..16])
}

/// One service instance with its definition and compiled templates.
#[derive(Debug)]
pub struct Service {
    /// The instance.
    pub instance: ServiceInstance,
    /// Its definition.
    pub def: Arc<ServiceDef>,
    /// Its templates.
    pub templates: Arc<Templates>,
}

/// A cluster as templates see it: services, units, hosts and relations, with what is needed to
/// build each unit's context and render its files.
#[derive(Debug)]
pub struct Topology {
    cluster: String,
    services: HashMap<ServiceId, Service>,
    /// Every unit, by id ascending.
    units: Vec<Unit>,
    hosts: HashMap<HostId, Host>,
    relations: Vec<Relation>,
    /// The cluster's changed intervals of alert checks (ms), by definition.
    check_intervals: HashMap<String, u64>,
}

impl Topology {
    /// Builds a topology from parts. Services whose stack can't be compiled are an error.
    pub fn new(
        cluster: &str,
        services: Vec<(ServiceInstance, Arc<ServiceDef>)>,
        mut units: Vec<Unit>,
        hosts: Vec<Host>,
        relations: Vec<Relation>,
    ) -> Result<Topology> {
        let mut by_id = HashMap::new();
        for (instance, def) in services {
            let templates = Templates::compile(&def).map_err(|message| Error::Template {
                name: def.name.clone(),
                message,
            })?;
            by_id.insert(
                instance.id,
                Service {
                    instance,
                    def,
                    templates: Arc::new(templates),
                },
            );
        }
        units.retain(|u| by_id.contains_key(&u.service));
        units.sort_by_key(|u| u.id);
        Ok(Topology {
            cluster: cluster.to_string(),
            services: by_id,
            units,
            hosts: hosts.into_iter().map(|h| (h.id, h)).collect(),
            relations,
            check_intervals: HashMap::new(),
        })
    }

    /// Loads a cluster's topology from the store (its hosts, services, units and relations)
    /// and the stacks.
    pub async fn load(
        store: &dyn TopologyStore,
        stacks: &dyn StackProvider,
        cluster: &Cluster,
    ) -> Result<Topology> {
        let instances = store.list_services(cluster.id).await?;
        let mut services = Vec::with_capacity(instances.len());
        for inst in instances {
            let stack = stacks.stack(&inst.stack, Some(&inst.stack_version)).await?;
            let def = stack.service(&inst.service)?.clone();
            services.push((inst, def));
        }
        let units = store.list_units(cluster.id).await?;
        let hosts = store.list_hosts(cluster.id).await?;
        let relations = store.list_relations(cluster.id).await?;
        let mut topo = Topology::new(&cluster.name, services, units, hosts, relations)?;
        for (name, _, settings, _, _) in store.alert_overrides(cluster.id).await? {
            let interval = serde_json::from_str::<crate::model::AlertOverride>(&settings)
                .ok()
                .and_then(|o| o.interval_ms);
            if let Some(ms) = interval {
                topo.check_intervals.insert(name, ms);
            }
        }
        Ok(topo)
    }

    /// The checks `unit`'s agent runs for its alert definitions, rendered with its `context`,
    /// at the intervals the cluster changed them to.
    pub fn checks(&self, unit: &Unit, context: &Value) -> Vec<CheckSpec> {
        let Some(svc) = self.services.get(&unit.service) else {
            return Vec::new();
        };
        let mut checks = svc.templates.checks(&svc.def, &unit.component, context);
        for c in &mut checks {
            if let Some(ms) = self.check_intervals.get(&c.name) {
                c.interval_ms = *ms;
            }
        }
        checks
    }

    /// Replaces a service's layers (to check a change before it is stored).
    pub fn set_configs(
        &mut self,
        id: ServiceId,
        configs: ServiceConfigs,
        overrides: HostOverrides,
    ) {
        if let Some(s) = self.services.get_mut(&id) {
            s.instance.configs = configs;
            s.instance.host_overrides = overrides;
        }
    }

    /// Adds units (to check them before they are stored); ids must be above every other.
    pub fn add_units(&mut self, units: Vec<Unit>) {
        self.units.extend(units);
        self.units.sort_by_key(|u| u.id);
    }

    /// A service instance of this topology.
    pub fn service(&self, id: ServiceId) -> Option<&Service> {
        self.services.get(&id)
    }

    /// A unit by id.
    pub fn unit(&self, id: crate::model::UnitId) -> Option<&Unit> {
        self.units
            .binary_search_by_key(&id, |u| u.id)
            .ok()
            .map(|i| &self.units[i])
    }

    /// Every unit, by id.
    pub fn units(&self) -> &[Unit] {
        &self.units
    }

    /// The relations.
    pub fn relations(&self) -> &[Relation] {
        &self.relations
    }

    /// A host.
    pub fn host(&self, id: HostId) -> Option<&Host> {
        self.hosts.get(&id)
    }

    /// The units of `service` that take part in `endpoint` (its components, or all).
    fn endpoint_units<'a>(
        &'a self,
        service: ServiceId,
        endpoint: Option<&'a Endpoint>,
    ) -> impl Iterator<Item = &'a Unit> + 'a {
        self.units.iter().filter(move |u| {
            u.service == service
                && endpoint
                    .is_none_or(|e| e.components.is_empty() || e.components.contains(&u.component))
        })
    }

    /// One entry of a `peers` or `relations` list.
    fn entry(&self, u: &Unit, index: usize, me: Option<&Unit>) -> Value {
        let svc = &self.services[&u.service];
        let host = self.hosts.get(&u.host);
        let host_name = host.map(|h| h.name.as_str()).unwrap_or_default();
        let configs = effective_values(
            &svc.def,
            &svc.instance.configs,
            &svc.instance.host_overrides,
            host_name,
            None,
            false,
        );
        serde_json::json!({
            "unit": u.id.0,
            "index": index,
            "self": me.is_some_and(|m| m.id == u.id),
            "service": svc.instance.name,
            "component": u.component,
            "host": host_name,
            "address": host.map(|h| h.address.as_str()).unwrap_or_default(),
            "configs": Value::Object(configs),
        })
    }

    /// The template context of `unit` (see docs/stacks.md, "What templates and scripts see").
    pub fn context(&self, unit: &Unit) -> std::result::Result<Value, String> {
        let svc = self
            .services
            .get(&unit.service)
            .ok_or_else(|| format!("service instance {} no longer exists", unit.service))?;
        let host = self
            .hosts
            .get(&unit.host)
            .ok_or_else(|| format!("host {} of unit {} no longer exists", unit.host, unit.id))?;
        let mut ctx = effective_values(
            &svc.def,
            &svc.instance.configs,
            &svc.instance.host_overrides,
            &host.name,
            Some(&unit.component),
            true,
        );
        let unit_rel = format!(
            "units/{}/{}/{}",
            self.cluster, svc.instance.name, unit.component
        );
        let unit_dir = match host.facts.as_ref().map(|f| f.agent_root.as_str()) {
            Some(root) if !root.is_empty() => format!("{}/{unit_rel}", root.trim_end_matches('/')),
            _ => unit_rel,
        };
        for (k, v) in [
            ("cluster", self.cluster.as_str()),
            ("service", svc.instance.name.as_str()),
            ("component", unit.component.as_str()),
            ("host", host.name.as_str()),
            ("address", host.address.as_str()),
            ("unit_dir", unit_dir.as_str()),
        ] {
            ctx.insert(k.into(), Value::String(v.into()));
        }
        let mut peers = Map::new();
        for ep in &svc.def.peers {
            let list: Vec<Value> = self
                .endpoint_units(unit.service, Some(ep))
                .enumerate()
                .map(|(i, u)| self.entry(u, i + 1, Some(unit)))
                .collect();
            peers.insert(ep.name.clone(), Value::Array(list));
        }
        ctx.insert("peers".into(), Value::Object(peers));
        let mut relations = Map::new();
        for (ep, requires) in svc
            .def
            .requires
            .iter()
            .map(|e| (e, true))
            .chain(svc.def.provides.iter().map(|e| (e, false)))
        {
            let mut others: Vec<&Unit> = Vec::new();
            for r in &self.relations {
                let (mine, my_ep, other, other_ep) = if requires {
                    (
                        r.requirer,
                        &r.requirer_endpoint,
                        r.provider,
                        &r.provider_endpoint,
                    )
                } else {
                    (
                        r.provider,
                        &r.provider_endpoint,
                        r.requirer,
                        &r.requirer_endpoint,
                    )
                };
                if mine != unit.service || my_ep != &ep.name {
                    continue;
                }
                let Some(o) = self.services.get(&other) else {
                    continue;
                };
                let other_def = if requires {
                    o.def.provides.iter().find(|e| &e.name == other_ep)
                } else {
                    o.def.requires.iter().find(|e| &e.name == other_ep)
                };
                others.extend(self.endpoint_units(other, other_def));
            }
            let list: Vec<Value> = others
                .into_iter()
                .enumerate()
                .map(|(i, u)| self.entry(u, i + 1, None))
                .collect();
            relations.insert(ep.name.clone(), Value::Array(list));
        }
        ctx.insert("relations".into(), Value::Object(relations));
        Ok(Value::Object(ctx))
    }

    /// The files `unit`'s `configure` would write now.
    pub fn render(&self, unit: &Unit) -> std::result::Result<Vec<FileSpec>, String> {
        let svc = self
            .services
            .get(&unit.service)
            .ok_or_else(|| format!("service instance {} no longer exists", unit.service))?;
        if svc.templates.is_empty() {
            return Ok(Vec::new());
        }
        svc.templates.render(&self.context(unit)?)
    }

    /// The [`applied_hash`] of what `unit`'s `configure` would apply now.
    pub fn applied_hash(&self, unit: &Unit) -> std::result::Result<String, String> {
        let svc = self
            .services
            .get(&unit.service)
            .ok_or_else(|| format!("service instance {} no longer exists", unit.service))?;
        let host = self
            .hosts
            .get(&unit.host)
            .map(|h| h.name.as_str())
            .unwrap_or_default();
        let properties = effective_values(
            &svc.def,
            &svc.instance.configs,
            &svc.instance.host_overrides,
            host,
            Some(&unit.component),
            true,
        );
        Ok(applied_hash(&self.render(unit)?, &properties))
    }

    /// Whether `unit` is stale, and why: what its `configure` would apply now (its files and
    /// the properties it sees, [`Topology::applied_hash`]) differs from what it applied — by a
    /// newer config version, or by relation data at the same version. A version that changes
    /// nothing the unit uses (another component's config) leaves it fresh. A unit never
    /// configured is not stale.
    pub fn staleness(&self, unit: &Unit) -> Staleness {
        let Some(svc) = self.services.get(&unit.service) else {
            return Staleness::Fresh;
        };
        let (Some(applied), Some(hash)) = (unit.applied_version, unit.applied_hash.as_deref())
        else {
            return Staleness::Fresh;
        };
        let desired = svc.instance.config_version;
        match self.applied_hash(unit) {
            Ok(now) if now == hash => Staleness::Fresh,
            Ok(_) if applied != desired => Staleness::Version { applied, desired },
            Ok(_) => Staleness::Relations,
            Err(e) => Staleness::Unrenderable(e),
        }
    }
}

/// Why a unit's files differ from what it should have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Staleness {
    /// Up to date (or never configured).
    Fresh,
    /// A newer config version was made since its last `configure`.
    Version {
        /// The version it applied.
        applied: u32,
        /// The desired version.
        desired: u32,
    },
    /// Same version, but what its templates see changed (relation data, peers, addresses).
    Relations,
    /// Its files can't be rendered now.
    Unrenderable(String),
}

impl Staleness {
    /// True unless fresh.
    pub fn is_stale(&self) -> bool {
        !matches!(self, Staleness::Fresh)
    }

    /// For operators: why a restart is required, or `None`.
    pub fn reason(&self) -> Option<String> {
        match self {
            Staleness::Fresh => None,
            Staleness::Version { applied, desired } => Some(format!(
                "restart required: config version {desired} is not applied (applied {applied})"
            )),
            Staleness::Relations => {
                Some("restart required: relation data changed since the last configure".to_string())
            }
            Staleness::Unrenderable(e) => Some(format!("configs cannot be rendered: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClusterId, HostFacts, HostState, RelationId, UnitId, UnitState};
    use crate::stack::manifest::load_service;

    /// Writes a service directory and loads it.
    fn service(dir: &std::path::Path, name: &str, toml: &str, template: &str) -> Arc<ServiceDef> {
        let d = dir.join(name);
        std::fs::create_dir_all(d.join("scripts")).unwrap();
        std::fs::create_dir_all(d.join("templates")).unwrap();
        std::fs::write(d.join("service.toml"), toml).unwrap();
        std::fs::write(d.join("templates/t.hbs"), template).unwrap();
        for comp in ["db_primary", "db_replica", "scraper"] {
            std::fs::write(d.join(format!("scripts/{comp}.sh")), "#!/bin/sh\n").unwrap();
        }
        Arc::new(load_service(&d).unwrap())
    }

    fn host(id: i64, name: &str, address: &str, root: &str) -> Host {
        Host {
            id: HostId(id),
            cluster: ClusterId(1),
            name: name.into(),
            address: address.into(),
            reported_address: None,
            state: HostState::Online,
            last_heartbeat: None,
            facts: Some(HostFacts {
                agent_root: root.into(),
                ..HostFacts::default()
            }),
            metrics: None,
        }
    }

    fn unit(id: i64, service: i64, component: &str, host: i64) -> Unit {
        Unit {
            id: UnitId(id),
            service: ServiceId(service),
            component: component.into(),
            host: HostId(host),
            state: UnitState::Started,
            health: None,
            applied_version: None,
            applied_hash: None,
        }
    }

    fn instance(id: i64, name: &str, def: &ServiceDef) -> ServiceInstance {
        ServiceInstance {
            id: ServiceId(id),
            cluster: ClusterId(1),
            name: name.into(),
            stack: "s".into(),
            stack_version: "1".into(),
            service: def.name.clone(),
            created_at: 0,
            configs: ServiceConfigs::new(),
            host_overrides: HostOverrides::new(),
            config_version: 1,
        }
    }

    const DB: &str = r#"
[service]
name = "db"
version = "1"
[[component]]
name = "db_primary"
category = "server"
cardinality = "1"
[[component]]
name = "db_replica"
category = "server"
cardinality = "0+"
[[config]]
name = "db.conf"
template = "templates/t.hbs"
path = "conf/db.conf"
  [[config.property]]
  name = "port"
  type = "port"
  default = 5000
  [[config.property]]
  name = "password"
  type = "string"
  default = "hunter2"
  secret = true
[[peers]]
name = "replication"
interface = "db-replication"
[[provides]]
name = "metrics"
interface = "scrape"
components = ["db_primary"]
"#;

    const SCRAPER: &str = r#"
[service]
name = "scraper"
version = "1"
[[component]]
name = "scraper"
category = "server"
cardinality = "1"
[[config]]
name = "scrape.yml"
template = "templates/t.hbs"
path = "scrape.yml"
[[requires]]
name = "targets"
interface = "scrape"
"#;

    fn world(related: bool) -> (tempfile::TempDir, Topology) {
        let tmp = tempfile::tempdir().unwrap();
        let db = service(
            tmp.path(),
            "db",
            DB,
            "port={{port}} pw={{password}} dir={{unit_dir}}\n\
             {{#each peers.replication}}{{this.index}}:{{this.component}}@{{this.address}}:{{this.configs.port}}{{#if this.self}}*{{/if}};{{/each}}",
        );
        let scraper = service(
            tmp.path(),
            "scraper",
            SCRAPER,
            "{{#each relations.targets}}{{this.address}}:{{this.configs.port}} {{/each}}",
        );
        let mut dbi = instance(1, "pg", &db);
        dbi.host_overrides = [(
            "h2".to_string(),
            [(
                "db.conf".to_string(),
                [("port".to_string(), Value::from(5002))].into(),
            )]
            .into(),
        )]
        .into();
        let relations = if related {
            vec![Relation {
                id: RelationId(1),
                cluster: ClusterId(1),
                requirer: ServiceId(2),
                requirer_endpoint: "targets".into(),
                provider: ServiceId(1),
                provider_endpoint: "metrics".into(),
                interface: "scrape".into(),
                auto_reconfigure: true,
                created_at: 0,
            }]
        } else {
            Vec::new()
        };
        let topo = Topology::new(
            "c",
            vec![(dbi, db), (instance(2, "prom", &scraper), scraper)],
            vec![
                unit(12, 1, "db_replica", 2),
                unit(11, 1, "db_primary", 1),
                unit(13, 2, "scraper", 1),
            ],
            vec![
                host(1, "h1", "127.0.0.2", "/r1"),
                host(2, "h2", "127.0.0.3", ""),
            ],
            relations,
        )
        .unwrap();
        (tmp, topo)
    }

    #[test]
    fn peers_see_every_unit_with_host_layered_values_and_themselves_marked() {
        let (_tmp, topo) = world(false);
        let files = topo.render(topo.unit(UnitId(11)).unwrap()).unwrap();
        assert_eq!(files[0].path, "conf/db.conf");
        assert_eq!(
            files[0].content,
            "port=5000 pw=hunter2 dir=/r1/units/c/pg/db_primary\n\
             1:db_primary@127.0.0.2:5000*;2:db_replica@127.0.0.3:5002;"
        );
        // h2's agent said no root: the unit dir is relative; its own port is the override.
        let files = topo.render(topo.unit(UnitId(12)).unwrap()).unwrap();
        assert!(
            files[0]
                .content
                .starts_with("port=5002 pw=hunter2 dir=units/c/pg/db_replica\n"),
            "{}",
            files[0].content
        );
    }

    #[test]
    fn a_requirer_sees_the_providers_units_without_their_secrets() {
        let (_tmp, topo) = world(true);
        let u = topo.unit(UnitId(13)).unwrap();
        let files = topo.render(u).unwrap();
        // Only the endpoint's component (db_primary) takes part.
        assert_eq!(files[0].content, "127.0.0.2:5000 ");
        let ctx = topo.context(u).unwrap();
        let entry = &ctx["relations"]["targets"][0];
        assert_eq!(entry["service"], "pg");
        assert_eq!(entry["self"], false);
        assert!(entry["configs"].get("password").is_none(), "{entry}");
        // The provider sees the requirer on its provides endpoint.
        let ctx = topo.context(topo.unit(UnitId(11)).unwrap()).unwrap();
        assert_eq!(ctx["relations"]["metrics"][0]["service"], "prom");
        // Unrelated, the list is empty but present (templates can iterate it).
        let (_tmp2, alone) = world(false);
        let files = alone.render(alone.unit(UnitId(13)).unwrap()).unwrap();
        assert_eq!(files[0].content, "");
    }

    #[test]
    fn staleness_follows_what_the_unit_applied() {
        let (_tmp, mut topo) = world(true);
        let u = topo.unit(UnitId(13)).unwrap().clone();
        assert_eq!(topo.staleness(&u), Staleness::Fresh, "never configured");
        let hash = topo.applied_hash(&u).unwrap();
        let applied = Unit {
            applied_version: Some(1),
            applied_hash: Some(hash),
            ..u.clone()
        };
        assert_eq!(topo.staleness(&applied), Staleness::Fresh);
        // An older version that gave the unit the same files and properties: nothing to apply.
        let unchanged = Unit {
            applied_version: Some(0),
            ..applied.clone()
        };
        assert_eq!(topo.staleness(&unchanged), Staleness::Fresh);
        let older = Unit {
            applied_version: Some(0),
            applied_hash: Some("what version 0 gave it".into()),
            ..applied.clone()
        };
        assert_eq!(
            topo.staleness(&older),
            Staleness::Version {
                applied: 0,
                desired: 1
            }
        );
        assert!(
            topo.staleness(&older)
                .reason()
                .unwrap()
                .contains("version 1")
        );
        // A new provider unit changes what the requirer renders: stale by relations.
        topo.add_units(vec![unit(14, 1, "db_primary", 2)]);
        assert_eq!(topo.staleness(&applied), Staleness::Relations);
    }

    #[test]
    fn yaml_quote_makes_one_scalar_of_anything() {
        let tmp = tempfile::tempdir().unwrap();
        let db = service(tmp.path(), "db", DB, "x: {{yaml_quote v}}");
        let t = Templates::compile(&db).unwrap();
        let files = t
            .render(&serde_json::json!({"v": "it's', evil: 'x"}))
            .unwrap();
        assert_eq!(files[0].content, "x: 'it''s'', evil: ''x'");
    }

    #[test]
    fn shell_quote_makes_one_word_of_anything() {
        let tmp = tempfile::tempdir().unwrap();
        let db = service(
            tmp.path(),
            "db",
            DB,
            "X={{shell_quote v}} P={{shell_quote n}}",
        );
        let t = Templates::compile(&db).unwrap();
        let files = t
            .render(&serde_json::json!({"v": "a'b $(rm -rf /) `x`", "n": 5}))
            .unwrap();
        assert_eq!(files[0].content, r#"X='a'\''b $(rm -rf /) `x`' P='5'"#);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{}; printf %s \"$X\"", files[0].content))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a'b $(rm -rf /) `x`");
    }

    #[test]
    fn a_missing_variable_is_named_and_secrets_are_redacted() {
        let tmp = tempfile::tempdir().unwrap();
        let db = service(tmp.path(), "db", DB, "x={{nosuch}}");
        let t = Templates::compile(&db).unwrap();
        let err = t.render(&serde_json::json!({})).unwrap_err();
        assert!(err.contains("'nosuch'"), "{err}");
        let configs: ServiceConfigs = [(
            "db.conf".to_string(),
            [
                ("password".to_string(), Value::from("s3cret")),
                ("port".to_string(), Value::from(1)),
            ]
            .into(),
        )]
        .into();
        let shown = redact(&db, &configs);
        assert_eq!(shown["db.conf"]["password"], REDACTED);
        assert_eq!(shown["db.conf"]["port"], 1);
    }
}
