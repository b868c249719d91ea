//! The assistant's tools, as one registry the chat and the MCP server both offer: each has a
//! name, a description for the model, its parameters (as a JSON Schema), the least role that
//! may call it, and whether it would change something. Read-only tools answer with a view
//! (run by `Manager::run_tool` as the caller); a *mutating* tool never acts: its call becomes
//! a [`SuggestedAction`] ([`proposal`]) that waits for its user's confirmation.

use crate::auth::Role;
use crate::model::{SuggestedAction, Target};
use crate::{Error, Result};
use serde_json::{Map, Value, json};

/// A parameter's JSON type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string.
    Str,
    /// An integer.
    Int,
    /// A boolean.
    Bool,
    /// A JSON object.
    Object,
    /// Any JSON value.
    Any,
}

/// One parameter of a tool.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Its name.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// What it is, for the model.
    pub description: &'static str,
    /// Whether it must be given.
    pub required: bool,
}

/// One tool.
#[derive(Debug, Clone, Copy)]
pub struct ToolSpec {
    /// Its name.
    pub name: &'static str,
    /// What it does, for the model.
    pub description: &'static str,
    /// The least role that may call it.
    pub role: Role,
    /// Whether it would change something (and so only proposes).
    pub mutating: bool,
    /// Its parameters.
    pub params: &'static [Param],
}

const fn p(name: &'static str, kind: Kind, description: &'static str) -> Param {
    Param {
        name,
        kind,
        description,
        required: true,
    }
}

const fn opt(name: &'static str, kind: Kind, description: &'static str) -> Param {
    Param {
        name,
        kind,
        description,
        required: false,
    }
}

const CLUSTER: Param = p("cluster", Kind::Str, "The cluster's name.");
const SERVICE: Param = p("service", Kind::Str, "The service instance's name.");
const JOB: Param = p("job", Kind::Int, "The job's id.");

const fn read(name: &'static str, description: &'static str, params: &'static [Param]) -> ToolSpec {
    ToolSpec {
        name,
        description,
        role: Role::Viewer,
        mutating: false,
        params,
    }
}

const fn propose(
    name: &'static str,
    description: &'static str,
    params: &'static [Param],
) -> ToolSpec {
    ToolSpec {
        name,
        description,
        role: Role::Operator,
        mutating: true,
        params,
    }
}

/// Every tool.
pub const TOOLS: &[ToolSpec] = &[
    read("list_clusters", "The clusters this server manages.", &[]),
    read(
        "cluster_overview",
        "A cluster at a glance: hosts by state, services with their units' states and health, \
         firing alerts, unfinished and recently failed jobs.",
        &[CLUSTER],
    ),
    read(
        "list_hosts",
        "A cluster's hosts: state, last heartbeat, facts, the latest CPU, memory and disk \
         figures, and their units.",
        &[CLUSTER],
    ),
    read(
        "list_services",
        "A cluster's service instances with their stack, config version and units (state, \
         health, staleness).",
        &[CLUSTER],
    ),
    read(
        "list_jobs",
        "A cluster's latest jobs, newest first.",
        &[
            CLUSTER,
            opt("limit", Kind::Int, "How many (1-50, default 10)."),
        ],
    ),
    read(
        "get_job",
        "One job with its stages and tasks (state, host, exit code, message).",
        &[JOB],
    ),
    read(
        "task_log",
        "The last lines of a task's log.",
        &[
            JOB,
            p("task", Kind::Int, "The task's id."),
            opt(
                "lines",
                Kind::Int,
                "How many of the last lines (1-200, default 40).",
            ),
        ],
    ),
    read(
        "config_versions",
        "A service instance's config versions (secret values masked).",
        &[CLUSTER, SERVICE],
    ),
    read(
        "config_diff",
        "What changed between two config versions of a service instance.",
        &[
            CLUSTER,
            SERVICE,
            p("from", Kind::Int, "The older version."),
            p("to", Kind::Int, "The newer version."),
        ],
    ),
    read(
        "list_relations",
        "A cluster's relations between service instances (requirer, provider, interface).",
        &[CLUSTER],
    ),
    read(
        "get_advice",
        "The advisor's findings (diagnosed failures, lost hosts, quorums at risk, stale and \
         unhealthy units, full disks …) with evidence and suggested requests.",
        &[
            CLUSTER,
            opt("host", Kind::Str, "Only about this host."),
            opt("service", Kind::Str, "Only about this service instance."),
            opt("job", Kind::Int, "Only about this job."),
        ],
    ),
    read(
        "list_alerts",
        "A cluster's alerts (by default only firing ones).",
        &[
            CLUSTER,
            opt("all", Kind::Bool, "Include alerts that are OK."),
        ],
    ),
    ToolSpec {
        name: "audit_log",
        description: "The latest audit events (who did what): admins only.",
        role: Role::Admin,
        mutating: false,
        params: &[opt("limit", Kind::Int, "How many (1-100, default 20).")],
    },
    propose(
        "propose_job",
        "Propose a job (install, configure, start, stop, restart, check, deploy or a stack's \
         command) on a cluster, a service, a component, hosts or units. Nothing runs until the \
         user confirms.",
        &[
            CLUSTER,
            p("command", Kind::Str, "The command."),
            p(
                "target",
                Kind::Any,
                "\"cluster\", {\"service\": name}, {\"component\": {\"service\", \
                 \"component\"}}, {\"hosts\": [names]} or {\"units\": [ids]}.",
            ),
            opt("reason", Kind::Str, "Why, for the job's history."),
        ],
    ),
    propose(
        "propose_retry_job",
        "Propose retrying a failed job's failed tasks. Nothing runs until the user confirms.",
        &[JOB],
    ),
    propose(
        "propose_config_change",
        "Propose changing a service instance's config values (a merge patch: config type → \
         property → value, null removes). Nothing changes until the user confirms.",
        &[
            CLUSTER,
            SERVICE,
            p(
                "configs",
                Kind::Object,
                "Config type → property → new value or null.",
            ),
            p("message", Kind::Str, "Why, for the version's history."),
        ],
    ),
    propose(
        "propose_rollback",
        "Propose rolling a service instance's configs back to an earlier version. Nothing \
         changes until the user confirms.",
        &[
            CLUSTER,
            SERVICE,
            p("to", Kind::Int, "The version to go back to."),
        ],
    ),
    propose(
        "propose_restart_stale",
        "Propose restarting the units running older configs (one at a time). Nothing runs \
         until the user confirms.",
        &[
            CLUSTER,
            opt("service", Kind::Str, "Only this service instance's units."),
        ],
    ),
];

impl ToolSpec {
    /// Its parameters as a JSON Schema object.
    pub fn schema(&self) -> Value {
        let mut props = Map::new();
        for p in self.params {
            let mut s = match p.kind {
                Kind::Str => json!({"type": "string"}),
                Kind::Int => json!({"type": "integer"}),
                Kind::Bool => json!({"type": "boolean"}),
                Kind::Object => json!({"type": "object"}),
                Kind::Any => json!({}),
            };
            s["description"] = json!(p.description);
            props.insert(p.name.to_string(), s);
        }
        let required: Vec<&str> = self
            .params
            .iter()
            .filter(|p| p.required)
            .map(|p| p.name)
            .collect();
        json!({
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": false,
        })
    }

    /// Its entry in a chat-completions request's `tools`.
    pub fn openai(&self) -> Value {
        json!({
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.schema(),
            },
        })
    }
}

/// The tool named `name`.
pub fn tool(name: &str) -> Result<&'static ToolSpec> {
    TOOLS.iter().find(|t| t.name == name).ok_or_else(|| {
        Error::Invalid(format!(
            "there is no tool '{}'; the tools are {}",
            crate::assistant::provider::clip(name, 64),
            TOOLS.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
        ))
    })
}

/// The tools a role may call, in registry order.
pub fn offered(role: Role) -> Vec<&'static ToolSpec> {
    TOOLS.iter().filter(|t| role.includes(t.role)).collect()
}

/// A tool call's arguments, checked against its spec: an object with no unknown parameter,
/// every required one given, each of its type.
#[derive(Debug, Clone)]
pub struct Args<'a> {
    tool: &'static ToolSpec,
    values: &'a Map<String, Value>,
}

impl<'a> Args<'a> {
    /// Checks `value` as the arguments of `tool`.
    pub fn check(tool: &'static ToolSpec, value: &'a Value) -> Result<Args<'a>> {
        let values = value.as_object().ok_or_else(|| {
            Error::Invalid(format!(
                "{}: the arguments must be a JSON object",
                tool.name
            ))
        })?;
        for k in values.keys() {
            if !tool.params.iter().any(|p| p.name == k) {
                return Err(Error::Invalid(format!(
                    "{}: unknown parameter '{}'",
                    tool.name,
                    crate::assistant::provider::clip(k, 64)
                )));
            }
        }
        for p in tool.params {
            let v = values.get(p.name).filter(|v| !v.is_null());
            let ok = match (v, p.kind) {
                (None, _) => !p.required,
                (Some(v), Kind::Str) => v.is_string(),
                (Some(v), Kind::Int) => v.is_i64(),
                (Some(v), Kind::Bool) => v.is_boolean(),
                (Some(v), Kind::Object) => v.is_object(),
                (Some(_), Kind::Any) => true,
            };
            if !ok {
                return Err(Error::Invalid(format!(
                    "{}: parameter '{}' {}",
                    tool.name,
                    p.name,
                    if v.is_none() {
                        "is required".to_string()
                    } else {
                        format!("must be of type {:?}", p.kind).to_lowercase()
                    }
                )));
            }
        }
        Ok(Args { tool, values })
    }

    /// A string parameter, if given.
    pub fn opt_str(&self, name: &str) -> Option<&'a str> {
        self.values.get(name).and_then(Value::as_str)
    }

    /// A required string parameter (checked by [`Args::check`]).
    pub fn str(&self, name: &str) -> Result<&'a str> {
        self.opt_str(name)
            .ok_or_else(|| Error::Invalid(format!("{}: '{name}' is required", self.tool.name)))
    }

    /// A name parameter (a cluster, service or host), checked by the name rule.
    pub fn name(&self, name: &str) -> Result<&'a str> {
        let v = self.str(name)?;
        crate::name::check_name(name, v)?;
        Ok(v)
    }

    /// An optional name parameter.
    pub fn opt_name(&self, name: &str) -> Result<Option<&'a str>> {
        self.opt_str(name)
            .map(|v| crate::name::check_name(name, v).map(|_| v))
            .transpose()
    }

    /// An integer parameter, if given, within `range`.
    pub fn opt_int(&self, name: &str, range: std::ops::RangeInclusive<i64>) -> Result<Option<i64>> {
        match self.values.get(name).and_then(Value::as_i64) {
            None => Ok(None),
            Some(v) if range.contains(&v) => Ok(Some(v)),
            Some(v) => Err(Error::Invalid(format!(
                "{}: '{name}' is {v}; give {} to {}",
                self.tool.name,
                range.start(),
                range.end()
            ))),
        }
    }

    /// A required integer parameter within `range`.
    pub fn int(&self, name: &str, range: std::ops::RangeInclusive<i64>) -> Result<i64> {
        self.opt_int(name, range)?
            .ok_or_else(|| Error::Invalid(format!("{}: '{name}' is required", self.tool.name)))
    }

    /// A boolean parameter (false if not given).
    pub fn flag(&self, name: &str) -> bool {
        self.values.get(name).and_then(Value::as_bool) == Some(true)
    }

    /// A parameter's raw value.
    pub fn value(&self, name: &str) -> Option<&'a Value> {
        self.values.get(name)
    }
}

/// The request a mutating tool's call proposes: built from checked arguments only (names by
/// the name rule, ids as integers), so the model cannot steer it to another path.
pub fn proposal(args: &Args<'_>) -> Result<SuggestedAction> {
    let ids = 1..=i64::MAX;
    let action = |title: String, method: &str, path: String, body: Option<Value>| SuggestedAction {
        title,
        method: method.to_string(),
        path,
        body,
    };
    Ok(match args.tool.name {
        "propose_job" => {
            let cluster = args.name("cluster")?;
            let command = args.str("command")?;
            if !crate::name::is_identifier(command) {
                return Err(Error::Invalid(format!(
                    "propose_job: '{}' is not a command name",
                    crate::assistant::provider::clip(command, 64)
                )));
            }
            let target: Target =
                serde_json::from_value(args.value("target").cloned().unwrap_or(Value::Null))
                    .map_err(|e| Error::Invalid(format!("propose_job: target: {e}")))?;
            let mut body = json!({"command": command, "target": target});
            if let Some(reason) = args.opt_str("reason") {
                crate::name::check_note("reason", "the job's reason", reason, 200)?;
                body["options"] = json!({"reason": reason});
            }
            action(
                format!("{command} {} in cluster {cluster}", describe(&target)),
                "POST",
                format!("/clusters/{cluster}/jobs"),
                Some(body),
            )
        }
        "propose_retry_job" => {
            let job = args.int("job", ids)?;
            action(
                format!("retry job {job}"),
                "POST",
                format!("/jobs/{job}/retry"),
                None,
            )
        }
        "propose_config_change" => {
            let cluster = args.name("cluster")?;
            let service = args.name("service")?;
            let message = args.str("message")?;
            crate::name::check_note("message", "the change's message", message, 500)?;
            let configs = args.value("configs").cloned().unwrap_or_default();
            let changed: Vec<String> = configs
                .as_object()
                .into_iter()
                .flat_map(|o| {
                    o.iter().flat_map(|(ty, props)| {
                        props
                            .as_object()
                            .into_iter()
                            .flat_map(move |p| p.keys().map(move |k| format!("{ty}.{k}")))
                    })
                })
                .collect();
            action(
                format!("change {} of {service}", changed.join(", ")),
                "PATCH",
                format!("/clusters/{cluster}/services/{service}/configs"),
                Some(json!({"configs": configs, "message": message})),
            )
        }
        "propose_rollback" => {
            let cluster = args.name("cluster")?;
            let service = args.name("service")?;
            let to = args.int("to", 1..=i64::from(u32::MAX))?;
            action(
                format!("roll {service}'s configs back to version {to}"),
                "POST",
                format!("/clusters/{cluster}/services/{service}/configs/rollback"),
                Some(json!({"to": to})),
            )
        }
        "propose_restart_stale" => {
            let cluster = args.name("cluster")?;
            let service = args.opt_name("service")?;
            action(
                match service {
                    Some(s) => format!("restart {s}'s stale units, one at a time"),
                    None => format!("restart the stale units of cluster {cluster}, one at a time"),
                },
                "POST",
                format!("/clusters/{cluster}/restart-stale"),
                Some(json!({"service": service})),
            )
        }
        other => {
            return Err(Error::Invalid(format!("{other} does not propose anything")));
        }
    })
}

fn describe(target: &Target) -> String {
    match target {
        Target::Cluster => "every service".into(),
        Target::Service(s) => format!("service {s}"),
        Target::Component { service, component } => format!("{service}/{component}"),
        Target::Hosts(h) => format!("the units on {}", h.join(", ")),
        Target::Units(u) => format!(
            "units {}",
            u.iter()
                .map(|u| u.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_a_schema_and_a_role() {
        let mut names: Vec<_> = TOOLS.iter().map(|t| t.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TOOLS.len(), "tool names are unique");
        for t in TOOLS {
            let s = t.schema();
            assert_eq!(s["type"], "object");
            assert_eq!(t.mutating, t.name.starts_with("propose_"), "{}", t.name);
        }
        let viewer: Vec<_> = offered(Role::Viewer).iter().map(|t| t.name).collect();
        assert!(viewer.contains(&"list_hosts"));
        assert!(!viewer.contains(&"audit_log"));
        assert!(!viewer.iter().any(|n| n.starts_with("propose_")));
        assert_eq!(offered(Role::Admin).len(), TOOLS.len());
    }

    #[test]
    fn arguments_are_checked() {
        let t = tool("config_diff").unwrap();
        let ok = json!({"cluster": "c", "service": "zk", "from": 1, "to": 2});
        Args::check(t, &ok).unwrap();
        for bad in [
            json!([]),
            json!({"cluster": "c", "service": "zk", "from": 1}),
            json!({"cluster": "c", "service": "zk", "from": "1", "to": 2}),
            json!({"cluster": "c", "service": "zk", "from": 1, "to": 2, "x": 1}),
        ] {
            assert!(Args::check(t, &bad).is_err(), "{bad}");
        }
        assert!(tool("rm_rf").is_err());
    }

    #[test]
    fn proposals_are_built_from_checked_names_only() {
        let t = tool("propose_job").unwrap();
        let v = json!({"cluster": "c1", "command": "restart", "target": {"service": "zk"}});
        let a = proposal(&Args::check(t, &v).unwrap()).unwrap();
        assert_eq!(
            (a.method.as_str(), a.path.as_str()),
            ("POST", "/clusters/c1/jobs")
        );
        assert_eq!(a.body.unwrap()["target"], json!({"service": "zk"}));
        for bad in [
            json!({"cluster": "../users", "command": "restart", "target": "cluster"}),
            json!({"cluster": "c1", "command": "rm -rf /", "target": "cluster"}),
            json!({"cluster": "c1", "command": "start", "target": {"nope": 1}}),
        ] {
            assert!(proposal(&Args::check(t, &bad).unwrap()).is_err(), "{bad}");
        }
        let t = tool("propose_rollback").unwrap();
        let v = json!({"cluster": "c1", "service": "zk", "to": 2});
        let a = proposal(&Args::check(t, &v).unwrap()).unwrap();
        assert_eq!(a.path, "/clusters/c1/services/zk/configs/rollback");
    }
}
