//! A cluster's alert definitions, and the operators' changes of them: thresholds, `for`
//! time, interval, or disabled. Each change is a new version (the highest is in force), kept
//! with its author, like config versions.

use super::Manager;
use super::checks::AlertOverride;
use crate::duration::{format_duration, parse_duration};
use crate::model::*;
use crate::stack::{AlertCheck, AlertDef};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// A definition as a cluster has it: what the stack (or bigmgr) says, and the change in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertDefinitionView {
    /// Its name (`host_lost`, `redis.port`).
    pub name: String,
    /// `builtin`, `port`, `web`, `script` or `metric`.
    pub kind: String,
    /// What it is about.
    pub description: String,
    /// The component whose units it checks, if any.
    pub component: Option<String>,
    /// Whether it is evaluated (false: disabled for this cluster).
    pub enabled: bool,
    /// How often it is checked (`30s`), for the kinds agents run.
    pub interval: Option<String>,
    /// How long a bad finding lasts before the alert changes (`0s`: at once).
    #[serde(rename = "for")]
    pub hold: String,
    /// The warning threshold: a response time (`500ms`) or a metric value.
    pub warning: Option<Value>,
    /// The critical threshold.
    pub critical: Option<Value>,
    /// The version of the cluster's change in force, if any.
    pub version: Option<u32>,
    /// Who made that change.
    pub changed_by: Option<String>,
}

/// The body of `PUT /clusters/{cluster}/alert-definitions/{name}`: what to change; what is
/// left out keeps its value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChangeAlert {
    /// Evaluate it (false: its alerts go OK, saying it is disabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Its `for` time (`0s`, `2m`).
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub hold: Option<String>,
    /// Its interval (`30s`), for the checks agents run (port, web, script): sent to the
    /// agents with each unit's next task (a restart or reconfigure applies it now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Its warning threshold: a response time (`"500ms"`) for port and web alerts, a number
    /// for metric alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub warning: Option<Value>,
    /// Its critical threshold, the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub critical: Option<Value>,
}

/// The built-in definitions: name, description, whether its `for` time can be changed.
const BUILT_IN: &[(&str, &str)] = &[
    (
        super::alerts::HOST_LOST,
        "a host's agent sends no heartbeat",
    ),
    (
        super::alerts::UNIT_DOWN,
        "a unit whose desired state is STARTED fails its status check",
    ),
    (
        super::alerts::UNIT_STALE,
        "a unit runs an older config version than its service's",
    ),
    (
        super::alerts::JOB_FAILED,
        "the cluster's latest finished job failed",
    ),
    (
        super::healing::GAVE_UP,
        "self-healing gave up restarting a unit",
    ),
];

/// The changes in force of cluster `c`, by definition (one that does not parse is ignored,
/// with a warning: the definition is evaluated as declared).
pub(crate) async fn in_force(
    store: &dyn crate::store::Store,
    c: ClusterId,
) -> Result<HashMap<String, AlertOverride>> {
    let mut out = HashMap::new();
    for (name, _, settings, _, _) in store.alert_overrides(c).await? {
        match serde_json::from_str::<AlertOverride>(&settings) {
            Ok(o) => {
                out.insert(name, o);
            }
            Err(e) => tracing::warn!(definition = %name, error = %e, "ignoring an alert change"),
        }
    }
    Ok(out)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Manager {
    /// Every alert definition of a cluster: the built-in ones, then those its services'
    /// stacks declare, by name, with the cluster's changes applied.
    pub async fn alert_definitions(&self, cluster: &str) -> Result<Vec<AlertDefinitionView>> {
        let c = self.cluster(cluster).await?;
        let declared = self.declared_alerts(c.id).await?;
        let changes = self.inner.store.alert_overrides(c.id).await?;
        let by_name: HashMap<&str, (u32, &str, &str)> = changes
            .iter()
            .map(|(n, v, s, a, _)| (n.as_str(), (*v, s.as_str(), a.as_str())))
            .collect();
        let mut out = Vec::new();
        let settings = &self.inner.alert_settings;
        for (name, description) in BUILT_IN {
            let hold = match *name {
                super::alerts::UNIT_DOWN => settings.unit_down_for,
                super::alerts::UNIT_STALE => settings.unit_stale_for,
                _ => Duration::ZERO,
            };
            out.push(view_of(
                name,
                "builtin",
                description,
                None,
                None,
                hold,
                (None, None),
                by_name.get(name).copied(),
            ));
        }
        for (name, a) in &declared {
            let (kind, thresholds) = thresholds(a);
            out.push(view_of(
                name,
                kind,
                &a.description,
                a.component.clone(),
                (!matches!(a.check, AlertCheck::Metric { .. })).then_some(a.interval),
                a.hold,
                thresholds,
                by_name.get(name.as_str()).copied(),
            ));
        }
        Ok(out)
    }

    /// Changes a definition for a cluster (a new version), by `author`.
    pub async fn change_alert(
        &self,
        cluster: &str,
        name: &str,
        change: ChangeAlert,
        author: &str,
    ) -> Result<AlertDefinitionView> {
        let c = self.cluster(cluster).await?;
        let declared = self.declared_alerts(c.id).await?;
        let def = declared.get(name);
        let builtin = BUILT_IN.iter().any(|(n, _)| *n == name);
        if def.is_none() && !builtin {
            let mut known: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
            known.extend(declared.keys().map(String::as_str));
            return Err(Error::not_found(
                "alert definition",
                format!("{name} (in cluster {cluster}; it has {})", known.join(", ")),
            ));
        }
        let current = in_force(self.inner.store.as_ref(), c.id).await?;
        let mut o = current.get(name).cloned().unwrap_or(AlertOverride {
            enabled: true,
            ..AlertOverride::default()
        });
        if let Some(e) = change.enabled {
            o.enabled = e;
        }
        let duration = |field: &str, text: &str| {
            parse_duration(text).map_err(|e| Error::invalid_field(field, e))
        };
        if let Some(h) = &change.hold {
            o.hold_ms = Some(ms(duration("for", h)?));
        }
        if let Some(i) = &change.interval {
            if !def.is_some_and(|a| !matches!(a.check, AlertCheck::Metric { .. })) {
                return Err(Error::invalid_field(
                    "interval",
                    format!("{name} is not checked by agents: it has no interval to change"),
                ));
            }
            let d = duration("interval", i)?;
            if d < crate::stack::alerts::MIN_INTERVAL {
                return Err(Error::invalid_field(
                    "interval",
                    "an alert is checked at most every second: give 1s or more",
                ));
            }
            o.interval_ms = Some(ms(d));
        }
        for (field, given, slot) in [
            ("warning", &change.warning, &mut o.warning),
            ("critical", &change.critical, &mut o.critical),
        ] {
            let Some(v) = given else { continue };
            let threshold = match def.map(|a| &a.check) {
                Some(AlertCheck::Port { .. } | AlertCheck::Web { .. }) => match v.as_str() {
                    #[allow(clippy::cast_precision_loss)]
                    Some(t) => ms(duration(field, t)?) as f64,
                    None => {
                        return Err(Error::invalid_field(
                            field,
                            format!("{name}'s {field} is a response time such as \"500ms\""),
                        ));
                    }
                },
                Some(AlertCheck::Metric { .. }) => {
                    v.as_f64().filter(|x| x.is_finite()).ok_or_else(|| {
                        Error::invalid_field(field, format!("{name}'s {field} is a number"))
                    })?
                }
                _ => {
                    return Err(Error::invalid_field(
                        field,
                        format!("{name} has no {field} threshold to change"),
                    ));
                }
            };
            *slot = Some(threshold);
        }
        if let (Some(w), Some(c)) = (o.warning, o.critical)
            && w > c
        {
            return Err(Error::invalid_field(
                "warning",
                format!("the warning threshold {w} would be above the critical one {c}"),
            ));
        }
        let settings = serde_json::to_string(&o)
            .map_err(|e| Error::Invalid(format!("an alert change: {e}")))?;
        self.inner
            .store
            .add_alert_override(c.id, name, &settings, author)
            .await?;
        self.alert_definitions(cluster)
            .await?
            .into_iter()
            .find(|d| d.name == name)
            .ok_or_else(|| Error::not_found("alert definition", name))
    }

    /// The definitions a cluster's services' stacks declare, by qualified name.
    async fn declared_alerts(&self, c: ClusterId) -> Result<BTreeMap<String, AlertDef>> {
        let mut out = BTreeMap::new();
        for s in self.inner.store.list_services(c).await? {
            let stack = self
                .inner
                .stacks
                .stack(&s.stack, Some(&s.stack_version))
                .await?;
            let def = stack.service(&s.service)?;
            for a in &def.alerts {
                out.insert(a.qualified(&def.name), a.clone());
            }
        }
        Ok(out)
    }
}

/// A definition's kind and its thresholds as the API shows them.
fn thresholds(a: &AlertDef) -> (&'static str, (Option<Value>, Option<Value>)) {
    let latency = |d: &Option<Duration>| d.map(|d| Value::String(format_duration(d)));
    match &a.check {
        AlertCheck::Port {
            warning, critical, ..
        } => ("port", (latency(warning), latency(critical))),
        AlertCheck::Web {
            warning, critical, ..
        } => ("web", (latency(warning), latency(critical))),
        AlertCheck::Script { .. } => ("script", (None, None)),
        AlertCheck::Metric {
            warning, critical, ..
        } => (
            "metric",
            (warning.map(Value::from), critical.map(Value::from)),
        ),
    }
}

#[allow(clippy::too_many_arguments)]
fn view_of(
    name: &str,
    kind: &str,
    description: &str,
    component: Option<String>,
    interval: Option<Duration>,
    hold: Duration,
    (warning, critical): (Option<Value>, Option<Value>),
    change: Option<(u32, &str, &str)>,
) -> AlertDefinitionView {
    let o = change.and_then(|(_, s, _)| serde_json::from_str::<AlertOverride>(s).ok());
    let latency = kind == "port" || kind == "web";
    let threshold = |declared: Option<Value>, changed: Option<f64>| match changed {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(v) if latency => Some(Value::String(format_duration(Duration::from_millis(
            v as u64,
        )))),
        Some(v) => Some(Value::from(v)),
        None => declared,
    };
    AlertDefinitionView {
        name: name.to_string(),
        kind: kind.to_string(),
        description: description.to_string(),
        component,
        enabled: o.as_ref().is_none_or(|o| o.enabled),
        interval: interval.map(|i| {
            format_duration(
                o.as_ref()
                    .and_then(|o| o.interval_ms)
                    .map_or(i, Duration::from_millis),
            )
        }),
        hold: format_duration(
            o.as_ref()
                .and_then(|o| o.hold_ms)
                .map_or(hold, Duration::from_millis),
        ),
        warning: threshold(warning, o.as_ref().and_then(|o| o.warning)),
        critical: threshold(critical, o.as_ref().and_then(|o| o.critical)),
        version: change.map(|(v, _, _)| v),
        changed_by: change.map(|(_, _, a)| a.to_string()),
    }
}
