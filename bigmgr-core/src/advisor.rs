//! The advisor: reads what is known of a cluster — hosts, units and their health, failed tasks
//! and their logs, staleness, relations, the hosts' averaged metrics — and returns
//! **findings**: a severity, a plain title, the evidence (ids, names, the log lines that
//! matter) and suggested actions, each a concrete REST request the operator may run after
//! confirming. It needs no model; [`advise`] is a pure function of a [`ClusterFacts`].
//!
//! Log diagnoses come from built-in patterns ([`BUILT_IN`]) and from the patterns a stack's
//! services declare (`[[advice]]` in `service.toml`), so a stack author teaches the advisor
//! about their service. Patterns are case-insensitive substrings, never expressions: a log
//! line cannot make the advisor work hard.

use crate::model::*;
use crate::stack::{AlertAdvice, ServiceDef};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    /// Something is down or about to lose data or quorum.
    Critical,
    /// Something is wrong or will be soon.
    Warning,
    /// Worth knowing.
    Info,
}

pub use crate::model::SuggestedAction;

/// One thing the advisor found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Finding {
    /// The rule that found it (`task.port_in_use`, `host.lost`, `zookeeper.quorum`, …).
    pub rule: String,
    /// How much it matters.
    pub severity: Severity,
    /// What is wrong, in plain words.
    pub title: String,
    /// What shows it: names, ids, the log lines that matter.
    pub evidence: Vec<String>,
    /// What to look at or do, in plain words.
    pub hint: String,
    /// The host it is about, if any.
    pub host: Option<String>,
    /// The service instance it is about, if any.
    pub service: Option<String>,
    /// The job it is about, if any.
    pub job: Option<i64>,
    /// The task it is about, if any.
    pub task: Option<i64>,
    /// Requests that act on it (run only after the operator confirms).
    pub actions: Vec<SuggestedAction>,
}

/// A failed task as the advisor sees it.
#[derive(Debug, Clone)]
pub struct FailedTask {
    /// The job.
    pub job: Job,
    /// The task (its latest attempt).
    pub task: Task,
    /// The stage's service instance.
    pub service: ServiceId,
    /// The stage's component.
    pub component: String,
    /// The stage's command.
    pub command: String,
    /// The last lines of its log (stdout and stderr, in order).
    pub log: Vec<String>,
}

/// What the advisor reads of one cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterFacts {
    /// The cluster's name.
    pub cluster: String,
    /// Its hosts.
    pub hosts: Vec<Host>,
    /// Its service instances with their definitions.
    pub services: Vec<(ServiceInstance, Arc<ServiceDef>)>,
    /// Its units.
    pub units: Vec<Unit>,
    /// Stale units and why.
    pub stale: Vec<(UnitId, String)>,
    /// Its relations.
    pub relations: Vec<Relation>,
    /// The hosts' metric samples of the last minutes.
    pub samples: Vec<(HostId, HostMetrics)>,
    /// Failed tasks of recent jobs.
    pub failed: Vec<FailedTask>,
    /// Its firing alerts (those not OK).
    pub alerts: Vec<Alert>,
}

impl ClusterFacts {
    /// The name of host `id` (its id if the cluster has no such host).
    pub fn host_name(&self, id: HostId) -> String {
        host_name(&self.hosts, id)
    }

    /// The service instance `id` with its definition, if the cluster has it.
    pub fn service(&self, id: ServiceId) -> Option<&(ServiceInstance, Arc<ServiceDef>)> {
        self.services.iter().find(|(s, _)| s.id == id)
    }

    /// The name of service instance `id` (its id if the cluster has no such service).
    pub fn service_name(&self, id: ServiceId) -> String {
        self.service(id)
            .map_or_else(|| id.to_string(), |(s, _)| s.name.clone())
    }

    /// Whether host `id` is LOST.
    fn host_lost(&self, id: HostId) -> bool {
        self.hosts
            .iter()
            .any(|h| h.id == id && h.state == HostState::Lost)
    }
}

/// A log diagnosis: a rule, the substrings (any, case-insensitive) that show it, a title and
/// what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPattern {
    /// The rule's name.
    pub rule: String,
    /// Substrings of a log line, any of which shows it (lower case).
    pub any: Vec<String>,
    /// The finding's title.
    pub title: String,
    /// What to look at or do.
    pub hint: String,
}

/// The built-in log diagnoses, tried in order (the first that matches a task's log wins).
pub const BUILT_IN: &[(&str, &[&str], &str, &str)] = &[
    (
        "task.port_in_use",
        &[
            "address already in use",
            "eaddrinuse",
            "is already in use by another process",
            "port is already allocated",
            "bindexception",
        ],
        "a port it needs is already taken",
        "Another process holds the port (the log line names it where it can). Stop that \
         process, or give the service another port in its configs; then retry the job.",
    ),
    (
        "task.permission_denied",
        &["permission denied", "eacces", "operation not permitted"],
        "it was denied permission",
        "A file, directory or port needs rights the agent's user lacks: check owners and modes \
         of the paths in the log line, then retry the job.",
    ),
    (
        "task.missing_command",
        &[
            "command not found",
            ": not found",
            "no such file or directory",
            "unable to locate package",
            "has no installation candidate",
            "is not installed",
        ],
        "a command or package it needs is missing",
        "Install what the log line names (run the service's install command, or add the \
         package to the host), then retry the job.",
    ),
    (
        "task.out_of_memory",
        &[
            "out of memory",
            "outofmemoryerror",
            "cannot allocate memory",
            "oom-kill",
            "killed by signal sigkill",
            "killed process",
        ],
        "it ran out of memory or was killed",
        "The host ran short of memory, or the process was killed: lower its heap or memory \
         settings, or free memory on the host, then retry the job.",
    ),
    (
        "task.config_syntax",
        &[
            "syntax error",
            "parse error",
            "failed to parse",
            "invalid configuration",
            "yaml:",
            "unexpected token",
        ],
        "a config file it read is not valid",
        "A config value broke the file's syntax: compare the latest config version with the \
         one before, fix or roll back the value, then retry the job.",
    ),
    (
        "task.connection_refused",
        &[
            "connection refused",
            "econnrefused",
            "could not connect",
            "no route to host",
        ],
        "a service it depends on refused the connection",
        "What it connects to is not running or not listening where expected: start the \
         service it depends on (see the relations), then retry the job.",
    ),
    (
        "task.timeout",
        &["timed out", "timeout"],
        "it did not finish in time",
        "It waited for something that did not come (a daemon, a peer, a package mirror): look \
         at the last log lines and the service it waited for, then retry the job.",
    ),
];

/// The built-in patterns as [`LogPattern`]s.
pub fn built_in_patterns() -> Vec<LogPattern> {
    BUILT_IN
        .iter()
        .map(|(rule, any, title, hint)| LogPattern {
            rule: (*rule).to_string(),
            any: any.iter().map(|s| (*s).to_string()).collect(),
            title: (*title).to_string(),
            hint: (*hint).to_string(),
        })
        .collect()
}

/// The first pattern of `patterns` a line of `log` shows, with that line (the last such line
/// of the log, which is nearest the failure).
pub fn diagnose<'p>(
    log: &[String],
    patterns: &'p [LogPattern],
) -> Option<(&'p LogPattern, String)> {
    patterns.iter().find_map(|p| {
        log.iter()
            .rev()
            .find(|line| {
                let lower = line.to_lowercase();
                p.any.iter().any(|s| lower.contains(s.as_str()))
            })
            .map(|line| (p, line.clone()))
    })
}

/// Everything the advisor finds in a cluster, most severe first.
pub fn advise(facts: &ClusterFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    let host_name = |id: HostId| facts.host_name(id);
    let service_name = |id: ServiceId| facts.service_name(id);
    let c = &facts.cluster;
    failed_tasks(facts, &mut out);
    // Lost hosts and what they take down.
    for h in facts.hosts.iter().filter(|h| h.state == HostState::Lost) {
        let units: Vec<String> = facts
            .units
            .iter()
            .filter(|u| u.host == h.id)
            .map(|u| format!("{} of {}", u.component, service_name(u.service)))
            .collect();
        let mut evidence = vec![match h.last_heartbeat {
            Some(t) => format!("last heartbeat at {}", crate::duration::format_utc_ms(t)),
            None => "no heartbeat ever".to_string(),
        }];
        if !units.is_empty() {
            evidence.push(format!("units on it: {}", units.join(", ")));
        }
        out.push(Finding {
            rule: "host.lost".into(),
            severity: Severity::Critical,
            title: format!("host {} is lost: its agent sends no heartbeat", h.name),
            evidence,
            hint: format!(
                "Start bigmgr-agent on {} ({}) again, or check the network between it and the \
                 server; its units are unreachable until then.",
                h.name, h.address
            ),
            host: Some(h.name.clone()),
            service: None,
            job: None,
            task: None,
            actions: Vec::new(),
        });
    }
    quorums(facts, &mut out);
    replicas(facts, &mut out);
    // Unhealthy units.
    for u in &facts.units {
        let Some(health) = u.health.as_ref().filter(|h| !h.healthy) else {
            continue;
        };
        if u.state != UnitState::Started {
            continue;
        }
        let host = facts.hosts.iter().find(|h| h.id == u.host);
        if host.is_some_and(|h| h.state == HostState::Lost) {
            continue; // said by host.lost
        }
        out.push(Finding {
            rule: "unit.unhealthy".into(),
            severity: Severity::Critical,
            title: format!(
                "{} of {} on {} should run but its status check fails",
                u.component,
                service_name(u.service),
                host_name(u.host)
            ),
            evidence: vec![format!("status: {}", health.message)],
            hint: "Restart the unit; if it fails again, its task log says why.".into(),
            host: Some(host_name(u.host)),
            service: Some(service_name(u.service)),
            job: None,
            task: None,
            actions: vec![SuggestedAction {
                title: format!("restart {} on {}", u.component, host_name(u.host)),
                method: "POST".into(),
                path: format!("/clusters/{c}/jobs"),
                body: Some(json!({"command": "restart", "target": {"units": [u.id.0]}})),
            }],
        });
    }
    // Stale units, per service.
    let mut stale: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, why) in &facts.stale {
        if let Some(u) = facts.units.iter().find(|u| u.id == *id) {
            stale
                .entry(service_name(u.service))
                .or_default()
                .push(format!("{} on {}: {why}", u.component, host_name(u.host)));
        }
    }
    for (service, units) in stale {
        out.push(Finding {
            rule: "units.stale".into(),
            severity: Severity::Warning,
            title: format!(
                "{} unit(s) of {service} run older configs than the service's",
                units.len()
            ),
            evidence: units,
            hint: "Apply the pending changes: a rolling reconfigure of the started units.".into(),
            host: None,
            service: Some(service.clone()),
            job: None,
            task: None,
            actions: vec![SuggestedAction {
                title: format!("apply {service}'s pending config changes"),
                method: "POST".into(),
                path: format!("/clusters/{c}/restart-stale"),
                body: Some(json!({"service": service})),
            }],
        });
    }
    // Relations whose provider has no started unit.
    for r in &facts.relations {
        let started = facts
            .units
            .iter()
            .any(|u| u.service == r.provider && u.state == UnitState::Started);
        let has_units = facts.units.iter().any(|u| u.service == r.provider);
        if started || !has_units {
            continue;
        }
        let provider = service_name(r.provider);
        out.push(Finding {
            rule: "relation.provider_down".into(),
            severity: Severity::Warning,
            title: format!(
                "{} relies on {provider} ({}), which has no started unit",
                service_name(r.requirer),
                r.interface
            ),
            evidence: vec![format!(
                "relation {}: {} → {provider}",
                r.id,
                service_name(r.requirer)
            )],
            hint: format!("Start {provider}."),
            host: None,
            service: Some(provider.clone()),
            job: None,
            task: None,
            actions: vec![SuggestedAction {
                title: format!("start {provider}"),
                method: "POST".into(),
                path: format!("/clusters/{c}/jobs"),
                body: Some(json!({"command": "start", "target": {"service": provider}})),
            }],
        });
    }
    host_metrics(facts, &mut out);
    out.sort_by_key(|f| f.severity);
    out
}

fn failed_tasks(facts: &ClusterFacts, out: &mut Vec<Finding>) {
    let host_name = |id: HostId| facts.host_name(id);
    let service_name = |id: ServiceId| facts.service_name(id);
    for f in &facts.failed {
        let def = facts
            .services
            .iter()
            .find(|(s, _)| s.id == f.service)
            .map(|(_, d)| d);
        let mut patterns: Vec<LogPattern> = def
            .map(|d| {
                d.advice
                    .iter()
                    .map(|a| LogPattern {
                        rule: format!("{}.{}", d.name, a.name),
                        any: a.any.clone(),
                        title: a.title.clone(),
                        hint: a.hint.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        patterns.extend(built_in_patterns());
        let what = format!(
            "{} of {} on {} (job {}, task {})",
            f.command,
            service_name(f.service),
            host_name(f.task.host),
            f.job.id,
            f.task.id
        );
        let (rule, title, hint, mut evidence) = match diagnose(&f.log, &patterns) {
            Some((p, line)) => (
                p.rule.clone(),
                format!("{what} failed: {}", p.title),
                p.hint.clone(),
                vec![line],
            ),
            None if f.task.state == TaskState::TimedOut => (
                "task.timeout".to_string(),
                format!("{what} failed: it did not finish in time"),
                "Look at the last log lines for what it waited for, then retry the job."
                    .to_string(),
                Vec::new(),
            ),
            None => (
                "task.failed".to_string(),
                format!("{what} failed"),
                "The last log lines say what went wrong; fix it, then retry the job.".to_string(),
                f.log.iter().rev().take(3).rev().cloned().collect(),
            ),
        };
        if let Some(m) = &f.task.message {
            evidence.push(format!("result: {m}"));
        }
        if let Some(code) = f.task.exit_code {
            evidence.push(format!("exit code {code}"));
        }
        // A refused connection: name the services this one depends on.
        if rule == "task.connection_refused" {
            let providers: Vec<String> = facts
                .relations
                .iter()
                .filter(|r| r.requirer == f.service)
                .map(|r| {
                    let started = facts
                        .units
                        .iter()
                        .filter(|u| u.service == r.provider && u.state == UnitState::Started)
                        .count();
                    format!(
                        "depends on {} ({}), {started} started unit(s)",
                        service_name(r.provider),
                        r.interface
                    )
                })
                .collect();
            evidence.extend(providers);
        }
        out.push(Finding {
            rule,
            severity: Severity::Critical,
            title,
            evidence,
            hint,
            host: Some(host_name(f.task.host)),
            service: Some(service_name(f.service)),
            job: Some(f.job.id.0),
            task: Some(f.task.id.0),
            actions: vec![SuggestedAction {
                title: format!("retry job {} once it is fixed", f.job.id),
                method: "POST".into(),
                path: format!("/jobs/{}/retry", f.job.id),
                body: None,
            }],
        });
    }
}

/// Quorum services (ZooKeeper, etcd): fewer than a majority of servers healthy is CRITICAL,
/// exactly a majority (one failure from losing it) a WARNING.
fn quorums(facts: &ClusterFacts, out: &mut Vec<Finding>) {
    let host_name = |id: HostId| facts.host_name(id);
    for (s, def) in &facts.services {
        let component = match def.name.as_str() {
            "zookeeper" => "zookeeper_server",
            "etcd" => "etcd_server",
            _ => continue,
        };
        let members: Vec<&Unit> = facts
            .units
            .iter()
            .filter(|u| u.service == s.id && u.component == component)
            .collect();
        let n = members.len();
        if n < 2 {
            continue;
        }
        let lost_hosts: Vec<HostId> = facts
            .hosts
            .iter()
            .filter(|h| h.state == HostState::Lost)
            .map(|h| h.id)
            .collect();
        let (up, down): (Vec<&&Unit>, Vec<&&Unit>) = members.iter().partition(|u| {
            u.state == UnitState::Started
                && !lost_hosts.contains(&u.host)
                && u.health.as_ref().is_none_or(|h| h.healthy)
        });
        let majority = n / 2 + 1;
        let severity = if up.len() < majority {
            Severity::Critical
        } else if up.len() == majority && !down.is_empty() {
            Severity::Warning
        } else {
            continue;
        };
        let title = if severity == Severity::Critical {
            format!(
                "{} has lost its quorum: {} of {n} servers up, {majority} needed",
                s.name,
                up.len()
            )
        } else {
            format!(
                "{} is one failure from losing its quorum: {} of {n} servers up",
                s.name,
                up.len()
            )
        };
        out.push(Finding {
            rule: format!("{}.quorum", def.name),
            severity,
            title,
            evidence: down
                .iter()
                .map(|u| {
                    let why = if lost_hosts.contains(&u.host) {
                        "its host is lost".to_string()
                    } else if u.state != UnitState::Started {
                        format!("it is {}", u.state)
                    } else {
                        u.health
                            .as_ref()
                            .map_or_else(String::new, |h| format!("status: {}", h.message))
                    };
                    format!("{} on {}: {why}", u.component, host_name(u.host))
                })
                .collect(),
            hint: "Bring the down servers back (start their agents or units) before anything \
                   else stops."
                .into(),
            host: None,
            service: Some(s.name.clone()),
            job: None,
            task: None,
            actions: vec![SuggestedAction {
                title: format!("start {}'s servers", s.name),
                method: "POST".into(),
                path: format!("/clusters/{}/jobs", facts.cluster),
                body: Some(json!({"command": "start", "target": {"component":
                    {"service": s.name, "component": component}}})),
            }],
        });
    }
}

/// Firing alerts whose definition names `replica.not_replicating` (`advise` on a stack's
/// `[[alert]]`): a replica that says it does not replicate, with the primary it should follow
/// and, when that primary is down, the job that starts it. A replica that is itself down or on
/// a lost host is left to `unit.unhealthy` and `host.lost`.
fn replicas(facts: &ClusterFacts, out: &mut Vec<Finding>) {
    let c = &facts.cluster;
    for a in &facts.alerts {
        let level = match a.state {
            AlertState::Critical => Severity::Critical,
            AlertState::Warning => Severity::Warning,
            _ => continue,
        };
        let (Some(sid), Some(uid)) = (a.subject.service, a.subject.unit) else {
            continue;
        };
        let Some((service, def)) = facts.service(sid) else {
            continue;
        };
        let advise = def
            .alerts
            .iter()
            .find(|d| d.qualified(&def.name) == a.definition)
            .and_then(|d| d.advise.as_ref());
        let Some(advice @ AlertAdvice::ReplicaNotReplicating { primary }) = advise else {
            continue;
        };
        let Some(replica) = facts.units.iter().find(|u| u.id == uid) else {
            continue;
        };
        if facts.host_lost(replica.host) || replica.health.as_ref().is_some_and(|h| !h.healthy) {
            continue; // said by host.lost or unit.unhealthy
        }
        let host = facts.host_name(replica.host);
        let primaries: Vec<&Unit> = facts
            .units
            .iter()
            .filter(|u| u.service == sid && &u.component == primary)
            .collect();
        let down = |u: &Unit| {
            if facts.host_lost(u.host) {
                Some("its host is lost".to_string())
            } else if u.state != UnitState::Started {
                Some(format!("it is {}", u.state))
            } else {
                u.health
                    .as_ref()
                    .filter(|h| !h.healthy)
                    .map(|h| format!("its status fails: {}", h.message))
            }
        };
        let mut evidence = vec![
            format!(
                "replica: {} on {host} (unit {})",
                replica.component, replica.id
            ),
            format!(
                "{} {} since {}: {}",
                a.definition,
                a.state,
                crate::duration::format_utc_ms(a.since),
                a.text
            ),
        ];
        for p in &primaries {
            evidence.push(format!(
                "primary it points at: {} on {} (unit {}), {}",
                p.component,
                facts.host_name(p.host),
                p.id,
                down(p).unwrap_or_else(|| "started".to_string())
            ));
        }
        if primaries.is_empty() {
            evidence.push(format!("{} has no {primary} unit", service.name));
        }
        let stopped: Vec<&&Unit> = primaries
            .iter()
            .filter(|p| down(p).is_some() && !facts.host_lost(p.host))
            .collect();
        let lost: Vec<String> = primaries
            .iter()
            .filter(|p| facts.host_lost(p.host))
            .map(|p| facts.host_name(p.host))
            .collect();
        let primary_at = primaries
            .iter()
            .map(|p| format!("{} on {}", p.component, facts.host_name(p.host)))
            .collect::<Vec<_>>()
            .join(", ");
        let (hint, actions) = if !stopped.is_empty() {
            let names = stopped
                .iter()
                .map(|p| facts.host_name(p.host))
                .collect::<Vec<_>>()
                .join(", ");
            (
                format!(
                    "Its primary ({primary_at}) is down: start it; the replica reconnects by \
                     itself."
                ),
                vec![SuggestedAction {
                    title: format!("start {primary} of {} on {names}", service.name),
                    method: "POST".into(),
                    path: format!("/clusters/{c}/jobs"),
                    body: Some(json!({"command": "start", "target": {"units":
                        stopped.iter().map(|p| p.id.0).collect::<Vec<_>>()}})),
                }],
            )
        } else if !lost.is_empty() {
            (
                format!(
                    "Its primary's host ({}) is lost: start bigmgr-agent there again, or check \
                     the network; the replica reconnects once the primary answers.",
                    lost.join(", ")
                ),
                Vec::new(),
            )
        } else if primaries.is_empty() {
            (
                format!("Add a {primary} unit to {}.", service.name),
                Vec::new(),
            )
        } else {
            (
                format!(
                    "Its primary ({primary_at}) runs, so the link fails for another reason: the \
                     alert's text is the replica's own replication status (credentials, \
                     network, a replication error). Fix that, then restart the replica."
                ),
                vec![SuggestedAction {
                    title: format!("restart {} on {host}", replica.component),
                    method: "POST".into(),
                    path: format!("/clusters/{c}/jobs"),
                    body: Some(json!({"command": "restart", "target": {"units": [replica.id.0]}})),
                }],
            )
        };
        out.push(Finding {
            rule: advice.rule().into(),
            severity: level,
            title: format!(
                "{} of {} on {host} is not replicating from its primary{}",
                replica.component,
                service.name,
                if primary_at.is_empty() {
                    String::new()
                } else {
                    format!(" ({primary_at})")
                }
            ),
            evidence,
            hint,
            host: Some(host),
            service: Some(service.name.clone()),
            job: None,
            task: None,
            actions,
        });
    }
}

/// Disks nearly full and CPUs saturated, from the averages of the hosts' recent samples.
fn host_metrics(facts: &ClusterFacts, out: &mut Vec<Finding>) {
    let host_name = |id: HostId| facts.host_name(id);
    let mut by_host: HashMap<HostId, Vec<&HostMetrics>> = HashMap::new();
    for (h, m) in &facts.samples {
        by_host.entry(*h).or_default().push(m);
    }
    let mut hosts: Vec<_> = by_host.into_iter().collect();
    hosts.sort_by_key(|(h, _)| *h);
    for (h, samples) in hosts {
        #[allow(clippy::cast_precision_loss)]
        let avg = |f: &dyn Fn(&HostMetrics) -> f64| {
            samples.iter().map(|m| f(m)).sum::<f64>() / samples.len() as f64
        };
        let cpu = avg(&|m| crate::stack::Metric::CpuPercent.of(m));
        let disk = avg(&|m| crate::stack::Metric::DiskPercent.of(m));
        let name = host_name(h);
        if disk >= 90.0 {
            out.push(Finding {
                rule: "host.disk_full".into(),
                severity: if disk >= 97.0 {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                title: format!("the disk of {name} is {disk:.0} % full"),
                evidence: vec![format!(
                    "average of {} heartbeat sample(s): {disk:.1} % used",
                    samples.len()
                )],
                hint: "Free space under the agent's root (old logs, data of removed units) or \
                       grow the filesystem before services fail to write."
                    .into(),
                host: Some(name.clone()),
                service: None,
                job: None,
                task: None,
                actions: Vec::new(),
            });
        }
        if cpu >= 90.0 {
            out.push(Finding {
                rule: "host.cpu_saturated".into(),
                severity: Severity::Warning,
                title: format!("the CPUs of {name} are saturated: {cpu:.0} % on average"),
                evidence: vec![format!(
                    "average of {} heartbeat sample(s): {cpu:.1} % CPU",
                    samples.len()
                )],
                hint: "Something on the host uses every core: find it, or move units away.".into(),
                host: Some(name),
                service: None,
                job: None,
                task: None,
                actions: Vec::new(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::{host, instance, started_unit as unit};

    fn def(name: &str) -> Arc<ServiceDef> {
        crate::testing::service_def(name, vec![], vec![])
    }

    fn service(id: i64, name: &str) -> ServiceInstance {
        instance(id, name, name)
    }

    fn rules(findings: &[Finding]) -> Vec<&str> {
        findings.iter().map(|f| f.rule.as_str()).collect()
    }

    #[test]
    fn log_lines_are_diagnosed_by_the_first_pattern_that_matches_the_latest_line() {
        let patterns = built_in_patterns();
        let log = |lines: &[&str]| lines.iter().map(|l| (*l).to_string()).collect::<Vec<_>>();
        let cases = [
            (
                "zk[h1]: cannot start: 127.0.0.2:2181 is already in use by another process: pid 7",
                "task.port_in_use",
            ),
            (
                "run.sh: 3: no-such-tool: not found: command not found",
                "task.missing_command",
            ),
            (
                "mkdir: cannot create directory '/x': Permission denied",
                "task.permission_denied",
            ),
            (
                "java.lang.OutOfMemoryError: Java heap space",
                "task.out_of_memory",
            ),
            (
                "yaml: line 3: mapping values are not allowed",
                "task.config_syntax",
            ),
            (
                "redis-cli: Could not connect to Redis: Connection refused",
                "task.connection_refused",
            ),
            ("waited 90 s: timed out", "task.timeout"),
        ];
        for (line, rule) in cases {
            let (p, found) = diagnose(&log(&["starting", line, "bye"]), &patterns)
                .unwrap_or_else(|| panic!("no diagnosis of {line}"));
            assert_eq!((p.rule.as_str(), found.as_str()), (rule, line));
        }
        assert!(diagnose(&log(&["all fine", "exit 1"]), &patterns).is_none());
    }

    #[test]
    fn lost_hosts_quorums_unhealthy_stale_units_and_idle_providers_are_found() {
        let facts = ClusterFacts {
            cluster: "c".into(),
            hosts: vec![
                host(1, HostState::Online),
                host(2, HostState::Lost),
                host(3, HostState::Online),
            ],
            services: vec![
                (service(1, "zk"), def("zookeeper")),
                (service(2, "kafka"), def("kafka")),
            ],
            units: vec![
                unit(1, 1, "zookeeper_server", 1, true),
                unit(2, 1, "zookeeper_server", 2, true),
                unit(3, 1, "zookeeper_server", 3, false),
                Unit {
                    state: UnitState::Stopped,
                    ..unit(4, 2, "kafka_broker", 1, true)
                },
            ],
            stale: vec![(
                UnitId(1),
                "restart required: config version 2 is not applied".into(),
            )],
            relations: vec![Relation {
                id: RelationId(1),
                cluster: ClusterId(1),
                requirer: ServiceId(1),
                requirer_endpoint: "x".into(),
                provider: ServiceId(2),
                provider_endpoint: "y".into(),
                interface: "kafka".into(),
                auto_reconfigure: true,
                created_at: 0,
            }],
            samples: vec![(
                HostId(3),
                HostMetrics {
                    disk_total_bytes: 100,
                    disk_free_bytes: 2,
                    cpu_percent: 95.0,
                    ..HostMetrics::default()
                },
            )],
            failed: vec![],
            alerts: vec![],
        };
        let found = advise(&facts);
        let got = rules(&found);
        for want in [
            "host.lost",
            "zookeeper.quorum",
            "unit.unhealthy",
            "units.stale",
            "relation.provider_down",
            "host.disk_full",
            "host.cpu_saturated",
        ] {
            assert!(got.contains(&want), "{want} in {got:?}");
        }
        let quorum = found
            .iter()
            .find(|f| f.rule == "zookeeper.quorum")
            .expect("quorum");
        assert_eq!(quorum.severity, Severity::Critical, "1 of 3 up");
        assert!(
            quorum
                .evidence
                .iter()
                .any(|e| e.contains("h2: its host is lost")),
            "{quorum:?}"
        );
        let lost = found.iter().find(|f| f.rule == "host.lost").expect("lost");
        assert!(
            lost.evidence
                .iter()
                .any(|e| e.contains("zookeeper_server of zk")),
            "{lost:?}"
        );
        let stale = found
            .iter()
            .find(|f| f.rule == "units.stale")
            .expect("stale");
        assert_eq!(stale.actions[0].path, "/clusters/c/restart-stale");
        assert!(
            found.windows(2).all(|w| w[0].severity <= w[1].severity),
            "most severe first"
        );
        // Two of three up: one failure away.
        let mut two = facts.clone();
        two.hosts[1].state = HostState::Online;
        let found = advise(&two);
        let quorum = found
            .iter()
            .find(|f| f.rule == "zookeeper.quorum")
            .expect("quorum");
        assert_eq!(quorum.severity, Severity::Warning);
    }

    #[test]
    fn a_firing_replication_alert_names_the_replica_and_its_primary_and_starts_a_stopped_one() {
        use crate::stack::{AlertCheck, AlertDef};
        use std::time::Duration;
        let replication = AlertDef {
            name: "replication".into(),
            description: String::new(),
            component: Some("redis_replica".into()),
            interval: Duration::from_secs(10),
            hold: Duration::ZERO,
            timeout: Duration::from_secs(5),
            check: AlertCheck::Script {
                command: "replication".into(),
            },
            advise: Some(AlertAdvice::ReplicaNotReplicating {
                primary: "redis_primary".into(),
            }),
        };
        let alert = |definition: &str, state: AlertState| Alert {
            id: AlertId(1),
            definition: definition.into(),
            subject: AlertSubject {
                cluster: ClusterId(1),
                host: Some(HostId(2)),
                service: Some(ServiceId(1)),
                unit: Some(UnitId(2)),
            },
            state,
            text: "not replicating: master_link_status:down from primary 127.0.0.2:6379".into(),
            since: 0,
            checked_at: 0,
        };
        let facts = ClusterFacts {
            cluster: "c".into(),
            hosts: vec![host(1, HostState::Online), host(2, HostState::Online)],
            services: vec![(
                service(1, "cache"),
                crate::testing::service_def("redis", vec![], vec![replication]),
            )],
            units: vec![
                Unit {
                    state: UnitState::Stopped,
                    ..unit(1, 1, "redis_primary", 1, true)
                },
                unit(2, 1, "redis_replica", 2, true),
            ],
            alerts: vec![alert("redis.replication", AlertState::Critical)],
            ..ClusterFacts::default()
        };
        let found = advise(&facts);
        assert_eq!(rules(&found), ["replica.not_replicating"], "{found:#?}");
        let f = &found[0];
        assert_eq!(
            (f.severity, f.host.as_deref(), f.service.as_deref()),
            (Severity::Critical, Some("h2"), Some("cache"))
        );
        let evidence = f.evidence.join("\n");
        for want in [
            "replica: redis_replica on h2 (unit 2)",
            "master_link_status:down",
            "primary it points at: redis_primary on h1 (unit 1), it is STOPPED",
        ] {
            assert!(evidence.contains(want), "{want} in {evidence}");
        }
        assert_eq!(
            f.actions[0].body,
            Some(json!({"command": "start", "target": {"units": [1]}}))
        );
        // The primary runs: restart the replica instead.
        let mut running = facts.clone();
        running.units[0].state = UnitState::Started;
        let found = advise(&running);
        assert_eq!(
            found[0].actions[0].body,
            Some(json!({"command": "restart", "target": {"units": [2]}}))
        );
        // Another alert, an OK or UNKNOWN one, or a replica that is down itself: not this rule.
        for (definition, state, healthy) in [
            ("redis.replica_port", AlertState::Critical, true),
            ("redis.replication", AlertState::Unknown, true),
            ("redis.replication", AlertState::Critical, false),
        ] {
            let mut other = facts.clone();
            other.alerts = vec![alert(definition, state)];
            other.units[1] = unit(2, 1, "redis_replica", 2, healthy);
            let got = advise(&other);
            assert!(
                !rules(&got).contains(&"replica.not_replicating"),
                "{definition} {state}: {got:#?}"
            );
        }
    }
}
