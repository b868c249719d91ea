//! A running cluster written as a spec ([`export`]): applying it to an empty server rebuilds
//! the same cluster — hosts, services with their stack versions, placement, config layers and
//! relations. Secret values are never written: each becomes an environment reference
//! (`{ env = "BIGMGR_ZK_ZOO_CFG_PASSWORD" }`) the exporter lists.

use super::secrets::Reference;
use super::{Current, CurrentService};
use crate::model::ServiceConfigs;
use crate::stack::ServiceDef;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

/// An exported spec.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Exported {
    /// The spec, as TOML.
    pub spec: String,
    /// The references standing for secret values (`env:NAME`): set them where the spec is
    /// applied.
    pub references: Vec<String>,
}

/// Writes cluster `cluster` as a spec: `addresses` are its hosts' addresses by name, `current`
/// what it holds, and `defs` each service instance's definition (to know its secrets).
pub fn export(
    cluster: &str,
    addresses: &BTreeMap<String, String>,
    current: &Current,
    defs: &BTreeMap<String, Arc<ServiceDef>>,
) -> Exported {
    let mut out = String::new();
    let mut refs = BTreeSet::new();
    let _ = writeln!(out, "cluster = {}", string(cluster));
    if !addresses.is_empty() {
        out.push_str("\n[hosts]\n");
        for (h, a) in addresses {
            let _ = writeln!(out, "{} = {}", key(h), string(a));
        }
    }
    let mut services: Vec<&CurrentService> = current.services.iter().collect();
    services.sort_by(|a, b| a.name.cmp(&b.name));
    for s in services {
        let def = defs.get(&s.name).map(Arc::as_ref);
        let _ = write!(out, "\n[services.{}]\n", key(&s.name));
        let _ = writeln!(out, "stack = {}", string(&s.stack));
        let _ = writeln!(out, "version = {}", string(&s.stack_version));
        let _ = writeln!(out, "service = {}", string(&s.service));
        let mut placement: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (c, h) in &s.units {
            placement.entry(c).or_default().push(h);
        }
        let entries: Vec<String> = placement
            .iter()
            .map(|(c, hosts)| {
                let hosts: Vec<String> = hosts.iter().map(|h| string(h)).collect();
                format!("{} = [{}]", key(c), hosts.join(", "))
            })
            .collect();
        let _ = writeln!(out, "placement = {{ {} }}", entries.join(", "));
        if s.healing != crate::model::HealingPolicy::default() {
            let _ = write!(
                out,
                "\n[services.{}.policy]\nhealing = {}\n",
                key(&s.name),
                value(&super::healing_json(&s.healing))
            );
        }
        let secret_name = |host: Option<&str>, ty: &str, p: &str| {
            let parts = [Some(s.name.as_str()), host, Some(ty), Some(p)];
            let mut name = String::from("BIGMGR");
            for part in parts.into_iter().flatten() {
                name.push('_');
                name.extend(part.chars().map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                }));
            }
            name
        };
        let mut layer = |header: String, configs: &ServiceConfigs, host: Option<&str>| {
            for (ty, props) in configs {
                if props.is_empty() {
                    continue;
                }
                let _ = write!(out, "\n[{header}.{}]\n", key(ty));
                for (p, v) in props {
                    let v = if def.is_some_and(|d| is_secret(d, ty, p)) {
                        let r = Reference::Env(secret_name(host, ty, p));
                        refs.insert(r.key());
                        r.to_value()
                    } else {
                        v.clone()
                    };
                    let _ = writeln!(out, "{} = {}", key(p), value(&v));
                }
            }
        };
        layer(
            format!("services.{}.configs", key(&s.name)),
            &s.configs,
            None,
        );
        for (h, configs) in &s.host_overrides {
            layer(
                format!("services.{}.host_overrides.{}", key(&s.name), key(h)),
                configs,
                Some(h),
            );
        }
    }
    let mut relations = current.relations.clone();
    relations.sort_by(|a, b| {
        (
            &a.requirer,
            &a.requirer_endpoint,
            &a.provider,
            &a.provider_endpoint,
        )
            .cmp(&(
                &b.requirer,
                &b.requirer_endpoint,
                &b.provider,
                &b.provider_endpoint,
            ))
    });
    for r in relations {
        out.push_str("\n[[relations]]\n");
        let _ = writeln!(
            out,
            "requirer = {}",
            string(&format!("{}:{}", r.requirer, r.requirer_endpoint))
        );
        let _ = writeln!(
            out,
            "provider = {}",
            string(&format!("{}:{}", r.provider, r.provider_endpoint))
        );
    }
    Exported {
        spec: out,
        references: refs.into_iter().collect(),
    }
}

/// Whether property `p` of config type `ty` is a secret of `def`.
fn is_secret(def: &ServiceDef, ty: &str, p: &str) -> bool {
    def.configs
        .iter()
        .find(|c| c.name == ty)
        .and_then(|c| c.properties.iter().find(|x| x.name == p))
        .is_some_and(|x| x.secret)
}

/// A TOML key: bare if it can be, else a quoted string.
fn key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare { k.to_string() } else { string(k) }
}

/// A TOML basic string, every character that needs it escaped.
fn string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A config value in TOML's inline form (a table as an inline table, `null` as an empty
/// string: TOML has no null and the store keeps none).
fn value(v: &Value) -> String {
    match v {
        Value::Null => string(""),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(value).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{} = {}", key(k), value(v)))
                .collect();
            format!("{{ {} }}", items.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::Placement;
    use crate::spec::{PlannedRelation, parse};

    #[test]
    fn an_export_parses_back_to_the_same_cluster_with_secrets_as_references() {
        let zk = CurrentService {
            name: "zk".into(),
            stack: "bigtop".into(),
            stack_version: "3.3.0".into(),
            service: "zookeeper".into(),
            configs: [(
                "zoo.cfg".to_string(),
                [
                    ("tickTime".to_string(), Value::from(2000)),
                    ("odd key\"".to_string(), Value::from("a \"quoted\"\nline")),
                    ("ratio".to_string(), Value::from(0.5)),
                    ("on".to_string(), Value::from(true)),
                ]
                .into(),
            )]
            .into(),
            host_overrides: [(
                "h3".to_string(),
                [(
                    "zookeeper-env".to_string(),
                    [("heapSize".to_string(), Value::from(512))].into(),
                )]
                .into(),
            )]
            .into(),
            units: [
                ("zookeeper_server".to_string(), "h1".to_string()),
                ("zookeeper_server".to_string(), "h3".to_string()),
            ]
            .into(),
            healing: crate::model::HealingPolicy {
                restart: true,
                grace_ms: 60_000,
                max_per_hour: 5,
            },
        };
        let current = Current {
            hosts: ["h1".to_string(), "h3".to_string()].into(),
            services: vec![zk],
            relations: vec![PlannedRelation {
                requirer: "spark".into(),
                requirer_endpoint: "zookeeper".into(),
                provider: "zk".into(),
                provider_endpoint: "client".into(),
            }],
            candidates: Vec::new(),
        };
        let addresses = BTreeMap::from([
            ("h1".to_string(), "10.0.0.1".to_string()),
            ("h3".to_string(), "10.0.0.3".to_string()),
        ]);
        let out = export("prod", &addresses, &current, &BTreeMap::new());
        let parsed = parse(&out.spec).unwrap_or_else(|p| panic!("{p:?}\n{}", out.spec));
        let spec = parsed.spec;
        assert_eq!(spec.cluster, "prod");
        assert_eq!(spec.hosts, addresses);
        let s = &spec.services["zk"];
        assert_eq!(s.version.as_deref(), Some("3.3.0"));
        assert_eq!(
            s.placement["zookeeper_server"],
            Placement::Hosts(vec!["h1".into(), "h3".into()])
        );
        assert_eq!(s.configs, current.services[0].configs);
        let healing = s.policy.healing.as_ref().expect("a healing policy");
        assert_eq!(
            (
                healing.restart,
                healing.grace.as_deref(),
                healing.max_per_hour
            ),
            (true, Some("1m"), Some(5))
        );
        assert_eq!(s.host_overrides, current.services[0].host_overrides);
        assert_eq!(spec.relations.len(), 1);
        assert_eq!(spec.relations[0].requirer, "spark:zookeeper");
        assert_eq!(spec.relations[0].provider, "zk:client");
        assert!(out.references.is_empty());
    }
}
