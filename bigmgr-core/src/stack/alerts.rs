//! Alert definitions a stack declares for its services (`[[alert]]` in `service.toml`):
//! `port`, `web` and `script` checks the agents run on their units' hosts, and `metric`
//! thresholds on host metrics the server evaluates. Parsed and checked when the stack loads;
//! a bad one is refused naming the file and the field (`alert[2].warning`).

use super::ComponentDef;
use crate::duration::parse_duration;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

/// The shortest interval of a check.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The default interval of a check.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// The default timeout of one check run (port, web, script).
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// The default window a metric is averaged over.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(300);

/// `[[alert]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlert {
    name: String,
    kind: String,
    #[serde(default)]
    description: String,
    component: Option<String>,
    interval: Option<String>,
    #[serde(rename = "for")]
    hold: Option<String>,
    timeout: Option<String>,
    port: Option<toml::Value>,
    url: Option<String>,
    expect_status: Option<i64>,
    command: Option<String>,
    metric: Option<String>,
    window: Option<String>,
    warning: Option<toml::Value>,
    critical: Option<toml::Value>,
    advise: Option<RawAlertAdvice>,
}

/// `advise = { rule = "…", … }` of an `[[alert]]`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlertAdvice {
    rule: String,
    primary: Option<String>,
}

/// What a firing alert of a definition means to the advisor (`advise = { rule = … }` on an
/// `[[alert]]`): the built-in advisor rule that turns it into a finding, with what that rule
/// needs to know of the service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule")]
pub enum AlertAdvice {
    /// `replica.not_replicating`: the alert's unit is a replica that does not replicate from
    /// its primary, the service's unit(s) of component `primary`.
    #[serde(rename = "replica.not_replicating")]
    ReplicaNotReplicating {
        /// The component whose units are the primary.
        primary: String,
    },
}

impl AlertAdvice {
    /// The advisor rules an alert may name.
    pub const RULES: &[&str] = &["replica.not_replicating"];

    /// The advisor rule's name.
    pub fn rule(&self) -> &'static str {
        match self {
            AlertAdvice::ReplicaNotReplicating { .. } => "replica.not_replicating",
        }
    }
}

/// What an alert definition checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum AlertCheck {
    /// A TCP connect to the unit's `port` (a number, or a template over the unit's context such
    /// as `"{{clientPort}}"`) at its address; slower than `warning`/`critical` is that state.
    Port {
        /// The port, as written (rendered per unit).
        port: String,
        /// Connecting slower than this is WARNING.
        warning: Option<Duration>,
        /// Connecting slower than this (or not at all) is CRITICAL.
        critical: Option<Duration>,
    },
    /// An HTTP GET of `url` (a template over the unit's context); another status than
    /// `expect_status` is CRITICAL, slower than `warning`/`critical` that state.
    Web {
        /// The URL, as written (rendered per unit).
        url: String,
        /// The status expected.
        expect_status: u16,
        /// Answering slower than this is WARNING.
        warning: Option<Duration>,
        /// Answering slower than this is CRITICAL.
        critical: Option<Duration>,
    },
    /// The component's script run with `command` (which the component declares): exit 0 is
    /// OK, 1 WARNING, 2 CRITICAL, anything else UNKNOWN; its first line of output is the text.
    Script {
        /// The command.
        command: String,
    },
    /// A host metric averaged over `window` above `warning`/`critical`, on every host with a
    /// unit of the service (or of `component`).
    Metric {
        /// Which metric.
        metric: Metric,
        /// The window it is averaged over.
        window: Duration,
        /// Above this is WARNING.
        warning: Option<f64>,
        /// Above this is CRITICAL.
        critical: Option<f64>,
    },
}

/// A host metric an alert can watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// CPU use, percent of all cores.
    CpuPercent,
    /// Memory in use, percent.
    MemoryPercent,
    /// The agent root's filesystem in use, percent.
    DiskPercent,
    /// The 1-minute load average.
    Load1,
}

impl Metric {
    const ALL: [(&'static str, Metric); 4] = [
        ("cpu_percent", Metric::CpuPercent),
        ("memory_percent", Metric::MemoryPercent),
        ("disk_percent", Metric::DiskPercent),
        ("load1", Metric::Load1),
    ];

    /// Its name in manifests.
    pub fn as_str(self) -> &'static str {
        Metric::ALL
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("", |(n, _)| n)
    }

    /// Its value in one sample.
    pub fn of(self, m: &crate::model::HostMetrics) -> f64 {
        let percent = |used: f64, total: f64| {
            if total > 0.0 {
                used * 100.0 / total
            } else {
                0.0
            }
        };
        #[allow(clippy::cast_precision_loss)]
        match self {
            Metric::CpuPercent => m.cpu_percent,
            Metric::MemoryPercent => {
                percent(m.memory_used_bytes as f64, m.memory_total_bytes as f64)
            }
            Metric::DiskPercent => percent(
                m.disk_total_bytes.saturating_sub(m.disk_free_bytes) as f64,
                m.disk_total_bytes as f64,
            ),
            Metric::Load1 => m.load[0],
        }
    }
}

/// An alert definition of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertDef {
    /// Its name, unique in the service; the alerts it raises are named `<service>.<name>`.
    pub name: String,
    /// What it is about, for operators.
    pub description: String,
    /// The component whose units it checks (port, web, script), or whose hosts it watches
    /// (metric; `None`: every host with a unit of the service).
    pub component: Option<String>,
    /// How often it is checked.
    pub interval: Duration,
    /// How long a bad finding must last before the alert changes (zero: at once).
    pub hold: Duration,
    /// How long one run may take (port, web, script).
    pub timeout: Duration,
    /// What it checks.
    pub check: AlertCheck,
    /// What a firing alert of it means to the advisor, if it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advise: Option<AlertAdvice>,
}

impl AlertDef {
    /// The name its alerts carry: `<service definition>.<name>` (`redis.port`).
    pub fn qualified(&self, service_def: &str) -> String {
        format!("{service_def}.{}", self.name)
    }
}

/// Converts every `[[alert]]`; `components` are the service's.
pub(super) fn convert_alerts(
    file: &Path,
    raw: &[RawAlert],
    components: &[ComponentDef],
) -> Result<Vec<AlertDef>> {
    let mut seen = HashSet::new();
    raw.iter()
        .enumerate()
        .map(|(i, a)| {
            let def = convert_alert(file, i, a, components)?;
            if !seen.insert(def.name.clone()) {
                return Err(manifest(
                    file,
                    format!("alert[{i}].name"),
                    format!(
                        "alert '{}' is declared twice; names must be unique",
                        def.name
                    ),
                ));
            }
            Ok(def)
        })
        .collect()
}

fn manifest(file: &Path, field: String, message: String) -> Error {
    Error::Manifest {
        file: file.to_path_buf(),
        field,
        message,
    }
}

fn convert_alert(
    file: &Path,
    i: usize,
    a: &RawAlert,
    components: &[ComponentDef],
) -> Result<AlertDef> {
    let err = |f: &str, m: String| manifest(file, format!("alert[{i}].{f}"), m);
    if !crate::name::is_identifier(&a.name) {
        return Err(err(
            "name",
            format!(
                "'{}' is not an alert name: lower-case letters, digits and _, starting with a \
                 letter",
                a.name
            ),
        ));
    }
    let duration = |f: &str, v: &Option<String>, default: Duration| -> Result<Duration> {
        match v {
            None => Ok(default),
            Some(s) => parse_duration(s).map_err(|e| err(f, e)),
        }
    };
    let interval = duration("interval", &a.interval, DEFAULT_INTERVAL)?;
    if interval < MIN_INTERVAL {
        return Err(err(
            "interval",
            "an alert is checked at most every second; give 1s or more".into(),
        ));
    }
    let hold = duration("for", &a.hold, Duration::ZERO)?;
    let timeout = duration("timeout", &a.timeout, DEFAULT_CHECK_TIMEOUT)?;
    if timeout.is_zero() {
        return Err(err("timeout", "a check needs a timeout above 0s".into()));
    }
    let component = match &a.component {
        None => None,
        Some(c) => Some(components.iter().find(|d| &d.name == c).ok_or_else(|| {
            err(
                "component",
                format!(
                    "alert '{}' names component '{c}', which this service does not \
                             declare; its components are: {}",
                    a.name,
                    components
                        .iter()
                        .map(|d| d.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?),
    };
    // What each kind takes; anything else given is a mistake worth naming.
    let given: Vec<(&str, bool)> = vec![
        ("port", a.port.is_some()),
        ("url", a.url.is_some()),
        ("expect_status", a.expect_status.is_some()),
        ("command", a.command.is_some()),
        ("metric", a.metric.is_some()),
        ("window", a.window.is_some()),
    ];
    let allowed: &[&str] = match a.kind.as_str() {
        "port" => &["port"],
        "web" => &["url", "expect_status"],
        "script" => &["command"],
        "metric" => &["metric", "window"],
        other => {
            return Err(err(
                "kind",
                format!("'{other}' is not a kind of alert; use port, web, script or metric"),
            ));
        }
    };
    if let Some((f, _)) = given.iter().find(|(f, g)| *g && !allowed.contains(f)) {
        return Err(err(f, format!("a {} alert takes no '{f}'", a.kind)));
    }
    let needs_component = || {
        component.ok_or_else(|| {
            err(
                "component",
                format!(
                    "a {} alert runs on the units of one component: name it",
                    a.kind
                ),
            )
        })
    };
    let latency = |f: &str, v: &Option<toml::Value>| -> Result<Option<Duration>> {
        match v {
            None => Ok(None),
            Some(toml::Value::String(s)) => parse_duration(s).map(Some).map_err(|e| err(f, e)),
            Some(other) => Err(err(
                f,
                format!(
                    "a response time is a duration such as \"500ms\" or \"2s\", not {}",
                    other.type_str()
                ),
            )),
        }
    };
    let check = match a.kind.as_str() {
        "port" => {
            needs_component()?;
            let port = match &a.port {
                Some(toml::Value::Integer(n)) => {
                    if !(1..=65535).contains(n) {
                        return Err(err(
                            "port",
                            format!("port {n} is out of range; use 1–65535"),
                        ));
                    }
                    n.to_string()
                }
                Some(toml::Value::String(s)) => check_template(s).map_err(|e| err("port", e))?,
                Some(other) => {
                    return Err(err(
                        "port",
                        format!(
                            "a port is a number or a template such as \"{{{{clientPort}}}}\", \
                             not {}",
                            other.type_str()
                        ),
                    ));
                }
                None => {
                    return Err(err(
                        "port",
                        "a port alert needs the port to connect to".into(),
                    ));
                }
            };
            AlertCheck::Port {
                port,
                warning: latency("warning", &a.warning)?,
                critical: latency("critical", &a.critical)?,
            }
        }
        "web" => {
            needs_component()?;
            let url = a
                .url
                .as_deref()
                .ok_or_else(|| err("url", "a web alert needs the URL to GET".into()))?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(err(
                    "url",
                    format!("'{url}' is not an http:// or https:// URL"),
                ));
            }
            let url = check_template(url).map_err(|e| err("url", e))?;
            let expect_status = match a.expect_status {
                None => 200,
                Some(s) => u16::try_from(s)
                    .ok()
                    .filter(|s| (100..=599).contains(s))
                    .ok_or_else(|| {
                        err(
                            "expect_status",
                            format!("{s} is not an HTTP status (100–599)"),
                        )
                    })?,
            };
            AlertCheck::Web {
                url,
                expect_status,
                warning: latency("warning", &a.warning)?,
                critical: latency("critical", &a.critical)?,
            }
        }
        "script" => {
            let c = needs_component()?;
            if a.warning.is_some() || a.critical.is_some() {
                return Err(err(
                    if a.warning.is_some() {
                        "warning"
                    } else {
                        "critical"
                    },
                    "a script alert's state is its exit code (0 OK, 1 WARNING, 2 CRITICAL): \
                     it takes no thresholds"
                        .into(),
                ));
            }
            let command = a
                .command
                .as_deref()
                .ok_or_else(|| err("command", "a script alert needs the command to run".into()))?;
            let declared = c.commands.get(command).ok_or_else(|| {
                err(
                    "command",
                    format!(
                        "component '{}' does not declare command '{command}'; declare it under \
                         [component.commands.{command}] (its commands are: {})",
                        c.name,
                        c.commands.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                )
            })?;
            if let Some(status) = c.commands.get("status")
                && status.script != declared.script
            {
                return Err(err(
                    "command",
                    format!(
                        "command '{command}' of component '{}' runs another script than its \
                         status command; a script alert runs the component's status script",
                        c.name
                    ),
                ));
            }
            AlertCheck::Script {
                command: command.to_string(),
            }
        }
        _ => {
            let name = a
                .metric
                .as_deref()
                .ok_or_else(|| err("metric", "a metric alert needs the metric to watch".into()))?;
            let metric = Metric::ALL
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, m)| *m)
                .ok_or_else(|| {
                    err(
                        "metric",
                        format!(
                            "'{name}' is not a host metric; use cpu_percent, memory_percent, \
                             disk_percent or load1"
                        ),
                    )
                })?;
            let threshold = |f: &str, v: &Option<toml::Value>| -> Result<Option<f64>> {
                match v {
                    None => Ok(None),
                    #[allow(clippy::cast_precision_loss)]
                    Some(toml::Value::Integer(n)) => Ok(Some(*n as f64)),
                    Some(toml::Value::Float(x)) if x.is_finite() => Ok(Some(*x)),
                    Some(other) => Err(err(
                        f,
                        format!("a metric threshold is a number, not {}", other.type_str()),
                    )),
                }
            };
            let (warning, critical) = (
                threshold("warning", &a.warning)?,
                threshold("critical", &a.critical)?,
            );
            if warning.is_none() && critical.is_none() {
                return Err(err(
                    "critical",
                    "a metric alert needs a warning or a critical threshold".into(),
                ));
            }
            if let (Some(w), Some(c)) = (warning, critical)
                && w > c
            {
                return Err(err(
                    "warning",
                    format!("the warning threshold {w} is above the critical one {c}"),
                ));
            }
            AlertCheck::Metric {
                metric,
                window: duration("window", &a.window, DEFAULT_WINDOW)?,
                warning,
                critical,
            }
        }
    };
    if let AlertCheck::Port {
        warning: Some(w),
        critical: Some(c),
        ..
    }
    | AlertCheck::Web {
        warning: Some(w),
        critical: Some(c),
        ..
    } = &check
        && w > c
    {
        return Err(err(
            "warning",
            "the warning response time is above the critical one".into(),
        ));
    }
    let advise = match &a.advise {
        None => None,
        Some(adv) => Some(convert_alert_advice(a, adv, components, &check, &err)?),
    };
    Ok(AlertDef {
        name: a.name.clone(),
        description: a.description.trim().to_string(),
        component: a.component.clone(),
        interval,
        hold,
        timeout,
        check,
        advise,
    })
}

/// Checks `advise` of an alert: a rule the advisor knows, on a check of a component's units,
/// with what the rule needs.
fn convert_alert_advice(
    a: &RawAlert,
    adv: &RawAlertAdvice,
    components: &[ComponentDef],
    check: &AlertCheck,
    err: &dyn Fn(&str, String) -> Error,
) -> Result<AlertAdvice> {
    if matches!(check, AlertCheck::Metric { .. }) {
        return Err(err(
            "advise",
            "a metric alert is about hosts; only an alert on a component's units (port, web, \
             script) can advise"
                .into(),
        ));
    }
    match adv.rule.as_str() {
        "replica.not_replicating" => {
            let primary = adv.primary.as_deref().ok_or_else(|| {
                err(
                    "advise.primary",
                    "replica.not_replicating needs the component of the primary the alert's \
                     units replicate from"
                        .into(),
                )
            })?;
            if !components.iter().any(|c| c.name == primary)
                || a.component.as_deref() == Some(primary)
            {
                return Err(err(
                    "advise.primary",
                    format!(
                        "'{primary}' is not another component of this service; its components \
                         are: {}",
                        components
                            .iter()
                            .map(|d| d.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            Ok(AlertAdvice::ReplicaNotReplicating {
                primary: primary.to_string(),
            })
        }
        other => Err(err(
            "advise.rule",
            format!(
                "'{other}' is not an advisor rule an alert can name; use {}",
                AlertAdvice::RULES.join(", ")
            ),
        )),
    }
}

/// Checks that a port or URL template compiles; the text as it is.
fn check_template(text: &str) -> std::result::Result<String, String> {
    if text.chars().any(char::is_control) {
        return Err("one line of text, without control characters".into());
    }
    handlebars::Template::compile(text)
        .map(|_| text.to_string())
        .map_err(|e| format!("not a valid template: {e}"))
}
