//! Cluster specs: a whole cluster declared in one TOML file (hosts, service instances with
//! their placement, configs and host overrides, relations), parsed and checked whole against
//! the stacks and the cluster's hosts, every problem reported with its line.
//!
//! This is the first part of clusters as code (issue 18): [`parse`] and [`Spec::check`]. The
//! plan and apply steps build on them.

use crate::model::{HostOverrides, ServiceConfigs};
use crate::stack::{ServiceDef, StackProvider};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A whole cluster, as the file declares it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
#[serde(deny_unknown_fields)]
pub struct SpecService {
    /// The stack (`bigtop`).
    pub stack: String,
    /// The stack version; the newest if left out.
    #[serde(default)]
    pub version: Option<String>,
    /// The service definition (`zookeeper`).
    pub service: String,
    /// The hosts of each component's units.
    #[serde(default)]
    pub placement: BTreeMap<String, Vec<String>>,
    /// Config values over the stack's defaults: config type → property → value.
    #[serde(default)]
    pub configs: ServiceConfigs,
    /// Host overrides: host → config type → property → value.
    #[serde(default)]
    pub host_overrides: HostOverrides,
}

/// A relation of a spec: `SERVICE` or `SERVICE:ENDPOINT` on each side.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecRelation {
    /// The side that requires.
    pub requirer: String,
    /// The side that provides.
    pub provider: String,
}

/// One thing wrong with a spec: where (its line, 1-based, and the dotted path of the value)
/// and what to fix.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    let doc = toml::de::DeTable::parse(source).map_err(|e| {
        vec![Problem {
            line: e.span().map_or(0, |s| line_of(source, s.start)),
            path: "-".into(),
            message: format!("not valid TOML: {}", e.message().trim_end()),
        }]
    })?;
    let spec: Spec = toml::from_str(source).map_err(|e| {
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
    })?;
    Ok(Parsed {
        spec,
        source: source.to_string(),
    })
}

/// The 1-based line of a byte offset.
fn line_of(source: &str, offset: usize) -> usize {
    let offset = offset.min(source.len());
    source.get(..offset).unwrap_or(source).matches('\n').count() + 1
}

impl Parsed {
    /// The line of the value at `path` (keys from the top), or of its nearest parent the file
    /// has; 0 if none.
    fn line(&self, path: &[&str]) -> usize {
        let Ok(doc) = toml::de::DeTable::parse(&self.source) else {
            return 0;
        };
        let mut table = doc.get_ref();
        let mut line = 0;
        for key in path {
            let Some((k, v)) = table.iter().find(|(k, _)| k.get_ref() == key) else {
                break;
            };
            line = line_of(&self.source, k.span().start);
            match v.get_ref().as_table() {
                Some(t) => table = t,
                None => break,
            }
        }
        line
    }

    fn problem(&self, path: &[&str], message: impl Into<String>) -> Problem {
        Problem {
            line: self.line(path),
            path: path.join("."),
            message: message.into(),
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
    ) -> Result<(), Vec<Problem>> {
        let spec = &self.spec;
        let mut problems = Vec::new();
        if let Err(e) = crate::name::check_name("cluster", &spec.cluster) {
            problems.push(self.problem(&["cluster"], e.to_string()));
        }
        let known = |h: &str| hosts.contains(h) || spec.hosts.contains_key(h);
        for (h, address) in &spec.hosts {
            if let Err(e) = crate::address::check_address(address) {
                problems.push(self.problem(&["hosts", h], e));
            }
        }
        let mut defs: BTreeMap<&str, Arc<ServiceDef>> = BTreeMap::new();
        for (name, s) in &spec.services {
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
                for h in on.iter().filter(|h| !known(h)) {
                    problems.push(self.problem(
                        &at(name, &["placement", component]),
                        format!("host '{h}' is neither the cluster's nor in the spec's [hosts]"),
                    ));
                }
            }
            for c in &def.components {
                let n = s.placement.get(&c.name).map_or(0, Vec::len);
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
            if let Err(e) = crate::stack::check_configs(&def, &s.configs) {
                problems.push(self.problem(&at(name, &["configs"]), e.to_string()));
            }
            for (h, layer) in &s.host_overrides {
                if !known(h) {
                    problems.push(self.problem(
                        &at(name, &["host_overrides", h]),
                        format!("host '{h}' is neither the cluster's nor in the spec's [hosts]"),
                    ));
                }
                if let Err(e) = crate::stack::check_configs(&def, layer) {
                    problems.push(self.problem(&at(name, &["host_overrides", h]), e.to_string()));
                }
            }
            if let Err(e) =
                crate::stack::software::check_layers(&def.software, &s.configs, &s.host_overrides)
            {
                problems.push(self.problem(&at(name, &["configs", "software"]), e.to_string()));
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
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
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
    let fits = req
        .requires
        .iter()
        .filter(|e| req_ep.as_ref().is_none_or(|n| &e.name == n))
        .any(|a| {
            prov.provides
                .iter()
                .filter(|e| prov_ep.as_ref().is_none_or(|n| &e.name == n))
                .any(|b| a.interface == b.interface)
        });
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
        has(8, "services.zk.configs", "tickTime");
        has(11, "services.nope.stack", "nostack");
        has(
            17,
            "services.prom.placement.prometheus_server",
            "cardinality",
        );
        has(19, "relations[0]", "interfaces don't match");
        assert_eq!(problems.len(), 6, "{text:#?}");
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
